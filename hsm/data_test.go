package hsm

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealData(t *testing.T) {
	h, _ := openHSM(t, Options{})
	if _, _, err := h.EnsureKey("data/bank-accounts", TDK, AES, 32); err != nil {
		t.Fatal(err)
	}
	secret := []byte("6222020200112233445")
	s1, err := h.SealData("data/bank-accounts", secret, []byte("card-1"))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := h.SealData("data/bank-accounts", secret, []byte("card-1"))
	if bytes.Contains(s1, secret) || bytes.Equal(s1, s2) {
		t.Fatal("sealed value shows the clear text or repeats")
	}
	got, err := h.OpenData("data/bank-accounts", s1, []byte("card-1"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q %v", got, err)
	}
	// Another owner, a flipped bit, a truncated value: not opened.
	if _, err := h.OpenData("data/bank-accounts", s1, []byte("card-2")); !errors.Is(err, ErrSealed) {
		t.Fatalf("other aad: %v", err)
	}
	s1[len(s1)-1] ^= 1
	if _, err := h.OpenData("data/bank-accounts", s1, []byte("card-1")); !errors.Is(err, ErrSealed) {
		t.Fatalf("flipped bit: %v", err)
	}
	if _, err := h.OpenData("data/bank-accounts", s1[:10], []byte("card-1")); !errors.Is(err, ErrSealed) {
		t.Fatalf("truncated: %v", err)
	}
	// Key separation: a MAC key does not seal.
	if _, err := h.LoadClearKey("zak", ZAK, bytes.Repeat([]byte{1}, 16)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SealData("zak", secret, nil); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("seal with a ZAK: %v", err)
	}
}
