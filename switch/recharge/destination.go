package recharge

import (
	"context"
	"errors"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
)

// DestinationName is the name the service is reached under as a
// txn.Destination.
const DestinationName = "recharge"

// Name makes the service a txn.Destination.
func (s *Service) Name() string { return DestinationName }

// errUndecided is the rejection of a request the service answered
// without recording it (a credit or reversal naming no configured
// institution).
var errUndecided = errors.New("recharge: answered without a record")

// Execute decides an outside institution's request (docs/recharge.md) as
// a txn.Destination: t.Type is one of spec.RechargeVerify,
// RechargeCredit, RechargeQuery or RechargeReversal. A credit or reversal
// writes the order, the postings and the daily total into a batch of its
// own, under the service's order and card locks, and hands them to
// rec.Batch() at the moment of rec.Commit, so that money, order and the
// exchange's journal entries stay one synced unit of work. Every amount
// is CNY: the protocol answers another currency before it maps a request.
func (s *Service) Execute(_ context.Context, t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	r := Request{Institution: t.Institution, Order: t.Order, PAN: t.Card, Amount: t.Amount,
		HasAmount: t.HasAmount, Currency: spec.GWCurrencyCNY, Name: t.HolderName}
	switch t.Type {
	case spec.RechargeVerify:
		r.ProcCode = ProcVerify
		return recordOnly(rec, s.Verify(r))
	case spec.RechargeQuery:
		r.ProcCode = ProcQuery
		out, err := s.Query(r)
		if err != nil {
			return txn.Outcome{}, err
		}
		return recordOnly(rec, out)
	case spec.RechargeCredit, spec.RechargeReversal:
		r.ProcCode = ProcCredit
	default:
		return txn.Outcome{}, txn.Reject(spec.RCFunctionNotSupported, errors.New("recharge: not an institution's request"))
	}
	var recorded *txn.Outcome
	commit := func(b *pebble.Batch, out Outcome) error {
		if err := rec.Batch().Apply(b, nil); err != nil {
			return err
		}
		o := outcomeTxn(out)
		if err := rec.Commit(o); err != nil {
			return err
		}
		recorded = &o
		return nil
	}
	var out Outcome
	var err error
	if t.Type == spec.RechargeCredit {
		out, err = s.Credit(r, commit)
	} else {
		out, err = s.Reverse(r, commit)
	}
	if err != nil {
		return txn.Outcome{}, err
	}
	if recorded == nil {
		return txn.Outcome{}, txn.Reject(out.RC, errUndecided)
	}
	return *recorded, nil
}

// recordOnly records the outcome of a request that moves no money.
func recordOnly(rec txn.Record, out Outcome) (txn.Outcome, error) {
	o := outcomeTxn(out)
	if err := rec.Commit(o); err != nil {
		return txn.Outcome{}, err
	}
	return o, nil
}

// outcomeTxn is out as a txn.Outcome: an approved credit's purses as
// balances (cash, then subsidy), an order query's state as Order.
func outcomeTxn(out Outcome) txn.Outcome {
	o := txn.Outcome{ResponseCode: out.RC, AuthCode: out.AuthCode, RRN: out.RRN, Replay: out.Replayed}
	if out.Balances != nil {
		o.Balances = []txn.Balance{{Account: txn.CashPurse, Amount: out.Balances.Cash},
			{Account: txn.SubsidyPurse, Amount: out.Balances.Subsidy}}
	}
	if out.Status != 0 {
		o.Order = &txn.OrderState{State: byte(out.Status), RC: out.StatusRC, Card: out.PAN, Amount: out.Amount}
	}
	return o
}
