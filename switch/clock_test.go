package switching

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

// referenceDateOf is the business date at t computed from scratch, the
// way the clock did before it cached spans: the calendar day in loc, one
// day on from the cutover.
func referenceDateOf(loc *time.Location, cutover time.Duration, t time.Time) ledger.BusinessDate {
	lt := t.In(loc)
	d := ledger.DateOf(lt)
	if cutover > 0 {
		y, m, day := lt.Date()
		if lt.Sub(time.Date(y, m, day, 0, 0, 0, 0, loc)) >= cutover {
			d = d.AddDays(1)
		}
	}
	return d
}

// TestDateOfCachedSpan: the cached date equals the one computed from
// scratch at every instant asked, in any order, around midnights,
// cutovers and daylight-saving changes (the cache must never answer for
// an instant outside its span).
func TestDateOfCachedSpan(t *testing.T) {
	for _, zone := range []string{"Asia/Shanghai", "America/New_York", "UTC"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Logf("zone %s not available: %v", zone, err)
			continue
		}
		for _, cutover := range []time.Duration{0, 23 * time.Hour, 30 * time.Minute, 23*time.Hour + 59*time.Minute} {
			c := &businessClock{loc: loc, cutover: cutover}
			var instants []time.Time
			// Both sides of every midnight and cutover over days that
			// include the 2026 DST changes of New York (8 March, 1 November).
			for _, day := range []time.Time{
				time.Date(2026, 3, 7, 0, 0, 0, 0, loc), time.Date(2026, 10, 31, 0, 0, 0, 0, loc),
				time.Date(2026, 12, 30, 0, 0, 0, 0, loc), time.Date(2028, 2, 28, 0, 0, 0, 0, loc),
			} {
				for i := 0; i < 4; i++ {
					y, m, d := day.Date()
					for _, at := range []time.Time{time.Date(y, m, d+i, 0, 0, 0, 0, loc), time.Date(y, m, d+i, 0, 0, 0, 0, loc).Add(cutover)} {
						for _, off := range []time.Duration{-time.Nanosecond, 0, time.Nanosecond, time.Minute, -time.Hour} {
							instants = append(instants, at.Add(off))
						}
					}
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
			for range 2000 {
				instants = append(instants, base.Add(time.Duration(rng.Int64N(int64(3*365*24*time.Hour)))))
			}
			// Asked in order, then shuffled: the cache must follow a clock
			// that jumps either way.
			for pass := range 2 {
				if pass == 1 {
					rng.Shuffle(len(instants), func(i, j int) { instants[i], instants[j] = instants[j], instants[i] })
				}
				for _, at := range instants {
					if got, want := c.dateOf(at), referenceDateOf(loc, cutover, at); got != want {
						t.Fatalf("%s cutover %v: dateOf(%v) = %v, want %v", zone, cutover, at.In(loc), got, want)
					}
				}
			}
		}
	}
}

func TestFormatRRN(t *testing.T) {
	for _, tc := range []struct {
		yday int
		seq  uint64
	}{{1, 1}, {32, 0}, {365, 999_999_999}, {366, 123_456_789}, {100, 10_000}} {
		if got, want := formatRRN(tc.yday, tc.seq), fmt.Sprintf("%03d%09d", tc.yday, tc.seq); got != want {
			t.Errorf("formatRRN(%d, %d) = %q, want %q", tc.yday, tc.seq, got, want)
		}
	}
}

func rrnMark(t *testing.T, db *pebble.DB, d ledger.BusinessDate) uint64 {
	t.Helper()
	v, closer, err := db.Get(rrnKey(d))
	if err != nil {
		t.Fatalf("read RRN mark: %v", err)
	}
	defer closer.Close()
	return binary.BigEndian.Uint64(v)
}

// TestNextRRNReservesAhead: every RRN handed out, by many goroutines at
// once, is unique and below the durable mark read right after it (so a
// crash at any moment cannot hand it out again); the next block is
// reserved half-way through the current one; a clock opened again on the
// same store continues above every RRN handed out.
func TestNextRRNReservesAhead(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{zap.NewNop().Sugar()}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const d = ledger.BusinessDate(20261204)
	c := &businessClock{db: db}

	// Half-way through the first block the next is on disk.
	for i := 1; i <= rrnBlock/2; i++ {
		if _, err := c.NextRRN(d); err != nil {
			t.Fatal(err)
		}
	}
	if got := rrnMark(t, db, d); got != 2*rrnBlock {
		t.Fatalf("mark after %d RRNs = %d, want %d (the next block reserved ahead)", rrnBlock/2, got, 2*rrnBlock)
	}

	const workers, each = 8, 4000 // 32,000: more than three blocks
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				rrn, err := c.NextRRN(d)
				if err != nil {
					errs <- err
					return
				}
				seq, err := strconv.ParseUint(rrn[3:], 10, 64)
				if err != nil || len(rrn) != 12 || rrn[:3] != "338" {
					errs <- fmt.Errorf("RRN %q: want 338 and 9 digits", rrn)
					return
				}
				if mark := rrnMark(t, db, d); seq >= mark {
					errs <- fmt.Errorf("RRN %s handed out at or above the durable mark %d", rrn, mark)
					return
				}
				mu.Lock()
				dup := seen[rrn]
				seen[rrn] = true
				mu.Unlock()
				if dup {
					errs <- fmt.Errorf("RRN %s handed out twice", rrn)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var highest uint64
	for rrn := range seen {
		seq, _ := strconv.ParseUint(rrn[3:], 10, 64)
		highest = max(highest, seq)
	}
	again := &businessClock{db: db}
	rrn, err := again.NextRRN(d)
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := strconv.ParseUint(rrn[3:], 10, 64); seq <= highest {
		t.Fatalf("after reopening: RRN %s, not above %d handed out before", rrn, highest)
	}
}

// TestReserveRRNFromJournal: with a journal, an RRN is the journal's
// reservation of its pair (its number the counter of the pair's first
// sequence), in the format of field 37; on a date the clock's own marks
// issued RRNs for (an earlier version's data directory), the journal's
// counter continues above them, so none is issued again; a date without
// marks starts at 1; a clock opened again continues above everything
// reserved before.
func TestReserveRRNFromJournal(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{zap.NewNop().Sugar()}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const d, fresh = ledger.BusinessDate(20261204), ledger.BusinessDate(20261205)
	old := &businessClock{db: db}
	var highest uint64
	for range 3 {
		rrn, err := old.NextRRN(d)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseUint(rrn[3:], 10, 64)
		highest = max(highest, n)
	}
	open := func() *businessClock {
		j, err := journal.Open(db, rrnJournalOptions(db))
		if err != nil {
			t.Fatal(err)
		}
		c, err := openBusinessClock(db, j, "UTC", 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open()
	var res journal.Reservation
	rrn, err := c.ReserveRRN(d, &res)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseUint(rrn[3:], 10, 64)
	if len(rrn) != 12 || rrn[:3] != "338" || n <= highest || res.RRN() != rrn || journal.SeqCounter(res.Seq()) != n {
		t.Fatalf("RRN %q (reservation %d %q) after the clock's marks up to %d", rrn, res.Seq(), res.RRN(), highest)
	}
	if rrn, err := c.ReserveRRN(fresh, &res); err != nil || rrn != "339000000001" || res.RRN() != rrn {
		t.Fatalf("first RRN of a new day: %q %q %v", rrn, res.RRN(), err)
	}
	if rrn, err := c.NextRRN(fresh); err != nil || rrn != "339000000003" {
		t.Fatalf("an RRN journaled elsewhere: %q %v, want the next pair's", rrn, err)
	}
	c = open()
	if again, err := c.NextRRN(d); err != nil || again <= rrn {
		t.Fatalf("after reopening: %q %v, want above %q", again, err, rrn)
	}
}

// TestRRNsAcrossRollback: RRNs issued on one business day by this
// version, then by the version before RRNs were sequences (a rollback:
// it issues RRNs from the clock's own marks only, as markedRRN does),
// then by this version again: none is issued twice. Fails when the
// journal does not raise the clock's mark with its counter mark (the
// earlier version starts again at 1), or when a day with a counter mark
// ignores the floor at its first use (the upgrade again continues at its
// counter mark, below the earlier version's RRNs).
func TestRRNsAcrossRollback(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{zap.NewNop().Sugar()}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const d = ledger.BusinessDate(20261204)
	seen := map[string]string{}
	issue := func(who string, c *businessClock, n int) {
		t.Helper()
		for range n {
			rrn, err := c.NextRRN(d)
			if err != nil {
				t.Fatal(err)
			}
			if w, ok := seen[rrn]; ok {
				t.Fatalf("RRN %s issued by %s, again by %s", rrn, w, who)
			}
			seen[rrn] = who
		}
	}
	open := func() *businessClock {
		j, err := journal.Open(db, rrnJournalOptions(db))
		if err != nil {
			t.Fatal(err)
		}
		c, err := openBusinessClock(db, j, "UTC", 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	issue("this version", open(), 5)
	issue("the earlier version", &businessClock{db: db}, 5)
	issue("this version again", open(), 5)
	issue("the earlier version again", &businessClock{db: db}, 5)
}
