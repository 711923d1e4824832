package terminal

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
)

func h(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var tmk = h("0123456789ABCDEFFEDCBA9876543210")

// build assembles a mode 003/004 field 62 by hand from known clear keys,
// following docs/hsm.md#sign-on byte by byte.
func build(t *testing.T, pik, mak, tdk []byte) []byte {
	t.Helper()
	tb, _ := blockcipher.New(blockcipher.TDES, tmk)
	enc := func(k []byte) []byte { e, _ := blockcipher.EncryptECB(tb, k); return e }
	cv := func(a blockcipher.Algorithm, k []byte) []byte { c, _ := blockcipher.CheckBlock(a, k); return c[:4] }
	var f []byte
	f = append(f, enc(pik)...)
	f = append(f, cv(blockcipher.TDES, pik)...)
	f = append(f, enc(mak)...)
	f = append(f, make([]byte, 8)...)
	f = append(f, cv(blockcipher.DES, mak)...)
	if tdk != nil {
		f = append(f, enc(tdk)...)
		f = append(f, cv(blockcipher.TDES, tdk)...)
	}
	return f
}

func TestParseField62(t *testing.T) {
	pik := h("1111111111111111FEFEFEFEFEFEFEFE")
	mak := h("0123456789ABCDEF")
	tdk := h("2323232323232323ABABABABABABABAB")
	f := build(t, pik, mak, tdk)
	if len(f) != 60 {
		t.Fatalf("hand-built field is %d bytes", len(f))
	}
	w, err := ParseField62(tmk, "004", f)
	if err != nil {
		t.Fatal(err)
	}
	// The MAC must be the POS MAC (docs/pos-dialect.md#mac-field-64) under the clear MAK.
	mb, _ := blockcipher.New(blockcipher.DES, mak)
	data := []byte("packed message")
	want, _ := mac.CUPECB(mb, data)
	got, _ := w.MAC(data)
	if got != want {
		t.Fatalf("MAC %s want %s", got, want)
	}
	if ok, _ := w.VerifyMAC(data, want[:]); !ok {
		t.Fatal("VerifyMAC refused its own MAC")
	}
	// PIN blocks are under the PIK.
	pb, _ := blockcipher.New(blockcipher.TDES, pik)
	blk, err := w.EncryptPIN(pinblock.Format0, "123456", "6230151000000000012")
	if err != nil {
		t.Fatal(err)
	}
	if pin, err := pinblock.Decrypt(pb, pinblock.Format0, blk, "6230151000000000012"); err != nil || pin != "123456" {
		t.Fatalf("PIN %q %v", pin, err)
	}
	if _, err := ParseField62(tmk, "003", f[:40]); err != nil {
		t.Fatal(err)
	}
}

func TestParseField62Rejects(t *testing.T) {
	f := build(t, h("1111111111111111FEFEFEFEFEFEFEFE"), h("0123456789ABCDEF"), nil)
	bad := append([]byte(nil), f...)
	bad[39] ^= 1 // MAK check value
	if _, err := ParseField62(tmk, "003", bad); !errors.Is(err, ErrCheckValue) {
		t.Fatalf("bad CV: %v", err)
	}
	if _, err := ParseField62(tmk, "004", f); !errors.Is(err, ErrField62) {
		t.Fatalf("short field: %v", err)
	}
	other := h("FEDCBA98765432100123456789ABCDEF")
	if _, err := ParseField62(other, "003", f); !errors.Is(err, ErrCheckValue) {
		t.Fatalf("wrong TMK: %v", err)
	}
	if _, err := ParseField62(tmk, "002", f); err == nil {
		t.Fatal("mode 002 accepted")
	}
}

func TestSecurityControl(t *testing.T) {
	for f, want := range map[pinblock.Format]string{pinblock.Format0: "2600000000000000", pinblock.Format1: "1600000000000000"} {
		got, err := SecurityControl(f)
		if err != nil || got != want {
			t.Fatalf("%d: %s %v", f, got, err)
		}
		back, err := pinblock.FormatFromSecurityControl(got)
		if err != nil || back != f {
			t.Fatalf("round trip %d: %d %v", f, back, err)
		}
	}
}

func FuzzParseField62(f *testing.F) {
	f.Add([]byte("0123456789012345678901234567890123456789"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, m uint8) {
		mode := []string{"001", "003", "004", "006"}[int(m)%4]
		key := tmk
		if mode == "006" {
			key = h("00112233445566778899AABBCCDDEEFF")
		}
		_, _ = ParseField62(key, mode, b) // must not panic
	})
}
