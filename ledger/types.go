package ledger

import (
	"errors"
	"fmt"
)

// HolderType says who holds a card; visitors pay the service fee.
type HolderType uint8

// Holder types.
const (
	Student HolderType = iota + 1
	Staff
	Visitor
)

var holderTypeNames = map[HolderType]string{Student: "student", Staff: "staff", Visitor: "visitor"}

func (h HolderType) String() string {
	if s, ok := holderTypeNames[h]; ok {
		return s
	}
	return fmt.Sprintf("HolderType(%d)", uint8(h))
}

// UnmarshalText parses "student", "staff" or "visitor".
func (h *HolderType) UnmarshalText(b []byte) error {
	for k, v := range holderTypeNames {
		if v == string(b) {
			*h = k
			return nil
		}
	}
	return fmt.Errorf("ledger: unknown holder type %q", truncate(string(b)))
}

// MarshalText is the inverse of UnmarshalText.
func (h HolderType) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// CardState is the life-cycle state of a card. Only an active card may be
// debited; frozen and lost cards may still receive credits (voids, refunds,
// reversals, loads) so that money on its way back is not stranded.
type CardState uint8

// Card states.
const (
	Active CardState = iota + 1
	Frozen
	Lost
	Closed
)

var cardStateNames = map[CardState]string{Active: "active", Frozen: "frozen", Lost: "lost", Closed: "closed"}

func (s CardState) String() string {
	if n, ok := cardStateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("CardState(%d)", uint8(s))
}

// UnmarshalText parses "active", "frozen", "lost" or "closed".
func (s *CardState) UnmarshalText(b []byte) error {
	for k, v := range cardStateNames {
		if v == string(b) {
			*s = k
			return nil
		}
	}
	return fmt.Errorf("ledger: unknown card state %q", truncate(string(b)))
}

// MarshalText is the inverse of UnmarshalText.
func (s CardState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ListFlag is the risk list a card is on: grey approves with an alert, black
// declines everything but credits.
type ListFlag uint8

// List flags.
const (
	ListNone ListFlag = iota
	ListGrey
	ListBlack
)

var listNames = map[ListFlag]string{ListNone: "none", ListGrey: "grey", ListBlack: "black"}

func (f ListFlag) String() string {
	if n, ok := listNames[f]; ok {
		return n
	}
	return fmt.Sprintf("ListFlag(%d)", uint8(f))
}

// UnmarshalText parses "none", "grey" or "black" (empty means none).
func (f *ListFlag) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*f = ListNone
		return nil
	}
	for k, v := range listNames {
		if v == string(b) {
			*f = k
			return nil
		}
	}
	return fmt.Errorf("ledger: unknown list flag %q", truncate(string(b)))
}

// MarshalText is the inverse of UnmarshalText.
func (f ListFlag) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// PINOutcome is what the switch learned about the PIN before calling the
// ledger: the HSM verifies the PIN block, the ledger keeps the try counter.
type PINOutcome uint8

// PIN outcomes.
const (
	PINNotPresent PINOutcome = iota
	PINVerified
	PINWrong
)

// Decline is why the ledger declined an operation. It is an error value so
// callers can use errors.Is, but Execute reports declines in Result.Decline
// (a decline is a business answer that is journaled and committed, not a
// failure). The switch owns the one table that maps reasons to ISO 8583
// response codes; docs/ledger.md lists the intended codes.
type Decline uint8

// Decline reasons. Approved is the zero value: no decline.
const (
	Approved                      Decline = iota
	DeclineInsufficientFunds              // 51
	DeclineExceedsAmountLimit             // 61: per-transaction, daily or maximum balance
	DeclineExceedsCountLimit              // 65: too many open pre-auth holds
	DeclineLostCard                       // 41
	DeclineFrozenCard                     // 45
	DeclineInvalidCard                    // 14: unknown or closed card
	DeclineOriginalNotFound               // 25
	DeclineAmountDiffers                  // 64
	DeclineInvalidTransaction             // 12
	DeclineInvalidAmount                  // 13
	DeclineIncorrectPIN                   // 55: wrong PIN, or PIN required and absent
	DeclinePINTriesExceeded               // 75
	DeclineNotPermittedCardholder         // 57: black list, subsidy-only misuse
	DeclineNotPermittedTerminal           // 58: load from a terminal that may not load
	DeclineDuplicate                      // 94: same idempotency key, different content, or in flight
	DeclineInvalidMerchant                // 03
	DeclineRestrictedCard                 // 62: an outside credit to a lost, frozen or closed card
	declineCount
)

var declineNames = [...]string{
	Approved:                      "approved",
	DeclineInsufficientFunds:      "insufficient funds",
	DeclineExceedsAmountLimit:     "exceeds amount limit",
	DeclineExceedsCountLimit:      "exceeds count limit",
	DeclineLostCard:               "lost card",
	DeclineFrozenCard:             "frozen card",
	DeclineInvalidCard:            "invalid card",
	DeclineOriginalNotFound:       "original not found",
	DeclineAmountDiffers:          "amount differs from original",
	DeclineInvalidTransaction:     "invalid transaction",
	DeclineInvalidAmount:          "invalid amount",
	DeclineIncorrectPIN:           "incorrect PIN",
	DeclinePINTriesExceeded:       "PIN tries exceeded",
	DeclineNotPermittedCardholder: "not permitted to cardholder",
	DeclineNotPermittedTerminal:   "not permitted to terminal",
	DeclineDuplicate:              "duplicate transmission",
	DeclineInvalidMerchant:        "invalid merchant",
	DeclineRestrictedCard:         "restricted card",
}

func (d Decline) Error() string {
	if d < declineCount {
		return "ledger: declined: " + declineNames[d]
	}
	return fmt.Sprintf("ledger: declined: reason %d", uint8(d))
}

// String is the reason without the package prefix.
func (d Decline) String() string {
	if d < declineCount {
		return declineNames[d]
	}
	return fmt.Sprintf("Decline(%d)", uint8(d))
}

// Kind names an operation. Its numeric value is persisted: append only.
type Kind uint8

// Operation kinds.
const (
	KindBalanceInquiry Kind = iota + 1
	KindConsume
	KindVoid
	KindRefund
	KindCashLoad
	KindCashLoadVoid
	KindPreAuth
	KindPreAuthCompletion
	KindPreAuthCancel
	KindCompletionVoid
	KindReversal
	KindOpenCard      // admin: opening balances
	KindCloseCard     // admin: balance to the refund payable
	KindReplaceCard   // admin: balance to the new card
	KindOutsideCredit // a credit collected by an outside institution (web or wallet recharge)
	KindPendingClaim  // a load terminal moves the card's pending credits to its cash purse
	KindTransferLoad  // a kiosk loads the card from its bound bank account
	kindCount
)

var kindNames = [...]string{
	KindBalanceInquiry:    "balance-inquiry",
	KindConsume:           "consume",
	KindVoid:              "void",
	KindRefund:            "refund",
	KindCashLoad:          "cash-load",
	KindCashLoadVoid:      "cash-load-void",
	KindPreAuth:           "pre-auth",
	KindPreAuthCompletion: "pre-auth-completion",
	KindPreAuthCancel:     "pre-auth-cancel",
	KindCompletionVoid:    "completion-void",
	KindReversal:          "reversal",
	KindOpenCard:          "open-card",
	KindCloseCard:         "close-card",
	KindReplaceCard:       "replace-card",
	KindOutsideCredit:     "outside-credit",
	KindPendingClaim:      "pending-claim",
	KindTransferLoad:      "transfer-load",
}

func (k Kind) String() string {
	if k > 0 && k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// reversible reports whether a reversal may name an original of kind k.
func (k Kind) reversible() bool {
	switch k {
	case KindConsume, KindVoid, KindRefund, KindCashLoad, KindCashLoadVoid,
		KindPreAuth, KindPreAuthCompletion, KindPreAuthCancel, KindCompletionVoid,
		KindOutsideCredit, KindPendingClaim, KindTransferLoad:
		return true
	}
	return false
}

// Errors that are failures, not business declines.
var (
	// ErrInvalidRequest is returned by Execute for a request that breaks a
	// structural bound (missing idempotency key, over-long terminal id,
	// invalid date). These are caller bugs, not cardholder errors.
	ErrInvalidRequest = errors.New("ledger: invalid request")
	// ErrCardExists is returned by OpenCard and ReplaceCard for a PAN that
	// already has an account.
	ErrCardExists = errors.New("ledger: card already exists")
	// ErrUnknownCard is returned by admin operations for an unknown PAN.
	ErrUnknownCard = errors.New("ledger: unknown card")
	// ErrMerchantExists is returned by AddMerchant for a known merchant id.
	ErrMerchantExists = errors.New("ledger: merchant already exists")
	// ErrCardState is returned by admin operations not allowed in the
	// card's current state (for example unfreezing a lost card).
	ErrCardState = errors.New("ledger: operation not allowed in card state")
	// ErrLimit is returned by OpenCard, ReplaceCard and AddMerchant when
	// the ledger holds the configured maximum of cards or merchants
	// (Options.MaxCards, MaxMerchants).
	ErrLimit = errors.New("ledger: configured maximum reached")
	// ErrCorrupt is returned when a stored record does not decode.
	ErrCorrupt = errors.New("ledger: corrupt record")
)
