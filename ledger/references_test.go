package ledger

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// testRefs is a caller's reference index as the switch keeps one: a
// record per request, written into the request's own batch, keyed by
// its reference and date ('x' terminal/batch/stan/date → txid), so that
// one reference carries a record per date it was used on.
type testRefs struct{}

func testRefsPrefix(ref TxnRef) []byte { return []byte("x" + ref.String() + "/") }

func (testRefs) Reference(r pebble.Reader, ref TxnRef) (uint64, error) {
	var newest uint64
	err := scan(r, testRefsPrefix(ref), func(_, v []byte) error {
		newest = max(newest, binary.BigEndian.Uint64(v))
		return nil
	})
	return newest, err
}

func (testRefs) BatchReferences(r pebble.Reader, terminal string, batch uint32, fn func(stan uint32, txid uint64) error) error {
	newest := map[uint32]uint64{}
	err := scan(r, []byte(fmt.Sprintf("x%s/%06d/", terminal, batch)), func(k, v []byte) error {
		var stan uint32
		if _, err := fmt.Sscanf(string(k[len(fmt.Sprintf("x%s/%06d/", terminal, batch)):]), "%06d/", &stan); err != nil {
			return err
		}
		newest[stan] = max(newest[stan], binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return err
	}
	for s, id := range newest {
		if err := fn(s, id); err != nil {
			return err
		}
	}
	return nil
}

// execKept runs req as the switch runs a POS request: with
// ReferenceKeptByCaller, its record (the reference's txid) written into
// the same batch as the ledger's writes, under the ledger's locks.
func execKept(t testing.TB, l *Ledger, req Request) Result {
	t.Helper()
	res, err := execKeptErr(l, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Kind(), err)
	}
	return res
}

func execKeptErr(l *Ledger, req Request) (Result, error) {
	c := req.common()
	c.ReferenceKeptByCaller = true
	b := l.db.NewBatch()
	defer b.Close()
	res, err := l.Execute(req, b, func(r Result) error {
		if r.Reference != 0 {
			k := append(testRefsPrefix(TxnRef{c.Terminal, c.Batch, c.STAN}), fmt.Sprint(c.Date)...)
			if err := b.Set(k, binary.BigEndian.AppendUint64(nil, r.Reference), nil); err != nil {
				return err
			}
		}
		return b.Commit(pebble.Sync)
	})
	return res, err
}

// keptLedger is a seeded ledger using testRefs as the caller's index.
func keptLedger(t testing.TB) (*Ledger, *pebble.DB) {
	l, db := seeded(t, Options{})
	l.UseReferences(testRefs{})
	return l, db
}

func hasRefRecord(t testing.TB, db *pebble.DB, r TxnRef) bool {
	t.Helper()
	raw, err := get(db, refKey(r))
	if err != nil {
		t.Fatal(err)
	}
	return raw != nil
}

// TestReferenceKeptByCaller: a POS consume writes no reference record
// and names its posting set in Result.Reference; its void, a second void,
// a refund, batch totals and PostingByReference find it through the
// caller's index.
func TestReferenceKeptByCaller(t *testing.T) {
	l, db := keptLedger(t)
	c := pos("10000001", canteen, day1)
	res := must(t, execKept(t, l, &Consume{Common: c, PAN: panStaff, Amount: 1000}))
	if res.Reference == 0 || res.Reference != res.TxID {
		t.Fatalf("consume: Reference %d, TxID %d", res.Reference, res.TxID)
	}
	if hasRefRecord(t, db, ref(c)) {
		t.Fatal("a consume with ReferenceKeptByCaller wrote 'l r'")
	}
	if p, ok, err := PostingByReference(db, testRefs{}, ref(c)); err != nil || !ok || p.TxID != res.TxID {
		t.Fatalf("PostingByReference: %+v %v %v", p, ok, err)
	}
	if _, ok, _ := PostingByReference(db, nil, ref(c)); ok {
		t.Fatal("PostingByReference without the caller's index found a kept reference")
	}
	before := mustCard(t, l, panStaff).Balances

	// Without the flag the reference record is written, as before.
	g := pos("10000001", canteen, day1)
	gr := must(t, exec(t, l, &Consume{Common: g, PAN: panStaff, Amount: 100}))
	if gr.Reference != 0 || !hasRefRecord(t, db, ref(g)) {
		t.Fatalf("consume without the flag: Reference %d, 'l r' written %v", gr.Reference, hasRefRecord(t, db, ref(g)))
	}

	v := pos("10000001", canteen, day1)
	vr := must(t, execKept(t, l, &Void{Common: v, PAN: panStaff, Amount: 1000, Original: ref(c)}))
	if vr.Reference != vr.TxID || hasRefRecord(t, db, ref(v)) {
		t.Fatalf("void: Reference %d TxID %d", vr.Reference, vr.TxID)
	}
	if got := mustCard(t, l, panStaff).Balances; got.Cash != before.Cash+1000-100 {
		t.Fatalf("cash after void %d, want %d", got.Cash, before.Cash+1000-100)
	}
	again := pos("10000001", canteen, day1)
	wantDecline(t, execKept(t, l, &Void{Common: again, PAN: panStaff, Amount: 1000, Original: ref(c)}), DeclineInvalidTransaction)

	// A refund of another kept consume, by its resolved reference.
	r := pos("10000001", canteen, day1)
	r.RRNIndexedByCaller = true // the refund finds it by reference alone
	must(t, execKept(t, l, &Consume{Common: r, PAN: panStaff, Amount: 2000}))
	must(t, execKept(t, l, &Refund{Common: pos("10000001", canteen, day1), Amount: 500,
		OriginalRRN: r.RRN, OriginalDate: day1, OriginalRef: ref(r)}))

	// Reversal of the void re-applies the consume; the reversal itself
	// is never a reference.
	rv := execKept(t, l, &Reversal{Common: v, PAN: panStaff, Original: ref(v), OriginalKind: KindVoid})
	if !rv.Approved() || rv.NoOp || rv.Reference != 0 {
		t.Fatalf("reversal of the void: %+v", rv)
	}

	got, err := l.BatchTotals("10000001", 1)
	if err != nil {
		t.Fatal(err)
	}
	// Debits: c (voided, void reversed), g, r; credits: the refund.
	if want := (Totals{DebitCount: 3, DebitAmount: 3100, CreditCount: 1, CreditAmount: 500}); got != want {
		t.Errorf("batch totals %+v, want %+v", got, want)
	}
	checkStore(t, db)
}

// lyingRefs names one posting set for every reference.
type lyingRefs struct {
	testRefs
	id uint64
}

func (f lyingRefs) Reference(pebble.Reader, TxnRef) (uint64, error) { return f.id, nil }

func (f lyingRefs) BatchReferences(_ pebble.Reader, _ string, _ uint32, fn func(uint32, uint64) error) error {
	for s := uint32(0); s < 4; s++ {
		if err := fn(s, f.id); err != nil {
			return err
		}
	}
	return nil
}

// TestReferenceVerified: an id the caller's index names is taken only if
// its posting set is of that very reference. Another terminal's
// transaction, another STAN's, a reversal's posting set or an id that
// names nothing is an unknown original: a void is declined 25 (as one
// with no record at all), a reversal is an approved no-op that leaves a
// tombstone, and batch totals do not count it.
func TestReferenceVerified(t *testing.T) {
	l, db := keptLedger(t)
	other := pos("10000002", canteen, day1)
	oth := must(t, execKept(t, l, &Consume{Common: other, PAN: panStaff, Amount: 700}))
	same := pos("10000001", canteen, day1)
	sam := must(t, execKept(t, l, &Consume{Common: same, PAN: panStaff, Amount: 800}))
	rc := pos("10000001", canteen, day1)
	must(t, execKept(t, l, &Consume{Common: rc, PAN: panStaff, Amount: 900}))
	rev := must(t, execKept(t, l, &Reversal{Common: rc, PAN: panStaff, Original: ref(rc), OriginalKind: KindConsume}))
	orig := pos("10000001", canteen, day1) // never executed: the void names it
	for _, tc := range []struct {
		name string
		id   uint64
	}{
		{"another terminal's consume", oth.TxID},
		{"another STAN's consume", sam.TxID},
		{"a reversal's posting set", rev.TxID},
		{"an id that names nothing", 1 << 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.UseReferences(lyingRefs{id: tc.id})
			defer l.UseReferences(testRefs{})
			cash := mustCard(t, l, panStaff).Balances.Cash
			wantDecline(t, execKept(t, l, &Void{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 700, Original: ref(orig)}), DeclineOriginalNotFound)
			if got := mustCard(t, l, panStaff).Balances.Cash; got != cash {
				t.Fatalf("cash %d after a declined void, want %d", got, cash)
			}
			if _, ok, err := PostingByReference(db, lyingRefs{id: tc.id}, ref(orig)); ok || err != nil {
				t.Fatalf("PostingByReference took it: %v %v", ok, err)
			}
		})
	}
	l.UseReferences(lyingRefs{id: oth.TxID})
	if got, err := l.BatchTotals("10000001", 1); err != nil || got != (Totals{}) {
		// STANs 0..3 are not those of 10000001's transactions (pos hands
		// out higher ones), and the one id is another terminal's.
		t.Fatalf("batch totals with a lying index: %+v %v", got, err)
	}
	// A reversal told another terminal's id: unknown original, a no-op
	// whose tombstone refuses the original when it comes.
	late := pos("10000001", canteen, day1)
	res := execKept(t, l, &Reversal{Common: late, PAN: panStaff, Original: ref(late), OriginalKind: KindConsume})
	if !res.Approved() || !res.NoOp {
		t.Fatalf("reversal told a wrong id: %+v", res)
	}
	l.UseReferences(testRefs{})
	wantDecline(t, execKept(t, l, &Consume{Common: late, PAN: panStaff, Amount: 100}), DeclineInvalidTransaction)
	checkStore(t, db)
}

// TestReferenceOldLayout: an original committed before references were
// kept by the caller (an 'l r' record, nothing in the caller's index) is
// still voided, reversed and refunded; and where both name a posting set
// for one reference, the newer wins.
func TestReferenceOldLayout(t *testing.T) {
	l, db := keptLedger(t)
	c := pos("10000001", canteen, day1)
	must(t, exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 1000})) // old layout: 'l r'
	must(t, execKept(t, l, &Void{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 1000, Original: ref(c)}))

	r := pos("10000001", canteen, day1)
	must(t, exec(t, l, &Consume{Common: r, PAN: panStaff, Amount: 300}))
	res := execKept(t, l, &Reversal{Common: r, PAN: panStaff, Original: ref(r), OriginalKind: KindConsume})
	if !res.Approved() || res.NoOp {
		t.Fatalf("reversal of an old-layout consume: %+v", res)
	}

	f := pos("10000001", canteen, day1)
	f.RRNIndexedByCaller = true // a POS original of the old layout: 'l r', no 'l n'
	must(t, exec(t, l, &Consume{Common: f, PAN: panStaff, Amount: 400}))
	must(t, execKept(t, l, &Refund{Common: pos("10000001", canteen, day1), Amount: 400,
		OriginalRRN: f.RRN, OriginalDate: day1, OriginalRef: ref(f)}))

	// One reference used on day 1 in the old layout and on day 2 kept by
	// the caller: the void of day 2 finds day 2's consume.
	day2 := day1.AddDays(1)
	u := pos("10000001", canteen, day1)
	must(t, exec(t, l, &Consume{Common: u, PAN: panStaff, Amount: 111}))
	u2 := u
	u2.Date, u2.Key = day2, u.Key+"/2"
	n := must(t, execKept(t, l, &Consume{Common: u2, PAN: panStaff, Amount: 222}))
	v := pos("10000001", canteen, day2)
	vr := must(t, execKept(t, l, &Void{Common: v, PAN: panStaff, Amount: 222, Original: ref(u2)}))
	if p, _, _ := PostingByID(db, vr.TxID); p.Link != n.TxID {
		t.Fatalf("void linked to %d, want the newer consume %d", p.Link, n.TxID)
	}
	// And the other way round: kept on day 2, then written with 'l r' on
	// day 3 (a caller that does not keep it): the newer 'l r' wins.
	day3 := day2.AddDays(1)
	u3 := u
	u3.Date, u3.Key = day3, u.Key+"/3"
	o := must(t, exec(t, l, &Consume{Common: u3, PAN: panStaff, Amount: 333}))
	if p, ok, err := PostingByReference(db, testRefs{}, ref(u3)); err != nil || !ok || p.TxID != o.TxID {
		t.Fatalf("PostingByReference: %d %v %v, want %d", p.TxID, ok, err, o.TxID)
	}
	checkStore(t, db)
}

// TestReferenceConcurrentVoids: voids of one kept original race (each
// finds it through the caller's index); exactly one is approved, the
// card is credited once. Run with -race.
func TestReferenceConcurrentVoids(t *testing.T) {
	l, db := keptLedger(t)
	const n = 8
	for round := 0; round < 4; round++ {
		c := pos("10000001", canteen, day1)
		must(t, execKept(t, l, &Consume{Common: c, PAN: panStaff, Amount: 1000}))
		cash := mustCard(t, l, panStaff).Balances.Cash
		voids := make([]Common, n)
		for i := range voids {
			voids[i] = pos("10000001", canteen, day1)
		}
		var wg sync.WaitGroup
		results := make([]Result, n)
		errs := make([]error, n)
		for i := range voids {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i], errs[i] = execKeptErr(l, &Void{Common: voids[i], PAN: panStaff, Amount: 1000, Original: ref(c)})
			}(i)
		}
		wg.Wait()
		approved := 0
		for i, r := range results {
			switch {
			case errs[i] != nil:
				t.Fatal(errs[i])
			case r.Approved():
				approved++
			case r.Decline != DeclineInvalidTransaction:
				t.Fatalf("void: %s, want approved or %s", r.Decline, DeclineInvalidTransaction)
			}
		}
		if approved != 1 {
			t.Fatalf("round %d: %d voids approved, want 1", round, approved)
		}
		if got := mustCard(t, l, panStaff).Balances.Cash; got != cash+1000 {
			t.Fatalf("round %d: cash %d, want %d", round, got, cash+1000)
		}
	}
	// A reversal racing its own original: either the reversal finds the
	// committed consume and undoes it, or it comes first and the consume
	// is refused; never a consume standing after an approved reversal.
	for round := 0; round < 8; round++ {
		c := pos("10000001", canteen, day1)
		cash := mustCard(t, l, panStaff).Balances
		var wg sync.WaitGroup
		wg.Add(2)
		var cons, rev Result
		var cerr, rerr error
		go func() { defer wg.Done(); cons, cerr = execKeptErr(l, &Consume{Common: c, PAN: panStaff, Amount: 500}) }()
		go func() {
			defer wg.Done()
			rev, rerr = execKeptErr(l, &Reversal{Common: c, PAN: panStaff, Original: ref(c), OriginalKind: KindConsume})
		}()
		wg.Wait()
		if cerr != nil || rerr != nil {
			t.Fatal(cerr, rerr)
		}
		if !rev.Approved() {
			t.Fatalf("reversal: %s", rev.Decline)
		}
		if cons.Approved() && rev.NoOp {
			t.Fatalf("round %d: the consume stands after its reversal", round)
		}
		if got := mustCard(t, l, panStaff).Balances; got != cash {
			t.Fatalf("round %d: balances %+v, want %+v", round, got, cash)
		}
	}
	checkStore(t, db)
}

// TestReferenceNeeded: a pre-auth's reference outlives the window while
// its hold is open past it, as the ledger's own reference record does.
func TestReferenceNeeded(t *testing.T) {
	l, _ := keptLedger(t)
	c := pos("10000001", canteen, day1)
	pa := must(t, execKept(t, l, &PreAuth{Common: c, PAN: panStaff, Amount: 1000}))
	co := must(t, execKept(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 10}))
	for _, tc := range []struct {
		id     uint64
		before BusinessDate
		want   bool
	}{
		{pa.TxID, day1.AddDays(5), true},   // hold expires day1 + 30
		{pa.TxID, day1.AddDays(31), false}, // expired before the cut
		{co.TxID, day1.AddDays(5), false},
		{1 << 40, day1, false},
	} {
		if got, err := l.ReferenceNeeded(tc.id, tc.before); err != nil || got != tc.want {
			t.Errorf("ReferenceNeeded(%d, %d) = %v, %v; want %v", tc.id, tc.before, got, err, tc.want)
		}
	}
	must(t, execKept(t, l, &PreAuthCancel{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 1000, AuthCode: pa.AuthCode}))
	if got, _ := l.ReferenceNeeded(pa.TxID, day1.AddDays(5)); got {
		t.Error("a cancelled pre-auth's reference is still needed")
	}
}
