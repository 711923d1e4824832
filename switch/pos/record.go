package pos

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// record is the record step of one exchange, and the txn.Record a
// destination gets. write is the one place that seals an answer, journals
// the request and the answer, stores the answer for duplicates and
// commits: synced when the answer decides the request (the destination's
// writes ride in the same batch), unsynced when it decides nothing.
type record struct {
	p *Protocol
	x *exchange
	// t is the transaction a destination is deciding, nil otherwise.
	t *txn.Transaction
	// b is the transaction's batch, created on first use.
	b *pebble.Batch
	// dupKey and fp name the request for duplicate detection, set by
	// dedupe: a decided answer is stored under them.
	dupKey journal.DuplicateKey
	fp     [journal.FingerprintLen]byte
	// replayed marks the answer as a stored response sent again; the
	// journal entry says so.
	replayed bool
	// ledgerRef is the posting set the request's terminal reference
	// names (txn.Outcome.LedgerRef), kept in its duplicate record.
	ledgerRef uint64

	// decided is set once an answer that decides the request is
	// committed; resp and sealed are the recorded answer.
	decided bool
	resp    *spec.POSMessage
	sealed  []byte
}

// newRecord starts the record step of x, in x.
func (p *Protocol) newRecord(x *exchange) *record {
	x.rec = record{p: p, x: x}
	return &x.rec
}

// close releases the batch.
func (r *record) close() {
	if r.b != nil {
		_ = r.b.Close()
	}
}

// Batch is the transaction's one batch (txn.Record).
func (r *record) Batch() *pebble.Batch {
	if r.b == nil {
		r.b = r.p.db.NewBatch()
	}
	return r.b
}

// Commit records a destination's outcome (txn.Record): its answer decides
// the request.
func (r *record) Commit(o txn.Outcome) error {
	if r.t == nil {
		return errors.New("record: no transaction to commit")
	}
	if r.decided {
		// Checked before the answer is built: it is built into the
		// exchange's one response message, which holds the recorded one.
		return errors.New("record: request decided twice")
	}
	r.ledgerRef = o.LedgerRef
	return r.decide(r.p.answerOutcome(r.x, r.t, o))
}

// decide records an answer that decides the request: stored for
// duplicates and committed with sync, with whatever a destination wrote
// into the batch. It may be called once.
func (r *record) decide(resp *spec.POSMessage) error {
	if r.decided {
		return errors.New("record: request decided twice")
	}
	if err := r.write(r.Batch(), resp, true); err != nil {
		return err
	}
	r.decided = true
	return nil
}

// answer records an answer that decides nothing (a rejection, network
// management, a replayed response): journaled in a batch of its own
// without sync, nothing stored for duplicates. Whatever a destination
// wrote into the transaction's batch is dropped with it. A journal
// failure is logged: the answer is still sent. What no terminal proved it
// sent is sealed but not journaled, only counted (journalpolicy.go).
func (r *record) answer(resp *spec.POSMessage) {
	if !r.journaled(resp) {
		r.x.s.Unauthenticated = true
		r.resp = resp
		r.sealed, _ = r.p.seal(r.x, resp)
		return
	}
	b := r.p.db.NewBatch()
	defer b.Close()
	if err := r.write(b, resp, false); err != nil {
		r.p.log.Error("journal", zap.Error(err))
	}
}

// write is the one record function: it seals resp, journals the request
// and the answer into b, and — when the answer decides the request —
// stores it for duplicates; then it commits b, synced exactly when it
// decides. The sealed answer is kept for the reply even when the commit
// fails for an answer that decides nothing.
func (r *record) write(b *pebble.Batch, resp *spec.POSMessage, decides bool) error {
	p, x := r.p, r.x
	sealed, err := p.seal(x, resp)
	if decides && err != nil {
		return err
	}
	if !decides {
		r.resp, r.sealed = resp, sealed
		if sealed == nil {
			return err
		}
	}
	var dup *journal.ResponseRecord
	durability := pebble.NoSync
	now := time.Now() // the response's time, in its entry and its duplicate record
	if decides {
		dup = p.duplicateRecord(x, r.fp, resp.ResponseCode, now)
		dup.TxID = r.ledgerRef
		durability = pebble.Sync
	}
	if err := p.journalPair(b, x, resp, sealed, now, r.replayed, r.dupKey, dup); err != nil {
		return err
	}
	if decides {
		if observe := observeCommit.Load(); observe != nil {
			(*observe)(x.tx, b)
		}
	}
	crash := decides && x.tx == spec.Consume
	if crash {
		maybeCrash(CrashBeforeCommit)
	}
	if err := b.Commit(durability); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if crash {
		maybeCrash(CrashAfterCommit)
	}
	if decides {
		r.resp, r.sealed = resp, sealed
	}
	return nil
}

// ObserveCommits, called only by tests, has f see every batch that
// decides a request just before it commits (the key-count test of
// docs/journal.md), until the returned function is called. The hook is
// an atomic pointer, so that setting and clearing it does not race with
// a connection goroutine committing meanwhile.
func ObserveCommits(f func(spec.TxType, *pebble.Batch)) (stop func()) {
	observeCommit.Store(&f)
	return func() { observeCommit.CompareAndSwap(&f, nil) }
}

var observeCommit atomic.Pointer[func(spec.TxType, *pebble.Batch)]

// journalPair writes the request and response entries of an exchange into
// b, with the duplicate record dup under dupKey when the answer decides
// the request (one record: the pair is indexed by it, docs/journal.md).
// PIN block, track data, IC data and keys are removed first.
func (p *Protocol) journalPair(b *pebble.Batch, x *exchange, resp *spec.POSMessage, packed []byte, now time.Time, replayed bool,
	dupKey journal.DuplicateKey, dup *journal.ResponseRecord) error {
	// The entries live in the exchange (the journal keeps no pointer to
	// them): a pair costs no allocation of its own.
	in, out := &x.in, &x.out
	*in = p.entry(x, x.req, journal.In, x.start)
	in.Raw = redacted(x.req)
	*out = p.entry(x, resp, journal.Out, now)
	if replayed {
		out.Flags |= journal.FlagReplayed
	}
	if resp.Reserved62 != nil {
		out.Raw = redacted(resp)
	} else {
		out.Raw = packed
	}
	if x.unrouted {
		in.Raw, out.Raw = withoutCardNumber(x.req), withoutCardNumber(resp)
	}
	var err error
	if dup != nil {
		_, _, err = p.journal.AppendAnsweredAt(b, &x.res, in, out, dupKey, *dup)
	} else {
		_, _, err = p.journal.AppendPairAt(b, &x.res, in, out)
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// duplicateRecord is the duplicate record of an answered request: the
// request's fingerprint and (set by the journal) where its response is in
// the journal; the response bytes themselves are in that entry, not
// copied again. Its TxID, set by write, is the ledger's posting set when
// the record is the request's reference (docs/journal.md).
func (p *Protocol) duplicateRecord(x *exchange, fp [journal.FingerprintLen]byte, rc string, now time.Time) *journal.ResponseRecord {
	return &journal.ResponseRecord{
		Fingerprint: fp, ResponseCode: rc,
		MAKGeneration: x.term.KeyGeneration, Time: now,
	}
}

func (p *Protocol) entry(x *exchange, m *spec.POSMessage, dir journal.Direction, at time.Time) journal.Entry {
	return journal.Entry{
		Direction:    dir,
		Listener:     "pos",
		Peer:         x.s.Peer,
		Terminal:     x.req.TerminalID,
		Merchant:     x.req.MerchantID,
		MTI:          m.MTI,
		STAN:         x.req.STAN,
		Batch:        x.req.Reserved60.Batch,
		RRN:          m.RRN,
		TxType:       x.tx.String(),
		ResponseCode: m.ResponseCode,
		Time:         at,
		BusinessDate: x.date.String(),
	}
}

// redacted packs m without the fields that must never be stored: the PIN
// block (52), track 2 (35), IC data (55, which may hold track-equivalent
// data) and working keys (62). Messages without them keep their bytes.
func redacted(m *spec.POSMessage) []byte {
	if m.PINBlock == nil && m.Track2 == "" && m.ICData == nil && m.Reserved62 == nil && m.Raw != nil {
		return m.Raw
	}
	// A decoded request's bytes less those fields: what packing the
	// copy below gives, without packing it.
	if b, ok := m.RawWithout(35, 52, 55, 62); ok {
		return b
	}
	c := *m
	c.PINBlock, c.Track2, c.ICData, c.Reserved62 = nil, "", nil, nil
	b, err := spec.EncodePOS(&c)
	if err != nil {
		return nil
	}
	return b
}
