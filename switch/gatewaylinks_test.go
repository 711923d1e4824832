package switching

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/switch/admin"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
	"github.com/cardswitch/cardswitch/switch/links"
)

const (
	bankCard  = "6222020000000000018" // gwsim demo account, PIN 123456
	bankPIN   = "123456"
	demoBank  = "demo-bank"
	bankStart = spec.Amount(1_000_000)
)

// linkSendTimeout is the demo link's send timeout in these tests:
// generous, so that an answer gwsim does send is never late on a loaded
// CI machine; the tests that need no answer make gwsim drop it and pay
// the wait.
const linkSendTimeout = 2 * time.Second

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
			SendTimeout: linkSendTimeout, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}}
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
	deadline := time.Now().Add(60 * time.Second)
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
// original.
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
}

// TestGatewayLateAnswer: an answer arriving after the send timeout is
// logged and counted; the terminal had 98 and the reversal stands.
func TestGatewayLateAnswer(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	_ = sim.SetFaults(gwsim.Faults{Delay: linkSendTimeout + 1500*time.Millisecond})
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
	routes, err := routing.New(routing.Config{Routes: rules}, sw.destinations.Load().Names())
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
	routes, err := routing.New(routing.Config{Routes: rules}, sw.destinations.Load().Names())
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

// simHeld is what the bank's standing pre-auths hold of the demo card.
func simHeld(t *testing.T, sim *gwsim.Sim) spec.Amount {
	t.Helper()
	for _, a := range sim.Accounts() {
		if a.Card == bankCard {
			return a.Held
		}
	}
	t.Fatal("gwsim has no demo account")
	return 0
}

// simAt waits until the bank's balance and holds of the demo card are
// bal and held.
func simAt(t *testing.T, sim *gwsim.Sim, what string, bal, held spec.Amount) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s: bank balance %d held %d", what, bal, held), func() bool {
		return simBalance(t, sim) == bal && simHeld(t, sim) == held
	})
}

// TestGatewayLinkCompletionAtAnotherTerminal: as at the local ledger, a
// forwarded pre-auth is completed or cancelled at another terminal of its
// merchant (field 61 is the pre-auth's terminal's batch and STAN); that
// terminal's reversal of its completion reaches the bank too — though
// that completion is numbered (batch, STAN) like the pre-auth, so the
// cancel's field 61 also names it at its own terminal. An approval code
// that is not the pre-auth's reaches nothing at the bank.
func TestGatewayLinkCompletionAtAnotherTerminal(t *testing.T) {
	sw, sim := linkedSwitch(t)
	front := signedOn(t, sw, termCanteen, canteen)
	desk := signedOn(t, sw, termCanteen2, canteen)
	if front.Batch != desk.Batch {
		t.Fatalf("batches %s and %s: the test numbers the completion like the pre-auth", front.Batch, desk.Batch)
	}
	front.SetSTAN(1000)
	preAuth := func(amount spec.Amount) (*spec.POSMessage, *spec.POSMessage) {
		t.Helper()
		req, err := front.PreAuth(bankCard, amount, bankPIN)
		resp := do(t, front, req, err)
		expectRC(t, "pre-auth", resp, spec.RCApproved)
		return req, resp
	}
	auth, authResp := preAuth(6000)
	simAt(t, sim, "pre-auth", bankStart, 6000)

	wrong := *authResp
	wrong.AuthCode = "999999"
	sent := len(sim.Entries())
	req, err := desk.Completion(auth, &wrong, 5000, bankPIN)
	if resp := do(t, desk, req, err); resp.ResponseCode == spec.RCApproved {
		t.Fatal("completion with another approval code approved")
	}
	if n := len(sim.Entries()); n != sent {
		t.Fatalf("%d requests reached the bank for a completion naming no pre-auth", n-sent)
	}

	// Another card naming the pre-auth, at its own terminal or the other:
	// refused, nothing sent.
	for _, at := range []*posclient.Terminal{front, desk} {
		other := *auth
		other.PAN = "6222020000000000026"
		req, err := at.Completion(&other, authResp, 5000, bankPIN)
		if resp := do(t, at, req, err); resp.ResponseCode == spec.RCApproved {
			t.Fatalf("completion of another card's pre-auth approved at %s", at.ID)
		}
		if n := len(sim.Entries()); n != sent {
			t.Fatalf("%d requests reached the bank for another card's completion at %s", n-sent, at.ID)
		}
	}

	desk.SetSTAN(1000)
	comp, err := desk.Completion(auth, authResp, 5000, bankPIN)
	if comp.STAN != auth.STAN {
		t.Fatalf("completion STAN %s, pre-auth's %s", comp.STAN, auth.STAN)
	}
	compResp := do(t, desk, comp, err)
	expectRC(t, "completion at the other terminal", compResp, spec.RCApproved)
	simAt(t, sim, "completion", bankStart-5000, 0)
	expectRC(t, "its reversal", do(t, desk, desk.Reversal(comp, spec.ReversalOther), nil), spec.RCApproved)
	simAt(t, sim, "completion reversed", bankStart, 6000)
	reversalsAcked(t, sw)

	cancel, err := desk.PreAuthCancel(auth, authResp, bankPIN)
	expectRC(t, "cancel at the other terminal", do(t, desk, cancel, err), spec.RCApproved)
	simAt(t, sim, "cancel", bankStart, 0)
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayLinkPreAuth: pre-auth (0100 030000), its cancel (0100
// 200000), completion (0200 000000) and completion void (0200 200000),
// all with condition code 06, go to the bank, which holds and releases
// the amount; a completion without answer is answered 98 and reversed
// (the bank debits back and restores the hold); the terminal's reversal
// of each is delivered with its reason.
func TestGatewayLinkPreAuth(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	call := func(m *spec.POSMessage, err error) *spec.POSMessage { t.Helper(); return do(t, term, m, err) }
	preAuth := func(amount spec.Amount) (*spec.POSMessage, *spec.POSMessage) {
		t.Helper()
		req, err := term.PreAuth(bankCard, amount, bankPIN)
		resp := call(req, err)
		expectRC(t, "pre-auth", resp, spec.RCApproved)
		if resp.AuthCode == "" {
			t.Fatal("pre-auth approved without an approval code")
		}
		return req, resp
	}

	// Pre-auth holds, completion debits part and releases the hold,
	// completion void credits it back.
	auth, authResp := preAuth(10000)
	simAt(t, sim, "pre-auth", bankStart, 10000)
	expectRC(t, "pre-auth over the available balance", call(term.PreAuth(bankCard, bankStart-5000, bankPIN)), spec.RCInsufficientFunds)
	comp, err := term.Completion(auth, authResp, 8000, bankPIN)
	compResp := call(comp, err)
	expectRC(t, "completion", compResp, spec.RCApproved)
	simAt(t, sim, "completion", bankStart-8000, 0)
	// The second completion is declined by the switch, unsent.
	expectRC(t, "second completion", call(term.Completion(auth, authResp, 100, bankPIN)), spec.RCInvalidTransaction)
	expectRC(t, "completion void", call(term.CompletionVoid(comp, compResp, bankPIN)), spec.RCApproved)
	simAt(t, sim, "completion void", bankStart, 0)

	// A cancel releases the hold; an approval code that is not the
	// pre-auth's finds nothing (25, nothing sent).
	auth, authResp = preAuth(2000)
	wrong := *authResp
	wrong.AuthCode = "999999"
	expectRC(t, "cancel with another approval code", call(term.PreAuthCancel(auth, &wrong, bankPIN)), spec.RCOriginalNotFound)
	cancel, err := term.PreAuthCancel(auth, authResp, bankPIN)
	expectRC(t, "cancel", call(cancel, err), spec.RCApproved)
	simAt(t, sim, "cancel", bankStart, 0)
	// The terminal's reversal of the cancel puts the hold back.
	expectRC(t, "reversal of the cancel", call(term.Reversal(cancel, spec.ReversalOther), nil), spec.RCApproved)
	simAt(t, sim, "cancel reversed", bankStart, 2000)
	// The terminal's reversal of the pre-auth releases it.
	expectRC(t, "reversal of the pre-auth", call(term.Reversal(auth, spec.ReversalTimeout), nil), spec.RCApproved)
	simAt(t, sim, "pre-auth reversed", bankStart, 0)

	// A completion without answer: 98, its reversal debits back and
	// restores the hold, which a cancel then releases.
	auth, authResp = preAuth(4000)
	_ = sim.SetFaults(gwsim.Faults{DropPercent: 100})
	expectRC(t, "completion without answer", call(term.Completion(auth, authResp, 4000, bankPIN)), spec.RCNoAnswer)
	_ = sim.SetFaults(gwsim.Faults{})
	simAt(t, sim, "completion reversed", bankStart, 4000)
	reversalsAcked(t, sw)
	expectRC(t, "cancel after the reversed completion", call(term.PreAuthCancel(auth, authResp, bankPIN)), spec.RCApproved)
	simAt(t, sim, "cancel", bankStart, 0)

	// A pre-auth without answer: 98, its reversal releases the hold.
	_ = sim.SetFaults(gwsim.Faults{DropPercent: 100})
	expectRC(t, "pre-auth without answer", call(term.PreAuth(bankCard, 3000, bankPIN)), spec.RCNoAnswer)
	_ = sim.SetFaults(gwsim.Faults{})
	simAt(t, sim, "pre-auth reversed", bankStart, 0)

	// The terminal's reversals of a completion and of a completion void.
	auth, authResp = preAuth(5000)
	comp, err = term.Completion(auth, authResp, 5000, bankPIN)
	compResp = call(comp, err)
	expectRC(t, "completion", compResp, spec.RCApproved)
	void, err := term.CompletionVoid(comp, compResp, bankPIN)
	expectRC(t, "completion void", call(void, err), spec.RCApproved)
	simAt(t, sim, "completion voided", bankStart, 0)
	expectRC(t, "reversal of the completion void", call(term.Reversal(void, spec.ReversalMACError), nil), spec.RCApproved)
	simAt(t, sim, "completion void reversed", bankStart-5000, 0)
	expectRC(t, "reversal of the completion", call(term.Reversal(comp, spec.ReversalOther), nil), spec.RCApproved)
	simAt(t, sim, "completion reversed", bankStart, 5000)
	reversalsAcked(t, sw)
	expectRC(t, "cancel", call(term.PreAuthCancel(auth, authResp, bankPIN)), spec.RCApproved)
	simAt(t, sim, "cancel", bankStart, 0)

	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
	// What the bank saw: each pre-auth message with its MTI and
	// processing code (the bank classifies by them and 25 = 06), and
	// each reversal naming an original of the family.
	ops := map[gwsim.Op]int{}
	for _, e := range sim.Entries() {
		ops[e.Op]++
		want := map[gwsim.Op]string{gwsim.OpPreAuth: "0100/030000", gwsim.OpPreAuthCancel: "0100/200000",
			gwsim.OpCompletion: "0200/000000", gwsim.OpCompletionVoid: "0200/200000"}[e.Op]
		if want != "" && e.MTI+"/"+e.Processing != want {
			t.Errorf("bank entry %s: %s/%s", e.Op, e.MTI, e.Processing)
		}
	}
	// The reasons the bank was given: the terminal's (98, 06; its A0 is
	// 06 on the gateway) and 98 for the switch's own on a timeout.
	byKey := map[string]gwsim.Entry{}
	reasons := map[string]bool{}
	for _, e := range sim.Entries() {
		byKey[e.Key] = e
		if e.Op == gwsim.OpReversal {
			reasons[string(byKey[e.Original].Op)+" "+e.Reason] = true
		}
	}
	wantReasons := map[string]bool{"pre_auth_cancel 06": true, "pre_auth 98": true, "pre_auth_completion 98": true,
		"completion_void 06": true, "pre_auth_completion 06": true}
	if fmt.Sprint(reasons) != fmt.Sprint(wantReasons) {
		t.Errorf("reversal reasons at the bank %v, want %v", reasons, wantReasons)
	}
	if ops[gwsim.OpPreAuth] != 6 || ops[gwsim.OpPreAuthCancel] != 3 || ops[gwsim.OpCompletion] != 3 ||
		ops[gwsim.OpCompletionVoid] != 2 || ops[gwsim.OpConsume] != 0 || ops[gwsim.OpVoid] != 0 {
		t.Fatalf("bank operations %v", ops)
	}
}

// routesTo is the switch's configuration with every route to from sent
// to to instead.
func routesTo(sw *Switch, from, to string) *Config {
	cfg := *sw.cfg
	cfg.Routes = append([]routing.Rule(nil), sw.cfg.Routes...)
	for i := range cfg.Routes {
		if cfg.Routes[i].Destination == from {
			cfg.Routes[i].Destination = to
		}
	}
	return &cfg
}

// TestFollowUpsFollowTheirOriginal: a reload that moves a BIN between a
// link and the local ledger does not move what follows a transaction
// already decided: a void, refund, completion or cancel goes where its
// original went (the links' journal knows), whatever the routes say now.
func TestFollowUpsFollowTheirOriginal(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	call := func(m *spec.POSMessage, err error) *spec.POSMessage { t.Helper(); return do(t, term, m, err) }

	buy, err := term.Consume(bankCard, 3000, bankPIN)
	bought := call(buy, err)
	expectRC(t, "bank consume", bought, spec.RCApproved)
	buy2, err := term.Consume(bankCard, 5000, bankPIN)
	bought2 := call(buy2, err)
	expectRC(t, "bank consume", bought2, spec.RCApproved)
	auth, err := term.PreAuth(bankCard, 4000, bankPIN)
	authResp := call(auth, err)
	expectRC(t, "bank pre-auth", authResp, spec.RCApproved)
	simAt(t, sim, "before the reload", bankStart-8000, 4000)
	campusBefore, ok := sw.ledger.Card(cardStudent)
	if !ok {
		t.Fatal("no demo card")
	}
	local, err := term.Consume(cardStudent, 1234, pinStudent)
	localResp := call(local, err)
	expectRC(t, "local consume", localResp, spec.RCApproved)

	// The operator sends the bank's BIN to the local ledger and the
	// campus BIN to the bank (a SIGHUP reload).
	cfg := routesTo(sw, demoBank, "swap")
	cfg = routesTo(&Switch{cfg: cfg}, "local", demoBank)
	cfg = routesTo(&Switch{cfg: cfg}, "swap", "local")
	if rep, err := sw.Reload(cfg); err != nil || !rep.Routes {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	if name, err := sw.routes.Load().Route(bankCard, "consume_void", canteen); err != nil || name != "local" {
		t.Fatalf("reloaded route of the bank card %q %v", name, err)
	}

	expectRC(t, "void after the reload", call(term.Void(buy, bought, bankPIN)), spec.RCApproved)
	expectRC(t, "refund after the reload", call(term.Refund(buy2, bought2, 2000), nil), spec.RCApproved)
	expectRC(t, "completion after the reload", call(term.Completion(auth, authResp, 4000, bankPIN)), spec.RCApproved)
	simAt(t, sim, "void, refund and completion at the bank", bankStart-3000-4000, 0)

	expectRC(t, "void of the local consume", call(term.Void(local, localResp, pinStudent)), spec.RCApproved)
	if v, _ := sw.ledger.Card(cardStudent); v.Balances.Available != campusBefore.Balances.Available {
		t.Fatalf("campus card available %s after the void, want %s", v.Balances.Available, campusBefore.Balances.Available)
	}
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestFollowUpOfARemovedLink: a transaction forwarded on a link that is
// no longer configured cannot be voided or reversed anywhere else — not
// at the local ledger, which never held its money: answered 96, the bank
// untouched.
func TestFollowUpOfARemovedLink(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(bankCard, 2500, bankPIN)
	bought := do(t, term, buy, err)
	expectRC(t, "bank consume", bought, spec.RCApproved)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := routesTo(sw, demoBank, "local")
	cfg.Gateways, cfg.Seed.ZoneKeys = nil, nil
	next, err := New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = next.Shutdown(context.Background()) })
	// The terminal carries on in its batch on a new connection.
	pos, _, _ := next.Addrs()
	c, err := posclient.Dial(pos, posclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	term.Client = c
	expectRC(t, "void on a removed link", do(t, term, mustReq(term.Void(buy, bought, bankPIN)), nil), spec.RCSystemMalfunction)
	expectRC(t, "reversal on a removed link", do(t, term, term.Reversal(buy, spec.ReversalOther), nil), spec.RCSystemMalfunction)
	if got := simBalance(t, sim); got != bankStart-2500 {
		t.Fatalf("bank balance %v", got)
	}
}

// TestGatewayRefundAtAnotherTerminal: a refund finds its bank consume by
// the RRN it names, at any terminal of the merchant — not by its field
// 61 on the refunding terminal, where the same batch and STAN name
// another transaction; at another merchant it is declined 12 with
// nothing sent, as the local ledger declines it.
func TestGatewayRefundAtAnotherTerminal(t *testing.T) {
	sw, sim := linkedSwitch(t)
	a := signedOn(t, sw, termCanteen, canteen)
	b := signedOn(t, sw, termCanteen2, canteen)
	if a.Batch != b.Batch {
		t.Fatalf("fresh terminals in batches %s and %s: the test needs them equal", a.Batch, b.Batch)
	}
	buy, err := a.Consume(bankCard, 5000, bankPIN)
	bought := do(t, a, buy, err)
	expectRC(t, "consume at A", bought, spec.RCApproved)
	// B's own consume under the same batch and STAN as A's.
	stan, _ := strconv.ParseUint(buy.STAN, 10, 32)
	b.SetSTAN(uint32(stan) - 1)
	other, err := b.Consume(bankCard, 1000, bankPIN)
	if err != nil || other.STAN != buy.STAN {
		t.Fatalf("B's consume STAN %s, want %s (%v)", other.STAN, buy.STAN, err)
	}
	expectRC(t, "consume at B", do(t, b, other, nil), spec.RCApproved)

	expectRC(t, "refund at B of A's consume", do(t, b, b.Refund(buy, bought, 2000), nil), spec.RCApproved)
	simAt(t, sim, "refund", bankStart-5000-1000+2000, 0)
	var consumeKey string
	for _, e := range sim.Entries() {
		if e.Op == gwsim.OpConsume && e.Amount == 5000 {
			consumeKey = e.Key
		}
		if e.Op == gwsim.OpRefund && e.Original != consumeKey {
			t.Fatalf("the bank refunded %s, not A's consume %s", e.Original, consumeKey)
		}
	}

	cafe := signedOn(t, sw, termCafe, partnerCafe)
	expectRC(t, "refund at another merchant", do(t, cafe, cafe.Refund(buy, bought, 1000), nil), spec.RCInvalidTransaction)
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
	simAt(t, sim, "nothing more", bankStart-5000-1000+2000, 0)
}
