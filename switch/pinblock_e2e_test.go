package switching

import (
	"encoding/hex"
	"encoding/json"
	"github.com/cardswitch/cardswitch/switch/admin"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

const (
	termSM4 = "30000001"
	sm4TMK  = "00112233445566778899AABBCCDDEEFF"
)

// sm4Terminal seeds and signs on a terminal with an SM4 TMK (mode 006).
func sm4Switch(t *testing.T) (*Switch, *posclient.Terminal) {
	t.Helper()
	sw := testSwitch(t, func(c *Config) {
		c.Seed.Terminals = append(c.Seed.Terminals, terminals.Spec{ID: termSM4, Merchant: canteen, TMK: sm4TMK, TMKAlgorithm: "sm4"})
	})
	tmk, _ := hex.DecodeString(sm4TMK)
	term := posclient.NewTerminal(attacker(t, sw), termSM4, canteen, tmk)
	term.Mode = spec.SignOnSM4
	resp, err := term.SignOn()
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "SM4 sign-on with proof", resp, spec.RCApproved)
	return sw, term
}

// TestSM4PINBlocks: under SM4 working keys the 16-byte PIN block travels
// in field 62 as tag P4 with field 52 absent and field 53 digit 2 = 4; the
// switch verifies it inside the HSM. Digit 2 that does not name the PIK's
// algorithm, or a PIN block in both 52 and 62, is 30 and costs no try.
func TestSM4PINBlocks(t *testing.T) {
	sw, term := sm4Switch(t)
	req, err := term.Consume(cardStudent, 6000, pinStudent) // above the no-PIN limit
	if err != nil {
		t.Fatal(err)
	}
	if req.PINBlock != nil || len(req.Reserved62) != 18 || string(req.Reserved62[:2]) != "P4" || req.SecurityControl[1] != '4' {
		t.Fatalf("SM4 PIN request: 52 %X, 62 %X, 53 %s", req.PINBlock, req.Reserved62, req.SecurityControl)
	}
	expectRC(t, "SM4 PIN consume", do(t, term, req, nil), spec.RCApproved)
	req, err = term.Consume(cardStudent, 6000, "000000")
	expectRC(t, "SM4 wrong PIN", do(t, term, req, err), spec.RCIncorrectPIN)

	// Digit 2 says TDES under an SM4 PIK: 30.
	req, err = term.Consume(cardStudent, 6000, pinStudent)
	if err != nil {
		t.Fatal(err)
	}
	req.SecurityControl = "2600000000000000"
	expectRC(t, "digit 2 = 6 under an SM4 PIK", do(t, term, req, nil), spec.RCFormatError)
	// Both field 52 and P4: 30.
	req, err = term.Consume(cardStudent, 6000, pinStudent)
	if err != nil {
		t.Fatal(err)
	}
	req.PINBlock = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	expectRC(t, "PIN block in 52 and 62", do(t, term, req, nil), spec.RCFormatError)
	// P4 with a block of the wrong length: 30.
	req, err = term.Consume(cardStudent, 6000, pinStudent)
	if err != nil {
		t.Fatal(err)
	}
	req.Reserved62 = req.Reserved62[:10]
	expectRC(t, "short P4 block", do(t, term, req, nil), spec.RCFormatError)
	if v, _ := sw.ledger.Card(cardStudent); v.PINTries != 1 {
		t.Errorf("PIN tries %d, want 1 (only the wrong PIN counts)", v.PINTries)
	}

	// A TDES terminal whose field 53 says SM4: 30.
	tdes := signedOn(t, sw, termCanteen, canteen)
	req, err = tdes.Consume(cardStaff, 6000, pinStaff)
	if err != nil {
		t.Fatal(err)
	}
	req.SecurityControl = "2400000000000000"
	expectRC(t, "digit 2 = 4 under a TDES PIK", do(t, tdes, req, nil), spec.RCFormatError)
	req, err = tdes.Consume(cardStaff, 6000, pinStaff)
	expectRC(t, "TDES PIN consume", do(t, tdes, req, err), spec.RCApproved)
}

// TestReversalOfSpentLoad: a cash load reversed after most of it was spent
// is approved (the terminal stops retrying); the purse goes to zero, the
// card owes the rest and its debits are declined 51 until a load repays
// it; the receivables report lists it.
func TestReversalOfSpentLoad(t *testing.T) {
	sw := testSwitch(t)
	kiosk := signedOn(t, sw, termKiosk, canteen)
	pos := signedOn(t, sw, termCanteen, canteen)
	load := kiosk.CashLoad(cardEmpty, 10000)
	expectRC(t, "load", do(t, kiosk, load, nil), spec.RCApproved)
	buy, err := pos.Consume(cardEmpty, 7000, pinStudent)
	expectRC(t, "spend 70.00", do(t, pos, buy, err), spec.RCApproved)
	rev := do(t, kiosk, kiosk.Reversal(load, spec.ReversalTimeout), nil)
	expectRC(t, "reversal of the spent load", rev, spec.RCApproved)
	expectPurses(t, sw, cardEmpty, 0, 0)
	if v, _ := sw.ledger.Card(cardEmpty); v.Owed != 7000 {
		t.Fatalf("owes %s, want 70.00", v.Owed)
	}
	buy, err = pos.Consume(cardEmpty, 100, "")
	expectRC(t, "debit of an owing card", do(t, pos, buy, err), spec.RCInsufficientFunds)
	if _, body := adminCall(t, sw, "GET", "/api/v1/cards/"+cardEmpty, nil); !strings.Contains(string(body), `"owed": "70.00"`) {
		t.Errorf("card answer without its debt: %s", body)
	}

	code, body := adminCall(t, sw, "GET", "/api/v1/reports/receivables", nil)
	var rep admin.ReceivablesPage
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil {
		t.Fatalf("receivables: %d %s %v", code, body, err)
	}
	if rep.TotalOwed != "70.00" || rep.Cards != 1 || len(rep.Receivables) != 1 || rep.Receivables[0].Owed != "70.00" ||
		rep.Receivables[0].Card == cardEmpty || rep.Receivables[0].Card[len(rep.Receivables[0].Card)-4:] != cardEmpty[len(cardEmpty)-4:] {
		t.Fatalf("receivables report %s", body)
	}
	if code, _ := adminCall(t, sw, "GET", "/api/v1/reports/receivables?limit=0", nil); code != 400 {
		t.Errorf("limit=0: %d, want 400", code)
	}

	expectRC(t, "repaying load", do(t, kiosk, kiosk.CashLoad(cardEmpty, 8000), nil), spec.RCApproved)
	expectPurses(t, sw, cardEmpty, 1000, 0)
	buy, err = pos.Consume(cardEmpty, 100, "")
	expectRC(t, "debit after repayment", do(t, pos, buy, err), spec.RCApproved)
	if _, body = adminCall(t, sw, "GET", "/api/v1/reports/receivables", nil); json.Unmarshal(body, &rep) != nil || rep.Cards != 0 || rep.TotalOwed != "0.00" {
		t.Fatalf("report after repayment %s", body)
	}
}

// TestCountMaximaAtTheAPI: opening a card or adding a merchant over the
// configured maxima is refused with 409 and a message naming the setting.
func TestCountMaximaAtTheAPI(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.Ledger.MaxCards, c.Ledger.MaxMerchants = 6, 3 })
	code, body := adminCall(t, sw, "POST", "/api/v1/cards", map[string]any{
		"pan": "6230152000000000017", "holder": "New Student", "holder_type": "student",
		"cash": "80.00", "subsidy": "0", "pin": "246810"})
	if code != 409 || !strings.Contains(string(body), "ledger.max_cards") {
		t.Errorf("card over the maximum: %d %s", code, body)
	}
	code, body = adminCall(t, sw, "POST", "/api/v1/merchants", map[string]any{"id": "898310000000009", "name": "Library Cafe", "on_campus": true})
	if code != 409 || !strings.Contains(string(body), "ledger.max_merchants") {
		t.Errorf("merchant over the maximum: %d %s", code, body)
	}
}
