package ledger

import (
	"errors"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseYuan(t *testing.T) {
	tests := []struct {
		in   string
		want Fen
		ok   bool
	}{
		{"500.00", 50000, true},
		{"500", 50000, true},
		{"0", 0, true},
		{"0.5", 50, true},
		{"0.05", 5, true},
		{"12.34", 1234, true},
		{"9999999999.99", 999_999_999_999, true}, // MaxAmount, the n12 maximum
		{"10000000000.00", 0, false},
		{"", 0, false},
		{".50", 0, false},
		{"1.", 0, false},
		{"1.234", 0, false},
		{"-1.00", 0, false},
		{"+1", 0, false},
		{"1e3", 0, false},
		{"1,000.00", 0, false},
		{" 1", 0, false},
		{"1.0x", 0, false},
		{"00000000000000000000001", 100, true},
		{"0000000000000000000000001", 0, false}, // longer than the text bound
	}
	for _, tt := range tests {
		got, err := ParseYuan(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadAmount) {
			t.Errorf("ParseYuan(%q) error %v is not ErrBadAmount", tt.in, err)
		}
	}
}

func TestFenString(t *testing.T) {
	for _, tt := range []struct {
		f    Fen
		want string
	}{{0, "0.00"}, {5, "0.05"}, {50000, "500.00"}, {-105, "-1.05"}, {MaxAmount, "9999999999.99"}} {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", int64(tt.f), got, tt.want)
		}
	}
}

// TestServiceFee checks the rounding rule: half up to the fen.
func TestServiceFee(t *testing.T) {
	for _, tt := range []struct {
		amount Fen
		bp     int32
		want   Fen
	}{
		{1000, 500, 50}, // 10.00 at 5% = 0.50
		{10, 500, 1},    // 0.005 rounds up
		{9, 500, 0},     // 0.0045 rounds down
		{30, 500, 2},    // 0.015 rounds up
		{1, 10000, 1},   // 100%
		{1000, 0, 0},    // no fee
		{MaxAmount, 10000, MaxAmount},
	} {
		if got := ServiceFee(tt.amount, tt.bp); got != tt.want {
			t.Errorf("ServiceFee(%d, %d) = %d, want %d", tt.amount, tt.bp, got, tt.want)
		}
	}
}

func TestBusinessDate(t *testing.T) {
	for _, tt := range []struct {
		d     BusinessDate
		valid bool
	}{{20250301, true}, {20240229, true}, {20250229, false}, {20251301, false}, {20250100, false}, {19991231, false}} {
		if tt.d.Valid() != tt.valid {
			t.Errorf("%d valid = %v", tt.d, !tt.valid)
		}
	}
	if d := BusinessDate(20250228).AddDays(1); d != 20250301 {
		t.Errorf("AddDays across February: %d", d)
	}
	if n := BusinessDate(20250331).DaysSince(20250301); n != 30 {
		t.Errorf("DaysSince = %d", n)
	}
}

// TestSpecYAML checks that the YAML forms the switch's configuration uses
// decode exactly: quoted and unquoted yuan, states, optional limits.
func TestSpecYAML(t *testing.T) {
	var c CardSpec
	src := "pan: \"6230151000000000012\"\nholder_type: visitor\ncash: 0.10\nsubsidy: \"200.00\"\nstate: frozen\nlist: grey\nno_pin_limit: \"0\"\nfee_rate_bp: 250\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if c.Cash != 10 || c.Subsidy != 20000 || c.HolderType != Visitor || c.State != Frozen || c.List != ListGrey ||
		c.NoPINLimit == nil || *c.NoPINLimit != 0 || c.MaxBalance != nil || c.FeeRateBP == nil || *c.FeeRateBP != 250 {
		t.Errorf("decoded %+v", c)
	}
	for _, bad := range []string{"cash: 1.001\n", "cash: -1\n", "holder_type: alien\n", "state: gone\n"} {
		if err := yaml.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func FuzzParseYuan(f *testing.F) {
	for _, s := range []string{"500.00", "0.5", "", "1.234", "9999999999.99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseYuan(s)
		if err != nil {
			return
		}
		if v < 0 || v > MaxAmount {
			t.Fatalf("ParseYuan(%q) = %d out of range", s, v)
		}
		// The canonical form parses back to the same amount.
		if w, err := ParseYuan(v.String()); err != nil || w != v {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, v, v.String(), w, err)
		}
	})
}
