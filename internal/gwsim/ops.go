package gwsim

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// Op is what a financial request asked the bank to do.
type Op string

// Operations (docs/gateway-links.md, financial messages).
const (
	OpConsume Op = "consume"       // 0200, 3 = 000000: debit the card's holder, PIN verified
	OpBalance Op = "balance"       // 0200, 3 = 310000
	OpVoid    Op = "void"          // 0200, 3 = 200000, 90 = the consume
	OpRefund  Op = "refund"        // 0220, 3 = 200000, 90 = the consume
	OpLoad    Op = "transfer_load" // 0200, 3 = 400000: debit the account in 102
	// Pre-authorisation (25 = 06, docs/gateway-dialect.md): a hold on
	// the holder's available balance, released by its cancel or turned
	// into a debit by its completion.
	OpPreAuth        Op = "pre_auth"            // 0100, 3 = 030000: hold, PIN verified
	OpPreAuthCancel  Op = "pre_auth_cancel"     // 0100, 3 = 200000, 90 = the pre-auth: release the hold
	OpCompletion     Op = "pre_auth_completion" // 0200, 3 = 000000, 90 = the pre-auth: debit, release the hold
	OpCompletionVoid Op = "completion_void"     // 0200, 3 = 200000, 90 = the completion: credit it back
	OpReversal       Op = "reversal"            // 0420/0421 (0400/0401), 90 = the original
	OpUnsupported    Op = "unsupported"         // answered 40
)

// Entry is the bank's record of one financial request it processed.
type Entry struct {
	Serial       string      `json:"serial"` // the bank's own serial number, 12 digits
	Time         time.Time   `json:"time"`
	BusinessDate string      `json:"business_date"` // YYYYMMDD, the bank's day
	Op           Op          `json:"op"`
	MTI          string      `json:"mti"`
	Processing   string      `json:"processing_code"`
	Card         string      `json:"card"`    // the holder's bank card
	Account      string      `json:"account"` // the holder's bank account
	Beneficiary  string      `json:"beneficiary,omitempty"`
	Amount       spec.Amount `json:"amount_fen"`
	Delta        spec.Amount `json:"delta_fen"` // effect on the holder's balance
	RC           string      `json:"response_code"`
	AuthCode     string      `json:"auth_code,omitempty"`
	RRN          string      `json:"rrn"`
	STAN         string      `json:"stan"`
	Transmission string      `json:"transmission_time"` // field 7 as received
	Acquirer     string      `json:"acquirer"`
	Forwarding   string      `json:"forwarding"`
	Terminal     string      `json:"terminal"`
	Merchant     string      `json:"merchant"`
	Key          string      `json:"key"`                // MTI+11+7+32+33: what a later 90 names
	Original     string      `json:"original,omitempty"` // field 90
	Reason       string      `json:"reason,omitempty"`   // field 39 of a reversal: 98 timeout, 06 other
	Reversed     bool        `json:"reversed"`
	ReversedBy   string      `json:"reversed_by,omitempty"` // serial of the reversal
	Returned     spec.Amount `json:"returned_fen"`          // consumes and completions: voided or refunded so far
	Voided       bool        `json:"voided"`
	// Hold is the entry's effect on the holder's holds: + a pre-auth
	// placed (or restored), - released.
	Hold spec.Amount `json:"hold_fen"`
	// HoldOpen: a pre-auth whose hold stands (not completed, cancelled
	// or reversed).
	HoldOpen bool `json:"hold_open,omitempty"`
}

// MaxEntries bounds the record; requests beyond it are answered 96.
const MaxEntries = 5_000_000

// OriginalKey is the field 90 value (42 digits, docs/gateway-dialect.md)
// that names a message with these MTI, STAN (11), transmission time (7),
// acquirer (32) and forwarding (33) ids.
func OriginalKey(mti, stan, transmission, acquirer, forwarding string) (string, error) {
	return spec.OriginalData{MTI: mti, STAN: stan, Transmission: transmission, Acquirer: acquirer, Forwarding: forwarding}.Format()
}

// result is a processed request's answer code and extra fields.
type result struct {
	rc     string
	fields map[int]string
}

// process acts on a checked financial request and records it.
func (s *Sim) process(r request, now time.Time, f Faults) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) >= MaxEntries {
		s.log.Error("gwsim record full", zap.Int("entries", len(s.entries)))
		return result{rc: spec.RCSystemMalfunction}
	}
	s.serial++
	e := &Entry{Serial: fmt.Sprintf("%012d", s.serial), Time: now, BusinessDate: s.BusinessDate(now),
		MTI: r.mti, Processing: r.processing, Card: r.card, Account: r.account, Beneficiary: r.beneficiary,
		Amount: r.amount, RRN: r.rrn, STAN: r.stan, Transmission: r.transmission, Acquirer: r.acquirer,
		Forwarding: r.forwarding, Terminal: r.terminal, Merchant: r.merchant, Original: r.original}
	if strings.HasPrefix(r.mti, "04") {
		e.Reason = r.reason
	}
	e.Op = classify(r.mti, r.processing, r.condition)
	s.entries = append(s.entries, e)
	key, err := OriginalKey(r.mti, r.stan, r.transmission, r.acquirer, r.forwarding)
	res := result{fields: map[int]string{}}
	switch {
	case err != nil:
		res.rc = spec.RCFormatError
	case s.byKey[key] != nil:
		res.rc = spec.RCDuplicate // the same MTI, STAN, time and ids again
	default:
		e.Key = key
		s.byKey[key] = e
		res.rc = s.operate(e, r, f, res.fields)
	}
	e.RC = res.rc
	if res.rc == spec.RCApproved {
		s.stats.Approved++
		if e.Op != OpBalance && e.Op != OpReversal {
			e.AuthCode = e.Serial[6:]
			res.fields[38] = e.AuthCode
		}
		res.fields[15] = e.BusinessDate[4:8]
	} else {
		s.stats.Declined++
	}
	return res
}

func classify(mti, pc, cond string) Op {
	preAuth := cond == spec.GWConditionPreAuth
	switch {
	case mti == "0100" && pc == "030000" && preAuth:
		return OpPreAuth
	case mti == "0100" && pc == "200000" && preAuth:
		return OpPreAuthCancel
	case mti == "0200" && pc == "000000" && preAuth:
		return OpCompletion
	case mti == "0200" && pc == "200000" && preAuth:
		return OpCompletionVoid
	case mti == "0200" && pc == "000000":
		return OpConsume
	case mti == "0200" && pc == "310000":
		return OpBalance
	case mti == "0200" && pc == "200000":
		return OpVoid
	case mti == "0220" && pc == "200000":
		return OpRefund
	case mti == "0200" && pc == "400000":
		return OpLoad
	case mti == "0420" || mti == "0421" || mti == "0400" || mti == "0401":
		return OpReversal
	}
	return OpUnsupported
}

// operate does the operation of e; s.mu is held. It returns the response
// code and sets answer fields.
func (s *Sim) operate(e *Entry, r request, f Faults, fields map[int]string) string {
	if _, ok := s.tombstones[e.Key]; ok && e.Op != OpReversal {
		// Its reversal came first: it must never take effect.
		return spec.RCInvalidTransaction
	}
	if f.Decline != "" && e.Op != OpReversal {
		return f.Decline
	}
	if f.DeclineReversals != "" && e.Op == OpReversal {
		s.stats.ReversalsSeen++
		return f.DeclineReversals // nothing undone: the original stands
	}
	switch e.Op {
	case OpConsume:
		return s.consume(e, r)
	case OpBalance:
		return s.balance(e, r, fields)
	case OpVoid:
		return s.void(e, r)
	case OpRefund:
		return s.refund(e, r)
	case OpLoad:
		return s.load(e, r)
	case OpPreAuth:
		return s.preAuth(e, r)
	case OpPreAuthCancel:
		return s.cancel(e, r)
	case OpCompletion:
		return s.completion(e, r)
	case OpCompletionVoid:
		return s.void(e, r)
	case OpReversal:
		return s.reverse(e, r)
	}
	return spec.RCFunctionNotSupported
}

// checkPIN verifies the PIN block of r for acc under the ZPK (and the
// previous ZPK during the grace period).
func (s *Sim) checkPIN(acc *account, r request) bool {
	if r.pinBlock == nil {
		return false
	}
	format := pinblock.Format0
	if r.field53 != "" {
		ff, err := pinblock.FormatFromSecurityControl(r.field53)
		if err != nil {
			return false
		}
		format = ff
	}
	decodedAny := false
	for _, k := range s.keys.pinKeys(s.now(), s.opts.KeyGrace) {
		decoded, ok := k.verifyPIN(format, r.pinBlock, r.card, acc.PIN)
		decodedAny = decodedAny || decoded
		if ok {
			return true
		}
	}
	if !decodedAny {
		s.log.Info("gwsim PIN block does not decode under the ZPK (was it translated to this link's ZPK?)")
	}
	return false
}

func (s *Sim) consume(e *Entry, r request) string {
	acc := s.byCard[r.card]
	switch {
	case acc == nil:
		return spec.RCInvalidCard
	case !r.amountOK || r.amount <= 0:
		return spec.RCInvalidAmount
	case !s.checkPIN(acc, r):
		return spec.RCIncorrectPIN
	case acc.available() < r.amount:
		e.Account = acc.Number
		return spec.RCInsufficientFunds
	}
	e.Account = acc.Number
	acc.Balance -= r.amount
	e.Delta = -r.amount
	return spec.RCApproved
}

func (s *Sim) balance(e *Entry, r request, fields map[int]string) string {
	acc := s.byCard[r.card]
	if acc == nil {
		return spec.RCInvalidCard
	}
	e.Account = acc.Number
	if r.pinBlock != nil && !s.checkPIN(acc, r) {
		return spec.RCIncorrectPIN
	}
	b, err := spec.FormatBalances([]spec.Balance{{AccountType: "10", AmountType: "02", Currency: "156", Amount: acc.Balance}})
	if err != nil {
		return spec.RCSystemMalfunction
	}
	fields[54] = b
	return spec.RCApproved
}

// originalOf finds the approved original, of one of the operations ops,
// that 90 names; with 38 present it must be the original's approval code.
func (s *Sim) originalOf(r request, ops ...Op) (*Entry, string) {
	o := s.byKey[r.original]
	if len(r.original) != 42 || o == nil || !slices.Contains(ops, o.Op) || o.RC != spec.RCApproved ||
		(r.card != "" && r.card != o.Card) || (r.authCode != "" && r.authCode != o.AuthCode) {
		return nil, spec.RCOriginalNotFound
	}
	if o.Reversed || o.Voided {
		return nil, spec.RCInvalidTransaction
	}
	return o, ""
}

// originalConsume finds the approved consume (or completion) a void or
// refund names: a consume void names a consume, a completion void a
// completion, a refund either.
func (s *Sim) originalConsume(r request) (*Entry, string) {
	switch classify(r.mti, r.processing, r.condition) {
	case OpVoid:
		return s.originalOf(r, OpConsume)
	case OpCompletionVoid:
		return s.originalOf(r, OpCompletion)
	}
	return s.originalOf(r, OpConsume, OpCompletion)
}

// void credits back a consume, or a completion (a completion void; the
// pre-auth's hold stays released), whole.
func (s *Sim) void(e *Entry, r request) string {
	o, rc := s.originalConsume(r)
	if o == nil {
		return rc
	}
	switch {
	case o.Returned > 0:
		return spec.RCInvalidTransaction // partly refunded: refund the rest instead
	case !r.amountOK || r.amount != o.Amount:
		return spec.RCAmountDiffers
	}
	acc := s.byCard[o.Card]
	acc.Balance += o.Amount
	e.Card, e.Account, e.Delta = o.Card, o.Account, o.Amount
	o.Voided, o.Returned = true, o.Amount
	return spec.RCApproved
}

func (s *Sim) refund(e *Entry, r request) string {
	o, rc := s.originalConsume(r)
	if o == nil {
		return rc
	}
	switch {
	case !r.amountOK || r.amount <= 0:
		return spec.RCInvalidAmount
	case o.Returned+r.amount > o.Amount:
		return spec.RCExceedsAmountLimit
	}
	acc := s.byCard[o.Card]
	acc.Balance += r.amount
	e.Card, e.Account, e.Delta = o.Card, o.Account, r.amount
	o.Returned += r.amount
	return spec.RCApproved
}

// preAuth places a hold of the amount on the holder's available
// balance.
func (s *Sim) preAuth(e *Entry, r request) string {
	acc := s.byCard[r.card]
	switch {
	case acc == nil:
		return spec.RCInvalidCard
	case !r.amountOK || r.amount <= 0:
		return spec.RCInvalidAmount
	case !s.checkPIN(acc, r):
		return spec.RCIncorrectPIN
	}
	e.Account = acc.Number
	if acc.available() < r.amount {
		return spec.RCInsufficientFunds
	}
	acc.held += r.amount
	e.Hold, e.HoldOpen = r.amount, true
	return spec.RCApproved
}

// openPreAuth finds the pre-auth with a standing hold that a cancel or
// completion names (90, and 38 its approval code).
func (s *Sim) openPreAuth(r request) (*Entry, string) {
	if r.authCode == "" {
		return nil, spec.RCOriginalNotFound
	}
	o, rc := s.originalOf(r, OpPreAuth)
	if o == nil {
		return nil, rc
	}
	if !o.HoldOpen {
		return nil, spec.RCInvalidTransaction // completed or cancelled already
	}
	return o, ""
}

// cancel releases a pre-auth's hold; the amount is the held amount.
func (s *Sim) cancel(e *Entry, r request) string {
	o, rc := s.openPreAuth(r)
	if o == nil {
		return rc
	}
	if !r.amountOK || r.amount != o.Amount {
		return spec.RCAmountDiffers
	}
	acc := s.byCard[o.Card]
	acc.held -= o.Amount
	o.HoldOpen = false
	e.Card, e.Account, e.Hold = o.Card, o.Account, -o.Amount
	return spec.RCApproved
}

// completion debits up to the held amount and releases the whole hold.
func (s *Sim) completion(e *Entry, r request) string {
	o, rc := s.openPreAuth(r)
	if o == nil {
		return rc
	}
	acc := s.byCard[o.Card]
	switch {
	case !r.amountOK || r.amount <= 0:
		return spec.RCInvalidAmount
	case r.amount > o.Amount:
		return spec.RCExceedsAmountLimit
	case acc.Balance < r.amount:
		return spec.RCInsufficientFunds
	}
	acc.held -= o.Amount
	acc.Balance -= r.amount
	o.HoldOpen = false
	e.Card, e.Account, e.Delta, e.Hold = o.Card, o.Account, -r.amount, -o.Amount
	return spec.RCApproved
}

// restoreHold puts back the hold of the pre-auth named by key (the
// reversal of its cancel or completion) and records it on e.
func (s *Sim) restoreHold(e *Entry, key string) {
	p := s.byKey[key]
	if p == nil || p.Op != OpPreAuth || p.Reversed || p.HoldOpen {
		return
	}
	s.byCard[p.Card].held += p.Amount
	p.HoldOpen = true
	e.Hold = p.Amount
}

// load is the bank leg of a transfer load: debit the bound account named
// in 102 (authoritative; 2 is informational). No PIN: the binding
// agreement authorises it.
func (s *Sim) load(e *Entry, r request) string {
	acc := s.byNumber[r.account]
	switch {
	case acc == nil:
		return spec.RCInvalidCard
	case !r.amountOK || r.amount <= 0:
		return spec.RCInvalidAmount
	}
	e.Card = acc.Card
	if acc.Balance < r.amount {
		return spec.RCInsufficientFunds
	}
	acc.Balance -= r.amount
	e.Delta = -r.amount
	return spec.RCApproved
}

// reverse undoes the original named in 90, exactly once. An unknown
// original is answered 25 and remembered, so that the original, should it
// arrive after all, is refused.
func (s *Sim) reverse(e *Entry, r request) string {
	s.stats.ReversalsSeen++
	if len(r.original) != 42 || !digits(r.original) {
		return spec.RCFormatError
	}
	o := s.byKey[r.original]
	if o == nil {
		s.tombstones[r.original] = e.Time
		return spec.RCOriginalNotFound
	}
	e.Card, e.Account = o.Card, o.Account
	if o.Reversed {
		return spec.RCApproved // already reversed: nothing more to do
	}
	if r.amountOK && r.amount != o.Amount {
		return spec.RCAmountDiffers
	}
	o.Reversed, o.ReversedBy = true, e.Serial
	if o.RC != spec.RCApproved {
		return spec.RCApproved // nothing moved
	}
	acc := s.byCard[o.Card]
	switch o.Op {
	case OpPreAuth:
		// Its hold goes; a pre-auth already completed or cancelled
		// holds nothing any more.
		if o.HoldOpen {
			acc.held -= o.Amount
			o.HoldOpen = false
			e.Hold = -o.Amount
			s.stats.Reversed++
		}
		return spec.RCApproved
	case OpPreAuthCancel:
		s.restoreHold(e, o.Original)
		s.stats.Reversed++
		return spec.RCApproved
	}
	if o.Delta == 0 {
		return spec.RCApproved // nothing moved
	}
	switch o.Op {
	case OpConsume, OpLoad, OpCompletion:
		back := o.Amount - o.Returned
		acc.Balance += back
		e.Delta = back
		if o.Op == OpCompletion {
			s.restoreHold(e, o.Original)
		}
	case OpVoid, OpRefund, OpCompletionVoid:
		acc.Balance -= o.Delta
		e.Delta = -o.Delta
		if c := s.byKey[o.Original]; c != nil {
			c.Returned -= o.Delta
			if o.Op == OpVoid || o.Op == OpCompletionVoid {
				c.Voided = false
			}
		}
	default:
		return spec.RCApproved // a reversal of a reversal moves nothing
	}
	s.stats.Reversed++
	return spec.RCApproved
}

func macEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// available is what the holder may spend: the balance less the holds.
func (a *account) available() spec.Amount { return a.Balance - a.held }
