package switching

import (
	"math"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// walFsyncHistogram keeps Pebble's counts exactly on the bounds it keeps
// and converts nanoseconds to seconds.
func TestWALFsyncHistogramRebuckets(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Buckets: pebble.FsyncLatencyBuckets})
	for _, d := range []time.Duration{150 * time.Microsecond, 450 * time.Microsecond, 1200 * time.Microsecond,
		2500 * time.Microsecond, 6 * time.Millisecond, 40 * time.Millisecond, 20 * time.Second} {
		h.Observe(float64(d))
	}
	desc := prometheus.NewDesc("switch_pebble_wal_fsync_seconds", "test", nil, nil)
	m, ok := walFsyncHistogram(desc, h)
	if !ok {
		t.Fatal("no histogram")
	}
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	got := out.GetHistogram()
	if got.GetSampleCount() != 7 || math.Abs(got.GetSampleSum()-20.0503) > 1e-9 {
		t.Fatalf("count %d sum %v, want 7 and 20.0503 s", got.GetSampleCount(), got.GetSampleSum())
	}
	cum := map[float64]uint64{}
	var bounds []float64
	for _, b := range got.GetBucket() {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
		bounds = append(bounds, b.GetUpperBound())
	}
	// Hand-counted: ≤0.2 ms 1, ≤0.5 ms 2, ≤1 ms 2, ≤1.5 ms 3, ≤2 ms 3,
	// ≤3 ms 4, ≤5 ms 4; 6 ms and 40 ms fall in the exponential range;
	// 20 s is past every bound.
	for _, w := range []struct {
		le   float64
		want uint64
	}{{0.0002, 1}, {0.0005, 2}, {0.001, 2}, {0.0015, 3}, {0.002, 3}, {0.003, 4}, {0.005, 4}} {
		c, ok := cum[w.le]
		if !ok || c != w.want {
			t.Errorf("le %g: %d (present %v), want %d; bounds %v", w.le, c, ok, w.want, bounds)
		}
	}
	for i := 1; i < len(bounds); i++ {
		if bounds[i] <= bounds[i-1] || cum[bounds[i]] < cum[bounds[i-1]] {
			t.Fatalf("bounds or counts not increasing at %g: %v", bounds[i], bounds)
		}
	}
	if last := bounds[len(bounds)-1]; last < 5 || last > 10 || cum[last] != 6 || len(bounds) > 30 {
		t.Fatalf("last bound %g count %d, %d bounds; want a bound of 5–10 s holding 6 of 7, at most 30 bounds", last, cum[last], len(bounds))
	}
	if _, ok := walFsyncHistogram(desc, nil); ok {
		t.Fatal("a histogram from nothing")
	}
}

// A synced consume shows up in switch_pebble_wal_fsync_seconds.
func TestWALFsyncMetricCountsCommits(t *testing.T) {
	sw := testSwitch(t)
	before := walFsyncCount(t, sw)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Consume(cardStudent, 100, "")
	expectRC(t, "consume", do(t, term, req, err), spec.RCApproved)
	if after := walFsyncCount(t, sw); after <= before {
		t.Fatalf("switch_pebble_wal_fsync_seconds count %d after a consume, %d before", after, before)
	}
}

func walFsyncCount(t *testing.T, sw *Switch) uint64 {
	t.Helper()
	mfs, err := sw.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "switch_pebble_wal_fsync_seconds" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no switch_pebble_wal_fsync_seconds")
	return 0
}
