// Package local is the destination served by the switch's own card ledger:
// it checks the cardholder's PIN inside the HSM, maps a txn.Transaction
// to a ledger operation, runs it in the transaction's batch and maps the
// ledger's result back to an Outcome, with the one table from ledger
// declines to response codes.
package local

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
	"go.uber.org/zap"
)

// Name is the destination name routes use for the local ledger.
const Name = "local"

// Destination is the local ledger as a txn.Destination.
type Destination struct {
	ledger    *ledger.Ledger
	hsm       *hsm.HSM
	log       *zap.Logger
	originals Originals
}

// Originals finds the approved consume or completion a POS refund names
// by RRN and business date: the switch's journal indexes POS requests by
// RRN, so the ledger keeps no RRN index for them
// (docs/journal.md#what-one-consume-writes). ok is false when there is
// none.
type Originals func(rrn string, date ledger.BusinessDate) (ref ledger.TxnRef, ok bool, err error)

// New returns the local ledger destination; originals resolves POS
// refunds (JournalOriginals).
func New(l *ledger.Ledger, h *hsm.HSM, log *zap.Logger, originals Originals) *Destination {
	return &Destination{ledger: l, hsm: h, log: log, originals: originals}
}

// maxRRNEntries bounds the journal entries one refund's lookup reads: the
// original's pair comes first in sequence order, then the requests that
// name it (voids, refunds, reversals).
const maxRRNEntries = 100

// JournalOriginals resolves refunds through journal j's RRN index: the
// original is the approved consume or completion answered under that RRN
// on that business day, named by its terminal, batch and STAN.
func JournalOriginals(j *journal.Journal) Originals {
	return func(rrn string, date ledger.BusinessDate) (ledger.TxnRef, bool, error) {
		es, err := j.ByRRN(rrn, date.String(), maxRRNEntries)
		if err != nil {
			return ledger.TxnRef{}, false, err
		}
		for _, e := range es {
			if e.Direction != journal.Out || e.RRN != rrn || e.ResponseCode != spec.RCApproved ||
				(e.TxType != spec.Consume.String() && e.TxType != spec.PreAuthCompletion.String()) {
				continue
			}
			batch, err1 := strconv.ParseUint(e.Batch, 10, 32)
			stan, err2 := strconv.ParseUint(e.STAN, 10, 32)
			if err1 != nil || err2 != nil || e.Terminal == "" {
				continue
			}
			return ledger.TxnRef{Terminal: e.Terminal, Batch: uint32(batch), STAN: uint32(stan)}, true, nil
		}
		return ledger.TxnRef{}, false, nil
	}
}

// Name implements txn.Destination.
func (d *Destination) Name() string { return Name }

// Execute implements txn.Destination: the ledger writes its postings and
// idempotency record into rec's batch and calls back, under its card
// locks, into rec.Commit, which adds the journal entries and commits; the
// locks are released once the batch is durable (docs/ledger.md).
func (d *Destination) Execute(_ context.Context, t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	pin, err := d.verifyPIN(t)
	if err != nil {
		return txn.Outcome{}, err
	}
	req, err := request(t, pin)
	if err != nil {
		return txn.Outcome{}, err
	}
	if r, ok := req.(*ledger.Refund); ok && r.RRNIndexedByCaller {
		if d.originals == nil {
			return txn.Outcome{}, txn.Reject(spec.RCSystemMalfunction, errors.New("refund: no journal to find the original in"))
		}
		ref, found, err := d.originals(r.OriginalRRN, r.OriginalDate)
		if err != nil {
			return txn.Outcome{}, txn.Reject(spec.RCSystemMalfunction, fmt.Errorf("refund: original RRN %s: %w", r.OriginalRRN, err))
		}
		if found {
			r.OriginalRef = ref
		}
	}
	var out txn.Outcome
	res, err := d.ledger.Execute(req, rec.Batch(), func(res ledger.Result) error {
		out = outcome(t, res)
		d.pendingBalance(t, &out)
		return rec.Commit(out)
	})
	if c, ok := req.(*ledger.Consume); ok {
		// The ledger keeps nothing of a request once Execute returned.
		*c = ledger.Consume{}
		consumes.Put(c)
	}
	if err != nil {
		return txn.Outcome{}, err
	}
	if res.Alert {
		d.log.Warn("grey-listed card approved", zap.String("terminal", t.Terminal),
			zap.String("card", cardno.Mask(t.Card)), zap.String("rrn", t.RRN))
	}
	return out, nil
}

// outcome maps a ledger result. A reversal's answer carries no balances.
func outcome(t *txn.Transaction, res ledger.Result) txn.Outcome {
	o := txn.Outcome{ResponseCode: ResponseCode(res.Decline), Replay: res.Replay, Alert: res.Alert, LedgerRef: res.Reference}
	if res.Approved() && t.Type == spec.PendingClaim {
		moved := res.CashDelta
		o.Amount = &moved
	}
	if res.Approved() {
		o.AuthCode = res.AuthCode
		if t.Type != spec.Reversal {
			o.Balances = []txn.Balance{
				{Account: txn.CashPurse, Amount: res.Balances.Cash},
				{Account: txn.SubsidyPurse, Amount: res.Balances.Subsidy},
			}
		}
	}
	return o
}

// pendingBalance shows a balance inquiry the card's pending outside
// credits as account type 02 (docs/recharge.md#pending-loads). Field 54
// holds two entries: with credits pending it reports the cash purse and
// the pending amount, the subsidy purse on the next inquiry after the
// claim. It runs under the card's lock, before the commit.
func (d *Destination) pendingBalance(t *txn.Transaction, o *txn.Outcome) {
	if t.Type != spec.BalanceInquiry || !o.Approved() || len(o.Balances) == 0 {
		return
	}
	c, ok := d.ledger.Card(t.Card)
	if !ok || c.Pending == 0 {
		return
	}
	o.Balances = []txn.Balance{o.Balances[0], {Account: txn.PendingLoad, Amount: c.Pending}}
}

// request builds the ledger operation of a transaction. The pipeline has
// checked the fields each type needs (txn.Transaction.Check).
func request(t *txn.Transaction, pin ledger.PINOutcome) (ledger.Request, error) {
	c := ledger.Common{
		Key:      t.Key,
		Date:     t.BusinessDate,
		Terminal: t.Terminal,
		Merchant: t.Merchant,
		Batch:    t.Batch,
		STAN:     t.STAN,
		RRN:      t.RRN,
		KnownNew: t.KnownNew,
		// The pipeline's transaction record is the one duplicate record
		// (docs/ledger.md#unit-of-work).
		Deduplicated: t.Deduplicated,
		// The journal's RRN index is the one for POS requests: a refund's
		// original is found through it (Originals).
		RRNIndexedByCaller: t.Source == "pos",
		// The duplicate record is the reference index of POS requests:
		// it carries the posting set's id (txn.Outcome.LedgerRef), and
		// the ledger finds originals through it (ledger.References).
		ReferenceKeptByCaller: t.Source == "pos",
	}
	pan, amount := t.Card, t.Amount
	orig := ledger.TxnRef{Terminal: t.Terminal, Batch: t.Original.Batch, STAN: t.Original.STAN}
	switch t.Type {
	case spec.BalanceInquiry:
		return &ledger.BalanceInquiry{Common: c, PAN: pan, PIN: pin}, nil
	case spec.Consume:
		r := consumes.Get().(*ledger.Consume)
		*r = ledger.Consume{Common: c, PAN: pan, Amount: amount, PIN: pin}
		return r, nil
	case spec.ConsumeVoid:
		return &ledger.Void{Common: c, PAN: pan, Amount: amount, Original: orig, PIN: pin}, nil
	case spec.Refund:
		return &ledger.Refund{Common: c, PAN: pan, Amount: amount, OriginalRRN: t.Original.RRN,
			OriginalDate: t.Original.Date, PIN: pin}, nil
	case spec.CashLoad:
		return &ledger.CashLoad{Common: c, PAN: pan, Amount: amount, MayLoad: t.TerminalMayLoad, PIN: pin}, nil
	case spec.CashLoadVoid:
		return &ledger.CashLoadVoid{Common: c, PAN: pan, Amount: amount, Original: orig, PIN: pin}, nil
	case spec.PendingClaim:
		return &ledger.PendingClaim{Common: c, PAN: pan, MayLoad: t.TerminalMayLoad, PIN: pin}, nil
	case spec.PreAuth:
		return &ledger.PreAuth{Common: c, PAN: pan, Amount: amount, PIN: pin}, nil
	case spec.PreAuthCompletion:
		return &ledger.PreAuthCompletion{Common: c, PAN: pan, Amount: amount, AuthCode: t.AuthCode, Original: orig, PIN: pin}, nil
	case spec.PreAuthCancel:
		return &ledger.PreAuthCancel{Common: c, PAN: pan, Amount: amount, AuthCode: t.AuthCode, Original: orig, PIN: pin}, nil
	case spec.CompletionVoid:
		return &ledger.CompletionVoid{Common: c, PAN: pan, Amount: amount, AuthCode: t.AuthCode, Original: orig, PIN: pin}, nil
	case spec.Reversal:
		kind, ok := reversedKind[t.OriginalType]
		if !ok {
			return nil, txn.Reject(spec.RCInvalidTransaction, fmt.Errorf("reversal of %s", t.OriginalType))
		}
		return &ledger.Reversal{Common: c, PAN: pan, Amount: amount, OriginalKind: kind, Original: orig}, nil
	}
	return nil, txn.Reject(spec.RCFunctionNotSupported, fmt.Errorf("%s at the local ledger", t.Type))
}

// consumes keeps the ledger's consume requests for the next ones: the
// most frequent request is a consume, and the ledger is done with its
// request when Execute returns (Execute puts it back).
var consumes = sync.Pool{New: func() any { return new(ledger.Consume) }}

// reversedKind maps the type a reversal names to the ledger operation it
// undoes.
var reversedKind = map[spec.TxType]ledger.Kind{
	spec.Consume:           ledger.KindConsume,
	spec.ConsumeVoid:       ledger.KindVoid,
	spec.Refund:            ledger.KindRefund,
	spec.CashLoad:          ledger.KindCashLoad,
	spec.CashLoadVoid:      ledger.KindCashLoadVoid,
	spec.PreAuth:           ledger.KindPreAuth,
	spec.PreAuthCompletion: ledger.KindPreAuthCompletion,
	spec.PreAuthCancel:     ledger.KindPreAuthCancel,
	spec.CompletionVoid:    ledger.KindCompletionVoid,
	spec.PendingClaim:      ledger.KindPendingClaim,
}

// verifyPIN checks a PIN block inside the HSM against the card's stored
// verification value. The ledger keeps the try counter, so only the
// cardholder's outcome reaches it: a block that does not decode is a wrong
// PIN, but a PIN the switch cannot check (field 53 unreadable, a format or
// PIK algorithm the HSM does not support, a key missing) is a Rejection,
// answered before the ledger, and never costs the card a try.
func (d *Destination) verifyPIN(t *txn.Transaction) (ledger.PINOutcome, error) {
	if t.PIN == nil || len(t.PIN.Block) == 0 {
		return ledger.PINNotPresent, nil
	}
	pvv, err := d.ledger.PINVerificationValue(t.Card)
	if err != nil || len(pvv) == 0 {
		// Unknown card: the ledger declines it for what it is.
		return ledger.PINNotPresent, nil
	}
	// Field 53 names the format (digit 1) and the PIK's algorithm (digit
	// 2: 6 DES/TDES, 4 SM4), checked inside the HSM: 30 when they differ
	// (docs/pos-dialect.md#pin-blocks).
	ok, err := d.hsm.VerifyTerminalPINBlock(t.PIN.Terminal, t.PIN.Block, t.PIN.SecurityControl, t.Card, string(pvv))
	switch {
	case errors.Is(err, hsm.ErrSecurityControl):
		d.log.Info("field 53 does not match the PIN key", zap.String("terminal", t.Terminal), zap.Error(err))
		return ledger.PINNotPresent, txn.Reject(spec.RCFormatError, err)
	case errors.Is(err, hsm.ErrPINBlock):
		d.log.Info("PIN block did not decode", zap.String("terminal", t.Terminal),
			zap.String("card", cardno.Mask(t.Card)), zap.Error(err))
		return ledger.PINWrong, nil
	case errors.Is(err, hsm.ErrUnsupported):
		d.log.Warn("PIN block the HSM cannot verify", zap.String("terminal", t.Terminal), zap.Error(err))
		return ledger.PINNotPresent, txn.Reject(spec.RCFunctionNotSupported, err)
	case err != nil:
		d.log.Error("PIN verification failed", zap.String("terminal", t.Terminal), zap.Error(err))
		return ledger.PINNotPresent, txn.Reject(spec.RCSystemMalfunction, err)
	case ok:
		return ledger.PINVerified, nil
	}
	return ledger.PINWrong, nil
}

// declineRC is the one table from the ledger's decline reasons to the
// response codes of docs/pos-dialect.md. The switch's own declines (97,
// 77, A0, 94, 14 for an unrouted card, ...) are answered where they are
// decided, with the spec.RC constants.
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

// ResponseCode maps a decline reason; a reason missing from the table is
// a programming error answered as a system malfunction, never approved.
func ResponseCode(d ledger.Decline) string {
	if int(d) < len(declineRC) && declineRC[d] != "" {
		return declineRC[d]
	}
	return spec.RCSystemMalfunction
}
