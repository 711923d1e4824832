package hsm

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
)

// Zone keys are the keys shared with a gateway link (docs/gateway-links.md):
// the ZMK, loaded from custodians' components and kept under the LMK, and
// the working ZPK and ZAK exchanged under it. The previous ZAK is kept as
// well, so that MACs computed just before a key change still verify for
// the short window the caller allows.

const zoneLabelPrefix = "zone/"

// zonePrevZAK is the label suffix of the previous ZAK.
const zonePrevZAK = "ZAK.prev"

// ZoneKeyLen is the length of every zone key: double-length TDES.
const ZoneKeyLen = 16

// ZoneCheckLen is the length of a zone key's check value on the wire: 3
// bytes (6 hex), the first bytes of the key encrypting a zero block.
const ZoneCheckLen = 3

// ErrBadLinkName reports a link name unusable in key labels.
var ErrBadLinkName = errors.New("link name must be 1 to 32 characters of A-Z a-z 0-9 . _ -")

// CheckLinkName validates a gateway link (or peer institution) name.
func CheckLinkName(name string) error {
	if len(name) == 0 || len(name) > 32 {
		return ErrBadLinkName
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return ErrBadLinkName
		}
	}
	return nil
}

// ZoneKeyLabel is the label of a link's zone key of type t (ZMK, ZPK or
// ZAK), e.g. "zone/bank-a/ZPK".
func ZoneKeyLabel(link string, t KeyType) string {
	return zoneLabelPrefix + link + "/" + t.String()
}

func zonePrevLabel(link string) string { return zoneLabelPrefix + link + "/" + zonePrevZAK }

// ZoneKeys is the payload of a key exchange (0810 of network management
// code 101, field 48 tags PK, PC, AK, AC): the ZPK and ZAK each as 32 hex
// digits encrypted (ECB) under the link's ZMK, and their check values as 6
// hex digits.
type ZoneKeys struct {
	ZPK, ZPKCheck string
	ZAK, ZAKCheck string
}

// ImportZMK loads a link's ZMK (double-length TDES) as the XOR of its
// clear components (2–3 from key custodians; a single component is a clear
// key and is logged as such) and returns its check value.
func (h *HSM) ImportZMK(link string, components ...[]byte) ([]byte, error) {
	if err := CheckLinkName(link); err != nil {
		return nil, err
	}
	comps := make([]Component, len(components))
	for i, c := range components {
		if len(c) != ZoneKeyLen {
			return nil, fmt.Errorf("ZMK component %d of %d bytes, want %d: %w", i+1, len(c), ZoneKeyLen, blockcipher.ErrKeyLength)
		}
		comps[i] = Component{Clear: c}
	}
	if len(comps) == 1 {
		h.log.Warn("ZMK loaded from a single clear component", zap.String("link", link))
	}
	kcv, err := h.loadComponents(ZoneKeyLabel(link, ZMK), ZMK, TDES, 1, comps)
	h.observe(opKeyLoad, err, true)
	return kcv, err
}

// ImportZoneKeys unwraps a key exchange's ZPK and ZAK under the link's ZMK,
// checks both check values and stores both keys, keeping the ZAK they
// replace as the previous ZAK, in one synced batch. On any error nothing
// changes: the old keys stay in force. Both keys are double-length TDES.
func (h *HSM) ImportZoneKeys(link string, k ZoneKeys) error {
	return h.ImportZoneKeysAlg(link, k, TDES)
}

// ImportZoneKeysAlg is ImportZoneKeys for a link whose ZAK is of algorithm
// zakAlg: TDES (the X9.19 MAC) or SM4 (the SM4 MAC, see ZoneMAC). The ZAK
// is 16 bytes either way, wrapped ECB under the ZMK like the ZPK, and its
// check value is the first 3 bytes of the ZAK encrypting a zero block of
// its own cipher (8 bytes for TDES, 16 for SM4).
func (h *HSM) ImportZoneKeysAlg(link string, k ZoneKeys, zakAlg Algorithm) (err error) {
	defer func() { h.observe(opZoneKeyImport, err, true) }()
	if err := CheckLinkName(link); err != nil {
		return err
	}
	if err := checkZAKAlg(zakAlg); err != nil {
		return err
	}
	zmk, err := h.key(ZoneKeyLabel(link, ZMK), UsageWrapZoneKeys)
	if err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	var clears [2][]byte
	defer func() { wipe(clears[0]); wipe(clears[1]) }()
	for i, in := range [2][2]string{{k.ZPK, k.ZPKCheck}, {k.ZAK, k.ZAKCheck}} {
		name := [2]string{"ZPK", "ZAK"}[i]
		wrapped, err := hex.DecodeString(in[0])
		if err != nil || len(wrapped) != ZoneKeyLen {
			return fmt.Errorf("link %s key exchange: %s is not %d hex digits", link, name, 2*ZoneKeyLen)
		}
		check, err := hex.DecodeString(in[1])
		if err != nil || len(check) != ZoneCheckLen {
			return fmt.Errorf("link %s key exchange: %s check value is not %d hex digits", link, name, 2*ZoneCheckLen)
		}
		clear, err := blockcipher.DecryptECB(zmk.block, wrapped)
		if err != nil {
			return err
		}
		clears[i] = clear
		cb, err := blockcipher.CheckBlock([2]Algorithm{TDES, zakAlg}[i], clear)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(cb[:ZoneCheckLen], check) != 1 {
			return fmt.Errorf("link %s key exchange: %s: %w", link, name, ErrKCVMismatch)
		}
	}
	return h.storeZoneKeys(link, clears[0], clears[1], zakAlg)
}

// checkZAKAlg accepts the ZAK algorithms a zone MAC is built for.
func checkZAKAlg(a Algorithm) error {
	if a != TDES && a != SM4 {
		return fmt.Errorf("zone MAC key of %s: %w (want tdes or sm4)", a, ErrUnsupported)
	}
	return nil
}

// storeZoneKeys seals and stores a new ZPK (TDES) and ZAK (of zakAlg),
// with the current ZAK (if any, of its own algorithm) as the previous
// one, in one synced batch.
func (h *HSM) storeZoneKeys(link string, zpk, zak []byte, zakAlg Algorithm) error {
	h.write.Lock()
	defer h.write.Unlock()
	labels := []string{ZoneKeyLabel(link, ZPK), ZoneKeyLabel(link, ZAK)}
	var recs []record
	h.mu.RLock()
	for i, clear := range [][]byte{zpk, zak} {
		t := [2]KeyType{ZPK, ZAK}[i]
		r, err := h.seal(labels[i], t, [2]Algorithm{TDES, zakAlg}[i], DefaultUsage(t), clear)
		if err != nil {
			h.mu.RUnlock()
			return err
		}
		recs = append(recs, r)
	}
	h.mu.RUnlock()
	// withClear holds h.mu for reading while fn runs: seal directly.
	err := h.withClear(labels[1], UsageMACVerify, func(lk *loadedKey, old []byte) error {
		r, err := h.seal(zonePrevLabel(link), ZAK, lk.alg, UsageMACVerify, old)
		if err == nil {
			labels = append(labels, zonePrevLabel(link))
			recs = append(recs, r)
		}
		return err
	})
	if err != nil && !errors.Is(err, ErrKeyNotFound) {
		return fmt.Errorf("link %s: keep previous ZAK: %w", link, err)
	}
	if err := h.store(labels, recs); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	h.log.Info("zone keys changed", zap.String("link", link),
		zap.String("zpk_kcv", hexUpper(recs[0].KCV[:ZoneCheckLen])), zap.String("zak_kcv", hexUpper(recs[1].KCV[:ZoneCheckLen])))
	return nil
}

// IssueZoneKeys is the other side of a key exchange (a gateway answering
// 0800 101): it generates a new ZPK and ZAK for the link, stores them
// (keeping the previous ZAK) and returns them encrypted under the link's
// ZMK with their check values. Both keys are double-length TDES.
func (h *HSM) IssueZoneKeys(link string) (ZoneKeys, error) {
	return h.IssueZoneKeysAlg(link, TDES)
}

// IssueZoneKeysAlg is IssueZoneKeys with a ZAK of algorithm zakAlg (TDES
// or SM4; see ImportZoneKeysAlg).
func (h *HSM) IssueZoneKeysAlg(link string, zakAlg Algorithm) (out ZoneKeys, err error) {
	defer func() { h.observe(opZoneKeyIssue, err, true) }()
	if err := CheckLinkName(link); err != nil {
		return ZoneKeys{}, err
	}
	if err := checkZAKAlg(zakAlg); err != nil {
		return ZoneKeys{}, err
	}
	zmk, err := h.key(ZoneKeyLabel(link, ZMK), UsageWrapZoneKeys)
	if err != nil {
		return ZoneKeys{}, fmt.Errorf("link %s: %w", link, err)
	}
	var clears [2][]byte
	defer func() { wipe(clears[0]); wipe(clears[1]) }()
	var wrapped, checks [2]string
	for i := range clears {
		alg := [2]Algorithm{TDES, zakAlg}[i]
		if clears[i], err = h.randomKey(alg, ZoneKeyLen); err != nil {
			return ZoneKeys{}, err
		}
		w, err := blockcipher.EncryptECB(zmk.block, clears[i])
		if err != nil {
			return ZoneKeys{}, err
		}
		cb, err := blockcipher.CheckBlock(alg, clears[i])
		if err != nil {
			return ZoneKeys{}, err
		}
		wrapped[i], checks[i] = hexUpper(w), hexUpper(cb[:ZoneCheckLen])
	}
	if err := h.storeZoneKeys(link, clears[0], clears[1], zakAlg); err != nil {
		return ZoneKeys{}, err
	}
	return ZoneKeys{ZPK: wrapped[0], ZPKCheck: checks[0], ZAK: wrapped[1], ZAKCheck: checks[1]}, nil
}

// retailKey is the cached key schedule of a ZAK: for a TDES ZAK the two
// DES halves of the X9.19 MAC, for an SM4 ZAK the SM4 cipher (k2 nil).
type retailKey struct {
	alg    Algorithm
	k1, k2 cipher.Block
}

// zoneMACKey returns the cached key schedule of the ZAK at label, which
// must be of algorithm want.
func (h *HSM) zoneMACKey(label string, need Usage, want Algorithm) (*retailKey, error) {
	h.mu.RLock()
	k := h.retail[label]
	gen := h.gen
	h.mu.RUnlock()
	if k == nil {
		err := h.withClear(label, need, func(lk *loadedKey, clear []byte) error {
			if lk.typ != ZAK {
				return fmt.Errorf("%s %s is not a ZAK: %w", lk.typ, label, ErrKeyUsage)
			}
			switch {
			case lk.alg == TDES && len(clear) == ZoneKeyLen:
				k1, err := blockcipher.New(DES, clear[:8])
				if err != nil {
					return err
				}
				k2, err := blockcipher.New(DES, clear[8:])
				if err != nil {
					return err
				}
				k = &retailKey{alg: TDES, k1: k1, k2: k2}
			case lk.alg == SM4 && len(clear) == ZoneKeyLen:
				b, err := blockcipher.New(SM4, clear)
				if err != nil {
					return err
				}
				k = &retailKey{alg: SM4, k1: b}
			default:
				return fmt.Errorf("ZAK %s is %s of %d bytes, a zone MAC needs a 16-byte TDES or SM4 key: %w", label, lk.alg, len(clear), ErrUnsupported)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		if h.gen == gen {
			h.retail[label] = k
		}
		h.mu.Unlock()
	}
	if k.alg != want {
		return nil, fmt.Errorf("ZAK %s is a %s key, the link's MAC needs %s: %w", label, k.alg, want, ErrKeyUsage)
	}
	return k, nil
}

// zoneMAC computes the 8-byte gateway MAC of data under k
// (docs/gateway-dialect.md, MAC): with a TDES ZAK, ISO/IEC 9797-1 MAC
// algorithm 3 (ANSI X9.19), padding method 1; with an SM4 ZAK, ISO/IEC
// 9797-1 MAC algorithm 1 (GB/T 15852.1 MAC algorithm 1, CBC-MAC with a
// zero IV) over SM4, padding method 1, the leftmost 8 bytes of the last
// block.
func zoneMAC(k *retailKey, data []byte) ([]byte, error) {
	if k.alg == SM4 {
		out, err := mac.CBCMAC(k.k1, data, mac.Pad1)
		if err != nil {
			return nil, err
		}
		return out[:8], nil
	}
	return mac.RetailMAC(k.k1, k.k2, data, mac.Pad1)
}

// GenerateZoneMAC computes the 8-byte gateway MAC of data (ISO/IEC 9797-1
// algorithm 3, ANSI X9.19, padding method 1) with the link's current ZAK,
// which must be TDES.
func (h *HSM) GenerateZoneMAC(link string, data []byte) ([]byte, error) {
	return h.GenerateZoneMACAlg(link, TDES, data)
}

// GenerateZoneMACAlg computes the 8-byte gateway MAC of data with the
// link's current ZAK, which must be of algorithm alg: TDES gives the
// X9.19 MAC, SM4 the SM4 CBC-MAC (see zoneMAC). A ZAK of the other
// algorithm (a link whose MAC was just reconfigured and whose key
// exchange has not yet run) is an error wrapping ErrKeyUsage: nothing is
// MACed under the wrong algorithm.
func (h *HSM) GenerateZoneMACAlg(link string, alg Algorithm, data []byte) (out []byte, err error) {
	defer func() { h.observe(opZoneMACGenerate, err, true) }()
	if err := CheckLinkName(link); err != nil {
		return nil, err
	}
	k, err := h.zoneMACKey(ZoneKeyLabel(link, ZAK), UsageMACGenerate, alg)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", link, err)
	}
	return zoneMAC(k, data)
}

// VerifyZoneMAC checks an 8-byte gateway X9.19 MAC of data against the
// link's current ZAK and, when previousToo is set (the caller is within
// one send timeout of a key change), the previous ZAK. It returns (false,
// nil) for a wrong MAC and an error when it cannot decide (no ZAK yet).
func (h *HSM) VerifyZoneMAC(link string, data, got []byte, previousToo bool) (bool, error) {
	return h.VerifyZoneMACAlg(link, TDES, data, got, previousToo)
}

// VerifyZoneMACAlg is VerifyZoneMAC for a link whose MAC is of algorithm
// alg (TDES: X9.19, SM4: the SM4 CBC-MAC). A previous ZAK of the other
// algorithm is not tried.
func (h *HSM) VerifyZoneMACAlg(link string, alg Algorithm, data, got []byte, previousToo bool) (ok bool, err error) {
	defer func() { h.observe(opZoneMACVerify, err, ok) }()
	if err := CheckLinkName(link); err != nil {
		return false, err
	}
	labels := []string{ZoneKeyLabel(link, ZAK)}
	if previousToo {
		labels = append(labels, zonePrevLabel(link))
	}
	for i, label := range labels {
		k, err := h.zoneMACKey(label, UsageMACVerify, alg)
		if i > 0 && (errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrKeyUsage)) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("link %s: %w", link, err)
		}
		if len(got) != 8 {
			return false, nil
		}
		want, err := zoneMAC(k, data)
		if err != nil {
			return false, err
		}
		if subtle.ConstantTimeCompare(want, got) == 1 {
			return true, nil
		}
	}
	return false, nil
}

// TranslatePINToZone translates a terminal's PIN block from its current
// PIK to the link's ZPK, as ISO 9564 format 0, for a gateway request's
// field 52. The clear PIN never leaves the HSM.
func (h *HSM) TranslatePINToZone(terminalID string, fromFormat PINFormat, link string, block []byte, pan string) ([]byte, error) {
	if err := CheckLinkName(link); err != nil {
		return nil, err
	}
	out, err := h.TranslateTerminalPIN(terminalID, fromFormat, ZoneKeyLabel(link, ZPK), PINFormat0, block, pan)
	if errors.Is(err, ErrKeyNotFound) && strings.Contains(err.Error(), TerminalKeyLabel(terminalID, TPK)) {
		return nil, fmt.Errorf("terminal %s: %w", terminalID, ErrNotSignedOn)
	}
	return out, err
}

// VerifyZonePIN is the issuer side of a gateway: it decrypts a format 0
// PIN block under the link's ZPK and compares the campus PIN verification
// value (see PINVerificationValue) with storedPVV in constant time. A block
// that does not decode is an error wrapping ErrPINBlock.
func (h *HSM) VerifyZonePIN(link string, block []byte, pan, storedPVV string) (ok bool, err error) {
	defer func() { h.observe(opZonePINVerify, err, ok) }()
	if err := CheckLinkName(link); err != nil {
		return false, err
	}
	k, err := h.key(ZoneKeyLabel(link, ZPK), UsagePINDecrypt)
	if err != nil {
		return false, fmt.Errorf("link %s: %w", link, err)
	}
	pin, err := pinblock.Decrypt(k.block, PINFormat0, block, pan)
	if err != nil {
		return false, fmt.Errorf("link %s: %w: %w", link, ErrPINBlock, err)
	}
	v, err := h.campusPVV(pan, pin)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(hexUpper(v)), []byte(storedPVV)) == 1, nil
}

// ZoneKeyCheck returns the 6-hex check value of a link's zone key, or ""
// when it is not loaded; for operators comparing with the other side.
func (h *HSM) ZoneKeyCheck(link string, t KeyType) string {
	info, err := h.Info(ZoneKeyLabel(link, t))
	if err != nil || len(info.KCV) < ZoneCheckLen {
		return ""
	}
	return hexUpper(info.KCV[:ZoneCheckLen])
}
