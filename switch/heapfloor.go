package switching

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
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

// heapFloorEvery is how often the floor looks at the live heap.
const heapFloorEvery = time.Second

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

// startHeapFloor sets GOGC from the live heap every interval until done
// is closed (never, for the daemon's: it lasts the process); the channel
// it returns is closed when it has stopped. It changes GOGC only when the
// percent it wants differs from the one set by more than a quarter, so
// that a live heap wobbling between collections does not move it each
// time.
func startHeapFloor(base int, floor uint64, every time.Duration, done <-chan struct{}) (stopped <-chan struct{}) {
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		cur := base
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				continue
			}
			want := heapFloorPercent(base, floor, sample[0].Value.Uint64())
			if d := want - cur; d > cur/4 || -d > cur/4 {
				debug.SetGCPercent(want)
				cur = want
			}
		}
	}()
	return exited
}
