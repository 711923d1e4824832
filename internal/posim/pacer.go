package posim

import (
	"context"
	"sync/atomic"
	"time"
)

// Pacer spreads a fixed rate of sends over time without sub-millisecond
// sleeps: Go timers here resolve to about 1 ms, so the sender wakes on a
// coarse tick and asks how many sends have come due since the start. The
// count is computed from elapsed time, never accumulated per tick, so tick
// jitter and late wake-ups never drift the rate.
type Pacer struct {
	rate   float64 // sends per second
	issued int64
}

// NewPacer returns a pacer for rate sends per second (rate > 0).
func NewPacer(rate float64) *Pacer {
	if rate <= 0 {
		panic("posim: pacer rate must be positive")
	}
	return &Pacer{rate: rate}
}

// Due returns how many sends are due at elapsed time since the start that
// have not been issued yet, and counts them as issued.
func (p *Pacer) Due(elapsed time.Duration) int64 {
	if elapsed < 0 {
		return 0
	}
	total := int64(p.rate * elapsed.Seconds())
	n := total - p.issued
	if n < 0 {
		return 0
	}
	p.issued = total
	return n
}

// Issued is the number of sends issued so far.
func (p *Pacer) Issued() int64 { return p.issued }

// Pace issues the sends of a fixed rate from start as tokens on a 1 ms
// tick until ctx ends. A send due while tokens is full (every sender
// busy) is counted in missed, not queued without bound: an open-loop
// generator must not hide a slow server behind its own queue. When ctx
// ends, the sends that came due before it ended (its deadline, or the
// moment it was cancelled) and were not issued — the pacer itself was
// late, as on a loaded machine — are counted in missed too, so that
// issued plus missed is the rate times the time paced.
func Pace(ctx context.Context, start time.Time, rate float64, tokens chan<- struct{}, missed *atomic.Uint64) {
	p := NewPacer(rate)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			end := time.Now()
			if d, ok := ctx.Deadline(); ok && d.Before(end) {
				end = d
			}
			missed.Add(uint64(p.Due(end.Sub(start))))
			return
		case now := <-tick.C:
			for n := p.Due(now.Sub(start)); n > 0; n-- {
				select {
				case tokens <- struct{}{}:
				default:
					missed.Add(1)
				}
			}
		}
	}
}
