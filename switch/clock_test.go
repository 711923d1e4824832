package switching

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
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
