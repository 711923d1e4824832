// Package txn is the switch's one internal transaction model and the seam
// between the transaction pipeline and the destinations that decide
// transactions.
//
// Each protocol adapter maps its wire message into a Transaction and an
// Outcome back into its wire answer; nothing past the adapter sees a
// field number. routing names the Destination that serves a Transaction,
// the pipeline looks the name up in its registry and calls Execute; the
// pipeline never knows which kind of destination it talks to (the local
// ledger, an outbound gateway link). docs/architecture.md draws the flow.
package txn

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
)

// Fen is an amount of money in fen (1 yuan = 100 fen), the ledger's money
// type: one named type for money from the wire to the postings.
type Fen = ledger.Fen

// Type is what a transaction asks for: the transaction table of
// docs/pos-dialect.md (spec.TxType); its String form is the stable label
// used in metrics, routes and the journal.
type Type = spec.TxType

// Transaction is one request as the pipeline and every destination see it,
// whichever protocol brought it.
type Transaction struct {
	Type Type
	// OriginalType is the type a reversal reverses (Unknown otherwise).
	OriginalType Type

	// Source names the listener the request arrived on ("pos",
	// "gateway"), for the journal and logs.
	Source string
	// Peer is the remote address of the connection.
	Peer string

	// Card is the card number (field 2, or taken from track 2). Mask it
	// with internal/cardno before logging.
	Card string
	// Amount is the amount asked for; HasAmount says whether the request
	// carried one at all (a balance inquiry does not).
	Amount    Fen
	HasAmount bool

	// Terminal and Merchant identify the acceptor (fields 41 and 42).
	Terminal string
	Merchant string
	// TerminalMayLoad is the terminal's permission to take cash loads,
	// from the terminal registry.
	TerminalMayLoad bool

	// Batch and STAN are the sender's numbering of the request; with
	// LocalDate they name it for duplicate detection.
	Batch uint32
	STAN  uint32
	// LocalDate (MMDD) and LocalTime (hhmmss) are the sender's clock.
	LocalDate string
	LocalTime string
	// BusinessDate is the switch's business day of the request.
	BusinessDate ledger.BusinessDate
	// RRN is the retrieval reference number the switch assigned.
	RRN string
	// AuthCode is the approval code the request refers to (completions
	// and cancels of a pre-authorisation), not one the switch issued.
	AuthCode string
	// Original names the transaction a void, refund, completion or
	// cancel refers to.
	Original Original
	// ReversalReason is why the sender reverses (a reversal's field 39:
	// spec.ReversalTimeout, ReversalOther, ReversalMACError), "" for
	// other types.
	ReversalReason string

	// Key names the request once and for all (terminal, batch, STAN,
	// date): a destination's idempotency key.
	Key string
	// KnownNew is the pipeline's guarantee that no request with this Key
	// was decided before (the terminal's trace-number watermark is below
	// it), so a destination may skip its own idempotency lookup. False is
	// always safe.
	KnownNew bool
	// Deduplicated says the pipeline keeps the transaction's one record
	// (request, answer and fingerprint under Key, docs/journal.md) and
	// answers every repeated Key from it before any destination: a
	// destination keeps no idempotency record of its own.
	Deduplicated bool

	// PIN is the encrypted PIN block, nil when the request carries none.
	PIN *PINBlock

	// Institution, Order and HolderName are an outside institution's
	// request (docs/recharge.md): the institution (gateway field 32), its
	// order number (field 48 tag ON) and, for an account verification,
	// the holder's name to match (tag NM). "" for other requests.
	Institution string
	Order       string
	HolderName  string
}

// Original is the original-transaction data of a request (POS field 61,
// with field 37 for a refund).
type Original struct {
	Present bool
	Batch   uint32
	STAN    uint32
	// Date is the original's business date, when the request lets the
	// adapter work it out (a refund's RRN or MMDD); 0 otherwise.
	Date ledger.BusinessDate
	// RRN is the original's retrieval reference number (refunds).
	RRN string
	// Terminal is the terminal the original was made at when it is not
	// this one: a completion or cancel at another terminal of the
	// merchant of a pre-auth forwarded on a gateway link
	// (docs/gateway-links.md); "" for this terminal.
	Terminal string
}

// PINBlock is an encrypted PIN block as the terminal sent it, under the
// terminal's current PIK. It never holds a clear PIN, and it prints as a
// placeholder so that it cannot reach a log by accident.
type PINBlock struct {
	// Terminal owns the PIK the block is encrypted under.
	Terminal string
	// Block is the encrypted block (field 52).
	Block []byte
	// SecurityControl is POS field 53: its first digit names the PIN
	// block format (hsm.PINFormatFromField53).
	SecurityControl string
}

// String never shows the block.
func (p *PINBlock) String() string { return "PINBlock(redacted)" }

// GoString never shows the block either (%#v).
func (p *PINBlock) GoString() string { return p.String() }

// Account names a balance of an Outcome: the account types of field 54
// (docs/pos-dialect.md, field 54).
type Account string

// Accounts an Outcome may report.
const (
	CashPurse    Account = spec.AccountCashPurse    // "00"
	SubsidyPurse Account = spec.AccountSubsidyPurse // "01"
	// PendingLoad is outside credits waiting for a load terminal's claim
	// (docs/recharge.md#pending-loads).
	PendingLoad Account = spec.AccountPendingLoad // "02"
)

// Balance is one balance after the transaction.
type Balance struct {
	Account Account
	Amount  Fen
}

// Outcome is a destination's decision on a transaction.
type Outcome struct {
	// ResponseCode is the answer's field 39 (spec.RC...): approved or the
	// one code of the decline.
	ResponseCode string
	// AuthCode is the approval code issued (field 38), "" when none.
	AuthCode string
	// Balances are the balances after the transaction, in answer order;
	// empty when there are none to report.
	Balances []Balance
	// Amount, when set, is the answer's field 4: what the transaction
	// actually moved (a pending-load claim, docs/recharge.md).
	Amount *Fen
	// SettlementDate is the business date the transaction settles on
	// (field 15); 0 means the transaction's own business date.
	SettlementDate ledger.BusinessDate
	// Replay is set when the outcome is the stored answer to an earlier
	// request with the same Key.
	Replay bool
	// Alert asks the pipeline to raise an operator alert (a grey-listed
	// card was approved).
	Alert bool
	// RRN is the retrieval reference number of the answer when the
	// destination assigns its own (an outside institution's credit or
	// reversal, docs/recharge.md); "" otherwise.
	RRN string
	// Order is an outside institution's order as an order query found it
	// (docs/recharge.md); nil otherwise.
	Order *OrderState
	// LedgerRef is the ledger's posting set the transaction's terminal
	// reference names (ledger.Result.Reference), 0 for none: the
	// pipeline's record of the transaction keeps it, as the ledger's
	// reference index for POS requests (docs/journal.md).
	LedgerRef uint64
}

// OrderState is what an order query answers about an outside
// institution's order (docs/recharge.md, "Order query").
type OrderState struct {
	// State is the order's state: A approved, D declined, R reversed.
	State byte
	// RC is a declined order's response code.
	RC     string
	Card   string
	Amount Fen
}

// Approved reports whether the outcome approves the transaction.
func (o Outcome) Approved() bool { return o.ResponseCode == spec.RCApproved }

// Record is the pipeline's record step, handed to a destination for the
// one transaction it executes. All the writes of one transaction go into
// one Pebble batch (docs/architecture.md, "One unit of work per
// transaction"): the destination's own (postings, idempotency record, a
// link's STAN mapping or its reversal queued for store-and-forward) and
// the pipeline's (request and response journal entries, the stored
// response for duplicates). Commit adds the pipeline's part and commits
// the batch synced.
type Record interface {
	// Batch is the transaction's batch. A destination adds its writes
	// before it calls Commit; it never commits the batch itself.
	Batch() *pebble.Batch
	// Commit records outcome: it builds and MACs the answer, journals the
	// request and answer, stores the answer for duplicates, and commits
	// the batch with sync. When it returns nil the batch is durable; a
	// destination holding locks on what it wrote releases them only then.
	// It must be called at most once.
	Commit(Outcome) error
}

// Destination decides transactions: the local ledger, an outbound gateway
// link. routing names it; the pipeline calls Execute and never asks which
// kind it is.
//
// Execute either decides the transaction, calls rec.Commit(outcome)
// exactly once and returns that outcome with a nil error, or returns an
// error without calling Commit and without leaving anything of its own
// to be committed: then nothing happened, and the pipeline answers the
// error's response code (ResponseCodeOf) and stores nothing for
// duplicates, so a retransmission is decided afresh.
//
// A destination that must make something durable before it can decide
// (a link journals an outgoing request, synced, before sending it:
// docs/architecture.md, "Destinations") commits that in its own batch
// first, and adds what follows from the answer (its answer's journal
// entries, a reversal queued after a timeout) to rec.Batch() before
// Commit, so the answer to the terminal and the destination's state
// become durable together.
type Destination interface {
	// Name is the name routes use in "destination".
	Name() string
	// Execute decides t; see the type's comment for the contract.
	Execute(ctx context.Context, t *Transaction, rec Record) (Outcome, error)
}

// Rejection is an error that answers a transaction with a response code
// without deciding it: a PIN the switch cannot check (30, 40), a
// destination that is down before anything was sent (91).
type Rejection struct {
	ResponseCode string
	Err          error
}

func (r *Rejection) Error() string {
	if r.Err == nil {
		return "rejected with response code " + r.ResponseCode
	}
	return fmt.Sprintf("rejected with response code %s: %v", r.ResponseCode, r.Err)
}

func (r *Rejection) Unwrap() error { return r.Err }

// Reject returns a Rejection answering rc because of err.
func Reject(rc string, err error) error { return &Rejection{ResponseCode: rc, Err: err} }

// ResponseCodeOf is the answer to a destination's error: the Rejection's
// response code, or 96 (system malfunction) for any other error.
func ResponseCodeOf(err error) string {
	var r *Rejection
	if errors.As(err, &r) && r.ResponseCode != "" {
		return r.ResponseCode
	}
	return spec.RCSystemMalfunction
}

// ErrNotRecorded is what the pipeline reports when a destination returned
// without error but never called Commit: a broken destination, answered
// 96.
var ErrNotRecorded = errors.New("txn: destination returned an outcome without recording it")

// Registry maps destination names to destinations. It is built once at
// start and read without locks.
type Registry struct {
	byName map[string]Destination
	names  []string
}

// NewRegistry registers destinations under their names; a name used twice
// or an empty one is an error.
func NewRegistry(ds ...Destination) (*Registry, error) {
	r := &Registry{byName: make(map[string]Destination, len(ds))}
	for _, d := range ds {
		if d == nil {
			return nil, errors.New("txn: nil destination")
		}
		n := d.Name()
		if n == "" {
			return nil, errors.New("txn: destination without a name")
		}
		if _, dup := r.byName[n]; dup {
			return nil, fmt.Errorf("txn: destination %q registered twice", n)
		}
		r.byName[n] = d
		r.names = append(r.names, n)
	}
	return r, nil
}

// Names lists the registered names, in registration order (for
// routing.New).
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// Get returns the destination registered as name.
func (r *Registry) Get(name string) (Destination, bool) {
	d, ok := r.byName[name]
	return d, ok
}

// Check answers a transaction that lacks what its type needs before any
// destination sees it: 13 without an amount (every type but a balance
// inquiry), 30 without the original data a void, refund, completion or
// cancel refers to. "" when nothing is missing.
func (t *Transaction) Check() string {
	noAmount := t.Type == spec.BalanceInquiry || t.Type == spec.PendingClaim ||
		(t.Type == spec.Reversal && t.OriginalType == spec.PendingClaim)
	if !noAmount && !t.HasAmount {
		return spec.RCInvalidAmount
	}
	switch t.Type {
	case spec.ConsumeVoid, spec.CashLoadVoid:
		if !t.Original.Present {
			return spec.RCFormatError
		}
	case spec.Refund:
		if !t.Original.Present || t.Original.Date == 0 || t.Original.RRN == "" {
			return spec.RCFormatError
		}
	case spec.PreAuthCompletion, spec.PreAuthCancel, spec.CompletionVoid:
		if !t.Original.Present || t.AuthCode == "" {
			return spec.RCFormatError
		}
	}
	return ""
}
