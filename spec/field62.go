package spec

import (
	"bytes"
	"fmt"
)

// Field 62 of requests (docs/pos-dialect.md#field-62-in-requests). In an
// 0800 sign-on it is the terminal's 8-byte proof that it holds its TMK;
// in a financial request under SM4 keys it carries the 16-byte SM4 PIN
// block as the tag "P4" followed by the block (field 52 is absent then).
const (
	// SignOnProofLen is the length of the proof in an 0800's field 62.
	SignOnProofLen = 8
	// PINBlockTag opens a field 62 that carries an SM4 PIN block.
	PINBlockTag = "P4"
	// SM4PINBlockLen is the length of an SM4 PIN block.
	SM4PINBlockLen = 16
)

// SignOnStamp is what an 0800's proof encrypts: fields 13 ‖ 12 ‖ 11
// (MMDD, hhmmss, STAN), 16 digits. ok is false when one of them is
// missing or not all digits.
func (m *POSMessage) SignOnStamp() (stamp string, ok bool) {
	s := m.LocalDate + m.LocalTime + m.STAN
	if len(m.LocalDate) != 4 || len(m.LocalTime) != 6 || len(m.STAN) != 6 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// SM4PINBlock returns the SM4 PIN block of field 62 ("P4" + 16 bytes).
// present is false when field 62 does not start with the tag; a field
// that starts with it but is not exactly tag + 16 bytes is ErrFormat.
func SM4PINBlock(field62 []byte) (block []byte, present bool, err error) {
	if !bytes.HasPrefix(field62, []byte(PINBlockTag)) {
		return nil, false, nil
	}
	if len(field62) != len(PINBlockTag)+SM4PINBlockLen {
		return nil, true, fmt.Errorf("%w: field 62 tag %s with %d bytes, want %d", ErrFormat, PINBlockTag, len(field62)-len(PINBlockTag), SM4PINBlockLen)
	}
	return field62[len(PINBlockTag):], true, nil
}

// Field62SM4PINBlock builds field 62 for an SM4 PIN block.
func Field62SM4PINBlock(block []byte) ([]byte, error) {
	if len(block) != SM4PINBlockLen {
		return nil, fmt.Errorf("SM4 PIN block of %d bytes, want %d", len(block), SM4PINBlockLen)
	}
	return append([]byte(PINBlockTag), block...), nil
}
