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

func TestHeapFloorNext(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name string
		cur  int
		live uint64
		want int
	}{
		{"small heap: raised to the floor's percent", 400, 8 * mib, 700},
		{"raise within a quarter: kept", 700, 7 * mib, 700},
		// 11.5 MiB set 456; at 160 MiB the wanted 400 is within a quarter
		// of 456, and 456 would pace 889 MiB against 400's 800.
		{"heap far above the floor: back to gc_percent from within a quarter", 456, 160 * mib, 400},
		{"heap just above the floor: back to gc_percent", 420, 65 * mib, 400},
		{"target above the floor: lowered within a quarter", 600, 10 * mib, 540},
		{"no collection yet: gc_percent", 900, 0, 400},
	} {
		got := heapFloorNext(400, 64*mib, tc.live, tc.cur)
		if got != tc.want {
			t.Errorf("%s: cur %d live %d MiB: %d, want %d", tc.name, tc.cur, tc.live/mib, got, tc.want)
		}
		if tc.live > 0 {
			if target, limit := tc.live*uint64(100+got)/100, max(64*mib, tc.live*5); target > limit {
				t.Errorf("%s: target %d MiB above %d MiB", tc.name, target/mib, limit/mib)
			}
		}
	}
}

func readRuntimeMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitHeapFloorChecks forces collection cycles until the floor has done
// two more checks than when called: the second of them started after this
// call, so it saw the live heap of a cycle that ended before the call.
func waitHeapFloorChecks(t *testing.T, f *heapFloor) {
	t.Helper()
	n := f.checks.Load()
	deadline := time.Now().Add(20 * time.Second)
	for f.checks.Load() < n+2 {
		if time.Now().After(deadline) {
			t.Fatalf("heap floor: %d checks after 20 s of collections, want %d", f.checks.Load()-n, 2)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHeapFloorRaisesGOGC: with a floor far above this process's live
// heap, the floor raises GOGC after a few collection cycles.
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
	f := startHeapFloor(100, floor, done)
	defer func() { close(done); <-f.stopped }() // before GOGC is restored
	deadline := time.Now().Add(10 * time.Second)
	for gogc() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d", gogc())
		}
		runtime.GC() // the floor checks after each cycle
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHeapFloorReturnsToBase: the floor raised GOGC and lowered it to
// within a quarter of gc_percent; when the live heap then grows far above
// the floor, GOGC goes back to gc_percent (it stayed at 456, a target of
// 889 MiB for a live heap of 160 MiB instead of 800).
func TestHeapFloorReturnsToBase(t *testing.T) {
	const mib = 1 << 20
	liveNow := func() uint64 {
		runtime.GC()
		return readRuntimeMetric("/gc/heap/live:bytes")
	}
	old := debug.SetGCPercent(400)
	defer debug.SetGCPercent(old)
	if l0 := liveNow(); l0 > 5*mib {
		t.Skipf("live heap %d MiB: too large to step it through 6 and 11.5 MiB", l0/mib)
	}
	done := make(chan struct{})
	f := startHeapFloor(400, 64*mib, done)
	defer func() { close(done); <-f.stopped }()
	var ballast [][]byte
	setLive := func(want uint64) uint64 {
		if l := liveNow(); l < want {
			ballast = append(ballast, make([]byte, want-l))
		}
		l := liveNow()
		waitHeapFloorChecks(t, f)
		t.Logf("live %.1f MiB: GOGC %d", float64(l)/mib, readRuntimeMetric("/gc/gogc:percent"))
		return l
	}
	setLive(6 * mib)
	setLive(11*mib + mib/2)
	l := setLive(160 * mib)
	g := readRuntimeMetric("/gc/gogc:percent")
	runtime.KeepAlive(ballast)
	if g != 400 {
		t.Errorf("live heap %d MiB, 2.5x the floor: GOGC %d, want gc_percent 400 (target %d MiB, not %d)",
			l/mib, g, l*(100+g)/100/mib, l*5/mib)
	}
}

// TestHeapFloorFollowsCollections: the floor checks after each collection
// cycle, with no timer, so when the live heap jumps the heap goal comes
// back under max(floor, live × (100+gc_percent)/100) once the cycles that
// saw the jump have been checked (it was 17x the live heap, GOGC 1600,
// for up to a second between two timed checks).
func TestHeapFloorFollowsCollections(t *testing.T) {
	const mib = 1 << 20
	old := debug.SetGCPercent(400)
	defer debug.SetGCPercent(old)
	runtime.GC()
	l0 := readRuntimeMetric("/gc/heap/live:bytes")
	floor := 64*mib + 8*l0 // far above the live heap, whatever the tests before left
	done := make(chan struct{})
	f := startHeapFloor(400, floor, done)
	defer func() { close(done); <-f.stopped }()
	waitHeapFloorChecks(t, f)
	if g := readRuntimeMetric("/gc/gogc:percent"); g <= 400 {
		t.Fatalf("live heap %d MiB, floor %d MiB: GOGC %d, want it raised", l0/mib, floor/mib, g)
	}
	ballast := make([]byte, floor/2) // e.g. a burst of admin work, a reload
	runtime.GC()
	waitHeapFloorChecks(t, f)
	live, goal := readRuntimeMetric("/gc/heap/live:bytes"), readRuntimeMetric("/gc/heap/goal:bytes")
	runtime.KeepAlive(ballast)
	// The runtime's goal also counts the stacks and globals it scans (a
	// few MiB of slack for them; GOGC left raised would be ~17x live).
	roots := readRuntimeMetric("/gc/scan/stack:bytes") + readRuntimeMetric("/gc/scan/globals:bytes")
	bound := max(floor, live*5) + roots*5 + 4*mib
	t.Logf("GOGC %d live %d MiB goal %d MiB (bound %d MiB)", readRuntimeMetric("/gc/gogc:percent"), live/mib, goal/mib, bound/mib)
	if goal > bound {
		t.Errorf("heap goal %d MiB above max(floor, live x 5) + roots = %d MiB after the cycles that saw the live heap grow", goal/mib, bound/mib)
	}
}

// TestHeapFloorStops: a stopped floor leaves no goroutine behind and no
// longer changes GOGC after collections.
func TestHeapFloorStops(t *testing.T) {
	old := debug.SetGCPercent(400)
	defer debug.SetGCPercent(old)
	runtime.GC()
	baseline := runtime.NumGoroutine()
	for range 5 {
		done := make(chan struct{})
		f := startHeapFloor(400, 1<<30, done)
		waitHeapFloorChecks(t, f)
		close(done)
		<-f.stopped
	}
	debug.SetGCPercent(400)
	for range 3 {
		runtime.GC()
	}
	if g := readRuntimeMetric("/gc/gogc:percent"); g != 400 {
		t.Errorf("GOGC %d after the floors stopped, want 400", g)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), baseline, buf[:n])
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
