package hsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/hsm/terminal"
)

// TestSignOnProof: the proof of docs/pos-dialect.md#sign-on-proof, with
// vectors computed independently (openssl enc -des-ede-ecb / -sm4-ecb
// -nopad over BCD 1204134643000001, the SM4 block padded with 8 zero
// bytes).
func TestSignOnProof(t *testing.T) {
	h, _ := openHSM(t, Options{})
	seedTerminal(t, h, "10000001") // TDES 0123456789ABCDEFFEDCBA9876543210
	sm4TMK := mustHex("0123456789ABCDEFFEDCBA9876543210")
	if _, err := h.LoadClearKeyAlg(TerminalKeyLabel("10000002", TMK), TMK, SM4, sm4TMK); err != nil {
		t.Fatal(err)
	}
	const stamp = "1204134643000001"
	for _, tc := range []struct {
		tid, mode string
		want      []byte
	}{
		{"10000001", ModeDoubleDES, mustHex("BAC993E6AC8730D3")},
		{"10000002", ModeSM4, mustHex("60F7708D2EA418AD")},
	} {
		tmk := demoTMK
		if tc.mode == ModeSM4 {
			tmk = sm4TMK
		}
		c, err := terminal.TMKCipher(tmk, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		got, err := terminal.SignOnProof(c, stamp)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Fatalf("%s: terminal proof %X %v, want %X", tc.mode, got, err, tc.want)
		}
		if ok, err := h.VerifySignOnProof(tc.tid, stamp, tc.want); err != nil || !ok {
			t.Fatalf("%s: right proof refused: %v %v", tc.mode, ok, err)
		}
		for _, bad := range [][]byte{nil, tc.want[:7], append(append([]byte(nil), tc.want...), 0)} {
			if ok, err := h.VerifySignOnProof(tc.tid, stamp, bad); err != nil || ok {
				t.Fatalf("%s: proof %X accepted: %v %v", tc.mode, bad, ok, err)
			}
		}
		flipped := append([]byte(nil), tc.want...)
		flipped[7] ^= 1
		if ok, _ := h.VerifySignOnProof(tc.tid, stamp, flipped); ok {
			t.Fatalf("%s: flipped proof accepted", tc.mode)
		}
		// The proof binds the stamp: a later STAN needs a new proof.
		if ok, _ := h.VerifySignOnProof(tc.tid, "1204134643000002", tc.want); ok {
			t.Fatalf("%s: proof of another stamp accepted", tc.mode)
		}
	}
	if _, err := h.VerifySignOnProof("10000001", "12041346430000", mustHex("BAC993E6AC8730D3")); !errors.Is(err, terminal.ErrStamp) {
		t.Errorf("short stamp: %v", err)
	}
	if _, err := h.VerifySignOnProof("10000001", "120413464300000X", mustHex("BAC993E6AC8730D3")); !errors.Is(err, terminal.ErrStamp) {
		t.Errorf("non-digit stamp: %v", err)
	}
	if _, err := h.VerifySignOnProof("10000009", stamp, mustHex("BAC993E6AC8730D3")); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("terminal without TMK: %v", err)
	}
}

// TestSM4PINBlock: a 16-byte SM4 PIN block (ISO 9564-1 format 4 with SM4)
// verified inside the HSM, and field 53 digit 2 checked against the PIK.
// The vector was computed with openssl enc -sm4-ecb: PIN field
// 46123456AAAAAAAA 1122334455667788, PAN field 7623015100000000001200..00.
func TestSM4PINBlock(t *testing.T) {
	h, _ := openHSM(t, Options{})
	pan, pin := "6230151000000000012", "123456"
	pvv, err := h.PINVerificationValue(pan, pin)
	if err != nil {
		t.Fatal(err)
	}
	pik := mustHex("00112233445566778899AABBCCDDEEFF")
	if _, err := h.LoadClearKeyAlg(TerminalKeyLabel("10000002", TPK), TPK, SM4, pik); err != nil {
		t.Fatal(err)
	}
	sm4, err := blockcipher.New(blockcipher.SM4, pik)
	if err != nil {
		t.Fatal(err)
	}
	block, err := pinblock.EncryptFormat4(sm4, pin, pan, "1122334455667788")
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex("CD1E56BACA9D1C4B9A0F92FAB3DF2DFC"); !bytes.Equal(block, want) {
		t.Fatalf("SM4 PIN block %X, want %X", block, want)
	}
	if ok, err := h.VerifyTerminalPINBlock("10000002", block, terminal.SecurityControlSM4, pan, pvv); err != nil || !ok {
		t.Fatalf("right PIN refused: %v %v", ok, err)
	}
	wrong, _ := pinblock.EncryptFormat4(sm4, "654321", pan, "")
	if ok, err := h.VerifyTerminalPINBlock("10000002", wrong, terminal.SecurityControlSM4, pan, pvv); err != nil || ok {
		t.Fatalf("wrong PIN accepted: %v %v", ok, err)
	}
	// TDES PIK on terminal 10000001 (signed on), for the mismatches.
	seedTerminal(t, h, "10000001")
	f62, err := h.SignOn("10000001", ModeDoubleDES)
	if err != nil {
		t.Fatal(err)
	}
	wk, err := terminal.ParseField62(demoTMK, ModeDoubleDES, f62)
	if err != nil {
		t.Fatal(err)
	}
	tdesBlock, f53, err := wk.PINBlock(pinblock.Format0, pin, pan)
	if err != nil || f53 != "2600000000000000" {
		t.Fatalf("TDES PIN block: %v %q", err, f53)
	}
	if ok, err := h.VerifyTerminalPINBlock("10000001", tdesBlock, f53, pan, pvv); err != nil || !ok {
		t.Fatalf("TDES right PIN refused: %v %v", ok, err)
	}
	for _, tc := range []struct {
		name, tid string
		block     []byte
		f53       string
	}{
		{"digit 2 says SM4, PIK is TDES", "10000001", tdesBlock, "2400000000000000"},
		{"digit 2 says TDES, PIK is SM4", "10000002", block, "2600000000000000"},
		{"SM4 block not PAN-bound", "10000002", block, "1400000000000000"},
		{"unknown digit 2", "10000001", tdesBlock, "2000000000000000"},
		{"16-byte block under TDES", "10000001", block, "2600000000000000"},
		{"8-byte block under SM4", "10000002", tdesBlock, "2400000000000000"},
		{"short field 53", "10000001", tdesBlock, "2"},
	} {
		if _, err := h.VerifyTerminalPINBlock(tc.tid, tc.block, tc.f53, pan, pvv); !errors.Is(err, ErrSecurityControl) {
			t.Errorf("%s: %v, want ErrSecurityControl", tc.name, err)
		}
	}
}

// TestPINFormatFromField53: digit 2 '4' names an SM4 block (format 4
// with SM4), PAN-bound only; otherwise digit 1 names the format.
func TestPINFormatFromField53(t *testing.T) {
	for _, tc := range []struct {
		f53  string
		want PINFormat
		err  bool
	}{
		{"2600000000000000", PINFormat0, false},
		{"1600000000000000", PINFormat1, false},
		{"2400000000000000", PINFormat4, false},
		{"1400000000000000", 0, true},
		{"9600000000000000", 0, true},
		{"", 0, true},
	} {
		got, err := PINFormatFromField53(tc.f53)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("%q: %v %v, want %v (error %v)", tc.f53, got, err, tc.want, tc.err)
		}
	}
}

// TestTranslateSM4PINBlock: an SM4 terminal's PIN block (format 4 with
// SM4) is translated to a gateway's TDES ZPK as format 0, for cards
// routed to a bank.
func TestTranslateSM4PINBlock(t *testing.T) {
	h, _ := openHSM(t, Options{})
	pan := "6230151000000000012"
	pik := mustHex("00112233445566778899AABBCCDDEEFF")
	if _, err := h.LoadClearKeyAlg(TerminalKeyLabel("10000002", TPK), TPK, SM4, pik); err != nil {
		t.Fatal(err)
	}
	zpk := mustHex("0123456789ABCDEFFEDCBA9876543210")
	if _, err := h.LoadClearKey("zone/bank/ZPK", ZPK, zpk); err != nil {
		t.Fatal(err)
	}
	f, err := PINFormatFromField53(terminal.SecurityControlSM4)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.TranslateTerminalPIN("10000002", f, "zone/bank/ZPK", PINFormat0, mustHex("CD1E56BACA9D1C4B9A0F92FAB3DF2DFC"), pan)
	if err != nil {
		t.Fatal(err)
	}
	tdes, _ := blockcipher.New(blockcipher.TDES, zpk)
	if pin, err := pinblock.Decrypt(tdes, pinblock.Format0, out, pan); err != nil || pin != "123456" {
		t.Fatalf("translated block gives %q %v", pin, err)
	}
}
