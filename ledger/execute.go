package ledger

import (
	"encoding/binary"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"math/bits"
	"sort"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Execute runs one operation as a unit of work.
//
// It locks what the operation touches in a fixed order (first the
// idempotency key and terminal references, sorted; then the cards, sorted
// by card number), validates the operation against the current state,
// writes the postings, the new card states, the status of linked
// transactions, the indexes and the idempotency record into b, and calls
// commit(result). commit belongs to the caller: it adds its own entries
// (the journal) to b and commits b with pebble.Sync, returning the error.
// Only after commit returns nil does the ledger publish the new state in
// memory; the locks are held until then, so no later operation on the same
// card can become durable before this one. A crash between the commit and
// the publication is harmless: Open reloads the state from Pebble.
//
// commit is called exactly once for every request that passes the
// structural checks: for approvals, for declines (Result.Decline; a PIN
// try increment is part of b) and for idempotent replays (Result.Replay;
// nothing of the ledger's is in b then). Execute returns an error, and
// publishes nothing, when the request breaks a structural bound
// (ErrInvalidRequest, before commit is called), when storage fails, or
// when commit fails.
func (l *Ledger) Execute(req Request, b *pebble.Batch, commit func(Result) error) (Result, error) {
	if err := validate(req); err != nil {
		return Result{}, err
	}
	c := req.common()
	kind := req.Kind()
	var (
		ik  []byte
		sum uint64
	)
	if !c.Deduplicated {
		var h fp
		h.e.b = h.buf[:0]
		req.fingerprint(&h)
		sum = h.sum()
		ik = idemKey(kind, c.Key)
	}

	// The txn comes first: the key of the operation's own reference is
	// built in it. It is reused (txnPool): end releases everything it
	// holds, once Execute has nothing more to do with it.
	tx := txnPool.Get().(*txn)
	tx.l, tx.b, tx.c, tx.kind, tx.res = l, b, c, kind, Result{Kind: kind}
	defer tx.end()
	var own, orig []byte
	if c.Terminal != "" {
		own = appendRefKey(tx.ownRefBuf[:0], TxnRef{c.Terminal, c.Batch, c.STAN})
	}
	if ref, ok := originalRef(req); ok {
		orig = refKey(ref)
	}
	tx.keys = l.keys.lockAll(ik, own, orig)

	var raw []byte
	if !c.KnownNew && ik != nil {
		var err error
		if raw, err = get(l.db, ik); err != nil {
			return Result{}, fmt.Errorf("%s %s: read idempotency record: %w", kind, c.Key, err)
		}
	}
	if raw != nil {
		rec, err := decodeIdem(raw)
		if err != nil {
			return Result{}, fmt.Errorf("%s %s: idempotency record: %w", kind, c.Key, err)
		}
		res := rec.Result
		if rec.Fingerprint != sum {
			res = Result{Kind: kind, Decline: DeclineDuplicate}
		} else {
			res.Replay = true
		}
		if err := commit(res); err != nil {
			return res, fmt.Errorf("%s %s: commit replay: %w", kind, c.Key, err)
		}
		return res, nil
	}

	tx.ownRef = own
	if err := tx.run(req); err != nil {
		return Result{}, fmt.Errorf("%s %s: %w", kind, c.Key, err)
	}
	if err := tx.write(ik, sum); err != nil {
		tx.daysCommitted(false)
		return Result{}, fmt.Errorf("%s %s: stage batch: %w", kind, c.Key, err)
	}
	err := commit(tx.res)
	tx.daysCommitted(err == nil)
	if err != nil {
		if tx.ownRef != nil {
			tx.l.recent.drop(TxnRef{c.Terminal, c.Batch, c.STAN})
		}
		return tx.res, fmt.Errorf("%s %s: commit: %w", kind, c.Key, err)
	}
	tx.publish()
	return tx.res, nil
}

// txnPool keeps the working state of Execute calls for the next ones: a
// txn is a kilobyte, and one per operation was most of the bytes an
// operation allocated. Nothing Execute returns or publishes points into
// it (cards are published as their own copies, the batch copies what it
// is given, results are values).
var txnPool = sync.Pool{New: func() any { return new(txn) }}

// end unlocks what the operation locked (the cards, then the keys), and
// clears the txn (so it keeps nothing alive) for the pool.
func (tx *txn) end() {
	tx.unlockCards()
	tx.keys.unlock()
	*tx = txn{}
	txnPool.Put(tx)
}

func originalRef(req Request) (TxnRef, bool) {
	var r TxnRef
	switch q := req.(type) {
	case *Void:
		r = q.Original
	case *CashLoadVoid:
		r = q.Original
	case *CompletionVoid:
		r = q.Original
	case *Reversal:
		r = q.Original
	default:
		return TxnRef{}, false
	}
	if r.Terminal == "" {
		r.Terminal = req.common().Terminal
	}
	return r, true
}

// txn is the working state of one Execute call.
type txn struct {
	l    *Ledger
	b    *pebble.Batch
	c    *Common
	kind Kind
	res  Result

	entries  []*cardEntry // locked, in PAN order
	staged   cardSet      // the locked cards' private copies, and which changed
	primary  string       // the card the result's balances describe
	deltas   []leg        // changes of non-card accounts, one entry per account
	postings []*posting
	loaded   map[uint64]*posting
	statuses map[uint64]*status
	dirtySt  map[uint64]bool
	approved *posting // the posting whose own reference and RRN get indexed
	// merch is the merchant a purchase looked up: its payable's balance
	// and id digits are at hand when the posting set is written and
	// published.
	merch    *merchant
	ownRef   []byte  // refKey of the operation's own reference (nil without a terminal)
	noIndex  bool    // reversals share the original's reference: never index them
	tomb     *TxnRef // reversal tombstone to write
	tombKind Kind    // the original kind the tombstone blocks
	applied  bool    // apply changed staged cards: the operation must be approved
	// appliedPosting is the posting apply last applied, and what it did
	// to its own card's cash and subsidy purses.
	appliedPosting          *posting
	appliedCash, appliedSub Fen
	// days is the day index's completion when the postings widened a
	// date's span (dayindex.go): called once the commit has returned.
	days func(committed bool)
	// coverShortfall makes apply post to the card receivable what a
	// debit of a purse cannot take from it (reversals: always approved).
	coverShortfall bool

	// Backing arrays of the slices above for the common operation (one
	// or two cards, one posting set, a few non-card accounts) and the
	// scratch its records are encoded in before the batch copies them:
	// they come with the txn's own allocation.
	locked      bool
	stagedBuf   cardSetBuf
	entriesBuf  [2]*cardEntry
	postingsBuf [1]*posting
	deltasBuf   [2]leg
	scratch     [128]byte
	postingBuf  posting // newPosting's first posting set
	postingUsed bool
	legsBuf     [4]leg // the legs of a purchase (debitLegs)
	ownRefBuf   [2 + maxTerminalLen + 9]byte
	keys        heldKeys // the key locks Execute took
}

// purseAccounts are a card's purse accounts.
type purseAccounts struct{ cash, subsidy AccountID }

// purses returns the purse accounts of pan: built once with its entry
// when the card is locked, else now.
func (tx *txn) purses(pan string) purseAccounts {
	for _, e := range tx.entries {
		if e.pan == pan {
			return purseAccounts{e.cash, e.subsidy}
		}
	}
	return purseAccounts{CardCash(pan), CardSubsidy(pan)}
}

// lockCards locks the cards (in PAN order, after the key locks) and stages
// each (cardSet: a private copy is made on the first get); unknown cards
// stay absent from staged. Expired
// holds are released here, as the first thing any operation on the card
// does.
func (tx *txn) lockCards(pans ...string) {
	tx.beginLocking()
	if len(pans) > 1 {
		sort.Strings(pans)
	}
	for i, pan := range pans {
		if pan == "" || (i > 0 && pan == pans[i-1]) {
			continue
		}
		tx.lockEntry(pan, tx.l.entry(pan))
	}
}

// lockCard is lockCards(pan) for a card whose entry the caller looked up
// (nil: an unknown card).
func (tx *txn) lockCard(pan string, e *cardEntry) {
	tx.beginLocking()
	if pan != "" {
		tx.lockEntry(pan, e)
	}
}

func (tx *txn) beginLocking() {
	if tx.locked {
		panic("ledger: cards locked twice in one operation")
	}
	tx.locked = true
	tx.entries = tx.entriesBuf[:0]
	tx.staged.use(&tx.stagedBuf)
}

// lockEntry locks and stages card pan, whose entry is e (nil: unknown,
// left absent).
func (tx *txn) lockEntry(pan string, e *cardEntry) {
	if e == nil {
		return
	}
	e.mu.Lock()
	tx.entries = append(tx.entries, e)
	pub := e.cur.Load()
	if !hasExpired(pub, tx.c.Date) {
		tx.staged.share(pan, pub)
		return
	}
	c := pub.cloneNew()
	releaseExpired(c, tx.c.Date)
	tx.staged.put(pan, c)
	tx.staged.markDirty(pan)
}

// published is the committed state of a locked card (nil when the card
// is new or not locked by this operation).
func (tx *txn) published(pan string) *card {
	for _, e := range tx.entries {
		if c := e.cur.Load(); c.PAN == pan {
			return c
		}
	}
	return nil
}

func (tx *txn) unlockCards() {
	for i := len(tx.entries) - 1; i >= 0; i-- {
		tx.entries[i].mu.Unlock()
	}
}

// releaseExpired drops the holds whose expiry date is before d.
// hasExpired reports whether releaseExpired would release a hold of c.
func hasExpired(c *card, d BusinessDate) bool {
	for _, h := range c.Holds {
		if h.Expiry < d {
			return true
		}
	}
	return false
}

func releaseExpired(c *card, d BusinessDate) int {
	n := 0
	kept := c.Holds[:0]
	for _, h := range c.Holds {
		if h.Expiry < d {
			n++
			continue
		}
		kept = append(kept, h)
	}
	c.Holds = kept
	return n
}

func (tx *txn) decline(d Decline) error {
	tx.res.Decline = d
	return nil
}

// opClass says how a kind treats the card: debits need an active card;
// credits return money and are allowed on frozen and lost cards.
type opClass uint8

const (
	classDebit opClass = iota
	classInquiry
	classLoad
	classCredit
)

func gate(c *card, cl opClass) Decline {
	if c == nil || c.State == Closed {
		return DeclineInvalidCard
	}
	switch c.State {
	case Lost:
		if cl != classCredit {
			return DeclineLostCard
		}
	case Frozen:
		if cl == classDebit {
			return DeclineFrozenCard
		}
	}
	if c.List == ListBlack && cl != classCredit {
		return DeclineNotPermittedCardholder
	}
	if cl == classDebit && c.owed() > 0 {
		// An owing card is debited again only once credits have repaid
		// its receivable (docs/ledger.md#receivables).
		return DeclineInsufficientFunds
	}
	return Approved
}

// checkPIN applies the PIN outcome to the try counter. A changed counter
// marks the card dirty, so it is written even when the operation is then
// declined.
func (tx *txn) checkPIN(pan string, outcome PINOutcome, amount Fen, cl opClass, requirePIN bool) Decline {
	c := tx.staged.peek(pan) // read only; a change takes the private copy
	max := tx.l.opts.MaxPINTries
	locked := int(c.PINTries) >= max
	switch outcome {
	case PINNotPresent:
		if cl == classCredit || cl == classLoad {
			return Approved
		}
		if locked {
			return DeclinePINTriesExceeded
		}
		if requirePIN && amount > c.NoPINLimit {
			return DeclineIncorrectPIN
		}
		return Approved
	case PINWrong:
		if locked {
			return DeclinePINTriesExceeded
		}
		c = tx.staged.get(pan)
		c.PINTries++
		tx.staged.markDirty(pan)
		if int(c.PINTries) >= max {
			return DeclinePINTriesExceeded
		}
		return DeclineIncorrectPIN
	case PINVerified:
		if locked {
			return DeclinePINTriesExceeded
		}
		if c.PINTries != 0 {
			c = tx.staged.get(pan)
			c.PINTries = 0
			tx.staged.markDirty(pan)
		}
		return Approved
	}
	return DeclineInvalidTransaction
}

// cardChecks runs the card gate and the PIN check and records the card as
// the one the result describes.
func (tx *txn) cardChecks(pan string, pin PINOutcome, amount Fen, cl opClass, requirePIN bool) Decline {
	tx.primary = pan
	c := tx.staged.peek(pan) // gate only reads
	if d := gate(c, cl); d != Approved {
		return d
	}
	return tx.checkPIN(pan, pin, amount, cl, requirePIN)
}

func (tx *txn) newPosting(kind Kind, pan string) *posting {
	var p *posting
	if !tx.postingUsed {
		// Most operations post one posting set: it comes with the txn's
		// own allocation (the ledger keeps none after Execute).
		tx.postingUsed, p = true, &tx.postingBuf
	} else {
		p = new(posting)
	}
	*p = posting{
		TxID:     tx.l.lastTx.Add(1),
		Kind:     kind,
		Date:     tx.c.Date,
		Terminal: tx.c.Terminal,
		Merchant: tx.c.Merchant,
		Batch:    tx.c.Batch,
		STAN:     tx.c.STAN,
		RRN:      tx.c.RRN,
		PAN:      pan,
	}
	return p
}

// inverse builds the posting that undoes o: negated legs, the hold o added
// dropped and the hold it dropped restored, and o's day spend given back
// when it is undone on the same business day.
func (tx *txn) inverse(o *posting, kind Kind) *posting {
	p := tx.newPosting(kind, o.PAN)
	p.PAN2 = o.PAN2
	p.Merchant = o.Merchant
	p.Amount = o.Amount
	p.Fee = o.Fee
	p.Link = o.TxID
	p.Legs = make([]leg, len(o.Legs))
	for i, g := range o.Legs {
		p.Legs[i] = leg{g.Account, -g.Amount}
	}
	if tx.c.Date == o.Date {
		p.DaySpend = -o.DaySpend
	}
	p.HoldAdd, p.HoldDrop = o.HoldDrop, o.HoldAdd
	return p
}

// splitPurse parses a card purse account into card number and purse.
//
// The purse is the part after the last '/', so the account ends in
// "/cash" or "/subsidy" (neither has another '/'): compared as fixed
// suffixes, every operation splits each of its legs a few times.
func splitPurse(a AccountID) (pan string, subsidy bool, ok bool) {
	s, found := strings.CutPrefix(string(a), "card/")
	switch {
	case !found:
	case strings.HasSuffix(s, "/cash"):
		return s[:len(s)-len("/cash")], false, true
	case strings.HasSuffix(s, "/subsidy"):
		return s[:len(s)-len("/subsidy")], true, true
	}
	return "", false, false
}

// apply applies the card effects of p to the staged cards, all or nothing.
// It declines (insufficient funds) when a purse would go below zero or
// below what its holds reserve, and (count limit) when holds overflow.
func (tx *txn) apply(p *posting) (Decline, error) {
	var sum Fen
	for _, g := range p.Legs {
		sum += g.Amount
	}
	if sum != 0 {
		panic(fmt.Sprintf("ledger: %s posting %d does not balance: %d", p.Kind, p.TxID, sum))
	}
	tx.receivableLegs(p)
	// The working copies of the cards p touches (one, or two for a
	// transfer between cards), published to staged only if p is approved.
	type working struct {
		pan string
		c   *card
	}
	var buf [2]working
	work := buf[:0]
	cardFor := func(pan string) (*card, error) {
		for _, w := range work {
			if w.pan == pan {
				return w.c, nil
			}
		}
		s := tx.staged.peek(pan) // copied here
		if s == nil {
			return nil, fmt.Errorf("posting %d touches card %s that is not locked", p.TxID, cardno.Mask(pan))
		}
		c := s.cloneNew()
		work = append(work, working{pan, c})
		return c, nil
	}
	owner, err := cardFor(p.PAN)
	if err != nil {
		return Approved, err
	}
	// Each leg's account is taken apart once: which legs post to a purse
	// (the others change non-card accounts, tx.deltas) and what p does
	// to its own card's purses (the result's, approve).
	var purseBuf [8]bool
	purse := purseBuf[:0]
	var ownCash, ownSub Fen
	for _, g := range p.Legs {
		pan, sub, ok := splitPurse(g.Account)
		purse = append(purse, ok)
		if ok {
			c, err := cardFor(pan)
			if err != nil {
				return Approved, err
			}
			if sub {
				c.Subsidy += g.Amount
			} else {
				c.Cash += g.Amount
			}
			switch {
			case pan != p.PAN:
			case sub:
				ownSub += g.Amount
			default:
				ownCash += g.Amount
			}
			continue
		}
		owner.addContrib(g.Account, g.Amount)
		if len(owner.Contribs) > maxContribs {
			return Approved, fmt.Errorf("card %s has posted to more than %d accounts", cardno.Mask(p.PAN), maxContribs)
		}
	}
	switch {
	case p.Date > owner.DayDate:
		owner.DayDate = p.Date
		owner.DaySpent = max(0, p.DaySpend)
	case p.Date == owner.DayDate:
		owner.DaySpent = max(0, owner.DaySpent+p.DaySpend)
	}
	if p.HoldDrop != nil {
		removeHold(owner, p.HoldDrop.AuthCode)
	}
	if p.HoldAdd != nil {
		removeHold(owner, p.HoldAdd.AuthCode) // never two holds with one code
		owner.Holds = append(owner.Holds, *p.HoldAdd)
		if len(owner.Holds) > maxHolds {
			return DeclineExceedsCountLimit, nil
		}
	}
	for _, w := range work {
		hc, hs := w.c.heldSplit()
		if w.c.Cash < hc || w.c.Subsidy < hs {
			return DeclineInsufficientFunds, nil
		}
	}
	tx.applied = true
	for _, w := range work {
		tx.staged.put(w.pan, w.c)
		tx.staged.markDirty(w.pan)
	}
	for i, g := range p.Legs {
		if !purse[i] {
			tx.addDelta(g)
		}
	}
	tx.appliedPosting, tx.appliedCash, tx.appliedSub = p, ownCash, ownSub
	return Approved, nil
}

// receivableLegs rewrites the legs p posts to its card's purses under the
// receivable rule (docs/ledger.md#receivables), before apply applies them:
//
//   - with tx.coverShortfall (a reversal), a debit of a purse larger than
//     what the purse has free (its balance less what the holds left after
//     p reserve) takes the purse down to that and posts the rest, the
//     shortfall, to CardReceivable: the card now owes it;
//   - otherwise a credit to a card that owes repays the receivable first
//     (from the cash leg, then the subsidy leg) and only the rest reaches
//     the purse.
//
// The legs still sum to zero. Both sides live on the posting, so undoing
// it (a reversal of a load that repaid a debt) restores the debt.
func (tx *txn) receivableLegs(p *posting) {
	c := tx.staged.peek(p.PAN) // read only: the legs change, not the card
	if c == nil {
		return // apply reports the unlocked card
	}
	changed := false
	if tx.coverShortfall {
		heldCash, heldSub := c.heldSplit()
		if p.HoldDrop != nil {
			if h := findHold(c, p.HoldDrop.AuthCode); h != nil {
				heldCash, heldSub = heldCash-h.Cash, heldSub-h.Subsidy
			}
		}
		if p.HoldAdd != nil {
			heldCash, heldSub = heldCash+p.HoldAdd.Cash, heldSub+p.HoldAdd.Subsidy
		}
		cash, sub := c.Cash, c.Subsidy
		var short Fen
		for i := range p.Legs {
			g := &p.Legs[i]
			pan, subsidy, ok := splitPurse(g.Account)
			if !ok || pan != p.PAN {
				continue
			}
			bal, held := &cash, heldCash
			if subsidy {
				bal, held = &sub, heldSub
			}
			*bal += g.Amount
			if g.Amount < 0 && *bal < held {
				s := min(held-*bal, -g.Amount)
				g.Amount += s
				*bal += s
				short += s
			}
		}
		if p.HoldAdd != nil && (cash < heldCash || sub < heldSub) {
			// A reversed completion puts its hold back; where the money
			// the hold released has been spent since, the hold is not
			// restored (the pre-auth can no longer be completed).
			p.HoldAdd = nil
		}
		if short > 0 {
			p.Legs = append(p.Legs, leg{CardReceivable, -short})
			changed = true
		}
	}
	if owed := c.owed(); owed > 0 && !changed {
		var repaid Fen
		for _, wantSub := range [2]bool{false, true} {
			for i := range p.Legs {
				g := &p.Legs[i]
				pan, subsidy, ok := splitPurse(g.Account)
				if !ok || pan != p.PAN || subsidy != wantSub || g.Amount <= 0 || owed == 0 {
					continue
				}
				r := min(owed, g.Amount)
				g.Amount -= r
				owed -= r
				repaid += r
			}
		}
		if repaid > 0 {
			p.Legs = append(p.Legs, leg{CardReceivable, repaid})
			changed = true
		}
	}
	if changed {
		kept := p.Legs[:0]
		for _, g := range p.Legs {
			if g.Amount != 0 {
				kept = append(kept, g)
			}
		}
		p.Legs = kept
	}
}

// addDelta adds g to the pending change of its (non-card) account.
func (tx *txn) addDelta(g leg) {
	for i := range tx.deltas {
		if tx.deltas[i].Account == g.Account {
			tx.deltas[i].Amount += g.Amount
			return
		}
	}
	if tx.deltas == nil {
		tx.deltas = tx.deltasBuf[:0]
	}
	tx.deltas = append(tx.deltas, g)
}

func removeHold(c *card, code string) {
	for i := range c.Holds {
		if c.Holds[i].AuthCode == code {
			c.Holds = append(c.Holds[:i], c.Holds[i+1:]...)
			return
		}
	}
}

func findHold(c *card, code string) *hold {
	for i := range c.Holds {
		if c.Holds[i].AuthCode == code {
			return &c.Holds[i]
		}
	}
	return nil
}

// approve records p as the operation's posting and fills the result.
func (tx *txn) approve(p *posting) {
	if tx.postings == nil {
		tx.postings = tx.postingsBuf[:0]
	}
	tx.postings = append(tx.postings, p)
	tx.approved = p
	tx.res.TxID = p.TxID
	tx.res.Fee = p.Fee
	if p.AuthCode == "" {
		p.AuthCode = authCode(p.TxID, nil)
	}
	tx.res.AuthCode = p.AuthCode
	cash, sub := tx.appliedCash, tx.appliedSub // its legs as apply found them
	if tx.appliedPosting != p || verifyApplied {
		c, s := ownPurseDeltas(p)
		if tx.appliedPosting == p && (c != cash || s != sub) {
			panic(fmt.Sprintf("ledger: %s posting %d: apply found %d cash %d subsidy, its legs say %d %d", p.Kind, p.TxID, cash, sub, c, s))
		}
		cash, sub = c, s
	}
	tx.res.CashDelta += cash
	tx.res.SubsidyDelta += sub
}

// verifyApplied makes approve check what apply found against the legs
// (tests set it).
var verifyApplied = false

// ownPurseDeltas sums the legs p posts to its own card's cash and
// subsidy purses.
func ownPurseDeltas(p *posting) (cash, subsidy Fen) {
	for _, g := range p.Legs {
		pan, sub, ok := splitPurse(g.Account)
		switch {
		case !ok || pan != p.PAN:
		case sub:
			subsidy += g.Amount
		default:
			cash += g.Amount
		}
	}
	return cash, subsidy
}

// authCode derives a six-digit approval code from the posting id, skipping
// codes already naming an open hold on the card.
func authCode(txid uint64, c *card) string {
	n := txid % 1_000_000
	for {
		var b [6]byte
		for i, v := 5, n; i >= 0; i, v = i-1, v/10 {
			b[i] = byte('0' + v%10)
		}
		code := string(b[:])
		if c == nil || findHold(c, code) == nil {
			return code
		}
		n = (n + 1) % 1_000_000
	}
}

func (tx *txn) loadPosting(id uint64) (*posting, error) {
	if p, ok := tx.loaded[id]; ok {
		return p, nil
	}
	raw, err := get(tx.l.db, postKey(id))
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: posting %d is indexed but missing", ErrCorrupt, id)
	}
	p, err := decodePosting(raw)
	if err != nil {
		return nil, fmt.Errorf("posting %d: %w", id, err)
	}
	if tx.loaded == nil {
		tx.loaded = make(map[uint64]*posting)
	}
	tx.loaded[id] = &p
	return &p, nil
}

// status returns the (staged) status of posting set id. Statuses change
// only under the lock of the posting's card, so callers read them after
// locking it.
func (tx *txn) status(id uint64) (*status, error) {
	if s, ok := tx.statuses[id]; ok {
		return s, nil
	}
	raw, err := get(tx.l.db, statusKey(id))
	if err != nil {
		return nil, err
	}
	var s status
	if raw != nil {
		if s, err = decodeStatus(raw); err != nil {
			return nil, fmt.Errorf("status of posting %d: %w", id, err)
		}
	}
	if tx.statuses == nil {
		tx.statuses = make(map[uint64]*status)
		tx.dirtySt = make(map[uint64]bool)
	}
	tx.statuses[id] = &s
	return &s, nil
}

func (tx *txn) setStatus(id uint64, f func(s *status)) error {
	s, err := tx.status(id)
	if err != nil {
		return err
	}
	f(s)
	tx.dirtySt[id] = true
	return nil
}

// linkEffects applies (sign +1) or undoes (sign -1) what p does to the
// status of the posting set it links to.
func (tx *txn) linkEffects(p *posting, sign int) error {
	set := func(v uint64) uint64 {
		if sign > 0 {
			return v
		}
		return 0
	}
	switch p.Kind {
	case KindVoid, KindCashLoadVoid:
		return tx.setStatus(p.Link, func(s *status) { s.VoidedBy = set(p.TxID) })
	case KindCompletionVoid:
		if err := tx.setStatus(p.Link, func(s *status) { s.VoidedBy = set(p.TxID) }); err != nil {
			return err
		}
		comp, err := tx.loadPosting(p.Link)
		if err != nil {
			return err
		}
		return tx.setStatus(comp.Link, func(s *status) {
			if sign > 0 {
				s.FinishedBy = 0 // the hold is back
			} else {
				s.FinishedBy = comp.TxID
			}
		})
	case KindPreAuthCompletion, KindPreAuthCancel:
		return tx.setStatus(p.Link, func(s *status) { s.FinishedBy = set(p.TxID) })
	case KindRefund:
		var sub Fen
		for _, g := range p.Legs {
			if g.Account == CardSubsidy(p.PAN) {
				sub += g.Amount
			}
		}
		sg := Fen(sign)
		return tx.setStatus(p.Link, func(s *status) {
			s.Refunded += sg * p.Amount
			s.RefundedFee += sg * p.Fee
			s.RefundedSubsidy += sg * sub
		})
	}
	return nil
}

// lookupRef finds the posting set reference r names, through the
// ledger's reference record or the caller's index (resolveRef). The
// caller holds r's key lock, under which every transaction with that
// reference commits: what it finds is the newest.
func (tx *txn) lookupRef(r TxnRef) (refValue, bool, error) {
	refs := tx.l.refs.get()
	if v, ok := tx.l.recent.get(r, refs != nil); ok {
		return v, true, nil
	}
	return resolveRef(tx.l.db, refs, r, tx.postingIfAny)
}

// postingIfAny is loadPosting, nil when the posting set does not exist
// (an id the caller's index named that is not ours).
func (tx *txn) postingIfAny(id uint64) (*posting, error) {
	if p, ok := tx.loaded[id]; ok {
		return p, nil
	}
	p, err := loadPostingFrom(tx.l.db, id)
	if err != nil || p == nil {
		return nil, err
	}
	if tx.loaded == nil {
		tx.loaded = make(map[uint64]*posting)
	}
	tx.loaded[id] = p
	return p, nil
}

// refuseReversedFirst declines the request (invalid transaction) when a
// reversal of it arrived first (see tombstoned), and says so.
func (tx *txn) refuseReversedFirst() (declined bool, err error) {
	t, err := tx.tombstoned()
	if err != nil || !t {
		return false, err
	}
	return true, tx.decline(DeclineInvalidTransaction)
}

// tombstoned reports whether a reversal of this very request arrived
// before it (a tombstone for its reference within a day of its date): the
// terminal has given up on it, so it must not take effect now.
func (tx *txn) tombstoned() (bool, error) {
	if tx.c.Terminal == "" {
		return false, nil
	}
	if tx.ownRef != nil && !tx.l.tombBits.Load().has(tx.ownRef) {
		return false, nil // no tombstone of the reference (its key built already)
	}
	v, ok := tx.l.tomb(tombKey(TxnRef{tx.c.Terminal, tx.c.Batch, tx.c.STAN}))
	if !ok || v.Kind != tx.kind {
		return false, nil
	}
	d := tx.c.Date.DaysSince(v.Date)
	return d >= -1 && d <= 1, nil
}

// write stages everything the operation changed into the caller's batch.
func (tx *txn) write(ik []byte, fingerprint uint64) error {
	b := tx.b
	if tx.res.Decline == Approved || tx.primary != "" {
		if c := tx.staged.peek(tx.primary); c != nil {
			tx.res.Balances = c.balances()
			tx.res.Alert = c.List == ListGrey
		}
	}
	for i, pan := range tx.staged.pans {
		if !tx.staged.dirty[i] {
			continue
		}
		var old *card
		var code **contribCode
		for _, e := range tx.entries {
			if c := e.cur.Load(); c.PAN == pan {
				old, code = c, &e.contribs // locked: the entry's code is this txn's to use
				break
			}
		}
		if err := putCard(b, old, tx.staged.cards[i], tx.scratch[:], code); err != nil {
			return err
		}
	}
	if tx.res.Decline == Approved {
		var kd knownDigits
		if len(tx.entries) > 0 {
			e := tx.entries[0]
			kd.pan, kd.panEnc, kd.cash, kd.subsidy = e.pan, e.panEnc, e.cash, e.subsidy
		}
		if m := tx.merch; m != nil {
			kd.merchant, kd.merchantEnc, kd.payable = m.ID, m.idEnc, m.payable
		}
		for _, p := range tx.postings {
			k := binary.BigEndian.AppendUint64(append(tx.scratch[:0], keyPrefix, tagPost), p.TxID) // postKey
			if err := b.Set(k, p.appendKnown(k[len(k):], &kd), nil); err != nil {
				return err
			}
		}
		for id := range tx.dirtySt { // nil for most operations
			if err := b.Set(statusKey(id), tx.statuses[id].encode(), nil); err != nil {
				return err
			}
		}
		if p := tx.approved; p != nil && !tx.noIndex {
			v := refValue{TxID: p.TxID, Kind: p.Kind, Date: tx.c.Date}
			if tx.ownRef != nil && tx.c.ReferenceKeptByCaller {
				tx.res.Reference = p.TxID // the caller's index names it (References)
			} else if tx.ownRef != nil {
				if err := b.Set(tx.ownRef, v.encode(), nil); err != nil {
					return err
				}
			}
			if tx.c.RRN != "" && !tx.c.RRNIndexedByCaller {
				if err := b.Set(rrnKey(tx.c.Date, tx.c.RRN), v.encode(), nil); err != nil {
					return err
				}
			}
		}
		if tx.tomb != nil {
			v := refValue{Kind: tx.tombKind, Date: tx.c.Date}
			if err := b.Set(tombKey(*tx.tomb), v.encode(), nil); err != nil {
				return err
			}
		}
		var err error
		if tx.days, err = tx.l.days.stage(b, tx.postings); err != nil {
			return err
		}
	} else {
		if tx.applied {
			panic(fmt.Sprintf("ledger: %s declined after its postings were applied", tx.kind))
		}
		// A declined operation posts nothing: forget staged postings and
		// the non-card deltas (card changes kept are PIN tries and holds
		// released by expiry, which are already in staged).
		tx.deltas = nil
	}
	if ik == nil {
		return nil // the caller keeps the request's record (Common.Deduplicated)
	}
	rec := idemRecord{Fingerprint: fingerprint, Date: tx.c.Date, Result: tx.res}
	return b.Set(ik, rec.encode(), nil)
}

// daysCommitted ends the day index's part of the operation, if any.
func (tx *txn) daysCommitted(ok bool) {
	if f := tx.days; f != nil {
		tx.days = nil
		f(ok)
	}
}

// publish makes the committed state visible.
func (tx *txn) publish() {
	for _, e := range tx.entries {
		// A dirty card is always the operation's private copy (markDirty).
		i := tx.staged.index(e.cur.Load().PAN)
		if i >= 0 && tx.staged.dirty[i] && tx.staged.cards[i] != nil {
			e.cur.Store(tx.staged.cards[i])
		}
	}
	for _, g := range tx.deltas {
		if m := tx.merch; m != nil && m.bal != nil && g.Account == m.payable {
			m.bal.Add(int64(g.Amount)) // the purchase's merchant: no map lookup
			continue
		}
		if g.Account == FeeIncome {
			tx.l.feeIncome.Add(int64(g.Amount))
			continue
		}
		tx.l.addBalance(g.Account, g.Amount)
	}
	if p := tx.approved; p != nil && !tx.noIndex && tx.ownRef != nil && tx.res.Decline == Approved {
		// Indexed under its own reference by write: the newest of it.
		tx.l.recent.put(TxnRef{tx.c.Terminal, tx.c.Batch, tx.c.STAN},
			refValue{TxID: p.TxID, Kind: p.Kind, Date: tx.c.Date}, tx.c.ReferenceKeptByCaller)
	}
	if tx.tomb != nil && tx.res.Decline == Approved {
		tx.l.putTomb(tombKey(*tx.tomb), refValue{Kind: tx.tombKind, Date: tx.c.Date})
	}
}

// mulDiv returns a*b/c rounded down, for non-negative a, b and positive c,
// without overflowing (a and b may both be near MaxAmount).
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		panic("ledger: mulDiv overflow")
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}

// cardSet is the staged cards of one operation by card number — one, two
// for a transfer between cards — with which of them changed: a few
// entries, searched in order, cheaper than a map's hashing and
// allocation. A card number absent reads as nil, as from a map.
//
// A card staged by share is the published card itself until the first
// get, which replaces it with a private copy to change: peek reads
// without copying, and must not be used to change a card. A card marked
// dirty is always a private copy. An approved consume copies its card
// once (apply's working copy), not twice.
type cardSet struct {
	pans  []string
	cards []*card
	dirty []bool
	own   []bool // cards[i] is this operation's private copy
}

// cardSetBuf backs a cardSet of the common operation (use).
type cardSetBuf struct {
	pans  [2]string
	cards [2]*card
	dirty [2]bool
	own   [2]bool
}

func (s *cardSet) use(b *cardSetBuf) {
	s.pans, s.cards, s.dirty, s.own = b.pans[:0], b.cards[:0], b.dirty[:0], b.own[:0]
}

// share stages pan's published card, to be copied on the first get.
func (s *cardSet) share(pan string, published *card) {
	s.put(pan, published)
	s.own[s.index(pan)] = false
}

// peek returns pan's staged card to read, without copying it.
func (s *cardSet) peek(pan string) *card {
	if i := s.index(pan); i >= 0 {
		return s.cards[i]
	}
	return nil
}

func (s *cardSet) index(pan string) int {
	for i, p := range s.pans {
		if p == pan {
			return i
		}
	}
	return -1
}

// get returns pan's staged card to read or change: the operation's
// private copy, made now if the card was shared.
func (s *cardSet) get(pan string) *card {
	i := s.index(pan)
	if i < 0 {
		return nil
	}
	s.private(i)
	return s.cards[i]
}

func (s *cardSet) private(i int) {
	if !s.own[i] {
		if c := s.cards[i]; c != nil {
			s.cards[i] = c.cloneNew()
		}
		s.own[i] = true
	}
}

// put stages c, the operation's own copy, as pan's card (not marking it
// changed).
func (s *cardSet) put(pan string, c *card) {
	if i := s.index(pan); i >= 0 {
		s.cards[i], s.own[i] = c, true
		return
	}
	s.pans, s.cards, s.dirty, s.own = append(s.pans, pan), append(s.cards, c), append(s.dirty, false), append(s.own, true)
}

// markDirty records that pan's card changed and must be written.
func (s *cardSet) markDirty(pan string) {
	i := s.index(pan)
	if i < 0 {
		s.put(pan, nil)
		i = len(s.pans) - 1
	}
	s.private(i)
	s.dirty[i] = true
}

func (s *cardSet) isDirty(pan string) bool {
	i := s.index(pan)
	return i >= 0 && s.dirty[i]
}
