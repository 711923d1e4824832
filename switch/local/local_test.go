package local

import (
	"errors"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// TestResponseCodeTable: every decline the ledger has maps to a code of
// its own; an unknown one is 96, never approved.
func TestResponseCodeTable(t *testing.T) {
	want := map[ledger.Decline]string{
		ledger.Approved:                      "00",
		ledger.DeclineInsufficientFunds:      "51",
		ledger.DeclineExceedsAmountLimit:     "61",
		ledger.DeclineExceedsCountLimit:      "65",
		ledger.DeclineLostCard:               "41",
		ledger.DeclineFrozenCard:             "45",
		ledger.DeclineInvalidCard:            "14",
		ledger.DeclineOriginalNotFound:       "25",
		ledger.DeclineAmountDiffers:          "64",
		ledger.DeclineInvalidTransaction:     "12",
		ledger.DeclineInvalidAmount:          "13",
		ledger.DeclineIncorrectPIN:           "55",
		ledger.DeclinePINTriesExceeded:       "75",
		ledger.DeclineNotPermittedCardholder: "57",
		ledger.DeclineNotPermittedTerminal:   "58",
		ledger.DeclineDuplicate:              "94",
		ledger.DeclineInvalidMerchant:        "03",
		ledger.DeclineRestrictedCard:         "62",
	}
	for d, rc := range want {
		if got := ResponseCode(d); got != rc {
			t.Errorf("%v: %q, want %q", d, got, rc)
		}
	}
	// A decline the ledger names (String without "Decline(") but this
	// table lacks would be answered 96.
	for d := ledger.Decline(0); d < 255; d++ {
		if _, ok := want[d]; !ok && !strings.HasPrefix(d.String(), "Decline(") {
			t.Errorf("decline %q is missing from this test and perhaps from the table (answers %s)", d, ResponseCode(d))
		}
	}
	if got := ResponseCode(ledger.Decline(250)); got != spec.RCSystemMalfunction {
		t.Fatalf("unknown decline: %q", got)
	}
}

// TestRequestMapping: each type becomes its ledger operation with the
// transaction's numbers; a reversal of a type the ledger cannot undo is
// rejected 12 before the ledger.
func TestRequestMapping(t *testing.T) {
	base := txn.Transaction{Card: "6230151000000000012", Amount: 1234, HasAmount: true, Terminal: "10000001",
		Merchant: "898310000000001", Batch: 7, STAN: 42, BusinessDate: 20260105, RRN: "005000000001",
		Key: "10000001/000007/000042/0105", KnownNew: true, AuthCode: "654321",
		Original: txn.Original{Present: true, Batch: 7, STAN: 40, Date: 20260104, RRN: "004000000009"}}
	kinds := map[spec.TxType]ledger.Kind{
		spec.BalanceInquiry:    ledger.KindBalanceInquiry,
		spec.Consume:           ledger.KindConsume,
		spec.ConsumeVoid:       ledger.KindVoid,
		spec.Refund:            ledger.KindRefund,
		spec.CashLoad:          ledger.KindCashLoad,
		spec.CashLoadVoid:      ledger.KindCashLoadVoid,
		spec.PreAuth:           ledger.KindPreAuth,
		spec.PreAuthCompletion: ledger.KindPreAuthCompletion,
		spec.PreAuthCancel:     ledger.KindPreAuthCancel,
		spec.CompletionVoid:    ledger.KindCompletionVoid,
	}
	for typ, kind := range kinds {
		tr := base
		tr.Type = typ
		req, err := request(&tr, ledger.PINVerified)
		if err != nil || req.Kind() != kind {
			t.Fatalf("%s: %v %v, want %v", typ, req, err, kind)
		}
	}
	refund, _ := request(&txn.Transaction{Type: spec.Refund, Original: base.Original}, ledger.PINNotPresent)
	if r := refund.(*ledger.Refund); r.OriginalRRN != "004000000009" || r.OriginalDate != 20260104 {
		t.Fatalf("refund original: %+v", r)
	}
	cv := base
	cv.Type = spec.ConsumeVoid
	v, _ := request(&cv, ledger.PINWrong)
	if vv := v.(*ledger.Void); vv.Original != (ledger.TxnRef{Terminal: "10000001", Batch: 7, STAN: 40}) ||
		vv.Key != base.Key || !vv.KnownNew || vv.RRN != base.RRN || vv.PIN != ledger.PINWrong {
		t.Fatalf("void: %+v", vv)
	}

	rev := base
	rev.Type, rev.OriginalType = spec.Reversal, spec.Consume
	r, err := request(&rev, ledger.PINNotPresent)
	if err != nil || r.(*ledger.Reversal).OriginalKind != ledger.KindConsume {
		t.Fatalf("reversal of a consume: %+v %v", r, err)
	}
	rev.OriginalType = spec.BalanceInquiry
	if _, err := request(&rev, ledger.PINNotPresent); txn.ResponseCodeOf(err) != spec.RCInvalidTransaction {
		t.Fatalf("reversal of a balance inquiry: %v, want a 12 rejection", err)
	}
	var rej *txn.Rejection
	other := base
	other.Type = spec.SignOn
	if _, err := request(&other, ledger.PINNotPresent); !errors.As(err, &rej) || rej.ResponseCode != spec.RCFunctionNotSupported {
		t.Fatalf("sign-on at the ledger: %v, want a 40 rejection", err)
	}
}

// TestOutcome: approvals carry the auth code and both purses, except a
// reversal's; declines carry neither.
func TestOutcome(t *testing.T) {
	res := ledger.Result{Decline: ledger.Approved, AuthCode: "000123", Balances: ledger.Balances{Cash: 500, Subsidy: 20}}
	o := outcome(&txn.Transaction{Type: spec.Consume}, res)
	if o.ResponseCode != "00" || o.AuthCode != "000123" || len(o.Balances) != 2 ||
		o.Balances[0] != (txn.Balance{Account: txn.CashPurse, Amount: 500}) ||
		o.Balances[1] != (txn.Balance{Account: txn.SubsidyPurse, Amount: 20}) {
		t.Fatalf("consume outcome %+v", o)
	}
	if o := outcome(&txn.Transaction{Type: spec.Reversal}, res); len(o.Balances) != 0 || o.ResponseCode != "00" {
		t.Fatalf("reversal outcome %+v", o)
	}
	d := outcome(&txn.Transaction{Type: spec.Consume}, ledger.Result{Decline: ledger.DeclineInsufficientFunds, AuthCode: "x", Balances: res.Balances})
	if d.ResponseCode != "51" || d.AuthCode != "" || len(d.Balances) != 0 {
		t.Fatalf("decline outcome %+v", d)
	}
}
