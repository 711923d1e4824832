package spec

import (
	"bytes"
	"errors"
	"testing"
)

func TestSM4PINBlockField62(t *testing.T) {
	blk := bytes.Repeat([]byte{0xAB}, 16)
	f, err := Field62SM4PINBlock(blk)
	if err != nil || !bytes.Equal(f, append([]byte("P4"), blk...)) {
		t.Fatalf("build: %X %v", f, err)
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		present bool
		err     bool
	}{
		{"tag + 16", f, true, false},
		{"absent", nil, false, false},
		{"keys, not a PIN block", bytes.Repeat([]byte{1}, 40), false, false},
		{"tag + 15", f[:17], true, true},
		{"tag + 17", append(append([]byte(nil), f...), 0), true, true},
		{"tag only", []byte("P4"), true, true},
	} {
		b, present, err := SM4PINBlock(tc.in)
		if present != tc.present || (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrFormat)) {
			t.Errorf("%s: present %v err %v", tc.name, present, err)
		}
		if err == nil && present && !bytes.Equal(b, blk) {
			t.Errorf("%s: block %X", tc.name, b)
		}
	}
	if _, err := Field62SM4PINBlock(blk[:8]); err == nil {
		t.Error("8-byte SM4 block accepted")
	}
}

func TestSignOnStamp(t *testing.T) {
	m := &POSMessage{LocalDate: "1204", LocalTime: "134643", STAN: "000001"}
	if s, ok := m.SignOnStamp(); !ok || s != "1204134643000001" {
		t.Fatalf("stamp %q %v", s, ok)
	}
	for _, bad := range []POSMessage{
		{LocalTime: "134643", STAN: "000001"},
		{LocalDate: "1204", STAN: "000001"},
		{LocalDate: "1204", LocalTime: "134643"},
		{LocalDate: "12a4", LocalTime: "134643", STAN: "000001"},
	} {
		if s, ok := bad.SignOnStamp(); ok {
			t.Errorf("%+v: stamp %q", bad, s)
		}
	}
}

func FuzzSM4PINBlock(f *testing.F) {
	f.Add([]byte("P4\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add([]byte("P4"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, present, err := SM4PINBlock(in)
		if err == nil && present {
			if len(b) != SM4PINBlockLen {
				t.Fatalf("block of %d bytes", len(b))
			}
			back, err := Field62SM4PINBlock(b)
			if err != nil || !bytes.Equal(back, in) {
				t.Fatalf("round trip %X -> %X %v", in, back, err)
			}
		}
	})
}

// TestField54IsAN40: field 54 holds up to two 20-character balance
// entries (an..40 LLL): 40 characters pack and decode, 41 do not.
func TestField54IsAN40(t *testing.T) {
	two, err := FormatBalances([]Balance{
		{AccountType: AccountCashPurse, AmountType: AmountTypeAvailable, Currency: CurrencyCNY, Amount: 50000},
		{AccountType: AccountSubsidyPurse, AmountType: AmountTypeAvailable, Currency: CurrencyCNY, Amount: 20000},
	})
	if err != nil || len(two) != 40 {
		t.Fatalf("two balances: %q %v", two, err)
	}
	m := &POSMessage{MTI: "0210", ProcessingCode: "310000", STAN: "000001", ResponseCode: "00", TerminalID: "10000001", MerchantID: "898310000000001", Balances: two}
	b, err := EncodePOS(m)
	if err != nil {
		t.Fatalf("40 characters: %v", err)
	}
	back, err := DecodePOS(b)
	if err != nil || back.Balances != two {
		t.Fatalf("decode: %q %v", back.Balances, err)
	}
	m.Balances = two + "0"
	if _, err := EncodePOS(m); err == nil {
		t.Fatal("41 characters packed")
	}
}
