package switching

import (
	"testing"

	"github.com/cardswitch/cardswitch/internal/rechargesim"
	"github.com/cardswitch/cardswitch/spec"
)

// credit_mode: pending — an outside credit waits as pending (balance
// inquiry: account type 02), a load terminal claims it (field 4 = the
// amount moved), a second claim moves nothing, a claim is reversible, and
// old unclaimed credits are listed for refund.
func TestRechargePendingLoads(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.Recharge.CreditMode = "pending" })
	c := dialInst(t, sw, demoInst)
	a, err := c.Credit(rechargesim.Op{Order: "PEND-1", Card: cardStaff, Amount: 2500})
	want(t, "pending credit", a, err, "00")
	expectPurses(t, sw, cardStaff, 100000, 0)

	term := signedOn(t, sw, termCanteen, canteen)
	breq, err := term.Balance(cardStaff, pinStaff)
	bal := do(t, term, breq, err)
	expectRC(t, "balance inquiry", bal, spec.RCApproved)
	bs, err := spec.ParseBalances(bal.Balances)
	if err != nil || len(bs) != 2 || bs[0].AccountType != "00" || bs[0].Amount != 100000 ||
		bs[1].AccountType != spec.AccountPendingLoad || bs[1].Amount != 2500 {
		t.Fatalf("field 54 %q: %+v %v", bal.Balances, bs, err)
	}
	// Only a load terminal may claim.
	expectRC(t, "claim at a POS", do(t, term, term.PendingClaim(cardStaff), nil), spec.RCNotPermittedTerminal)

	// The operator's refund list: the credit is younger than a day.
	_, _, admin := sw.Addrs()
	var pending struct {
		Credits  []struct{ Order string }
		TotalFen int64 `json:"total_fen"`
	}
	adminGet(t, admin, "/api/v1/recharge/pending?older_than_days=0", &pending)
	if len(pending.Credits) != 0 {
		t.Fatalf("refund list of credits older than 0 days: %+v", pending)
	}

	kiosk := signedOn(t, sw, termKiosk, canteen)
	claim := kiosk.PendingClaim(cardStaff)
	resp := do(t, kiosk, claim, nil)
	expectRC(t, "claim", resp, spec.RCApproved)
	if !resp.HasAmount || resp.Amount != 2500 {
		t.Fatalf("claim answer field 4: %v %d", resp.HasAmount, resp.Amount)
	}
	expectPurses(t, sw, cardStaff, 102500, 0)
	again := do(t, kiosk, kiosk.PendingClaim(cardStaff), nil)
	expectRC(t, "claim with nothing pending", again, spec.RCApproved)
	if !again.HasAmount || again.Amount != 0 {
		t.Fatalf("empty claim field 4: %v %d", again.HasAmount, again.Amount)
	}
	// The terminal reverses the first claim: the money is pending again.
	rev := do(t, kiosk, kiosk.Reversal(claim, spec.ReversalTimeout), nil)
	expectRC(t, "claim reversal", rev, spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000, 0)
	if v, _ := sw.ledger.Card(cardStaff); v.Pending != 2500 {
		t.Fatalf("pending %s after the claim's reversal", v.Pending)
	}
	checkLedger(t, sw)
}
