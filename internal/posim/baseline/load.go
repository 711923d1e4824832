package baseline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/internal/posim"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// Bounds of a baseline load.
const (
	MaxConns    = 10000
	MaxDuration = time.Hour
)

// Load drives conns connections, one request outstanding each, for d:
// every request is a consume built, MACed and framed exactly as posim
// builds it, and every echoed answer is decoded and its MAC verified. An
// echo is a request, not an answer, so all count as approved.
//
// rate 0 runs closed loop; a positive rate paces the sends as posim does
// (posim.Pace): the same open-loop load the switch gets in make bench, so
// the switch's tail latency at that rate has a floor to be read against.
//
// serverPID, when positive, is the baseline server's process: its CPU
// time during the load is returned in Result.CPUTicks (posim's own in
// Result.SelfCPUTicks either way), measured from the connections' set-up
// to the end, as posim measures the switch.
func Load(ctx context.Context, addr string, conns int, d time.Duration, rate float64, serverPID int) (*posim.Result, error) {
	if conns < 1 || conns > MaxConns || d <= 0 || d > MaxDuration {
		return nil, fmt.Errorf("baseline: %d connections for %s (1..%d, up to %s)", conns, d, MaxConns, MaxDuration)
	}
	if rate < 0 || rate > posim.MaxRate {
		return nil, fmt.Errorf("baseline: rate %g (0..%d)", rate, posim.MaxRate)
	}
	keys, err := localKeys()
	if err != nil {
		return nil, err
	}
	terms := make([]*posclient.Terminal, conns)
	for i := range terms {
		c, err := posclient.Dial(addr, posclient.Options{Timeout: 10 * time.Second})
		if err != nil {
			for _, t := range terms[:i] {
				t.Client.Close()
			}
			return nil, err
		}
		t := posclient.NewTerminal(c, fmt.Sprintf("B%07d", i), "898310000000001", nil)
		t.Keys, t.Batch = keys, "000001"
		terms[i] = t
	}
	defer func() {
		for _, t := range terms {
			t.Client.Close()
		}
	}()
	var (
		mu     sync.Mutex
		total  posim.Result
		wg     sync.WaitGroup
		missed atomic.Uint64
	)
	cpu := posim.StartCPU(serverPID)
	start := time.Now()
	until, cancel := context.WithDeadline(ctx, start.Add(d))
	defer cancel()
	var tokens chan struct{}
	if rate > 0 {
		tokens = make(chan struct{}, conns)
		go posim.Pace(until, start, rate, tokens, &missed)
	}
	for _, t := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h posim.Histogram
			var ok, bad uint64
			for until.Err() == nil {
				if tokens != nil {
					select {
					case <-tokens:
					case <-until.Done():
						continue
					}
				}
				req, err := t.Consume("6230150000000000018", 1500, "")
				if err != nil {
					bad++
					break
				}
				sent := time.Now()
				if err := t.Send(req); err != nil {
					bad++
					break
				}
				resp, err := t.Receive()
				if err != nil || resp.STAN != req.STAN {
					bad++
					break
				}
				h.Record(time.Since(sent))
				ok++
			}
			mu.Lock()
			total.Approved += ok
			total.Errors += bad
			total.Latency.Merge(&h)
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.Elapsed = time.Since(start)
	total.CPUTicks, total.SelfCPUTicks = cpu.Stop()
	total.Missed = missed.Load()
	return &total, nil
}
