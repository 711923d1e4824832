package links

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// Destination is a link as the pipeline sees it (txn.Destination): routes
// name it by the link's name. It finds the link by name at each
// transaction, so that a reload that restarts the link (reload.go) is
// seen at once.
type Destination struct {
	m    *Manager
	name string
}

// Destinations returns one destination per link, in configuration order.
func (m *Manager) Destinations() []txn.Destination {
	names := m.Names()
	out := make([]txn.Destination, 0, len(names))
	for _, n := range names {
		out = append(out, Destination{m: m, name: n})
	}
	return out
}

// Name is the link's name.
func (d Destination) Name() string { return d.name }

// Execute forwards t on the link (see Link.Forward); the link waits for
// the gateway at most until ctx's deadline (the request's answer budget).
// While a reload
// removes or restarts the link (or once it is gone) the transaction is
// answered 91, a reversal 96, with nothing sent: the terminal repeats a
// reversal until it is answered.
func (d Destination) Execute(ctx context.Context, t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	l, ok := d.m.Link(d.name)
	if ok && l.enter() {
		defer l.leave()
		return d.execute(ctx, l, t, rec)
	}
	rc := RC91
	if t.Type == spec.Reversal {
		rc = spec.RCSystemMalfunction
	}
	return txn.Outcome{}, txn.Reject(rc, fmt.Errorf("gateway %s: %w", d.name, ErrRetired))
}

// execute forwards t on l.
func (d Destination) execute(ctx context.Context, l *Link, t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	req := &Request{Type: t.Type, Card: t.Card, Amount: int64(t.Amount), HasAmount: t.HasAmount,
		Terminal: t.Terminal, Merchant: t.Merchant, Batch: t.Batch, STAN: t.STAN, LocalDate: t.LocalDate,
		LocalTime: t.LocalTime, BusinessDate: t.BusinessDate.String(), RRN: t.RRN,
		HasOriginal: t.Original.Present, OriginalBatch: t.Original.Batch, OriginalSTAN: t.Original.STAN, OriginalRRN: t.Original.RRN,
		OriginalTerminal: t.Original.Terminal, AuthCode: t.AuthCode, ReversalReason: t.ReversalReason}
	req.Deadline, _ = ctx.Deadline()
	if t.PIN != nil {
		f, err := hsm.PINFormatFromField53(t.PIN.SecurityControl)
		if err != nil {
			return txn.Outcome{}, txn.Reject(spec.RCFormatError, err)
		}
		req.PINBlock, req.PINFormat = t.PIN.Block, f
	}
	r := recorder{rec: rec}
	_, err := l.Forward(req, &r)
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
