package dukpt

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
)

func h(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// ANSI X9.24-1:2009 Annex A.4 test data.
var (
	tdesBDK  = h("0123456789ABCDEFFEDCBA9876543210")
	tdesIKSN = h("FFFF9876543210E00000")
	// PIN block for PIN 1234, PAN 4012345678909 (format 0).
	tdesPINBlock = h("041274EDCBA9876F")
)

func TestTDESInitialKey(t *testing.T) {
	ik, err := TDESInitialKey(tdesBDK, tdesIKSN)
	if err != nil {
		t.Fatal(err)
	}
	if want := h("6AC292FAA1315B4D858AB3A3D7D5933A"); !bytes.Equal(ik, want) {
		t.Fatalf("X9.24-1:2009 A.4 IPEK: got %X want %X", ik, want)
	}
}

func TestTDESPINKeysAndBlocks(t *testing.T) {
	// ANSI X9.24-1:2009 A.4.2 (initial sequence) and A.4.3 (rollover):
	// KSN, transaction (current) key, PIN block encrypted under its PIN
	// variant.
	tests := []struct{ ksn, txnKey, enc string }{
		{"FFFF9876543210E00001", "042666B49184CFA368DE9628D0397BC9", "1B9C1845EB993A7A"},
		{"FFFF9876543210E00002", "C46551CEF9FD24B0AA9AD834130D3BC7", "10A01C8D02C69107"},
		{"FFFF9876543210E00003", "0DF3D9422ACA56E547676D07AD6BADFA", "18DC07B94797B466"},
		{"FFFF9876543210E00010", "59598DCBD9BD94C094165CE453585F57", "D5D9638559EF53D6"},
		{"FFFF9876543210E00015", "E161D1956A61F6D2F37AFD7F9CC3699A", "72105C22EBC791E6"},
		{"FFFF9876543210EFF800", "F9CDFEBF4F5B1D9EB3EC12454527E176", "33365F5CC6F23C35"},
		{"FFFF9876543210EFFC00", "F9430DF975082491C77BE4EF4FDB91EE", "DEFC6F09F8927B71"},
		{"FFFF9876543210F00000", "AA4D58DB653EC74A48C75F2F047DD2B5", "73EC88AD0AC5830E"},
	}
	for _, tc := range tests {
		t.Run(tc.ksn, func(t *testing.T) {
			k, err := TDESKeys(tdesBDK, h(tc.ksn))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.Transaction, h(tc.txnKey)) {
				t.Fatalf("transaction key %X want %s", k.Transaction, tc.txnKey)
			}
			b, _ := blockcipher.New(blockcipher.TDES, k.PIN)
			enc, _ := blockcipher.EncryptECB(b, tdesPINBlock)
			if !bytes.Equal(enc, h(tc.enc)) {
				t.Fatalf("encrypted PIN block %X want %s", enc, tc.enc)
			}
			// The variants of Table 3 relate the working keys to the
			// transaction key.
			for i := 0; i < 16; i++ {
				if k.PIN[i]^k.Transaction[i] != variantPIN[i%8] || k.MAC[i]^k.Transaction[i] != variantMACRequest[i%8] ||
					k.MACResponse[i]^k.Transaction[i] != variantMACResponse[i%8] {
					t.Fatalf("variant relation broken at byte %d", i)
				}
			}
		})
	}
}

func TestNextKSNTDES(t *testing.T) {
	// X9.24-1:2009 A.4.3 rollover sequence.
	seq := []string{"FFFF9876543210EFF800", "FFFF9876543210EFF801", "FFFF9876543210EFF802", "FFFF9876543210EFF804",
		"FFFF9876543210EFF808", "FFFF9876543210EFF810", "FFFF9876543210EFF820", "FFFF9876543210EFF840",
		"FFFF9876543210EFF880", "FFFF9876543210EFF900", "FFFF9876543210EFFA00", "FFFF9876543210EFFC00",
		"FFFF9876543210F00000"}
	k := h(seq[0])
	for i := 1; i < len(seq); i++ {
		next, err := NextKSN(k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(next, h(seq[i])) {
			t.Fatalf("step %d: %X want %s", i, next, seq[i])
		}
		k = next
	}
	// The largest counter with ten one-bits is 1FF800; after it, exhausted.
	if _, err := NextKSN(h("FFFF9876543210FFF800")); !errors.Is(err, ErrExhausted) {
		t.Fatalf("after 1FF800: %v", err)
	}
	// A counter with 11 one-bits is rejected.
	if _, err := TDESKeys(tdesBDK, h("FFFF9876543210E007FF")); !errors.Is(err, ErrCounter) {
		t.Fatalf("11 one-bits: %v", err)
	}
}

// ANSI X9.24-3-2017 supplement test vectors.
var (
	aes128BDK = h("FEDCBA9876543210F1F1F1F1F1F1F1F1")
	aes256BDK = h("FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210F1F1F1F1F1F1F1F1")
	ikid      = h("1234567890123456")
)

func TestAESInitialKey(t *testing.T) {
	tests := []struct {
		bdk  []byte
		want string
	}{
		{aes128BDK, "1273671EA26AC29AFA4D1084127652A1"},
		{aes256BDK, "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F"},
	}
	for _, tc := range tests {
		ik, err := AESInitialKey(tc.bdk, ikid)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ik, h(tc.want)) {
			t.Fatalf("X9.24-3-2017 B.1 initial key: %X want %s", ik, tc.want)
		}
	}
}

func TestAESDerivationKeys(t *testing.T) {
	tests := []struct {
		bdk     []byte
		counter string
		want    string
	}{
		{aes128BDK, "00000001", "4F21B565BAD9835E112B6465635EAE44"},
		{aes128BDK, "00000002", "2F34D68DE10F68D38091A73B9E7C437C"},
		{aes128BDK, "00000008", "718EE6CF0B27E53D5F7AF99C4D8146A2"},
		{aes128BDK, "0001FFFE", "E21E8C8D347F8561A2BE752DAA85A111"},
		{aes128BDK, "00020000", "F7AE9025468A25D37B7249CFFED224C8"},
		{aes128BDK, "FFFF0000", "F6BA59389BD14A9855BE9727E7C52E3C"},
		{aes256BDK, "00000001", "54AC2B32B145EA4A554CB8BC44B17467063A799856B1CCC2A138D36E8DBF78B3"},
		{aes256BDK, "00020001", "44110A1102748D4A3AC326F53D8CAC650212590CA7126D54546DDE0F20E89CEE"},
		{aes256BDK, "FFFF0000", "6D6DB7AAAE8B3EA90E57A39E4BBA71E173B21B446B30A78D64BFC6A8806C55EE"},
	}
	for _, tc := range tests {
		t.Run(tc.counter, func(t *testing.T) {
			ksn := append(append([]byte(nil), ikid...), h(tc.counter)...)
			k, err := AESKeys(tc.bdk, ksn, AES128)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.Transaction, h(tc.want)) {
				t.Fatalf("derivation key %X want %s", k.Transaction, tc.want)
			}
			// Working keys follow the derivation data of §6.3.2: check the
			// PIN key by hand: AES(derivation key, 01 01 1000 0002 0080
			// || ID[4:8] || counter).
			c, _ := aes.NewCipher(k.Transaction)
			d := append(h("0101100000020080"), ikid[4:]...)
			d = append(d, h(tc.counter)...)
			want := make([]byte, 16)
			c.Encrypt(want, d)
			if !bytes.Equal(k.PIN, want) {
				t.Fatalf("PIN key %X want %X", k.PIN, want)
			}
		})
	}
	// 0x1FFFF has 17 one-bits: never used.
	if _, err := AESKeys(aes128BDK, append(append([]byte(nil), ikid...), h("0001FFFF")...), AES128); !errors.Is(err, ErrCounter) {
		t.Fatalf("17 one-bits: %v", err)
	}
}

func TestNextKSNAES(t *testing.T) {
	// X9.24-3-2017 supplement: 1FFFE → 20000 (1FFFF skipped), last four
	// counters FFFE2000, FFFE4000, FFFE8000, FFFF0000, then exhausted.
	steps := [][2]string{{"0001FFFE", "00020000"}, {"00020000", "00020001"}, {"FFFE2000", "FFFE4000"},
		{"FFFE4000", "FFFE8000"}, {"FFFE8000", "FFFF0000"}}
	for _, s := range steps {
		next, err := NextKSN(append(append([]byte(nil), ikid...), h(s[0])...))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(next[8:], h(s[1])) {
			t.Fatalf("after %s: %X want %s", s[0], next[8:], s[1])
		}
	}
	if _, err := NextKSN(append(append([]byte(nil), ikid...), h("FFFF0000")...)); !errors.Is(err, ErrExhausted) {
		t.Fatalf("after FFFF0000: %v", err)
	}
}

func TestAESWorkingKeyTypes(t *testing.T) {
	ksn := append(append([]byte(nil), ikid...), h("00000001")...)
	k, err := AESKeys(aes256BDK, ksn, AES256)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.PIN) != 32 || len(k.MAC) != 32 {
		t.Fatalf("AES-256 working keys of %d bytes", len(k.PIN))
	}
	k2, _ := AESKeys(aes128BDK, ksn, TDES2)
	if len(k2.PIN) != 16 {
		t.Fatalf("TDES2 working key of %d bytes", len(k2.PIN))
	}
	if _, err := AESKeys(aes128BDK, ksn, AES256); err == nil {
		t.Fatal("AES-256 working key from an AES-128 BDK accepted")
	}
	if _, err := AESKeys(aes128BDK, ksn[:10], AES128); !errors.Is(err, ErrKSN) {
		t.Fatalf("short KSN: %v", err)
	}
}

func FuzzNextKSN(f *testing.F) {
	f.Add(h("FFFF9876543210E00001"))
	f.Add(h("123456789012345600000001"))
	f.Fuzz(func(t *testing.T, ksn []byte) {
		next, err := NextKSN(ksn)
		if err != nil {
			return
		}
		if len(next) == TDESKSNLen {
			if c := tdesCounter(next); c <= tdesCounter(ksn) && tdesCounter(ksn) != 0 {
				t.Fatalf("counter did not advance: %X -> %X", ksn, next)
			}
		}
	})
}

func BenchmarkTDESPINKey(b *testing.B) {
	ksn := h("FFFF9876543210E00015")
	for b.Loop() {
		_, _ = TDESPINKey(tdesBDK, ksn)
	}
}
