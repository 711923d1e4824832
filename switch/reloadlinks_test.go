package switching

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/links"
)

// TestReloadGatewayLinks: a reload adds, restarts and removes gateway
// links while a terminal's connection stays open and is served
// throughout; an unchanged link keeps its connection (its bank sees no new
// sign-on); a link holding a queued reversal is not removed and the whole
// reload changes nothing (docs/gateway-links.md "Reloading links").
func TestReloadGatewayLinks(t *testing.T) {
	// Bank A's reversal must wait, not become a dead letter, however slow
	// the machine.
	sw, simA := linkedSwitch(t, func(c *Config) { c.SAF.MaxAttempts = 10000 })
	simB, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simB.Close() })
	term := signedOn(t, sw, termCanteen, canteen) // held open throughout
	consume := func(what string, amount spec.Amount, want string) {
		t.Helper()
		req, err := term.Consume(bankCard, amount, bankPIN)
		expectRC(t, what, do(t, term, req, err), want)
	}
	consume("consume at bank A", 100, spec.RCApproved)

	const bankB = "bank-b"
	linkB := links.Config{Name: bankB, Addresses: []string{simB.Addr()},
		AcquirerID: "48020000", ForwardingID: "48020000", InstitutionID: gwsim.DemoInstitution,
		SendTimeout: linkSendTimeout, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}
	// withLinks is the running configuration with these links and the
	// bank BIN routed to dest.
	withLinks := func(dest string, ls ...links.Config) *Config {
		cfg := *sw.cfg
		cfg.Gateways = ls
		cfg.Seed.ZoneKeys = nil
		for _, l := range ls {
			cfg.Seed.ZoneKeys = append(cfg.Seed.ZoneKeys, SeedZoneKey{Link: l.Name, ZMK: gwsim.DemoZMK})
		}
		cfg.Routes = slices.Clone(sw.cfg.Routes)
		for i, r := range cfg.Routes {
			if r.Destination == demoBank {
				cfg.Routes[i] = routing.Rule{Name: r.Name, BINs: r.BINs, Types: r.Types, Merchants: r.Merchants, Destination: dest}
			}
		}
		return &cfg
	}
	linkA := sw.cfg.Gateways[0]

	// A reversal waits in bank A's queue: the bank's answers are lost.
	if err := simA.SetFaults(gwsim.Faults{DropPercent: 100}); err != nil {
		t.Fatal(err)
	}
	consume("consume at bank A, answer lost", 200, spec.RCNoAnswer)
	if q, _ := sw.links.SAFList(demoBank, false, 10); len(q) != 1 {
		t.Fatalf("bank A's queue %+v, want the reversal", q)
	}
	signOnsA := simA.Stats().SignOns

	// Removing bank A now is refused, and nothing else changes either.
	rep, err := sw.Reload(withLinks(bankB, linkB))
	if !errors.Is(err, links.ErrLinkBusy) || !strings.Contains(err.Error(), "1 reversals queued") || rep.Links.Changed() {
		t.Fatalf("reload removing a link with a queued reversal: %+v, %v", rep, err)
	}
	if _, ok := sw.links.Link(bankB); ok {
		t.Fatal("bank B was added by a refused reload")
	}
	if l, ok := sw.links.Link(demoBank); !ok || l.State() != links.StateUp {
		t.Fatal("bank A is not up after a refused reload")
	}

	// Add bank B and route the BIN to it, bank A kept as it is.
	rep, err = sw.Reload(withLinks(bankB, linkA, linkB))
	if err != nil || !slices.Equal(rep.Links.Added, []string{bankB}) || !slices.Equal(rep.Links.Unchanged, []string{demoBank}) ||
		len(rep.Links.Removed)+len(rep.Links.Restarted) != 0 || slices.Contains(rep.NeedRestart, "gateways") {
		t.Fatalf("reload adding bank B: %+v, %v", rep, err)
	}
	waitUntil(t, "bank B up", func() bool { l, ok := sw.links.Link(bankB); return ok && l.State() == links.StateUp })
	consume("consume at bank B", 300, spec.RCApproved)
	if b, _ := simB.Balance(bankCard); b != bankStart-300 {
		t.Fatalf("bank B balance %v", b)
	}

	// Bank A's reversal is delivered over its kept connection; then it
	// holds no work.
	if err := simA.SetFaults(gwsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "bank A's queue drained", func() bool {
		q, err := sw.links.SAFList(demoBank, false, 10)
		return err == nil && len(q) == 0
	})
	if got := simBalance(t, simA); got != bankStart-100 {
		t.Fatalf("bank A balance %v, want %v (the lost answer's debit reversed)", got, bankStart-100)
	}

	// A changed bank B restarts bank B only.
	signOnsB := simB.Stats().SignOns
	linkB2 := linkB
	linkB2.SendTimeout = linkSendTimeout + time.Second
	rep, err = sw.Reload(withLinks(bankB, linkA, linkB2))
	if err != nil || !slices.Equal(rep.Links.Restarted, []string{bankB}) || !slices.Equal(rep.Links.Unchanged, []string{demoBank}) {
		t.Fatalf("reload changing bank B: %+v, %v", rep, err)
	}
	waitUntil(t, "bank B signed on again", func() bool {
		l, ok := sw.links.Link(bankB)
		return ok && l.State() == links.StateUp && simB.Stats().SignOns > signOnsB
	})
	if l, _ := sw.links.Link(bankB); l.Config().SendTimeout != linkSendTimeout+time.Second {
		t.Fatalf("bank B runs %v", l.Config().SendTimeout)
	}
	consume("consume at the restarted bank B", 400, spec.RCApproved)

	// Remove bank A, now idle.
	rep, err = sw.Reload(withLinks(bankB, linkB2))
	if err != nil || !slices.Equal(rep.Links.Removed, []string{demoBank}) || !slices.Equal(rep.Links.Unchanged, []string{bankB}) {
		t.Fatalf("reload removing bank A: %+v, %v", rep, err)
	}
	if _, ok := sw.links.Link(demoBank); ok {
		t.Fatal("bank A still configured")
	}
	if got := simA.Stats().SignOns; got != signOnsA {
		t.Fatalf("bank A saw %d sign-ons during the reloads, want %d: an unchanged link must keep its connection", got, signOnsA)
	}
	waitUntil(t, "bank A signed off", func() bool { return simA.Stats().SignOffs > 0 })
	if n := seriesCount(t, sw, "switch_link_up", map[string]string{"link": demoBank}); n != 0 {
		t.Fatalf("a removed link still has %d switch_link_up series", n)
	}
	consume("consume at bank B after bank A left", 500, spec.RCApproved)
	if b, _ := simB.Balance(bankCard); b != bankStart-300-400-500 {
		t.Fatalf("bank B balance %v", b)
	}
}

// seriesCount counts the series of a metric whose labels include want.
func seriesCount(t *testing.T, sw *Switch, name string, want map[string]string) int {
	t.Helper()
	mfs, err := sw.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			n++
		}
	}
	return n
}
