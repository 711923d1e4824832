package switching

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// simOps counts the bank's entries of op.
func simOps(sim *gwsim.Sim, op gwsim.Op) int {
	n := 0
	for _, e := range sim.Entries() {
		if e.Op == op {
			n++
		}
	}
	return n
}

// TestLinkPreAuthClosedOnce: the switch itself declines, with nothing
// sent, a completion above its forwarded pre-auth (61) and a completion
// or cancel of a pre-auth already completed (12), at its own terminal or
// another of the merchant; a completion reversed leaves the pre-auth open
// again; of two completions at once, one reaches the bank.
func TestLinkPreAuthClosedOnce(t *testing.T) {
	sw, sim := linkedSwitch(t)
	front := signedOn(t, sw, termCanteen, canteen)
	desk := signedOn(t, sw, termCanteen2, canteen)
	preAuth := func(amount spec.Amount) (*spec.POSMessage, *spec.POSMessage) {
		t.Helper()
		req, err := front.PreAuth(bankCard, amount, bankPIN)
		resp := do(t, front, req, err)
		expectRC(t, "pre-auth", resp, spec.RCApproved)
		return req, resp
	}
	unsent := func(what string, term *posclient.Terminal, req *spec.POSMessage, err error, want string) {
		t.Helper()
		sent := len(sim.Entries())
		expectRC(t, what, do(t, term, req, err), want)
		if n := len(sim.Entries()); n != sent {
			t.Fatalf("%s: %d requests reached the bank", what, n-sent)
		}
	}

	auth, authResp := preAuth(6000)
	simAt(t, sim, "pre-auth", bankStart, 6000)
	for _, term := range []*posclient.Terminal{front, desk} {
		req, err := term.Completion(auth, authResp, 6001, bankPIN)
		unsent("completion above the pre-auth at "+term.ID, term, req, err, spec.RCExceedsAmountLimit)
	}
	comp, err := desk.Completion(auth, authResp, 5000, bankPIN)
	compResp := do(t, desk, comp, err)
	expectRC(t, "completion at the other terminal", compResp, spec.RCApproved)
	simAt(t, sim, "completion", bankStart-5000, 0)
	for _, term := range []*posclient.Terminal{front, desk} {
		req, err := term.Completion(auth, authResp, 100, bankPIN)
		unsent("second completion at "+term.ID, term, req, err, spec.RCInvalidTransaction)
		req, err = term.PreAuthCancel(auth, authResp, bankPIN)
		unsent("cancel of a completed pre-auth at "+term.ID, term, req, err, spec.RCInvalidTransaction)
	}
	// Reversed, the completion no longer stands: the pre-auth may be
	// completed again.
	expectRC(t, "reversal of the completion", do(t, desk, desk.Reversal(comp, spec.ReversalOther), nil), spec.RCApproved)
	simAt(t, sim, "completion reversed", bankStart, 6000)
	reversalsAcked(t, sw)
	req, err := front.Completion(auth, authResp, 6000, bankPIN)
	expectRC(t, "completion after the reversed one", do(t, front, req, err), spec.RCApproved)
	simAt(t, sim, "completed again", bankStart-6000, 0)

	// Two completions at once, at two terminals, while the bank is slow:
	// one goes out, the other is declined by the switch.
	auth, authResp = preAuth(3000)
	simAt(t, sim, "second pre-auth", bankStart-6000, 3000)
	completions := simOps(sim, gwsim.OpCompletion)
	if err := sim.SetFaults(gwsim.Faults{Delay: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	rcs := make([]string, 2)
	errs := make([]error, 2)
	for i, term := range []*posclient.Terminal{front, desk} {
		req, err := term.Completion(auth, authResp, 3000, bankPIN)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := term.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			rcs[i] = resp.ResponseCode
		}()
	}
	wg.Wait()
	_ = sim.SetFaults(gwsim.Faults{})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(rcs); got != fmt.Sprint([]string{spec.RCApproved, spec.RCInvalidTransaction}) &&
		got != fmt.Sprint([]string{spec.RCInvalidTransaction, spec.RCApproved}) {
		t.Fatalf("two completions at once answered %v", rcs)
	}
	if n := simOps(sim, gwsim.OpCompletion) - completions; n != 1 {
		t.Fatalf("%d completions reached the bank", n)
	}
	simAt(t, sim, "one completion", bankStart-9000, 0)
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestLinkCompletionAfterRouteMovedToLocal: a reload that moves the
// bank's BIN to the local ledger does not strand a pre-auth that went out
// on the link: its completion at another terminal of the merchant still
// finds it and reaches the bank (it was 25 from the local ledger).
func TestLinkCompletionAfterRouteMovedToLocal(t *testing.T) {
	sw, sim := linkedSwitch(t)
	front := signedOn(t, sw, termCanteen, canteen)
	desk := signedOn(t, sw, termCanteen2, canteen)
	auth, err := front.PreAuth(bankCard, 4000, bankPIN)
	authResp := do(t, front, auth, err)
	expectRC(t, "bank pre-auth", authResp, spec.RCApproved)
	simAt(t, sim, "pre-auth", bankStart, 4000)

	if rep, err := sw.Reload(routesTo(sw, demoBank, "local")); err != nil || !rep.Routes {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	if name, err := sw.routes.Load().Route(bankCard, "pre_auth_completion", canteen); err != nil || name != "local" {
		t.Fatalf("reloaded route of the bank card %q %v", name, err)
	}
	comp, err := desk.Completion(auth, authResp, 3000, bankPIN)
	compResp := do(t, desk, comp, err)
	expectRC(t, "completion at the other terminal after the reload", compResp, spec.RCApproved)
	simAt(t, sim, "completion at the bank", bankStart-3000, 0)
	// Its reversal follows it to the bank too.
	expectRC(t, "its reversal", do(t, desk, desk.Reversal(comp, spec.ReversalOther), nil), spec.RCApproved)
	simAt(t, sim, "completion reversed", bankStart, 4000)
	reversalsAcked(t, sw)
	cancel, err := desk.PreAuthCancel(auth, authResp, bankPIN)
	expectRC(t, "cancel at the other terminal after the reload", do(t, desk, cancel, err), spec.RCApproved)
	simAt(t, sim, "cancel", bankStart, 0)
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestLinkCompletionVoidInFlight: a completion void reopens the pre-auth
// only once the bank has answered it 00 — while it is in flight, and
// after it was declined, a second completion at another terminal is
// declined 12 by the switch, unsent; after an approved void the pre-auth
// is completed again.
func TestLinkCompletionVoidInFlight(t *testing.T) {
	sw, sim := linkedSwitch(t)
	front := signedOn(t, sw, termCanteen, canteen)
	desk := signedOn(t, sw, termCanteen2, canteen)
	auth, err := front.PreAuth(bankCard, 5000, bankPIN)
	authResp := do(t, front, auth, err)
	expectRC(t, "pre-auth", authResp, spec.RCApproved)
	comp, err := front.Completion(auth, authResp, 5000, bankPIN)
	compResp := do(t, front, comp, err)
	expectRC(t, "completion", compResp, spec.RCApproved)
	simAt(t, sim, "completion", bankStart-5000, 0)
	secondUnsent := func(what string) {
		t.Helper()
		// Completions counted: a void unanswered in time (a slow
		// machine) has its reversal reach the bank meanwhile.
		sent := simOps(sim, gwsim.OpCompletion)
		req, err := desk.Completion(auth, authResp, 5000, bankPIN)
		expectRC(t, what, do(t, desk, req, err), spec.RCInvalidTransaction)
		if n := simOps(sim, gwsim.OpCompletion); n != sent {
			t.Fatalf("%s: %d completions reached the bank", what, n-sent)
		}
	}

	// The bank is slow and declines the void: while it is in flight the
	// completion stands.
	voids := simOps(sim, gwsim.OpCompletionVoid)
	if err := sim.SetFaults(gwsim.Faults{Delay: linkSendTimeout * 3 / 4, Decline: spec.RCDoNotHonour}); err != nil {
		t.Fatal(err)
	}
	void, err := front.CompletionVoid(comp, compResp, bankPIN)
	if err != nil {
		t.Fatal(err)
	}
	voidRC := make(chan string, 1)
	go func() {
		resp, err := front.Do(void)
		if err != nil {
			voidRC <- err.Error()
			return
		}
		voidRC <- resp.ResponseCode
	}()
	waitUntil(t, "the void at the bank", func() bool { return simOps(sim, gwsim.OpCompletionVoid) > voids })
	secondUnsent("second completion while the void is in flight")
	// Declined (or, on a slow machine, unanswered in time and reversed):
	// the completion still stands.
	if rc := <-voidRC; rc != spec.RCDoNotHonour && rc != spec.RCNoAnswer {
		t.Fatalf("declined completion void answered %s", rc)
	}
	if err := sim.SetFaults(gwsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	simAt(t, sim, "void declined", bankStart-5000, 0)
	secondUnsent("second completion after the declined void")

	// Approved, the void reopens the pre-auth at the switch; the bank
	// decides on the new completion.
	void, err = front.CompletionVoid(comp, compResp, bankPIN)
	expectRC(t, "completion void", do(t, front, void, err), spec.RCApproved)
	simAt(t, sim, "completion voided", bankStart, 0)
	completions := simOps(sim, gwsim.OpCompletion)
	req, err := desk.Completion(auth, authResp, 5000, bankPIN)
	do(t, desk, req, err)
	if n := simOps(sim, gwsim.OpCompletion) - completions; n != 1 {
		t.Fatalf("completion after the approved void: %d reached the bank", n)
	}
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestLocalPreAuthLookup: the POS protocol's look-up of a local pre-auth
// by its terminal reference (which spares a local completion the probe of
// the merchant's other terminals' link records) finds the local ledger's
// pre-auth of the card, and not a forwarded one or another card's; the
// local completion is approved.
func TestLocalPreAuthLookup(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	lookup := func(req *spec.POSMessage, card string) bool {
		t.Helper()
		batch, err1 := strconv.ParseUint(req.Reserved60.Batch, 10, 32)
		stan, err2 := strconv.ParseUint(req.STAN, 10, 32)
		if err1 != nil || err2 != nil {
			t.Fatalf("batch %q STAN %q", req.Reserved60.Batch, req.STAN)
		}
		held, err := posLocalPreAuths{sw}.LocalPreAuth(termCanteen, uint32(batch), uint32(stan), card)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	auth, err := term.PreAuth(cardStaff, 3000, pinStaff)
	authResp := do(t, term, auth, err)
	expectRC(t, "local pre-auth", authResp, spec.RCApproved)
	bank, err := term.PreAuth(bankCard, 3000, bankPIN)
	expectRC(t, "forwarded pre-auth", do(t, term, bank, err), spec.RCApproved)
	simAt(t, sim, "forwarded pre-auth", bankStart, 3000)
	if !lookup(auth, cardStaff) || lookup(auth, bankCard) || lookup(bank, bankCard) {
		t.Fatalf("local pre-auth found %v, as another card's %v; forwarded one found %v",
			lookup(auth, cardStaff), lookup(auth, bankCard), lookup(bank, bankCard))
	}
	comp, err := term.Completion(auth, authResp, 3000, pinStaff)
	expectRC(t, "local completion", do(t, term, comp, err), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 97000, 0)
}

// reversalsAcked waits until the bank has acknowledged every reversal
// queued on the demo bank's link: a completion or cancel reversed no
// longer stands (its request is marked reversed before the ack).
func reversalsAcked(t *testing.T, sw *Switch) {
	t.Helper()
	waitUntil(t, "reversals acknowledged", func() bool {
		st, err := sw.links.Status()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if s.Name == demoBank && s.SAFQueued == 0 {
				return true
			}
		}
		return false
	})
}

// TestLinkCompletionStandsUntilReversed: a completion without answer (98)
// stands until the bank has acknowledged its reversal — while the
// reversal is still being retried, a second completion at another
// terminal is declined 12 by the switch, unsent; once acknowledged, the
// pre-auth is completed again.
func TestLinkCompletionStandsUntilReversed(t *testing.T) {
	sw, sim := linkedSwitch(t)
	front := signedOn(t, sw, termCanteen, canteen)
	desk := signedOn(t, sw, termCanteen2, canteen)
	auth, err := front.PreAuth(bankCard, 4000, bankPIN)
	authResp := do(t, front, auth, err)
	expectRC(t, "pre-auth", authResp, spec.RCApproved)
	if err := sim.SetFaults(gwsim.Faults{DropPercent: 100}); err != nil {
		t.Fatal(err)
	}
	comp, err := front.Completion(auth, authResp, 4000, bankPIN)
	expectRC(t, "completion without answer", do(t, front, comp, err), spec.RCNoAnswer)
	// The bank reverses it but its answers are lost: the reversal stays
	// queued, retried.
	reversals := simOps(sim, gwsim.OpReversal)
	waitUntil(t, "the reversal at the bank", func() bool { return simOps(sim, gwsim.OpReversal) > reversals })
	simAt(t, sim, "completion reversed at the bank", bankStart, 4000)
	completions := simOps(sim, gwsim.OpCompletion)
	req, err := desk.Completion(auth, authResp, 4000, bankPIN)
	expectRC(t, "second completion while the reversal is unacknowledged", do(t, desk, req, err), spec.RCInvalidTransaction)
	if n := simOps(sim, gwsim.OpCompletion) - completions; n != 0 {
		t.Fatalf("%d completions reached the bank", n)
	}
	if err := sim.SetFaults(gwsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	reversalsAcked(t, sw)
	req, err = desk.Completion(auth, authResp, 4000, bankPIN)
	expectRC(t, "completion after the acknowledged reversal", do(t, desk, req, err), spec.RCApproved)
	simAt(t, sim, "completed", bankStart-4000, 0)
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
}
