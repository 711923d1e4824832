package gwsim

import (
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// Op is what a financial request asked the bank to do.
type Op string

// Operations (docs/gateway-links.md, financial messages).
const (
	OpConsume     Op = "consume"       // 0200, 3 = 000000: debit the card's holder, PIN verified
	OpBalance     Op = "balance"       // 0200, 3 = 310000
	OpVoid        Op = "void"          // 0200, 3 = 200000, 90 = the consume
	OpRefund      Op = "refund"        // 0220, 3 = 200000, 90 = the consume
	OpLoad        Op = "transfer_load" // 0200, 3 = 400000: debit the account in 102
	OpReversal    Op = "reversal"      // 0420/0421 (0400/0401), 90 = the original
	OpUnsupported Op = "unsupported"   // answered 40
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
	Reversed     bool        `json:"reversed"`
	ReversedBy   string      `json:"reversed_by,omitempty"` // serial of the reversal
	Returned     spec.Amount `json:"returned_fen"`          // consumes: voided or refunded so far
	Voided       bool        `json:"voided"`
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
	e.Op = classify(r.mti, r.processing)
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

func classify(mti, pc string) Op {
	switch {
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
	case acc.Balance < r.amount:
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

// originalConsume finds the approved consume a void or refund names.
func (s *Sim) originalConsume(r request) (*Entry, string) {
	o := s.byKey[r.original]
	if len(r.original) != 42 || o == nil || o.Op != OpConsume || o.RC != spec.RCApproved ||
		(r.card != "" && r.card != o.Card) {
		return nil, spec.RCOriginalNotFound
	}
	if o.Reversed || o.Voided {
		return nil, spec.RCInvalidTransaction
	}
	return o, ""
}

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
	if o.RC != spec.RCApproved || o.Delta == 0 {
		return spec.RCApproved // nothing moved
	}
	acc := s.byCard[o.Card]
	switch o.Op {
	case OpConsume, OpLoad:
		back := o.Amount - o.Returned
		acc.Balance += back
		e.Delta = back
	case OpVoid, OpRefund:
		acc.Balance -= o.Delta
		e.Delta = -o.Delta
		if c := s.byKey[o.Original]; c != nil {
			c.Returned -= o.Delta
			if o.Op == OpVoid {
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
