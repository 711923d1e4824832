// Package mac implements the message authentication codes a payment switch
// meets: ISO/IEC 9797-1 MAC algorithms 1 (CBC-MAC) and 3 (the "retail" or
// ANSI X9.19 MAC) with padding methods 1–3, CMAC (NIST SP 800-38B) over AES,
// TDES and SM4, and the UnionPay POS "ECB" MAC of docs/pos-dialect.md#mac-field-64 over 8-byte
// (DES/TDES) or 16-byte (SM4) blocks.
//
// Functions take ready cipher.Block values so that callers can cache the key
// schedule (TDES key setup costs about as much as a whole MAC) and so that
// nothing here ever holds clear key bytes.
package mac

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxData bounds the message length any MAC here accepts: far above the
// largest ISO 8583 message (a few KiB) and small enough that a hostile
// length cannot make the HSM allocate without bound.
const MaxData = 1 << 20

// ErrTooLong reports data above MaxData.
var ErrTooLong = errors.New("MAC data too long")

// Padding is an ISO/IEC 9797-1 padding method.
type Padding int

const (
	// Pad1 appends zero bytes up to a whole block (none when aligned; an
	// empty message becomes one zero block).
	Pad1 Padding = 1
	// Pad2 appends 0x80 then zero bytes up to a whole block (always at
	// least one byte).
	Pad2 Padding = 2
	// Pad3 prepends a block holding the data length in bits (big-endian),
	// then pads the data as method 1.
	Pad3 Padding = 3
)

// Pad returns data padded to whole blocks of bs bytes by method m.
func Pad(data []byte, m Padding, bs int) ([]byte, error) {
	if len(data) > MaxData {
		return nil, fmt.Errorf("pad %d bytes: %w", len(data), ErrTooLong)
	}
	if bs != 8 && bs != 16 {
		return nil, fmt.Errorf("block size %d not supported", bs)
	}
	switch m {
	case Pad1:
		n := roundUp(len(data), bs)
		out := make([]byte, n)
		copy(out, data)
		return out, nil
	case Pad2:
		n := roundUp(len(data)+1, bs)
		out := make([]byte, n)
		copy(out, data)
		out[len(data)] = 0x80
		return out, nil
	case Pad3:
		n := bs + roundUp(len(data), bs)
		out := make([]byte, n)
		binary.BigEndian.PutUint64(out[bs-8:bs], uint64(len(data))*8)
		copy(out[bs:], data)
		return out, nil
	}
	return nil, fmt.Errorf("padding method %d not supported (want 1, 2 or 3)", m)
}

// roundUp returns n rounded up to a whole number of bs-byte blocks, and one
// block for n == 0 (ISO/IEC 9797-1 method 1 on the empty string).
func roundUp(n, bs int) int {
	if n == 0 {
		return bs
	}
	return (n + bs - 1) / bs * bs
}

// CBCMAC is ISO/IEC 9797-1 MAC algorithm 1: CBC encryption with a zero IV,
// the MAC being the last ciphertext block (whole block returned; truncate
// as the application needs).
func CBCMAC(b cipher.Block, data []byte, m Padding) ([]byte, error) {
	padded, err := Pad(data, m, b.BlockSize())
	if err != nil {
		return nil, err
	}
	return cbc(b, padded), nil
}

func cbc(b cipher.Block, padded []byte) []byte {
	bs := b.BlockSize()
	out := make([]byte, bs)
	for i := 0; i < len(padded); i += bs {
		subtle.XORBytes(out, out, padded[i:i+bs])
		b.Encrypt(out, out)
	}
	return out
}

// RetailMAC is ISO/IEC 9797-1 MAC algorithm 3 (ANSI X9.19): CBC-MAC under
// k1, then the last block is decrypted under k2 and encrypted under k1
// again. With DES halves of a double-length key this is the X9.19 MAC;
// with two SM4 keys it is the SM4 retail MAC of GB/T 15852.1-2020.
func RetailMAC(k1, k2 cipher.Block, data []byte, m Padding) ([]byte, error) {
	if k1.BlockSize() != k2.BlockSize() {
		return nil, errors.New("retail MAC keys of different block sizes")
	}
	out, err := CBCMAC(k1, data, m)
	if err != nil {
		return nil, err
	}
	k2.Decrypt(out, out)
	k1.Encrypt(out, out)
	return out, nil
}

// CMAC is the NIST SP 800-38B cipher-based MAC (OMAC1) over any 8- or
// 16-byte block cipher; the whole block is returned.
func CMAC(b cipher.Block, data []byte) ([]byte, error) {
	if len(data) > MaxData {
		return nil, fmt.Errorf("CMAC over %d bytes: %w", len(data), ErrTooLong)
	}
	bs := b.BlockSize()
	var rb byte
	switch bs {
	case 8:
		rb = 0x1B
	case 16:
		rb = 0x87
	default:
		return nil, fmt.Errorf("CMAC block size %d not supported", bs)
	}
	k1 := make([]byte, bs)
	b.Encrypt(k1, k1)
	dbl(k1, rb)
	k2 := append([]byte(nil), k1...)
	dbl(k2, rb)

	n := (len(data) + bs - 1) / bs
	complete := n > 0 && len(data)%bs == 0
	if n == 0 {
		n = 1
	}
	x := make([]byte, bs)
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x, x, data[i*bs:(i+1)*bs])
		b.Encrypt(x, x)
	}
	last := make([]byte, bs)
	tail := data[(n-1)*bs:]
	if complete {
		subtle.XORBytes(last, tail, k1)
	} else {
		copy(last, tail)
		last[len(tail)] = 0x80
		subtle.XORBytes(last, last, k2)
	}
	subtle.XORBytes(x, x, last)
	b.Encrypt(x, x)
	clear(k1)
	clear(k2)
	return x, nil
}

// dbl multiplies v by x in GF(2^n) (SP 800-38B §6.1 subkey generation).
func dbl(v []byte, rb byte) {
	carry := v[0] >> 7
	for i := 0; i < len(v)-1; i++ {
		v[i] = v[i]<<1 | v[i+1]>>7
	}
	v[len(v)-1] <<= 1
	v[len(v)-1] ^= byte(subtle.ConstantTimeSelect(int(carry), int(rb), 0))
}

// CUPECB computes the UnionPay POS "ECB" MAC of docs/pos-dialect.md#mac-field-64 and returns the
// 8 ASCII hex characters that go into field 64. With an 8-byte block cipher
// (the DES MAK of sign-on modes 001/003/004) it runs on 8-byte blocks; with
// SM4 (mode 006) on 16-byte blocks:
//
//  1. pad with 0x00 to whole blocks (nothing added when aligned);
//  2. XOR all blocks together, no encryption between them;
//  3. write the XOR as uppercase hex (2×block-size ASCII characters);
//  4. encrypt the first half of those characters, XOR with the second half,
//     encrypt again;
//  5. write that as uppercase hex; the MAC is its first 8 characters.
func CUPECB(b cipher.Block, data []byte) ([8]byte, error) {
	var out [8]byte
	if len(data) > MaxData {
		return out, fmt.Errorf("CUP MAC over %d bytes: %w", len(data), ErrTooLong)
	}
	bs := b.BlockSize()
	if bs != 8 && bs != 16 {
		return out, fmt.Errorf("CUP MAC block size %d not supported", bs)
	}
	// Step 2 as two 64-bit lanes: with 8-byte blocks both lanes are
	// the same block position, folded together after.
	var hi, lo uint64
	i := 0
	for ; i+32 <= len(data); i += 32 {
		d := data[i : i+32 : i+32]
		hi ^= binary.BigEndian.Uint64(d[0:]) ^ binary.BigEndian.Uint64(d[16:])
		lo ^= binary.BigEndian.Uint64(d[8:]) ^ binary.BigEndian.Uint64(d[24:])
	}
	for ; i+16 <= len(data); i += 16 {
		hi ^= binary.BigEndian.Uint64(data[i:])
		lo ^= binary.BigEndian.Uint64(data[i+8:])
	}
	// Step 1: the tail padded with zeros.
	var last [16]byte
	copy(last[:], data[i:])
	hi ^= binary.BigEndian.Uint64(last[:8])
	lo ^= binary.BigEndian.Uint64(last[8:])
	// Steps 3–4: the hex of the XOR is 2*bs characters; the first half
	// is encrypted in place (a heap buffer: it goes through the
	// interface), the second half XORed in a word at a time.
	var hx [32]byte
	if bs == 8 {
		putHex8(hx[:16], hi^lo)
	} else {
		putHex8(hx[:16], hi)
		putHex8(hx[16:], lo)
	}
	first := make([]byte, bs)
	copy(first, hx[:bs])
	b.Encrypt(first, first)
	for i := 0; i < bs; i += 8 {
		binary.BigEndian.PutUint64(first[i:], binary.BigEndian.Uint64(first[i:])^binary.BigEndian.Uint64(hx[bs+i:]))
	}
	b.Encrypt(first, first)
	// Step 5: the first 8 hex characters are the hex of the first 4 bytes.
	binary.BigEndian.PutUint64(out[:], hexWord(binary.BigEndian.Uint32(first)))
	return out, nil
}

// putHex8 writes the 16 uppercase hex characters of v (big-endian) to
// dst.
func putHex8(dst []byte, v uint64) {
	dst = dst[:16]
	binary.BigEndian.PutUint64(dst, hexWord(uint32(v>>32)))
	binary.BigEndian.PutUint64(dst[8:], hexWord(uint32(v)))
}

// hexWord returns the 8 uppercase hex characters of x as a big-endian
// word (x's top nibble in the top byte): each nibble spread into a byte
// of its own, then '0' added to each, and 7 more to each of 10 or more
// (which reach bit 4 when 6 is added); no byte carries into the next
// (TestHexWord).
func hexWord(x uint32) uint64 {
	v := uint64(x)
	v = (v | v<<16) & 0x0000FFFF0000FFFF
	v = (v | v<<8) & 0x00FF00FF00FF00FF
	v = (v | v<<4) & 0x0F0F0F0F0F0F0F0F
	letters := (v + 0x0606060606060606) >> 4 & 0x0101010101010101
	return v + 0x3030303030303030 + letters*7
}

// Equal compares two MACs in constant time (for equal lengths), so that a
// forger cannot learn a MAC byte by byte from response timing.
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}
