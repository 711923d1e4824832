// Package labelcache keeps the children of Prometheus metric vectors the
// hot paths count into, so that a message costs a map read instead of
// the vector's label hashing and locked lookup
// (docs/BENCHMARKS.md#where-the-time-goes). A cache is read without a
// lock (an immutable map behind an atomic pointer) and copied on the rare
// miss; it holds at most MaxEntries children, past which Get asks the
// vector every time, so label values from outside (which callers bound
// anyway) cannot grow it without limit. Nothing here may cache children
// of a vector that is ever Reset or has children deleted.
package labelcache

import (
	"sync"
	"sync/atomic"
)

// MaxEntries bounds the children one cache holds.
const MaxEntries = 1024

// Cache maps label values K (an array of strings) to the child M the
// vector makes for them.
type Cache[K comparable, M any] struct {
	make func(K) M
	m    atomic.Pointer[map[K]M]
	mu   sync.Mutex // serialises misses
}

// New makes a cache whose children come from make (the vector's
// WithLabelValues).
func New[K comparable, M any](make func(K) M) *Cache[K, M] {
	return &Cache[K, M]{make: make}
}

// Get returns the child for k, made once.
func (c *Cache[K, M]) Get(k K) M {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		if len(*old) >= MaxEntries {
			return c.make(k)
		}
	}
	v := c.make(k)
	next := make(map[K]M, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[k] = v
	c.m.Store(&next)
	return v
}

// Len is the number of children held.
func (c *Cache[K, M]) Len() int { return lenOf(c.m.Load()) }

func lenOf[K comparable, M any](m *map[K]M) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
