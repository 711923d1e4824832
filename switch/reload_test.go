package switching

import (
	"slices"
	"testing"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/terminals"
)

// TestReloadKeepsConnections: a reload replaces the route table and adds
// new merchants and terminals while a terminal's connection stays open
// and keeps being served; a bad configuration changes nothing; keys a
// reload does not apply are named.
func TestReloadKeepsConnections(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen) // held open throughout
	balance := func(want string) {
		t.Helper()
		req, err := term.Balance(cardStudent, pinStudent)
		expectRC(t, "balance on the held connection", do(t, term, req, err), want)
	}
	balance(spec.RCApproved)

	// Routes without the campus BIN: its cards are unrouted (14).
	cfg := *sw.cfg
	cfg.Routes = slices.DeleteFunc(slices.Clone(sw.cfg.Routes), func(r routing.Rule) bool { return r.Name == "campus-cards" })
	rep, err := sw.Reload(&cfg)
	if err != nil || !rep.Routes || len(rep.NeedRestart) != 0 {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	balance(spec.RCInvalidCard)

	// Back, with a new merchant and terminal in seed and a changed
	// listener limit, which needs a restart.
	cfg = *sw.cfg
	cfg.Seed.Merchants = append(slices.Clone(sw.cfg.Seed.Merchants), ledger.MerchantSpec{ID: "898310000000009", Name: "Night Kiosk", OnCampus: true})
	cfg.Seed.Terminals = append(slices.Clone(sw.cfg.Seed.Terminals), terminals.Spec{ID: "10000009", Merchant: "898310000000009", TMK: demoTMK})
	cfg.POS.MaxFrame = sw.cfg.POS.MaxFrame + 1
	rep, err = sw.Reload(&cfg)
	if err != nil || rep.Routes || !slices.Equal(rep.Merchants, []string{"898310000000009"}) ||
		!slices.Equal(rep.Terminals, []string{"10000009"}) || !slices.Equal(rep.NeedRestart, []string{"pos"}) {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	balance(spec.RCApproved)
	kiosk := signedOn(t, sw, "10000009", "898310000000009")
	req, err := kiosk.Balance(cardStudent, pinStudent)
	expectRC(t, "balance at the new terminal", do(t, kiosk, req, err), spec.RCApproved)

	// A route to a destination that does not exist: refused, nothing
	// changed.
	cfg = *sw.cfg
	cfg.Routes = []routing.Rule{{Name: "all", BINs: []string{"623015"}, Types: []string{"*"}, Merchants: []string{"*"}, Destination: "nowhere"}}
	if _, err := sw.Reload(&cfg); err == nil {
		t.Fatal("a route to an unknown destination was applied")
	}
	balance(spec.RCApproved)
	// A terminal of an unknown merchant: refused before anything is added.
	cfg = *sw.cfg
	cfg.Seed.Terminals = []terminals.Spec{{ID: "10000010", Merchant: "898399999999999", TMK: demoTMK}}
	if _, err := sw.Reload(&cfg); err == nil || sw.terminals.Get("10000010") != nil {
		t.Fatalf("terminal of an unknown merchant: %v", err)
	}
}
