package hsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
)

// Zone key vectors, computed independently with
// `openssl enc -des-ede-ecb -nopad -K <ZMK>` (wrapped keys) and
// `-K <key>` over a zero block (check values; 08D7B4 is the classic check
// value of 0123456789ABCDEF FEDCBA9876543210).
const (
	vecZMK        = "8CD5E63EF2A78F0131F1FB0D4F3D7F2A"
	vecKeyA       = "0123456789ABCDEFFEDCBA9876543210"
	vecKeyAUnder  = "1152C9A0505B7CC4ACF1B8FB50425C58"
	vecKeyACheck  = "08D7B4"
	vecKeyB       = "89ABCDEF0123456776543210FEDCBA98"
	vecKeyBUnder  = "E42E549FC58BC8BD6A7AEC88F8119F9B"
	vecKeyBCheck  = "EB7A8D"
	vecLink       = "bank-a"
	nowIsTheTime  = "Now is the time for all "
	nowIsTheTimeM = "A1C72E74" // ISO/IEC 9797-1 Annex B.4, algorithm 3, padding 1, key A
)

func zoneHSM(t *testing.T) *HSM {
	t.Helper()
	h, _ := openHSM(t, Options{})
	kcv, err := h.ImportZMK(vecLink, mustHex(vecZMK))
	if err != nil {
		t.Fatal(err)
	}
	if len(kcv) < 3 {
		t.Fatalf("ZMK kcv %X", kcv)
	}
	return h
}

func TestZoneKeyExchangeImport(t *testing.T) {
	h := zoneHSM(t)
	// Before any exchange there is no ZAK: an error, not a false.
	if _, err := h.GenerateZoneMAC(vecLink, []byte("x")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("MAC before key exchange: %v", err)
	}
	// A wrong check value changes nothing.
	bad := ZoneKeys{ZPK: vecKeyAUnder, ZPKCheck: vecKeyACheck, ZAK: vecKeyBUnder, ZAKCheck: "EB7A8E"}
	if err := h.ImportZoneKeys(vecLink, bad); !errors.Is(err, ErrKCVMismatch) {
		t.Fatalf("wrong ZAK check: %v", err)
	}
	if h.HasKey(ZoneKeyLabel(vecLink, ZPK)) {
		t.Fatal("ZPK stored although the ZAK's check value was wrong")
	}
	for _, k := range []ZoneKeys{
		{ZPK: vecKeyAUnder[:30], ZPKCheck: vecKeyACheck, ZAK: vecKeyBUnder, ZAKCheck: vecKeyBCheck},
		{ZPK: vecKeyAUnder, ZPKCheck: "08D7", ZAK: vecKeyBUnder, ZAKCheck: vecKeyBCheck},
		{ZPK: "ZZ" + vecKeyAUnder[2:], ZPKCheck: vecKeyACheck, ZAK: vecKeyBUnder, ZAKCheck: vecKeyBCheck},
	} {
		if err := h.ImportZoneKeys(vecLink, k); err == nil {
			t.Errorf("ImportZoneKeys(%+v) accepted", k)
		}
	}
	// Exchange 1: ZPK = A, ZAK = B.
	if err := h.ImportZoneKeys(vecLink, ZoneKeys{ZPK: vecKeyAUnder, ZPKCheck: vecKeyACheck, ZAK: vecKeyBUnder, ZAKCheck: vecKeyBCheck}); err != nil {
		t.Fatal(err)
	}
	if c := h.ZoneKeyCheck(vecLink, ZPK); c != vecKeyACheck {
		t.Fatalf("ZPK check %s", c)
	}
	data := []byte(nowIsTheTime)
	macB := retail(t, vecKeyB, data)
	if got, err := h.GenerateZoneMAC(vecLink, data); err != nil || !bytes.Equal(got, macB) {
		t.Fatalf("MAC under B = %X, %v; want %X", got, err, macB)
	}
	// Exchange 2: ZPK = B, ZAK = A; the published vector holds under A.
	if err := h.ImportZoneKeys(vecLink, ZoneKeys{ZPK: vecKeyBUnder, ZPKCheck: vecKeyBCheck, ZAK: vecKeyAUnder, ZAKCheck: vecKeyACheck}); err != nil {
		t.Fatal(err)
	}
	got, err := h.GenerateZoneMAC(vecLink, data)
	if err != nil || !bytes.HasPrefix(got, mustHex(nowIsTheTimeM)) || len(got) != 8 {
		t.Fatalf("MAC under A = %X, %v; want %s...", got, err, nowIsTheTimeM)
	}
	if ok, err := h.VerifyZoneMAC(vecLink, data, got, false); !ok || err != nil {
		t.Fatalf("verify current: %v %v", ok, err)
	}
	// The previous ZAK (B) verifies only when the caller allows it.
	if ok, _ := h.VerifyZoneMAC(vecLink, data, macB, false); ok {
		t.Fatal("previous ZAK accepted outside its window")
	}
	if ok, err := h.VerifyZoneMAC(vecLink, data, macB, true); !ok || err != nil {
		t.Fatalf("previous ZAK within its window: %v %v", ok, err)
	}
	wrong := append([]byte(nil), got...)
	wrong[7] ^= 1
	if ok, err := h.VerifyZoneMAC(vecLink, data, wrong, true); ok || err != nil {
		t.Fatalf("wrong MAC: %v %v", ok, err)
	}
	if ok, err := h.VerifyZoneMAC(vecLink, data, got[:4], true); ok || err != nil {
		t.Fatalf("short MAC: %v %v", ok, err)
	}
	// Key separation: the ZAK is not a PIN key, the ZPK not a MAC key.
	if _, err := h.zoneMACKey(ZoneKeyLabel(vecLink, ZPK), UsageMACGenerate, TDES); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("ZPK as MAC key: %v", err)
	}
	if _, _, err := h.ExportKey(ZoneKeyLabel(vecLink, ZAK), TerminalKeyLabel("10000001", TMK)); err == nil {
		t.Fatal("exported a ZAK under a missing TMK")
	}
}

// SM4 zone MAC vectors. The key and message are those of GB/T
// 15852.1-2020 Appendix B (SM4). The SM4 link MAC is MAC algorithm 1
// (CBC-MAC, zero IV) with padding method 1, leftmost 8 bytes. For the
// 32-byte message padding 1 adds nothing, so its last CBC block C2 is
// tied to the appendix's published padding-2 MAC by one more block:
// SM4(C2 XOR 80 00..00) = 4B6553AF3C4E27448412315AC7849535 (checked with
// `openssl enc -sm4-ecb -nopad`). C2 and the 25-byte case come from
// `openssl enc -sm4-cbc -nopad -iv 0` over the zero-padded message. The
// ZAK wrapped under vecZMK is vecKeyAUnder (the same 16 key bytes), and
// its SM4 check value is SM4 of a zero block: 2677F46B...
const (
	vecSM4Msg32    = "This is the test message for mac"
	vecSM4C2       = "16E02904EFB765B706459C9EDABDB519"
	vecSM4Pad2MAC  = "4B6553AF3C4E27448412315AC7849535" // GB/T 15852.1-2020 Appendix B
	vecSM4Msg25    = "This is the test message "
	vecSM4MAC25    = "BA89E45FE8ABF242"
	vecSM4ZAKCheck = "2677F4"
)

func TestZoneSM4MAC(t *testing.T) {
	// The link between the published vector and ours, by hand.
	sm4, err := blockcipher.New(SM4, mustHex(vecKeyA))
	if err != nil {
		t.Fatal(err)
	}
	x := mustHex(vecSM4C2)
	x[0] ^= 0x80
	sm4.Encrypt(x, x)
	if !bytes.Equal(x, mustHex(vecSM4Pad2MAC)) {
		t.Fatalf("SM4(C2 ^ 80..) = %X, want the published %s", x, vecSM4Pad2MAC)
	}

	h := zoneHSM(t)
	// An SM4 ZAK with a TDES check value is refused, nothing stored.
	bad := ZoneKeys{ZPK: vecKeyBUnder, ZPKCheck: vecKeyBCheck, ZAK: vecKeyAUnder, ZAKCheck: vecKeyACheck}
	if err := h.ImportZoneKeysAlg(vecLink, bad, SM4); !errors.Is(err, ErrKCVMismatch) {
		t.Fatalf("SM4 ZAK with a TDES check value: %v", err)
	}
	if err := h.ImportZoneKeysAlg(vecLink, bad, AES); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("AES ZAK: %v", err)
	}
	keys := ZoneKeys{ZPK: vecKeyBUnder, ZPKCheck: vecKeyBCheck, ZAK: vecKeyAUnder, ZAKCheck: vecSM4ZAKCheck}
	if err := h.ImportZoneKeysAlg(vecLink, keys, SM4); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ msg, want string }{{vecSM4Msg32, vecSM4C2[:16]}, {vecSM4Msg25, vecSM4MAC25}} {
		got, err := h.GenerateZoneMACAlg(vecLink, SM4, []byte(c.msg))
		if err != nil || !bytes.Equal(got, mustHex(c.want)) {
			t.Fatalf("SM4 MAC of %q = %X, %v; want %s", c.msg, got, err, c.want)
		}
		if ok, err := h.VerifyZoneMACAlg(vecLink, SM4, []byte(c.msg), got, true); !ok || err != nil {
			t.Fatalf("verify SM4 MAC of %q: %v %v", c.msg, ok, err)
		}
		wrong := append([]byte(nil), got...)
		wrong[0] ^= 1
		if ok, err := h.VerifyZoneMACAlg(vecLink, SM4, []byte(c.msg), wrong, true); ok || err != nil {
			t.Fatalf("wrong SM4 MAC: %v %v", ok, err)
		}
	}
	// An SM4 ZAK never computes an X9.19 MAC, nor a TDES one an SM4 MAC.
	if _, err := h.GenerateZoneMAC(vecLink, []byte(vecSM4Msg32)); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("X9.19 MAC under an SM4 ZAK: %v", err)
	}
	// Back to a TDES ZAK: the previous (SM4) ZAK is not tried for X9.19,
	// and the current one refuses SM4.
	if err := h.ImportZoneKeys(vecLink, ZoneKeys{ZPK: vecKeyAUnder, ZPKCheck: vecKeyACheck, ZAK: vecKeyBUnder, ZAKCheck: vecKeyBCheck}); err != nil {
		t.Fatal(err)
	}
	macB := retail(t, vecKeyB, []byte(vecSM4Msg32))
	if ok, err := h.VerifyZoneMAC(vecLink, []byte(vecSM4Msg32), macB, true); !ok || err != nil {
		t.Fatalf("X9.19 after the change back: %v %v", ok, err)
	}
	if _, err := h.GenerateZoneMACAlg(vecLink, SM4, []byte(vecSM4Msg32)); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("SM4 MAC under a TDES ZAK: %v", err)
	}

	// Issue and import across two HSMs: the MACs agree.
	bank, sw := zoneHSM(t), zoneHSM(t)
	issued, err := bank.IssueZoneKeysAlg(vecLink, SM4)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.ImportZoneKeysAlg(vecLink, issued, SM4); err != nil {
		t.Fatal(err)
	}
	if err := sw.ImportZoneKeys(vecLink, issued); !errors.Is(err, ErrKCVMismatch) {
		t.Fatalf("SM4-issued keys imported as TDES: %v", err)
	}
	m, err := bank.GenerateZoneMACAlg(vecLink, SM4, []byte(vecSM4Msg25))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := sw.VerifyZoneMACAlg(vecLink, SM4, []byte(vecSM4Msg25), m, false); !ok || err != nil {
		t.Fatalf("bank's SM4 MAC at the switch: %v %v", ok, err)
	}
}

func retail(t *testing.T, keyHex string, data []byte) []byte {
	t.Helper()
	k := mustHex(keyHex)
	k1, _ := blockcipher.New(DES, k[:8])
	k2, _ := blockcipher.New(DES, k[8:])
	m, err := mac.RetailMAC(k1, k2, data, mac.Pad1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestZoneIssueAndPINTranslation(t *testing.T) {
	// The bank side issues keys; the switch side imports them; a PIN
	// translated at the switch verifies at the bank; MACs cross.
	bank := zoneHSM(t)
	sw := zoneHSM(t)
	keys, err := bank.IssueZoneKeys(vecLink)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.ZPK) != 32 || len(keys.ZAKCheck) != 6 {
		t.Fatalf("issued %+v", keys)
	}
	if err := sw.ImportZoneKeys(vecLink, keys); err != nil {
		t.Fatal(err)
	}
	if sw.ZoneKeyCheck(vecLink, ZAK) != keys.ZAKCheck || bank.ZoneKeyCheck(vecLink, ZPK) != keys.ZPKCheck {
		t.Fatal("check values differ between the sides")
	}
	msg := []byte("0200 packed message")
	m, err := sw.GenerateZoneMAC(vecLink, msg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := bank.VerifyZoneMAC(vecLink, msg, m, false); !ok || err != nil {
		t.Fatalf("bank verifies switch MAC: %v %v", ok, err)
	}

	const tid, pan, pin = "10000001", "6217001234567890123", "123456"
	tpk := mustHex(vecKeyA)
	if _, err := sw.LoadClearKey(TerminalKeyLabel(tid, TPK), TPK, tpk); err != nil {
		t.Fatal(err)
	}
	tb, _ := blockcipher.New(TDES, tpk)
	block, err := pinblock.Encrypt(tb, PINFormat0, pin, pan, "")
	if err != nil {
		t.Fatal(err)
	}
	zb, err := sw.TranslatePINToZone(tid, PINFormat0, vecLink, block, pan)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(zb, block) {
		t.Fatal("translation returned the terminal's block")
	}
	pvv, err := bank.PINVerificationValue(pan, pin)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := bank.VerifyZonePIN(vecLink, zb, pan, pvv); !ok || err != nil {
		t.Fatalf("bank verifies translated PIN: %v %v", ok, err)
	}
	other, _ := bank.PINVerificationValue(pan, "654321")
	if ok, err := bank.VerifyZonePIN(vecLink, zb, pan, other); ok || err != nil {
		t.Fatalf("wrong PIN: %v %v", ok, err)
	}
	if _, err := sw.TranslatePINToZone("10000009", PINFormat0, vecLink, block, pan); !errors.Is(err, ErrNotSignedOn) {
		t.Fatalf("unsigned terminal: %v", err)
	}
	// The bank issues again: the switch's old ZAK still verifies for the
	// window, and the new one after import.
	keys2, err := bank.IssueZoneKeys(vecLink)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := bank.VerifyZoneMAC(vecLink, msg, m, true); !ok {
		t.Fatal("bank rejects the previous ZAK within the window")
	}
	if err := sw.ImportZoneKeys(vecLink, keys2); err != nil {
		t.Fatal(err)
	}
	m2, _ := sw.GenerateZoneMAC(vecLink, msg)
	if bytes.Equal(m, m2) {
		t.Fatal("MAC unchanged after a key change")
	}
	if ok, _ := bank.VerifyZoneMAC(vecLink, msg, m2, false); !ok {
		t.Fatal("bank rejects the new ZAK")
	}
	if _, err := sw.IssueZoneKeys("bad name"); !errors.Is(err, ErrBadLinkName) {
		t.Fatalf("bad link name: %v", err)
	}
}
