package pos

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
)

func TestRRNDate(t *testing.T) {
	cases := []struct {
		rrn   string
		today ledger.BusinessDate
		want  ledger.BusinessDate
		ok    bool
	}{
		{"326000000001", 20261122, 20261122, true},
		{"001000000001", 20261122, 20260101, true},
		{"365000000001", 20260105, 20251231, true},  // last year's last day
		{"366000000001", 20260105, 20241231, false}, // 2025 has no day 366; 2024 is too far back
		{"327000000001", 20261122, 20251123, true},  // tomorrow's day number: last year
		{"000000000001", 20261122, 0, false},
		{"ABC000000001", 20261122, 0, false},
		{"32600000001", 20261122, 0, false},
	}
	for _, c := range cases {
		got, ok := RRNDate(c.rrn, c.today)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("RRNDate(%s, %d) = %d %v, want %d %v", c.rrn, c.today, got, ok, c.want, c.ok)
		}
	}
}

func TestOriginalDate(t *testing.T) {
	for _, c := range []struct {
		mmdd  string
		today ledger.BusinessDate
		want  ledger.BusinessDate
		ok    bool
	}{
		{"1122", 20261122, 20261122, true},
		{"1123", 20261122, 20251123, true}, // after today: last year
		{"0101", 20260105, 20260101, true},
		{"1231", 20260105, 20251231, true},
		{"1340", 20261122, 0, false}, // no month 13
		{"11", 20261122, 0, false},
		{"11x2", 20261122, 0, false},
	} {
		got, ok := OriginalDate(c.mmdd, c.today)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("OriginalDate(%s, %d) = %d %v, want %d %v", c.mmdd, c.today, got, ok, c.want, c.ok)
		}
	}
}

func consume() *spec.POSMessage {
	return &spec.POSMessage{MTI: "0200", PAN: "6230151000000000012", ProcessingCode: "000000",
		Amount: 1250, HasAmount: true, STAN: "000042", LocalTime: "101010", LocalDate: "1122",
		TerminalID: "10000001", MerchantID: "898310000000001", Reserved60: spec.Field60{Type: "22", Batch: "000007"},
		PINBlock: []byte{1, 2, 3, 4, 5, 6, 7, 8}, SecurityControl: "2600000000000000"}
}

// TestTransactionMapping: the POS fields of a financial request land in
// the transaction's fields, hand-checked.
func TestTransactionMapping(t *testing.T) {
	req := consume()
	got, rc := Transaction(Request{Msg: req, Type: spec.Consume, Peer: "10.0.0.9:4000", Card: req.PAN,
		TerminalMayLoad: true, BusinessDate: 20261122, RRN: "326000000042", DuplicateDate: "1122", KnownNew: true})
	if rc != "" {
		t.Fatalf("rc %s", rc)
	}
	want := txn.Transaction{Type: spec.Consume, Source: "pos", Peer: "10.0.0.9:4000", Card: "6230151000000000012",
		Amount: 1250, HasAmount: true, Terminal: "10000001", Merchant: "898310000000001", TerminalMayLoad: true,
		Batch: 7, STAN: 42, LocalDate: "1122", LocalTime: "101010", BusinessDate: 20261122, RRN: "326000000042",
		Key: "10000001/000007/000042/1122", KnownNew: true, Deduplicated: true}
	pin := got.PIN
	got.PIN = nil
	if *got != want {
		t.Fatalf("transaction\n got %+v\nwant %+v", *got, want)
	}
	if pin == nil || pin.Terminal != "10000001" || string(pin.Block) != "\x01\x02\x03\x04\x05\x06\x07\x08" || pin.SecurityControl != "2600000000000000" {
		t.Fatalf("PIN block %#v", pin)
	}
}

func TestTransactionOriginals(t *testing.T) {
	// A reversal names itself as its original; 39 is its reason.
	rev := consume()
	rev.MTI, rev.ResponseCode, rev.PINBlock = "0400", spec.ReversalTimeout, nil
	got, rc := Transaction(Request{Msg: rev, Type: spec.Reversal, OriginalType: spec.Consume, BusinessDate: 20261122, DuplicateDate: "1122"})
	if rc != "" || got.Original != (txn.Original{Present: true, Batch: 7, STAN: 42}) || got.ReversalReason != "98" || got.OriginalType != spec.Consume || got.PIN != nil {
		t.Fatalf("reversal: rc %q, %+v", rc, got)
	}
	// A refund: field 61 and the RRN; the date from the RRN this switch
	// issued, else from 61.3.
	ref := consume()
	ref.Original = spec.Field61{Batch: "000006", STAN: "000040", Date: "1120"}
	ref.RRN = "325000000040"
	got, _ = Transaction(Request{Msg: ref, Type: spec.Refund, BusinessDate: 20261122})
	if got.Original != (txn.Original{Present: true, Batch: 6, STAN: 40, Date: 20261121, RRN: "325000000040"}) {
		t.Fatalf("refund original %+v", got.Original)
	}
	ref.RRN = "not-an-rrn"
	got, _ = Transaction(Request{Msg: ref, Type: spec.Refund, BusinessDate: 20261122})
	if got.Original.Date != 20261120 {
		t.Fatalf("refund original date from 61.3: %d", got.Original.Date)
	}
}

func TestTransactionFormatErrors(t *testing.T) {
	for name, mutate := range map[string]func(m *spec.POSMessage){
		"batch not digits":    func(m *spec.POSMessage) { m.Reserved60.Batch = "00000x" },
		"STAN not digits":     func(m *spec.POSMessage) { m.STAN = "0000x2" },
		"61 batch not digits": func(m *spec.POSMessage) { m.Original = spec.Field61{Batch: "x", STAN: "000001"} },
		"two PIN blocks": func(m *spec.POSMessage) {
			m.Reserved62 = append([]byte(spec.PINBlockTag), make([]byte, spec.SM4PINBlockLen)...)
		},
		"SM4 block too long": func(m *spec.POSMessage) {
			m.PINBlock = nil
			m.Reserved62 = append([]byte(spec.PINBlockTag), make([]byte, spec.SM4PINBlockLen+2)...)
		},
	} {
		m := consume()
		mutate(m)
		if got, rc := Transaction(Request{Msg: m, Type: spec.Consume, BusinessDate: 20261122}); rc != spec.RCFormatError {
			t.Errorf("%s: rc %q, transaction %+v", name, rc, got)
		}
	}
}

// TestTransactionSM4PINBlock: an SM4 PIN block comes from field 62 tag P4
// when field 52 is absent.
func TestTransactionSM4PINBlock(t *testing.T) {
	m := consume()
	m.PINBlock = nil
	block := []byte("0123456789abcdef")[:spec.SM4PINBlockLen]
	m.Reserved62 = append([]byte(spec.PINBlockTag), block...)
	got, rc := Transaction(Request{Msg: m, Type: spec.Consume, BusinessDate: 20261122})
	if rc != "" || got.PIN == nil || string(got.PIN.Block) != string(block) {
		t.Fatalf("rc %q, PIN %#v", rc, got.PIN)
	}
}

// TestAnswerMapping: an outcome's fields land in the POS answer.
func TestAnswerMapping(t *testing.T) {
	req := consume()
	tr := &txn.Transaction{RRN: "326000000042"}
	moved := txn.Fen(300)
	resp := Answer(req, tr, txn.Outcome{ResponseCode: spec.RCApproved, AuthCode: "123456",
		Balances: []txn.Balance{{Account: txn.CashPurse, Amount: 8750}, {Account: txn.SubsidyPurse, Amount: 0}},
		Amount:   &moved, SettlementDate: 20261123}, 20261122, "Canteen")
	f54, err := BalancesField([]txn.Balance{{Account: txn.CashPurse, Amount: 8750}, {Account: txn.SubsidyPurse, Amount: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.MTI != "0210" || resp.ResponseCode != "00" || resp.RRN != "326000000042" || resp.AuthCode != "123456" ||
		resp.SettlementDate != "1123" || resp.Balances != f54 || resp.Amount != 300 || !resp.HasAmount || resp.Reserved63 != "CSCCanteen" {
		t.Fatalf("answer %+v", resp)
	}
	// A decline: no approval code, the business date settles.
	resp = Answer(req, tr, txn.Outcome{ResponseCode: spec.RCInsufficientFunds, AuthCode: "123456"}, 20261122, "")
	if resp.AuthCode != "" || resp.SettlementDate != "1122" || resp.Reserved63 != CardOrganisation || resp.Amount != 1250 {
		t.Fatalf("decline %+v", resp)
	}
}

func TestBalancesFieldHandChecked(t *testing.T) {
	// Per balance: account type (2), amount type (2), currency (3), sign
	// and 12 digits (docs/pos-dialect.md, field 54).
	got, err := BalancesField([]txn.Balance{{Account: txn.CashPurse, Amount: 8750}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "0002156C000000008750"; got != want {
		t.Fatalf("field 54 %q, want %q", got, want)
	}
}

func TestReceiptText(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"", "CSC"},
		{"Canteen 1", "CSCCanteen 1"},
		{"第一食堂", "CSC"},
		{"bad\nname", "CSC"},
		{strings.Repeat("x", 200), "CSC" + strings.Repeat("x", 160)},
	} {
		if got := ReceiptText(c.name); got != c.want {
			t.Errorf("ReceiptText(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestIsBatch checks the batch comparison of authenticate against the
// formatted batch it replaces.
func TestIsBatch(t *testing.T) {
	for _, b := range []uint32{0, 1, 42, 999999, 1000000, 4294967295} {
		want := batchString(b)
		for _, s := range []string{want, "", "00000", "0000000", "x" + want[1:], want[:len(want)-1] + "9"} {
			if got := isBatch(s, b); got != (s == want) {
				t.Errorf("isBatch(%q, %d) = %v, want %v", s, b, got, s == want)
			}
		}
	}
}

// TestBalancesField checks field 54 byte for byte: account, amount type
// 02 (available), currency 156, C or D, 12 digits; more than two
// balances are refused.
func TestBalancesField(t *testing.T) {
	got, err := BalancesField([]txn.Balance{{Account: txn.CashPurse, Amount: 12345}, {Account: txn.SubsidyPurse, Amount: -7}})
	if want := "0002156C000000012345" + "0102156D000000000007"; err != nil || got != want {
		t.Fatalf("BalancesField = %q, %v; want %q", got, err, want)
	}
	three := []txn.Balance{{Account: txn.CashPurse}, {Account: txn.SubsidyPurse}, {Account: txn.CashPurse}}
	if got, err := BalancesField(three); err == nil {
		t.Fatalf("three balances gave %q", got)
	}
}

// TestReceiptCacheSameAsReceiptText asks the cache for more names than it
// keeps, each twice, from several goroutines (run it with -race), and
// checks every text is ReceiptText's.
func TestReceiptCacheSameAsReceiptText(t *testing.T) {
	var c receiptCache
	names := []string{"", "Canteen No.1", "bad\x01name", strings.Repeat("x", 200)}
	for i := 0; i < maxReceiptsCached+50; i++ {
		names = append(names, fmt.Sprintf("Merchant %d", i))
	}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for round := 0; round < 2; round++ {
				for _, n := range names {
					if got, want := c.text(n), ReceiptText(n); got != want {
						t.Errorf("text(%q) = %q, want %q", n, got, want)
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if m := c.m.Load(); m == nil || len(*m) > maxReceiptsCached {
		t.Errorf("cache holds %v names, want 1..%d", m, maxReceiptsCached)
	}
}

// TestTransactionKeySameAsConcatenation compares transactionKey with the
// concatenation it replaces, empty parts included.
func TestTransactionKeySameAsConcatenation(t *testing.T) {
	parts := []string{"", "T0000001", "000001", "123456", "20261204", "x/y"}
	for _, a := range parts {
		for _, b := range parts {
			for _, c := range parts {
				for _, d := range parts {
					if got, want := transactionKey(a, b, c, d), a+"/"+b+"/"+c+"/"+d; got != want {
						t.Fatalf("transactionKey(%q, %q, %q, %q) = %q, want %q", a, b, c, d, got, want)
					}
				}
			}
		}
	}
}
