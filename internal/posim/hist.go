package posim

import (
	"math/bits"
	"time"
)

// Histogram records latencies in microseconds in log-linear buckets: exact
// below 128 µs, then 64 buckets per power of two (relative error below
// 1/64 ≈ 1.6 %). It is fixed-size, allocation-free to record into, and
// mergeable, so every terminal keeps its own and nothing is shared on the
// hot path. It is not safe for concurrent use.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    uint64
}

const (
	histExact   = 128 // values below this have their own bucket
	histSubBits = 6   // 64 sub-buckets per power of two above histExact
	histSub     = 1 << histSubBits
	// histMaxShift covers values up to 2^(7+histMaxShift) µs (well over
	// an hour); larger values land in the last bucket.
	histMaxShift = 26
	histBuckets  = histExact + histMaxShift*histSub
)

func bucketOf(us uint64) int {
	if us < histExact {
		return int(us)
	}
	shift := bits.Len64(us) - (histSubBits + 1) // keep the top 7 bits
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return histExact + (shift-1)*histSub + int(us>>uint(shift)) - histSub
}

// bucketValue returns the middle of a bucket's range in microseconds.
func bucketValue(i int) float64 {
	if i < histExact {
		return float64(i)
	}
	shift := (i-histExact)/histSub + 1
	low := uint64((i-histExact)%histSub+histSub) << uint(shift)
	return float64(low) + float64(uint64(1)<<uint(shift))/2
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[bucketOf(us)]++
	h.n++
	if us > h.max {
		h.max = us
	}
}

// Count is the number of recorded latencies.
func (h *Histogram) Count() uint64 { return h.n }

// Merge adds o into h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// Reset empties the histogram.
func (h *Histogram) Reset() { *h = Histogram{} }

// Quantile returns the latency at quantile q (0..1) in milliseconds, or 0
// for an empty histogram. The answer is the middle of the bucket holding
// the rank ceil(q·n), capped at the largest value recorded.
func (h *Histogram) Quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketValue(i)
			if v > float64(h.max) {
				v = float64(h.max)
			}
			return v / 1000
		}
	}
	return float64(h.max) / 1000
}
