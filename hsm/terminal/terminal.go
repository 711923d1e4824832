// Package terminal is the POS side of the key exchange: what a terminal
// (or the posim simulator, or a test) does with its own clear TMK. It
// decrypts the working keys of a sign-on response (field 62), checks their
// check values, computes the docs/pos-dialect.md#mac-field-64 MAC and builds encrypted PIN
// blocks. It does not use the switch's key store: a POS holds its keys.
package terminal

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
)

// ErrCheckValue reports a working key whose check value in field 62 does
// not match the decrypted key: the terminal must not use it.
var ErrCheckValue = errors.New("working key check value mismatch")

// ErrField62 reports a field 62 of the wrong length for the mode.
var ErrField62 = errors.New("field 62 length does not match the sign-on mode")

// WorkingKeys are a terminal's current PIK, MAK and optional TDK, ready as
// cipher objects. Methods are safe for concurrent use.
type WorkingKeys struct {
	Mode string
	pik  cipher.Block
	mak  cipher.Block
	tdk  cipher.Block // nil for modes 001 and 003
}

type slot struct {
	encLen, gap, cvLen int
}

// layout mirrors the field 62 layouts of docs/hsm.md#sign-on (and 24 bytes for
// mode 001: PIK(8) CV(4) MAK(8) CV(4)).
func layout(mode string) (alg Algorithm, pik, mak, tdk slot, total int, err error) {
	switch mode {
	case "001":
		return blockcipher.DES, slot{8, 0, 4}, slot{8, 0, 4}, slot{}, 24, nil
	case "003":
		return blockcipher.TDES, slot{16, 0, 4}, slot{8, 8, 4}, slot{}, 40, nil
	case "004":
		return blockcipher.TDES, slot{16, 0, 4}, slot{8, 8, 4}, slot{16, 0, 4}, 60, nil
	case "006":
		return blockcipher.SM4, slot{16, 0, 4}, slot{16, 0, 4}, slot{16, 0, 4}, 60, nil
	}
	return 0, slot{}, slot{}, slot{}, 0, fmt.Errorf("sign-on mode %q (want 001, 003, 004 or 006)", mode)
}

// Algorithm is the block cipher family (re-exported for callers).
type Algorithm = blockcipher.Algorithm

// ParseField62 decrypts the working keys of a sign-on response under the
// terminal's clear TMK (TDES 16/24 bytes for 001/003/004 — or DES 8 bytes
// for 001 — and SM4 16 bytes for 006) and checks each check value.
func ParseField62(tmk []byte, mode string, field62 []byte) (*WorkingKeys, error) {
	alg, pikS, makS, tdkS, total, err := layout(mode)
	if err != nil {
		return nil, err
	}
	if len(field62) != total {
		return nil, fmt.Errorf("mode %s field 62 of %d bytes, want %d: %w", mode, len(field62), total, ErrField62)
	}
	tmkAlg := blockcipher.TDES
	switch {
	case mode == "006":
		tmkAlg = blockcipher.SM4
	case len(tmk) == 8:
		tmkAlg = blockcipher.DES
	}
	tmkBlock, err := blockcipher.New(tmkAlg, tmk)
	if err != nil {
		return nil, fmt.Errorf("TMK: %w", err)
	}
	w := &WorkingKeys{Mode: mode}
	rest := field62
	take := func(name string, s slot) (cipher.Block, error) {
		enc := rest[:s.encLen]
		cv := rest[s.encLen+s.gap : s.encLen+s.gap+s.cvLen]
		rest = rest[s.encLen+s.gap+s.cvLen:]
		clear, err := blockcipher.DecryptECB(tmkBlock, enc)
		if err != nil {
			return nil, err
		}
		defer clear2(clear)
		kAlg := alg
		if alg == blockcipher.TDES && len(clear) == 8 {
			kAlg = blockcipher.DES
		}
		cb, err := blockcipher.CheckBlock(kAlg, clear)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if subtle.ConstantTimeCompare(cb[:s.cvLen], cv) != 1 {
			return nil, fmt.Errorf("%s: %w", name, ErrCheckValue)
		}
		return blockcipher.New(kAlg, clear)
	}
	if w.pik, err = take("PIK", pikS); err != nil {
		return nil, err
	}
	if w.mak, err = take("MAK", makS); err != nil {
		return nil, err
	}
	if tdkS.encLen > 0 {
		if w.tdk, err = take("TDK", tdkS); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func clear2(b []byte) { clear(b) }

// MAC computes the field 64 MAC (docs/pos-dialect.md#mac-field-64) of the packed message from
// the MTI up to, not including, field 64.
func (w *WorkingKeys) MAC(data []byte) ([8]byte, error) {
	return mac.CUPECB(w.mak, data)
}

// VerifyMAC checks a field 64 MAC from the switch in constant time.
func (w *WorkingKeys) VerifyMAC(data, got []byte) (bool, error) {
	m, err := mac.CUPECB(w.mak, data)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(m[:], got) == 1, nil
}

// EncryptPIN builds an ISO 9564-1 PIN block of format 0 (pan required) or
// 1 (random fill) and encrypts it under the PIK, as the PIN pad would; the
// matching field 53 starts with "2" (format 0) or "1" (format 1).
func (w *WorkingKeys) EncryptPIN(format pinblock.Format, pin, pan string) ([]byte, error) {
	if format != pinblock.Format0 && format != pinblock.Format1 {
		return nil, fmt.Errorf("terminal PIN block format %d: want 0 or 1", format)
	}
	if w.pik.BlockSize() != 8 {
		return nil, errors.New("PIN blocks under an SM4 PIK are not supported")
	}
	return pinblock.Encrypt(w.pik, format, pin, pan, "")
}

// SecurityControl returns field 53 for a PIN block format: digit 1 is the
// format ('2' format 0, '1' format 1), digit 2 '6' a double-length key.
func SecurityControl(format pinblock.Format) (string, error) {
	switch format {
	case pinblock.Format0:
		return "2600000000000000", nil
	case pinblock.Format1:
		return "1600000000000000", nil
	}
	return "", fmt.Errorf("PIN block format %d has no field 53 code", format)
}

// ErrStamp reports a sign-on stamp that is not 16 digits.
var ErrStamp = errors.New("sign-on stamp must be 16 digits: MMDD hhmmss STAN")

// ProofLen is the length of the sign-on proof in field 62 of an 0800.
const ProofLen = 8

// SignOnProof computes the proof a terminal puts in field 62 of its 0800
// (docs/pos-dialect.md#sign-on-proof): the 8-byte block BCD(stamp), stamp
// being fields 13 ‖ 12 ‖ 11 (MMDD hhmmss STAN, 16 digits), encrypted under
// the TMK — ECB with a DES or TDES TMK; with an SM4 TMK, the first 8 bytes
// of SM4-ECB of the block padded with 8 zero bytes.
func SignOnProof(tmk cipher.Block, stamp string) ([]byte, error) {
	if len(stamp) != 16 {
		return nil, ErrStamp
	}
	block := make([]byte, tmk.BlockSize())
	for i := 0; i < 16; i++ {
		c := stamp[i]
		if c < '0' || c > '9' {
			return nil, ErrStamp
		}
		block[i/2] |= (c - '0') << (4 * (1 - i%2))
	}
	if len(block) != 8 && len(block) != 16 {
		return nil, fmt.Errorf("sign-on proof: %d-byte block cipher", len(block))
	}
	tmk.Encrypt(block, block)
	return block[:ProofLen], nil
}

// TMKCipher returns the cipher of a clear TMK for a sign-on mode, as
// ParseField62 uses it: SM4 for 006, DES for an 8-byte key, else TDES.
func TMKCipher(tmk []byte, mode string) (cipher.Block, error) {
	alg := blockcipher.TDES
	switch {
	case mode == "006":
		alg = blockcipher.SM4
	case len(tmk) == 8:
		alg = blockcipher.DES
	}
	return blockcipher.New(alg, tmk)
}

// SecurityControlSM4 is field 53 of a PIN block under an SM4 PIK: digit 1
// '2' (PAN-bound), digit 2 '4' (SM4).
const SecurityControlSM4 = "2400000000000000"

// PINBlock builds the encrypted PIN block the terminal sends and its
// field 53 (docs/pos-dialect.md#pin-blocks). Under a DES/TDES PIK: an ISO
// 9564-1 format 0 (or 1) block of 8 bytes for field 52, field 53 "26…"
// ("16…"). Under an SM4 PIK: a 16-byte block built as ISO 9564-1 format 4
// with SM4 as the block cipher (always PAN-bound; format must be 0), for
// field 62 tag "P4", field 53 SecurityControlSM4.
func (w *WorkingKeys) PINBlock(format pinblock.Format, pin, pan string) (block []byte, field53 string, err error) {
	if w.pik.BlockSize() == 16 {
		if format != pinblock.Format0 {
			return nil, "", fmt.Errorf("SM4 PIN blocks are PAN-bound: format %d not supported", format)
		}
		b, err := pinblock.EncryptFormat4(w.pik, pin, pan, "")
		return b, SecurityControlSM4, err
	}
	if block, err = w.EncryptPIN(format, pin, pan); err != nil {
		return nil, "", err
	}
	field53, err = SecurityControl(format)
	return block, field53, err
}

// SM4 reports whether the working keys are SM4 (sign-on mode 006).
func (w *WorkingKeys) SM4() bool { return w.pik.BlockSize() == 16 }
