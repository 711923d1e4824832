package ledger

import (
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/internal/ident"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// CardSpec describes a card to open, as the switch's YAML configuration
// carries it. Amounts are decimal yuan strings ("500.00") parsed exactly
// into fen. Absent limits: daily and per-transaction limits 0 mean none;
// an absent no-PIN limit or maximum balance takes the ledger's default; an
// absent fee rate means Options.VisitorFeeBP for visitors and 0 otherwise.
type CardSpec struct {
	PAN         string     `yaml:"pan"`
	Holder      string     `yaml:"holder"`
	HolderType  HolderType `yaml:"holder_type"`
	Cash        Fen        `yaml:"cash"`
	Subsidy     Fen        `yaml:"subsidy"`
	State       CardState  `yaml:"state"` // empty means active
	List        ListFlag   `yaml:"list"`
	DailyLimit  Fen        `yaml:"daily_limit"`
	PerTxnLimit Fen        `yaml:"per_txn_limit"`
	NoPINLimit  *Fen       `yaml:"no_pin_limit"`
	MaxBalance  *Fen       `yaml:"max_balance"`
	FeeRateBP   *int32     `yaml:"fee_rate_bp"`
}

// MerchantSpec describes a merchant. FeeRateBP is the commission the school
// keeps at settlement (basis points); SettlementDays the T+N cycle.
type MerchantSpec struct {
	ID             string `yaml:"id"`
	Name           string `yaml:"name"`
	OnCampus       bool   `yaml:"on_campus"`
	FeeRateBP      int32  `yaml:"fee_rate_bp"`
	SettlementDays int32  `yaml:"settlement_days"`
}

// Limits are a card's spending limits; 0 means no limit for the daily and
// per-transaction limits and the maximum balance. NoPINLimit 0 means every
// debit needs a PIN.
type Limits struct {
	DailyLimit  Fen
	PerTxnLimit Fen
	NoPINLimit  Fen
	MaxBalance  Fen
}

const maxHolderLen = 64

func validPAN(pan string) bool {
	if len(pan) < minPANLen || len(pan) > maxPANLen {
		return false
	}
	for i := 0; i < len(pan); i++ {
		if pan[i] < '0' || pan[i] > '9' {
			return false
		}
	}
	return true
}

func validLimit(v Fen) bool { return v >= 0 && v <= MaxAmount }

// beginAdmin is the date stamped on admin postings: the switch's business
// date when it gave one (Options.Begin/End or Today), else the calendar
// day. The caller calls end once its posting is committed (or abandoned):
// with Options.Begin the date is held open until then.
func (l *Ledger) beginAdmin() (date BusinessDate, end func()) {
	if l.opts.Begin != nil && l.opts.End != nil {
		d := l.opts.Begin()
		return d, func() { l.opts.End(d) }
	}
	if l.opts.Today != nil {
		return l.opts.Today(), func() {}
	}
	return DateOf(time.Now()), func() {}
}

// OpenCard opens a card with its opening balances, funded from the opening
// funds (cash) and subsidy funding (subsidy) system accounts so that the
// sum over all accounts stays zero. pvv is the HSM's PIN verification
// value, stored opaque. It commits itself with sync. A card that already
// exists gives ErrCardExists (the switch seeds on every start and ignores
// it).
func (l *Ledger) OpenCard(spec CardSpec, pvv []byte) error {
	c, err := l.cardFromSpec(spec, pvv)
	if err != nil {
		return err
	}
	l.admin.Lock()
	defer l.admin.Unlock()
	if l.entry(c.PAN) != nil {
		return fmt.Errorf("open card %s: %w", cardno.Mask(c.PAN), ErrCardExists)
	}
	if err := l.roomForCard(); err != nil {
		return fmt.Errorf("open card %s: %w", cardno.Mask(c.PAN), err)
	}
	var legs []leg
	if c.Cash > 0 {
		legs = append(legs, leg{CardCash(c.PAN), c.Cash}, leg{OpeningFunds, -c.Cash})
		c.addContrib(OpeningFunds, -c.Cash)
	}
	if c.Subsidy > 0 {
		legs = append(legs, leg{CardSubsidy(c.PAN), c.Subsidy}, leg{SubsidyFunding, -c.Subsidy})
		c.addContrib(SubsidyFunding, -c.Subsidy)
	}
	date, end := l.beginAdmin()
	defer end()
	b := l.db.NewBatch()
	defer b.Close()
	var days func(bool)
	if legs != nil {
		p := posting{TxID: l.lastTx.Add(1), Kind: KindOpenCard, Date: date, PAN: c.PAN, Amount: c.Cash + c.Subsidy, Legs: legs}
		if err := b.Set(postKey(p.TxID), p.encode(), nil); err != nil {
			return err
		}
		var err error
		if days, err = l.days.stage(b, []*posting{&p}); err != nil {
			return err
		}
	}
	if err := putCard(b, nil, c, nil, nil); err != nil {
		if days != nil {
			days(false)
		}
		return err
	}
	err = b.Commit(pebble.Sync)
	if days != nil {
		days(err == nil)
	}
	if err != nil {
		return fmt.Errorf("open card %s: %w", cardno.Mask(c.PAN), err)
	}
	e := newCardEntry(c)
	l.mu.Lock()
	l.cards[c.PAN] = e
	l.mu.Unlock()
	for _, ct := range c.Contribs {
		l.addBalance(ct.Account, ct.Amount)
	}
	return nil
}

func (l *Ledger) cardFromSpec(s CardSpec, pvv []byte) (*card, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: card %s: %s", ErrInvalidRequest, cardno.Mask(s.PAN), what)
	}
	if !validPAN(s.PAN) {
		return nil, bad("card number must be 12 to 19 digits")
	}
	if err := ident.Name("holder name", s.Holder, maxHolderLen); err != nil {
		return nil, bad(err.Error())
	}
	if s.HolderType < Student || s.HolderType > Visitor {
		return nil, bad("holder type must be student, staff or visitor")
	}
	if len(pvv) > maxField {
		return nil, bad("PIN verification value too long")
	}
	c := &card{
		PAN: s.PAN, Holder: s.Holder, HolderType: s.HolderType, State: s.State, List: s.List,
		Cash: s.Cash, Subsidy: s.Subsidy, DailyLimit: s.DailyLimit, PerTxnLimit: s.PerTxnLimit,
		NoPINLimit: l.opts.DefaultNoPINLimit, MaxBalance: l.opts.DefaultMaxBalance,
		PVV: append([]byte(nil), pvv...),
	}
	if c.State == 0 {
		c.State = Active
	}
	if c.State == Closed {
		return nil, bad("a card cannot be opened closed")
	}
	if c.State == Lost {
		c.LostFrom = Active
	}
	if s.NoPINLimit != nil {
		c.NoPINLimit = *s.NoPINLimit
	}
	if s.MaxBalance != nil {
		c.MaxBalance = *s.MaxBalance
	}
	switch {
	case s.FeeRateBP != nil:
		c.FeeBP = *s.FeeRateBP
	case s.HolderType == Visitor:
		c.FeeBP = l.opts.VisitorFeeBP
	}
	if c.FeeBP < 0 || c.FeeBP > maxFeeBP {
		return nil, bad("fee rate must be 0..10000 basis points")
	}
	for _, v := range []Fen{c.Cash, c.Subsidy, c.DailyLimit, c.PerTxnLimit, c.NoPINLimit, c.MaxBalance} {
		if !validLimit(v) {
			return nil, bad("amounts and limits must be 0..MaxAmount")
		}
	}
	if c.List > ListBlack {
		return nil, bad("bad list flag")
	}
	return c, nil
}

// AddMerchant registers a merchant. A known id gives ErrMerchantExists.
func (l *Ledger) AddMerchant(spec MerchantSpec) error {
	if err := ident.ID("merchant id", spec.ID, 1, maxMerchantLen); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if err := ident.Name("merchant name", spec.Name, maxHolderLen); err != nil {
		return fmt.Errorf("%w: merchant %s: %v", ErrInvalidRequest, spec.ID, err)
	}
	if spec.FeeRateBP < 0 || spec.FeeRateBP > maxFeeBP || spec.SettlementDays < 0 || spec.SettlementDays > 366 {
		return fmt.Errorf("%w: merchant %s: fee rate or settlement days out of range", ErrInvalidRequest, spec.ID)
	}
	l.admin.Lock()
	defer l.admin.Unlock()
	if l.merchant(spec.ID) != nil {
		return fmt.Errorf("add merchant %s: %w", spec.ID, ErrMerchantExists)
	}
	l.mu.RLock()
	n := len(l.merchants)
	l.mu.RUnlock()
	if n >= l.opts.MaxMerchants {
		return fmt.Errorf("add merchant %s: %w: %d merchants (ledger.max_merchants)", spec.ID, ErrLimit, l.opts.MaxMerchants)
	}
	m := &merchant{ID: spec.ID, Name: spec.Name, OnCampus: spec.OnCampus, FeeRateBP: spec.FeeRateBP, SettlementDays: spec.SettlementDays}
	if err := l.db.Set(merchantKey(m.ID), m.encode(), pebble.Sync); err != nil {
		return fmt.Errorf("add merchant %s: %w", m.ID, err)
	}
	l.mu.Lock()
	l.prepareMerchant(m)
	l.merchants[m.ID] = m
	l.mu.Unlock()
	return nil
}

// MerchantInfo is a read-only view of a merchant.
type MerchantInfo = MerchantSpec

// Merchant returns a merchant's parameters.
func (l *Ledger) Merchant(id string) (MerchantInfo, bool) {
	m := l.merchant(id)
	if m == nil {
		return MerchantInfo{}, false
	}
	return MerchantInfo{ID: m.ID, Name: m.Name, OnCampus: m.OnCampus, FeeRateBP: m.FeeRateBP, SettlementDays: m.SettlementDays}, true
}

// updateCard runs an admin change on one card under its lock and commits
// it with sync.
func (l *Ledger) updateCard(what, pan string, f func(c *card) error) error {
	e := l.entry(pan)
	if e == nil {
		return fmt.Errorf("%s %s: %w", what, cardno.Mask(pan), ErrUnknownCard)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.cur.Load()
	c := old.clone()
	if err := f(&c); err != nil {
		return fmt.Errorf("%s %s: %w", what, cardno.Mask(pan), err)
	}
	b := l.db.NewBatch()
	defer b.Close()
	if err := putCard(b, old, &c, nil, nil); err != nil {
		return fmt.Errorf("%s %s: %w", what, cardno.Mask(pan), err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("%s %s: %w", what, cardno.Mask(pan), err)
	}
	e.cur.Store(&c)
	return nil
}

// Freeze blocks debits on an active card (credits still arrive).
func (l *Ledger) Freeze(pan string) error {
	return l.updateCard("freeze", pan, func(c *card) error { return applyEvent(c, EventFreeze) })
}

// Unfreeze makes a frozen card active again.
func (l *Ledger) Unfreeze(pan string) error {
	return l.updateCard("unfreeze", pan, func(c *card) error { return applyEvent(c, EventUnfreeze) })
}

// ReportLost marks an active or frozen card lost, remembering which.
func (l *Ledger) ReportLost(pan string) error {
	return l.updateCard("report lost", pan, func(c *card) error { return applyEvent(c, EventReportLost) })
}

// CancelLoss returns a lost card to the state it was in before the loss
// report: a card frozen, then lost, then found is frozen again.
func (l *Ledger) CancelLoss(pan string) error {
	return l.updateCard("cancel loss", pan, func(c *card) error { return applyEvent(c, EventFound) })
}

// SetLimits replaces a card's limits.
func (l *Ledger) SetLimits(pan string, lim Limits) error {
	for _, v := range []Fen{lim.DailyLimit, lim.PerTxnLimit, lim.NoPINLimit, lim.MaxBalance} {
		if !validLimit(v) {
			return fmt.Errorf("%w: limit out of range", ErrInvalidRequest)
		}
	}
	return l.updateCard("set limits", pan, func(c *card) error {
		c.DailyLimit, c.PerTxnLimit, c.NoPINLimit, c.MaxBalance = lim.DailyLimit, lim.PerTxnLimit, lim.NoPINLimit, lim.MaxBalance
		return nil
	})
}

// SetList puts a card on the grey or black list, or takes it off.
func (l *Ledger) SetList(pan string, f ListFlag) error {
	if f > ListBlack {
		return fmt.Errorf("%w: bad list flag", ErrInvalidRequest)
	}
	return l.updateCard("set list", pan, func(c *card) error { c.List = f; return nil })
}

// SetPINVerificationValue stores a new PIN verification value (after a PIN
// change) and resets the try counter, unlocking the PIN.
func (l *Ledger) SetPINVerificationValue(pan string, pvv []byte) error {
	if len(pvv) > maxField {
		return fmt.Errorf("%w: PIN verification value too long", ErrInvalidRequest)
	}
	return l.updateCard("set PIN", pan, func(c *card) error {
		c.PVV = append([]byte(nil), pvv...)
		c.PINTries = 0
		return nil
	})
}

// ReleaseExpiredHolds releases every hold on pan whose expiry is before
// date and returns how many it released. Operations on a card release its
// expired holds anyway; this is for an end-of-day sweep.
func (l *Ledger) ReleaseExpiredHolds(pan string, date BusinessDate) (int, error) {
	if !date.Valid() {
		return 0, fmt.Errorf("%w: bad date", ErrInvalidRequest)
	}
	n := 0
	err := l.updateCard("release holds", pan, func(c *card) error { n = releaseExpired(c, date); return nil })
	return n, err
}

// Merchants returns every merchant, ordered by id.
func (l *Ledger) Merchants() []MerchantInfo {
	l.mu.RLock()
	out := make([]MerchantInfo, 0, len(l.merchants))
	for _, m := range l.merchants {
		out = append(out, MerchantInfo{ID: m.ID, Name: m.Name, OnCampus: m.OnCampus, FeeRateBP: m.FeeRateBP, SettlementDays: m.SettlementDays})
	}
	l.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Cards returns the card numbers of every card (for sweeps and reports).
func (l *Ledger) Cards() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]string, 0, len(l.cards))
	for p := range l.cards {
		out = append(out, p)
	}
	return out
}

// replacement names the card a replacement creates and builds it from the
// old card's state as it is under the lock, so nothing committed on the
// old card meanwhile (a day's spend, a list flag) is lost.
type replacement struct {
	pan   string
	build func(old *card) *card
}

// moveAll moves both purses of from to the given accounts (cash, subsidy)
// as one posting of kind k, committed with sync, and applies f to the
// cards' states in the same batch. Both cards are locked in PAN order.
func (l *Ledger) moveAll(k Kind, from string, repl *replacement, cashTo, subTo AccountID, f func(old *card) error) error {
	pans := []string{from}
	var to *card
	if repl != nil {
		pans = append(pans, repl.pan)
	}
	date, end := l.beginAdmin()
	defer end()
	tx := &txn{l: l, c: &Common{Date: date}, kind: k}
	tx.lockCards(pans...)
	defer tx.unlockCards()
	old := tx.staged.get(from)
	if old == nil {
		return ErrUnknownCard
	}
	if _, ok := cardTransitions[EventClose][old.State]; !ok {
		return fmt.Errorf("%w: card is %s", ErrCardState, old.State)
	}
	if len(old.Holds) > 0 {
		return fmt.Errorf("%w: card has %d open pre-auth holds", ErrCardState, len(old.Holds))
	}
	if repl != nil {
		to = repl.build(old)
		tx.staged.put(to.PAN, to)
		tx.staged.markDirty(to.PAN)
	}
	p := tx.newPosting(k, from)
	if to != nil {
		p.PAN2 = to.PAN
	}
	p.Amount = old.Cash + old.Subsidy
	if old.Cash > 0 {
		p.Legs = append(p.Legs, leg{CardCash(from), -old.Cash}, leg{cashTo, old.Cash})
	}
	if old.Subsidy > 0 {
		p.Legs = append(p.Legs, leg{CardSubsidy(from), -old.Subsidy}, leg{subTo, old.Subsidy})
	}
	if p.Legs != nil {
		d, err := tx.apply(p)
		if err != nil {
			return err
		}
		if d != Approved {
			return fmt.Errorf("%w: %s", ErrCardState, d)
		}
		tx.postings = append(tx.postings, p)
	}
	if owed := tx.staged.get(from).owed(); to != nil && owed > 0 {
		// The debt follows the holder to the new card: the old card's
		// receivable is moved (two legs on CardReceivable, one per card,
		// recorded on the posting so the move is on the books).
		// The new card is read from the staged set again: apply, when the
		// card had money to move, staged its own working copy of it.
		tx.staged.get(from).addContrib(CardReceivable, owed)
		tx.staged.get(to.PAN).addContrib(CardReceivable, -owed)
		p.Legs = append(p.Legs, leg{CardReceivable, owed}, leg{CardReceivable, -owed})
		if len(tx.postings) == 0 {
			tx.postings = append(tx.postings, p)
		}
	}
	if err := f(tx.staged.get(from)); err != nil {
		return err
	}
	tx.staged.markDirty(from)
	b := l.db.NewBatch()
	defer b.Close()
	for i, pan := range tx.staged.pans {
		if !tx.staged.dirty[i] {
			continue
		}
		if err := putCard(b, tx.published(pan), tx.staged.cards[i], nil, nil); err != nil {
			return err
		}
	}
	for _, p := range tx.postings {
		if err := b.Set(postKey(p.TxID), p.encode(), nil); err != nil {
			return err
		}
	}
	days, err := l.days.stage(b, tx.postings)
	if err != nil {
		return err
	}
	err = b.Commit(pebble.Sync)
	if days != nil {
		days(err == nil)
	}
	if err != nil {
		return err
	}
	tx.publish()
	if to != nil {
		e := newCardEntry(tx.staged.get(to.PAN))
		l.mu.Lock()
		l.cards[to.PAN] = e
		l.mu.Unlock()
	}
	return nil
}

// CloseCard closes a card; its balances move to the refund payable (owed
// to the holder until paid out). A card with open holds must have them
// completed, cancelled or expired first.
func (l *Ledger) CloseCard(pan string) error {
	if err := l.moveAll(KindCloseCard, pan, nil, RefundPayable, RefundPayable, func(c *card) error {
		return applyEvent(c, EventClose)
	}); err != nil {
		return fmt.Errorf("close card %s: %w", cardno.Mask(pan), err)
	}
	return nil
}

// ReplaceCard moves a card's balances, limits, holder and fee rate to a new
// card number and closes the old card. pvv is the new card's PIN
// verification value (nil keeps the old one).
func (l *Ledger) ReplaceCard(oldPAN, newPAN string, pvv []byte) error {
	l.admin.Lock()
	defer l.admin.Unlock()
	if !validPAN(newPAN) {
		return fmt.Errorf("%w: replacement card number must be 12 to 19 digits", ErrInvalidRequest)
	}
	if l.entry(newPAN) != nil {
		return fmt.Errorf("replace card %s: %w", cardno.Mask(oldPAN), ErrCardExists)
	}
	if err := l.roomForCard(); err != nil {
		return fmt.Errorf("replace card %s: %w", cardno.Mask(oldPAN), err)
	}
	e := l.entry(oldPAN)
	if e == nil {
		return fmt.Errorf("replace card %s: %w", cardno.Mask(oldPAN), ErrUnknownCard)
	}
	if len(pvv) > maxField {
		return fmt.Errorf("%w: PIN verification value too long", ErrInvalidRequest)
	}
	repl := &replacement{pan: newPAN, build: func(cur *card) *card {
		n := &card{
			PAN: newPAN, Holder: cur.Holder, HolderType: cur.HolderType, State: Active, List: cur.List,
			DailyLimit: cur.DailyLimit, PerTxnLimit: cur.PerTxnLimit, NoPINLimit: cur.NoPINLimit,
			MaxBalance: cur.MaxBalance, FeeBP: cur.FeeBP, PVV: append([]byte(nil), cur.PVV...),
			DayDate: cur.DayDate, DaySpent: cur.DaySpent,
		}
		if pvv != nil {
			n.PVV = append([]byte(nil), pvv...)
		}
		return n
	}}
	if err := l.moveAll(KindReplaceCard, oldPAN, repl, CardCash(newPAN), CardSubsidy(newPAN), func(c *card) error {
		c.ReplacedBy = newPAN
		return applyEvent(c, EventClose)
	}); err != nil {
		return fmt.Errorf("replace card %s: %w", cardno.Mask(oldPAN), err)
	}
	return nil
}

// roomForCard refuses one more card when the ledger holds MaxCards (the
// caller holds l.admin, so the count cannot grow meanwhile). Closed and
// replaced cards count: their records stay.
func (l *Ledger) roomForCard() error {
	l.mu.RLock()
	n := len(l.cards)
	l.mu.RUnlock()
	if n >= l.opts.MaxCards {
		return fmt.Errorf("%w: %d cards (ledger.max_cards)", ErrLimit, l.opts.MaxCards)
	}
	return nil
}
