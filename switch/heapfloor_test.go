package switching

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestHeapFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name        string
		base        int
		floor, live uint64
		want        int
	}{
		{"no collection yet", 400, 64 * mib, 0, 400},
		{"small heap: target at the floor", 400, 64 * mib, 8 * mib, 700},
		{"tiny heap: capped where the runtime's minimum reaches the floor", 400, 64 * mib, 1 * mib, 1600},
		{"heap near the floor: the configured percent", 400, 64 * mib, 60 * mib, 400},
		{"heap above the floor: the configured percent", 400, 64 * mib, 200 * mib, 400},
		{"floor below the configured percent's minimum", 400, 8 * mib, 1 * mib, 400},
	} {
		if got := heapFloorPercent(tc.base, tc.floor, tc.live); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		// The target the percent gives never exceeds the larger of the
		// floor and the configured percent's.
		if tc.live > 0 {
			target := tc.live * uint64(100+heapFloorPercent(tc.base, tc.floor, tc.live)) / 100
			if limit := max(tc.floor, tc.live*uint64(100+tc.base)/100); target > limit {
				t.Errorf("%s: target %d above %d", tc.name, target, limit)
			}
		}
	}
}

// TestHeapFloorRaisesGOGC: with a floor far above this process's live
// heap, the floor raises GOGC within a few of its intervals.
func TestHeapFloorRaisesGOGC(t *testing.T) {
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	runtime.GC() // a live heap to size against
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	floor := 8*live[0].Value.Uint64() + 64<<20 // far above it, whatever the tests before left
	done := make(chan struct{})
	stopped := startHeapFloor(100, floor, 10*time.Millisecond, done)
	defer func() { close(done); <-stopped }() // before GOGC is restored
	deadline := time.Now().Add(10 * time.Second)
	for gogc() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d", gogc())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
