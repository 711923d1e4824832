package journal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// rrnKeys lists the RRN index keys stored ('j r').
func rrnKeys(t *testing.T, db *pebble.DB) []string {
	t.Helper()
	keys, _ := keysWithPrefix(t, db, prefixJournal)
	var out []string
	for _, k := range keys {
		if k[1] == spaceRRN {
			out = append(out, fmt.Sprintf("%q", k))
		}
	}
	return out
}

func pairAt(t *testing.T, j *Journal, db *pebble.DB, r *Reservation, date, stan, reqRRN, respRRN string) uint64 {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	s1, _, err := j.AppendPairAt(b, r, entryFor(date, "10000001", "000001", stan, reqRRN, In), entryFor(date, "10000001", "000001", stan, respRRN, Out))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return s1
}

// TestSeqRRN: the RRN a sequence names is its day of the year and its
// counter (docs/pos-dialect.md, field 37), and back.
func TestSeqRRN(t *testing.T) {
	for _, c := range []struct {
		date string
		c    uint64
		rrn  string
	}{
		{"20261204", 1, "338000000001"},
		{"20240101", 999_999_999, "001999999999"},
		{"20241231", 12, "366000000012"}, // a leap year's last day
		{"20251231", 12, "365000000012"},
		{"20260301", 10_000, "060000010000"},
	} {
		d, _ := dayNumber(c.date)
		tm, _ := time.Parse("20060102", c.date)
		if dayOfYear(d) != tm.YearDay() || dayDate(d) != c.date {
			t.Errorf("%s: day of year %d date %s, want %d", c.date, dayOfYear(d), dayDate(d), tm.YearDay())
		}
		seq := sq(c.date, c.c)
		if got := seqRRN(seq); got != c.rrn {
			t.Errorf("seqRRN(%s, %d) = %q, want %q", c.date, c.c, got, c.rrn)
		}
		if s, ok := rrnSeq(c.rrn, d); !ok || s != seq || !namesRRN(seq, c.rrn) {
			t.Errorf("rrnSeq(%q, %s) = %d %v, want %d", c.rrn, c.date, s, ok, seq)
		}
	}
	d, _ := dayNumber("20261204")
	for _, rrn := range []string{"337000000001", "338000000000", "33800000001", "33800000000x", "3380000000001"} {
		if s, ok := rrnSeq(rrn, d); ok {
			t.Errorf("rrnSeq(%q) = %d, want none", rrn, s)
		}
	}
	for _, seq := range []uint64{sq("20261204", 0), sq("20261204", rrnSpan), 5} {
		if r := seqRRN(seq); r != "" {
			t.Errorf("seqRRN(%d) = %q, want none", seq, r)
		}
	}
}

// TestReserveRRN: a reserved pair is journaled at its sequences with no
// RRN index key and found by its RRN; an RRN that its entry's sequence
// does not name (a refund's original, a foreign one, a reservation used
// twice or on another day) is indexed and found; the first use of a day
// starts at the caller's floor; after a crash (everything not synced
// lost) the counter continues above every sequence handed out, so no
// RRN is issued twice.
func TestReserveRRN(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db := openDB(t, fs)
	const day, next = "20261204", "20261205"
	floor := func(date string) (uint64, error) {
		if date == next {
			return 500, nil
		}
		return 0, nil
	}
	j := openJournal(t, db, Options{CounterFloor: floor})

	r, err := reserve(j, day)
	if err != nil || r.Seq() != sq(day, 1) || r.RRN() != "338000000001" {
		t.Fatalf("first reservation: %d %q %v", r.Seq(), r.RRN(), err)
	}
	rrn := r.RRN()
	// The pair at the reservation, the RRN in the response: no RRN key.
	if s := pairAt(t, j, db, r, day, "000001", "", rrn); s != r.Seq() {
		t.Fatalf("pair at %d, want the reserved %d", s, r.Seq())
	}
	if k := rrnKeys(t, db); len(k) != 0 {
		t.Fatalf("RRN keys %v, want none", k)
	}
	for _, date := range []string{day, ""} {
		if es, err := j.ByRRN(rrn, date, 10); err != nil || stans(es) != "1:000001 2:000001" {
			t.Fatalf("by RRN on %q: %q %v", date, stans(es), err)
		}
	}
	if es, err := j.ByRRN(rrn, next, 10); err != nil || len(es) != 0 {
		t.Fatalf("by RRN on another day: %q %v", stans(es), err)
	}

	// A refund: its request names the original's RRN, its response has an
	// RRN of its own from elsewhere (a gateway's); both indexed.
	if s := pairAt(t, j, db, nil, day, "000002", rrn, "123456789012"); s != sq(day, 3) {
		t.Fatalf("refund at %d", s)
	}
	if k := rrnKeys(t, db); len(k) != 2 {
		t.Fatalf("RRN keys %v, want the original's and the foreign one", k)
	}
	if es, err := j.ByRRN(rrn, "", 10); err != nil || stans(es) != "1:000001 2:000001 3:000002 4:000002" {
		t.Fatalf("original and refund by RRN: %q %v", stans(es), err)
	}
	if es, err := j.ByRRN(rrn, day, 3); err != nil || stans(es) != "1:000001 2:000001 3:000002" {
		t.Fatalf("by RRN, limit 3: %q %v", stans(es), err)
	}
	if es, err := j.ByRRN("123456789012", "", 10); err != nil || stans(es) != "3:000002 4:000002" {
		t.Fatalf("foreign RRN: %q %v", stans(es), err)
	}

	// The reservation used again (an answer journaled after a failed
	// commit) takes new sequences and indexes the RRN.
	if s := pairAt(t, j, db, r, day, "000003", "", rrn); s != sq(day, 5) {
		t.Fatalf("second use of a reservation at %d, want 5", s)
	}
	// One of another day: new sequences, indexed.
	r2, err := reserve(j, day)
	if err != nil || r2.Seq() != sq(day, 7) {
		t.Fatalf("second reservation %d %v", r2.Seq(), err)
	}
	if s := pairAt(t, j, db, r2, next, "000004", "", r2.RRN()); seqDay(s) != seqDay(sq(next, 0)) {
		t.Fatalf("reservation of the 4th used on the 5th: %d", s)
	}
	if es, err := j.ByRRN(rrn, day, 10); err != nil || stans(es) != "1:000001 2:000001 3:000002 4:000002 5:000003 6:000003" {
		t.Fatalf("by RRN after a second use: %q %v", stans(es), err)
	}
	if es, err := j.ByRRN(r2.RRN(), "", 10); err != nil || stans(es) != "500:000004 501:000004" {
		t.Fatalf("RRN of the 4th journaled on the 5th: %q %v", stans(es), err)
	}
	// The 5th began at its floor.
	r3, err := reserve(j, next)
	if err != nil || r3.RRN() != "339000000502" {
		t.Fatalf("reservation on the 5th: %q %v", r3.RRN(), err)
	}

	// Reserved, never committed (the RRN went out on a link, then the
	// process died), many blocks on; an entry committed without sync.
	var last uint64
	for i := 0; i < 3*seqBlock/2; i++ {
		r, err := reserve(j, day)
		if err != nil {
			t.Fatal(err)
		}
		last = r.Seq()
	}
	b := db.NewBatch()
	if _, _, err := j.AppendPair(b, entryFor(day, "10000001", "000001", "000009", "", In), entryFor(day, "10000001", "000001", "000009", "", Out)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if j.LastSeq() != seqCounter(last)+3 {
		t.Fatalf("LastSeq %d, want %d", j.LastSeq(), seqCounter(last)+3)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	db.Close()
	db = openDB(t, crashed)
	defer db.Close()
	j = openJournal(t, db, Options{CounterFloor: floor})
	r4, err := reserve(j, day)
	if err != nil || r4.Seq() <= last+1 {
		t.Fatalf("after the crash: %d %v, want above %d", r4.Seq(), err, last+1)
	}
	r5, err := reserve(j, next)
	if err != nil || r5.Seq() <= r3.Seq() {
		t.Fatalf("after the crash, the 5th: %d %v, want above %d", r5.Seq(), err, r3.Seq())
	}
	if es, err := j.ByRRN(rrn, day, 10); err != nil || len(es) != 6 {
		t.Fatalf("synced pairs after the crash: %q %v", stans(es), err)
	}
}

// TestReserveRRNConcurrent: reservations and appends from many
// goroutines get distinct sequences, every reserved pair is found by its
// RRN with no index key. Run with -race.
func TestReserveRRNConcurrent(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	const day, workers, each = "20261204", 8, 800 // crosses blocks
	var (
		mu   sync.Mutex
		seen = map[uint64]bool{}
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				b := db.NewBatch()
				stan := fmt.Sprintf("%06d", i)
				term := fmt.Sprintf("T%07d", w)
				var r *Reservation
				rrn := ""
				if i%4 != 0 {
					res, err := reserve(j, day)
					if err != nil {
						errs <- err
						return
					}
					r, rrn = res, res.RRN()
				}
				s1, _, err := j.AppendPairAt(b, r, entryFor(day, term, "000001", stan, "", In), entryFor(day, term, "000001", stan, rrn, Out))
				if err := errors.Join(err, b.Commit(pebble.NoSync), b.Close()); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if seen[s1] {
					mu.Unlock()
					errs <- fmt.Errorf("sequence %d twice", s1)
					return
				}
				seen[s1] = true
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if k := rrnKeys(t, db); len(k) != 0 {
		t.Fatalf("%d RRN keys, want none", len(k))
	}
	n := 0
	if err := j.ByBusinessDay(day, func(e *Entry) bool {
		if e.RRN != "" {
			if es, err := j.ByRRN(e.RRN, day, 10); err != nil || len(es) != 2 || es[0].Seq != e.Seq-1 {
				t.Fatalf("RRN %s: %q %v", e.RRN, stans(es), err)
			}
			n++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if n != workers*each*3/4 {
		t.Fatalf("%d reserved pairs, want %d", n, workers*each*3/4)
	}
}

// TestSharedCounterDays: a data directory of the layout before per-day
// counters (sequences carrying their day, one counter shared by all
// days, an RRN key for every RRN). Its days continue above their stored
// counters; a day whose counters the shared counter took within a block
// of the RRN's 9 digits names no RRNs (ErrRRNNotNamed, also after a
// reopen) and indexes them; a new day does; an old pair whose RRN
// happens to be the one its sequence names is read once and pruned with
// its key; a named day used up is ErrSeqExhausted.
func TestSharedCounterDays(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	const low, high, fresh = "20261202", "20261203", "20261204"
	old := openJournal(t, db, Options{legacyLayout: layoutShared})
	// Counter 1 on the 2nd (day 336) with RRN 336000000001: its own.
	pairAt(t, old, db, nil, low, "000001", "", "336000000001")
	old.shared.Store(rrnSpan - seqBlock - 2) // the 3rd: 999 989 999, 999 990 000
	pairAt(t, old, db, nil, high, "000002", "", "337000000077")

	j := openJournal(t, db, Options{})
	if es, err := j.ByRRN("336000000001", "", 10); err != nil || stans(es) != "1:000001 2:000001" {
		t.Fatalf("old pair whose RRN its sequence names: %q %v", stans(es), err)
	}
	if _, err := reserve(j, high); !errors.Is(err, ErrRRNNotNamed) {
		t.Fatalf("reserve on a day past the RRN's digits: %v, want ErrRRNNotNamed", err)
	}
	if s := pairAt(t, j, db, nil, high, "000003", "", "337000000078"); s != sq(high, rrnSpan-seqBlock+1) {
		t.Fatalf("pair on the 3rd at %d", seqCounter(s))
	}
	if es, err := j.ByRRN("337000000078", high, 10); err != nil || len(es) != 2 {
		t.Fatalf("RRN on the 3rd: %q %v", stans(es), err)
	}
	if s := pairAt(t, j, db, nil, low, "000004", "", ""); s != sq(low, 3) {
		t.Fatalf("pair on the 2nd at %d, want 3", seqCounter(s))
	}
	if r, err := reserve(j, fresh); err != nil || r.RRN() != "338000000001" {
		t.Fatalf("reserve on a new day: %q %v", r.RRN(), err)
	}
	j = openJournal(t, db, Options{})
	if _, err := reserve(j, high); !errors.Is(err, ErrRRNNotNamed) {
		t.Fatalf("after reopening: %v, want ErrRRNNotNamed", err)
	}
	if r, err := reserve(j, low); err != nil || seqCounter(r.Seq()) != 3+seqBlock {
		t.Fatalf("the 2nd after reopening: %d %v", seqCounter(r.Seq()), err)
	}
	if st, _, err := j.PruneDays(high, 100); err != nil || st.Entries != 4 {
		t.Fatalf("prune the 2nd: %+v %v", st, err)
	}
	for _, k := range rrnKeys(t, db) {
		if k != fmt.Sprintf("%q", appendSeq(rrnPrefix(nil, "337000000077"), sq(high, rrnSpan-seqBlock-1))) &&
			k != fmt.Sprintf("%q", appendSeq(rrnPrefix(nil, "337000000078"), sq(high, rrnSpan-seqBlock+1))) {
			t.Errorf("RRN key %s left", k)
		}
	}

	// A named day used up.
	j = openJournal(t, db, Options{CounterFloor: func(string) (uint64, error) { return rrnSpan - seqBlock - 4, nil }})
	const full = "20261210"
	n := 0
	for ; ; n++ {
		r, err := reserve(j, full)
		if errors.Is(err, ErrSeqExhausted) {
			break
		}
		if err != nil || n > seqBlock {
			t.Fatalf("reservation %d: %v", n, err)
		}
		if r.RRN()[3:] == "000000000" || len(r.RRN()) != 12 {
			t.Fatalf("RRN %q", r.RRN())
		}
	}
	if n != (seqBlock+4)/2 {
		t.Fatalf("%d reservations before exhaustion, want %d", n, (seqBlock+4)/2)
	}
	if _, err := j.Append(db.NewBatch(), entryFor(full, "10000001", "000001", "000001", "", In)); !errors.Is(err, ErrSeqExhausted) {
		t.Fatalf("append on a used-up day: %v", err)
	}
}

// reserve is ReserveRRN into a new Reservation.
func reserve(j *Journal, date string) (*Reservation, error) {
	r := new(Reservation)
	return r, j.ReserveRRN(date, r)
}

// clone copies *p where go vet does not look (a Reservation holds a
// noCopy): what a careless caller's copy does at run time.
func clone[T any](p *T) T { return *p }

// TestReservationCopy: only the Reservation ReserveRRN filled holds its
// sequences. A copy names the same RRN, but a pair appended with it —
// before or after the original's — takes new sequences and indexes the
// RRN, so two pairs never land on one sequence (the second used to
// overwrite the first).
func TestReservationCopy(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	const day = "20261204"

	r, err := reserve(j, day)
	if err != nil {
		t.Fatal(err)
	}
	before := clone(r)
	if before.RRN() != r.RRN() || before.Seq() != r.Seq() {
		t.Fatalf("copy names %q %d, the original %q %d", before.RRN(), before.Seq(), r.RRN(), r.Seq())
	}
	if s := pairAt(t, j, db, r, day, "000001", "", r.RRN()); s != r.Seq() {
		t.Fatalf("the original's pair at %d, want %d", s, r.Seq())
	}
	after := clone(r)
	for i, c := range []*Reservation{&before, &after} {
		if s := pairAt(t, j, db, c, day, fmt.Sprintf("%06d", 2+i), "", c.RRN()); s == r.Seq() {
			t.Fatalf("copy %d used after the original: its pair at the reserved %d", i, s)
		}
	}
	// A copy used first: refused too, the original still lands.
	r2, err := reserve(j, day)
	if err != nil {
		t.Fatal(err)
	}
	first := clone(r2)
	if s := pairAt(t, j, db, &first, day, "000004", "", r2.RRN()); s == r2.Seq() {
		t.Fatalf("copy used first: its pair at the reserved %d", s)
	}
	if s := pairAt(t, j, db, r2, day, "000005", "", r2.RRN()); s != r2.Seq() {
		t.Fatalf("the original after its copy: pair at %d, want %d", s, r2.Seq())
	}
	if es, err := j.ByRRN(r.RRN(), day, 10); err != nil || stans(es) != "1:000001 2:000001 3:000002 4:000002 5:000003 6:000003" {
		t.Fatalf("entries of the first RRN: %q %v, want its 3 pairs", stans(es), err)
	}
}

// TestDayOfYearMemo: dayOfYear with its memo of the last day answers as
// package time does, for days in random order, each often repeated.
func TestDayOfYearMemo(t *testing.T) {
	// An empty memo answers nothing, not even for day 0.
	doyMemo.Store(0)
	if got := dayOfYear(0); got != 1 {
		t.Fatalf("dayOfYear(0) = %d on an empty memo, want 1", got)
	}
	rng := rand.New(rand.NewPCG(15, 16))
	days := []uint32{0, 1, 365, 366, 20791, 2932896}
	for range 500 {
		days = append(days, uint32(rng.IntN(2932896)+1))
	}
	for range 20000 {
		d := days[rng.IntN(len(days))]
		want := time.Unix(int64(d)*86400, 0).UTC().YearDay()
		if got := dayOfYear(d); got != want {
			t.Fatalf("dayOfYear(%d) = %d, want %d", d, got, want)
		}
	}
}
