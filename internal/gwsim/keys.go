package gwsim

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
)

// The simulated bank is the other party of a link: it holds its zone keys
// in clear, as a bank's own HSM would hold them, and uses the switch's
// lower hsm packages for the cryptography (docs/gateway-dialect.md, MAC).

// zoneKey is one 16-byte zone key with its ciphers ready: double-length
// TDES, or SM4 for the ZAK of a link whose MAC is SM4.
type zoneKey struct {
	clear []byte       // 16 bytes
	tdes  cipher.Block // the whole key (PIN blocks, check value, wrapping)
	k1    cipher.Block // DES under the left half (X9.19)
	k2    cipher.Block // DES under the right half (X9.19)
	sm4   cipher.Block // the whole key as SM4 (SM4 ZAK only; then the others are nil)
}

// MAC algorithms of the link (Options.MAC).
const (
	MACX919 = "x9.19"
	MACSM4  = "sm4"
)

func newZoneKey(clearKey []byte) (*zoneKey, error) {
	return newZoneKeyAlg(clearKey, MACX919)
}

// newZoneKeyAlg builds a ZAK for the link's MAC algorithm (MACX919: a
// TDES key; MACSM4: an SM4 key).
func newZoneKeyAlg(clearKey []byte, macAlg string) (*zoneKey, error) {
	if len(clearKey) != 16 {
		return nil, fmt.Errorf("zone key of %d bytes: want 16", len(clearKey))
	}
	k := &zoneKey{clear: append([]byte(nil), clearKey...)}
	var err error
	if macAlg == MACSM4 {
		if k.sm4, err = blockcipher.New(blockcipher.SM4, k.clear); err != nil {
			return nil, err
		}
		return k, nil
	}
	if k.tdes, err = blockcipher.New(blockcipher.TDES, k.clear); err != nil {
		return nil, err
	}
	if k.k1, err = blockcipher.New(blockcipher.DES, k.clear[:8]); err != nil {
		return nil, err
	}
	if k.k2, err = blockcipher.New(blockcipher.DES, k.clear[8:]); err != nil {
		return nil, err
	}
	return k, nil
}

// parseZoneKey parses 32 hex digits.
func parseZoneKey(s string) (*zoneKey, error) {
	return parseZoneKeyAlg(s, MACX919)
}

// parseZoneKeyAlg parses 32 hex digits as a key for macAlg
// (newZoneKeyAlg).
func parseZoneKeyAlg(s, macAlg string) (*zoneKey, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 16 {
		return nil, fmt.Errorf("zone key must be 32 hex digits")
	}
	return newZoneKeyAlg(b, macAlg)
}

// randomZoneKey generates a fresh double-length TDES key with odd parity.
func randomZoneKey() (*zoneKey, error) {
	return randomZoneKeyAlg(MACX919)
}

// randomZoneKeyAlg generates a fresh key for macAlg (newZoneKeyAlg).
func randomZoneKeyAlg(macAlg string) (*zoneKey, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate zone key: %w", err)
	}
	if macAlg != MACSM4 {
		blockcipher.FixParity(b)
	}
	return newZoneKeyAlg(b, macAlg)
}

// checkValue is the 6-hex check value: the first 3 bytes of the key
// encrypting a block of zeros (8 bytes for TDES, 16 for SM4).
func (k *zoneKey) checkValue() string {
	b := k.tdes
	if k.sm4 != nil {
		b = k.sm4
	}
	out := make([]byte, b.BlockSize())
	b.Encrypt(out, out)
	return strings.ToUpper(hex.EncodeToString(out[:3]))
}

// wrapUnder returns k encrypted ECB under kek, as 32 uppercase hex.
func (k *zoneKey) wrapUnder(kek *zoneKey) (string, error) {
	enc, err := blockcipher.EncryptECB(kek.tdes, k.clear)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(enc)), nil
}

// mac is the link MAC of data under the ZAK: for a TDES ZAK the X9.19
// retail MAC (ISO 9797-1 algorithm 3, padding method 1, all 8 bytes); for
// an SM4 ZAK the SM4 CBC-MAC (ISO 9797-1 algorithm 1, padding method 1,
// the leftmost 8 bytes).
func (k *zoneKey) mac(data []byte) ([]byte, error) {
	if k.sm4 != nil {
		out, err := mac.CBCMAC(k.sm4, data, mac.Pad1)
		if err != nil {
			return nil, err
		}
		return out[:8], nil
	}
	return mac.RetailMAC(k.k1, k.k2, data, mac.Pad1)
}

// verifyPIN decrypts an ISO PIN block under the ZPK and compares the PIN.
// It reports whether the block decodes at all and whether the PIN matches.
func (k *zoneKey) verifyPIN(f pinblock.Format, block []byte, pan, pin string) (decoded, ok bool) {
	got, err := pinblock.Decrypt(k.tdes, f, block, pan)
	if err != nil {
		return false, false
	}
	return true, subtle.ConstantTimeCompare([]byte(got), []byte(pin)) == 1
}

// keySet is the current pair of working keys and the pairs it replaced
// within the grace period (docs/gwsim.md: both sides accept the previous
// keys for one send timeout after a change). Keys are the bank's, not a
// connection's: when the connections of a pool each exchange keys, every
// pair retired less than the grace period ago is still accepted.
type keySet struct {
	zpk, zak *zoneKey
	retired  []retiredKeys // newest last, at most maxRetired
}

type retiredKeys struct {
	zpk, zak *zoneKey
	at       time.Time
}

// maxRetired bounds the retired pairs kept however fast keys change.
const maxRetired = 8

// replace installs a new pair at time now, retiring the current one.
func (ks *keySet) replace(zpk, zak *zoneKey, now time.Time) {
	if ks.zpk != nil {
		ks.retired = append(ks.retired, retiredKeys{zpk: ks.zpk, zak: ks.zak, at: now})
		if len(ks.retired) > maxRetired {
			ks.retired = ks.retired[len(ks.retired)-maxRetired:]
		}
	}
	ks.zpk, ks.zak = zpk, zak
}

// macKeys returns the ZAKs an inbound MAC may be under at time now,
// current first.
func (ks *keySet) macKeys(now time.Time, grace time.Duration) []*zoneKey {
	out := []*zoneKey{ks.zak}
	for i := len(ks.retired) - 1; i >= 0; i-- {
		if now.Sub(ks.retired[i].at) <= grace {
			out = append(out, ks.retired[i].zak)
		}
	}
	return out
}

// pinKeys returns the ZPKs a PIN block may be under at time now.
func (ks *keySet) pinKeys(now time.Time, grace time.Duration) []*zoneKey {
	out := []*zoneKey{ks.zpk}
	for i := len(ks.retired) - 1; i >= 0; i-- {
		if now.Sub(ks.retired[i].at) <= grace {
			out = append(out, ks.retired[i].zpk)
		}
	}
	return out
}
