package links

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// TransferRequest is the bank leg of a bank-transfer load at a kiosk
// (docs/recharge.md, docs/gateway-links.md): a debit of the card holder's
// bound bank account, sent on the link the binding names. Request holds
// the terminal's numbering, the amount and the RRN; its Card and PIN are
// not used (field 2 is the bound bank card, and the leg carries no PIN:
// the binding agreement authorises the debit, the campus card's PIN is
// checked by the switch).
type TransferRequest struct {
	Request
	// BankCard is field 2, Account field 102 (authoritative for the
	// bank), CampusCard field 103.
	BankCard, Account, CampusCard string
}

// TransferRecorder is the switch's half of a transfer load: it records
// the bank's answer together with the card's credit.
type TransferRecorder interface {
	// Batch is the transaction's batch (see Recorder).
	Batch() *pebble.Batch
	// Commit records the bank's answer res (98 when none came; the
	// debit's reversal is then already queued in Batch). For an approved
	// debit it credits the card in Batch before committing; when the card
	// cannot take the money it calls reverse, which queues the debit's
	// reversal (0420) into Batch, and commits its decline. Either way one
	// synced batch holds the bank's answer, the link mapping, the credit
	// or the reversal, and the terminal's answer.
	Commit(res Result, reverse func() error) error
}

// Transfer sends the bank leg of a transfer load and records the answer
// with rec (docs/gateway-links.md, "Write-ahead"): the outgoing request is
// journaled, synced, before it is sent; on no answer its reversal is
// queued for store-and-forward and the terminal is answered 98. It waits
// at most until req.Deadline (the terminal's answer budget). A Rejected
// error means nothing was sent.
func (l *Link) Transfer(req *TransferRequest, rec TransferRecorder) (Result, error) {
	// A reload removing or restarting the link waits for the leg (reload.go).
	if !l.enter() {
		return Result{}, reject(RC91, fmt.Errorf("gateway %s: %w", l.cfg.Name, ErrRetired))
	}
	defer l.leave()
	c, err := l.connWithin(req.within)
	if err != nil {
		return Result{}, err
	}
	lr := &journal.LinkRequest{Link: l.cfg.Name, Amount: req.Amount, Card: req.BankCard, Terminal: req.Terminal,
		Merchant: req.Merchant, Batch: n6(req.Batch), LocalSTAN: n6(req.STAN), RRN: req.RRN,
		Acquirer: l.cfg.AcquirerID, Forwarding: l.cfg.ForwardingID, BusinessDate: req.BusinessDate,
		TxType: spec.TransferLoad.String(), State: journal.LinkSent, Created: l.now().UTC()}
	out, err := l.buildTransfer(req, lr)
	if err != nil {
		return Result{}, err
	}
	resp, release, err := l.sendWriteAhead(c, out, lr, 0, req.within)
	if err != nil && !errors.Is(err, ErrNoAnswer) {
		return Result{}, err
	}
	defer release()
	if err != nil {
		l.m.Requests.WithLabelValues(l.cfg.Name, "timeout").Inc()
		l.log.Warn("transfer leg unanswered; reversal queued, terminal answered 98", zap.String("stan", lr.STAN),
			zap.String("rrn", lr.RRN), zap.String("pan", cardno.Mask(req.CampusCard)), zap.Error(err))
		if err := l.queueReversal(rec.Batch(), lr, spec.ReversalTimeout); err != nil {
			return Result{}, err
		}
		res := Result{ResponseCode: spec.RCNoAnswer}
		return res, rec.Commit(res, nil)
	}
	l.m.Requests.WithLabelValues(l.cfg.Name, "answered").Inc()
	res := answerOf(resp)
	res.Balances = nil // the bank account's balance is not the card's
	lr.State, lr.ResponseCode, lr.AuthCode = journal.LinkAnswered, res.ResponseCode, res.AuthCode
	if err := l.recs.SetState(rec.Batch(), lr); err != nil {
		return Result{}, err
	}
	reverse := func() error { return l.queueReversal(rec.Batch(), lr, spec.ReversalOther) }
	err = rec.Commit(res, reverse)
	if err != nil && res.ResponseCode == spec.RCApproved {
		// Nothing of the batch is durable: the bank has the money and
		// the card does not. Reverse the debit (the next start would
		// queue it too, the request being still open).
		b := l.mgr.db.NewBatch()
		defer b.Close()
		if qerr := l.queueReversal(b, lr, spec.ReversalOther); qerr == nil {
			if cerr := b.Commit(pebble.Sync); cerr != nil {
				l.log.Error("reversal of a transfer leg not queued; the next start queues it", zap.Error(cerr))
			}
		}
	}
	return res, err
}

// buildTransfer builds the 0200 of the bank leg (docs/gateway-links.md,
// "Messages": processing code 400000, 2 the bound bank card, 102 the
// bound account, 103 the campus card, no 52) and fills lr's numbering.
func (l *Link) buildTransfer(req *TransferRequest, lr *journal.LinkRequest) (*outgoing, error) {
	if !req.HasAmount || req.Amount <= 0 {
		return nil, reject(spec.RCInvalidAmount, errors.New("no amount"))
	}
	amount, err := spec.Amount(req.Amount).N12()
	if err != nil {
		return nil, reject(spec.RCInvalidAmount, err)
	}
	id, stan, err := l.recs.NextID(l.cfg.Name)
	if err != nil {
		return nil, err
	}
	xmit := spec.FormatTransmissionTime(l.now())
	lr.ID, lr.STAN, lr.Transmission, lr.MTI, lr.ProcCode = id, stan, xmit, spec.GWFinancialRequest, spec.GWProcTransferLoadDebit
	out := &outgoing{mti: spec.GWFinancialRequest}
	for _, f := range [...]spec.GatewayField{{ID: 2, Value: req.BankCard}, {ID: 3, Value: spec.GWProcTransferLoadDebit},
		{ID: 4, Value: amount}, {ID: 7, Value: xmit}, {ID: 11, Value: stan}, {ID: 12, Value: req.LocalTime},
		{ID: 13, Value: req.LocalDate}, {ID: 32, Value: l.cfg.AcquirerID}, {ID: 33, Value: l.cfg.ForwardingID},
		{ID: 37, Value: req.RRN}, {ID: 41, Value: req.Terminal}, {ID: 42, Value: req.Merchant},
		{ID: 49, Value: spec.GWCurrencyCNY}, {ID: 100, Value: l.cfg.InstitutionID}, {ID: 102, Value: req.Account},
		{ID: 103, Value: req.CampusCard}} {
		if f.Value != "" {
			out.fields = append(out.fields, f)
		}
	}
	return out, out.matchable()
}

// ReverseTransfer queues into b the reversal (0420, reason in 39) of the
// bank leg of a terminal's transfer load, named by the terminal's
// numbering, once the leg's answer or timeout is recorded: when the leg
// went out and was approved or never answered. A leg declined, already
// reversed or never sent needs nothing. The caller commits b with the
// rest of the reversal (the card's credit taken back, the terminal's
// answer).
func (m *Manager) ReverseTransfer(terminal string, batch, stan uint32, reason string, b *pebble.Batch) error {
	lr, err := m.recs.ByLocal(terminal, n6(batch), n6(stan))
	if errors.Is(err, journal.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if lr.TxType != spec.TransferLoad.String() {
		return nil
	}
	l, ok := m.Link(lr.Link)
	if !ok {
		return fmt.Errorf("transfer leg on gateway %s, which is no longer configured", lr.Link)
	}
	// A reload removing or restarting the link waits for this reversal to
	// be queued, or turns it away (reload.go).
	if !l.enter() {
		return fmt.Errorf("transfer leg on gateway %s: %w", lr.Link, ErrRetired)
	}
	defer l.leave()
	l.inflightMu.Lock()
	ch := l.inflight[lr.ID]
	l.inflightMu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-time.After(l.cfg.SendTimeout + 5*time.Second):
		}
	}
	if lr, err = l.recs.Get(lr.Link, lr.ID); err != nil {
		return err
	}
	if lr.State == journal.LinkSent || (lr.State == journal.LinkAnswered && lr.ResponseCode == spec.RCApproved) {
		if reason != spec.ReversalTimeout {
			reason = spec.ReversalOther
		}
		return l.queueReversal(b, lr, reason)
	}
	return nil
}

// TransferLeg is the bank leg of a terminal's transfer load as the links'
// journal holds it (for the switch's view of transfer loads).
func (m *Manager) TransferLeg(terminal string, batch, stan uint32) (*journal.LinkRequest, bool, error) {
	lr, err := m.recs.ByLocal(terminal, n6(batch), n6(stan))
	if errors.Is(err, journal.ErrNotFound) || (err == nil && lr.TxType != spec.TransferLoad.String()) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return lr, true, nil
}
