package switching

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// The heap floor (runtime.heap_floor_mib, docs/operations.md): the
// switch's live Go heap is a few MiB (cards, terminals, keys; Pebble's
// memtables and block cache are outside it), so at GOGC 400 the collector
// runs at the runtime's minimum target of 4 MiB × 400/100 = 16 MiB, many
// times a second under load, each cycle marking the same small heap
// again. The floor raises GOGC so that the target is the floor while the
// live heap is small, and lowers it back to the configured percent as the
// live heap grows: the target is at most the larger of the floor and the
// configured percent's, so a large card base is paced as before.

// runtimeHeapMinimum is the Go runtime's own minimum heap target at GOGC
// 100 (4 MiB, scaled by GOGC/100).
const runtimeHeapMinimum = 4 << 20

// heapFloorPercent is the GOGC that puts the heap target of a live heap of
// live bytes at floor: floor/live − 1, as a percent, not below base and
// not above the percent at which the runtime's own minimum target
// reaches the floor. live 0 (no collection yet) keeps base.
func heapFloorPercent(base int, floor, live uint64) int {
	if live == 0 || floor <= live {
		return base
	}
	p := floor*100/live - 100
	p = min(p, floor*100/runtimeHeapMinimum)
	return max(base, int(p))
}

// heapFloorNext is the GOGC to set when cur is set and the live heap is
// live bytes. It raises GOGC only when the percent it wants is more than
// a quarter above cur, so that a live heap wobbling between collections
// does not move it each cycle; it lowers GOGC whenever the wanted percent
// is base, or cur's target is above the larger of the floor and base's
// target, so the bound holds after every check.
func heapFloorNext(base int, floor, live uint64, cur int) int {
	want := heapFloorPercent(base, floor, live)
	switch {
	case want > cur:
		if want-cur > cur/4 {
			return want
		}
	case want < cur:
		target := func(p int) uint64 { return live * uint64(100+p) / 100 }
		if want == base || target(cur) > max(floor, target(base)) {
			return want
		}
	}
	return cur
}

// heapFloor is a running heap floor.
type heapFloor struct {
	stopped chan struct{} // closed when the floor has stopped
	checks  atomic.Uint64 // checks done, for tests
}

// heapFloorSentinel is the object whose collection tells the floor that a
// collection cycle has ended. It holds a pointer so that the runtime
// never packs it with other small objects (a cleanup on such an object
// may never run).
type heapFloorSentinel struct {
	_ *byte
	_ [8]byte
}

// startHeapFloor sets GOGC from the live heap once at start and again
// after every collection cycle, until done is closed (never, for the
// daemon's: it lasts the process). The live heap is measured at the end
// of each cycle, so checking after each cycle sees every change as soon
// as the runtime does: a live heap that jumps between two checks paces
// at most one cycle at the old percent. A sentinel object with a cleanup
// (runtime.AddCleanup) is collected by each cycle; its cleanup wakes the
// floor's goroutine and arms the next sentinel, and stops arming once
// the floor has stopped.
func startHeapFloor(base int, floor uint64, done <-chan struct{}) *heapFloor {
	f := &heapFloor{stopped: make(chan struct{})}
	cycle := make(chan struct{}, 1)
	var stop atomic.Bool
	var arm func()
	arm = func() {
		runtime.AddCleanup(new(heapFloorSentinel), func(struct{}) {
			if stop.Load() {
				return
			}
			select {
			case cycle <- struct{}{}:
			default: // a wake-up is already pending
			}
			arm()
		}, struct{}{})
	}
	arm()
	go func() {
		defer close(f.stopped)
		defer stop.Store(true)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		cur := base
		for {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				if next := heapFloorNext(base, floor, sample[0].Value.Uint64(), cur); next != cur {
					debug.SetGCPercent(next)
					cur = next
				}
			}
			f.checks.Add(1)
			select {
			case <-done:
				return
			case <-cycle:
			}
		}
	}()
	return f
}
