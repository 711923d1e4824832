// Package posim is the terminal simulator and load generator of docs/posim.md:
// N simulated UnionPay-style POS terminals, each on its own connection,
// sign on, MAC their requests and build PIN blocks like real terminals,
// and drive a transaction mix closed-loop or at a fixed rate. It measures
// what a switch is judged by — throughput and latency from request sent to
// response received — and keeps the terminal's record of every answered
// transaction (the ack log), against which the ledger is reconciled after
// crashes.
//
// A terminal behaves like a real one on failures: on a timeout or a lost
// connection it reconnects and reverses the unanswered transaction (0400,
// reason 98), repeating until the reversal is answered.
package posim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a run. Zero values take the defaults noted.
type Options struct {
	// Addr is the switch's POS acceptor, HOST:PORT.
	Addr string
	// Terminals to drive (from Provision or DemoTerminals).
	Terminals []TerminalSpec
	// Duration of the load.
	Duration time.Duration
	// Rate is the fixed total rate in transactions per second; 0 runs
	// closed-loop (every terminal sends its next request as soon as the
	// previous one is answered).
	Rate float64
	// Mix is the transaction profile. Default MixConsume.
	Mix Mix
	// Timeout bounds one exchange (write + answer); a terminal that hits
	// it reverses. Default 10 s.
	Timeout time.Duration
	// ReconnectFor is how long a terminal keeps redialling an unreachable
	// switch before it gives up. Default 2 min.
	ReconnectFor time.Duration
	// Drain is how long, after Duration, terminals may take to settle
	// reversals still outstanding. Default 2 min.
	Drain time.Duration
	// AckLog receives one line per answered transaction; nil keeps none.
	AckLog *AckLog
	// Progress receives a line each second; nil prints none.
	Progress io.Writer
	// Seed makes the terminals' random choices reproducible.
	Seed uint64
	// SwitchPID, when set, is sampled (ProcessCPUTicks) after sign-on and
	// at the end of the load for Result.CPUTicks.
	SwitchPID int
}

// Bounds on a run's inputs.
const (
	MaxTerminals = 10000
	MaxRate      = 1_000_000
	MaxDuration  = 24 * time.Hour
	// MaxWait bounds the per-exchange timeout, the reconnect window and the
	// drain (0 takes each one's default).
	MaxWait = time.Hour
)

// ErrOptions: the options are out of bounds.
var ErrOptions = errors.New("posim: bad options")

func (o *Options) check() error {
	switch {
	case o.Addr == "":
		return fmt.Errorf("%w: no switch address", ErrOptions)
	case len(o.Terminals) == 0 || len(o.Terminals) > MaxTerminals:
		return fmt.Errorf("%w: %d terminals (1..%d)", ErrOptions, len(o.Terminals), MaxTerminals)
	case o.Duration <= 0 || o.Duration > MaxDuration:
		return fmt.Errorf("%w: duration %s (up to %s)", ErrOptions, o.Duration, MaxDuration)
	case o.Rate < 0 || o.Rate > MaxRate:
		return fmt.Errorf("%w: rate %g (0..%d)", ErrOptions, o.Rate, MaxRate)
	}
	for _, w := range []struct {
		name string
		d    time.Duration
	}{{"timeout", o.Timeout}, {"reconnect-for", o.ReconnectFor}, {"drain", o.Drain}} {
		if w.d < 0 || w.d > MaxWait {
			return fmt.Errorf("%w: %s %s (0..%s, 0 = default)", ErrOptions, w.name, w.d, MaxWait)
		}
	}
	for _, t := range o.Terminals {
		if len(t.Cards) == 0 {
			return fmt.Errorf("%w: terminal %s has no cards", ErrOptions, t.ID)
		}
	}
	if o.Mix.Name == "" {
		o.Mix = MixConsume
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ReconnectFor <= 0 {
		o.ReconnectFor = 2 * time.Minute
	}
	if o.Drain <= 0 {
		o.Drain = 2 * time.Minute
	}
	return nil
}

// Result is what a run measured.
type Result struct {
	Elapsed    time.Duration
	Approved   uint64
	Declined   uint64
	Errors     uint64 // failed exchanges and malfunction answers
	Reversals  uint64 // reversals started (each answered, unless Unresolved)
	Resends    uint64 // refund advices sent again after no answer
	Reconnects uint64
	Missed     uint64 // fixed rate: sends due that no terminal made (every terminal busy, or due at the very end)
	Unresolved uint64 // reversals or advices still unanswered at the end
	Latency    Histogram
	// CPUTicks is the switch's CPU time (utime+stime, clock ticks) during
	// the load, when Options.SwitchPID was set; -1 if it could not be read.
	CPUTicks int64
	// SelfCPUTicks is posim's own CPU time during the load (the load
	// generator's share of the cores); -1 if it could not be read.
	SelfCPUTicks int64
}

// TPS is answered transactions per second.
func (r *Result) TPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Approved+r.Declined) / r.Elapsed.Seconds()
}

// Summary is the final line of docs/posim.md, exactly.
func (r *Result) Summary() string {
	return fmt.Sprintf("summary tps=%.1f approved=%d declined=%d errors=%d p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f",
		r.TPS(), r.Approved, r.Declined, r.Errors,
		r.Latency.Quantile(0.50), r.Latency.Quantile(0.99), r.Latency.Quantile(0.999))
}

type runner struct {
	opts *Options
	sims []*sim

	approved, declined, errors     atomic.Uint64
	reversals, resends, reconnects atomic.Uint64
	missed, unresolved             atomic.Uint64
}

// Run signs every terminal on, drives the load for opts.Duration, lets
// outstanding reversals settle, and returns the measurements. It returns
// an error when a terminal cannot sign on at the start; failures during
// the run are counted, not returned.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	r := &runner{opts: &opts}
	for i, ts := range opts.Terminals {
		r.sims = append(r.sims, newSim(ts, r, opts.Seed+uint64(i)*0x100000001B3))
	}
	if err := r.signOnAll(ctx); err != nil {
		for _, s := range r.sims {
			s.disconnect()
		}
		return nil, err
	}
	defer func() {
		for _, s := range r.sims {
			s.disconnect()
		}
	}()

	cpu := StartCPU(opts.SwitchPID)
	start := time.Now()
	load, cancelLoad := context.WithDeadline(ctx, start.Add(opts.Duration))
	defer cancelLoad()
	hard, cancelHard := context.WithDeadline(ctx, start.Add(opts.Duration+opts.Drain))
	defer cancelHard()

	var tokens chan struct{}
	paced := make(chan struct{})
	if opts.Rate > 0 {
		tokens = make(chan struct{}, len(r.sims))
		go func() {
			defer close(paced)
			Pace(load, start, r.opts.Rate, tokens, &r.missed)
		}()
	} else {
		close(paced)
	}
	stopProgress := r.startProgress(start)
	var wg sync.WaitGroup
	for _, s := range r.sims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.drive(load, hard, s, tokens)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	// Sends due that no terminal took before the end are missed too.
	<-paced
	r.missed.Add(uint64(len(tokens)))

	res := &Result{
		Elapsed: elapsed, Approved: r.approved.Load(), Declined: r.declined.Load(), Errors: r.errors.Load(),
		Reversals: r.reversals.Load(), Resends: r.resends.Load(), Reconnects: r.reconnects.Load(),
		Missed: r.missed.Load(), Unresolved: r.unresolved.Load(),
	}
	res.CPUTicks, res.SelfCPUTicks = cpu.Stop()
	if opts.SwitchPID <= 0 {
		res.CPUTicks = 0
	}
	for _, s := range r.sims {
		s.mu.Lock()
		res.Latency.Merge(&s.hist)
		s.mu.Unlock()
	}
	return res, opts.AckLog.Flush()
}

// signOnAll connects and signs on every terminal, a few at a time.
func (r *runner) signOnAll(ctx context.Context) error {
	const parallel = 16
	sem := make(chan struct{}, parallel)
	errs := make([]error, len(r.sims))
	var wg sync.WaitGroup
	for i, s := range r.sims {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = s.connect(ctx, true)
		}()
	}
	wg.Wait()
	return signOnFailure(errs)
}

// signOnFailure condenses the sign-on errors of the terminals into one
// line that names the cause: how many failed, the first error, and, when
// the switch closed connections as they opened, its connection limits.
func signOnFailure(errs []error) error {
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	hint := ""
	first := failed[0]
	closed := errors.Is(first, io.EOF) || errors.Is(first, io.ErrUnexpectedEOF) ||
		errors.Is(first, syscall.ECONNRESET) || errors.Is(first, syscall.EPIPE)
	for _, s := range []string{"EOF", "connection reset by peer", "broken pipe"} {
		// connect wraps the dial error as text
		closed = closed || strings.Contains(first.Error(), s)
	}
	if closed {
		hint = " (the switch closed the connections: over one of its connection limits? its switch_rejected_total says which; " +
			"terminals behind one address need pos.trusted_networks, docs/operations.md)"
	}
	return fmt.Errorf("%d of %d terminals could not sign on; the first: %w%s", len(failed), len(errs), failed[0], hint)
}

// drive runs one terminal until the load ends; a transaction still being
// recovered at that point is settled before it returns (until hard ends).
func (r *runner) drive(load, hard context.Context, s *sim, tokens <-chan struct{}) {
	for {
		if tokens != nil {
			select {
			case <-load.Done():
				return
			case <-tokens:
			}
		} else if load.Err() != nil {
			return
		}
		if err := s.transact(load, hard); err != nil {
			if r.opts.Progress != nil {
				fmt.Fprintf(r.opts.Progress, "terminal %s stopped: %v\n", s.spec.ID, err)
			}
			return
		}
	}
}

// startProgress prints one line a second: totals so far and the latency
// of the last second.
func (r *runner) startProgress(start time.Time) (stop func()) {
	if r.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastAnswered uint64
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				var iv Histogram
				for _, s := range r.sims {
					s.mu.Lock()
					iv.Merge(&s.interval)
					s.interval.Reset()
					s.mu.Unlock()
				}
				answered := r.approved.Load() + r.declined.Load()
				tps := float64(answered-lastAnswered) / now.Sub(last).Seconds()
				lastAnswered, last = answered, now
				fmt.Fprintf(r.opts.Progress,
					"progress t=%.0fs tps=%.1f approved=%d declined=%d errors=%d p50_ms=%.3f p99_ms=%.3f reversals=%d reconnects=%d missed=%d\n",
					now.Sub(start).Seconds(), tps, r.approved.Load(), r.declined.Load(), r.errors.Load(),
					iv.Quantile(0.5), iv.Quantile(0.99), r.reversals.Load(), r.reconnects.Load(), r.missed.Load())
			}
		}
	}()
	return func() { close(done); <-finished }
}
