package hsm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
)

// Algorithm re-exports the block cipher family of a stored key.
type Algorithm = blockcipher.Algorithm

// Key algorithms.
const (
	DES  = blockcipher.DES
	TDES = blockcipher.TDES
	AES  = blockcipher.AES
	SM4  = blockcipher.SM4
)

// KeyType is the role of a stored key. The type fixes what the key may do
// (its Usage); no operation accepts a key of another type, so that, for
// example, a MAC key can never be used to decrypt a PIN block.
type KeyType uint8

const (
	// TMK is a terminal master key: it only wraps the terminal's working
	// keys (TPK, TAK, TDK) for key exchange at sign-on.
	TMK KeyType = iota + 1
	// TPK is a terminal PIN key (UnionPay "PIK"): PIN blocks from a POS.
	TPK
	// TAK is a terminal authentication key (UnionPay "MAK"): POS MACs.
	TAK
	// TDK is a terminal data key: encrypts track or other sensitive data.
	TDK
	// ZMK is a zone master key shared with a gateway: wraps ZPK/ZAK.
	ZMK
	// ZPK is a zone PIN key: PIN blocks towards a gateway.
	ZPK
	// ZAK is a zone authentication key: MACs with a gateway.
	ZAK
	// BDK is a DUKPT base derivation key: it only derives terminal keys.
	BDK
	// PVK is a PIN verification key: PVV, IBM 3624 and the campus PIN
	// verification value.
	PVK
	// KEK is a key-encryption key for import and export of any key.
	KEK
)

var keyTypeNames = [...]string{"", "TMK", "TPK", "TAK", "TDK", "ZMK", "ZPK", "ZAK", "BDK", "PVK", "KEK"}

func (t KeyType) String() string {
	if int(t) < len(keyTypeNames) && t != 0 {
		return keyTypeNames[t]
	}
	return fmt.Sprintf("KeyType(%d)", uint8(t))
}

// ParseKeyType accepts the type names and the UnionPay aliases PIK and MAK.
func ParseKeyType(s string) (KeyType, error) {
	u := strings.ToUpper(s)
	switch u {
	case "PIK":
		return TPK, nil
	case "MAK":
		return TAK, nil
	}
	for i, n := range keyTypeNames {
		if i > 0 && n == u {
			return KeyType(i), nil
		}
	}
	return 0, fmt.Errorf("unknown key type %q", s)
}

func (t KeyType) valid() bool { return t >= TMK && t <= KEK }

// Usage is the set of operations a key may take part in.
type Usage uint16

const (
	UsageWrapTerminalKeys Usage = 1 << iota // wrap/unwrap TPK, TAK, TDK
	UsageWrapZoneKeys                       // wrap/unwrap ZPK, ZAK
	UsageWrapAny                            // wrap/unwrap any key (KEK)
	UsagePINEncrypt                         // encrypt a PIN block
	UsagePINDecrypt                         // decrypt a PIN block (inside the HSM only)
	UsageMACGenerate                        // generate a MAC
	UsageMACVerify                          // verify a MAC
	UsageDataEncrypt                        // encrypt data
	UsageDataDecrypt                        // decrypt data
	UsageDerive                             // derive keys (DUKPT)
	UsagePINVerify                          // compute/verify PIN verification values
)

// DefaultUsage is the usage a key of type t gets; it is fixed at creation
// and bound to the stored record.
func DefaultUsage(t KeyType) Usage {
	switch t {
	case TMK:
		return UsageWrapTerminalKeys
	case TPK, ZPK:
		return UsagePINEncrypt | UsagePINDecrypt
	case TAK, ZAK:
		return UsageMACGenerate | UsageMACVerify
	case TDK:
		return UsageDataEncrypt | UsageDataDecrypt
	case ZMK:
		return UsageWrapZoneKeys
	case BDK:
		return UsageDerive
	case PVK:
		return UsagePINVerify
	case KEK:
		return UsageWrapAny
	}
	return 0
}

// ErrKeyUsage reports an attempt to use a key for something its type does
// not allow (key separation).
var ErrKeyUsage = errors.New("key type does not permit this operation")

// mayWrap reports whether a key of type wrapper may wrap a key of type t.
func mayWrap(wrapper Usage, t KeyType) bool {
	switch {
	case wrapper&UsageWrapAny != 0:
		return true
	case wrapper&UsageWrapTerminalKeys != 0:
		return t == TPK || t == TAK || t == TDK
	case wrapper&UsageWrapZoneKeys != 0:
		return t == ZPK || t == ZAK
	}
	return false
}

// defaultAlgorithm picks the algorithm LoadClearKey assumes: DES-family by
// length for 8/16/24 bytes, AES-256 for 32 bytes.
func defaultAlgorithm(n int) (Algorithm, error) {
	switch n {
	case 8:
		return DES, nil
	case 16, 24:
		return TDES, nil
	case 32:
		return AES, nil
	}
	return 0, fmt.Errorf("key of %d bytes: %w", n, blockcipher.ErrKeyLength)
}
