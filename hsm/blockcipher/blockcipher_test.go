package blockcipher

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestECBVectors(t *testing.T) {
	tests := []struct {
		name      string
		alg       Algorithm
		key, in   string
		want      string
		reference string
	}{
		{"des", DES, "0123456789ABCDEF", "4E6F77206973207468652074696D6520666F7220616C6C20",
			"3FA40E8A984D48156A271787AB8883F9893D51EC4B563B53", "FIPS 81 Appendix B, Table B1 (ECB)"},
		{"sm4", SM4, "0123456789ABCDEFFEDCBA9876543210", "0123456789ABCDEFFEDCBA9876543210",
			"681EDF34D206965E86B3E94F536E4246", "GB/T 32907-2016 Appendix A example 1"},
		{"aes128", AES, "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
			"69C4E0D86A7B0430D8CDB78070B4C55A", "FIPS 197 Appendix C.1"},
		{"aes256", AES, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF",
			"8EA2B7CA516745BFEAFC49904B496089", "FIPS 197 Appendix C.3"},
		// A double-length key with K1 = K2 = K3 degenerates to single DES,
		// which checks the K1K2K1 expansion against the FIPS 81 vector.
		{"tdes-degenerate", TDES, "0123456789ABCDEF0123456789ABCDEF", "4E6F772069732074",
			"3FA40E8A984D4815", "FIPS 81 Appendix B via TDES keying option 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.alg, h(tc.key))
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncryptECB(b, h(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, h(tc.want)) {
				t.Fatalf("%s: got %X want %s", tc.reference, got, tc.want)
			}
			back, err := DecryptECB(b, got)
			if err != nil || !bytes.Equal(back, h(tc.in)) {
				t.Fatalf("decrypt: %X %v", back, err)
			}
		})
	}
}

func TestCBCVector(t *testing.T) {
	// FIPS 81 Appendix C, Table C1 (CBC mode).
	b, _ := New(DES, h("0123456789ABCDEF"))
	got, err := EncryptCBC(b, h("1234567890ABCDEF"), h("4E6F77206973207468652074696D6520666F7220616C6C20"))
	if err != nil {
		t.Fatal(err)
	}
	if want := h("E5C7CDDE872BF27C43E934008C389C0F683788499A7C05F6"); !bytes.Equal(got, want) {
		t.Fatalf("got %X want %X", got, want)
	}
	back, _ := DecryptCBC(b, h("1234567890ABCDEF"), got)
	if !bytes.Equal(back, h("4E6F77206973207468652074696D6520666F7220616C6C20")) {
		t.Fatalf("decrypt %X", back)
	}
}

func TestCheckBlock(t *testing.T) {
	// The widely published KCV of the test key 0123456789ABCDEFFEDCBA9876543210
	// is 08D7B4 (e.g. ANSI X9.24-1 examples, HSM vendor manuals).
	cb, err := CheckBlock(TDES, h("0123456789ABCDEFFEDCBA9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cb[:3], h("08D7B4")) {
		t.Fatalf("KCV %X", cb)
	}
}

func TestKeyLengths(t *testing.T) {
	tests := []struct {
		alg Algorithm
		n   int
		ok  bool
	}{
		{DES, 8, true}, {DES, 16, false}, {TDES, 16, true}, {TDES, 24, true}, {TDES, 8, false},
		{AES, 16, true}, {AES, 24, true}, {AES, 32, true}, {AES, 8, false}, {SM4, 16, true}, {SM4, 32, false},
	}
	for _, tc := range tests {
		_, err := New(tc.alg, make([]byte, tc.n))
		if tc.ok && err != nil {
			// The zero DES key is weak but accepted by crypto/des.
			t.Errorf("%s/%d: %v", tc.alg, tc.n, err)
		}
		if !tc.ok && !errors.Is(err, ErrKeyLength) {
			t.Errorf("%s/%d: want ErrKeyLength, got %v", tc.alg, tc.n, err)
		}
	}
	b, _ := New(DES, make([]byte, 8))
	if _, err := EncryptECB(b, make([]byte, 7)); !errors.Is(err, ErrBlockLength) {
		t.Fatalf("want ErrBlockLength, got %v", err)
	}
}

func TestFixParity(t *testing.T) {
	k := h("0023456789ABCDEF")
	FixParity(k)
	// 0x00 -> 0x01, 0x23 (3 ones) stays, 0x45 (3) stays, 0x67 (5) stays,
	// 0x89 (3), 0xAB (5), 0xCD (5), 0xEF (7): all odd already.
	if !bytes.Equal(k, h("0123456789ABCDEF")) {
		t.Fatalf("parity %X", k)
	}
}
