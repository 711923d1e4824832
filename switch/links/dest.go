package links

import (
	"context"
	"errors"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// Destination is a link as the pipeline sees it (txn.Destination): routes
// name it by the link's name.
type Destination struct{ l *Link }

// Destinations returns one destination per link, in configuration order.
func (m *Manager) Destinations() []txn.Destination {
	out := make([]txn.Destination, 0, len(m.order))
	for _, n := range m.order {
		out = append(out, Destination{l: m.links[n]})
	}
	return out
}

// Name is the link's name.
func (d Destination) Name() string { return d.l.cfg.Name }

// Execute forwards t on the link (see Link.Forward).
// The link waits for the gateway at most until ctx's deadline (the
// request's answer budget).
func (d Destination) Execute(ctx context.Context, t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	req := &Request{Type: t.Type, Card: t.Card, Amount: int64(t.Amount), HasAmount: t.HasAmount,
		Terminal: t.Terminal, Merchant: t.Merchant, Batch: t.Batch, STAN: t.STAN, LocalDate: t.LocalDate,
		LocalTime: t.LocalTime, BusinessDate: t.BusinessDate.String(), RRN: t.RRN,
		HasOriginal: t.Original.Present, OriginalBatch: t.Original.Batch, OriginalSTAN: t.Original.STAN,
		AuthCode: t.AuthCode, ReversalReason: t.ReversalReason}
	req.Deadline, _ = ctx.Deadline()
	if t.PIN != nil {
		f, err := hsm.PINFormatFromField53(t.PIN.SecurityControl)
		if err != nil {
			return txn.Outcome{}, txn.Reject(spec.RCFormatError, err)
		}
		req.PINBlock, req.PINFormat = t.PIN.Block, f
	}
	r := recorder{rec: rec}
	_, err := d.l.Forward(req, &r)
	var rj *Rejected
	if errors.As(err, &rj) {
		return txn.Outcome{}, txn.Reject(rj.ResponseCode, rj.Err)
	}
	if err != nil {
		return txn.Outcome{}, err
	}
	return r.out, nil
}

// recorder adapts the pipeline's record step.
type recorder struct {
	rec txn.Record
	out txn.Outcome
}

func (r *recorder) Batch() *pebble.Batch { return r.rec.Batch() }

func (r *recorder) Commit(res Result) error {
	o := txn.Outcome{ResponseCode: res.ResponseCode, AuthCode: res.AuthCode}
	for _, b := range res.Balances {
		if b.AmountType == spec.AmountTypeAvailable {
			o.Balances = append(o.Balances, txn.Balance{Account: txn.Account(b.AccountType), Amount: txn.Fen(b.Amount)})
		}
	}
	r.out = o
	return r.rec.Commit(o)
}
