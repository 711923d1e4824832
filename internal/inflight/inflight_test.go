package inflight

import (
	"math/rand/v2"
	"testing"
)

// TestCountsAgainstMap runs random Add/Done sequences, over few and many
// distinct keys, against the map it replaces (count up; count down and
// delete at zero or below) and compares every count after each step.
func TestCountsAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, keys := range []uint32{1, 2, 3, 8, 40} {
		var c Counts[uint32]
		ref := map[uint32]int{}
		for step := 0; step < 20000; step++ {
			k := rng.Uint32N(keys)
			if rng.IntN(2) == 0 {
				c.Add(k)
				ref[k]++
			} else {
				c.Done(k)
				if ref[k]--; ref[k] <= 0 {
					delete(ref, k)
				}
			}
			for x := uint32(0); x <= keys; x++ {
				if got, want := c.Count(x), ref[x]; got != want {
					t.Fatalf("%d keys, step %d: count of %d is %d, want %d", keys, step, x, got, want)
				}
			}
			if c.Len() != len(ref) {
				t.Fatalf("%d keys, step %d: %d keys in flight, want %d", keys, step, c.Len(), len(ref))
			}
			seen := map[uint32]int{}
			c.Each(func(k uint32, n int) { seen[k] += n })
			if len(seen) != len(ref) {
				t.Fatalf("%d keys, step %d: Each gave %v, want %v", keys, step, seen, ref)
			}
			for k, n := range ref {
				if seen[k] != n {
					t.Fatalf("%d keys, step %d: Each gave %v, want %v", keys, step, seen, ref)
				}
			}
		}
	}
}

// TestCountsZeroAndUnknown checks the zero value and Done of a key never
// added.
func TestCountsZeroAndUnknown(t *testing.T) {
	var c Counts[uint32]
	if c.Count(7) != 0 || c.Len() != 0 {
		t.Fatal("zero Counts not empty")
	}
	c.Done(7)
	if c.Count(7) != 0 || c.Len() != 0 {
		t.Fatal("Done of an unknown key changed the counts")
	}
	c.Add(7)
	c.Add(7)
	c.Done(7)
	if c.Count(7) != 1 {
		t.Fatalf("count %d, want 1", c.Count(7))
	}
	c.Done(7)
	if c.Count(7) != 0 || c.Len() != 0 {
		t.Fatal("key not forgotten at zero")
	}
}
