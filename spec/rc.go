package spec

import "slices"

// Response codes of field 39 (docs/pos-dialect.md#response-codes-field-39). The switch answers with these
// and nothing else.
const (
	RCApproved             = "00"
	RCInvalidMerchant      = "03"
	RCDoNotHonour          = "05"
	RCInvalidTransaction   = "12"
	RCInvalidAmount        = "13"
	RCInvalidCard          = "14"
	RCSuspectedMalfunction = "22"
	RCOriginalNotFound     = "25"
	RCFormatError          = "30"
	RCExpiredCard          = "33"
	RCFunctionNotSupported = "40"
	RCLostCard             = "41"
	RCFrozenCard           = "45" // private to this switch
	RCInsufficientFunds    = "51"
	RCIncorrectPIN         = "55"
	RCNotPermittedCard     = "57"
	RCNotPermittedTerminal = "58"
	RCExceedsAmountLimit   = "61"
	RCRestrictedCard       = "62" // gateway: lost, frozen or closed
	RCAmountDiffers        = "64"
	RCExceedsCountLimit    = "65"
	RCPINTriesExceeded     = "75"
	RCBatchMismatch        = "77"
	RCDuplicate            = "94"
	RCSystemMalfunction    = "96"
	RCTerminalNotFound     = "97"
	RCNoAnswer             = "98"
	RCMACError             = "A0"
)

// Reversal reasons carried in field 39 of a 0400 (docs/pos-dialect.md#transaction-identification).
const (
	ReversalTimeout  = RCNoAnswer
	ReversalOther    = "06"
	ReversalMACError = RCMACError
)

var rcDescriptions = map[string]string{
	RCApproved:             "approved",
	RCInvalidMerchant:      "invalid merchant",
	RCDoNotHonour:          "do not honour",
	RCInvalidTransaction:   "invalid transaction",
	RCInvalidAmount:        "invalid amount",
	RCInvalidCard:          "invalid card",
	RCSuspectedMalfunction: "suspected malfunction",
	RCOriginalNotFound:     "original not found",
	RCFormatError:          "format error",
	RCExpiredCard:          "expired card",
	RCFunctionNotSupported: "function not supported",
	RCLostCard:             "lost card",
	RCFrozenCard:           "frozen card",
	RCInsufficientFunds:    "insufficient funds",
	RCIncorrectPIN:         "incorrect PIN",
	RCNotPermittedCard:     "transaction not permitted to cardholder",
	RCNotPermittedTerminal: "transaction not permitted to terminal",
	RCExceedsAmountLimit:   "exceeds amount limit",
	RCRestrictedCard:       "restricted card",
	RCAmountDiffers:        "amount differs from original",
	RCExceedsCountLimit:    "exceeds count limit",
	RCPINTriesExceeded:     "PIN tries exceeded",
	RCBatchMismatch:        "batch mismatch, sign on again",
	RCDuplicate:            "duplicate transmission",
	RCSystemMalfunction:    "system malfunction",
	RCTerminalNotFound:     "terminal not registered",
	RCNoAnswer:             "no answer from destination",
	RCMACError:             "MAC error",
}

// RCDescription returns the description of a response code, or "" for a
// code the switch does not use.
func RCDescription(rc string) string { return rcDescriptions[rc] }

// ResponseCodes returns every response code the switch uses, sorted.
func ResponseCodes() []string {
	out := make([]string, 0, len(rcDescriptions))
	for rc := range rcDescriptions {
		out = append(out, rc)
	}
	slices.Sort(out)
	return out
}
