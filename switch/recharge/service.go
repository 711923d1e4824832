// Package recharge is money in from outside institutions (recharge
// platforms, wallets, a bank's e-channel): account verification, credits
// keyed by the institution's order number, order query and credit
// reversal (docs/recharge.md). One Service holds the business rules. The
// gateway port (switch/gateway) maps an institution's ISO 8583 request
// into a txn.Transaction and reaches the service as a txn.Destination
// (destination.go); the HTTP/JSON channel (http.go) calls it directly.
package recharge

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// Institution is one configured outside institution.
type Institution struct {
	ID   string // field 32
	Name string
	// Allow is the allow-list of source networks; a connection from
	// elsewhere is refused at connect, a message naming this institution
	// from elsewhere is answered 03.
	Allow []netip.Prefix
	// MaxCredit bounds one credit, MaxDailyCredit the credits of one card
	// from this institution in one business day (reversed credits do not
	// count). Exceeding either (strictly) is 61.
	MaxCredit      ledger.Fen
	MaxDailyCredit ledger.Fen
}

// Allows reports whether addr is on the institution's allow-list.
func (in *Institution) Allows(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range in.Allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Options are what the service needs from the switch.
type Options struct {
	DB           *pebble.DB
	Ledger       *ledger.Ledger
	Institutions []Institution
	// Today is the current business date, NextRRN a new retrieval
	// reference number for it (the switch's business clock).
	Today   func() ledger.BusinessDate
	NextRRN func(ledger.BusinessDate) (string, error)
	// Begin and End, when set, hold a business date open while an
	// operation posts on it (the day close waits for them); without
	// them the operation uses Today.
	Begin func() ledger.BusinessDate
	End   func(ledger.BusinessDate)
	Log   *zap.Logger
	Now   func() time.Time // defaults to time.Now
	// PendingCredits records credits as pending (credit_mode: pending):
	// the card claims them at a load terminal (docs/recharge.md).
	PendingCredits bool
	// Sealer seals bank account numbers of bindings under DataKeyLabel;
	// IsGateway reports whether a name is a gateway link in force, one a
	// card may be bound at (asked at each binding: a reload adds and
	// removes links); Journal records binding changes.
	Sealer    Sealer
	IsGateway func(name string) bool
	Journal   *journal.Journal
	// HoldGateways, when set, holds the set of gateway links in force
	// until release is called: a binding holds it from its IsGateway
	// check to its commit, so that a reload cannot remove the link in
	// between (docs/gateway-links.md "Reloading links").
	HoldGateways func() (release func())
}

// Service is the recharge business logic. It is safe for concurrent use.
type Service struct {
	db        *pebble.DB
	ledger    *ledger.Ledger
	insts     map[string]*Institution
	today     func() ledger.BusinessDate
	begin     func() ledger.BusinessDate
	end       func(ledger.BusinessDate)
	nextRRN   func(ledger.BusinessDate) (string, error)
	log       *zap.Logger
	now       func() time.Time
	pending   bool
	sealer    Sealer
	isGateway func(string) bool
	holdGWs   func() func()
	journal   *journal.Journal

	seed   maphash.Seed
	orders [64]sync.Mutex // striped by institution + order
	cards  [64]sync.Mutex // striped by card number; always taken after an order stripe

	// afterUnbindBatch, when set (tests), is called after each synced
	// commit of UnbindGateway with the cards it unbound.
	afterUnbindBatch func(n int)
	// beforeUnbindCommit, when set (tests), is called with each of
	// UnbindGateway's batches just before its commit, and the cards it
	// unbinds.
	beforeUnbindCommit func(b *pebble.Batch, pans []string)
}

// New builds the service.
func New(o Options) (*Service, error) {
	s := &Service{db: o.DB, ledger: o.Ledger, insts: map[string]*Institution{}, today: o.Today,
		nextRRN: o.NextRRN, log: o.Log, now: o.Now, seed: maphash.MakeSeed(), begin: o.Begin, end: o.End, pending: o.PendingCredits}
	s.sealer, s.journal, s.isGateway = o.Sealer, o.Journal, o.IsGateway
	if s.isGateway == nil {
		s.isGateway = func(string) bool { return false }
	}
	s.holdGWs = o.HoldGateways
	if s.holdGWs == nil {
		s.holdGWs = func() func() { return func() {} }
	}
	if s.begin == nil || s.end == nil {
		s.begin, s.end = o.Today, func(ledger.BusinessDate) {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	for i := range o.Institutions {
		in := o.Institutions[i]
		if _, dup := s.insts[in.ID]; dup {
			return nil, fmt.Errorf("institution %s configured twice", in.ID)
		}
		s.insts[in.ID] = &in
	}
	return s, nil
}

// Institution returns the configured institution with id.
func (s *Service) Institution(id string) (*Institution, bool) {
	in, ok := s.insts[id]
	return in, ok
}

// AllowedAnywhere reports whether addr is on the allow-list of any
// institution: the gateway port refuses other connections at connect.
func (s *Service) AllowedAnywhere(addr netip.Addr) bool {
	for _, in := range s.insts {
		if in.Allows(addr) {
			return true
		}
	}
	return false
}

// Request is one operation as either front end decoded it.
type Request struct {
	Institution string
	Order       string // 48 ON
	PAN         string // 2
	Amount      ledger.Fen
	HasAmount   bool
	ProcCode    string // 3
	Currency    string // 49
	Name        string // 48 NM (verification)
}

// Outcome is the answer to a request.
type Outcome struct {
	RC       string
	RRN      string
	AuthCode string
	// Balances are set on an approved credit (field 54).
	Balances *ledger.Balances
	// Order query: the order's state (A, D or R), its decline code, card
	// and amount.
	Status   State
	StatusRC string
	PAN      string
	Amount   ledger.Fen
	// Replayed is set when the outcome is the stored one of an earlier
	// request for the same order.
	Replayed bool
}

// Commit adds the exchange's journal entries to b and commits it with
// sync; the front end supplies it, so that the money, the order record and
// the journal are one unit of work.
type Commit func(b *pebble.Batch, out Outcome) error

func (s *Service) lockOrder(inst, order string) func() {
	m := &s.orders[maphash.String(s.seed, inst+"\x00"+order)%uint64(len(s.orders))]
	m.Lock()
	return m.Unlock
}

func (s *Service) lockCard(pan string) func() {
	m := &s.cards[s.cardStripe(pan)]
	m.Lock()
	return m.Unlock
}

func (s *Service) cardStripe(pan string) int {
	return int(maphash.String(s.seed, pan) % uint64(len(s.cards)))
}

// lockCards takes the stripes of several cards, each once, in stripe
// order (so that two callers cannot deadlock), and returns their unlock.
func (s *Service) lockCards(pans []string) func() {
	var take [len(s.cards)]bool
	for _, pan := range pans {
		take[s.cardStripe(pan)] = true
	}
	for i, t := range take {
		if t {
			s.cards[i].Lock()
		}
	}
	return func() {
		for i, t := range take {
			if t {
				s.cards[i].Unlock()
			}
		}
	}
}

// Verify answers an account verification: 14 unknown card, 62 a card
// that is lost, frozen or closed, 05 a name that differs, 00 a match.
func (s *Service) Verify(r Request) Outcome {
	c, ok := s.ledger.Card(r.PAN)
	switch {
	case !ok:
		return Outcome{RC: spec.RCInvalidCard}
	case c.State != ledger.Active:
		return Outcome{RC: spec.RCRestrictedCard}
	case !NamesMatch(r.Name, c.Holder):
		return Outcome{RC: spec.RCDoNotHonour}
	}
	return Outcome{RC: spec.RCApproved}
}

// sameContent is the idempotency rule of a credit: the same 2, 3, 4 and
// 49 as the request that opened the order.
func (rec *orderRecord) sameContent(r Request) bool {
	return rec.PAN == r.PAN && rec.ProcCode == r.ProcCode && rec.Amount == r.Amount && rec.Currency == r.Currency
}

// ErrStorage wraps failures of storage or the ledger: the front ends
// answer 96 and nothing was done.
var ErrStorage = errors.New("recharge: storage failure")

// Credit credits a card for an order (docs/recharge.md "Credit"): an
// order already reversed is 12; a repeat with the same content gets the
// stored outcome, with other content 94; a new order is checked against
// the institution's limits and the card, posted, and stored, with the
// journal, in one synced commit.
func (s *Service) Credit(r Request, commit Commit) (Outcome, error) {
	in, ok := s.insts[r.Institution]
	if !ok {
		return Outcome{RC: spec.RCInvalidMerchant}, nil
	}
	defer s.lockOrder(r.Institution, r.Order)()
	rec, found, err := s.loadOrder(r.Institution, r.Order)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if found {
		var out Outcome
		switch {
		case rec.State == StateReversed || rec.State == StateReversedFirst:
			out = Outcome{RC: spec.RCInvalidTransaction}
		case !rec.sameContent(r):
			out = Outcome{RC: spec.RCDuplicate}
		default:
			out = Outcome{RC: rec.RC, RRN: rec.RRN, AuthCode: rec.AuthCode, Replayed: true}
			if rec.State == StateApproved {
				bal := rec.Balances
				out.Balances = &bal
			}
		}
		return out, s.commitOnly(commit, out)
	}

	date := s.begin()
	defer s.end(date)
	rrn, err := s.nextRRN(date)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: RRN: %v", ErrStorage, err)
	}
	rec = orderRecord{PAN: r.PAN, ProcCode: r.ProcCode, Amount: r.Amount, Currency: r.Currency,
		RRN: rrn, Date: date, Time: s.now(), Pending: s.pending}
	decline := func(rc string) (Outcome, error) {
		rec.State, rec.RC = StateDeclined, rc
		out := Outcome{RC: rc, RRN: rrn}
		return out, s.commitOrder(r, rec, nil, commit, out)
	}
	switch {
	case !r.HasAmount || r.Amount <= 0 || r.Amount > ledger.MaxAmount:
		return decline(spec.RCInvalidAmount)
	case in.MaxCredit > 0 && r.Amount > in.MaxCredit:
		return decline(spec.RCExceedsAmountLimit)
	}
	defer s.lockCard(r.PAN)()
	spent, err := s.daily(r.Institution, r.PAN, date)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if in.MaxDailyCredit > 0 && spent+r.Amount > in.MaxDailyCredit {
		return decline(spec.RCExceedsAmountLimit)
	}

	b := s.db.NewBatch()
	defer b.Close()
	var out Outcome
	lreq := &ledger.OutsideCredit{
		Common:      ledger.Common{Key: creditKey(r.Institution, r.Order), Date: date, RRN: rrn},
		PAN:         r.PAN,
		Amount:      r.Amount,
		Institution: r.Institution,
		Pending:     s.pending,
	}
	_, err = s.ledger.Execute(lreq, b, func(res ledger.Result) error {
		rec.RC = declineRC(res.Decline)
		out = Outcome{RC: rec.RC, RRN: rrn}
		if res.Approved() {
			rec.State, rec.TxID, rec.AuthCode, rec.Balances = StateApproved, res.TxID, res.AuthCode, res.Balances
			out.AuthCode, out.Balances = res.AuthCode, &rec.Balances
			if err := putDaily(b, r.Institution, r.PAN, date, spent+r.Amount); err != nil {
				return err
			}
			if rec.Pending {
				if err := b.Set(pendingKey(r.PAN, rec.Time, r.Institution, r.Order), nil, nil); err != nil {
					return err
				}
			}
		} else {
			rec.State = StateDeclined
		}
		if err := b.Set(orderKey(r.Institution, r.Order), rec.encode(), nil); err != nil {
			return err
		}
		maybeCrash(crashBeforeCommit)
		if err := commit(b, out); err != nil {
			return err
		}
		maybeCrash(crashAfterCommit)
		return nil
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: credit %s/%s: %v", ErrStorage, r.Institution, r.Order, err)
	}
	if out.RC == spec.RCApproved {
		s.log.Info("outside credit", zap.String("institution", r.Institution), zap.String("order", r.Order),
			zap.String("card", cardno.Mask(r.PAN)), zap.Int64("amount_fen", int64(r.Amount)), zap.String("rrn", rrn))
	}
	return out, nil
}

func creditKey(inst, order string) string   { return "rc/" + inst + "/" + order }
func reversalKey(inst, order string) string { return "rr/" + inst + "/" + order }

// commitOnly commits a batch holding nothing but what commit adds (the
// journal entries of an answer that changes nothing).
func (s *Service) commitOnly(commit Commit, out Outcome) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := commit(b, out); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return nil
}

// commitOrder stores an order record decided without the ledger (and the
// daily total when given) with the exchange's journal entries.
func (s *Service) commitOrder(r Request, rec orderRecord, daily *ledger.Fen, commit Commit, out Outcome) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(orderKey(r.Institution, r.Order), rec.encode(), nil); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if daily != nil {
		if err := putDaily(b, r.Institution, rec.PAN, rec.Date, *daily); err != nil {
			return fmt.Errorf("%w: %v", ErrStorage, err)
		}
	}
	if err := commit(b, out); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return nil
}

// Query answers an order query: 25 for an order never seen, else 00 with
// the order's state.
func (s *Service) Query(r Request) (Outcome, error) {
	rec, found, err := s.loadOrder(r.Institution, r.Order)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if !found {
		return Outcome{RC: spec.RCOriginalNotFound}, nil
	}
	out := Outcome{RC: spec.RCApproved, Status: rec.State, PAN: rec.PAN, Amount: rec.Amount, RRN: rec.RRN}
	switch rec.State {
	case StateApproved, StateReversed:
		out.AuthCode = rec.AuthCode
	case StateDeclined:
		out.StatusRC = rec.RC
	case StateReversedFirst:
		out.Status, out.RRN = StateReversed, rec.ReversalRRN
	}
	return out, nil
}

// Reverse reverses the credit of an order (docs/recharge.md "Credit
// reversal"). It is approved whatever it finds, except that a card or
// amount other than the order's is 64 with nothing reversed: an order never
// seen is remembered as reversed (a later credit for it gets 12), a
// repeated reversal changes nothing, a declined order has nothing to undo.
func (s *Service) Reverse(r Request, commit Commit) (Outcome, error) {
	if _, ok := s.insts[r.Institution]; !ok {
		return Outcome{RC: spec.RCInvalidMerchant}, nil
	}
	defer s.lockOrder(r.Institution, r.Order)()
	rec, found, err := s.loadOrder(r.Institution, r.Order)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if found && (rec.PAN != r.PAN || !r.HasAmount || rec.Amount != r.Amount) {
		out := Outcome{RC: spec.RCAmountDiffers}
		return out, s.commitOnly(commit, out)
	}
	ok := Outcome{RC: spec.RCApproved}
	if found && rec.State != StateApproved {
		return ok, s.commitOnly(commit, ok)
	}
	date := s.begin()
	defer s.end(date)
	rrn, err := s.nextRRN(date)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: RRN: %v", ErrStorage, err)
	}
	ok.RRN = rrn
	if !found {
		rec = orderRecord{State: StateReversedFirst, PAN: r.PAN, ProcCode: r.ProcCode, Amount: r.Amount,
			Currency: r.Currency, RC: spec.RCApproved, Date: date, Time: s.now(), ReversedAt: s.now(), ReversalRRN: rrn}
		return ok, s.commitOrder(r, rec, nil, commit, ok)
	}

	defer s.lockCard(rec.PAN)()
	spent, err := s.daily(r.Institution, rec.PAN, rec.Date)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	out := ok
	lreq := &ledger.OutsideCreditReversal{
		Common:   ledger.Common{Key: reversalKey(r.Institution, r.Order), Date: date, RRN: rrn},
		PAN:      rec.PAN,
		Amount:   rec.Amount,
		Original: rec.TxID,
	}
	_, err = s.ledger.Execute(lreq, b, func(res ledger.Result) error {
		if !res.Approved() {
			// The ledger takes back a spent credit as a receivable, so
			// this is a broken invariant (the card closed and gone):
			// the order stays approved and the institution is told.
			out = Outcome{RC: declineRC(res.Decline), RRN: rrn}
			s.log.Error("outside credit reversal declined by the ledger", zap.String("institution", r.Institution),
				zap.String("order", r.Order), zap.String("card", cardno.Mask(rec.PAN)), zap.Stringer("reason", res.Decline))
			return commit(b, out)
		}
		rec.State, rec.ReversedAt, rec.ReversalRRN = StateReversed, s.now(), rrn
		if err := b.Set(orderKey(r.Institution, r.Order), rec.encode(), nil); err != nil {
			return err
		}
		if err := putDaily(b, r.Institution, rec.PAN, rec.Date, spent-rec.Amount); err != nil {
			return err
		}
		if rec.Pending {
			if err := b.Delete(pendingKey(rec.PAN, rec.Time, r.Institution, r.Order), nil); err != nil {
				return err
			}
		}
		return commit(b, out)
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: reverse %s/%s: %v", ErrStorage, r.Institution, r.Order, err)
	}
	return out, nil
}

// declineRC maps the ledger's reasons for an outside credit or its
// reversal to response codes (docs/recharge.md "Response codes").
func declineRC(d ledger.Decline) string {
	switch d {
	case ledger.Approved:
		return spec.RCApproved
	case ledger.DeclineInvalidCard:
		return spec.RCInvalidCard
	case ledger.DeclineRestrictedCard:
		return spec.RCRestrictedCard
	case ledger.DeclineExceedsAmountLimit:
		return spec.RCExceedsAmountLimit
	case ledger.DeclineInvalidAmount:
		return spec.RCInvalidAmount
	case ledger.DeclineAmountDiffers:
		return spec.RCAmountDiffers
	case ledger.DeclineInsufficientFunds:
		return spec.RCInsufficientFunds
	case ledger.DeclineDuplicate:
		return spec.RCDuplicate
	case ledger.DeclineOriginalNotFound:
		return spec.RCOriginalNotFound
	}
	return spec.RCSystemMalfunction
}

func zapCard(pan string) zap.Field { return zap.String("card", cardno.Mask(pan)) }
func zapStr(k, v string) zap.Field { return zap.String(k, v) }
