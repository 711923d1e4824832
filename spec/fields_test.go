package spec

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestAmount(t *testing.T) {
	tests := []struct {
		n12  string
		fen  Amount
		yuan string
	}{
		{"000000001234", 1234, "12.34"},
		{"000000000005", 5, "0.05"},
		{"000000000000", 0, "0.00"},
		{"999999999999", MaxAmount, "9999999999.99"},
	}
	for _, tc := range tests {
		a, err := ParseAmount(tc.n12)
		if err != nil || a != tc.fen || a.String() != tc.yuan {
			t.Errorf("ParseAmount(%q) = %d (%s), %v", tc.n12, a, a, err)
		}
		if s, err := a.N12(); err != nil || s != tc.n12 {
			t.Errorf("N12(%d) = %q, %v", a, s, err)
		}
	}
	for _, bad := range []string{"", "1234", "00000000123a", "-00000001234", "+00000001234"} {
		if _, err := ParseAmount(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseAmount(%q) err = %v", bad, err)
		}
	}
	if Amount(-1205).String() != "-12.05" {
		t.Errorf("negative String = %q", Amount(-1205).String())
	}
	if _, err := Amount(-1).N12(); err == nil {
		t.Error("N12 accepted a negative amount")
	}
}

func TestField60(t *testing.T) {
	tests := []struct {
		in   string
		want Field60
		ok   bool
	}{
		{"00000001301", Field60{"00", "000001", "301", ""}, true},
		{"22000001000", Field60{"22", "000001", "000", ""}, true},
		{"22000001", Field60{"22", "000001", "", ""}, true},
		{"22", Field60{"22", "", "", ""}, true},
		{"2200000100050", Field60{"22", "000001", "000", "50"}, true},
		{"22000001000123456", Field60{"22", "000001", "000", "123456"}, true},
		{"220000010001234567", Field60{}, false}, // 18 digits > n..17
		{"2200000", Field60{}, false},
		{"2200000100", Field60{}, false},
		{"2", Field60{}, false},
		{"", Field60{}, false},
		{"22A00001000", Field60{}, false},
	}
	for _, tc := range tests {
		got, err := ParseField60(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseField60(%q) = %+v, %v", tc.in, got, err)
			continue
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("Field60.String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestField61(t *testing.T) {
	tests := []struct {
		in   string
		want Field61
		ok   bool
	}{
		{"000001000124", Field61{"000001", "000124", "", ""}, true},
		{"0000010001240315", Field61{"000001", "000124", "0315", ""}, true},
		{"00000100012403151234567890123", Field61{"000001", "000124", "0315", "1234567890123"}, true},
		{"000001000124031512345678901234", Field61{}, false}, // 30 digits
		{"0000010001", Field61{}, false},
		{"00000100012403", Field61{}, false},
		{"00000100012X", Field61{}, false},
	}
	for _, tc := range tests {
		got, err := ParseField61(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseField61(%q) = %+v, %v", tc.in, got, err)
			continue
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("Field61.String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestBalances(t *testing.T) {
	// Hand-built per docs/pos-dialect.md#fields: account n2 + amount type n2 + currency n3 +
	// sign + amount n12.
	const s = "0002156C000000050000" + "0102156D000000000150"
	want := []Balance{
		{AccountCashPurse, AmountTypeAvailable, CurrencyCNY, 50000},
		{AccountSubsidyPurse, AmountTypeAvailable, CurrencyCNY, -150},
	}
	got, err := ParseBalances(s)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseBalances = %+v, %v", got, err)
	}
	back, err := FormatBalances(want)
	if err != nil || back != s {
		t.Fatalf("FormatBalances = %q, %v", back, err)
	}
	for _, bad := range []string{"", "0002156C00000005000", "0002156X000000050000", "00021A6C000000050000",
		"0002156C0000000500a0", s + "0002156C000000050000"} {
		if _, err := ParseBalances(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseBalances(%q) err = %v", bad, err)
		}
	}
	for _, bad := range [][]Balance{nil, {{AccountCashPurse, "2", CurrencyCNY, 0}}, {want[0], want[0], want[0]},
		{{AccountCashPurse, AmountTypeAvailable, CurrencyCNY, MaxAmount + 1}}} {
		if _, err := FormatBalances(bad); err == nil {
			t.Errorf("FormatBalances(%+v) accepted", bad)
		}
	}
}

func TestSettlement(t *testing.T) {
	// domestic: 3 debits 123.45, 1 credit 10.00, flag 0; foreign: zeros.
	const s = "003" + "000000012345" + "001" + "000000001000" + "0" +
		"000" + "000000000000" + "000" + "000000000000" + "0"
	want := Settlement{Domestic: SettlementTotals{3, 12345, 1, 1000, SettlementRequested},
		Foreign: SettlementTotals{0, 0, 0, 0, SettlementRequested}}
	got, err := ParseSettlement(s)
	if err != nil || got != want {
		t.Fatalf("ParseSettlement = %+v, %v", got, err)
	}
	back, err := FormatSettlement(want)
	if err != nil || back != s {
		t.Fatalf("FormatSettlement = %q, %v", back, err)
	}
	for _, bad := range []string{"", s[:61], s + "0", s[:10] + "A" + s[11:]} {
		if _, err := ParseSettlement(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseSettlement(%q) err = %v", bad, err)
		}
	}
	if _, err := FormatSettlement(Settlement{Domestic: SettlementTotals{DebitCount: 1000, Flag: '0'}, Foreign: SettlementTotals{Flag: '0'}}); err == nil {
		t.Error("FormatSettlement accepted count 1000")
	}
}

func FuzzField60(f *testing.F) {
	f.Add("00000001301")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseField60(s)
		if err != nil {
			return
		}
		if v.String() != s || v.validate() != nil {
			t.Fatalf("ParseField60(%q) = %+v does not round-trip", s, v)
		}
	})
}

func FuzzField61(f *testing.F) {
	f.Add("0000010001240315")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseField61(s)
		if err != nil {
			return
		}
		if v.String() != s || v.validate() != nil {
			t.Fatalf("ParseField61(%q) = %+v does not round-trip", s, v)
		}
	})
}

func FuzzBalances(f *testing.F) {
	f.Add("0002156C000000050000")
	f.Fuzz(func(t *testing.T, s string) {
		bs, err := ParseBalances(s)
		if err != nil {
			return
		}
		back, err := FormatBalances(bs)
		if err != nil {
			t.Fatalf("FormatBalances(%+v): %v", bs, err)
		}
		// "D000000000000" (minus zero) formats as C; otherwise identical.
		bs2, err := ParseBalances(back)
		if err != nil || !reflect.DeepEqual(bs, bs2) {
			t.Fatalf("%q -> %+v -> %q -> %+v", s, bs, back, bs2)
		}
	})
}

func FuzzSettlement(f *testing.F) {
	f.Add("00300000001234500100000000100000000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSettlement(s)
		if err != nil {
			return
		}
		back, err := FormatSettlement(v)
		if err != nil || back != s {
			t.Fatalf("%q -> %+v -> %q, %v", s, v, back, err)
		}
	})
}

func FuzzTrack2(f *testing.F) {
	f.Add("6230151000000000012=3012101")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Track2BCD.Encode([]byte(s))
		if err != nil {
			return
		}
		d, n, err := Track2BCD.Decode(b, len(s))
		if err != nil || n != len(b) || string(d) != s {
			t.Fatalf("%q -> %X -> %q, %v", s, b, d, err)
		}
	})
}

// parseAmountRef is ParseAmount as it was, a digit at a time: the
// reference the word-at-a-time parse must equal.
func parseAmountRef(n12 string) (Amount, error) {
	if len(n12) != 12 || !isDigits(n12) {
		return 0, fmt.Errorf("%w: amount %q is not 12 digits", ErrFormat, n12)
	}
	var v int64
	for i := 0; i < len(n12); i++ {
		v = v*10 + int64(n12[i]-'0')
	}
	return Amount(v), nil
}

func sameAsParseAmountRef(t *testing.T, s string) {
	t.Helper()
	got, gerr := ParseAmount(s)
	want, werr := parseAmountRef(s)
	if got != want || (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("ParseAmount(%q) = %d %v; reference %d %v", s, got, gerr, want, werr)
	}
}

// TestParseAmountSameAsRef compares the two on every single digit in
// every position, the extremes, random amounts and non-digits.
func TestParseAmountSameAsRef(t *testing.T) {
	for pos := range 12 {
		for d := byte('0'); d <= '9'; d++ {
			b := []byte("000000000000")
			b[pos] = d
			sameAsParseAmountRef(t, string(b))
			b = []byte("999999999999")
			b[pos] = d
			sameAsParseAmountRef(t, string(b))
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		b := make([]byte, 12)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		if r.IntN(10) == 0 {
			b[r.IntN(12)] = byte(r.IntN(256))
		}
		sameAsParseAmountRef(t, string(b[:11+r.IntN(2)]))
	}
	if got, err := ParseAmount("123456789012"); err != nil || got != 123456789012 {
		t.Fatalf("ParseAmount(123456789012) = %d %v", got, err)
	}
}

func FuzzParseAmountSameAsRef(f *testing.F) {
	f.Add("000000012345")
	f.Add("99999999999x")
	f.Fuzz(func(t *testing.T, s string) { sameAsParseAmountRef(t, s) })
}

// n12DigitByDigit is the formatter appendN12 replaced, the reference.
func n12DigitByDigit(a Amount) string {
	var b [12]byte
	v := int64(a)
	for i := 11; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[:])
}

// TestAppendN12SameAsDigitByDigit formats the amounts around every power
// of ten and nine times one, and a million random ones, as the digit by
// digit formatter does.
func TestAppendN12SameAsDigitByDigit(t *testing.T) {
	check := func(a Amount) {
		if got, want := string(a.appendN12([]byte("x"))), "x"+n12DigitByDigit(a); got != want {
			t.Fatalf("appendN12(%d) = %q, want %q", int64(a), got, want)
		}
		if got, err := a.N12(); err != nil || got != n12DigitByDigit(a) {
			t.Fatalf("N12(%d) = %q, %v", int64(a), got, err)
		}
	}
	for p := Amount(1); p <= MaxAmount; p *= 10 {
		for d := Amount(-3); d <= 3; d++ {
			for _, v := range []Amount{p + d, 9*p + d, p*10 - 1 + d} {
				if v >= 0 && v <= MaxAmount {
					check(v)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(31, 32))
	for range 1 << 20 {
		check(Amount(r.Int64N(int64(MaxAmount) + 1)))
	}
	// Every value of each four-digit half of both words formatted, the
	// other half random.
	for i := range Amount(10000) {
		other := Amount(r.Int64N(10000))
		check(i*10000 + other)
		check(other*10000 + i)
		check(i*100000000 + Amount(r.Int64N(100000000)))
	}
}
