package ledger

import "fmt"

// run dispatches one request to its operation. Declines are recorded in
// tx.res; the returned error is for storage failures and broken invariants.
func (tx *txn) run(req Request) error {
	switch r := req.(type) {
	case *BalanceInquiry:
		return tx.balanceInquiry(r)
	case *Consume:
		return tx.consume(r)
	case *CashLoad:
		return tx.cashLoad(r)
	case *Void:
		return tx.voidOf(KindConsume, r.Original, r.PAN, r.Amount, r.PIN, classCredit)
	case *CashLoadVoid:
		return tx.voidOf(KindCashLoad, r.Original, r.PAN, r.Amount, r.PIN, classDebit)
	case *CompletionVoid:
		return tx.voidOf(KindPreAuthCompletion, r.Original, r.PAN, r.Amount, r.PIN, classCredit)
	case *Refund:
		return tx.refund(r)
	case *PreAuth:
		return tx.preAuth(r)
	case *PreAuthCompletion:
		return tx.completion(r)
	case *PreAuthCancel:
		return tx.cancel(r)
	case *Reversal:
		return tx.reversal(r)
	case *OutsideCredit:
		return tx.outsideCredit(r)
	case *OutsideCreditReversal:
		return tx.outsideCreditReversal(r)
	case *PendingClaim:
		return tx.pendingClaim(r)
	case *TransferLoad:
		return tx.transferLoad(r)
	}
	return fmt.Errorf("%w: unsupported request %T", ErrInvalidRequest, req)
}

func validAmount(a Fen) bool { return a > 0 && a <= MaxAmount }

func (tx *txn) balanceInquiry(r *BalanceInquiry) error {
	tx.lockCards(r.PAN)
	if d := tx.cardChecks(r.PAN, r.PIN, 0, classInquiry, false); d != Approved {
		return tx.decline(d)
	}
	// An inquiry posts nothing; it is approved with the balances.
	tx.res.AuthCode = authCode(tx.l.lastTx.Add(1), nil)
	return nil
}

// spentOn is what the card has spent on business day d.
func spentOn(c *card, d BusinessDate) Fen {
	if c.DayDate == d {
		return c.DaySpent
	}
	return 0
}

// limits checks the per-transaction and daily limits for a debit of total
// (amount plus service fee).
func limits(c *card, total Fen, d BusinessDate) Decline {
	if c.PerTxnLimit > 0 && total > c.PerTxnLimit {
		return DeclineExceedsAmountLimit
	}
	if c.DailyLimit > 0 && spentOn(c, d)+total > c.DailyLimit {
		return DeclineExceedsAmountLimit
	}
	return Approved
}

// split takes total from the purses the way a purchase does: subsidy first,
// only at on-campus merchants, then cash; what holds reserve is not free.
func split(c *card, total Fen, onCampus bool) (cash, subsidy Fen, ok bool) {
	hc, hs := c.heldSplit()
	if onCampus {
		subsidy = min(total, max(0, c.Subsidy-hs))
	}
	cash = total - subsidy
	return cash, subsidy, cash <= c.Cash-hc
}

// debitLegs appends to legs the legs of a purchase: the purses of a card
// (pa), the merchant's payable and the fee income.
func debitLegs(legs []leg, pa purseAccounts, merchant AccountID, cash, subsidy, amount, fee Fen) []leg {
	if subsidy > 0 {
		legs = append(legs, leg{pa.subsidy, -subsidy})
	}
	if cash > 0 {
		legs = append(legs, leg{pa.cash, -cash})
	}
	legs = append(legs, leg{merchant, amount})
	if fee > 0 {
		legs = append(legs, leg{FeeIncome, fee})
	}
	return legs
}

// finish applies p and approves it, or declines with what apply found.
func (tx *txn) finish(p *posting) error {
	d, err := tx.apply(p)
	if err != nil {
		return err
	}
	if d != Approved {
		return tx.decline(d)
	}
	if err := tx.linkEffects(p, +1); err != nil {
		return err
	}
	tx.approve(p)
	return nil
}

// admitPurchase runs the checks a consume and a pre-auth share, in order:
// amount, merchant, the card (state, PIN), a reversal that came first, the
// per-transaction and daily limits on amount plus service fee. It returns
// the staged card (to read: apply changes its own copy), the merchant and
// the fee, or declined (the decline is in tx.res) or a storage error.
func (tx *txn) admitPurchase(pan string, pin PINOutcome, amount Fen) (c *card, m *merchant, fee Fen, declined bool, err error) {
	if !validAmount(amount) {
		return nil, nil, 0, true, tx.decline(DeclineInvalidAmount)
	}
	m, e := tx.l.merchantAndCard(tx.c.Merchant, pan)
	if m == nil {
		return nil, nil, 0, true, tx.decline(DeclineInvalidMerchant)
	}
	tx.merch = m
	tx.lockCard(pan, e)
	if d := tx.cardChecks(pan, pin, amount, classDebit, true); d != Approved {
		return nil, nil, 0, true, tx.decline(d)
	}
	if declined, err := tx.refuseReversedFirst(); declined || err != nil {
		return nil, nil, 0, true, err
	}
	c = tx.staged.peek(pan) // read only: apply changes its own copy
	fee = ServiceFee(amount, c.FeeBP)
	if d := limits(c, amount+fee, tx.c.Date); d != Approved {
		return nil, nil, 0, true, tx.decline(d)
	}
	return c, m, fee, false, nil
}

func (tx *txn) consume(r *Consume) error {
	c, m, fee, declined, err := tx.admitPurchase(r.PAN, r.PIN, r.Amount)
	if declined || err != nil {
		return err
	}
	total := r.Amount + fee
	cash, sub, ok := split(c, total, m.OnCampus)
	if !ok {
		return tx.decline(DeclineInsufficientFunds)
	}
	p := tx.newPosting(KindConsume, r.PAN)
	p.Merchant = m.ID
	p.Amount, p.Fee = r.Amount, fee
	p.Legs = debitLegs(tx.legsBuf[:0], tx.purses(r.PAN), m.account(), cash, sub, r.Amount, fee)
	p.DaySpend = total
	return tx.finish(p)
}

func (tx *txn) cashLoad(r *CashLoad) error {
	if !validAmount(r.Amount) {
		return tx.decline(DeclineInvalidAmount)
	}
	if !r.MayLoad {
		return tx.decline(DeclineNotPermittedTerminal)
	}
	tx.lockCards(r.PAN)
	if d := tx.cardChecks(r.PAN, r.PIN, r.Amount, classLoad, false); d != Approved {
		return tx.decline(d)
	}
	if declined, err := tx.refuseReversedFirst(); declined || err != nil {
		return err
	}
	c := tx.staged.get(r.PAN)
	if c.MaxBalance > 0 && c.Cash+c.Subsidy+r.Amount > c.MaxBalance {
		return tx.decline(DeclineExceedsAmountLimit)
	}
	p := tx.newPosting(KindCashLoad, r.PAN)
	p.Amount = r.Amount
	p.Legs = []leg{{CardCash(r.PAN), r.Amount}, {CashLoadClearing, -r.Amount}}
	return tx.finish(p)
}

// voidOf cancels an approved original of kind origKind: same business day,
// terminal and batch, full amount, not voided, reversed or refunded; the
// void is the exact inverse of the original.
func (tx *txn) voidOf(origKind Kind, ref TxnRef, pan string, amount Fen, pin PINOutcome, cl opClass) error {
	if ref.Terminal == "" {
		ref.Terminal = tx.c.Terminal
	}
	v, ok, err := tx.lookupRef(ref)
	if err != nil {
		return err
	}
	if !ok || v.TxID == 0 || v.Kind != origKind {
		tx.lockCards(pan)
		tx.primary = pan
		return tx.decline(DeclineOriginalNotFound)
	}
	o, err := tx.loadPosting(v.TxID)
	if err != nil {
		return err
	}
	tx.lockCards(o.PAN)
	if pan != "" && pan != o.PAN {
		return tx.decline(DeclineInvalidTransaction)
	}
	if d := tx.cardChecks(o.PAN, pin, amount, cl, false); d != Approved {
		return tx.decline(d)
	}
	st, err := tx.status(o.TxID)
	if err != nil {
		return err
	}
	switch {
	case o.Date != tx.c.Date || o.Terminal != tx.c.Terminal || o.Batch != tx.c.Batch:
		return tx.decline(DeclineInvalidTransaction)
	case st.VoidedBy != 0 || st.ReversedBy != 0 || st.Refunded != 0:
		return tx.decline(DeclineInvalidTransaction)
	case amount != o.Amount:
		return tx.decline(DeclineAmountDiffers)
	}
	if declined, err := tx.refuseReversedFirst(); declined || err != nil {
		return err
	}
	voidKind := map[Kind]Kind{KindConsume: KindVoid, KindCashLoad: KindCashLoadVoid, KindPreAuthCompletion: KindCompletionVoid}[origKind]
	return tx.finish(tx.inverse(o, voidKind))
}

func (tx *txn) refund(r *Refund) error {
	if !validAmount(r.Amount) {
		return tx.decline(DeclineInvalidAmount)
	}
	raw, err := get(tx.l.db, rrnKey(r.OriginalDate, r.OriginalRRN))
	if err != nil {
		return err
	}
	var o *posting
	if raw != nil {
		v, err := decodeRef(raw)
		if err != nil {
			return fmt.Errorf("RRN index %s: %w", r.OriginalRRN, err)
		}
		if o, err = tx.loadPosting(v.TxID); err != nil {
			return err
		}
		// The RRN index also names postings that are no POS original
		// (outside credits, transfer legs, docs/ledger.md): one that is
		// no consume or completion, or not the original the caller
		// resolved, is passed over for the caller's reference.
		if !refundable(o) || (r.OriginalRef.Terminal != "" && r.OriginalRef != (TxnRef{o.Terminal, o.Batch, o.STAN})) {
			o = nil
		}
	}
	if o == nil && r.OriginalRef.Terminal != "" {
		// The caller resolved the RRN (Common.RRNIndexedByCaller): the
		// reference names the original while its lookup record is kept,
		// unless a later transaction reused the reference.
		if o, err = tx.byReference(r.OriginalRef); err != nil {
			return err
		}
		if o != nil && (o.RRN != r.OriginalRRN || o.Date != r.OriginalDate) {
			o = nil
		}
	}
	if o == nil || !refundable(o) {
		tx.lockCards(r.PAN)
		tx.primary = r.PAN
		return tx.decline(DeclineOriginalNotFound)
	}
	tx.lockCards(o.PAN)
	if r.PAN != "" && r.PAN != o.PAN {
		return tx.decline(DeclineInvalidTransaction)
	}
	if d := tx.cardChecks(o.PAN, r.PIN, r.Amount, classCredit, false); d != Approved {
		return tx.decline(d)
	}
	st, err := tx.status(o.TxID)
	if err != nil {
		return err
	}
	age := tx.c.Date.DaysSince(o.Date)
	switch {
	case tx.c.Merchant != "" && tx.c.Merchant != o.Merchant:
		return tx.decline(DeclineInvalidTransaction)
	case age < 0 || age > tx.l.opts.RefundWindowDays:
		return tx.decline(DeclineInvalidTransaction)
	case st.VoidedBy != 0 || st.ReversedBy != 0:
		return tx.decline(DeclineInvalidTransaction)
	case st.Refunded+r.Amount > o.Amount:
		return tx.decline(DeclineAmountDiffers)
	}
	if declined, err := tx.refuseReversedFirst(); declined || err != nil {
		return err
	}
	// The fee comes back in proportion, so that the refunds of a consume
	// return exactly its fee once the whole amount is refunded:
	// fee refunded so far = floor(fee * refunded / amount).
	feeBack := Fen(mulDiv(int64(o.Fee), int64(st.Refunded+r.Amount), int64(o.Amount))) - st.RefundedFee
	var subTaken Fen
	for _, g := range o.Legs {
		if g.Account == CardSubsidy(o.PAN) {
			subTaken -= g.Amount
		}
	}
	// Back to the subsidy purse first, up to what the consume took from it.
	subBack := min(r.Amount+feeBack, max(0, subTaken-st.RefundedSubsidy))
	cashBack := r.Amount + feeBack - subBack
	p := tx.newPosting(KindRefund, o.PAN)
	p.Merchant = o.Merchant
	p.Amount, p.Fee, p.Link = r.Amount, feeBack, o.TxID
	p.Legs = []leg{{MerchantPayable(o.Merchant), -r.Amount}}
	if feeBack > 0 {
		p.Legs = append(p.Legs, leg{FeeIncome, -feeBack})
	}
	if subBack > 0 {
		p.Legs = append(p.Legs, leg{CardSubsidy(o.PAN), subBack})
	}
	if cashBack > 0 {
		p.Legs = append(p.Legs, leg{CardCash(o.PAN), cashBack})
	}
	return tx.finish(p)
}

// refundable says whether posting o is of a kind a refund undoes.
func refundable(o *posting) bool { return o.Kind == KindConsume || o.Kind == KindPreAuthCompletion }

func (tx *txn) preAuth(r *PreAuth) error {
	c, m, fee, declined, err := tx.admitPurchase(r.PAN, r.PIN, r.Amount)
	if declined || err != nil {
		return err
	}
	total := r.Amount + fee
	if len(c.Holds) >= tx.l.opts.MaxHoldsPerCard {
		return tx.decline(DeclineExceedsCountLimit)
	}
	cash, sub, ok := split(c, total, m.OnCampus)
	if !ok {
		return tx.decline(DeclineInsufficientFunds)
	}
	p := tx.newPosting(KindPreAuth, r.PAN)
	p.Merchant = m.ID
	p.Amount, p.Fee = r.Amount, fee
	p.AuthCode = authCode(p.TxID, c)
	p.DaySpend = total // the hold reserves daily limit as it reserves funds
	p.HoldAdd = &hold{
		AuthCode: p.AuthCode, TxID: p.TxID, Merchant: m.ID, Amount: r.Amount, Fee: fee,
		Cash: cash, Subsidy: sub, Expiry: tx.c.Date.AddDays(tx.l.opts.HoldDays),
	}
	return tx.finish(p)
}

// releaseSpend is the day spend of an operation that releases hold h and
// takes taken (amount plus fee) from the card: the pre-auth counted its
// total against the limit of its business day, so on that day the release
// counts only the difference (and a cancel gives the whole reservation
// back); on a later day the hold's day has passed and what the hold
// reserved was that day's spend, so today's spend is untouched.
func (tx *txn) releaseSpend(h *hold, taken Fen) (Fen, error) {
	pre, err := tx.loadPosting(h.TxID)
	if err != nil {
		return 0, fmt.Errorf("pre-auth %d of hold %s: %w", h.TxID, h.AuthCode, err)
	}
	if pre.Date != tx.c.Date {
		return 0, nil
	}
	return taken - pre.DaySpend, nil
}

func (tx *txn) completion(r *PreAuthCompletion) error {
	if !validAmount(r.Amount) {
		return tx.decline(DeclineInvalidAmount)
	}
	tx.lockCards(r.PAN)
	if d := tx.cardChecks(r.PAN, r.PIN, r.Amount, classDebit, false); d != Approved {
		return tx.decline(d)
	}
	c := tx.staged.get(r.PAN)
	h := findHold(c, r.AuthCode)
	switch {
	case h == nil:
		return tx.decline(DeclineOriginalNotFound)
	case tx.c.Merchant != "" && tx.c.Merchant != h.Merchant:
		return tx.decline(DeclineInvalidTransaction)
	case r.Amount > h.Amount:
		return tx.decline(DeclineExceedsAmountLimit)
	}
	if declined, err := tx.refuseReversedFirst(); declined || err != nil {
		return err
	}
	fee := ServiceFee(r.Amount, c.FeeBP)
	total := r.Amount + fee
	sub := min(total, h.Subsidy)
	hold := *h
	p := tx.newPosting(KindPreAuthCompletion, r.PAN)
	p.Merchant = h.Merchant
	p.Amount, p.Fee, p.Link = r.Amount, fee, h.TxID
	p.Legs = debitLegs(tx.legsBuf[:0], tx.purses(r.PAN), MerchantPayable(h.Merchant), total-sub, sub, r.Amount, fee)
	var err error
	if p.DaySpend, err = tx.releaseSpend(h, total); err != nil {
		return err
	}
	p.HoldDrop = &hold
	return tx.finish(p)
}

func (tx *txn) cancel(r *PreAuthCancel) error {
	tx.lockCards(r.PAN)
	if d := tx.cardChecks(r.PAN, r.PIN, r.Amount, classCredit, false); d != Approved {
		return tx.decline(d)
	}
	h := findHold(tx.staged.get(r.PAN), r.AuthCode)
	switch {
	case h == nil:
		return tx.decline(DeclineOriginalNotFound)
	case tx.c.Merchant != "" && tx.c.Merchant != h.Merchant:
		return tx.decline(DeclineInvalidTransaction)
	case r.Amount != h.Amount:
		return tx.decline(DeclineAmountDiffers)
	}
	if declined, err := tx.refuseReversedFirst(); declined || err != nil {
		return err
	}
	hold := *h
	p := tx.newPosting(KindPreAuthCancel, r.PAN)
	p.Merchant = h.Merchant
	p.Amount, p.Link = h.Amount, h.TxID
	var err error
	if p.DaySpend, err = tx.releaseSpend(h, 0); err != nil {
		return err
	}
	p.HoldDrop = &hold
	return tx.finish(p)
}

// reversal undoes exactly the original. Unknown originals are approved as
// no-ops and leave a tombstone so a late original is declined; a repeated
// reversal, or one of an original already voided, is an approved no-op.
// An original with later effects that a reversal cannot undo exactly (a
// refund, a completed or cancelled pre-auth, a completion void whose
// restored hold has been used since) is declined (invalid transaction).
// A reversal that takes back more than the purse has is approved all the
// same (undo).
func (tx *txn) reversal(r *Reversal) error {
	tx.noIndex = true
	ref, _ := originalRef(r)
	noop := func() error {
		tx.res.NoOp = true
		if e := tx.l.entry(r.PAN); e != nil {
			c := e.cur.Load()
			tx.res.Balances = c.balances()
			tx.res.Alert = c.List == ListGrey
		}
		return nil
	}
	if !r.OriginalKind.reversible() {
		return tx.decline(DeclineInvalidTransaction)
	}
	v, ok, err := tx.lookupRef(ref)
	if err != nil {
		return err
	}
	if !ok {
		// A tombstone of another day is left by an earlier use of this
		// reference (batch and STAN wrap): it blocks nothing dated today,
		// so this reversal writes its own over it.
		if t, seen := tx.l.tomb(tombKey(ref)); !seen || t.Date != tx.c.Date {
			tx.tomb, tx.tombKind = &ref, r.OriginalKind
		}
		return noop()
	}
	if v.TxID == 0 || v.Kind != r.OriginalKind {
		return noop()
	}
	o, err := tx.loadPosting(v.TxID)
	if err != nil {
		return err
	}
	tx.lockCards(o.PAN)
	tx.primary = o.PAN
	c := tx.staged.get(o.PAN)
	if c == nil || c.State == Closed {
		return tx.decline(DeclineInvalidCard)
	}
	st, err := tx.status(o.TxID)
	if err != nil {
		return err
	}
	switch {
	case st.ReversedBy != 0 || st.VoidedBy != 0:
		tx.primary = ""
		return noop()
	case st.Refunded != 0 || st.FinishedBy != 0:
		return tx.decline(DeclineInvalidTransaction)
	}
	p := tx.inverse(o, KindReversal)
	if o.Kind == KindCompletionVoid && p.HoldDrop != nil {
		// Undoing a completion void charges the completion again and takes
		// back the hold the void restored. If that hold is gone (completed
		// again, or cancelled, since), the void cannot be undone exactly:
		// charging again would take the money twice for one pre-auth.
		if h := findHold(c, p.HoldDrop.AuthCode); h == nil || h.TxID != p.HoldDrop.TxID {
			return tx.decline(DeclineInvalidTransaction)
		}
	}
	return tx.undo(o, p)
}

// undo applies p, the inverse of the original posting o, and marks o
// reversed. It is the ledger's one way of taking back a credit, whatever
// brought the credit in (a POS load or void, a refund, a gateway's
// credit): it is always approved. Where the credit has already been spent,
// the purse goes down to what its holds reserve, the shortfall is posted
// to CardReceivable and the card owes it (docs/ledger.md#receivables).
// The caller has locked o's card and checked that o may be undone.
func (tx *txn) undo(o, p *posting) error {
	tx.coverShortfall = true
	d, err := tx.apply(p)
	if err != nil {
		return err
	}
	if d != Approved {
		// Only a hold table overflow can get here: a reversed pre-auth
		// cancel or completion restoring a hold to a card already holding
		// the maximum.
		return tx.decline(d)
	}
	if err := tx.linkEffects(o, -1); err != nil {
		return err
	}
	if err := tx.setStatus(o.TxID, func(s *status) { s.ReversedBy = p.TxID }); err != nil {
		return err
	}
	tx.approve(p)
	return nil
}

// byReference loads the approved posting set a reference names, nil when
// none does.
func (tx *txn) byReference(ref TxnRef) (*posting, error) {
	v, ok, err := tx.lookupRef(ref)
	if err != nil || !ok {
		return nil, err
	}
	return tx.loadPosting(v.TxID)
}
