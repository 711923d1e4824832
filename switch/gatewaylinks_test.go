package switching

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/switch/admin"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/links"
)

const (
	bankCard  = "6222020000000000018" // gwsim demo account, PIN 123456
	bankPIN   = "123456"
	demoBank  = "demo-bank"
	bankStart = spec.Amount(1_000_000)
)

// linkedSwitch starts gwsim and a switch with a link to it routing the
// demo bank's BIN.
func linkedSwitch(t *testing.T, mutate ...func(*Config)) (*Switch, *gwsim.Sim) {
	t.Helper()
	return linkedSwitchTo(t, gwsim.Options{}, links.StateUp, mutate...)
}

// linkedSwitchTo is linkedSwitch with the bank's options (its institution
// is the demo one) and the link state to wait for.
func linkedSwitchTo(t *testing.T, o gwsim.Options, state string, mutate ...func(*Config)) (*Switch, *gwsim.Sim) {
	t.Helper()
	o.Institution = gwsim.DemoInstitution
	sim, err := gwsim.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sw := testSwitch(t, func(c *Config) {
		c.Gateways = []links.Config{{Name: demoBank, Addresses: []string{sim.Addr()},
			AcquirerID: "48020000", ForwardingID: "48020000", InstitutionID: gwsim.DemoInstitution,
			SendTimeout: 500 * time.Millisecond, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}}
		c.SAF = links.SAFConfig{InitialDelay: 50 * time.Millisecond, Interval: 100 * time.Millisecond, MaxInterval: 400 * time.Millisecond}
		c.Seed.ZoneKeys = []SeedZoneKey{{Link: demoBank, ZMK: gwsim.DemoZMK}}
		// The demo configuration routes the demo bank's BIN 622202 to
		// its link, demo-bank, replaced here by one to this gwsim.
		for _, m := range mutate {
			m(c)
		}
	})
	waitLink(t, sw, state)
	return sw, sim
}

func waitLink(t *testing.T, sw *Switch, state string) {
	t.Helper()
	l, _ := sw.links.Link(demoBank)
	waitUntil(t, "link "+state, func() bool { return l.State() == state })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func simBalance(t *testing.T, sim *gwsim.Sim) spec.Amount {
	t.Helper()
	b, ok := sim.Balance(bankCard)
	if !ok {
		t.Fatal("gwsim has no demo account")
	}
	return b
}

func TestGatewayLinkBankCard(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	call := func(m *spec.POSMessage, err error) *spec.POSMessage { t.Helper(); return do(t, term, m, err) }

	// Approved by the bank: PIN translated TPK -> ZPK and verified there,
	// MACs checked both ways.
	buy, err := term.Consume(bankCard, 1234, bankPIN)
	bought := do(t, term, buy, err)
	expectRC(t, "bank consume", bought, spec.RCApproved)
	if got := simBalance(t, sim); got != bankStart-1234 {
		t.Fatalf("bank balance %v", got)
	}
	if st := sim.Stats(); st.MACErrors != 0 || st.Approved != 1 {
		t.Fatalf("gwsim stats %+v", st)
	}
	// The local ledger still serves campus cards through the same seam.
	expectRC(t, "campus consume", call(term.Consume(cardStudent, 100, "")), spec.RCApproved)

	// A wrong PIN is declined by the bank.
	expectRC(t, "wrong PIN", call(term.Consume(bankCard, 100, "000000")), spec.RCIncorrectPIN)

	// The terminal's own reversal of a forwarded consume: 00 once the
	// 0420 is queued; the bank gives the money back.
	expectRC(t, "reversal", do(t, term, term.Reversal(buy, spec.ReversalTimeout), nil), spec.RCApproved)
	waitUntil(t, "bank reversal", func() bool { return simBalance(t, sim) == bankStart })

	// Declined by the bank.
	if err := sim.SetFaults(gwsim.Faults{Decline: "51"}); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "declined", call(term.Consume(bankCard, 100, bankPIN)), spec.RCInsufficientFunds)

	// No answer: the terminal gets 98, the 0420 reverses the debit.
	if err := sim.SetFaults(gwsim.Faults{DropPercent: 100}); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "no answer", call(term.Consume(bankCard, 500, bankPIN)), spec.RCNoAnswer)
	if got := simBalance(t, sim); got != bankStart-500 {
		t.Fatalf("bank balance after the dropped answer %v", got)
	}
	_ = sim.SetFaults(gwsim.Faults{})
	waitUntil(t, "timeout reversed at the bank", func() bool { return simBalance(t, sim) == bankStart })
	if st := sim.Stats(); st.Reversed != 2 {
		t.Fatalf("gwsim reversed %d, want 2", st.Reversed)
	}

	// Link down: 91 before anything is sent; the link comes back.
	_ = sim.SetFaults(gwsim.Faults{RefuseSignOn: true, DisconnectAfter: 1})
	_, _ = term.Do(mustReq(term.Consume(bankCard, 1, bankPIN)))
	waitLink(t, sw, links.StateDown)
	expectRC(t, "link down", call(term.Consume(bankCard, 100, bankPIN)), "91")
	_ = sim.SetFaults(gwsim.Faults{})
	waitLink(t, sw, links.StateUp)
	expectRC(t, "after reconnect", call(term.Consume(bankCard, 100, bankPIN)), spec.RCApproved)
}

func mustReq(m *spec.POSMessage, err error) *spec.POSMessage {
	if err != nil {
		panic(err)
	}
	return m
}

// TestGatewaySAFDeadLetterAdmin: a reversal the bank never answers is
// repeated (0421) up to saf.max_attempts, dead-lettered, listed by the
// admin API, retried by an operator and then delivered.
func TestGatewaySAFDeadLetterAdmin(t *testing.T) {
	sw, sim := linkedSwitch(t, func(c *Config) { c.SAF.MaxAttempts = 3 })
	term := signedOn(t, sw, termCanteen, canteen)
	_ = sim.SetFaults(gwsim.Faults{DropPercent: 100})
	expectRC(t, "no answer", do(t, term, mustReq(term.Consume(bankCard, 700, bankPIN)), nil), spec.RCNoAnswer)

	var dead admin.SAFPage
	waitUntil(t, "dead letter", func() bool {
		code, body := adminCall(t, sw, "GET", "/api/v1/saf?dead=true&gateway="+demoBank, nil)
		return code == 200 && json.Unmarshal(body, &dead) == nil && len(dead.Entries) == 1
	})
	e := dead.Entries[0]
	if e.Attempts != 3 || e.Amount != "7.00" || e.Card == bankCard || e.Reason != "98" {
		t.Fatalf("dead letter %+v", e)
	}
	reps := 0
	for _, en := range sim.Entries() {
		if en.MTI == "0421" {
			reps++
		}
	}
	if reps != 2 {
		t.Fatalf("gwsim saw %d repeats (0421), want 2", reps)
	}
	code, body := adminCall(t, sw, "GET", "/api/v1/gateways", nil)
	var gws admin.GatewaysResponse
	if code != 200 || json.Unmarshal(body, &gws) != nil || len(gws.Gateways) != 1 ||
		gws.Gateways[0].State != links.StateUp || gws.Gateways[0].SAFDead != 1 || gws.Gateways[0].ZAKCheck == "" {
		t.Fatalf("gateways: %d %s", code, body)
	}
	_ = sim.SetFaults(gwsim.Faults{})
	if code, body := adminCall(t, sw, "POST", fmt.Sprintf("/api/v1/saf/%d/retry", e.ID), nil); code != 200 {
		t.Fatalf("retry: %d %s", code, body)
	}
	waitUntil(t, "retried reversal delivered", func() bool { return simBalance(t, sim) == bankStart })
	if code, _ := adminCall(t, sw, "POST", fmt.Sprintf("/api/v1/saf/%d/drop", e.ID), nil); code != 404 {
		t.Fatalf("drop of a retried entry: %d", code)
	}
	// A ZMK from two components: its check value comes back.
	code, body = adminCall(t, sw, "POST", "/api/v1/gateways/"+demoBank+"/zmk",
		map[string]any{"components": []string{"0123456789ABCDEFFEDCBA9876543210", "00000000000000000000000000000000"}})
	if code != 200 || !bytes.Contains(body, []byte(`"zmk_kcv": "08D7B4"`)) {
		t.Fatalf("load ZMK: %d %s", code, body)
	}
	if code, _ := adminCall(t, sw, "GET", "/api/v1/saf?gateway=nope", nil); code != 404 {
		t.Fatalf("unknown gateway: %d", code)
	}
}

// TestGatewayLinkVoidRefundBalance: balance inquiry, void and partial
// refund of a forwarded consume go to the bank with field 90 naming the
// original; pre-authorisation is not served on links (40).
func TestGatewayLinkVoidRefundBalance(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	call := func(m *spec.POSMessage, err error) *spec.POSMessage { t.Helper(); return do(t, term, m, err) }

	bal := call(term.Balance(bankCard, bankPIN))
	expectRC(t, "balance inquiry", bal, spec.RCApproved)
	if bal.Balances == "" {
		t.Fatal("balance inquiry answered without field 54")
	}

	buy, err := term.Consume(bankCard, 3000, bankPIN)
	bought := call(buy, err)
	expectRC(t, "consume", bought, spec.RCApproved)
	expectRC(t, "void", call(term.Void(buy, bought, bankPIN)), spec.RCApproved)
	if got := simBalance(t, sim); got != bankStart {
		t.Fatalf("bank balance after void %v", got)
	}

	buy, err = term.Consume(bankCard, 5000, bankPIN)
	bought = call(buy, err)
	expectRC(t, "consume", bought, spec.RCApproved)
	expectRC(t, "refund", call(term.Refund(buy, bought, 2000), nil), spec.RCApproved)
	if got := simBalance(t, sim); got != bankStart-3000 {
		t.Fatalf("bank balance after a 20.00 refund of 50.00: %v", got)
	}
	// A void of something never forwarded: 25, nothing sent.
	ghost, err := term.Consume(bankCard, 100, bankPIN)
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "void of unknown", call(term.Void(ghost, bought, bankPIN)), spec.RCOriginalNotFound)

	expectRC(t, "pre-auth", call(term.PreAuth(bankCard, 100, bankPIN)), spec.RCFunctionNotSupported)
}

// TestGatewayLateAnswer: an answer arriving after the send timeout is
// logged and counted; the terminal had 98 and the reversal stands.
func TestGatewayLateAnswer(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	_ = sim.SetFaults(gwsim.Faults{Delay: 900 * time.Millisecond}) // send timeout 500 ms
	expectRC(t, "slow bank", do(t, term, mustReq(term.Consume(bankCard, 800, bankPIN)), nil), spec.RCNoAnswer)
	late := func() float64 {
		return testutil.ToFloat64(sw.links.Metrics().Late.WithLabelValues(demoBank))
	}
	waitUntil(t, "late answer counted", func() bool { return late() >= 1 })
	_ = sim.SetFaults(gwsim.Faults{})
	waitUntil(t, "reversal delivered", func() bool { return simBalance(t, sim) == bankStart })
}

// TestReversalFollowsForwardedOriginal: a reload that moves a BIN off a
// link must not strand the reversals of what was forwarded on it: the
// terminal's reversal goes to the link its original went to, and the
// bank gives the money back.
func TestReversalFollowsForwardedOriginal(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(bankCard, 1234, bankPIN)
	expectRC(t, "bank consume", do(t, term, buy, err), spec.RCApproved)
	if got := simBalance(t, sim); got != bankStart-1234 {
		t.Fatalf("bank balance %v", got)
	}
	// The operator moves the demo bank's BIN to the local ledger (as a
	// SIGHUP reload of the routes would).
	rules := append([]routing.Rule(nil), sw.cfg.Routes...)
	for i := range rules {
		if rules[i].Destination == demoBank {
			rules[i].Destination = "local"
		}
	}
	routes, err := routing.New(routing.Config{Routes: rules}, sw.destinations.Names())
	if err != nil {
		t.Fatal(err)
	}
	sw.routes.Store(routes)
	expectRC(t, "reversal", do(t, term, term.Reversal(buy, spec.ReversalTimeout), nil), spec.RCApproved)
	waitUntil(t, "bank reversal", func() bool { return simBalance(t, sim) == bankStart })
}

// TestLocalReversalAfterRouteMovedToLink: the other direction — a reload
// moves a BIN from the local ledger to a link after a local consume. The
// links' journal does not hold the original, so its reversal goes to the
// local ledger and the card gets its money back; sent to the link it was
// answered 00 with nothing done.
func TestLocalReversalAfterRouteMovedToLink(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	before, ok := sw.ledger.Card(cardStudent)
	if !ok {
		t.Fatal("no demo card")
	}
	buy, err := term.Consume(cardStudent, 1234, pinStudent)
	expectRC(t, "local consume", do(t, term, buy, err), spec.RCApproved)
	if v, _ := sw.ledger.Card(cardStudent); v.Balances.Available != before.Balances.Available-1234 {
		t.Fatalf("available after consume %s", v.Balances.Available)
	}
	// The operator moves the local BINs to the demo bank's link.
	rules := append([]routing.Rule(nil), sw.cfg.Routes...)
	for i := range rules {
		if rules[i].Destination == "local" {
			rules[i].Destination = demoBank
		}
	}
	routes, err := routing.New(routing.Config{Routes: rules}, sw.destinations.Names())
	if err != nil {
		t.Fatal(err)
	}
	sw.routes.Store(routes)
	if name, err := routes.Route(cardStudent, "reversal", canteen); err != nil || name != demoBank {
		t.Fatalf("reloaded route %q %v", name, err)
	}
	expectRC(t, "reversal", do(t, term, term.Reversal(buy, spec.ReversalTimeout), nil), spec.RCApproved)
	if v, _ := sw.ledger.Card(cardStudent); v.Balances.Available != before.Balances.Available {
		t.Fatalf("available after reversal %s, want %s", v.Balances.Available, before.Balances.Available)
	}
	if got := simBalance(t, sim); got != bankStart {
		t.Fatalf("bank balance %v", got)
	}
}
