package ledger

import (
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Totals are settlement totals of one terminal batch.
type Totals struct {
	DebitCount   int
	DebitAmount  Fen
	CreditCount  int
	CreditAmount Fen
}

// BatchTotals returns the settlement totals of one terminal batch, seen
// from the card: debits are consumes, pre-auth completions and cash-load
// voids (money out of cards); credits are consume voids, completion voids,
// refunds and cash loads (money into cards). Transactions that were
// reversed, and reversals themselves, are left out; a voided consume
// counts as a debit and its void as a credit. Pre-auths and cancels move
// no money and are not counted. Amounts exclude the service fee, as the
// terminal's own totals do. It reads committed state (one scan of the
// batch's reference records and of the caller's index, References: the
// newer posting set of each STAN), so a batch left open longer than the
// lookup retention window misses the transactions whose references Prune
// (or the caller's retention) has deleted.
func (l *Ledger) BatchTotals(terminal string, batch uint32) (Totals, error) {
	var t Totals
	if len(terminal) > maxTerminalLen || batch > maxSixDigits {
		return t, fmt.Errorf("%w: batch totals: bad terminal or batch", ErrInvalidRequest)
	}
	snap := l.db.NewSnapshot()
	defer snap.Close()
	ids, err := batchRefs(snap, l.refs.get(), terminal, batch)
	if err != nil {
		return Totals{}, fmt.Errorf("batch totals %s/%06d: %w", terminal, batch, err)
	}
	for _, id := range ids {
		raw, err := get(snap, postKey(id))
		if err != nil || raw == nil {
			return Totals{}, fmt.Errorf("batch totals %s/%06d: posting %d: missing or unreadable: %v", terminal, batch, id, err)
		}
		p, err := decodePosting(raw)
		if err != nil {
			return Totals{}, fmt.Errorf("batch totals %s/%06d: %w", terminal, batch, err)
		}
		sraw, err := get(snap, statusKey(p.TxID))
		if err != nil {
			return Totals{}, fmt.Errorf("batch totals %s/%06d: %w", terminal, batch, err)
		}
		if sraw != nil {
			st, err := decodeStatus(sraw)
			if err != nil {
				return Totals{}, fmt.Errorf("batch totals %s/%06d: status of posting %d: %w", terminal, batch, p.TxID, err)
			}
			if st.ReversedBy != 0 {
				continue
			}
		}
		switch p.Kind {
		case KindConsume, KindPreAuthCompletion, KindCashLoadVoid:
			t.DebitCount++
			t.DebitAmount += p.Amount
		case KindVoid, KindCompletionVoid, KindRefund, KindCashLoad, KindTransferLoad:
			t.CreditCount++
			t.CreditAmount += p.Amount
		}
	}
	return t, nil
}

// Report is the result of Check.
type Report struct {
	Cards    int
	Postings int
	// ClassTotals is the sum of balances per account class (card cash and
	// subsidy purses are reported separately as "card/cash" and
	// "card/subsidy"); the grand total must be zero.
	ClassTotals map[string]Fen
	Total       Fen
	// Accounts are the balances of every non-card account.
	Accounts map[AccountID]Fen
	// OwingCards counts the cards with a receivable (their debts sum to
	// Accounts[CardReceivable]).
	OwingCards int
	Violations []string
}

// OK reports whether the check found no violation.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// maxViolations bounds the report on a badly damaged store.
const maxViolations = 1000

// Check verifies the ledger offline: every posting set balances to zero
// and its links name existing posting sets of a fitting kind; no purse is
// negative or below its holds; no card's receivable is positive; the balances stored in the card records
// equal the sums of all postings per account; and the sum over all
// accounts is zero. It reads a consistent snapshot of db.
func Check(db *pebble.DB) (Report, error) {
	snap := db.NewSnapshot()
	defer snap.Close()
	c := &checker{
		r:      Report{ClassTotals: map[string]Fen{}, Accounts: map[AccountID]Fen{}},
		stored: map[AccountID]Fen{},
		posted: map[AccountID]Fen{},
		kinds:  map[uint64]Kind{},
	}
	if err := c.cards(snap); err != nil {
		return c.r, err
	}
	if err := c.postings(snap); err != nil {
		return c.r, err
	}
	c.checkLinks()
	if err := c.statuses(snap); err != nil {
		return c.r, err
	}
	c.balances()
	return c.r, nil
}

// checker is one run of Check: the report and what one scan tells the
// next.
type checker struct {
	r      Report
	stored map[AccountID]Fen // balances from card records
	posted map[AccountID]Fen // sums of the postings
	kinds  map[uint64]Kind   // posting sets by id
	links  []postingLink
}

// postingLink is a posting set that names another (a void its consume).
type postingLink struct {
	from, to uint64
	kind     Kind
}

func (c *checker) violate(format string, args ...any) {
	if len(c.r.Violations) < maxViolations {
		c.r.Violations = append(c.r.Violations, fmt.Sprintf(format, args...))
	}
}

// cards scans the card records: purses not negative nor below their
// holds, no positive receivable; their balances feed the comparison with
// the postings.
func (c *checker) cards(snap pebble.Reader) error {
	return scan(snap, []byte{keyPrefix, tagCard}, func(k, v []byte) error {
		cd, err := loadCard(snap, v)
		if err != nil {
			c.violate("card %s: %v", cardno.Mask(string(k[2:])), err)
			return nil
		}
		c.r.Cards++
		if string(k[2:]) != cd.PAN {
			c.violate("card record under %s names %s", cardno.Mask(string(k[2:])), cardno.Mask(cd.PAN))
		}
		hc, hs := cd.heldSplit()
		if cd.Cash < 0 || cd.Subsidy < 0 {
			c.violate("card %s: negative purse (cash %s, subsidy %s)", cardno.Mask(cd.PAN), cd.Cash, cd.Subsidy)
		}
		if cd.Cash < hc || cd.Subsidy < hs {
			c.violate("card %s: holds exceed purses", cardno.Mask(cd.PAN))
		}
		for _, ct := range cd.Contribs {
			if ct.Account == CardReceivable && ct.Amount > 0 {
				c.violate("card %s: receivable %s is positive (a card can owe, not be owed)", cardno.Mask(cd.PAN), ct.Amount)
			}
		}
		if cd.owed() > 0 {
			c.r.OwingCards++
		}
		c.stored[CardCash(cd.PAN)] += cd.Cash
		c.stored[CardSubsidy(cd.PAN)] += cd.Subsidy
		for _, ct := range cd.Contribs {
			c.stored[ct.Account] += ct.Amount
		}
		return nil
	})
}

// postings scans the posting sets: each balances to zero; their legs
// feed the per-account sums, their links the link check.
func (c *checker) postings(snap pebble.Reader) error {
	from, spans, indexed, err := readDayIndex(snap)
	if err != nil {
		c.violate("day index: %v", err)
		indexed = false
	}
	return scan(snap, []byte{keyPrefix, tagPost}, func(k, v []byte) error {
		p, err := decodePosting(v)
		if err != nil {
			c.violate("posting %x: %v", k[2:], err)
			return nil
		}
		c.r.Postings++
		if string(postKey(p.TxID)) != string(k) {
			c.violate("posting under %x has id %d", k[2:], p.TxID)
		}
		var sum Fen
		for _, g := range p.Legs {
			sum += g.Amount
			c.posted[g.Account] += g.Amount
		}
		if sum != 0 {
			c.violate("posting %d (%s) does not balance: %s", p.TxID, p.Kind, sum)
		}
		if s, ok := spans[p.Date]; indexed && p.TxID >= from && (!ok || !s.has(p.TxID)) {
			c.violate("posting %d of %s is outside its date's day index span: settlement would miss it", p.TxID, p.Date)
		}
		c.kinds[p.TxID] = p.Kind
		if p.Link != 0 {
			c.links = append(c.links, postingLink{p.TxID, p.Link, p.Kind})
		}
		return nil
	})
}

// linkedKinds are the kinds a posting set of each kind may link to; a
// reversal may link to any reversible kind, other kinds to none.
var linkedKinds = map[Kind][]Kind{
	KindVoid:              {KindConsume},
	KindCashLoadVoid:      {KindCashLoad},
	KindCompletionVoid:    {KindPreAuthCompletion},
	KindRefund:            {KindConsume, KindPreAuthCompletion},
	KindPreAuthCompletion: {KindPreAuth},
	KindPreAuthCancel:     {KindPreAuth},
}

// checkLinks checks that every link names an existing posting set of a
// fitting kind.
func (c *checker) checkLinks() {
	for _, ln := range c.links {
		to, ok := c.kinds[ln.to]
		switch {
		case !ok:
			c.violate("posting %d (%s) links to missing posting %d", ln.from, ln.kind, ln.to)
		case ln.kind == KindReversal:
			if !to.reversible() {
				c.violate("reversal %d undoes %s %d, which is not reversible", ln.from, to, ln.to)
			}
		case linkedKinds[ln.kind] == nil:
			c.violate("posting %d (%s) must not link to another posting", ln.from, ln.kind)
		default:
			fit := false
			for _, w := range linkedKinds[ln.kind] {
				fit = fit || w == to
			}
			if !fit {
				c.violate("posting %d (%s) links to %s %d", ln.from, ln.kind, to, ln.to)
			}
		}
	}
}

// statuses scans the status records of posting sets: each names existing
// posting sets, and refunded amounts are not negative.
func (c *checker) statuses(snap pebble.Reader) error {
	return scan(snap, []byte{keyPrefix, tagStatus}, func(k, v []byte) error {
		st, err := decodeStatus(v)
		if err != nil {
			c.violate("status %x: %v", k[2:], err)
			return nil
		}
		id := uint64(0)
		if len(k) == 10 {
			for _, b := range k[2:] {
				id = id<<8 | uint64(b)
			}
		}
		if _, ok := c.kinds[id]; !ok {
			c.violate("status of missing posting %x", k[2:])
		}
		for _, ref := range []uint64{st.VoidedBy, st.ReversedBy, st.FinishedBy} {
			if _, ok := c.kinds[ref]; ref != 0 && !ok {
				c.violate("status of posting %d names missing posting %d", id, ref)
			}
		}
		if st.Refunded < 0 || st.RefundedFee < 0 || st.RefundedSubsidy < 0 {
			c.violate("status of posting %d: negative refunded amounts", id)
		}
		return nil
	})
}

// balances compares every account's stored balance with the sum of its
// postings, totals them per class, and checks that all sum to zero.
func (c *checker) balances() {
	all := map[AccountID]bool{}
	for a := range c.stored {
		all[a] = true
	}
	for a := range c.posted {
		all[a] = true
	}
	ids := make([]string, 0, len(all))
	for a := range all {
		ids = append(ids, string(a))
	}
	sort.Strings(ids)
	for _, s := range ids {
		a := AccountID(s)
		if c.stored[a] != c.posted[a] {
			c.violate("account %s: stored balance %s, postings sum to %s", maskAccount(a), c.stored[a], c.posted[a])
		}
		class := a.Class()
		if _, sub, ok := splitPurse(a); ok {
			class = "card/cash"
			if sub {
				class = "card/subsidy"
			}
		} else {
			c.r.Accounts[a] = c.stored[a]
		}
		c.r.ClassTotals[class] += c.stored[a]
		c.r.Total += c.stored[a]
	}
	if c.r.Total != 0 {
		c.violate("accounts sum to %s, not zero", c.r.Total)
	}
}

func maskAccount(a AccountID) string {
	if pan, sub, ok := splitPurse(a); ok {
		if sub {
			return "card/" + cardno.Mask(pan) + "/subsidy"
		}
		return "card/" + cardno.Mask(pan) + "/cash"
	}
	return string(a)
}

// CardByPAN reads one card straight from the store (for offline tools).
func CardByPAN(db pebble.Reader, pan string) (CardView, bool, error) {
	raw, err := get(db, cardKey(pan))
	if err != nil || raw == nil {
		return CardView{}, false, err
	}
	c, err := loadCard(db, raw)
	if err != nil {
		return CardView{}, false, fmt.Errorf("card %s: %w", cardno.Mask(pan), err)
	}
	return c.view(), true, nil
}

// RecommendedPebbleOptions are the Pebble options the switch should open
// the shared database with. A 64 MiB memtable lets the WAL group many
// concurrent synced commits between flushes (measured ≈ 50k synced
// commits/s vs ≈ 41k with the default 4 MiB, notes/moov-iso8583.md), and
// larger L0 thresholds keep flush bursts from stalling writers: L0 is
// compacted once 8 sublevels have gathered (Pebble's default 4 compacts
// twice as often, rewriting the base level's overlap each time: ≈ 11 %
// more CPU per commit once the compactions are paid,
// docs/BENCHMARKS.md#where-the-time-goes); the hot path's point reads
// barely touch L0 (its state is in memory or the memtable). Bloom
// filters (10 bits per key, every level) keep the point lookups of the hot
// path cheap when they miss, as the idempotency and tombstone lookups of a
// new transaction always do. The WAL
// stays on and every POS commit uses pebble.Sync; nothing batches on a
// timer (WALMinSyncInterval stays unset).
//
// Pebble charges every memtable, the one taking writes and each one
// waiting for its flush, against the block cache's size. With its default
// 8 MiB cache and these 64 MiB memtables the cache had no room left at
// all (no entry, a 0.1 % hit rate measured under load), so every lookup
// that reached an sstable read the table's filter, index and data blocks
// from the file again (a pread, a checksum, a decompression), and more of
// them the more tables the store had: what made voids, refunds and
// reversals cost more run after run (docs/BENCHMARKS.md, "The mixed
// profile"). The cache is sized for two memtables plus BlockCacheBytes of
// blocks. Blocks and memtables together stay within CacheSize (more
// memtables only while flushes lag): with fewer memtables, as after a
// start or in a tool that only reads, the blocks may take up to all of
// it; while more wait for a flush, fewer.
//
// Every sstable holds one keyspace (KeyspaceEnd): a flush or compaction
// starts a new file where the key's first two bytes, its owner and
// space (docs/architecture.md), change. The keyspaces of a consume behave
// differently: the journal's entries `j e` and the postings `l p` only
// append (their keys grow), the duplicate records `j o` spread over every
// terminal, the purses `l b` are rewritten in place. With files cut only
// by size, one file of each flush or compaction spanned the end of one
// keyspace and the start of the next, so the files of the appended
// keyspaces overlapped the level below wherever such a file sat, and
// compactions rewrote old journal entries and postings merely for lying
// in a key range beside new duplicate records. Cut at keyspaces, a file
// of new entries or postings overlaps nothing below it: under L0 a
// compaction moves it down a level without rewriting it, and what is
// merged is mostly `j o` and `l b`. This is for a store that runs all
// day, not for a young one: the first compactions of an empty store
// rewrite L0 into an empty level either way (a 25 s benchmark sees no
// difference), while 3 million consumes replayed into Pebble, 1.5 days
// at 2 million a day, wrote about 40 % fewer compaction bytes per consume
// with L0's read amplification no higher (docs/BENCHMARKS.md,
// "Keyspace-aligned sstables"). The cut adds files only where keyspaces
// meet: a keyspace with a few keys (a day's counter mark) makes a small
// file per flush, which the next compaction of its range merges. The
// cut is Pebble's span policy (Options.Experimental.SpanPolicyFunc of the
// pinned v2.1.7): an upgrade of Pebble must keep it, which
// TestRecommendedOptionsCutFilesAtKeyspaces checks.
func RecommendedPebbleOptions() *pebble.Options {
	o := &pebble.Options{
		MemTableSize:                memTableBytes,
		CacheSize:                   2*memTableBytes + BlockCacheBytes,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       8,
		L0StopWritesThreshold:       24,
		MaxOpenFiles:                1000,
	}
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(10) // inherited by the lower levels
	o.Experimental.SpanPolicyFunc = func(start []byte) (pebble.SpanPolicy, []byte, error) {
		return pebble.SpanPolicy{}, KeyspaceEnd(start), nil
	}
	return o
}

// KeyspaceEnd is the first key after the keyspace of key: the keys that
// share its first two bytes (owner and space, docs/architecture.md). A
// key shorter than that is a keyspace of its own, which ends at the
// key followed by a zero byte. nil means no end: the keyspace of
// 0xff 0xff runs to the end of all keys.
func KeyspaceEnd(key []byte) []byte {
	if len(key) < 2 {
		return append(append(make([]byte, 0, len(key)+1), key...), 0)
	}
	switch {
	case key[1] < 0xff:
		return []byte{key[0], key[1] + 1}
	case key[0] < 0xff:
		return []byte{key[0] + 1}
	}
	return nil
}

const memTableBytes = 64 << 20

// BlockCacheBytes is the room RecommendedPebbleOptions' block cache keeps
// for sstable blocks besides two memtables: the filter and index blocks of
// the tables the hot path's lookups reach, and the data blocks of recent
// originals (a void's or reversal's consume). Pebble fills it only with
// blocks read, so it adds to the daemon's memory only as far as lookups
// use it.
const BlockCacheBytes = 64 << 20
