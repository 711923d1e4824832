package main

import (
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// TestSIGTERMUnderLoad runs the real switchd with a slow bank that loses
// a third of its answers, and stops it with SIGTERM while terminals send
// bank-card consumes (docs/operations.md "Shutdown"): the daemon exits 0,
// every consume is answered or left unanswered for the terminal to
// reverse, the links sign off, the reversals queued before the stop
// survive it and are delivered after the restart, and then the bank holds
// exactly the consumes the terminals were told were approved.
func TestSIGTERMUnderLoad(t *testing.T) {
	sim, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution,
		Faults: gwsim.Faults{Delay: 200 * time.Millisecond, DropPercent: 35}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	base := demoConfigText(t, dir)
	base = withGateways(t, base, linkYAML("demo-bank", sim.Addr(), ""))
	// The first run keeps its reversals queued (nothing is due before the
	// stop); the second sends them at once.
	first := base + "saf: {initial_delay: 1h, interval: 200ms, max_interval: 1s, max_attempts: 10000}\n"
	second := base + "saf: {initial_delay: 10ms, interval: 200ms, max_interval: 1s, max_attempts: 10000}\n"
	cfgPath := filepath.Join(dir, "switchd.yaml")
	d := startDaemon(t, cfgPath, first)

	type sent struct {
		term   *posclient.Terminal
		req    *spec.POSMessage
		rc     string // "" when unanswered
		amount spec.Amount
	}
	var (
		mu       sync.Mutex
		outcomes []sent
		noAnswer atomic.Int32 // 98s
		answered atomic.Int32
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	terms := []string{"10000001", "10000002", "10000003"}
	merchants := []string{canteen, canteen, "898310000000002"}
	termObjs := make([]*posclient.Terminal, len(terms))
	for i, id := range terms {
		termObjs[i], _ = d.terminal(id, merchants[i])
	}
	// Wait for the link: a consume answered 91 is no test of shutdown.
	waitFor(t, "the link signed on", func() bool { return sim.Stats().KeyExchanges > 0 })
	time.Sleep(100 * time.Millisecond) // the sign-on's last step after the bank's key exchange
	for i := range terms {
		wg.Add(1)
		go func(term *posclient.Terminal, i int) {
			defer wg.Done()
			// Bounded: at most 200 consumes per terminal.
			for n := 1; n <= 200 && !stop.Load(); n++ {
				amount := spec.Amount(100*i + n)
				req, err := term.Consume(bankCard, amount, bankPIN)
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := term.Do(req)
				s := sent{term: term, req: req, amount: amount}
				if err == nil {
					s.rc = resp.ResponseCode
					answered.Add(1)
					if s.rc == spec.RCNoAnswer {
						noAnswer.Add(1)
					}
				}
				mu.Lock()
				outcomes = append(outcomes, s)
				mu.Unlock()
				if err != nil {
					return // the switch closed the connection
				}
			}
		}(termObjs[i], i)
	}
	waitFor(t, "load with a reversal queued", func() bool { return noAnswer.Load() >= 1 && answered.Load() >= 9 })
	// Stop while consumes wait on the bank (each takes 200 ms there).
	waitFor(t, "a consume at the bank", func() bool { return sim.Stats().Messages > 0 })
	lines := d.stop()
	stop.Store(true)
	wg.Wait()
	log := strings.Join(lines, "\n")
	for _, want := range []string{"gateway link signed off", "store-and-forward queue resumes at the next start", "switch stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("the shutdown did not log %q:\n%s", want, log)
		}
	}
	if n := sim.Stats().SignOffs; n < 1 {
		t.Errorf("the bank saw %d sign-offs", n)
	}
	// Every consume that reached the bank was answered: the ones in
	// flight at the stop finished; those left unanswered never left.
	atBank, reached := 0, 0
	for _, e := range sim.Entries() {
		if e.MTI == "0200" {
			atBank++
		}
	}
	for _, s := range outcomes {
		if s.rc != "" && s.rc != "91" {
			reached++
		}
	}
	if atBank != reached {
		t.Fatalf("the bank saw %d consumes, the terminals got %d answers from it: a consume in flight at the stop was cut off", atBank, reached)
	}

	// Restart with the bank answering again: the queued reversals go out,
	// and each terminal reverses what it got no answer for.
	if err := sim.SetFaults(gwsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, cfgPath, second)
	var approved spec.Amount
	unanswered := 0
	for _, s := range outcomes {
		switch s.rc {
		case spec.RCApproved:
			approved += s.amount
		case "":
			unanswered++
		}
	}
	for _, s := range outcomes {
		if s.rc != "" {
			continue
		}
		c, err := posclient.Dial(d.pos, posclient.Options{Timeout: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s.term.Client = c // signed on still: its keys and batch survive the restart
		resp, err := s.term.Do(s.term.Reversal(s.req, spec.ReversalTimeout))
		if err != nil || resp.ResponseCode != spec.RCApproved {
			t.Fatalf("reversal of an unanswered consume: %v %+v", err, resp)
		}
	}
	waitFor(t, "the bank holding exactly the approved consumes", func() bool {
		b, _ := sim.Balance(bankCard)
		return b == bankStart-approved
	})
	if st := sim.Stats(); st.Reversed < int64(noAnswer.Load()) {
		t.Fatalf("the bank reversed %d debits, fewer than the %d consumes answered 98", st.Reversed, noAnswer.Load())
	}
	t.Logf("%d consumes: %d answered (%d with 98), %d unanswered at the stop; %v approved", len(outcomes), answered.Load(), noAnswer.Load(), unanswered, approved)
	d.stop()
}
