package ledger

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Dates of the retention tests: "today", and the cut a caller keeping the
// default minimum of 31 days passes (20250601 − 31 days). The RRN index is
// cut a refund window (30 days) earlier still, at 20250401.
const (
	pToday  BusinessDate = 20250601
	pBefore BusinessDate = 20250501
)

func has(t testing.TB, db *pebble.DB, key []byte) bool {
	t.Helper()
	v, err := get(db, key)
	if err != nil {
		t.Fatal(err)
	}
	return v != nil
}

// pruneAll calls Prune until it reports nothing more and adds up what it
// deleted.
func pruneAll(t testing.TB, l *Ledger, before BusinessDate, max int) PruneStats {
	t.Helper()
	var sum PruneStats
	for i := 0; ; i++ {
		st, more, err := l.Prune(before, max)
		if err != nil {
			t.Fatal(err)
		}
		sum.Idempotency += st.Idempotency
		sum.References += st.References
		sum.RRNs += st.RRNs
		sum.Tombstones += st.Tombstones
		if !more {
			return sum
		}
		if i > 1000 {
			t.Fatal("Prune never finishes")
		}
	}
}

// consumeOn runs an approved consume of amount on the staff card at
// terminal term on day d and returns its request.
func consumeOn(t testing.TB, l *Ledger, term string, d BusinessDate, amount Fen) (Consume, Result) {
	t.Helper()
	q := Consume{Common: pos(term, market, d), PAN: panStaff, Amount: amount}
	return q, must(t, exec(t, l, &q))
}

// reversalFirst runs a reversal of a consume that never arrived, on day d,
// leaving a tombstone; it returns the reversal and the missing original's
// reference.
func reversalFirst(t testing.TB, l *Ledger, term string, d BusinessDate) (Reversal, TxnRef) {
	t.Helper()
	orig := pos(term, market, d)
	q := Reversal{Common: pos(term, market, d), PAN: panStaff, Original: ref(orig), OriginalKind: KindConsume}
	if res := exec(t, l, &q); !res.NoOp {
		t.Fatalf("reversal first: %+v", res)
	}
	return q, ref(orig)
}

// TestPruneRecords prunes at 20250501 and checks, record by record, that
// what is older goes and the rest stays: idempotency records, references
// and tombstones by the cut, RRN entries a refund window earlier.
func TestPruneRecords(t *testing.T) {
	l, db := seeded(t, Options{})
	old, _ := consumeOn(t, l, "10000001", 20250315, 100)   // everything goes
	mid, _ := consumeOn(t, l, "10000001", 20250415, 100)   // RRN inside the refund window of the cut: kept
	edge, _ := consumeOn(t, l, "10000001", pBefore, 100)   // on the cut: kept
	young, _ := consumeOn(t, l, "10000002", 20250531, 100) // kept
	revOld, tombOld := reversalFirst(t, l, "10000003", 20250415)
	revNew, tombNew := reversalFirst(t, l, "10000003", pBefore)
	declined := Consume{Common: pos("10000001", market, 20250315), PAN: panStaff, Amount: 0}
	wantDecline(t, exec(t, l, &declined), DeclineInvalidAmount)

	// Records written before idempotency records carried a date: one
	// naming its posting set is dated by it, one without (a decline) has
	// no date and stays.
	legacy, legacyRes := consumeOn(t, l, "10000004", 20250320, 100)
	legacyDecl := Consume{Common: pos("10000004", market, 20250320), PAN: panStaff, Amount: 0}
	for _, q := range []struct {
		c   Common
		res Result
	}{{legacy.Common, legacyRes}, {legacyDecl.Common, Result{Kind: KindConsume, Decline: DeclineInvalidAmount}}} {
		v1 := idemRecord{Fingerprint: 1, Result: q.res}
		enc := v1.encode()
		if enc[0] != recordV1 {
			t.Fatalf("undated record encoded as version %d", enc[0])
		}
		if err := db.Set(idemKey(KindConsume, q.c.Key), enc, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	tombsBefore := len(l.tombs)

	st := pruneAll(t, l, pBefore, 1000)
	want := PruneStats{
		Idempotency: 5, // old, mid, revOld, declined, legacy
		References:  3, // old, mid, legacy
		RRNs:        2, // old, legacy
		Tombstones:  1, // tombOld
	}
	if st != want {
		t.Errorf("pruned %+v, want %+v", st, want)
	}
	for _, tt := range []struct {
		name string
		key  []byte
		kept bool
	}{
		{"idempotency 20250315", idemKey(KindConsume, old.Key), false},
		{"reference 20250315", refKey(ref(old.Common)), false},
		{"RRN 20250315 (before 20250401)", rrnKey(old.Date, old.RRN), false},
		{"idempotency 20250415", idemKey(KindConsume, mid.Key), false},
		{"reference 20250415", refKey(ref(mid.Common)), false},
		{"RRN 20250415 (refund window of the cut)", rrnKey(mid.Date, mid.RRN), true},
		{"idempotency on the cut", idemKey(KindConsume, edge.Key), true},
		{"reference on the cut", refKey(ref(edge.Common)), true},
		{"RRN on the cut", rrnKey(edge.Date, edge.RRN), true},
		{"idempotency 20250531", idemKey(KindConsume, young.Key), true},
		{"reference 20250531", refKey(ref(young.Common)), true},
		{"RRN 20250531", rrnKey(young.Date, young.RRN), true},
		{"tombstone 20250415", tombKey(tombOld), false},
		{"its reversal's idempotency", idemKey(KindReversal, revOld.Key), false},
		{"tombstone on the cut", tombKey(tombNew), true},
		{"its reversal's idempotency", idemKey(KindReversal, revNew.Key), true},
		{"declined 20250315", idemKey(KindConsume, declined.Key), false},
		{"undated record naming a posting set of 20250320", idemKey(KindConsume, legacy.Key), false},
		{"undated record of a decline", idemKey(KindConsume, legacyDecl.Key), true},
	} {
		if got := has(t, db, tt.key); got != tt.kept {
			t.Errorf("%s: kept %v, want %v", tt.name, got, tt.kept)
		}
	}
	if _, ok := l.tomb(tombKey(tombOld)); ok {
		t.Error("pruned tombstone still in memory")
	}
	if _, ok := l.tomb(tombKey(tombNew)); !ok {
		t.Error("young tombstone gone from memory")
	}
	if len(l.tombs) != tombsBefore-1 {
		t.Errorf("%d tombstones in memory, want %d", len(l.tombs), tombsBefore-1)
	}
	// The books are untouched: the same postings, the same balances.
	if r := checkStore(t, db); r.Postings == 0 {
		t.Error("no postings checked")
	}
	if v := mustCard(t, l, panStaff); v.Balances.Cash != 100000-500 {
		t.Errorf("staff cash %s", v.Balances.Cash)
	}
	// A second pass finds nothing.
	if st := pruneAll(t, l, pBefore, 1000); st != (PruneStats{}) {
		t.Errorf("second pass pruned %+v", st)
	}
}

// TestPruneKeepsWhatOperationsNeed prunes with the minimum window (the
// cut 31 days before today) and runs, today, every operation the rules
// still allow on older transactions: each must find what it looks up.
func TestPruneKeepsWhatOperationsNeed(t *testing.T) {
	const term = "20000001"
	for _, tt := range []struct {
		name string
		// prep runs before the prune and returns the check to run after.
		prep func(t *testing.T, l *Ledger) func(t *testing.T, l *Ledger)
	}{
		{"refund at the end of the refund window", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			q, _ := consumeOn(t, l, term, pToday.AddDays(-30), 1000)
			return func(t *testing.T, l *Ledger) {
				r := must(t, exec(t, l, &Refund{Common: pos(term, market, pToday), PAN: panStaff, Amount: 400, OriginalRRN: q.RRN, OriginalDate: q.Date}))
				if r.CashDelta != 400 {
					t.Errorf("refund %+v", r)
				}
			}
		}},
		{"reversal of a consume inside the window", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			q, _ := consumeOn(t, l, term, pToday.AddDays(-30), 1000)
			return func(t *testing.T, l *Ledger) {
				r := must(t, exec(t, l, &Reversal{Common: pos(term, market, pToday), PAN: panStaff, Original: ref(q.Common), OriginalKind: KindConsume}))
				if r.NoOp || r.CashDelta != 1000 {
					t.Errorf("reversal %+v", r)
				}
			}
		}},
		{"reversal of a refunded consume is still declined", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			q, _ := consumeOn(t, l, term, pToday.AddDays(-30), 1000)
			must(t, exec(t, l, &Refund{Common: pos(term, market, pToday.AddDays(-29)), PAN: panStaff, Amount: 100, OriginalRRN: q.RRN, OriginalDate: q.Date}))
			return func(t *testing.T, l *Ledger) {
				wantDecline(t, exec(t, l, &Reversal{Common: pos(term, market, pToday), PAN: panStaff, Original: ref(q.Common), OriginalKind: KindConsume}), DeclineInvalidTransaction)
			}
		}},
		{"void today", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			q, _ := consumeOn(t, l, term, pToday, 1000)
			return func(t *testing.T, l *Ledger) {
				r := must(t, exec(t, l, &Void{Common: pos(term, market, pToday), PAN: panStaff, Amount: 1000, Original: ref(q.Common)}))
				if r.CashDelta != 1000 {
					t.Errorf("void %+v", r)
				}
			}
		}},
		{"completion of a pre-auth on its last day", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			pa := must(t, exec(t, l, &PreAuth{Common: pos(term, market, pToday.AddDays(-30)), PAN: panStaff, Amount: 2000}))
			return func(t *testing.T, l *Ledger) {
				r := must(t, exec(t, l, &PreAuthCompletion{Common: pos(term, market, pToday), PAN: panStaff, Amount: 1500, AuthCode: pa.AuthCode}))
				if r.CashDelta != -1500 || r.Balances.Held != 0 {
					t.Errorf("completion %+v", r)
				}
			}
		}},
		{"reversal of a pre-auth on its last day", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			q := PreAuth{Common: pos(term, market, pToday.AddDays(-30)), PAN: panStaff, Amount: 2000}
			must(t, exec(t, l, &q))
			return func(t *testing.T, l *Ledger) {
				r := must(t, exec(t, l, &Reversal{Common: pos(term, market, pToday), PAN: panStaff, Original: ref(q.Common), OriginalKind: KindPreAuth}))
				if r.NoOp || r.Balances.Held != 0 {
					t.Errorf("reversal %+v", r)
				}
			}
		}},
		{"original arriving the day after its reversal", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			_, orig := reversalFirst(t, l, term, pToday.AddDays(-1))
			return func(t *testing.T, l *Ledger) {
				c := pos(term, market, pToday)
				c.Batch, c.STAN = orig.Batch, orig.STAN
				wantDecline(t, exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 100}), DeclineInvalidTransaction)
			}
		}},
		{"retry of yesterday's consume replays", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			q, first := consumeOn(t, l, term, pToday.AddDays(-1), 100)
			return func(t *testing.T, l *Ledger) {
				r := exec(t, l, &q)
				if !r.Replay || r.TxID != first.TxID {
					t.Errorf("retry %+v", r)
				}
			}
		}},
		{"batch totals of today's batch", func(t *testing.T, l *Ledger) func(*testing.T, *Ledger) {
			consumeOn(t, l, term, pToday, 300)
			consumeOn(t, l, term, pToday, 200)
			return func(t *testing.T, l *Ledger) {
				got, err := l.BatchTotals(term, 1)
				if err != nil || got != (Totals{DebitCount: 2, DebitAmount: 500}) {
					t.Errorf("totals %+v, %v", got, err)
				}
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, db := seeded(t, Options{})
			// Old traffic of the same terminal, so there is something to prune.
			consumeOn(t, l, term, 20250301, 100)
			after := tt.prep(t, l)
			before := pToday.AddDays(-l.MinLookupRetentionDays())
			if before != pBefore {
				t.Fatalf("cut %s, want %s", before, pBefore)
			}
			if st := pruneAll(t, l, before, 100); st.References == 0 || st.Idempotency == 0 || st.RRNs == 0 {
				t.Fatalf("nothing pruned: %+v", st)
			}
			after(t, l)
			checkStore(t, db)
		})
	}
}

// TestPruneConsequences pins the documented behaviour of operations on
// transactions whose lookup records are gone (docs/ledger.md "Retention").
func TestPruneConsequences(t *testing.T) {
	const term = "30000001"
	oldDay := BusinessDate(20250415)
	t.Run("reversal of a pruned transaction is an approved no-op", func(t *testing.T) {
		l, db := seeded(t, Options{})
		q, _ := consumeOn(t, l, term, oldDay, 1000)
		pruneAll(t, l, pBefore, 100)
		cash := mustCard(t, l, panStaff).Balances.Cash
		r := exec(t, l, &Reversal{Common: pos(term, market, pToday), PAN: panStaff, Original: ref(q.Common), OriginalKind: KindConsume})
		if !r.Approved() || !r.NoOp || r.CashDelta != 0 {
			t.Errorf("reversal %+v", r)
		}
		if got := mustCard(t, l, panStaff).Balances.Cash; got != cash {
			t.Errorf("cash %s, want %s: the original stands", got, cash)
		}
		if v, ok := l.tomb(tombKey(ref(q.Common))); !ok || v.Date != pToday {
			t.Errorf("tombstone %+v %v, want one of today", v, ok)
		}
		checkStore(t, db)
	})
	t.Run("refund whose RRN entry is pruned: original not found", func(t *testing.T) {
		l, _ := seeded(t, Options{})
		q, _ := consumeOn(t, l, term, 20250315, 1000)
		pruneAll(t, l, pBefore, 100)
		wantDecline(t, exec(t, l, &Refund{Common: pos(term, market, pToday), PAN: panStaff, Amount: 100, OriginalRRN: q.RRN, OriginalDate: q.Date}), DeclineOriginalNotFound)
	})
	t.Run("retry of a pruned request is executed anew", func(t *testing.T) {
		l, _ := seeded(t, Options{})
		q, first := consumeOn(t, l, term, oldDay, 1000)
		pruneAll(t, l, pBefore, 100)
		r := must(t, exec(t, l, &q))
		if r.Replay || r.TxID == first.TxID {
			t.Errorf("retry %+v: want a new transaction", r)
		}
	})
	t.Run("batch open across the cut: totals miss the pruned part", func(t *testing.T) {
		l, _ := seeded(t, Options{})
		consumeOn(t, l, term, oldDay, 1000)
		consumeOn(t, l, term, pToday, 300)
		if got, _ := l.BatchTotals(term, 1); got != (Totals{DebitCount: 2, DebitAmount: 1300}) {
			t.Fatalf("totals before %+v", got)
		}
		pruneAll(t, l, pBefore, 100)
		if got, _ := l.BatchTotals(term, 1); got != (Totals{DebitCount: 1, DebitAmount: 300}) {
			t.Errorf("totals after %+v", got)
		}
	})
}

// TestPruneKeepsOpenHoldReference: holds placed under a longer HoldDays
// outlive the window of a later, shorter one; the reference of a pre-auth
// whose hold is still on its card and expires on or after the cut stays,
// so it can still be reversed.
func TestPruneKeepsOpenHoldReference(t *testing.T) {
	const term = "40000001"
	l, db := seeded(t, Options{HoldDays: 60})
	a := PreAuth{Common: pos(term, market, 20250315), PAN: panStaff, Amount: 1000} // expires 20250514
	b := PreAuth{Common: pos(term, market, 20250316), PAN: panStaff, Amount: 1000} // expires 20250515
	must(t, exec(t, l, &a))
	must(t, exec(t, l, &b))
	l, err := Open(db, Options{}) // HoldDays back to 30: minimum 31 days
	if err != nil {
		t.Fatal(err)
	}
	if st := pruneAll(t, l, pBefore, 100); st.References != 0 || st.Idempotency != 2 {
		t.Errorf("pruned %+v; want both idempotency records, no reference", st)
	}
	r := must(t, exec(t, l, &Reversal{Common: pos(term, market, 20250510), PAN: panStaff, Original: ref(a.Common), OriginalKind: KindPreAuth}))
	if r.NoOp || r.Balances.Held != 1000 {
		t.Errorf("reversal of an open pre-auth %+v", r)
	}
	// a's hold is gone, b's expires on 20250515: a cut of 20250515 keeps
	// b's reference, one of 20250516 deletes it.
	if st := pruneAll(t, l, 20250515, 100); st.References != 1 || !has(t, db, refKey(ref(b.Common))) {
		t.Errorf("cut 20250515: pruned %+v", st)
	}
	if st := pruneAll(t, l, 20250516, 100); st.References != 1 || has(t, db, refKey(ref(b.Common))) {
		t.Errorf("cut 20250516: pruned %+v", st)
	}
	checkStore(t, db)
}

// TestPruneTombstones: the in-memory tombstone set shrinks with the
// records, and a reopened ledger loads only what is left.
func TestPruneTombstones(t *testing.T) {
	l, db := seeded(t, Options{})
	var kept []TxnRef
	for i := 0; i < 10; i++ {
		reversalFirst(t, l, "50000001", 20250415)
	}
	for i := 0; i < 2; i++ {
		_, r := reversalFirst(t, l, "50000002", 20250520)
		kept = append(kept, r)
	}
	if len(l.tombs) != 12 {
		t.Fatalf("%d tombstones", len(l.tombs))
	}
	if st := pruneAll(t, l, pBefore, 100); st.Tombstones != 10 {
		t.Errorf("pruned %+v", st)
	}
	if len(l.tombs) != 2 || l.tombsDropped != 0 {
		t.Errorf("%d tombstones in memory (%d dropped since the copy), want 2 (0)", len(l.tombs), l.tombsDropped)
	}
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l2.tombs) != 2 {
		t.Errorf("reopened: %d tombstones", len(l2.tombs))
	}
	for _, r := range kept {
		if _, ok := l2.tomb(tombKey(r)); !ok {
			t.Errorf("tombstone %s lost", r)
		}
	}
}

// TestReversalRefreshesStaleTombstone: a tombstone of an earlier use of a
// reference (batch and STAN wrapped) does not stop a reversal arriving
// first today from blocking today's late original.
func TestReversalRefreshesStaleTombstone(t *testing.T) {
	l, db := seeded(t, Options{})
	_, orig := reversalFirst(t, l, "60000001", 20250410)
	c := pos("60000001", market, 20250420)
	if r := exec(t, l, &Reversal{Common: c, PAN: panStaff, Original: orig, OriginalKind: KindConsume}); !r.NoOp {
		t.Fatalf("second reversal first %+v", r)
	}
	if v, _ := l.tomb(tombKey(orig)); v.Date != 20250420 {
		t.Errorf("tombstone of %s, want 20250420", v.Date)
	}
	late := pos("60000001", market, 20250420)
	late.Batch, late.STAN = orig.Batch, orig.STAN
	wantDecline(t, exec(t, l, &Consume{Common: late, PAN: panStaff, Amount: 100}), DeclineInvalidTransaction)
	checkStore(t, db)
}

// TestPruneMaxAndMore: seven old consumes leave 21 records; five per call
// take five calls, in the order RRN entries, tombstones, references,
// idempotency records, and only the last says there is no more.
func TestPruneMaxAndMore(t *testing.T) {
	l, db := seeded(t, Options{})
	for i := 0; i < 7; i++ {
		consumeOn(t, l, "70000001", 20250315, 100)
	}
	for i, want := range []struct {
		st   PruneStats
		more bool
	}{
		{PruneStats{RRNs: 5}, true},
		{PruneStats{RRNs: 2, References: 3}, true},
		{PruneStats{References: 4, Idempotency: 1}, true},
		{PruneStats{Idempotency: 5}, true},
		{PruneStats{Idempotency: 1}, false},
		{PruneStats{}, false},
	} {
		st, more, err := l.Prune(pBefore, 5)
		if err != nil || st != want.st || more != want.more {
			t.Errorf("call %d: %+v more=%v err=%v; want %+v more=%v", i+1, st, more, err, want.st, want.more)
		}
	}
	for _, tt := range []struct {
		before BusinessDate
		max    int
	}{
		{pBefore, 0}, {pBefore, -1}, {pBefore, MaxPruneBatch + 1}, {0, 10}, {20250230, 10}, {99991231 + 1, 10},
	} {
		if _, _, err := l.Prune(tt.before, tt.max); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Prune(%d, %d): %v, want ErrInvalidRequest", tt.before, tt.max, err)
		}
	}
	if _, more, err := l.Prune(pBefore, MaxPruneBatch); err != nil || more {
		t.Errorf("Prune(max %d): more=%v %v", MaxPruneBatch, more, err)
	}
	checkStore(t, db)
}

// TestPruneConcurrent prunes old days while terminals transact today,
// reusing the very references and idempotency keys being pruned (KnownNew
// makes Execute write without reading), and reversals arriving first
// rewrite the old tombstones. Every record written today must survive:
// a deletion decided on the old value must never land after the new one.
func TestPruneConcurrent(t *testing.T) {
	l, db := seeded(t, Options{})
	const terms, each = 6, 40
	oldDay := BusinessDate(20250315)
	common := func(w, i int, d BusinessDate) Common {
		term := fmt.Sprintf("8000000%d", w)
		return Common{Key: fmt.Sprintf("%s|%d", term, i), Date: d, Terminal: term, Merchant: market, Batch: 1, STAN: uint32(i + 1), RRN: fmt.Sprintf("%02d%010d", w, i)}
	}
	tombRef := func(w, i int) TxnRef {
		return TxnRef{Terminal: fmt.Sprintf("8000000%d", w), Batch: 2, STAN: uint32(i + 1)}
	}
	reverseFirst := func(w, i int, d BusinessDate) Result {
		c := common(w, i, d)
		c.Key, c.Batch = fmt.Sprintf("R%s|%s", d, c.Key), 2
		return exec(t, l, &Reversal{Common: c, PAN: panStaff, Original: tombRef(w, i), OriginalKind: KindConsume})
	}
	for w := 0; w < terms; w++ {
		for i := 0; i < each; i++ {
			must(t, exec(t, l, &Consume{Common: common(w, i, oldDay), PAN: panStaff, Amount: 1}))
			if i%4 == 0 {
				reverseFirst(w, i, oldDay)
			}
		}
	}
	results := make([][]Result, terms)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := 0; w < terms; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				c := common(w, i, pToday)
				c.KnownNew = true
				results[w] = append(results[w], must(t, exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 1})))
				if i%4 == 0 {
					if r := reverseFirst(w, i, pToday); !r.NoOp {
						t.Errorf("reversal first %+v", r)
					}
				}
			}
		}(w)
	}
	prunerDone := make(chan struct{})
	go func() {
		defer close(prunerDone)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, _, err := l.Prune(pBefore, 7); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	<-prunerDone
	pruneAll(t, l, pBefore, 7)

	for w := 0; w < terms; w++ {
		for i, res := range results[w] {
			c := common(w, i, pToday)
			raw, _ := get(db, refKey(ref(c)))
			if rv, err := decodeRef(raw); err != nil || rv.TxID != res.TxID || rv.Date != pToday {
				t.Errorf("%s: reference %+v %v, want posting %d", c.Key, rv, err, res.TxID)
			}
			raw, _ = get(db, idemKey(KindConsume, c.Key))
			if rec, err := decodeIdem(raw); err != nil || rec.Result.TxID != res.TxID || rec.Date != pToday {
				t.Errorf("%s: idempotency record %+v %v", c.Key, rec, err)
			}
			if !has(t, db, rrnKey(pToday, c.RRN)) || has(t, db, rrnKey(oldDay, c.RRN)) {
				t.Errorf("%s: RRN entries wrong", c.Key)
			}
			if i%4 == 0 {
				raw, _ = get(db, tombKey(tombRef(w, i)))
				rv, err := decodeRef(raw)
				if mem, ok := l.tomb(tombKey(tombRef(w, i))); err != nil || rv.Date != pToday || !ok || mem != rv {
					t.Errorf("%s: tombstone %+v %v, in memory %+v %v", c.Key, rv, err, mem, ok)
				}
			}
		}
	}
	if want := Fen(100000 - 2*terms*each); mustCard(t, l, panStaff).Balances.Cash != want {
		t.Errorf("cash %s, want %s", mustCard(t, l, panStaff).Balances.Cash, want)
	}
	checkStore(t, db)
}

// TestPruneReopen prunes, closes the store and opens it again: the
// pruned records stay gone, the rest is there and the ledger works on.
func TestPruneReopen(t *testing.T) {
	fs := vfs.NewMem()
	openDB := func() *pebble.DB {
		o := RecommendedPebbleOptions()
		o.FS, o.Logger = fs, quietLogger{}
		db, err := pebble.Open("", o)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := openDB()
	l, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range loadDemo(t).Merchants {
		if err := l.AddMerchant(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range loadDemo(t).Cards {
		if err := l.OpenCard(c, nil); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := consumeOn(t, l, "90000001", 20250315, 100)
	_, oldTomb := reversalFirst(t, l, "90000001", 20250315)
	today, _ := consumeOn(t, l, "90000001", pToday, 200)
	_, todayTomb := reversalFirst(t, l, "90000001", pToday)
	if st := pruneAll(t, l, pBefore, 100); st != (PruneStats{Idempotency: 2, References: 1, RRNs: 1, Tombstones: 1}) {
		t.Errorf("pruned %+v", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB()
	defer db.Close()
	l, err = Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{idemKey(KindConsume, old.Key), refKey(ref(old.Common)), rrnKey(old.Date, old.RRN), tombKey(oldTomb)} {
		if has(t, db, k) {
			t.Errorf("pruned key %q back after reopening", k)
		}
	}
	if _, ok := l.tomb(tombKey(oldTomb)); ok || len(l.tombs) != 1 {
		t.Errorf("%d tombstones loaded, want today's only", len(l.tombs))
	}
	if r := exec(t, l, &today); !r.Replay {
		t.Errorf("retry of today's consume %+v", r)
	}
	must(t, exec(t, l, &Void{Common: pos("90000001", market, pToday), PAN: panStaff, Amount: 200, Original: ref(today.Common)}))
	late := pos("90000001", market, pToday)
	late.Batch, late.STAN = todayTomb.Batch, todayTomb.STAN
	wantDecline(t, exec(t, l, &Consume{Common: late, PAN: panStaff, Amount: 100}), DeclineInvalidTransaction)
	if st, more, err := l.Prune(pBefore, 100); err != nil || more || st != (PruneStats{}) {
		t.Errorf("prune after reopening: %+v %v %v", st, more, err)
	}
	checkStore(t, db)
}

func TestMinLookupRetentionDays(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want int
	}{
		{Options{}, 31},
		{Options{RefundWindowDays: 45}, 46},
		{Options{HoldDays: 60}, 61},
		{Options{RefundWindowDays: 7, HoldDays: 7}, 8},
	} {
		if got := tt.opts.MinLookupRetentionDays(); got != tt.want {
			t.Errorf("%+v: %d, want %d", tt.opts, got, tt.want)
		}
		l, err := Open(memDB(t), tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.MinLookupRetentionDays(); got != tt.want {
			t.Errorf("ledger with %+v: %d, want %d", tt.opts, got, tt.want)
		}
	}
}

// TestIdemRecordVersions: undated records keep their version 1 encoding,
// dated ones are version 2, and a version 2 record without a date is
// refused (one value, one encoding).
func TestIdemRecordVersions(t *testing.T) {
	res := Result{Kind: KindConsume, TxID: 300, AuthCode: "000300"}
	v1 := idemRecord{Fingerprint: 9, Result: res}
	v2 := idemRecord{Fingerprint: 9, Date: day1, Result: res}
	e1, e2 := v1.encode(), v2.encode()
	if e1[0] != recordV1 || e2[0] != recordV2 {
		t.Fatalf("versions %d, %d", e1[0], e2[0])
	}
	for _, tt := range []struct {
		enc      []byte
		date     BusinessDate
		tx       uint64
		decodeOK bool
	}{
		{e1, 0, 300, true},
		{e2, day1, 300, true},
		{append([]byte{recordV2, 9, 0}, e1[2:]...), 0, 0, false}, // version 2, date 0
		{append([]byte{3}, e1[1:]...), 0, 0, false},
	} {
		_, err := decodeIdem(tt.enc)
		date, tx, perr := peekIdem(tt.enc)
		if (err == nil) != tt.decodeOK || (perr == nil) != tt.decodeOK {
			t.Errorf("%x: decode %v, peek %v", tt.enc, err, perr)
			continue
		}
		if tt.decodeOK && (date != tt.date || tx != tt.tx) {
			t.Errorf("%x: peek %s %d, want %s %d", tt.enc, date, tx, tt.date, tt.tx)
		}
	}
}

// TestPruneScanBudget: a call examines at most max(65 536, 16 × max)
// records, so a large index with little to delete is worked off over
// several calls, each returning more=true until the pass is complete.
func TestPruneScanBudget(t *testing.T) {
	l, db := seeded(t, Options{})
	const young = pruneScanFloor + 1000
	b := db.NewBatch()
	rec := idemRecord{Fingerprint: 1, Date: pToday, Result: Result{Kind: KindConsume}}
	val := rec.encode()
	for i := 0; i < young; i++ {
		if err := b.Set(idemKey(KindConsume, fmt.Sprintf("k%06d", i)), val, nil); err != nil {
			t.Fatal(err)
		}
	}
	old := idemRecord{Fingerprint: 1, Date: 20250101, Result: Result{Kind: KindConsume}}
	if err := b.Set(idemKey(KindConsume, "z-last"), old.encode(), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		st   PruneStats
		more bool
	}{
		{PruneStats{}, true},                // 65 536 young records examined
		{PruneStats{Idempotency: 1}, false}, // the other 1000, then the old one
	} {
		st, more, err := l.Prune(pBefore, 1)
		if err != nil || st != want.st || more != want.more {
			t.Errorf("call %d: %+v more=%v %v; want %+v more=%v", i+1, st, more, err, want.st, want.more)
		}
	}
	if has(t, db, idemKey(KindConsume, "z-last")) || !has(t, db, idemKey(KindConsume, "k000000")) {
		t.Error("wrong records deleted")
	}
}

// TestTombFilterHoldsEveryTombstone: every tombstone in memory has its
// filter bit set — after reversals first, after a prune (the filter built
// again from the tombstones left, which clears the pruned ones' bits) and
// after a reopen — so a lookup the filter answers is the map's answer.
func TestTombFilterHoldsEveryTombstone(t *testing.T) {
	l, db := seeded(t, Options{})
	var old, young []TxnRef
	for i := 0; i < 40; i++ {
		_, r := reversalFirst(t, l, fmt.Sprintf("7%07d", i%5), 20250415)
		old = append(old, r)
		_, r = reversalFirst(t, l, fmt.Sprintf("7%07d", i%5), 20250520)
		young = append(young, r)
	}
	holds := func(l *Ledger, when string, want int) {
		t.Helper()
		f := l.tombBits.Load()
		for k, v := range l.tombs {
			if !f.has([]byte(k)) {
				t.Fatalf("%s: tombstone %x not in the filter", when, k)
			}
			if got, ok := l.tomb([]byte(k)); !ok || got != v {
				t.Fatalf("%s: tomb(%x) = %+v %v, want %+v", when, k, got, ok, v)
			}
		}
		set := 0
		for i := range f.bits {
			set += bits.OnesCount64(f.bits[i].Load())
		}
		if len(l.tombs) != want || set > want {
			t.Fatalf("%s: %d tombstones, %d filter bits set, want %d", when, len(l.tombs), set, want)
		}
	}
	holds(l, "written", 80)
	if st := pruneAll(t, l, pBefore, 100); st.Tombstones != 40 {
		t.Fatalf("pruned %+v", st)
	}
	holds(l, "pruned", 40)
	for _, r := range old {
		if _, ok := l.tomb(tombKey(r)); ok {
			t.Errorf("pruned tombstone %s still found", r)
		}
	}
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	holds(l2, "reopened", 40)
	for _, r := range young {
		if _, ok := l2.tomb(tombKey(r)); !ok {
			t.Errorf("tombstone %s lost", r)
		}
	}
}

// TestTombFilterKeptAfterAFewPruned: a prune that drops fewer tombstones
// than an eighth of those left keeps the filter (the pruned one's bit
// stays set, and its lookup goes to the map, which no longer has it); the
// next prune that brings the dropped ones since the filter was built to
// an eighth builds it again without them.
func TestTombFilterKeptAfterAFewPruned(t *testing.T) {
	l, _ := seeded(t, Options{})
	countBits := func() int {
		n := 0
		f := l.tombBits.Load()
		for i := range f.bits {
			n += bits.OnesCount64(f.bits[i].Load())
		}
		return n
	}
	var young []TxnRef
	for i := 0; i < 32; i++ {
		_, r := reversalFirst(t, l, fmt.Sprintf("7%07d", i%5), 20250520)
		young = append(young, r)
	}
	_, old := reversalFirst(t, l, "70000001", 20250415)
	before := countBits()
	if st := pruneAll(t, l, pBefore, 100); st.Tombstones != 1 {
		t.Fatalf("pruned %+v, want 1 tombstone", st)
	}
	if got := countBits(); got != before {
		t.Errorf("filter bits %d after pruning 1 of 33, want the %d before (not built again)", got, before)
	}
	if _, ok := l.tomb(tombKey(old)); ok {
		t.Error("the pruned tombstone is still found")
	}
	for _, r := range young {
		if _, ok := l.tomb(tombKey(r)); !ok {
			t.Errorf("tombstone %s lost", r)
		}
	}

	// Four more old ones: five dropped since the filter was built, at
	// least an eighth of the 32 left.
	for i := 0; i < 4; i++ {
		reversalFirst(t, l, fmt.Sprintf("7%07d", i), 20250415)
	}
	if st := pruneAll(t, l, pBefore, 100); st.Tombstones != 4 {
		t.Fatalf("pruned %+v, want 4 tombstones", st)
	}
	if got := countBits(); got > len(young) {
		t.Errorf("filter bits %d after the filter was built again, want at most %d", got, len(young))
	}
	for _, r := range young {
		if _, ok := l.tomb(tombKey(r)); !ok {
			t.Errorf("tombstone %s lost", r)
		}
	}
}
