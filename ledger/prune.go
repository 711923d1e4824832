package ledger

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Retention of the lookup records (docs/ledger.md "Retention").
//
// The books (posting sets, statuses, cards, merchants) are never deleted.
// What grows without bound besides them are the records that only find
// things: idempotency records ('l i'), the reference index ('l r'), the
// RRN index ('l n') and reversal tombstones ('l t', also in memory).
// Each is needed for a bounded time after its business date:
//
//	record        read by                                 needed while
//	'l i'         Execute: retries of the same key        the request may be retried (minutes)
//	'l r'         void, cash-load void, completion void   its business day
//	              reversal (finds the original)           the original may be reversed: up to the
//	                                                      refund window for a consume (a refunded
//	                                                      one is declined, not a no-op), the hold's
//	                                                      life for a pre-auth
//	              BatchTotals (settlement)                the terminal's batch is open
//	'l t'         an original arriving after its reversal its date ±1 day
//	'l n'         refund (finds the original by RRN)      RefundWindowDays
//
// Prune deletes them by their business date; MinLookupRetentionDays is the
// shortest window that keeps every one an allowed operation still needs.

// PruneStats counts the lookup records one Prune call deleted.
type PruneStats struct {
	Idempotency, References, RRNs, Tombstones int
}

// MaxPruneBatch bounds the max argument of Prune.
const MaxPruneBatch = 100_000

const (
	// pruneChunk is how many deletions are committed together, under
	// their key locks: small enough that a live operation on one of those
	// keys waits only for one unsynced commit.
	pruneChunk = 512
	// A call examines at most max(pruneScanFloor, pruneScanRatio*max)
	// records, so a pass over a large index that deletes little still
	// returns between batches.
	pruneScanFloor = 1 << 16
	pruneScanRatio = 16
)

// MinLookupRetentionDays is the shortest retention, in business days, of
// the ledger's lookup records under these options: the longer of the
// refund window and the pre-auth hold life, plus one day for the ±1
// business day tolerance of reversals and tombstones. A caller pruning
// with before = today − n, n ≥ this, deletes nothing an operation the
// rules still allow would look up (docs/ledger.md "Retention").
func (o Options) MinLookupRetentionDays() int {
	o = o.withDefaults()
	return max(o.RefundWindowDays, o.HoldDays) + 1
}

// MinLookupRetentionDays is Options.MinLookupRetentionDays of the options
// the ledger was opened with.
func (l *Ledger) MinLookupRetentionDays() int { return l.opts.MinLookupRetentionDays() }

// Prune deletes lookup records dated before `before`: idempotency records,
// reference index entries and reversal tombstones of business days before
// `before`, and RRN index entries of days before the refund window's start
// as seen from `before` (before − RefundWindowDays: never one a refund
// could still need, whatever the caller's window). At most max records
// per call (1..MaxPruneBatch, else an error); more=true when some remain
// (or the call stopped after examining its share of records): call again.
// Postings, statuses, cards and merchants are never deleted.
//
// The contract: the ledger cannot know today's business date, so the
// caller passes before = today − n with n ≥ MinLookupRetentionDays(). A
// later `before` deletes records that voids, reversals, batch totals or
// retries still need; Prune refuses only what it can tell is wrong (an
// invalid date, max out of range). Two safety nets do not depend on the
// caller: the RRN cut above, and the reference of a pre-auth whose hold
// is still on its card and does not expire before `before` is kept.
//
// What pruning means for the operations (docs/ledger.md "Retention"): a
// retry of a pruned request is executed as new; a reversal of a
// transaction whose reference is pruned is approved as a no-op (and
// leaves a tombstone), a void or completion void of one is declined
// "original not found"; a refund of one whose RRN entry is pruned is
// declined "original not found" (it was outside the refund window
// anyway); BatchTotals of a batch left open longer than the window miss
// its pruned transactions. Idempotency records written before records
// carried a date (version 1) are dated by the posting set their result
// names; those without one (declines, inquiries, no-op reversals) are
// kept.
//
// Prune runs alongside live traffic: each deletion is decided and
// committed under the key lock Execute takes for that idempotency key or
// reference (tombstones under their reference's), and the lock is held
// until the commit returns, so a live operation reusing a key either
// commits before the check (its record is newer and kept) or after the
// deletion (its write lands on top). Deletions commit with pebble.NoSync:
// one lost in a crash is done again by the next pass. Calls are
// serialised; a pass resumes where the previous call stopped, and a call
// with another `before` starts a new pass.
func (l *Ledger) Prune(before BusinessDate, max int) (st PruneStats, more bool, err error) {
	if !before.Valid() {
		return st, false, fmt.Errorf("%w: prune before %d: not a business date", ErrInvalidRequest, uint32(before))
	}
	if max < 1 || max > MaxPruneBatch {
		return st, false, fmt.Errorf("%w: prune: at most %d records per call, want 1..%d", ErrInvalidRequest, max, MaxPruneBatch)
	}
	c := &l.prune
	c.mu.Lock()
	defer c.mu.Unlock()
	l.recent.forget() // reference records may go
	if c.before != before {
		c.before, c.phase, c.next = before, phaseRRN, nil
	}
	budget := pruneScanRatio * max
	if budget < pruneScanFloor {
		budget = pruneScanFloor
	}
	p := pruner{l: l, before: before, rrnBefore: before.AddDays(-l.opts.RefundWindowDays), max: max, budget: budget, st: &st}
	defer func() {
		if st.Tombstones > 0 {
			l.compactTombs()
		}
	}()
	for c.phase < phaseDone {
		done, err := p.scan(c)
		if err != nil {
			return st, true, fmt.Errorf("prune before %s: %w", before, err)
		}
		if !done {
			return st, true, nil
		}
		c.phase, c.next = c.phase+1, nil
	}
	c.phase = phaseRRN // the pass is complete: the next call starts another
	return st, false, nil
}

// prunePhase is one kind of lookup record; a pass goes through them in
// this order.
type prunePhase uint8

const (
	phaseRRN prunePhase = iota
	phaseTomb
	phaseRef
	phaseIdem
	phaseDone
)

// pruneCursor is where the pass in progress stands: the phase and the
// first key of it not yet examined (nil: its first key).
type pruneCursor struct {
	mu     sync.Mutex // one Prune call at a time
	before BusinessDate
	phase  prunePhase
	next   []byte
}

// pruneCand is a record found old enough to delete.
type pruneCand struct {
	phase prunePhase
	key   []byte
	val   []byte   // the value it was judged by
	lock  []byte   // the key lock Execute takes for it (nil for RRN entries)
	rv    refValue // a tombstone's value, to drop it from memory
}

// pruner is the working state of one Prune call.
type pruner struct {
	l         *Ledger
	before    BusinessDate
	rrnBefore BusinessDate
	max       int
	budget    int // records the call may still examine
	deleted   int
	pending   []pruneCand
	held      []heldKeys
	st        *PruneStats
}

func (p *pruner) bounds(ph prunePhase) (lo, hi []byte) {
	switch ph {
	case phaseRRN:
		return []byte{keyPrefix, tagRRN}, rrnKey(p.rrnBefore, "")
	case phaseTomb:
		lo = []byte{keyPrefix, tagTomb}
	case phaseRef:
		lo = []byte{keyPrefix, tagRef}
	default:
		lo = []byte{keyPrefix, tagIdem}
	}
	return lo, prefixEnd(lo)
}

// scan examines the records of the cursor's phase from where it stands
// and deletes the old ones. done is false when the call's share (max
// deletions, or its scan budget) ran out first; the cursor then names the
// first record not dealt with.
func (p *pruner) scan(c *pruneCursor) (done bool, err error) {
	lo, hi := p.bounds(c.phase)
	if c.next != nil {
		lo = c.next
	}
	it, err := p.l.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return false, err
	}
	defer it.Close()
	stop := func(k []byte) (bool, error) {
		if err := p.flush(); err != nil {
			return false, err
		}
		c.next = bytes.Clone(k)
		return false, nil
	}
	for ok := it.First(); ok; ok = it.Next() {
		if p.budget == 0 {
			return stop(it.Key())
		}
		p.budget--
		cand, ok, err := p.judge(c.phase, it.Key(), it.Value())
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		if p.deleted+len(p.pending) == p.max {
			return stop(it.Key())
		}
		p.pending = append(p.pending, cand)
		if len(p.pending) == pruneChunk {
			if err := p.flush(); err != nil {
				return false, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return false, err
	}
	return true, p.flush()
}

// judge decides whether the record k, v of phase ph is old enough to go.
// Records that do not decode are left alone (they are not Prune's to
// judge; Execute reports them when it meets them).
func (p *pruner) judge(ph prunePhase, k, v []byte) (pruneCand, bool, error) {
	c := pruneCand{phase: ph}
	switch ph {
	case phaseRRN:
		// The iterator's upper bound is the cut: every entry is older.
		// RRN entries take no key lock: each is written once, by the
		// approved transaction with that RRN, under that transaction's
		// own business date, and nothing rewrites it; one dated a refund
		// window before the cut is never written by live traffic, which
		// carries today's date. The deletions name the keys read, so a
		// late write of another key is never swallowed (as it would be
		// by a range deletion).
	case phaseTomb, phaseRef:
		rv, err := decodeRef(v)
		if err != nil || rv.Date >= p.before {
			return c, false, nil
		}
		if ph == phaseRef && rv.Kind == KindPreAuth && rv.TxID != 0 {
			if open, err := p.holdOpen(rv.TxID); err != nil || open {
				return c, false, err
			}
		}
		c.rv = rv
		c.lock = bytes.Clone(k)
		c.lock[1] = tagRef // a tombstone is guarded by its reference's lock
	case phaseIdem:
		date, tx, err := peekIdem(v)
		if err != nil {
			return c, false, nil
		}
		if date == 0 { // version 1: dated by its posting set, if any
			if tx == 0 {
				return c, false, nil
			}
			if date, err = p.postingDate(tx); err != nil || date == 0 {
				return c, false, err
			}
		}
		if date >= p.before {
			return c, false, nil
		}
		c.lock = bytes.Clone(k)
	}
	c.key, c.val = bytes.Clone(k), bytes.Clone(v)
	return c, true, nil
}

// ReferenceNeeded reports whether the reference of posting set tx must
// outlive a lookup window that starts at before: when tx is a pre-auth
// whose hold is still on its card and does not expire before it (the
// rule Prune applies to its own reference records). A caller keeping
// references (References) asks it before deleting one past the window.
func (l *Ledger) ReferenceNeeded(tx uint64, before BusinessDate) (bool, error) {
	p := pruner{l: l, before: before}
	return p.holdOpen(tx)
}

// holdOpen reports whether the pre-auth tx still holds funds on its card
// on some day from p.before on: its reference must stay, for a reversal
// of the pre-auth may still come (the window covers HoldDays, but holds
// placed under a longer HoldDays outlive it).
func (p *pruner) holdOpen(tx uint64) (bool, error) {
	raw, err := get(p.l.db, postKey(tx))
	if err != nil || raw == nil {
		return false, err
	}
	po, err := decodePosting(raw)
	if err != nil {
		return true, nil // keep what cannot be judged
	}
	e := p.l.entry(po.PAN)
	if e == nil {
		return false, nil
	}
	for _, h := range e.cur.Load().Holds {
		if h.TxID == tx && h.Expiry >= p.before {
			return true, nil
		}
	}
	return false, nil
}

// postingDate is the business date of posting set tx (0 when it is
// missing or does not decode: the record is then kept).
func (p *pruner) postingDate(tx uint64) (BusinessDate, error) {
	raw, err := get(p.l.db, postKey(tx))
	if err != nil || raw == nil {
		return 0, err
	}
	po, err := decodePosting(raw)
	if err != nil {
		return 0, nil
	}
	return po.Date, nil
}

// flush deletes the pending candidates. Each is checked and deleted under
// its key lock, held until the batch has committed. The locks are taken
// without waiting; a candidate whose key a live operation holds is done
// afterwards on its own, waiting for that lock while holding no other.
func (p *pruner) flush() error {
	if len(p.pending) == 0 {
		return nil
	}
	l := p.l
	var busy []pruneCand
	err := func() error {
		b := l.db.NewBatch()
		defer b.Close()
		p.held = p.held[:0]
		defer func() {
			for i := range p.held {
				p.held[i].unlock()
			}
			p.held = p.held[:0]
		}()
		gone := make([]pruneCand, 0, len(p.pending))
		for _, c := range p.pending {
			if c.lock != nil {
				h, ok := l.keys.tryLock(c.lock)
				if !ok {
					busy = append(busy, c)
					continue
				}
				p.held = append(p.held, h)
			}
			ok, err := p.stage(b, c)
			if err != nil {
				return err
			}
			if ok {
				gone = append(gone, c)
			}
		}
		return p.commit(b, gone)
	}()
	p.pending = p.pending[:0]
	if err != nil {
		return err
	}
	for _, c := range busy {
		if err := p.pruneOne(c); err != nil {
			return err
		}
	}
	return nil
}

// pruneOne deletes one candidate, waiting for its key lock.
func (p *pruner) pruneOne(c pruneCand) error {
	h := p.l.keys.lockAll(c.lock)
	defer h.unlock()
	b := p.l.db.NewBatch()
	defer b.Close()
	ok, err := p.stage(b, c)
	if err != nil || !ok {
		return err
	}
	return p.commit(b, []pruneCand{c})
}

// stage adds the deletion of c to b if its record is still the one it was
// judged by; the caller holds c's key lock. A record rewritten since (a
// reference reused by a later transaction) or already gone is left.
func (p *pruner) stage(b *pebble.Batch, c pruneCand) (bool, error) {
	if c.lock != nil {
		cur, err := get(p.l.db, c.key)
		if err != nil {
			return false, err
		}
		if cur == nil || !bytes.Equal(cur, c.val) {
			return false, nil
		}
	}
	return true, b.Delete(c.key, nil)
}

// commit commits the deletions staged in b, counts them and drops the
// deleted tombstones from memory (still under their key locks).
func (p *pruner) commit(b *pebble.Batch, gone []pruneCand) error {
	if len(gone) == 0 {
		return nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	p.deleted += len(gone)
	for _, c := range gone {
		switch c.phase {
		case phaseRRN:
			p.st.RRNs++
		case phaseTomb:
			p.st.Tombstones++
			p.l.forgetTomb(c.key, c.rv)
		case phaseRef:
			p.st.References++
		case phaseIdem:
			p.st.Idempotency++
		}
	}
	return nil
}

// forgetTomb drops a pruned tombstone from memory if it is still the one
// deleted.
func (l *Ledger) forgetTomb(k []byte, v refValue) {
	l.tombMu.Lock()
	if cur, ok := l.tombs[string(k)]; ok && cur == v {
		delete(l.tombs, string(k))
		l.tombsDropped++
		l.tombsStale++
	}
	l.tombMu.Unlock()
}

// compactTombs builds the tombstone filter again once an eighth as many
// tombstones have been dropped since it was built as are left, and
// copies the tombstone map once more entries have been dropped from it
// than it holds: a Go map does not give back the memory of deleted
// entries. Both walk every tombstone under tombMu, which reversals wait
// for, so neither runs after every prune call: a pruned tombstone's bit
// left set costs a lookup in the map, never a wrong answer.
func (l *Ledger) compactTombs() {
	l.tombMu.Lock()
	defer l.tombMu.Unlock()
	if l.tombsStale > 0 && l.tombsStale >= len(l.tombs)/8 {
		// The filter is built again from the tombstones left, so the
		// bits of the pruned ones no longer send lookups to the map:
		// under tombMu, so a tombstone put meanwhile is in the map
		// copied or sets its bit in the new filter.
		f := newTombFilter()
		for k := range l.tombs {
			f.add([]byte(k))
		}
		l.tombBits.Store(f)
		l.tombsStale = 0
	}
	if l.tombsDropped <= len(l.tombs) {
		return
	}
	m := make(map[string]refValue, len(l.tombs))
	for k, v := range l.tombs {
		m[k] = v
	}
	l.tombs, l.tombsDropped = m, 0
}
