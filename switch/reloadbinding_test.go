package switching

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/links"
)

// TestBindingToReloadedLink: a card can be bound (admin API) to a gateway
// link a reload added, without a restart, and its kiosk's transfer loads
// then go to that link's bank; once a reload has removed the link, no
// card can be bound to it (docs/gateway-links.md "Reloading links").
func TestBindingToReloadedLink(t *testing.T) {
	sw, simA := linkedSwitch(t, func(c *Config) {
		c.Transfer = TransferConfig{MaxLoad: 50000, MaxDailyLoad: 80000}
		c.Gateways[0].SendTimeout = 3 * time.Second
	})
	simB, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simB.Close() })
	_, _, admin := sw.Addrs()
	const bankB = "bank-b"
	bind := func(card, gateway string) (int, []byte) {
		return adminDo(t, "POST", "http://"+admin+"/api/v1/cards/"+card+"/binding",
			`{"gateway":"`+gateway+`","bank_card":"`+bankCard+`","account":"`+bankAccount+`","operator":"alice"}`)
	}
	if code, b := bind(cardStaff, bankB); code != http.StatusBadRequest || !strings.Contains(string(b), "not a gateway link") {
		t.Fatalf("binding to a link not configured: %d %s", code, b)
	}

	linkA := sw.cfg.Gateways[0]
	linkB := links.Config{Name: bankB, Addresses: []string{simB.Addr()},
		AcquirerID: "48020000", ForwardingID: "48020000", InstitutionID: gwsim.DemoInstitution,
		SendTimeout: 3 * time.Second, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}
	withLinks := func(ls ...links.Config) *Config {
		cfg := *sw.cfg
		cfg.Gateways = ls
		cfg.Seed.ZoneKeys = nil
		for _, l := range ls {
			cfg.Seed.ZoneKeys = append(cfg.Seed.ZoneKeys, SeedZoneKey{Link: l.Name, ZMK: gwsim.DemoZMK})
		}
		return &cfg
	}
	rep, err := sw.Reload(withLinks(linkA, linkB))
	if err != nil || !slices.Equal(rep.Links.Added, []string{bankB}) {
		t.Fatalf("reload adding bank B: %+v, %v", rep, err)
	}
	waitUntil(t, "bank B up", func() bool { l, ok := sw.links.Link(bankB); return ok && l.State() == links.StateUp })

	// Bound to bank B with no restart; the load's bank leg goes there.
	if code, b := bind(cardStaff, bankB); code != http.StatusCreated {
		t.Fatalf("binding to the reloaded link: %d %s", code, b)
	}
	kiosk := signedOn(t, sw, termKiosk, canteen)
	cash, _ := purses(t, sw, cardStaff)
	req, err := kiosk.TransferLoad(cardStaff, 2500, pinStaff)
	expectRC(t, "transfer load over the reloaded link", do(t, kiosk, req, err), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash+2500, 0)
	if b, _ := simB.Balance(bankCard); b != bankStart-2500 {
		t.Fatalf("bank B balance %v, want %v", b, bankStart-2500)
	}
	if got := simBalance(t, simA); got != bankStart {
		t.Fatalf("bank A balance %v: the leg went to the wrong bank", got)
	}

	// Removed by a reload (it holds no work): no new binding to it.
	if _, err := sw.Reload(withLinks(linkA)); err != nil {
		t.Fatal(err)
	}
	if _, ok := sw.links.Link(bankB); ok {
		t.Fatal("bank B still configured")
	}
	if code, b := bind(cardStudent, bankB); code != http.StatusBadRequest || !strings.Contains(string(b), "not a gateway link") {
		t.Fatalf("binding to a removed link: %d %s", code, b)
	}
	if code, b := bind(cardStudent, demoBank); code != http.StatusCreated {
		t.Fatalf("binding to the link kept: %d %s", code, b)
	}
}
