// Package transfer is the bank-transfer load (圈存) at a kiosk
// (docs/recharge.md, "Bank-transfer loads"): a kiosk POS asks to load a
// campus card from the bank account the card is bound to. The service
// checks the card and its PIN in the ledger (a probe that posts nothing),
// the card's binding and the transfer limits, sends the debit of the
// bound account on the binding's gateway link, and only after the bank's
// 00 credits the card — the bank's answer, the link mapping, the credit
// and the terminal's answer in one synced batch. When the bank does not
// answer, or approves but the card can no longer take the money, the
// debit is reversed through the link's store-and-forward queue.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/links"
	"github.com/cardswitch/cardswitch/switch/local"
	"github.com/cardswitch/cardswitch/switch/recharge"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// Name is the destination's name (logs, the journal).
const Name = "transfer"

// Limits bound transfer loads per card: one load, and a card's loads of
// one business day (reversed loads do not count). Zero: no limit.
type Limits struct {
	MaxLoad      ledger.Fen
	MaxDailyLoad ledger.Fen
}

// Bindings opens a card's bank binding (recharge.Service).
type Bindings interface {
	OpenBinding(pan string) (recharge.BoundAccount, bool, error)
}

// Options build a Service.
type Options struct {
	DB         *pebble.DB
	Ledger     *ledger.Ledger
	HSM        *hsm.HSM
	Links      *links.Manager
	Bindings   Bindings
	Limits     Limits
	Log        *zap.Logger
	Registerer prometheus.Registerer
}

// Service serves transfer loads and their reversals; it is a
// txn.Destination.
type Service struct {
	db       *pebble.DB
	ledger   *ledger.Ledger
	hsm      *hsm.HSM
	links    *links.Manager
	bindings Bindings
	limits   Limits
	log      *zap.Logger
	results  *prometheus.CounterVec
	amount   *prometheus.CounterVec

	// locks holds one lock per card with a load or reversal under way
	// (a card's lock is held across its bank leg, so cards must not
	// share one).
	locksMu sync.Mutex
	locks   map[string]*cardLock
}

// Results counted in switch_transfer_loads_total{result}.
const (
	ResultCredited     = "credited"      // bank debited, card credited
	ResultDeclined     = "declined"      // declined by the switch before the bank leg
	ResultBankDeclined = "bank_declined" // the bank declined the debit
	ResultNoAnswer     = "no_answer"     // no answer from the bank: 98, debit reversal queued
	ResultRefused      = "refused"       // the bank debited, the card could not take it: reversal queued
	ResultReversed     = "reversed"      // a terminal's reversal took a credit back
)

// New builds the service.
func New(o Options) (*Service, error) {
	if o.DB == nil || o.Ledger == nil || o.HSM == nil || o.Bindings == nil {
		return nil, errors.New("transfer: storage, ledger, HSM and bindings are required")
	}
	if o.Limits.MaxLoad < 0 || o.Limits.MaxDailyLoad < 0 {
		return nil, errors.New("transfer: limits must not be negative")
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	s := &Service{db: o.DB, ledger: o.Ledger, hsm: o.HSM, links: o.Links, bindings: o.Bindings, limits: o.Limits,
		log: o.Log, locks: map[string]*cardLock{},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switch_transfer_loads_total",
			Help: "Bank-transfer loads at kiosks by result (docs/recharge.md)."}, []string{"result"}),
		amount: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switch_transfer_load_fen_total",
			Help: "Money moved by bank-transfer loads, in fen: credited to cards, or taken back by reversals."}, []string{"direction"}),
	}
	for _, r := range []string{ResultCredited, ResultDeclined, ResultBankDeclined, ResultNoAnswer, ResultRefused, ResultReversed} {
		s.results.WithLabelValues(r)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.results, s.amount} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("transfer metrics: %w", err)
			}
		}
	}
	return s, nil
}

// ResultCounter is the counter of switch_transfer_loads_total{result}.
func (s *Service) ResultCounter(result string) prometheus.Counter {
	return s.results.WithLabelValues(result)
}

// Name implements txn.Destination.
func (s *Service) Name() string { return Name }

type cardLock struct {
	mu   sync.Mutex
	refs int
}

// lockCard serialises the transfer loads and reversals of one card, from
// the limit checks to the commit (the bank leg included: a kiosk load is
// one at a time per card); other cards go on meanwhile.
func (s *Service) lockCard(pan string) func() {
	s.locksMu.Lock()
	l := s.locks[pan]
	if l == nil {
		l = &cardLock{}
		s.locks[pan] = l
	}
	l.refs++
	s.locksMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.locksMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, pan)
		}
		s.locksMu.Unlock()
	}
}

// Execute implements txn.Destination for transfer loads and their
// reversals.
func (s *Service) Execute(ctx context.Context, t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	switch {
	case t.Type == spec.TransferLoad:
		return s.load(ctx, t, rec)
	case t.Type == spec.Reversal && t.OriginalType == spec.TransferLoad:
		return s.reverse(t, rec)
	case t.Type == spec.Reversal:
		// A reversal is matched on the original's type too
		// (docs/pos-dialect.md): one claiming another type matches no
		// original, and is approved with nothing done.
		return s.answer(rec, spec.RCApproved)
	}
	// A void, refund, completion or cancel naming a transfer load: it has
	// no such original.
	return s.answer(rec, spec.RCOriginalNotFound)
}

// answer decides rc with nothing moved.
func (s *Service) answer(rec txn.Record, rc string) (txn.Outcome, error) {
	out := txn.Outcome{ResponseCode: rc}
	return out, rec.Commit(out)
}

// decide answers rc before the bank leg: nothing moved.
func (s *Service) decide(rec txn.Record, rc string) (txn.Outcome, error) {
	out := txn.Outcome{ResponseCode: rc}
	if err := rec.Commit(out); err != nil {
		return txn.Outcome{}, err
	}
	s.results.WithLabelValues(ResultDeclined).Inc()
	return out, nil
}

// load runs a transfer load; the bank leg waits at most until ctx's
// deadline (the terminal's answer budget).
func (s *Service) load(ctx context.Context, t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	defer s.lockCard(t.Card)()
	switch {
	case s.limits.MaxLoad > 0 && t.Amount > s.limits.MaxLoad:
		return s.decide(rec, spec.RCExceedsAmountLimit)
	case t.PIN == nil || len(t.PIN.Block) == 0:
		// The card's PIN authorises the load: required whatever the
		// amount.
		return s.decide(rec, spec.RCIncorrectPIN)
	}
	pin, err := s.verifyPIN(t)
	if err != nil {
		return txn.Outcome{}, err
	}
	// The ledger's probe: card state, PIN tries, maximum balance; a wrong
	// PIN counts a try even though nothing else happens.
	if out, declined, err := s.probe(t, pin, rec); declined || err != nil {
		return out, err
	}
	acct, bound, err := s.bindings.OpenBinding(t.Card)
	if err != nil {
		return txn.Outcome{}, fmt.Errorf("binding of %s: %w", cardno.Mask(t.Card), err)
	}
	if !bound {
		return s.decide(rec, spec.RCNotPermittedCard)
	}
	if s.limits.MaxDailyLoad > 0 {
		total, err := s.dayTotal(t.Card, t.BusinessDate)
		if err != nil {
			return txn.Outcome{}, err
		}
		if total+t.Amount > s.limits.MaxDailyLoad {
			return s.decide(rec, spec.RCExceedsAmountLimit)
		}
	}
	var link *links.Link
	if s.links != nil {
		link, _ = s.links.Link(acct.Gateway)
	}
	if link == nil {
		s.log.Error("card bound to a gateway that is not configured", zap.String("card", cardno.Mask(t.Card)),
			zap.String("gateway", acct.Gateway))
		return txn.Outcome{}, txn.Reject(links.RC91, fmt.Errorf("gateway %s not configured", acct.Gateway))
	}
	req := &links.TransferRequest{
		Request: links.Request{Type: spec.TransferLoad, Amount: int64(t.Amount), HasAmount: t.HasAmount,
			Terminal: t.Terminal, Merchant: t.Merchant, Batch: t.Batch, STAN: t.STAN, LocalDate: t.LocalDate,
			LocalTime: t.LocalTime, BusinessDate: t.BusinessDate.String(), RRN: t.RRN},
		BankCard: acct.BankCard, Account: acct.Account, CampusCard: t.Card,
	}
	req.Deadline, _ = ctx.Deadline()
	r := &legRecorder{s: s, t: t, rec: rec, gateway: acct.Gateway, institution: link.Config().InstitutionID}
	_, err = link.Transfer(req, r)
	var rj *links.Rejected
	if errors.As(err, &rj) {
		return txn.Outcome{}, txn.Reject(rj.ResponseCode, rj.Err)
	}
	if err != nil {
		return txn.Outcome{}, err
	}
	return r.out, nil
}

// probe runs the ledger's checks of the load in a batch of its own,
// committed synced (a wrong PIN's try must count). A decline is then
// answered.
func (s *Service) probe(t *txn.Transaction, pin ledger.PINOutcome, rec txn.Record) (txn.Outcome, bool, error) {
	b := s.db.NewBatch()
	defer b.Close()
	c := s.common(t)
	// The probe has a key of its own and keeps its own record: the
	// pipeline's record is the load's answer, not the probe's.
	c.Key += "/probe"
	c.KnownNew, c.Deduplicated = false, false
	res, err := s.ledger.Execute(&ledger.TransferLoad{Common: c, PAN: t.Card, Amount: t.Amount,
		MayLoad: t.TerminalMayLoad, PIN: pin, Probe: true}, b,
		func(ledger.Result) error { return b.Commit(pebble.Sync) })
	if err != nil {
		return txn.Outcome{}, true, err
	}
	if res.Approved() {
		return txn.Outcome{}, false, nil
	}
	out, err := s.decide(rec, local.ResponseCode(res.Decline))
	return out, true, err
}

func (s *Service) common(t *txn.Transaction) ledger.Common {
	return ledger.Common{Key: t.Key, Date: t.BusinessDate, Terminal: t.Terminal, Merchant: t.Merchant,
		Batch: t.Batch, STAN: t.STAN, RRN: t.RRN, KnownNew: t.KnownNew, Deduplicated: t.Deduplicated}
}

// legRecorder records the bank's answer with the card's credit
// (links.TransferRecorder).
type legRecorder struct {
	s           *Service
	t           *txn.Transaction
	rec         txn.Record
	gateway     string
	institution string
	out         txn.Outcome
}

func (r *legRecorder) Batch() *pebble.Batch { return r.rec.Batch() }

func (r *legRecorder) Commit(res links.Result, reverse func() error) error {
	s, t := r.s, r.t
	row := &Record{PAN: t.Card, View: View{Terminal: t.Terminal, Merchant: t.Merchant, Batch: t.Batch, STAN: t.STAN,
		BusinessDate: t.BusinessDate.String(), Card: cardno.Mask(t.Card), AmountFen: int64(t.Amount),
		RRN: t.RRN, Gateway: r.gateway, BankRC: res.ResponseCode, Time: time.Now().UTC()}}
	if res.ResponseCode != spec.RCApproved {
		// No debit stands: the bank declined (its code passes through),
		// or did not answer (98, its reversal already queued).
		row.State, row.RC = StateBankDeclined, res.ResponseCode
		result := ResultBankDeclined
		if res.ResponseCode == spec.RCNoAnswer {
			row.State, result = StateNoAnswer, ResultNoAnswer
		}
		if err := putRecord(r.rec.Batch(), row); err != nil {
			return err
		}
		r.out = txn.Outcome{ResponseCode: res.ResponseCode}
		if err := r.rec.Commit(r.out); err != nil {
			return err
		}
		s.results.WithLabelValues(result).Inc()
		return nil
	}
	// The bank debited the account: credit the card, or reverse the
	// debit when the card can no longer take it — in the same batch.
	maybeCrash(crashBetweenLegs)
	total, err := s.dayTotal(t.Card, t.BusinessDate)
	if err != nil {
		return err
	}
	result := ResultCredited
	_, err = s.ledger.Execute(&ledger.TransferLoad{Common: s.common(t), PAN: t.Card, Amount: t.Amount,
		Institution: r.institution, MayLoad: t.TerminalMayLoad, PIN: ledger.PINNotPresent}, r.rec.Batch(),
		func(lr ledger.Result) error {
			out := txn.Outcome{ResponseCode: local.ResponseCode(lr.Decline)}
			row.RC = out.ResponseCode
			if lr.Approved() {
				out.AuthCode = res.AuthCode
				if out.AuthCode == "" {
					out.AuthCode = lr.AuthCode
				}
				out.Balances = []txn.Balance{
					{Account: txn.CashPurse, Amount: lr.Balances.Cash},
					{Account: txn.SubsidyPurse, Amount: lr.Balances.Subsidy},
				}
				row.State = StateCredited
				if !lr.Replay {
					if err := s.putDayTotal(r.rec.Batch(), t.Card, t.BusinessDate, total+t.Amount); err != nil {
						return err
					}
				}
			} else {
				if out.ResponseCode == spec.RCApproved {
					out.ResponseCode = spec.RCSystemMalfunction
				}
				row.State, result = StateRefused, ResultRefused
				if err := reverse(); err != nil {
					return err
				}
				s.log.Warn("bank debited but the card cannot take the load; debit reversal queued",
					zap.String("card", cardno.Mask(t.Card)), zap.String("rrn", t.RRN), zap.String("rc", out.ResponseCode))
			}
			if err := putRecord(r.rec.Batch(), row); err != nil {
				return err
			}
			r.out = out
			if err := r.rec.Commit(out); err != nil {
				return err
			}
			maybeCrash(crashAfterCommit)
			return nil
		})
	if err != nil {
		return err
	}
	s.results.WithLabelValues(result).Inc()
	if result == ResultCredited {
		s.amount.WithLabelValues("credit").Add(float64(t.Amount))
	}
	return nil
}

// reverse answers a terminal's reversal of a transfer load: the credit
// (if made) is taken back by the ledger's reversal, and then the bank
// leg's debit (if it went out and was not declined) is reversed through
// store-and-forward — in one batch with the answer. A reversal the ledger
// declines (the card closed since: its balance, this load included, went
// to the refund payable) reverses nothing at the bank either.
func (s *Service) reverse(t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	// The original's card is the one to lock, whatever field 2 says.
	pan := t.Card
	if row, err := s.record(t.Terminal, t.Original.Batch, t.Original.STAN); err != nil {
		return txn.Outcome{}, err
	} else if row != nil {
		pan = row.PAN
	}
	defer s.lockCard(pan)()
	row, err := s.record(t.Terminal, t.Original.Batch, t.Original.STAN)
	if err != nil {
		return txn.Outcome{}, err
	}
	ref := ledger.TxnRef{Terminal: t.Terminal, Batch: t.Original.Batch, STAN: t.Original.STAN}
	var out txn.Outcome
	reversed := false
	_, err = s.ledger.Execute(&ledger.Reversal{Common: s.common(t), PAN: t.Card, Amount: t.Amount,
		Original: ref, OriginalKind: ledger.KindTransferLoad}, rec.Batch(),
		func(lr ledger.Result) error {
			out = txn.Outcome{ResponseCode: local.ResponseCode(lr.Decline), Replay: lr.Replay}
			if !lr.Approved() {
				return rec.Commit(out)
			}
			if s.links != nil {
				if err := s.links.ReverseTransfer(t.Terminal, t.Original.Batch, t.Original.STAN, spec.ReversalOther, rec.Batch()); err != nil {
					return fmt.Errorf("reverse transfer leg: %w", err)
				}
			}
			if !lr.NoOp && !lr.Replay && row != nil && row.State == StateCredited {
				reversed = true
				row.State = StateReversed
				if err := putRecord(rec.Batch(), row); err != nil {
					return err
				}
				n, err := strconv.Atoi(row.BusinessDate)
				if err != nil {
					return fmt.Errorf("transfer record date %q: %w", row.BusinessDate, err)
				}
				d := ledger.BusinessDate(n)
				total, err := s.dayTotal(row.PAN, d)
				if err != nil {
					return err
				}
				if err := s.putDayTotal(rec.Batch(), row.PAN, d, total-ledger.Fen(row.AmountFen)); err != nil {
					return err
				}
			}
			return rec.Commit(out)
		})
	if err != nil {
		return txn.Outcome{}, err
	}
	if reversed {
		s.results.WithLabelValues(ResultReversed).Inc()
		s.amount.WithLabelValues("reversal").Add(float64(row.AmountFen))
	}
	return out, nil
}

// verifyPIN checks the campus card's PIN block inside the HSM against the
// card's stored verification value; a PIN the switch cannot check is a
// rejection that costs the card no try (as at the local ledger).
func (s *Service) verifyPIN(t *txn.Transaction) (ledger.PINOutcome, error) {
	pvv, err := s.ledger.PINVerificationValue(t.Card)
	if err != nil || len(pvv) == 0 {
		// Unknown card: the probe declines it for what it is.
		return ledger.PINNotPresent, nil
	}
	ok, err := s.hsm.VerifyTerminalPINBlock(t.PIN.Terminal, t.PIN.Block, t.PIN.SecurityControl, t.Card, string(pvv))
	switch {
	case errors.Is(err, hsm.ErrSecurityControl):
		return ledger.PINNotPresent, txn.Reject(spec.RCFormatError, err)
	case errors.Is(err, hsm.ErrPINBlock):
		return ledger.PINWrong, nil
	case errors.Is(err, hsm.ErrUnsupported):
		return ledger.PINNotPresent, txn.Reject(spec.RCFunctionNotSupported, err)
	case err != nil:
		return ledger.PINNotPresent, txn.Reject(spec.RCSystemMalfunction, err)
	case ok:
		return ledger.PINVerified, nil
	}
	return ledger.PINWrong, nil
}
