package switching

import (
	"context"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
)

// TestShutdownFinishesInFlight: a transaction waiting on its bank when
// shutdown begins gets its answer before the switch stops, and the bank's
// debit stands (nothing reversed).
func TestShutdownFinishesInFlight(t *testing.T) {
	sw, sim := linkedSwitch(t, func(c *Config) {
		for i := range c.Gateways {
			c.Gateways[i].SendTimeout = 5 * time.Second
		}
	})
	term := signedOn(t, sw, termCanteen, canteen)
	if err := sim.SetFaults(gwsim.Faults{Delay: time.Second}); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		resp *spec.POSMessage
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, err := term.Consume(bankCard, 700, bankPIN)
		if err != nil {
			got <- answer{nil, err}
			return
		}
		resp, err := term.Do(req)
		got <- answer{resp, err}
	}()
	waitUntil(t, "the request at the bank", func() bool {
		return metricValue(t, sw, "switch_gateway_link_in_flight", map[string]string{"link": demoBank}) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	a := <-got
	if a.err != nil || a.resp.ResponseCode != spec.RCApproved {
		t.Fatalf("in-flight consume: %v %+v", a.err, a.resp)
	}
	if bal := simBalance(t, sim); bal != bankStart-700 {
		t.Fatalf("bank balance %d, want %d: the approved consume must stand", bal, bankStart-700)
	}
}

// TestRejectedSeriesPresentFromStart: every listener and reason of
// switch_rejected_total exists at 0 before the first refusal.
func TestRejectedSeriesPresentFromStart(t *testing.T) {
	sw := testSwitch(t)
	mfs, err := sw.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() == "switch_rejected_total" {
			n = len(mf.GetMetric())
		}
	}
	if want := 2 * len(rejectReasons); n < want {
		t.Fatalf("switch_rejected_total has %d series at start, want %d (every listener and reason)", n, want)
	}
}
