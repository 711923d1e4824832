package switching

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// expectMACed fails unless resp carries field 64 and it verifies under the
// terminal's MAK (Terminal.Receive rejects a wrong one with an error, so a
// response that reached here with a MAC has a right one).
func expectMACed(t *testing.T, what string, resp *spec.POSMessage) {
	t.Helper()
	if resp.MAC == nil {
		t.Fatalf("%s: answer %s without a MAC", what, resp.ResponseCode)
	}
	block, err := spec.MACBlock(resp.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(block) == len(resp.Raw) {
		t.Fatalf("%s: MAC block is the whole message", what)
	}
}

// TestEveryDeclineIsMACed sends a request answered with each response code
// there is, once decided by a destination (recorded and stored) and once
// as a destination's rejection (decided nothing), and checks every answer
// carries a MAC the terminal verifies; then it provokes the ledger's and
// the pipeline's own declines after authentication on the demo data, which
// must be MACed too; and the answers given before the request is
// authenticated (97, 03, 77, A0), which must not carry one.
func TestEveryDeclineIsMACed(t *testing.T) {
	codes := spec.ResponseCodes()
	p := &probe{decide: func(tx *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
		// Amount 1..n decides codes[amount-1]; n+1..2n rejects it.
		i := int(tx.Amount) - 1
		if i >= len(codes) {
			return txn.Outcome{}, txn.Reject(codes[i-len(codes)], errors.New("probe rejects"))
		}
		o := txn.Outcome{ResponseCode: codes[i]}
		return o, rec.Commit(o)
	}}
	sw := probeSwitch(t, p)
	term := signedOn(t, sw, termCanteen, canteen)
	for i, rc := range codes {
		for _, how := range []struct {
			name   string
			amount int
		}{{"decided", i + 1}, {"rejected", len(codes) + i + 1}} {
			if how.name == "rejected" && rc == spec.RCApproved {
				continue // a rejection is never an approval
			}
			req, err := term.Consume(probeCard, spec.Amount(how.amount), "")
			resp := do(t, term, req, err)
			what := how.name + " " + rc
			expectRC(t, what, resp, rc)
			expectMACed(t, what, resp)
		}
	}

	// The ledger's declines and the pipeline's own, on the demo data.
	cases := []struct {
		name string
		req  func() (*spec.POSMessage, error)
		want string
	}{
		{"no PIN above the no-PIN limit", func() (*spec.POSMessage, error) { return term.Consume(cardStudent, 6000, "") }, spec.RCIncorrectPIN},
		{"over the per-transaction limit", func() (*spec.POSMessage, error) { return term.Consume(cardStudent, 20001, pinStudent) }, spec.RCExceedsAmountLimit},
		{"lost card", func() (*spec.POSMessage, error) { return term.Consume(cardLost, 100, "") }, spec.RCLostCard},
		{"frozen card", func() (*spec.POSMessage, error) { return term.Consume(cardFrozen, 100, "") }, spec.RCFrozenCard},
		{"empty card", func() (*spec.POSMessage, error) { return term.Consume(cardEmpty, 100, "") }, spec.RCInsufficientFunds},
		{"unknown card", func() (*spec.POSMessage, error) { return term.Consume("6230150999999999999", 100, "") }, spec.RCInvalidCard},
		{"unrouted card", func() (*spec.POSMessage, error) { return term.Consume("5555550000000000", 100, "") }, spec.RCInvalidCard},
		{"cash load at a POS", func() (*spec.POSMessage, error) { return term.CashLoad(cardEmpty, 100), nil }, spec.RCNotPermittedTerminal},
		{"no amount", func() (*spec.POSMessage, error) {
			m, err := term.Consume(cardStaff, 100, "")
			if m != nil {
				m.HasAmount, m.Amount = false, 0
			}
			return m, err
		}, spec.RCInvalidAmount},
		{"PIN block format unknown", func() (*spec.POSMessage, error) {
			m, err := term.Consume(cardStaff, 100, pinStaff)
			if m != nil {
				m.SecurityControl = "9600000000000000"
			}
			return m, err
		}, spec.RCFormatError},
		{"void of a consume never seen", func() (*spec.POSMessage, error) {
			ghost, err := term.Consume(cardStaff, 100, "")
			if err != nil {
				return nil, err
			}
			return term.Void(ghost, &spec.POSMessage{RRN: "000000000001"}, "")
		}, spec.RCOriginalNotFound},
		{"void without original data", func() (*spec.POSMessage, error) {
			ghost, err := term.Consume(cardStaff, 100, "")
			if err != nil {
				return nil, err
			}
			m, err := term.Void(ghost, &spec.POSMessage{RRN: "000000000001"}, "")
			if m != nil {
				m.Original = spec.Field61{}
			}
			return m, err
		}, spec.RCFormatError},
	}
	for _, c := range cases {
		req, err := c.req()
		resp := do(t, term, req, err)
		expectRC(t, c.name, resp, c.want)
		expectMACed(t, c.name, resp)
	}

	// A consume, then a void for another amount (64), a duplicate with
	// other content (94), the void and a second void (12), three wrong
	// PINs (55, 55, 75).
	buy, err := term.Consume(cardStaff, 700, "")
	bought := do(t, term, buy, err)
	expectRC(t, "consume", bought, spec.RCApproved)
	expectMACed(t, "consume", bought)
	void, err := term.Void(buy, bought, "")
	if err != nil {
		t.Fatal(err)
	}
	void.Amount = 600
	resp := do(t, term, void, nil)
	expectRC(t, "void for another amount", resp, spec.RCAmountDiffers)
	expectMACed(t, "void for another amount", resp)
	other := *buy
	other.MAC, other.Amount = nil, 701
	resp = do(t, term, &other, nil)
	expectRC(t, "same STAN, other content", resp, spec.RCDuplicate)
	expectMACed(t, "same STAN, other content", resp)
	for i := 0; i < 2; i++ {
		v, err := term.Void(buy, bought, "")
		resp = do(t, term, v, err)
		if i == 1 {
			if resp.ResponseCode == spec.RCApproved {
				t.Fatal("second void approved")
			}
			expectMACed(t, "second void", resp)
		}
	}
	for i, want := range []string{spec.RCIncorrectPIN, spec.RCIncorrectPIN, spec.RCPINTriesExceeded} {
		req, err := term.Consume(cardVisitor, 100, "000000")
		resp := do(t, term, req, err)
		expectRC(t, "wrong PIN", resp, want)
		expectMACed(t, "wrong PIN "+string(rune('1'+i)), resp)
	}

	// Before authentication no key both sides trust is known: no MAC.
	pos, _, _ := sw.Addrs()
	c, err := posclient.Dial(pos, posclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tmk, _ := hex.DecodeString(demoTMK)
	ghost := posclient.NewTerminal(c, "55555555", canteen, tmk)
	ghost.Keys, ghost.Batch = term.Keys, term.Batch
	req, err := ghost.Consume(cardStaff, 100, "")
	resp = do(t, ghost, req, err)
	expectRC(t, "unknown terminal", resp, spec.RCTerminalNotFound)
	unauthenticated := []*spec.POSMessage{resp}
	wrong := *term
	wrong.Merchant = partnerCafe
	req, err = wrong.Consume(cardStaff, 100, "")
	resp = do(t, &wrong, req, err)
	expectRC(t, "wrong merchant", resp, spec.RCInvalidMerchant)
	unauthenticated = append(unauthenticated, resp)
	stale := *term
	stale.Batch = "000999"
	req, err = stale.Consume(cardStaff, 100, "")
	resp = do(t, &stale, req, err)
	expectRC(t, "batch mismatch", resp, spec.RCBatchMismatch)
	unauthenticated = append(unauthenticated, resp)
	req, err = term.Consume(cardStaff, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	req.TerminalID, req.MerchantID = term.ID, term.Merchant
	if err := term.Client.Send(req, func([]byte) ([]byte, error) { return []byte("BADMAC!!"), nil }); err != nil {
		t.Fatal(err)
	}
	if resp, err = term.Client.Receive(); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "bad MAC", resp, spec.RCMACError)
	unauthenticated = append(unauthenticated, resp)
	for _, r := range unauthenticated {
		if r.MAC != nil {
			t.Errorf("answer %s before authentication carries a MAC", r.ResponseCode)
		}
	}
}
