package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Data encryption at rest: sensitive values the switch must keep (a bound
// bank account number) are sealed with AES-256-GCM under an AES data key
// (type TDK) that never leaves the HSM. The sealed form is nonce(12) ‖
// ciphertext ‖ tag(16); aad binds it to its purpose and owner, so a
// sealed value copied to another record does not open there.

// ErrSealed reports a sealed value that does not open (damaged, another
// key, other associated data).
var ErrSealed = errors.New("sealed data does not open under this key")

// MaxSealedData bounds what SealData seals.
const MaxSealedData = 4096

// SealData encrypts plaintext under the AES data key at label.
func (h *HSM) SealData(label string, plaintext, aad []byte) (out []byte, err error) {
	if len(plaintext) > MaxSealedData {
		return nil, fmt.Errorf("seal %d bytes: at most %d", len(plaintext), MaxSealedData)
	}
	err = h.withClear(label, UsageDataEncrypt, func(k *loadedKey, key []byte) error {
		g, err := dataAEAD(k, key)
		if err != nil {
			return err
		}
		nonce := make([]byte, g.NonceSize())
		if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
			return err
		}
		out = g.Seal(nonce, nonce, plaintext, aad)
		return nil
	})
	h.observe(opDataSeal, err, true)
	return out, err
}

// OpenData decrypts a value SealData sealed under the key at label.
func (h *HSM) OpenData(label string, sealed, aad []byte) (out []byte, err error) {
	err = h.withClear(label, UsageDataDecrypt, func(k *loadedKey, key []byte) error {
		g, err := dataAEAD(k, key)
		if err != nil {
			return err
		}
		if len(sealed) < g.NonceSize()+g.Overhead() {
			return ErrSealed
		}
		out, err = g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
		if err != nil {
			return ErrSealed
		}
		return nil
	})
	h.observe(opDataOpen, err, err == nil)
	return out, err
}

func dataAEAD(k *loadedKey, key []byte) (cipher.AEAD, error) {
	if k.alg != AES || len(key) != 32 {
		return nil, fmt.Errorf("data key %s is %s of %d bytes, sealing needs AES-256: %w", k.label, k.alg, len(key), ErrUnsupported)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
