// Package blockcipher builds the block ciphers the HSM works with (single
// DES, double- and triple-length TDES, AES, SM4) from raw key bytes, and
// provides the few modes a payment HSM needs on whole blocks: ECB, CBC and
// key check values.
//
// It exists so that every other package in hsm/ agrees on one rule for key
// lengths: a 16-byte TDES key is K1K2K1 (ANSI X9.52 keying option 2), an
// 8-byte DES key is single DES, and SM4 keys are 16 bytes (GB/T 32907).
package blockcipher

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm4"
)

// Algorithm names a block cipher family.
type Algorithm uint8

const (
	// DES is single-length DES (8-byte key); only legacy single-DES MAKs
	// (sign-on mode 001) and the halves of retail-MAC keys use it.
	DES Algorithm = iota + 1
	// TDES is triple DES with a 16-byte (K1K2K1) or 24-byte key.
	TDES
	// AES takes 16, 24 or 32-byte keys.
	AES
	// SM4 is the Chinese national block cipher, 16-byte keys and blocks.
	SM4
)

// String returns the lowercase name used by the CLI and in stored records.
func (a Algorithm) String() string {
	switch a {
	case DES:
		return "des"
	case TDES:
		return "tdes"
	case AES:
		return "aes"
	case SM4:
		return "sm4"
	}
	return fmt.Sprintf("alg(%d)", uint8(a))
}

// ParseAlgorithm is the inverse of String.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch s {
	case "des":
		return DES, nil
	case "tdes", "3des":
		return TDES, nil
	case "aes":
		return AES, nil
	case "sm4":
		return SM4, nil
	}
	return 0, fmt.Errorf("unknown algorithm %q (want des, tdes, aes or sm4)", s)
}

// BlockSize returns the cipher block size in bytes.
func (a Algorithm) BlockSize() int {
	switch a {
	case DES, TDES:
		return 8
	case AES, SM4:
		return 16
	}
	return 0
}

// ErrKeyLength reports a key whose length does not fit the algorithm.
var ErrKeyLength = errors.New("wrong key length")

// ErrBlockLength reports data that is not a whole number of blocks.
var ErrBlockLength = errors.New("data is not a whole number of blocks")

// ValidKeyLength reports whether n bytes is a key length for a.
func (a Algorithm) ValidKeyLength(n int) bool {
	switch a {
	case DES:
		return n == 8
	case TDES:
		return n == 16 || n == 24
	case AES:
		return n == 16 || n == 24 || n == 32
	case SM4:
		return n == 16
	}
	return false
}

// New returns the block cipher for key. The caller keeps ownership of key
// and may zero it afterwards: no cipher here keeps a reference to it.
func New(a Algorithm, key []byte) (cipher.Block, error) {
	if !a.ValidKeyLength(len(key)) {
		return nil, fmt.Errorf("%s key of %d bytes: %w", a, len(key), ErrKeyLength)
	}
	switch a {
	case DES:
		return des.NewCipher(key)
	case TDES:
		if len(key) == 16 {
			var k [24]byte
			copy(k[:16], key)
			copy(k[16:], key[:8])
			b, err := des.NewTripleDESCipher(k[:])
			clear(k[:])
			return b, err
		}
		return des.NewTripleDESCipher(key)
	case AES:
		return aes.NewCipher(key)
	case SM4:
		return sm4.NewCipher(key)
	}
	return nil, fmt.Errorf("unknown algorithm %d", a)
}

// NewDESFamily picks single DES for 8-byte keys and TDES for 16/24-byte
// keys, the convention of ISO 9797-1 MACs and of PIN keys.
func NewDESFamily(key []byte) (cipher.Block, error) {
	if len(key) == 8 {
		return New(DES, key)
	}
	return New(TDES, key)
}

// EncryptECB encrypts src (whole blocks) block by block into a new slice.
func EncryptECB(b cipher.Block, src []byte) ([]byte, error) {
	bs := b.BlockSize()
	if len(src)%bs != 0 || len(src) == 0 {
		return nil, fmt.Errorf("ECB encrypt %d bytes: %w", len(src), ErrBlockLength)
	}
	dst := make([]byte, len(src))
	for i := 0; i < len(src); i += bs {
		b.Encrypt(dst[i:i+bs], src[i:i+bs])
	}
	return dst, nil
}

// DecryptECB is the inverse of EncryptECB.
func DecryptECB(b cipher.Block, src []byte) ([]byte, error) {
	bs := b.BlockSize()
	if len(src)%bs != 0 || len(src) == 0 {
		return nil, fmt.Errorf("ECB decrypt %d bytes: %w", len(src), ErrBlockLength)
	}
	dst := make([]byte, len(src))
	for i := 0; i < len(src); i += bs {
		b.Decrypt(dst[i:i+bs], src[i:i+bs])
	}
	return dst, nil
}

// EncryptCBC encrypts whole blocks in CBC mode; a nil iv means zeros.
func EncryptCBC(b cipher.Block, iv, src []byte) ([]byte, error) {
	iv, err := checkCBC(b, iv, src)
	if err != nil {
		return nil, err
	}
	dst := make([]byte, len(src))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(dst, src)
	return dst, nil
}

// DecryptCBC is the inverse of EncryptCBC.
func DecryptCBC(b cipher.Block, iv, src []byte) ([]byte, error) {
	iv, err := checkCBC(b, iv, src)
	if err != nil {
		return nil, err
	}
	dst := make([]byte, len(src))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(dst, src)
	return dst, nil
}

func checkCBC(b cipher.Block, iv, src []byte) ([]byte, error) {
	bs := b.BlockSize()
	if len(src)%bs != 0 || len(src) == 0 {
		return nil, fmt.Errorf("CBC %d bytes: %w", len(src), ErrBlockLength)
	}
	if iv == nil {
		iv = make([]byte, bs)
	}
	if len(iv) != bs {
		return nil, fmt.Errorf("IV of %d bytes, want %d", len(iv), bs)
	}
	return iv, nil
}

// CheckBlock returns the key encrypting one block of zeros: the classic key
// check value is its first 3 (display) or 4 (UnionPay field 62) bytes.
func CheckBlock(a Algorithm, key []byte) ([]byte, error) {
	b, err := New(a, key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, b.BlockSize())
	b.Encrypt(out, out)
	return out, nil
}

// FixParity sets odd parity on every byte of a DES-family key, as ANSI
// X3.92 expects of generated keys (the low bit of each byte is parity).
func FixParity(key []byte) {
	for i, c := range key {
		c &^= 1
		ones := 0
		for v := c; v != 0; v &= v - 1 {
			ones++
		}
		if ones%2 == 0 {
			c |= 1
		}
		key[i] = c
	}
}
