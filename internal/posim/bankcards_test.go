package posim

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/terminal"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// signedOnSim is a simulated terminal with working keys installed as a
// mode 003 sign-on would (field 62 built here under the demo TMK), and no
// connection: enough to build requests.
func signedOnSim(t testing.TB, ts TerminalSpec, mix Mix) *sim {
	t.Helper()
	tmk, _ := hex.DecodeString(DemoTMK)
	tmkBlock, err := blockcipher.New(blockcipher.TDES, tmk)
	if err != nil {
		t.Fatal(err)
	}
	pik := bytes.Repeat([]byte{0x13, 0x57}, 8)
	mak := bytes.Repeat([]byte{0x24}, 8)
	f62 := make([]byte, 0, 40)
	enc, _ := blockcipher.EncryptECB(tmkBlock, pik)
	cv, _ := blockcipher.CheckBlock(blockcipher.TDES, pik)
	f62 = append(append(f62, enc...), cv[:4]...)
	enc, _ = blockcipher.EncryptECB(tmkBlock, mak)
	cv, _ = blockcipher.CheckBlock(blockcipher.DES, mak)
	f62 = append(append(append(f62, enc...), make([]byte, 8)...), cv[:4]...)
	keys, err := terminal.ParseField62(tmk, "003", f62)
	if err != nil {
		t.Fatal(err)
	}
	ts.TMK = tmk
	s := newSim(ts, &runner{opts: &Options{Mix: mix}}, 7)
	s.term = posclient.NewTerminal(nil, ts.ID, ts.Merchant, tmk)
	s.term.Keys = keys
	return s
}

func TestBankCardsAlwaysCarryPIN(t *testing.T) {
	bank := DemoBankCards()
	if len(bank) != 2 || !bank[0].Bank || bank[0].PAN != "6222020000000000018" || bank[0].PIN != "123456" {
		t.Fatalf("demo bank cards %+v", bank)
	}
	kiosk := TerminalSpec{ID: "90000001", Merchant: "898310000000001", MayLoad: true, Cards: bank}
	s := signedOnSim(t, kiosk, Mix{Name: "t", Weights: [numKinds]int{KindConsume: 40, KindReversal: 20, KindCashLoad: 40}})
	for i := 0; i < 100; i++ {
		req, _, err := s.build(s.nextKind())
		if err != nil {
			t.Fatal(err)
		}
		if req.ProcessingCode != "000000" {
			t.Fatalf("a bank card got processing code %s (cash load?)", req.ProcessingCode)
		}
		if len(req.PINBlock) != 8 || req.SecurityControl == "" {
			t.Fatalf("bank-card consume %d without a PIN block", i)
		}
	}
	// Campus cards keep the occasional PIN only.
	campus := signedOnSim(t, TerminalSpec{ID: "10000001", Merchant: "898310000000001",
		Cards: []Card{{PAN: "6230151000000000020", PIN: "654321"}}}, MixConsume)
	withPIN := 0
	for i := 0; i < 100; i++ {
		req, _, err := campus.build(KindConsume)
		if err != nil {
			t.Fatal(err)
		}
		if req.PINBlock != nil {
			withPIN++
		}
	}
	if withPIN == 0 || withPIN > 40 {
		t.Fatalf("campus consumes with a PIN: %d of 100", withPIN)
	}
}

func TestWithCards(t *testing.T) {
	terms, err := DemoTerminals(2)
	if err != nil {
		t.Fatal(err)
	}
	bank := DemoBankCards()
	same, _ := WithCards(terms, CardsCampus, bank)
	if len(same[0].Cards) != 3 || same[0].Cards[0].Bank {
		t.Fatalf("campus: %+v", same[0].Cards)
	}
	b, _ := WithCards(terms, CardsBank, bank)
	if len(b[1].Cards) != 2 || !b[1].Cards[0].Bank {
		t.Fatalf("bank: %+v", b[1].Cards)
	}
	both, _ := WithCards(terms, CardsBoth, bank)
	if len(both[0].Cards) != 5 || len(terms[0].Cards) != 3 {
		t.Fatalf("both: %d cards (terms changed: %d)", len(both[0].Cards), len(terms[0].Cards))
	}
	if _, err := WithCards(terms, "visa", bank); err == nil {
		t.Fatal("unknown set accepted")
	}
	if _, err := WithCards(terms, CardsBank, nil); err == nil {
		t.Fatal("no bank cards accepted")
	}
}
