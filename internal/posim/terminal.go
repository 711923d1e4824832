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
	orig      original
	remaining spec.Amount
	refunded  bool
}

// recentAuth is an approved pre-auth the terminal may complete or cancel.
type recentAuth struct {
	orig original
}

// original is what a void, refund, completion or cancel takes from the
// approved request and its answer (posclient's builders read no other
// field), kept without a pointer: every terminal remembers dozens, and
// a heap of remembered messages is what the garbage collector would
// otherwise scan again in every cycle of a load run.
type original struct {
	card   int32 // index in the terminal's cards
	amount spec.Amount
	stan   short // 11
	date   short // 13
	batch  short // 60.2
	rrn    short // the answer's 37
	auth   short // the answer's 38
}

// short is a string of at most shortMax bytes held in place. The fields
// kept are fixed-length in the dialect (11 n6, 13 n4, 37 an12, 38 an6,
// 60.2 n6) or absent.
type short struct {
	n uint8
	b [shortMax]byte
}

const shortMax = 12

// set stores s; it reports false, storing nothing, when s is longer than
// shortMax.
func (v *short) set(s string) bool {
	if len(s) > shortMax {
		return false
	}
	v.n = uint8(copy(v.b[:], s))
	return true
}

func (v *short) String() string { return string(v.b[:v.n]) }

// remembered makes the original of an approved request: ok is false when
// its card is not one of the terminal's or a field does not fit (neither
// happens with the requests sim builds and answers DecodePOS accepts).
func (s *sim) remembered(req, resp *spec.POSMessage) (o original, ok bool) {
	card := s.cardIndex(req.PAN)
	if card < 0 {
		return o, false
	}
	o.card, o.amount = int32(card), req.Amount
	ok = o.stan.set(req.STAN) && o.date.set(req.LocalDate) && o.batch.set(req.Reserved60.Batch) &&
		o.rrn.set(resp.RRN) && o.auth.set(resp.AuthCode)
	return o, ok
}

// messages rebuilds the request and answer fields posclient's builders
// of a follow-up read: 2, 4, 11, 13 and 60.2 of the request, 37 and 38
// of the answer.
func (s *sim) messages(o *original) (req, resp *spec.POSMessage) {
	req = &spec.POSMessage{
		PAN: s.spec.Cards[o.card].PAN, Amount: o.amount, HasAmount: true,
		STAN: o.stan.String(), LocalDate: o.date.String(),
		Reserved60: spec.Field60{Batch: o.batch.String()},
	}
	resp = &spec.POSMessage{RRN: o.rrn.String(), AuthCode: o.auth.String()}
	return req, resp
}

// recent is a bounded list, oldest first, in a ring: adding to a full
// one drops the oldest without moving the others.
type recent[T any] struct {
	head, n int
	item    [recentLimit]T
}

func (r *recent[T]) len() int { return r.n }

// at is the i-th item, oldest first.
func (r *recent[T]) at(i int) *T { return &r.item[(r.head+i)%recentLimit] }

// push adds v as the newest, dropping the oldest when full.
func (r *recent[T]) push(v T) {
	if r.n == recentLimit {
		r.head = (r.head + 1) % recentLimit
		r.n--
	}
	*r.at(r.n) = v
	r.n++
}

// remove drops the i-th item; the ones after it move up.
func (r *recent[T]) remove(i int) {
	for ; i < r.n-1; i++ {
		*r.at(i) = *r.at(i + 1)
	}
	r.n--
}

func (r *recent[T]) reset() { r.head, r.n = 0, 0 }

// sim is one simulated terminal: one goroutine, one connection, one
// transaction outstanding at a time.
type sim struct {
	spec  TerminalSpec
	r     *runner
	term  *posclient.Terminal
	rng   *rand.Rand
	draw  int // position in the mix cycle
	order [100]int
	rec   recent[recentConsume]
	auths recent[recentAuth]
	// lastCard is the index of the card card() drew last.
	lastCard int
	// req holds the consumes build makes: a terminal has one exchange at
	// a time, and what it keeps of a request after its exchange it
	// copies (remember, Reversal), so one message serves them all.
	req spec.POSMessage

	mu       sync.Mutex // guards the histograms (the progress reporter reads them)
	hist     Histogram
	interval Histogram // the latencies since the last progress line (with Options.Progress)
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

func (s *sim) card() Card {
	s.lastCard = s.rng.IntN(len(s.spec.Cards))
	return s.spec.Cards[s.lastCard]
}

// cardIndex is the index of the terminal's card with this number (the
// one drawn last, usually), or -1.
func (s *sim) cardIndex(pan string) int {
	if i := s.lastCard; i < len(s.spec.Cards) && s.spec.Cards[i].PAN == pan {
		return i
	}
	for i, c := range s.spec.Cards {
		if c.PAN == pan {
			return i
		}
	}
	return -1
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
	s.rec.reset() // voids need the current batch
	// So do completions and cancels here: a pre-auth of an earlier batch
	// stays held.
	s.auths.reset()
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
	if s.r.opts.Progress != nil {
		// Only the progress line reads the last second's latencies: a
		// histogram is 14 KiB, and a record into one a cache miss or two.
		s.interval.Record(lat)
	}
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
	if t != spec.PreAuth && t != spec.Consume {
		return
	}
	o, ok := s.remembered(req, resp)
	if !ok {
		return
	}
	if t == spec.PreAuth {
		s.auths.push(recentAuth{orig: o})
		return
	}
	s.rec.push(recentConsume{orig: o, remaining: req.Amount})
}

// build makes the next request of a kind. lost reports that the terminal
// will treat the answer as lost (the reversal kind). A consume is built
// in s.req: valid until the next build.
func (s *sim) build(k Kind) (req *spec.POSMessage, lost bool, err error) {
	switch k {
	case KindBalance:
		c := s.card()
		req, err = s.term.Balance(c.PAN, c.PIN)
		return req, false, err
	case KindVoid:
		for i := s.rec.len() - 1; i >= 0; i-- {
			if rc := s.rec.at(i); !rc.refunded {
				origReq, origResp := s.messages(&rc.orig)
				s.rec.remove(i)
				req, err = s.term.Void(origReq, origResp, "")
				return req, false, err
			}
		}
	case KindRefund:
		if n := s.rec.len(); n > 0 {
			i := s.rng.IntN(n)
			rc := s.rec.at(i)
			amt := max(rc.remaining/2, 1)
			rc.remaining -= amt
			rc.refunded = true
			origReq, origResp := s.messages(&rc.orig)
			req = s.term.Refund(origReq, origResp, amt)
			if rc.remaining == 0 {
				s.rec.remove(i)
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
		if n := s.auths.len(); n > 0 {
			a := *s.auths.at(n - 1)
			s.auths.remove(n - 1)
			authReq, authResp := s.messages(&a.orig)
			pin := s.spec.Cards[a.orig.card].PIN
			if k == KindCompletion {
				req, err = s.term.Completion(authReq, authResp, authReq.Amount, pin)
			} else {
				req, err = s.term.PreAuthCancel(authReq, authResp, pin)
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
		err = s.term.ConsumeInto(&s.req, c.PAN, s.amount(consumeMin, consumeMax), pin)
		return &s.req, true, err
	}
	// Consume, and the fallback when a void or refund has no original
	// or a cash load is asked of a terminal that is not a kiosk.
	c := s.card()
	pin := ""
	if c.Bank || s.rng.IntN(pinEvery) == 0 {
		pin = c.PIN
	}
	err = s.term.ConsumeInto(&s.req, c.PAN, s.amount(consumeMin, consumeMax), pin)
	return &s.req, false, err
}
