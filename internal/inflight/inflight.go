// Package inflight counts the operations under way per key when only a
// few keys are in flight at once (the business dates of the exchanges
// under way, the trace numbers one terminal has in flight): a short slice
// searched in order, which costs less per operation than a map's hashing,
// growth and deletion when it holds one or two keys. Its cost grows with
// the number of distinct keys in flight, which the callers bound (each
// key in flight is a request holding a connection). Not safe for
// concurrent use: callers hold their own lock.
package inflight

// Counts is a multiset of keys. The zero Counts is empty and ready.
type Counts[K comparable] struct {
	keys []entry[K]
}

type entry[K comparable] struct {
	key K
	n   int
}

// Add counts one more operation under way for k.
func (c *Counts[K]) Add(k K) {
	for i := range c.keys {
		if c.keys[i].key == k {
			c.keys[i].n++
			return
		}
	}
	c.keys = append(c.keys, entry[K]{key: k, n: 1})
}

// Done counts one operation for k as ended; k is forgotten when none is
// left. Done of a key not counted does nothing.
func (c *Counts[K]) Done(k K) {
	for i := range c.keys {
		if c.keys[i].key == k {
			if c.keys[i].n--; c.keys[i].n <= 0 {
				last := len(c.keys) - 1
				c.keys[i] = c.keys[last]
				c.keys[last] = entry[K]{}
				c.keys = c.keys[:last]
			}
			return
		}
	}
}

// Count is the number of operations under way for k.
func (c *Counts[K]) Count(k K) int {
	for i := range c.keys {
		if c.keys[i].key == k {
			return c.keys[i].n
		}
	}
	return 0
}

// Each calls f with every key in flight and its count, in no set order.
func (c *Counts[K]) Each(f func(k K, n int)) {
	for _, e := range c.keys {
		f(e.key, e.n)
	}
}

// Len is the number of distinct keys in flight.
func (c *Counts[K]) Len() int { return len(c.keys) }
