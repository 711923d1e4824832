package switching

import (
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
)

// declineRC is the one table from the ledger's decline reasons to the
// response codes of DESIGN §4.6. The switch's own declines (97, 77, A0,
// 94, 14 for an unrouted card, ...) are answered where they are decided,
// with the spec.RC constants.
var declineRC = [...]string{
	ledger.Approved:                      spec.RCApproved,
	ledger.DeclineInsufficientFunds:      spec.RCInsufficientFunds,
	ledger.DeclineExceedsAmountLimit:     spec.RCExceedsAmountLimit,
	ledger.DeclineExceedsCountLimit:      spec.RCExceedsCountLimit,
	ledger.DeclineLostCard:               spec.RCLostCard,
	ledger.DeclineFrozenCard:             spec.RCFrozenCard,
	ledger.DeclineInvalidCard:            spec.RCInvalidCard,
	ledger.DeclineOriginalNotFound:       spec.RCOriginalNotFound,
	ledger.DeclineAmountDiffers:          spec.RCAmountDiffers,
	ledger.DeclineInvalidTransaction:     spec.RCInvalidTransaction,
	ledger.DeclineInvalidAmount:          spec.RCInvalidAmount,
	ledger.DeclineIncorrectPIN:           spec.RCIncorrectPIN,
	ledger.DeclinePINTriesExceeded:       spec.RCPINTriesExceeded,
	ledger.DeclineNotPermittedCardholder: spec.RCNotPermittedCard,
	ledger.DeclineNotPermittedTerminal:   spec.RCNotPermittedTerminal,
	ledger.DeclineDuplicate:              spec.RCDuplicate,
	ledger.DeclineInvalidMerchant:        spec.RCInvalidMerchant,
	ledger.DeclineRestrictedCard:         spec.RCRestrictedCard,
}

// responseCodeOf maps a decline reason; a reason missing from the table is
// a programming error answered as a system malfunction, never approved.
func responseCodeOf(d ledger.Decline) string {
	if int(d) < len(declineRC) && declineRC[d] != "" {
		return declineRC[d]
	}
	return spec.RCSystemMalfunction
}
