package pinverify

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/pinblock"
)

var pvk, _ = hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")

// Vectors: the public test suite of the psec Python library
// (tests/test_pin.py, test_generate_visa_pvv / test_generate_ibm3624_offset),
// PVK 0123456789ABCDEFFEDCBA9876543210.
func TestVisaPVV(t *testing.T) {
	tests := []struct{ pvki, pin, pan, want string }{
		{"1", "4524", "1122334455667788", "8523"},
		{"2", "1912", "1122334455667788", "3244"},
		{"1", "0570", "1122334455667718", "3144"},
		{"1", "8299", "1122334455667708", "4422"},
	}
	for _, tc := range tests {
		got, err := VisaPVV(pvk, tc.pan, tc.pin, tc.pvki)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PVV(%s, %s, %s) = %s want %s", tc.pan, tc.pin, tc.pvki, got, tc.want)
		}
	}
	if _, err := VisaPVV(pvk, "1122334455667788", "4524", "A"); !errors.Is(err, ErrPVKI) {
		t.Fatalf("bad PVKI: %v", err)
	}
	if _, err := VisaPVV(pvk[:5], "1122334455667788", "4524", "1"); !errors.Is(err, ErrPVK) {
		t.Fatalf("bad PVK: %v", err)
	}
	if _, err := VisaPVV(pvk, "1122334455667788", "45", "1"); !errors.Is(err, pinblock.ErrPINLength) {
		t.Fatalf("short PIN: %v", err)
	}
}

func TestIBM3624Offset(t *testing.T) {
	const decTab = "1234567890123456"
	tests := []struct{ vd, pin, want string }{
		{"1122334455667788", "4524", "0000"},
		{"1122334455667788", "5635", "1111"},
		{"1122334455667788", "0000", "6586"},
		{"1122334455667788", "1111", "7697"},
		{"1122334455667788", "1234", "7710"},
		{"11223344556677", "5518", "0000"}, // 14 digits, padded with F
	}
	for _, tc := range tests {
		got, err := IBM3624Offset(pvk, decTab, tc.vd, tc.pin)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("offset(%s, %s) = %s want %s", tc.vd, tc.pin, got, tc.want)
		}
		pin, err := IBM3624PIN(pvk, decTab, tc.vd, got)
		if err != nil || pin != tc.pin {
			t.Errorf("PIN from offset: %s %v", pin, err)
		}
	}
	if _, err := IBM3624Offset(pvk, "123456789012345A", "1122334455667788", "1234"); !errors.Is(err, ErrDecTab) {
		t.Fatalf("bad dectab: %v", err)
	}
	if _, err := IBM3624Offset(pvk, decTab, "11223344556677889", "1234"); !errors.Is(err, ErrValidationData) {
		t.Fatalf("long validation data: %v", err)
	}
	if _, err := IBM3624Offset(pvk, decTab, "XYZ", "1234"); !errors.Is(err, ErrValidationData) {
		t.Fatalf("non-hex validation data: %v", err)
	}
}
