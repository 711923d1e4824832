package posim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// Card is a card the simulated cardholders present, with its PIN. A bank
// card (Bank) is one the switch forwards to a bank over a gateway link: its
// issuer asks for the PIN on every consume, and it is never cash-loaded at
// a kiosk.
type Card struct {
	PAN  string
	PIN  string
	Bank bool
}

// TerminalSpec is one terminal posim drives: its identity, its clear TMK
// (a terminal holds its own), whether it is a recharge kiosk, and the
// cards presented at it. Giving every terminal its own cards keeps card
// locks in the ledger uncontended, as on a campus where each customer is
// a different cardholder.
type TerminalSpec struct {
	ID       string
	Merchant string
	TMK      []byte
	MayLoad  bool
	Cards    []Card
}

// Amount ranges of the simulated transactions, in fen. Consumes stay
// under the demo no-PIN limit (50.00) so that a PIN is entered only when
// the cardholder is asked for one (pinEvery).
const (
	consumeMin  = 100
	consumeMax  = 3000
	loadMin     = 1000
	loadMax     = 10000
	pinEvery    = 10 // one consume in pinEvery carries a PIN block
	recentLimit = 32 // approved consumes a terminal remembers for void/refund
)

// recentConsume is an approved consume the terminal may void or refund.
type recentConsume struct {
	req, resp *spec.POSMessage
	remaining spec.Amount
	refunded  bool
}

// recentAuth is an approved pre-auth the terminal may complete or cancel.
type recentAuth struct {
	req, resp *spec.POSMessage
	card      Card
}

// sim is one simulated terminal: one goroutine, one connection, one
// transaction outstanding at a time.
type sim struct {
	spec  TerminalSpec
	r     *runner
	term  *posclient.Terminal
	rng   *rand.Rand
	draw  int // position in the mix cycle
	order [100]int
	rec   []recentConsume
	auths []recentAuth

	mu       sync.Mutex // guards the histograms (the progress reporter reads them)
	hist     Histogram
	interval Histogram
}

func newSim(ts TerminalSpec, r *runner, seed uint64) *sim {
	s := &sim{spec: ts, r: r, rng: rand.New(rand.NewPCG(seed, 0x9E3779B97F4A7C15))}
	// Each terminal walks a shuffled permutation of 0..99, so every 100
	// transactions follow the mix exactly while the order stays random.
	for i := range s.order {
		s.order[i] = i
	}
	s.rng.Shuffle(len(s.order), func(i, j int) { s.order[i], s.order[j] = s.order[j], s.order[i] })
	return s
}

func (s *sim) nextKind() Kind {
	k := s.r.opts.Mix.Pick(s.order[s.draw])
	s.draw = (s.draw + 1) % len(s.order)
	return k
}

func (s *sim) card() Card { return s.spec.Cards[s.rng.IntN(len(s.spec.Cards))] }

// cardOf is the terminal's card with this number.
func (s *sim) cardOf(pan string) Card {
	for _, c := range s.spec.Cards {
		if c.PAN == pan {
			return c
		}
	}
	return Card{PAN: pan}
}

func (s *sim) amount(lo, hi int) spec.Amount { return spec.Amount(lo + s.rng.IntN(hi-lo+1)) }

// errNoConnection: the terminal could not reach the switch within its
// reconnect budget.
var errNoConnection = errors.New("posim: switch unreachable")

// connect dials until it succeeds, ctx ends or the reconnect budget is
// spent. With signOn it also signs on (at start, and after a 77).
func (s *sim) connect(ctx context.Context, signOn bool) error {
	deadline := time.Now().Add(s.r.opts.ReconnectFor)
	backoff := 20 * time.Millisecond
	reconnecting := s.term != nil
	for {
		err := s.dialOnce(signOn)
		if err == nil {
			if reconnecting {
				s.r.reconnects.Add(1)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("terminal %s: %w after %s: %v", s.spec.ID, errNoConnection, s.r.opts.ReconnectFor, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("terminal %s: connect: %w", s.spec.ID, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

func (s *sim) dialOnce(signOn bool) error {
	c, err := posclient.Dial(s.r.opts.Addr, posclient.Options{Timeout: s.r.opts.Timeout})
	if err != nil {
		return err
	}
	if s.term == nil {
		s.term = posclient.NewTerminal(c, s.spec.ID, s.spec.Merchant, s.spec.TMK)
	} else {
		s.term.Client = c
	}
	if !signOn {
		return nil
	}
	if err := s.signOn(); err != nil {
		s.disconnect()
		return err
	}
	return nil
}

func (s *sim) signOn() error {
	resp, err := s.term.SignOn()
	if err != nil {
		return fmt.Errorf("terminal %s sign-on: %w", s.spec.ID, err)
	}
	if resp.ResponseCode != spec.RCApproved {
		return fmt.Errorf("terminal %s sign-on: response code %s (%s)", s.spec.ID, resp.ResponseCode, spec.RCDescription(resp.ResponseCode))
	}
	s.rec = s.rec[:0] // voids need the current batch
	// So do completions and cancels here: a pre-auth of an earlier batch
	// stays held.
	s.auths = s.auths[:0]
	return nil
}

func (s *sim) disconnect() {
	if s.term != nil && s.term.Client != nil {
		_ = s.term.Client.Close()
		s.term.Client = nil
	}
}

// exchange sends one request and waits for its answer, measuring from
// the write to the read of the response.
func (s *sim) exchange(req *spec.POSMessage) (*spec.POSMessage, error) {
	start := time.Now()
	if err := s.term.Send(req); err != nil {
		return nil, err
	}
	resp, err := s.term.Receive()
	lat := time.Since(start)
	if err != nil {
		return resp, err
	}
	if resp.STAN != req.STAN || resp.MTI != spec.ResponseMTI(req.MTI) {
		return resp, fmt.Errorf("terminal %s: answer %s STAN %s to request %s STAN %s", s.spec.ID, resp.MTI, resp.STAN, req.MTI, req.STAN)
	}
	s.mu.Lock()
	s.hist.Record(lat)
	s.interval.Record(lat)
	s.mu.Unlock()
	if malfunction(resp.ResponseCode) {
		s.r.errors.Add(1)
	} else if resp.ResponseCode == spec.RCApproved {
		s.r.approved.Add(1)
	} else {
		s.r.declined.Add(1)
	}
	return resp, nil
}

// malfunction reports response codes that mean the switch failed rather
// than declined: a well-behaved terminal must never see them.
func malfunction(rc string) bool {
	switch rc {
	case spec.RCFormatError, spec.RCSystemMalfunction, spec.RCMACError, spec.RCSuspectedMalfunction, spec.RCNoAnswer, spec.RCDuplicate:
		return true
	}
	return false
}

func (s *sim) ack(req, resp *spec.POSMessage, txType string) {
	s.r.opts.AckLog.Write(Ack{
		Terminal: s.spec.ID, Batch: req.Reserved60.Batch, STAN: req.STAN, Type: txType,
		Card: req.PAN, Amount: req.Amount, RC: resp.ResponseCode,
	})
}

// transact runs one transaction of the mix, including the recovery a
// real terminal performs when the answer does not come.
func (s *sim) transact(ctx, hard context.Context) error {
	if s.term.Client == nil {
		if err := s.connect(hard, false); err != nil {
			return err
		}
	}
	req, lost, err := s.build(s.nextKind())
	if err != nil {
		return err
	}
	txType, _ := req.TxType()
	resp, err := s.exchange(req)
	switch {
	case err != nil:
		s.r.errors.Add(1)
		reason := spec.ReversalTimeout
		if errors.Is(err, posclient.ErrResponseMAC) {
			reason = spec.ReversalMACError
		}
		s.disconnect()
		return s.recover(hard, req, txType, reason)
	case lost:
		// The terminal acts as if this answer never came.
		return s.recover(hard, req, txType, spec.ReversalTimeout)
	}
	s.ack(req, resp, txType.String())
	switch resp.ResponseCode {
	case spec.RCApproved:
		s.remember(req, resp, txType)
	case spec.RCBatchMismatch:
		if err := s.signOn(); err != nil {
			s.disconnect()
			return s.connect(hard, true)
		}
	}
	return nil
}

// recover settles a transaction whose answer never came, as a terminal
// does: a reversible one is reversed (0400) until the reversal is
// answered; an advice (refund) is sent again, same STAN, until answered
// (the switch replays its stored answer if it had the first); anything
// else is dropped.
func (s *sim) recover(hard context.Context, req *spec.POSMessage, txType spec.TxType, reason string) error {
	var (
		send     = req
		ackType  = txType.String()
		resigned bool
	)
	switch {
	case txType.Reversible():
		send, ackType = s.term.Reversal(req, reason), spec.Reversal.String()
		s.r.reversals.Add(1)
	case txType == spec.Refund:
		s.r.resends.Add(1)
	default:
		return nil
	}
	for {
		if err := hard.Err(); err != nil {
			s.r.unresolved.Add(1)
			return fmt.Errorf("terminal %s: %s STAN %s unresolved: %w", s.spec.ID, ackType, req.STAN, err)
		}
		if s.term.Client == nil {
			if err := s.connect(hard, false); err != nil {
				s.r.unresolved.Add(1)
				return err
			}
		}
		send.MAC = nil
		resp, err := s.exchange(send)
		if err != nil {
			s.r.errors.Add(1)
			s.disconnect()
			continue
		}
		if resp.ResponseCode == spec.RCBatchMismatch && !resigned {
			// The switch lost the terminal's sign-on; sign on and try
			// again once (the reversal keeps the original's batch).
			resigned = true
			if err := s.signOn(); err != nil {
				s.disconnect()
			}
			continue
		}
		s.ack(send, resp, ackType)
		return nil
	}
}

// remember keeps approved consumes for later voids and refunds, and
// approved pre-auths for a later completion or cancel.
func (s *sim) remember(req, resp *spec.POSMessage, t spec.TxType) {
	if t == spec.PreAuth {
		if len(s.auths) >= recentLimit {
			copy(s.auths, s.auths[1:])
			s.auths = s.auths[:len(s.auths)-1]
		}
		s.auths = append(s.auths, recentAuth{req: req, resp: resp, card: s.cardOf(req.PAN)})
		return
	}
	if t != spec.Consume {
		return
	}
	if len(s.rec) >= recentLimit {
		copy(s.rec, s.rec[1:])
		s.rec = s.rec[:len(s.rec)-1]
	}
	s.rec = append(s.rec, recentConsume{req: req, resp: resp, remaining: req.Amount})
}

// build makes the next request of a kind. lost reports that the terminal
// will treat the answer as lost (the reversal kind).
func (s *sim) build(k Kind) (req *spec.POSMessage, lost bool, err error) {
	switch k {
	case KindBalance:
		c := s.card()
		req, err = s.term.Balance(c.PAN, c.PIN)
		return req, false, err
	case KindVoid:
		for i := len(s.rec) - 1; i >= 0; i-- {
			if !s.rec[i].refunded {
				rc := s.rec[i]
				s.rec = append(s.rec[:i], s.rec[i+1:]...)
				req, err = s.term.Void(rc.req, rc.resp, "")
				return req, false, err
			}
		}
	case KindRefund:
		if n := len(s.rec); n > 0 {
			i := s.rng.IntN(n)
			rc := &s.rec[i]
			amt := max(rc.remaining/2, 1)
			rc.remaining -= amt
			rc.refunded = true
			req = s.term.Refund(rc.req, rc.resp, amt)
			if rc.remaining == 0 {
				s.rec = append(s.rec[:i], s.rec[i+1:]...)
			}
			return req, false, nil
		}
	case KindCashLoad:
		if c := s.card(); s.spec.MayLoad && !c.Bank {
			return s.term.CashLoad(c.PAN, s.amount(loadMin, loadMax)), false, nil
		}
	case KindCompletion, KindPreAuthCancel:
		// The latest pre-auth, completed or cancelled whole: its hold
		// goes. One whose completion or cancel is reversed (no answer)
		// is held again, and stays so.
		if n := len(s.auths); n > 0 {
			a := s.auths[n-1]
			s.auths = s.auths[:n-1]
			if k == KindCompletion {
				req, err = s.term.Completion(a.req, a.resp, a.req.Amount, a.card.PIN)
			} else {
				req, err = s.term.PreAuthCancel(a.req, a.resp, a.card.PIN)
			}
			return req, false, err
		}
		fallthrough
	case KindPreAuth:
		c := s.card()
		req, err = s.term.PreAuth(c.PAN, s.amount(consumeMin, consumeMax), c.PIN)
		return req, false, err
	case KindReversal:
		c := s.card()
		pin := ""
		if c.Bank {
			pin = c.PIN
		}
		req, err = s.term.Consume(c.PAN, s.amount(consumeMin, consumeMax), pin)
		return req, true, err
	}
	// Consume, and the fallback when a void or refund has no original
	// or a cash load is asked of a terminal that is not a kiosk.
	c := s.card()
	pin := ""
	if c.Bank || s.rng.IntN(pinEvery) == 0 {
		pin = c.PIN
	}
	req, err = s.term.Consume(c.PAN, s.amount(consumeMin, consumeMax), pin)
	return req, false, err
}
