package ledger

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// dayBook posts n consumes on each of days business dates from first,
// jumping the posting ids by jump before each day (a book with many days
// in few postings), and returns the ids posted per date.
func dayBook(t testing.TB, l *Ledger, first BusinessDate, days, n int, jump uint64) map[BusinessDate][]uint64 {
	t.Helper()
	ids := map[BusinessDate][]uint64{}
	for i := range days {
		d := first.AddDays(i)
		l.lastTx.Add(jump)
		for range n {
			res := must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, d), PAN: panStaff, Amount: 1, PIN: PINVerified}))
			ids[d] = append(ids[d], res.TxID)
		}
	}
	return ids
}

// scanIDs is what ScanPostings gives for from..to: the ids, in order.
func scanIDs(t testing.TB, r pebble.Reader, from, to BusinessDate) []uint64 {
	t.Helper()
	var got []uint64
	err := ScanPostings(r, from, to, func(p *PostingView) error {
		if p.Date < from || p.Date > to {
			t.Errorf("posting %d of %s in %s..%s", p.TxID, p.Date, from, to)
		}
		got = append(got, p.TxID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// want is every id of ids dated from..to, in order (seed postings
// excluded: they are dated elsewhere).
func want(ids map[BusinessDate][]uint64, from, to BusinessDate) []uint64 {
	var w []uint64
	for d, s := range ids {
		if d >= from && d <= to {
			w = append(w, s...)
		}
	}
	slices.Sort(w)
	return w
}

// walked is the count of posting ids the ranges ScanPostings reads for
// from..to could hold.
func walked(t testing.TB, r pebble.Reader, from, to BusinessDate) uint64 {
	t.Helper()
	rs, err := postingRanges(r, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, s := range rs {
		n += s.hi - s.lo + 1
	}
	return n
}

// A period's postings are read through the day index: exactly the
// period's, and from a span of ids of a few blocks, not the whole book —
// with a posting set dated before the day of the postings around it (a
// cutover straggler), across a restart, and in a book that grew before
// the index was kept.
func TestScanPostingsReadsThePeriod(t *testing.T) {
	const seedDay, first = BusinessDate(20261101), BusinessDate(20261201)
	l, db := seeded(t, Options{Today: func() BusinessDate { return seedDay }})
	ids := dayBook(t, l, first, 10, 3, 10*dayBlock)
	// A straggler: dated the 3rd, posted among the 10th's ids.
	late := must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, first.AddDays(2)), PAN: panStaff, Amount: 1, PIN: PINVerified}))
	ids[first.AddDays(2)] = append(ids[first.AddDays(2)], late.TxID)
	// A day whose postings cross several blocks.
	long := first.AddDays(15)
	for range 4 {
		l.lastTx.Add(dayBlock)
		res := must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, long), PAN: panStaff, Amount: 1, PIN: PINVerified}))
		ids[long] = append(ids[long], res.TxID)
	}

	check := func(what string, r pebble.Reader) {
		t.Helper()
		for _, p := range [][2]int{{0, 0}, {1, 1}, {2, 2}, {0, 9}, {4, 6}, {9, 9}, {15, 15}, {0, 15}} {
			from, to := first.AddDays(p[0]), first.AddDays(p[1])
			if got, w := scanIDs(t, r, from, to), want(ids, from, to); !slices.Equal(got, w) {
				t.Errorf("%s: %s..%s: got %v, want %v", what, from, to, got, w)
			}
		}
		// One day far from the straggler's: its own block only.
		if n := walked(t, r, first.AddDays(5), first.AddDays(5)); n != dayBlock {
			t.Errorf("%s: one day walks %d ids, want %d", what, n, dayBlock)
		}
		// The straggler's day: its block and the straggler's.
		if n := walked(t, r, first.AddDays(2), first.AddDays(2)); n > 8*10*dayBlock+dayBlock {
			t.Errorf("%s: the straggler's day walks %d ids", what, n)
		}
		if got := scanIDs(t, r, first.AddDays(20), first.AddDays(30)); len(got) != 0 {
			t.Errorf("%s: days with no postings: %v", what, got)
		}
		if n := walked(t, r, first.AddDays(20), first.AddDays(30)); n != 0 {
			t.Errorf("%s: days with no postings walk %d ids", what, n)
		}
	}
	check("live", db)

	// A restart loads the spans; postings go on being indexed.
	l2, err := Open(db, Options{Today: func() BusinessDate { return seedDay }})
	if err != nil {
		t.Fatal(err)
	}
	for d, s := range dayBook(t, l2, first.AddDays(10), 2, 2, dayBlock) {
		ids[d] = s
	}
	check("reopened", db)
	if got, w := scanIDs(t, db, first.AddDays(10), first.AddDays(11)), want(ids, first.AddDays(10), first.AddDays(11)); !slices.Equal(got, w) {
		t.Fatalf("after the restart: got %v, want %v", got, w)
	}
	checkStore(t, db)
}

// deleteDayIndex makes db look like a book written before the index was
// kept.
func deleteDayIndex(t testing.TB, db *pebble.DB) {
	t.Helper()
	p := []byte{keyPrefix, tagDay}
	if err := db.DeleteRange(p, prefixEnd(p), pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// A book written before the index was kept: its postings are walked as
// before (all of them, whatever the period), the later ones through the
// index; a version without the index writing after one with it leaves
// postings Open indexes.
func TestScanPostingsOldBook(t *testing.T) {
	const seedDay, first = BusinessDate(20261101), BusinessDate(20261201)
	l, db := seeded(t, Options{Today: func() BusinessDate { return seedDay }})
	ids := dayBook(t, l, first, 3, 2, dayBlock)
	deleteDayIndex(t, db)
	old := l.lastTx.Load()
	if got, w := scanIDs(t, db, first, first.AddDays(2)), want(ids, first, first.AddDays(2)); !slices.Equal(got, w) {
		t.Fatalf("old book: got %v, want %v", got, w)
	}

	l2, err := Open(db, Options{Today: func() BusinessDate { return seedDay }})
	if err != nil {
		t.Fatal(err)
	}
	for d, s := range dayBook(t, l2, first.AddDays(3), 2, 2, dayBlock) {
		ids[d] = s
	}
	for _, p := range [][2]int{{0, 0}, {0, 4}, {3, 3}, {4, 4}} {
		from, to := first.AddDays(p[0]), first.AddDays(p[1])
		if got, w := scanIDs(t, db, from, to), want(ids, from, to); !slices.Equal(got, w) {
			t.Errorf("%s..%s: got %v, want %v", from, to, got, w)
		}
	}
	// The old postings are walked, the new ones by their day's block.
	if n := walked(t, db, first.AddDays(4), first.AddDays(4)); n != old+1+dayBlock { // ids 0..old, then a block
		t.Errorf("a new day walks %d ids, want the %d old ones and one block", n, old)
	}

	// An older version writes two more days without the index...
	l2.lastTx.Add(3 * dayBlock)
	before := l2.lastTx.Load()
	more := dayBook(t, l2, first.AddDays(5), 2, 2, 3*dayBlock)
	b := db.NewBatch()
	for d := range more {
		ids[d] = more[d]
		if err := b.Delete(dayKey(d), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if got := scanIDs(t, db, first.AddDays(5), first.AddDays(6)); len(got) != 0 {
		t.Fatalf("unindexed postings found before Open: %v (test setup)", got)
	}
	// The offline check sees them outside the index ...
	if r, err := Check(db); err != nil || r.OK() || !strings.Contains(fmt.Sprint(r.Violations), "outside its date's day index span") {
		t.Fatalf("check of unindexed postings: %v %v", r.Violations, err)
	}
	// ... and Open indexes them.
	if _, err := Open(db, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]int{{5, 5}, {6, 6}, {0, 6}} {
		from, to := first.AddDays(p[0]), first.AddDays(p[1])
		if got, w := scanIDs(t, db, from, to), want(ids, from, to); !slices.Equal(got, w) {
			t.Errorf("after Open: %s..%s: got %v, want %v", from, to, got, w)
		}
	}
	if ids[first.AddDays(5)][0] <= before {
		t.Fatalf("test setup: ids did not move on")
	}
	checkStore(t, db)
}

// The span codecs refuse what they did not write.
func TestDaySpanCodec(t *testing.T) {
	s := idSpan{3 * dayBlock, 5*dayBlock - 1}
	got, err := decodeSpan(s.encode())
	if err != nil || got != s {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, b := range [][]byte{nil, {2, 1, 1}, {1, 5, 4}, append(s.encode(), 0), {1, 0x80}} {
		if _, err := decodeSpan(b); err == nil {
			t.Errorf("decodeSpan(%x) accepted", b)
		}
	}
	if id, err := decodeFrom(encodeFrom(12345)); err != nil || id != 12345 {
		t.Fatalf("start mark: %d, %v", id, err)
	}
	if _, err := decodeFrom([]byte{1}); err == nil {
		t.Error("a start mark without its id accepted")
	}
}

// BenchmarkSettlementScan reads one business day's postings from a book
// of many days (5 000 postings a day): through the day index, and as
// before it (the same book with its index deleted: the whole book walked).
//
//	go test -run '^$' -bench SettlementScan -benchtime 20x -count 3 ./ledger/
func BenchmarkSettlementScan(b *testing.B) {
	const first, perDay = BusinessDate(20260101), 5000
	for _, days := range []int{20, 80} {
		l, db := seeded(b, Options{Today: func() BusinessDate { return first }})
		for i := range days {
			d := first.AddDays(i)
			bt := db.NewBatch()
			ps := make([]*posting, 0, perDay)
			for range perDay {
				p := &posting{TxID: l.lastTx.Add(1), Kind: KindConsume, Date: d, Terminal: "10000001", Merchant: canteen,
					Batch: 1, STAN: 1, RRN: "000000000001", PAN: panStaff, Amount: 100,
					Legs: []leg{{CardCash(panStaff), -100}, {MerchantPayable(canteen), 100}}}
				if err := bt.Set(postKey(p.TxID), p.encode(), nil); err != nil {
					b.Fatal(err)
				}
				ps = append(ps, p)
			}
			done, err := l.days.stage(bt, ps)
			if err != nil {
				b.Fatal(err)
			}
			err = bt.Commit(pebble.NoSync)
			if done != nil {
				done(err == nil)
			}
			bt.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		day := first.AddDays(days / 2)
		run := func(b *testing.B) {
			for b.Loop() {
				n := 0
				if err := ScanPostings(db, day, day, func(*PostingView) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != perDay {
					b.Fatalf("%d postings, want %d", n, perDay)
				}
			}
		}
		b.Run(fmt.Sprintf("days-%d/indexed", days), run)
		deleteDayIndex(b, db)
		b.Run(fmt.Sprintf("days-%d/whole-book", days), run)
	}
}

// Posting sets of two dates committed concurrently, the ids crossing
// blocks: every one is found under its date.
func TestDayIndexConcurrent(t *testing.T) {
	const seedDay, d = BusinessDate(20261101), BusinessDate(20261201)
	l, db := seeded(t, Options{Today: func() BusinessDate { return seedDay }})
	var mu sync.Mutex
	ids := map[BusinessDate][]uint64{}
	var wg sync.WaitGroup
	for g, pan := range []string{panStudent, panStaff, panVisitor, panStudent, panStaff, panVisitor} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			term := fmt.Sprintf("2000000%d", g)
			for i := range 40 {
				date := d + BusinessDate((i+g)%2)
				if i%10 == 0 {
					l.lastTx.Add(dayBlock / 3)
				}
				c := Common{Key: fmt.Sprintf("%s|%d", term, i), Date: date, Terminal: term, Merchant: canteen,
					Batch: 1, STAN: uint32(i + 1), RRN: fmt.Sprintf("%06d%06d", g, i)}
				b := l.db.NewBatch()
				res, err := l.Execute(&Consume{Common: c, PAN: pan, Amount: 1, PIN: PINVerified}, b,
					func(Result) error { return b.Commit(pebble.NoSync) })
				b.Close()
				if err != nil || !res.Approved() {
					t.Errorf("consume: %v %s", err, res.Decline)
					return
				}
				mu.Lock()
				ids[date] = append(ids[date], res.TxID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, p := range [][2]BusinessDate{{d, d}, {d + 1, d + 1}, {d, d + 1}} {
		if got, w := scanIDs(t, db, p[0], p[1]), want(ids, p[0], p[1]); !slices.Equal(got, w) {
			t.Errorf("%s..%s: got %d ids, want %d", p[0], p[1], len(got), len(w))
		}
	}
}
