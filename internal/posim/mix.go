package posim

import (
	"fmt"
	"strings"
)

// Kind is what a simulated terminal does next.
type Kind uint8

// Kinds of simulated transaction. KindReversal is a consume whose answer
// the terminal treats as lost (the cardholder pulled the card before the
// receipt printed), followed by its 0400. KindCompletion completes, and
// KindPreAuthCancel cancels, the terminal's latest approved pre-auth it
// has not completed or cancelled yet, for the whole held amount; with
// none, the terminal sends a pre-auth instead.
const (
	KindConsume Kind = iota
	KindBalance
	KindVoid
	KindRefund
	KindReversal
	KindCashLoad
	KindPreAuth
	KindCompletion
	KindPreAuthCancel
	numKinds
)

var kindNames = [numKinds]string{"consume", "balance", "void", "refund", "reversal", "cash_load",
	"pre_auth", "completion", "pre_auth_cancel"}

func (k Kind) String() string {
	if k >= numKinds {
		return fmt.Sprintf("kind(%d)", k)
	}
	return kindNames[k]
}

// Mix is a transaction profile: weights per kind, in percent, summing to
// 100. Pick maps a uniform draw from [0,100) to a kind, so over any run of
// 100 consecutive draws 0..99 the proportions are exact.
type Mix struct {
	Name    string
	Weights [numKinds]int
}

// The profiles of docs/posim.md.
var (
	MixConsume = Mix{Name: "consume", Weights: [numKinds]int{KindConsume: 100}}
	// MixBalance is balance inquiries only (make bench's inquiry row).
	MixBalance = Mix{Name: "balance", Weights: [numKinds]int{KindBalance: 100}}
	MixMixed   = Mix{Name: "mixed", Weights: [numKinds]int{
		KindConsume: 80, KindBalance: 10, KindVoid: 4, KindRefund: 2, KindReversal: 2, KindCashLoad: 2,
	}}
	// MixPreAuth is consumes and pre-authorisations with their
	// completions and cancels (the gateway crash test's traffic).
	MixPreAuth = Mix{Name: "preauth", Weights: [numKinds]int{
		KindConsume: 40, KindPreAuth: 30, KindCompletion: 20, KindPreAuthCancel: 10,
	}}
)

// ParseMix returns the profile named s.
func ParseMix(s string) (Mix, error) {
	switch strings.ToLower(s) {
	case "", "consume":
		return MixConsume, nil
	case "mixed":
		return MixMixed, nil
	case "balance":
		return MixBalance, nil
	case "preauth":
		return MixPreAuth, nil
	}
	return Mix{}, fmt.Errorf("unknown mix %q (want consume, balance, mixed or preauth)", s)
}

// Pick returns the kind for draw r in [0,100).
func (m Mix) Pick(r int) Kind {
	if r < 0 || r >= 100 {
		panic(fmt.Sprintf("posim: mix draw %d outside [0,100)", r))
	}
	for k, w := range m.Weights {
		if r < w {
			return Kind(k)
		}
		r -= w
	}
	panic(fmt.Sprintf("posim: mix %s weights do not sum to 100", m.Name))
}
