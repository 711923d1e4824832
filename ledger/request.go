package ledger

import (
	"fmt"
	"hash/fnv"
)

// Bounds on request fields (the POS dialect's own sizes, docs/pos-dialect.md#fields).
const (
	MaxKeyLen      = 64 // idempotency key
	maxPANLen      = 19
	minPANLen      = 12
	maxTerminalLen = 8
	maxMerchantLen = 15
	maxRRNLen      = 12
	maxSixDigits   = 999999
	authCodeLen    = 6
)

// Common carries what every POS or gateway request has. The switch fills it
// from the message: Key is its idempotency key (for POS: terminal + batch +
// STAN + date; for a gateway: gateway + reference), Date the business date.
// The ledger namespaces keys by operation kind, so a reversal may reuse the
// original's terminal/batch/STAN/date as its key.
type Common struct {
	Key      string
	Date     BusinessDate
	Terminal string // field 41
	Merchant string // field 42
	Batch    uint32 // 60.2
	STAN     uint32 // field 11
	RRN      string // field 37 as the switch assigned it
	// KnownNew is the caller's guarantee that no request with this Key
	// was executed before: the switch knows it from the terminal's
	// trace-number watermark. The ledger then skips its idempotency
	// lookup, a point read on every transaction. Leave it false unless
	// that guarantee holds: a false KnownNew is always safe.
	KnownNew bool
	// Deduplicated says the caller keeps the one record of this request
	// and answers a repeated Key itself, before the ledger is asked (the
	// switch's transaction record, docs/journal.md): the ledger then
	// neither looks up nor writes an idempotency record for it, and a
	// repeated Key reaching it is executed as a new request. Leave it
	// false unless that holds.
	Deduplicated bool
	// RRNIndexedByCaller says the caller indexes this request's RRN
	// itself (the switch's journal, docs/journal.md) and resolves a
	// refund's original RRN to its reference (Refund.OriginalRef): the
	// ledger then writes no RRN index record ('l n') for it. Leave it
	// false unless that holds: refunds and PostingByRRN find only what
	// the RRN index names.
	RRNIndexedByCaller bool
	// ReferenceKeptByCaller says the caller indexes this request's
	// terminal reference (Terminal, Batch, STAN) itself: the ledger then
	// writes no reference record ('l r') for it and names the posting set
	// in Result.Reference, which the caller records (the switch's
	// duplicate record, docs/journal.md) and hands back through the
	// References the ledger was given (UseReferences) when a void,
	// reversal, refund or batch total looks the reference up. Leave it
	// false unless that holds: an original the caller did not record is
	// not found.
	ReferenceKeptByCaller bool
}

// TxnRef names an earlier transaction the way a POS terminal does: its
// terminal, batch and STAN (field 61 carries batch and STAN; the terminal is
// the requesting one).
type TxnRef struct {
	Terminal string
	Batch    uint32
	STAN     uint32
}

func (r TxnRef) String() string { return fmt.Sprintf("%s/%06d/%06d", r.Terminal, r.Batch, r.STAN) }

// Request is one ledger operation; the concrete types below implement it.
type Request interface {
	Kind() Kind
	common() *Common
	pan() string
	// fingerprint folds the business content (not the PIN outcome) into h,
	// so a replay with the same key but different content is detected.
	fingerprint(h *fp)
}

// BalanceInquiry reads the balances of a card (0200, processing code 31).
type BalanceInquiry struct {
	Common
	PAN string
	PIN PINOutcome
}

// Consume debits a card for a purchase at Merchant: subsidy first (only at
// on-campus merchants), then cash, plus the card's service fee.
type Consume struct {
	Common
	PAN    string
	Amount Fen
	PIN    PINOutcome
}

// Void cancels an approved consume of the same business day, terminal and
// batch, for the full amount, back to the purses it came from.
type Void struct {
	Common
	PAN      string
	Amount   Fen
	Original TxnRef
	PIN      PINOutcome
}

// Refund returns part or all of an approved consume, found by its RRN and
// business date, within the refund window.
type Refund struct {
	Common
	PAN          string
	Amount       Fen
	OriginalRRN  string
	OriginalDate BusinessDate
	// OriginalRef, when the caller resolved OriginalRRN itself (its
	// originals were executed with RRNIndexedByCaller), is the original's
	// reference: used when no RRN index record names the original, and
	// only if the posting it names carries OriginalRRN and OriginalDate.
	OriginalRef TxnRef
	PIN         PINOutcome
}

// CashLoad credits a card with cash paid at a kiosk. MayLoad is the switch's
// statement that the terminal is load-enabled; without it the load is
// declined (58).
type CashLoad struct {
	Common
	PAN     string
	Amount  Fen
	MayLoad bool
	PIN     PINOutcome
}

// CashLoadVoid cancels an approved cash load of the same day, terminal and
// batch.
type CashLoadVoid struct {
	Common
	PAN      string
	Amount   Fen
	Original TxnRef
	PIN      PINOutcome
}

// PreAuth places a hold on a card's available balance until completion,
// cancel or expiry.
type PreAuth struct {
	Common
	PAN    string
	Amount Fen
	PIN    PINOutcome
}

// PreAuthCompletion turns a hold, named by its auth code, into a debit of
// Amount (at most the held amount); the rest of the hold is released.
type PreAuthCompletion struct {
	Common
	PAN      string
	Amount   Fen
	AuthCode string
	Original TxnRef
	PIN      PINOutcome
}

// PreAuthCancel releases a hold named by its auth code; Amount must be the
// held amount.
type PreAuthCancel struct {
	Common
	PAN      string
	Amount   Fen
	AuthCode string
	Original TxnRef
	PIN      PINOutcome
}

// CompletionVoid cancels an approved completion of the same day, terminal
// and batch; the hold it consumed is restored.
type CompletionVoid struct {
	Common
	PAN      string
	Amount   Fen
	AuthCode string
	Original TxnRef
	PIN      PINOutcome
}

// Reversal undoes exactly the original named by Original and OriginalKind.
// An unknown original is an approved no-op, and a repeated reversal gets the
// same answer (docs/pos-dialect.md#rules).
type Reversal struct {
	Common
	PAN          string
	Amount       Fen
	Original     TxnRef
	OriginalKind Kind
}

func (r *BalanceInquiry) Kind() Kind    { return KindBalanceInquiry }
func (r *Consume) Kind() Kind           { return KindConsume }
func (r *Void) Kind() Kind              { return KindVoid }
func (r *Refund) Kind() Kind            { return KindRefund }
func (r *CashLoad) Kind() Kind          { return KindCashLoad }
func (r *CashLoadVoid) Kind() Kind      { return KindCashLoadVoid }
func (r *PreAuth) Kind() Kind           { return KindPreAuth }
func (r *PreAuthCompletion) Kind() Kind { return KindPreAuthCompletion }
func (r *PreAuthCancel) Kind() Kind     { return KindPreAuthCancel }
func (r *CompletionVoid) Kind() Kind    { return KindCompletionVoid }
func (r *Reversal) Kind() Kind          { return KindReversal }

func (r *BalanceInquiry) common() *Common    { return &r.Common }
func (r *Consume) common() *Common           { return &r.Common }
func (r *Void) common() *Common              { return &r.Common }
func (r *Refund) common() *Common            { return &r.Common }
func (r *CashLoad) common() *Common          { return &r.Common }
func (r *CashLoadVoid) common() *Common      { return &r.Common }
func (r *PreAuth) common() *Common           { return &r.Common }
func (r *PreAuthCompletion) common() *Common { return &r.Common }
func (r *PreAuthCancel) common() *Common     { return &r.Common }
func (r *CompletionVoid) common() *Common    { return &r.Common }
func (r *Reversal) common() *Common          { return &r.Common }

func (r *BalanceInquiry) pan() string    { return r.PAN }
func (r *Consume) pan() string           { return r.PAN }
func (r *Void) pan() string              { return r.PAN }
func (r *Refund) pan() string            { return r.PAN }
func (r *CashLoad) pan() string          { return r.PAN }
func (r *CashLoadVoid) pan() string      { return r.PAN }
func (r *PreAuth) pan() string           { return r.PAN }
func (r *PreAuthCompletion) pan() string { return r.PAN }
func (r *PreAuthCancel) pan() string     { return r.PAN }
func (r *CompletionVoid) pan() string    { return r.PAN }
func (r *Reversal) pan() string          { return r.PAN }

// fp is an FNV-1a fingerprint of a request's content.
// fp accumulates a request's fingerprint; buf holds a typical request so
// encoding it does not grow the slice.
type fp struct {
	e   encoder
	buf [160]byte
}

func (h *fp) sum() uint64 {
	f := fnv.New64a()
	f.Write(h.e.b)
	return f.Sum64()
}

func (c *Common) fp(h *fp) {
	h.e.str(c.Terminal)
	h.e.str(c.Merchant)
	h.e.u(uint64(c.Batch))
	h.e.u(uint64(c.STAN))
	h.e.date(c.Date)
}

func (r TxnRef) fp(h *fp) { h.e.str(r.Terminal); h.e.u(uint64(r.Batch)); h.e.u(uint64(r.STAN)) }

// cardAmount is the part most requests share: the common fields, the card
// and the amount, in that order (the order is part of stored fingerprints).
func (c *Common) cardAmount(h *fp, pan string, amount Fen) { c.fp(h); h.e.str(pan); h.e.fen(amount) }

// holdOp fingerprints the operations on a pre-auth hold.
func (c *Common) holdOp(h *fp, pan string, amount Fen, code string, orig TxnRef) {
	c.cardAmount(h, pan, amount)
	h.e.str(code)
	orig.fp(h)
}

func (r *BalanceInquiry) fingerprint(h *fp) { r.Common.fp(h); h.e.str(r.PAN) }
func (r *Consume) fingerprint(h *fp)        { r.cardAmount(h, r.PAN, r.Amount) }
func (r *Void) fingerprint(h *fp)           { r.cardAmount(h, r.PAN, r.Amount); r.Original.fp(h) }
func (r *Refund) fingerprint(h *fp) {
	r.cardAmount(h, r.PAN, r.Amount)
	h.e.str(r.OriginalRRN)
	h.e.date(r.OriginalDate)
}
func (r *CashLoad) fingerprint(h *fp)     { r.cardAmount(h, r.PAN, r.Amount) }
func (r *CashLoadVoid) fingerprint(h *fp) { r.cardAmount(h, r.PAN, r.Amount); r.Original.fp(h) }
func (r *PreAuth) fingerprint(h *fp)      { r.cardAmount(h, r.PAN, r.Amount) }
func (r *PreAuthCompletion) fingerprint(h *fp) {
	r.holdOp(h, r.PAN, r.Amount, r.AuthCode, r.Original)
}
func (r *PreAuthCancel) fingerprint(h *fp) { r.holdOp(h, r.PAN, r.Amount, r.AuthCode, r.Original) }
func (r *CompletionVoid) fingerprint(h *fp) {
	r.holdOp(h, r.PAN, r.Amount, r.AuthCode, r.Original)
}
func (r *Reversal) fingerprint(h *fp) {
	r.Common.fp(h)
	h.e.str(r.PAN)
	r.Original.fp(h)
	h.e.byte1(uint8(r.OriginalKind))
}

// validate checks the structural bounds every request must meet. Business
// checks (amount > 0, card state) are declines, not errors.
func validate(req Request) error {
	c := req.common()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidRequest, req.Kind(), fmt.Sprintf(format, args...))
	}
	switch {
	case len(c.Key) == 0 || len(c.Key) > MaxKeyLen:
		return bad("idempotency key length %d not in 1..%d", len(c.Key), MaxKeyLen)
	case !c.Date.Valid():
		return bad("business date %d invalid", uint32(c.Date))
	case len(c.Terminal) > maxTerminalLen:
		return bad("terminal id longer than %d", maxTerminalLen)
	case len(c.Merchant) > maxMerchantLen:
		return bad("merchant id longer than %d", maxMerchantLen)
	case len(c.RRN) > maxRRNLen:
		return bad("RRN longer than %d", maxRRNLen)
	case c.Batch > maxSixDigits || c.STAN > maxSixDigits:
		return bad("batch or STAN above %d", maxSixDigits)
	case len(req.pan()) > maxPANLen:
		return bad("card number longer than %d", maxPANLen)
	}
	var ref *TxnRef
	switch r := req.(type) {
	case *Void:
		ref = &r.Original
	case *CashLoadVoid:
		ref = &r.Original
	case *CompletionVoid:
		ref = &r.Original
	case *PreAuthCompletion:
		ref = &r.Original
	case *PreAuthCancel:
		ref = &r.Original
	case *Reversal:
		ref = &r.Original
	case *Refund:
		if len(r.OriginalRRN) > maxRRNLen {
			return bad("original RRN longer than %d", maxRRNLen)
		}
		ref = &r.OriginalRef
	}
	if ref != nil && (len(ref.Terminal) > maxTerminalLen || ref.Batch > maxSixDigits || ref.STAN > maxSixDigits) {
		return bad("original reference %s out of bounds", ref)
	}
	return nil
}

// Balances are a card's purses after an operation (docs/pos-dialect.md#field-54-responses).
// Held is the sum of open pre-auth holds; Available is what the card may
// still spend: Cash + Subsidy - Held.
type Balances struct {
	Cash      Fen
	Subsidy   Fen
	Held      Fen
	Available Fen
}

// Result is the ledger's answer to one operation.
type Result struct {
	Kind    Kind
	Decline Decline // Approved when the operation was approved
	// TxID identifies the posting set (0 when nothing was posted).
	TxID uint64
	// CashDelta and SubsidyDelta are the signed changes of the card's purses
	// (negative for debits), Fee the service fee included in the debit.
	CashDelta    Fen
	SubsidyDelta Fen
	Fee          Fen
	Balances     Balances
	// AuthCode is the six-digit approval code (field 38); for a pre-auth it
	// also names the hold.
	AuthCode string
	// Alert is set when the card is on the grey list: approved, but the
	// switch should raise an alert.
	Alert bool
	// Replay is set when the result is the stored answer to an earlier
	// request with the same idempotency key.
	Replay bool
	// NoOp is set on an approved reversal that found nothing to undo.
	NoOp bool
	// Reference is, for a request with ReferenceKeptByCaller, the posting
	// set its terminal reference names, for the caller to record (0: none
	// — a decline, an inquiry, a reversal). Not stored: a replayed result
	// has none.
	Reference uint64
}

// Approved reports whether the operation was approved.
func (r Result) Approved() bool { return r.Decline == Approved }

func (r *Result) encode(e *encoder) {
	e.byte1(uint8(r.Kind))
	e.byte1(uint8(r.Decline))
	e.u(r.TxID)
	e.fen(r.CashDelta)
	e.fen(r.SubsidyDelta)
	e.fen(r.Fee)
	e.fen(r.Balances.Cash)
	e.fen(r.Balances.Subsidy)
	e.fen(r.Balances.Held)
	e.fen(r.Balances.Available)
	e.str(r.AuthCode)
	e.boolean(r.Alert)
	e.boolean(r.NoOp)
}

func (r *Result) decode(d *decoder) {
	r.Kind = Kind(d.byte1())
	r.Decline = Decline(d.byte1())
	r.TxID = d.u()
	r.CashDelta = d.fen()
	r.SubsidyDelta = d.fen()
	r.Fee = d.fen()
	r.Balances.Cash = d.fen()
	r.Balances.Subsidy = d.fen()
	r.Balances.Held = d.fen()
	r.Balances.Available = d.fen()
	r.AuthCode = d.str()
	r.Alert = d.boolean()
	r.NoOp = d.boolean()
	if d.err == nil && (r.Kind == 0 || r.Kind >= kindCount || r.Decline >= declineCount) {
		d.fail("bad result kind or reason")
	}
}
