package pinblock

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestEncodeDecode(t *testing.T) {
	tests := []struct {
		name     string
		f        Format
		pin, pan string
		fill     string
		want     string
		ref      string
	}{
		{"f0-x924", Format0, "1234", "4012345678909", "", "041274EDCBA9876F",
			"ANSI X9.24-1:2009 A.4 test PIN block (PIN 1234, PAN 4012345678909)"},
		{"f0-iso", Format0, "1234", "43219876543210987", "", "0412AC89ABCDEF67",
			"ISO 9564-1 format 0 example (PIN 1234, PAN 43219876543210987)"},
		// Hand-checked: 14 1234 then the 10 fill nibbles as given.
		{"f1", Format1, "1234", "", "0123456789", "1412340123456789", "ISO 9564-1 §9.3.2 layout"},
		{"f1-12", Format1, "123456789012", "", "AB", "1C123456789012AB", "ISO 9564-1 §9.3.2 layout, 12 digits"},
		// Hand-checked: 341234ABCDEFABCD XOR 0000987654321098.
		{"f3", Format3, "1234", "43219876543210987", "ABCDEFABCD", "3412ACDD99DDBB55", "ISO 9564-1 §9.3.4 layout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(tc.f, tc.pin, tc.pan, tc.fill)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, h(tc.want)) {
				t.Fatalf("%s: got %X want %s", tc.ref, got, tc.want)
			}
			pin, err := Decode(tc.f, got, tc.pan)
			if err != nil || pin != tc.pin {
				t.Fatalf("decode: %q %v", pin, err)
			}
		})
	}
}

func TestCampusPANField(t *testing.T) {
	// PAN 6230151000000000012: without the check digit 623015100000000001,
	// rightmost 12 digits 100000000001 → PAN field 0000100000000001.
	pf, err := panField("6230151000000000012")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pf[:], h("0000100000000001")) {
		t.Fatalf("%X", pf)
	}
}

func TestDecodeRejects(t *testing.T) {
	pan := "4012345678909"
	good, _ := Encode(Format0, "1234", pan, "")
	tests := []struct {
		name  string
		f     Format
		block []byte
		pan   string
		want  error
	}{
		{"wrong-pan", Format0, good, "4012345678917", ErrFormat},
		{"as-format1", Format1, good, "", ErrFormat},
		{"as-format3", Format3, good, pan, ErrFormat},
		{"short", Format0, good[:7], pan, ErrFormat},
		{"no-pan", Format0, good, "", ErrPAN},
		{"bad-length-nibble", Format1, h("1312340123456789"), "", ErrFormat},
		{"non-digit", Format1, h("141A340123456789"), "", ErrFormat},
		{"format3-bad-fill", Format3, func() []byte {
			// Control 3 with decimal fill 0123456789 (format 3 needs A–F).
			b := h("3412340123456789")
			pf, _ := panField(pan)
			for i := range b {
				b[i] ^= pf[i]
			}
			return b
		}(), pan, ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.f, tc.block, tc.pan)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name          string
		f             Format
		pin, pan, fil string
		want          error
	}{
		{"pin-short", Format0, "123", "4012345678909", "", ErrPINLength},
		{"pin-long", Format0, "1234567890123", "4012345678909", "", ErrPINLength},
		{"pin-alpha", Format1, "12a4", "", "", ErrPINDigits},
		{"pan-missing", Format0, "1234", "", "", ErrPAN},
		{"pan-alpha", Format3, "1234", "40123456789X9", "", ErrPAN},
		{"fill-short", Format1, "1234", "", "0123", ErrFill},
		{"fill-f3-range", Format3, "1234", "4012345678909", "0123456789", ErrFill},
		{"format4-clear", Format4, "1234", "4012345678909", "", ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(tc.f, tc.pin, tc.pan, tc.fil); !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
		})
	}
}

func TestFormat4(t *testing.T) {
	// ISO 9564-1:2017 §9.4.2: PAN field for a 16-digit PAN has M = 4 and
	// the PAN left-justified: 4 4321987654321098 then zero nibbles.
	pf, err := format4PANField("4321987654321098")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pf[:], h("44321987654321098000000000000000")) {
		t.Fatalf("PAN field %X", pf)
	}
	// A 19-digit PAN: M = 7.
	pf, _ = format4PANField("1234567890123456789")
	if !bytes.Equal(pf[:], h("71234567890123456789000000000000")) {
		t.Fatalf("PAN field %X", pf)
	}
	field, err := Format4PINField("1234", "0123456789ABCDEF")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(field, h("441234AAAAAAAAAA0123456789ABCDEF")) {
		t.Fatalf("PIN field %X", field)
	}
	key := h("000102030405060708090A0B0C0D0E0F")
	b, _ := aes.NewCipher(key)
	enc, err := EncryptFormat4(b, "1234", "4321987654321098", "0123456789ABCDEF")
	if err != nil {
		t.Fatal(err)
	}
	// Hand computation of §9.4.2: C = E(E(PIN field) XOR PAN field).
	want := make([]byte, 16)
	b.Encrypt(want, field)
	for i := range want {
		want[i] ^= pf[i]
	}
	pf, _ = format4PANField("4321987654321098")
	b.Encrypt(want, field)
	for i := range want {
		want[i] ^= pf[i]
	}
	b.Encrypt(want, want)
	if !bytes.Equal(enc, want) {
		t.Fatalf("format 4: %X want %X", enc, want)
	}
	pin, err := DecryptFormat4(b, enc, "4321987654321098")
	if err != nil || pin != "1234" {
		t.Fatalf("decrypt %q %v", pin, err)
	}
	if _, err := DecryptFormat4(b, enc, "4321987654321106"); !errors.Is(err, ErrFormat) {
		t.Fatalf("wrong PAN accepted: %v", err)
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	tdes, _ := blockcipher.New(blockcipher.TDES, h("0123456789ABCDEFFEDCBA9876543210"))
	for _, f := range []Format{Format0, Format1, Format3} {
		enc, err := Encrypt(tdes, f, "654321", "6230151000000000020", "")
		if err != nil {
			t.Fatal(err)
		}
		pin, err := Decrypt(tdes, f, enc, "6230151000000000020")
		if err != nil || pin != "654321" {
			t.Fatalf("format %d: %q %v", f, pin, err)
		}
	}
}

func TestFormatFromSecurityControl(t *testing.T) {
	for in, want := range map[string]Format{"2600000000000000": Format0, "1600000000000000": Format1} {
		if got, err := FormatFromSecurityControl(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "3600000000000000", "0"} {
		if _, err := FormatFromSecurityControl(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x04, 0x12, 0x74, 0xED, 0xCB, 0xA9, 0x87, 0x6F}, uint8(0), "4012345678909")
	f.Add([]byte{0x14, 0x12, 0x34, 0x01, 0x23, 0x45, 0x67, 0x89}, uint8(1), "")
	f.Fuzz(func(t *testing.T, block []byte, fm uint8, pan string) {
		formats := []Format{Format0, Format1, Format3}
		fmt := formats[int(fm)%len(formats)]
		pin, err := Decode(fmt, block, pan)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same block (fill for
		// formats 1 and 3 is taken from the block itself).
		if CheckPIN(pin) != nil {
			t.Fatalf("decoded invalid PIN %q", pin)
		}
		if fmt == Format0 {
			again, err := Encode(fmt, pin, pan, "")
			if err != nil || !bytes.Equal(again, block) {
				t.Fatalf("re-encode %X != %X (%v)", again, block, err)
			}
		}
	})
}
