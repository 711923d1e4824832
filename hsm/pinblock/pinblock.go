// Package pinblock encodes and decodes ISO 9564-1 PIN blocks: formats 0
// (ANSI X9.8, PIN XOR PAN), 1 (PIN with transaction fill, no PAN), 3 (PIN
// XOR PAN with random A–F fill) and 4 (the 16-byte AES format).
//
// Formats 0, 1 and 3 are 8-byte clear blocks that are then encrypted with a
// DES-family key. Format 4 interleaves encryption with the PAN (ISO 9564-1
// §9.4.2), so it is only available encrypted, with an AES cipher.
package pinblock

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Format is an ISO 9564-1 PIN block format number.
type Format int

const (
	Format0 Format = 0
	Format1 Format = 1
	Format3 Format = 3
	Format4 Format = 4
)

// PIN length bounds of ISO 9564-1 (4 to 12 digits).
const (
	MinPINLength = 4
	MaxPINLength = 12
)

// PAN length bounds (ISO/IEC 7812: up to 19 digits).
const (
	MinPANLength = 8
	MaxPANLength = 19
)

var (
	// ErrPINLength reports a PIN outside 4–12 digits.
	ErrPINLength = errors.New("PIN must be 4 to 12 digits")
	// ErrPINDigits reports a PIN with non-decimal characters.
	ErrPINDigits = errors.New("PIN must be decimal digits")
	// ErrPAN reports a missing or malformed PAN where the format needs one.
	ErrPAN = errors.New("PAN must be 8 to 19 decimal digits")
	// ErrFormat reports an unknown format or a block that does not decode
	// as the format it claims. It never says which nibble was wrong, so a
	// decoding oracle learns nothing about the PIN.
	ErrFormat = errors.New("PIN block does not decode as the stated format")
	// ErrFill reports a fill of the wrong length or alphabet.
	ErrFill = errors.New("bad PIN block fill")
)

// ParseFormat parses "0", "1", "3" or "4".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "0":
		return Format0, nil
	case "1":
		return Format1, nil
	case "3":
		return Format3, nil
	case "4":
		return Format4, nil
	}
	return 0, fmt.Errorf("PIN block format %q: %w", s, ErrFormat)
}

// NeedsPAN reports whether the format binds the PIN to the PAN.
func (f Format) NeedsPAN() bool { return f == Format0 || f == Format3 || f == Format4 }

// BlockSize is 8 bytes for formats 0/1/3 and 16 for format 4.
func (f Format) BlockSize() int {
	if f == Format4 {
		return 16
	}
	return 8
}

// CheckPIN validates PIN length and digits.
func CheckPIN(pin string) error {
	if len(pin) < MinPINLength || len(pin) > MaxPINLength {
		return ErrPINLength
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return ErrPINDigits
		}
	}
	return nil
}

// CheckPAN validates a PAN's length and digits.
func CheckPAN(pan string) error {
	if len(pan) < MinPANLength || len(pan) > MaxPANLength {
		return ErrPAN
	}
	for i := 0; i < len(pan); i++ {
		if pan[i] < '0' || pan[i] > '9' {
			return ErrPAN
		}
	}
	return nil
}

// panField builds the 8-byte PAN field of formats 0 and 3: four zero
// nibbles and the 12 rightmost PAN digits excluding the check digit.
func panField(pan string) ([8]byte, error) {
	var f [8]byte
	if err := CheckPAN(pan); err != nil {
		return f, err
	}
	digits := pan[:len(pan)-1]
	if len(digits) > 12 {
		digits = digits[len(digits)-12:]
	}
	// Right-align the digits in nibbles 4..15.
	var nib [16]byte
	off := 16 - len(digits)
	for i := 0; i < len(digits); i++ {
		nib[off+i] = digits[i] - '0'
	}
	for i := 0; i < 8; i++ {
		f[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	return f, nil
}

// pinField writes control nibble, length and digits into nibbles; the rest
// is filled by fill(i) for nibble index i.
func pinField(control byte, pin string, nibbles int, fill func(i int) byte) []byte {
	nib := make([]byte, nibbles)
	nib[0] = control
	nib[1] = byte(len(pin))
	for i := 0; i < len(pin); i++ {
		nib[2+i] = pin[i] - '0'
	}
	for i := 2 + len(pin); i < nibbles; i++ {
		nib[i] = fill(i)
	}
	out := make([]byte, nibbles/2)
	for i := range out {
		out[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	clear(nib)
	return out
}

// fillNibbles turns a fill hex string (or random bytes when fill is empty)
// into nibbles restricted to the range [lo, hi].
func fillNibbles(fill string, n int, lo, hi byte) ([]byte, error) {
	out := make([]byte, n)
	if fill == "" {
		var r [32]byte
		if _, err := rand.Read(r[:n]); err != nil {
			return nil, err
		}
		span := int(hi-lo) + 1
		for i := range out {
			out[i] = lo + byte(int(r[i])%span)
		}
		return out, nil
	}
	for i := 0; i < len(fill); i++ {
		v, ok := hexVal(fill[i])
		if !ok || v < lo || v > hi {
			return nil, fmt.Errorf("%w: nibble %q outside %X–%X", ErrFill, fill[i], lo, hi)
		}
	}
	// A fill may be given for the whole remainder or longer; use its head.
	if len(fill) < n {
		return nil, fmt.Errorf("%w: need %d hex digits, got %d", ErrFill, n, len(fill))
	}
	for i := range out {
		out[i], _ = hexVal(fill[i])
	}
	return out, nil
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Encode returns the clear 8-byte PIN block for formats 0, 1 and 3. fill
// is the hex fill for formats 1 (any hex) and 3 (A–F), as many digits as
// there are fill nibbles (14 − PIN length); empty means random. Format 0
// ignores fill (its fill is F). Format 4 has no clear block: use
// EncryptFormat4.
func Encode(f Format, pin, pan, fill string) ([]byte, error) {
	if err := CheckPIN(pin); err != nil {
		return nil, err
	}
	nFill := 14 - len(pin)
	switch f {
	case Format0:
		pf, err := panField(pan)
		if err != nil {
			return nil, err
		}
		b := pinField(0x0, pin, 16, func(int) byte { return 0xF })
		subtle.XORBytes(b, b, pf[:])
		return b, nil
	case Format1:
		fn, err := fillNibbles(fill, nFill, 0x0, 0xF)
		if err != nil {
			return nil, err
		}
		return pinField(0x1, pin, 16, func(i int) byte { return fn[i-2-len(pin)] }), nil
	case Format3:
		pf, err := panField(pan)
		if err != nil {
			return nil, err
		}
		fn, err := fillNibbles(fill, nFill, 0xA, 0xF)
		if err != nil {
			return nil, err
		}
		b := pinField(0x3, pin, 16, func(i int) byte { return fn[i-2-len(pin)] })
		subtle.XORBytes(b, b, pf[:])
		return b, nil
	case Format4:
		return nil, fmt.Errorf("format 4 has no clear block without an AES key: %w", ErrFormat)
	}
	return nil, fmt.Errorf("format %d: %w", f, ErrFormat)
}

// Decode extracts the PIN from a clear 8-byte block of format 0, 1 or 3,
// checking every control, length and fill nibble.
func Decode(f Format, block []byte, pan string) (string, error) {
	if len(block) != 8 || f == Format4 {
		return "", ErrFormat
	}
	b := make([]byte, 8)
	copy(b, block)
	defer clear(b)
	if f.NeedsPAN() {
		pf, err := panField(pan)
		if err != nil {
			return "", err
		}
		subtle.XORBytes(b, b, pf[:])
	}
	var control, fillLo, fillHi byte
	switch f {
	case Format0:
		control, fillLo, fillHi = 0x0, 0xF, 0xF
	case Format1:
		control, fillLo, fillHi = 0x1, 0x0, 0xF
	case Format3:
		control, fillLo, fillHi = 0x3, 0xA, 0xF
	default:
		return "", ErrFormat
	}
	return parsePINField(b, 16, control, fillLo, fillHi)
}

func parsePINField(b []byte, nibbles int, control, fillLo, fillHi byte) (string, error) {
	nib := func(i int) byte {
		if i%2 == 0 {
			return b[i/2] >> 4
		}
		return b[i/2] & 0x0F
	}
	if nib(0) != control {
		return "", ErrFormat
	}
	n := int(nib(1))
	if n < MinPINLength || n > MaxPINLength {
		return "", ErrFormat
	}
	pin := make([]byte, n)
	for i := 0; i < n; i++ {
		d := nib(2 + i)
		if d > 9 {
			return "", ErrFormat
		}
		pin[i] = '0' + d
	}
	for i := 2 + n; i < nibbles; i++ {
		if d := nib(i); d < fillLo || d > fillHi {
			return "", ErrFormat
		}
	}
	return string(pin), nil
}

// format4PANField builds the 16-byte PAN field of ISO 9564-1 format 4:
// nibble M = PAN length − 12 (0 when shorter), the PAN left-justified
// (left-padded with zeros to 12 digits when shorter), then zero nibbles.
func format4PANField(pan string) ([16]byte, error) {
	var f [16]byte
	if err := CheckPAN(pan); err != nil {
		return f, err
	}
	digits := pan
	m := 0
	if len(digits) < 12 {
		digits = "000000000000"[:12-len(digits)] + digits
	} else {
		m = len(digits) - 12
	}
	var nib [32]byte
	nib[0] = byte(m)
	for i := 0; i < len(digits); i++ {
		nib[1+i] = digits[i] - '0'
	}
	for i := 0; i < 16; i++ {
		f[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	return f, nil
}

// Format4PINField returns the 16-byte plaintext PIN field of format 4:
// control 4, length, digits, fill nibbles A up to nibble 15, then 8 random
// bytes (or the 16 hex digits of fill when given, for reproducible tests).
func Format4PINField(pin, fill string) ([]byte, error) {
	if err := CheckPIN(pin); err != nil {
		return nil, err
	}
	b := pinField(0x4, pin, 16, func(int) byte { return 0xA })
	out := make([]byte, 16)
	copy(out, b)
	clear(b)
	fn, err := fillNibbles(fill, 16, 0x0, 0xF)
	if err != nil {
		return nil, err
	}
	for i := 0; i < 8; i++ {
		out[8+i] = fn[2*i]<<4 | fn[2*i+1]
	}
	return out, nil
}

// EncryptFormat4 enciphers a format 4 PIN block (ISO 9564-1 §9.4.2):
// C = E(K, E(K, PIN field) XOR PAN field).
func EncryptFormat4(aesBlock cipher.Block, pin, pan, fill string) ([]byte, error) {
	if aesBlock.BlockSize() != 16 {
		return nil, errors.New("format 4 needs a 16-byte block cipher (AES or SM4)")
	}
	pf, err := format4PANField(pan)
	if err != nil {
		return nil, err
	}
	field, err := Format4PINField(pin, fill)
	if err != nil {
		return nil, err
	}
	aesBlock.Encrypt(field, field)
	subtle.XORBytes(field, field, pf[:])
	aesBlock.Encrypt(field, field)
	return field, nil
}

// DecryptFormat4 reverses EncryptFormat4 and returns the PIN.
func DecryptFormat4(aesBlock cipher.Block, block []byte, pan string) (string, error) {
	if aesBlock.BlockSize() != 16 || len(block) != 16 {
		return "", ErrFormat
	}
	pf, err := format4PANField(pan)
	if err != nil {
		return "", err
	}
	b := make([]byte, 16)
	defer clear(b)
	aesBlock.Decrypt(b, block)
	subtle.XORBytes(b, b, pf[:])
	aesBlock.Decrypt(b, b)
	return parsePINField(b[:8], 16, 0x4, 0xA, 0xA)
}

// Encrypt builds and encrypts a PIN block of any format under key cipher
// b (DES-family for 0/1/3, AES for 4).
func Encrypt(b cipher.Block, f Format, pin, pan, fill string) ([]byte, error) {
	if f == Format4 {
		return EncryptFormat4(b, pin, pan, fill)
	}
	if b.BlockSize() != 8 {
		return nil, fmt.Errorf("format %d needs an 8-byte block cipher (DES/TDES)", f)
	}
	clearBlock, err := Encode(f, pin, pan, fill)
	if err != nil {
		return nil, err
	}
	b.Encrypt(clearBlock, clearBlock)
	return clearBlock, nil
}

// Decrypt decrypts an encrypted PIN block of any format and returns the PIN.
func Decrypt(b cipher.Block, f Format, block []byte, pan string) (string, error) {
	if f == Format4 {
		return DecryptFormat4(b, block, pan)
	}
	if b.BlockSize() != 8 || len(block) != 8 {
		return "", ErrFormat
	}
	clearBlock := make([]byte, 8)
	defer clear(clearBlock)
	b.Decrypt(clearBlock, block)
	return Decode(f, clearBlock, pan)
}

// FormatFromSecurityControl maps field 53 (security control, docs/pos-dialect.md#pin-blocks)
// to a PIN block format: digit 1 '2' is format 0 (with PAN), '1' format 1.
func FormatFromSecurityControl(field53 string) (Format, error) {
	if len(field53) == 0 {
		return 0, fmt.Errorf("empty security control: %w", ErrFormat)
	}
	switch field53[0] {
	case '2':
		return Format0, nil
	case '1':
		return Format1, nil
	}
	return 0, fmt.Errorf("security control digit 1 %q: %w", field53[0], ErrFormat)
}

// DecodeFormat4PINField extracts the PIN from a clear 16-byte format 4
// PIN field (the plaintext before the AES steps).
func DecodeFormat4PINField(field []byte) (string, error) {
	if len(field) != 16 {
		return "", ErrFormat
	}
	return parsePINField(field[:8], 16, 0x4, 0xA, 0xA)
}
