package switching

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/admin"
	"github.com/cardswitch/cardswitch/switch/transfer"
)

const bankAccount = "1102000000000018" // gwsim's account of bankCard

// transferSwitch is a switch linked to gwsim with the staff card bound to
// gwsim's demo account, transfer limits of 500.00 a load and 800.00 a day.
func transferSwitch(t *testing.T) (*Switch, *gwsim.Sim) {
	t.Helper()
	sw, sim := linkedSwitch(t, func(c *Config) {
		c.Transfer = TransferConfig{MaxLoad: 50000, MaxDailyLoad: 80000}
		// Generous: a lost-between-legs test holds the bank's answer
		// back, and CI runs the race detector on two cores.
		c.Gateways[0].SendTimeout = 3 * time.Second
	})
	if _, err := sw.recharge.svc.Bind(cardStaff, demoBank, bankCard, bankAccount, "test"); err != nil {
		t.Fatal(err)
	}
	return sw, sim
}

func transferResults(sw *Switch, result string) float64 {
	return testutil.ToFloat64(sw.transfer.ResultCounter(result))
}

func TestTransferLoadEndToEnd(t *testing.T) {
	sw, sim := transferSwitch(t)
	kiosk := signedOn(t, sw, termKiosk, canteen)
	cash, _ := purses(t, sw, cardStaff)

	// Approved: the bank debits the bound account, then the card is
	// credited; 54 shows the new balance.
	req, err := kiosk.TransferLoad(cardStaff, 10000, pinStaff)
	load := do(t, kiosk, req, err)
	expectRC(t, "transfer load", load, spec.RCApproved)
	if bs, err := spec.ParseBalances(load.Balances); err != nil || len(bs) == 0 || bs[0].Amount != spec.Amount(cash+10000) {
		t.Fatalf("field 54 %q: %v", load.Balances, err)
	}
	expectPurses(t, sw, cardStaff, cash+10000, 0)
	if got := simBalance(t, sim); got != bankStart-10000 {
		t.Fatalf("bank balance %v", got)
	}
	var leg *gwsim.Entry
	for _, e := range sim.Entries() {
		if e.Op == gwsim.OpLoad {
			leg = &e
		}
	}
	if leg == nil || leg.Beneficiary != cardStaff || leg.Account != bankAccount || leg.RRN != load.RRN || leg.RC != spec.RCApproved {
		t.Fatalf("bank leg %+v", leg)
	}
	// A retransmission gets the stored answer: nothing moves twice.
	again, err := kiosk.Do(req)
	if err != nil || again.ResponseCode != spec.RCApproved || again.RRN != load.RRN {
		t.Fatalf("retransmission: %v %+v", err, again)
	}
	expectPurses(t, sw, cardStaff, cash+10000, 0)
	if got := simBalance(t, sim); got != bankStart-10000 {
		t.Fatalf("bank balance after the retransmission %v", got)
	}

	// What names the load as its original but is not its reversal moves
	// nothing on either side: a void (25), a reversal claiming another
	// type (00, it matches no original).
	v, err := kiosk.Void(req, load, pinStaff)
	expectRC(t, "void of a transfer load", do(t, kiosk, v, err), spec.RCOriginalNotFound)
	other := kiosk.Reversal(req, spec.ReversalTimeout)
	other.ProcessingCode, other.Reserved60.Type = "000000", "22"
	expectRC(t, "reversal claiming a consume", do(t, kiosk, other, nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash+10000, 0)

	// Declines before the bank leg: nothing sent.
	sent := len(sim.Entries())
	call := func(pan string, amount spec.Amount, pin string) *spec.POSMessage {
		t.Helper()
		r, err := kiosk.TransferLoad(pan, amount, pin)
		return do(t, kiosk, r, err)
	}
	expectRC(t, "unknown card", call("6230151000000009999", 100, pinStaff), spec.RCInvalidCard)
	expectRC(t, "unbound card", call(cardStudent, 100, pinStudent), spec.RCNotPermittedCard)
	expectRC(t, "lost card", call(cardLost, 100, pinStudent), spec.RCLostCard)
	expectRC(t, "over the per-load limit", call(cardStaff, 50001, pinStaff), spec.RCExceedsAmountLimit)
	expectRC(t, "over the daily limit", call(cardStaff, 70001, pinStaff), spec.RCExceedsAmountLimit)
	expectRC(t, "wrong PIN", call(cardStaff, 100, "000000"), spec.RCIncorrectPIN)
	expectRC(t, "no PIN", call(cardStaff, 100, ""), spec.RCIncorrectPIN)
	if n := len(sim.Entries()); n != sent {
		t.Fatalf("%d requests reached the bank for declined loads", n-sent)
	}
	// A consume terminal may not load.
	canteenTerm := signedOn(t, sw, termCanteen, canteen)
	r, err := canteenTerm.TransferLoad(cardStaff, 100, pinStaff)
	expectRC(t, "not a kiosk", do(t, canteenTerm, r, err), spec.RCNotPermittedTerminal)

	// The bank's decline passes through; the card is not credited.
	_ = sim.SetFaults(gwsim.Faults{Decline: spec.RCInsufficientFunds})
	expectRC(t, "bank decline", call(cardStaff, 100, pinStaff), spec.RCInsufficientFunds)
	expectPurses(t, sw, cardStaff, cash+10000, 0)

	// No answer: 98, the debit is reversed through store-and-forward.
	_ = sim.SetFaults(gwsim.Faults{DropPercent: 100})
	expectRC(t, "no answer", call(cardStaff, 2000, pinStaff), spec.RCNoAnswer)
	_ = sim.SetFaults(gwsim.Faults{})
	waitUntil(t, "the unanswered debit reversed", func() bool { return simBalance(t, sim) == bankStart-10000 })
	expectPurses(t, sw, cardStaff, cash+10000, 0)

	// The terminal's reversal of an approved load: the credit comes
	// back off the card, the bank gives the money back.
	req, err = kiosk.TransferLoad(cardStaff, 3000, pinStaff)
	expectRC(t, "second load", do(t, kiosk, req, err), spec.RCApproved)
	expectRC(t, "reversal", do(t, kiosk, kiosk.Reversal(req, spec.ReversalTimeout), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash+10000, 0)
	waitUntil(t, "the reversed load's debit given back", func() bool { return simBalance(t, sim) == bankStart-10000 })

	recs, _, err := sw.transfer.List(transfer.Filter{Card: cardStaff})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, r := range recs {
		states[r.State]++
	}
	if states[transfer.StateCredited] != 1 || states[transfer.StateReversed] != 1 || states[transfer.StateNoAnswer] != 1 ||
		states[transfer.StateBankDeclined] != 1 {
		t.Fatalf("transfer records %v", states)
	}
	for result, want := range map[string]float64{transfer.ResultCredited: 2, transfer.ResultReversed: 1,
		transfer.ResultNoAnswer: 1, transfer.ResultBankDeclined: 1, transfer.ResultDeclined: 7} {
		if got := transferResults(sw, result); got != want {
			t.Errorf("switch_transfer_loads_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	// The admin API (switchctl transfer list) shows them, card masked.
	status, body := adminCall(t, sw, "GET", "/api/v1/transfers?card="+cardStaff+"&limit=2", nil)
	var page admin.TransfersPage
	if err := json.Unmarshal(body, &page); status != 200 || err != nil || len(page.Transfers) != 2 || page.Next == "" ||
		page.Transfers[0].Card == cardStaff || strings.Contains(string(body), cardStaff) {
		t.Fatalf("GET /api/v1/transfers: %d %s", status, body)
	}
	status, body = adminCall(t, sw, "GET", "/api/v1/transfers?card="+cardStaff+"&after="+url.QueryEscape(page.Next), nil)
	if err := json.Unmarshal(body, &page); status != 200 || err != nil || len(page.Transfers) != 2 || page.Next != "" {
		t.Fatalf("second page: %d %s", status, body)
	}
	// The bank's daily file reconciles with the switch's day: every
	// transfer leg on both sides, the reversed ones reversed on both.
	if today := sw.clock.Today(); sim.BusinessDate(time.Now()) == today.String() {
		var file bytes.Buffer
		if _, err := sim.WriteReconTo(&file, today.String(), gwsim.Plant{}); err != nil {
			t.Fatal(err)
		}
		rep, ok := importFile(t, sw, demoBank, today, file.Bytes())
		if !ok || rep.Matched.Count == 0 || rep.OursOnly.Count != 0 || rep.TheirsOnly.Count != 0 ||
			rep.AmountDiffers.Count != 0 || rep.StatusDiffers.Count != 0 {
			t.Fatalf("reconciliation: %+v\n%s", rep, file.String())
		}
	}
	checkLedger(t, sw)
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestTransferLoadFrozenCard: a frozen card is loaded from its bank
// account as it is with cash (a freeze stops debits, not loads): 00, the
// bank debited, the card credited and still frozen, its consumes still 45.
func TestTransferLoadFrozenCard(t *testing.T) {
	sw, sim := transferSwitch(t)
	kiosk := signedOn(t, sw, termKiosk, canteen)
	if err := sw.ledger.Freeze(cardStaff); err != nil {
		t.Fatal(err)
	}
	cash, _ := purses(t, sw, cardStaff)
	req, err := kiosk.TransferLoad(cardStaff, 4000, pinStaff)
	expectRC(t, "transfer load onto a frozen card", do(t, kiosk, req, err), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash+4000, 0)
	if got := simBalance(t, sim); got != bankStart-4000 {
		t.Fatalf("bank balance %v", got)
	}
	expectRC(t, "cash load onto a frozen card", do(t, kiosk, kiosk.CashLoad(cardStaff, 1000), nil), spec.RCApproved)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err = term.Consume(cardStaff, 100, pinStaff)
	expectRC(t, "consume with a frozen card", do(t, term, req, err), spec.RCFrozenCard)
	checkLedger(t, sw)
}

// TestTransferLoadCardLostBetweenLegs: the bank approves, but the card
// was reported lost while the debit was on its way: the card is not
// credited, the terminal gets the card's decline and the debit is
// reversed.
func TestTransferLoadCardLostBetweenLegs(t *testing.T) {
	sw, sim := transferSwitch(t)
	kiosk := signedOn(t, sw, termKiosk, canteen)
	cash, _ := purses(t, sw, cardStaff)
	_ = sim.SetFaults(gwsim.Faults{Delay: 1500 * time.Millisecond})
	// Report the card lost once the debit has reached the bank (gwsim
	// holds its answer back after processing).
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if b, _ := sim.Balance(bankCard); b != bankStart {
				_ = sw.ledger.ReportLost(cardStaff)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	req, err := kiosk.TransferLoad(cardStaff, 4000, pinStaff)
	expectRC(t, "load onto a card lost meanwhile", do(t, kiosk, req, err), spec.RCLostCard)
	_ = sim.SetFaults(gwsim.Faults{})
	expectPurses(t, sw, cardStaff, cash, 0)
	waitUntil(t, "the debit reversed", func() bool { return simBalance(t, sim) == bankStart })
	if got := transferResults(sw, transfer.ResultRefused); got != 1 {
		t.Fatalf("refused %v", got)
	}
	checkLedger(t, sw)
}

// TestTransferLoadReversalAfterClose: a card closed after its transfer
// load has its balance, the load included, in the refund payable; the
// kiosk's late reversal is then declined (14) and the bank's debit is
// not reversed — the holder is refunded once, by the school.
func TestTransferLoadReversalAfterClose(t *testing.T) {
	sw, sim := transferSwitch(t)
	kiosk := signedOn(t, sw, termKiosk, canteen)
	req, err := kiosk.TransferLoad(cardStaff, 2500, pinStaff)
	expectRC(t, "load", do(t, kiosk, req, err), spec.RCApproved)
	if err := sw.ledger.CloseCard(cardStaff); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "reversal after close", do(t, kiosk, kiosk.Reversal(req, spec.ReversalTimeout), nil), spec.RCInvalidCard)
	queued, err := sw.links.SAFList(demoBank, false, 10)
	if err != nil || len(queued) != 0 {
		t.Fatalf("reversal queued at the bank: %v %v", queued, err)
	}
	if got := simBalance(t, sim); got != bankStart-2500 {
		t.Fatalf("bank balance %v", got)
	}
	checkLedger(t, sw)
}
