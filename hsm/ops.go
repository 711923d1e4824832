package hsm

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"

	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/hsm/terminal"
)

// PINFormat re-exports the ISO 9564-1 PIN block format.
type PINFormat = pinblock.Format

// PIN block formats.
const (
	PINFormat0 = pinblock.Format0
	PINFormat1 = pinblock.Format1
	PINFormat3 = pinblock.Format3
	PINFormat4 = pinblock.Format4
)

// PINFormatFromField53 maps POS field 53 to the PIN block format
// (docs/pos-dialect.md#pin-blocks): digit 1 '2' format 0, '1' format 1;
// with digit 2 '4' (an SM4 PIK) the 16-byte block is ISO 9564-1 format 4
// computed with SM4, PAN-bound (digit 1 '2' only, else
// ErrSecurityControl). Whether digit 2 matches the PIK is checked where
// the PIK is used (VerifyTerminalPINBlock; a translation from the wrong
// algorithm does not decode).
func PINFormatFromField53(field53 string) (PINFormat, error) {
	if len(field53) >= 2 && field53[1] == '4' {
		if field53[0] != '2' {
			return 0, fmt.Errorf("field 53 %q: SM4 PIN blocks are PAN-bound (digit 1 '2'): %w", field53[:2], ErrSecurityControl)
		}
		return PINFormat4, nil
	}
	return pinblock.FormatFromSecurityControl(field53)
}

// ErrPINBlock reports a PIN block that does not decode under the
// terminal's PIK (bad padding, PIN length, PAN mismatch): for the
// cardholder, a wrong PIN. Any other error of a PIN verification is the
// HSM's or the terminal's set-up, not the cardholder's.
var ErrPINBlock = errors.New("PIN block does not decode")

// ErrNotSignedOn reports a terminal with no working keys yet.
var ErrNotSignedOn = errors.New("terminal has no working keys (not signed on)")

// terminalMAK returns the cached cipher of the terminal's current MAK: the
// per-message path is a read lock and a map lookup.
func (h *HSM) terminalMAK(terminalID string) (*loadedKey, error) {
	h.mu.RLock()
	k := h.macs[terminalID]
	h.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	if err := checkTerminalID(terminalID); err != nil {
		return nil, err
	}
	k, gen, err := h.loadKey(TerminalKeyLabel(terminalID, TAK))
	if errors.Is(err, ErrKeyNotFound) {
		return nil, fmt.Errorf("terminal %s: %w", terminalID, ErrNotSignedOn)
	}
	if err != nil {
		return nil, err
	}
	if k.usage&(UsageMACGenerate|UsageMACVerify) == 0 {
		return nil, fmt.Errorf("terminal %s MAK: %w", terminalID, ErrKeyUsage)
	}
	h.mu.Lock()
	if h.gen == gen {
		h.macs[terminalID] = k
	}
	h.mu.Unlock()
	return k, nil
}

// GenerateTerminalMAC computes the field 64 MAC (docs/pos-dialect.md#mac-field-64: the UnionPay
// POS "ECB" MAC, on 8-byte blocks for a DES MAK, 16-byte blocks for SM4)
// of data with the terminal's current MAK: 8 ASCII hex characters.
func (h *HSM) GenerateTerminalMAC(terminalID string, data []byte) (out []byte, err error) {
	k, err := h.terminalMAK(terminalID)
	if err == nil {
		var m [8]byte
		if m, err = mac.CUPECB(k.block, data); err == nil {
			out = m[:]
		}
	}
	h.observe(opMACGenerate, err, true)
	return out, err
}

// VerifyTerminalMAC checks a field 64 MAC against data with the terminal's
// current MAK, in constant time. It returns (false, nil) for a wrong MAC
// (response code A0) and an error when it cannot decide (no working keys,
// bad input).
func (h *HSM) VerifyTerminalMAC(terminalID string, data, got []byte) (ok bool, err error) {
	defer func() { h.observe(opMACVerify, err, ok) }()
	k, err := h.terminalMAK(terminalID)
	if err != nil {
		return false, err
	}
	if len(got) != 8 {
		return false, nil
	}
	want, err := mac.CUPECB(k.block, data)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(want[:], got) == 1, nil
}

// campusPVVVersion is mixed into every campus PIN verification value so
// that the construction can change without old values verifying by chance.
const campusPVVVersion = "CSPVV1"

// PINVerificationValue computes the value the card ledger stores for a
// campus card's PIN: AES-CMAC, under the campus PVK (an AES-256 key that
// never leaves the HSM), of a length-prefixed encoding of the PAN and the
// PIN, written as 32 uppercase hex digits.
//
// Why it is safe to store: without the PVK the value cannot be computed, so
// a stolen ledger does not allow testing the (only 10^6) six-digit PINs
// offline; CMAC is a PRF, so the value reveals nothing of the PIN; binding
// the PAN makes equal PINs on different cards give unrelated values. The
// only way to test a PIN is through the HSM, where the ledger's try counter
// limits guesses.
func (h *HSM) PINVerificationValue(pan, pin string) (pvv string, err error) {
	defer func() { h.observe(opPVVGenerate, err, true) }()
	v, err := h.campusPVV(pan, pin)
	if err != nil {
		return "", err
	}
	return hexUpper(v), nil
}

func (h *HSM) campusPVV(pan, pin string) ([]byte, error) {
	if err := pinblock.CheckPIN(pin); err != nil {
		return nil, err
	}
	if err := pinblock.CheckPAN(pan); err != nil {
		return nil, err
	}
	k, err := h.key(h.opts.CampusPVKLabel, UsagePINVerify)
	if err != nil {
		return nil, fmt.Errorf("campus PVK: %w", err)
	}
	if k.alg != AES {
		return nil, fmt.Errorf("campus PVK %s is %s, want AES: %w", k.label, k.alg, ErrUnsupported)
	}
	msg := make([]byte, 0, len(campusPVVVersion)+2+len(pan)+len(pin))
	msg = append(msg, campusPVVVersion...)
	msg = append(msg, byte(len(pan)))
	msg = append(msg, pan...)
	msg = append(msg, byte(len(pin)))
	msg = append(msg, pin...)
	defer wipe(msg)
	return mac.CMAC(k.block, msg)
}

// EnsureCampusPVK creates the campus PVK (AES-256) if it does not exist.
func (h *HSM) EnsureCampusPVK() (kcv []byte, created bool, err error) {
	return h.EnsureKey(h.opts.CampusPVKLabel, PVK, AES, 32)
}

// VerifyTerminalPIN decrypts an encrypted PIN block from a terminal under
// its current PIK, recomputes the campus PIN verification value and
// compares it with storedPVV in constant time. The clear PIN never leaves
// the HSM. It returns (false, nil) for a wrong PIN; a block that does not
// decode as format (a wrong key, tampering or a terminal bug) is an error
// wrapping pinblock.ErrFormat. Counting tries is the ledger's job.
func (h *HSM) VerifyTerminalPIN(terminalID string, block []byte, format PINFormat, pan, storedPVV string) (ok bool, err error) {
	defer func() { h.observe(opPINVerify, err, ok) }()
	k, err := h.terminalPIK(terminalID)
	if err != nil {
		return false, err
	}
	if format != PINFormat0 && format != PINFormat1 && format != PINFormat3 {
		return false, fmt.Errorf("terminal PIN block format %d: %w", format, ErrUnsupported)
	}
	if k.block.BlockSize() != 8 {
		return false, fmt.Errorf("terminal %s: PIN blocks under an %s PIK: %w", terminalID, k.alg, ErrUnsupported)
	}
	return h.verifyPIN(terminalID, k, block, format, pan, storedPVV)
}

// ErrSecurityControl reports a field 53 that does not describe the PIN
// block: digit 2 names another algorithm than the terminal's PIK ('6'
// DES/TDES, '4' SM4), or digit 1 a format the algorithm does not take.
// The POS answer is 30, and the cardholder's tries are not touched.
var ErrSecurityControl = errors.New("security control (field 53) does not match the PIN key")

// VerifyTerminalPINBlock verifies a POS PIN block as field 53 describes it
// (docs/pos-dialect.md#pin-blocks): digit 2 '6' — an 8-byte ISO 9564-1
// format 0 ('2' in digit 1) or format 1 ('1') block under a DES/TDES PIK;
// digit 2 '4' — a 16-byte block under an SM4 PIK, ISO 9564-1 format 4
// built with SM4 (digit 1 '2'). Digit 2 is checked against the PIK's
// algorithm: a mismatch, or a block of the wrong length, is
// ErrSecurityControl. Otherwise as VerifyTerminalPIN.
func (h *HSM) VerifyTerminalPINBlock(terminalID string, block []byte, field53, pan, storedPVV string) (ok bool, err error) {
	defer func() { h.observe(opPINVerify, err, ok) }()
	k, err := h.terminalPIK(terminalID)
	if err != nil {
		return false, err
	}
	if len(field53) < 2 {
		return false, fmt.Errorf("field 53 %q: %w", field53, ErrSecurityControl)
	}
	var format PINFormat
	switch field53[1] {
	case '6':
		if k.block.BlockSize() != 8 || len(block) != 8 {
			return false, fmt.Errorf("terminal %s: digit 2 '6' with a %s PIK and a %d-byte block: %w", terminalID, k.alg, len(block), ErrSecurityControl)
		}
		if format, err = pinblock.FormatFromSecurityControl(field53); err != nil {
			return false, fmt.Errorf("%w: %w", ErrSecurityControl, err)
		}
	case '4':
		if k.alg != SM4 || len(block) != 16 || field53[0] != '2' {
			return false, fmt.Errorf("terminal %s: digit 2 '4' with a %s PIK, digit 1 %q and a %d-byte block: %w", terminalID, k.alg, field53[0], len(block), ErrSecurityControl)
		}
		format = PINFormat4
	default:
		return false, fmt.Errorf("field 53 digit 2 %q: %w", field53[1], ErrSecurityControl)
	}
	return h.verifyPIN(terminalID, k, block, format, pan, storedPVV)
}

// terminalPIK returns the terminal's current PIK. As for the MAK, the
// per-message path is a read lock and a map lookup by terminal id: no
// label is built. Its usage is checked on every call, as key does.
func (h *HSM) terminalPIK(terminalID string) (*loadedKey, error) {
	h.mu.RLock()
	k, gen := h.piks[terminalID], h.gen
	h.mu.RUnlock()
	if k == nil {
		if err := checkTerminalID(terminalID); err != nil {
			return nil, err
		}
		var err error
		k, err = h.key(TerminalKeyLabel(terminalID, TPK), 0)
		if errors.Is(err, ErrKeyNotFound) {
			return nil, fmt.Errorf("terminal %s: %w", terminalID, ErrNotSignedOn)
		}
		if err != nil {
			return nil, err
		}
		// Cached only if no key was written since gen was read: the
		// key h.key returned is then the current one.
		h.mu.Lock()
		if h.gen == gen {
			h.piks[terminalID] = k
		}
		h.mu.Unlock()
	}
	if k.usage&UsagePINDecrypt != UsagePINDecrypt {
		return nil, fmt.Errorf("%s key %s: %w", k.typ, k.label, ErrKeyUsage)
	}
	return k, nil
}

// verifyPIN decrypts block under k and compares the PIN's campus PVV.
func (h *HSM) verifyPIN(terminalID string, k *loadedKey, block []byte, format PINFormat, pan, storedPVV string) (bool, error) {
	pin, err := pinblock.Decrypt(k.block, format, block, pan)
	if err != nil {
		h.log.Debug("PIN block did not decode", zap.String("terminal", terminalID), zap.String("pan", cardno.Mask(pan)))
		return false, fmt.Errorf("terminal %s: %w: %w", terminalID, ErrPINBlock, err)
	}
	v, err := h.campusPVV(pan, pin)
	if err != nil {
		return false, err
	}
	want := []byte(storedPVV)
	got := []byte(hexUpper(v))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// translationTarget is the destination of a PIN translation: a ZPK that may
// encrypt PINs, for a format change the HSM supports.
func (h *HSM) translationTarget(toLabel string, fromFormat, toFormat PINFormat) (*loadedKey, error) {
	to, err := h.key(toLabel, UsagePINEncrypt)
	if err != nil {
		return nil, err
	}
	if to.typ != ZPK {
		return nil, fmt.Errorf("translate to %s %s: destination must be a ZPK: %w", to.typ, toLabel, ErrKeyUsage)
	}
	if err := checkTranslation(fromFormat, toFormat); err != nil {
		return nil, err
	}
	return to, nil
}

// TranslatePIN re-encrypts a PIN block from the PIN key at fromLabel (a
// TPK or ZPK) to the ZPK at toLabel, changing format if asked, without the
// clear PIN leaving the HSM. Translation from a PAN-bound format (0, 3, 4)
// to format 1 is refused (PCI PIN Security requirement 3-3): it would
// unbind the PIN from the card.
func (h *HSM) TranslatePIN(fromLabel string, fromFormat PINFormat, toLabel string, toFormat PINFormat, block []byte, pan string) (out []byte, err error) {
	defer func() { h.observe(opPINTranslate, err, true) }()
	from, err := h.key(fromLabel, UsagePINDecrypt)
	if err != nil {
		return nil, err
	}
	to, err := h.translationTarget(toLabel, fromFormat, toFormat)
	if err != nil {
		return nil, err
	}
	pin, err := pinblock.Decrypt(from.block, fromFormat, block, pan)
	if err != nil {
		return nil, fmt.Errorf("translate PIN from %s: %w", fromLabel, err)
	}
	return pinblock.Encrypt(to.block, toFormat, pin, pan, "")
}

// TranslateTerminalPIN translates a PIN block from the terminal's current
// PIK to the ZPK at toLabel (PIN translation TPK → ZPK for gateways).
func (h *HSM) TranslateTerminalPIN(terminalID string, fromFormat PINFormat, toLabel string, toFormat PINFormat, block []byte, pan string) ([]byte, error) {
	if err := checkTerminalID(terminalID); err != nil {
		return nil, err
	}
	return h.TranslatePIN(TerminalKeyLabel(terminalID, TPK), fromFormat, toLabel, toFormat, block, pan)
}

func checkTranslation(from, to PINFormat) error {
	if from.NeedsPAN() && to == PINFormat1 {
		return fmt.Errorf("PIN translation from format %d to format 1: %w", from, ErrUnsupported)
	}
	return nil
}

// VerifySignOnProof checks the proof of an 0800 sign-on
// (docs/pos-dialect.md#sign-on-proof): proof must be the 8-byte block
// BCD(stamp) — stamp = fields 13 ‖ 12 ‖ 11, MMDD hhmmss STAN — encrypted
// under the terminal's TMK (SM4 TMK: the first 8 bytes of SM4-ECB of the
// block zero-padded to 16). The TMK never leaves the HSM. It returns
// (false, nil) for a wrong or missing proof and an error when it cannot
// decide (no TMK, a stamp that is not 16 digits).
func (h *HSM) VerifySignOnProof(terminalID, stamp string, proof []byte) (ok bool, err error) {
	defer func() { h.observe(opSignOnProofVerify, err, ok) }()
	if err := checkTerminalID(terminalID); err != nil {
		return false, err
	}
	tmk, err := h.key(TerminalKeyLabel(terminalID, TMK), UsageWrapTerminalKeys)
	if err != nil {
		return false, fmt.Errorf("sign-on proof of terminal %s: %w", terminalID, err)
	}
	want, err := terminal.SignOnProof(tmk.block, stamp)
	if err != nil {
		return false, fmt.Errorf("sign-on proof of terminal %s: %w", terminalID, err)
	}
	if len(proof) != len(want) {
		return false, nil
	}
	return subtle.ConstantTimeCompare(want, proof) == 1, nil
}
