package hsm

import (
	"encoding/hex"
	"errors"
	"testing"
)

func TestHMACSHA256(t *testing.T) {
	h, _ := openHSM(t, Options{})
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	if _, err := h.LoadClearKeyAlg("recharge/10001/http", ZAK, AES, key); err != nil {
		t.Fatal(err)
	}
	data := []byte(`1733318400{"a":1}`)
	// Computed independently (Python hmac, key 00..1F).
	want := "f57f039c45336210ddd727b80354ab176edd46a69d39df6ab802c10fc75c88ed"
	got, err := h.HMACSHA256("recharge/10001/http", data)
	if err != nil || hex.EncodeToString(got) != want {
		t.Fatalf("HMAC = %x, %v; want %s", got, err, want)
	}
	if ok, err := h.VerifyHMACSHA256("recharge/10001/http", data, got); !ok || err != nil {
		t.Fatalf("verify good: %v %v", ok, err)
	}
	got[0] ^= 1
	if ok, err := h.VerifyHMACSHA256("recharge/10001/http", data, got); ok || err != nil {
		t.Fatalf("verify bad: %v %v", ok, err)
	}
	if ok, err := h.VerifyHMACSHA256("recharge/10001/http", data, got[:5]); ok || err != nil {
		t.Fatalf("verify short: %v %v", ok, err)
	}
	// Key separation: a PIN key never computes a MAC; a missing key is an error.
	if _, err := h.LoadClearKey("zpk", ZPK, key[:16]); err != nil {
		t.Fatal(err)
	}
	if _, err := h.HMACSHA256("zpk", data); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("HMAC with a ZPK: %v", err)
	}
	if _, err := h.VerifyHMACSHA256("none", data, got); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}
