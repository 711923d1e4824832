package recharge

import "time"

// Processing codes of the inbound operations (docs/recharge.md).
const (
	ProcVerify = "330000"
	ProcCredit = "210000"
	ProcQuery  = "380000"
)

// Bounds of the order number and channel tags (docs/recharge.md).
const (
	MaxOrderLen   = 32
	MaxChannelLen = 8
)

// MaxClockSkew is how far field 7 (or the HTTP timestamp) may be from the
// switch's clock.
const MaxClockSkew = 300 * time.Second

// Transaction type labels of the HTTP channel (metrics, journal): the
// String forms of spec.RechargeVerify, RechargeCredit, RechargeQuery and
// RechargeReversal, which the gateway port maps its requests into.
const (
	TxVerify   = "recharge_verify"
	TxCredit   = "recharge_credit"
	TxQuery    = "recharge_query"
	TxReversal = "recharge_reversal"
)

// KeyName is the name under which an institution's zone keys live in the
// HSM (hsm.ZoneKeyLabel(KeyName(id), hsm.ZAK)).
func KeyName(institution string) string { return "inst-" + institution }

// HTTPKeyLabel is the HSM label of an institution's HTTP signing key.
func HTTPKeyLabel(institution string) string { return "recharge/" + institution + "/http" }

// Keys are the HSM operations the HTTP channel needs; *hsm.HSM has them.
type Keys interface {
	VerifyHMACSHA256(label string, data, got []byte) (bool, error)
}

// Observer receives what the HTTP channel answers, for metrics.
type Observer interface {
	Answered(tx, rc string, d time.Duration)
	Rejected(listener, reason string)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
