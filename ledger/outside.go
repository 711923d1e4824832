package ledger

import "fmt"

// OutsideCredit credits a card's cash purse with money an outside
// institution (a recharge platform, a wallet, a bank's e-channel) has
// collected from the payer: the institution's clearing account owes it to
// the school. The caller (the switch's recharge service) owns what makes
// the credit idempotent towards the institution (its order number) and the
// institution's own limits; the ledger checks the card: unknown or closed
// (invalid card), lost or frozen (restricted card), and its maximum balance
// (exceeds amount limit).
type OutsideCredit struct {
	Common
	PAN         string
	Amount      Fen
	Institution string
	// Pending records the credit as pending (PendingLoads) instead of on
	// the cash purse: the card claims it at a load terminal (PendingClaim).
	Pending bool
}

// PendingClaim moves all of a card's pending outside credits to its cash
// purse, at a load terminal (MayLoad, as for a cash load). Nothing pending
// is approved with nothing moved; Result.CashDelta is the amount moved.
// A reversal of the claim puts the amount back to pending.
type PendingClaim struct {
	Common
	PAN     string
	MayLoad bool
	PIN     PINOutcome
}

// OutsideCreditReversal undoes the outside credit posted as Original (its
// Result.TxID). PAN and Amount must be the original's, or it is declined
// (amount differs); a credit already reversed is an approved no-op.
type OutsideCreditReversal struct {
	Common
	PAN      string
	Amount   Fen
	Original uint64
}

// maxInstitutionLen bounds an institution id (gateway field 32, n..11).
const maxInstitutionLen = 11

func (r *OutsideCredit) Kind() Kind              { return KindOutsideCredit }
func (r *OutsideCredit) common() *Common         { return &r.Common }
func (r *OutsideCredit) pan() string             { return r.PAN }
func (r *OutsideCreditReversal) Kind() Kind      { return KindReversal }
func (r *OutsideCreditReversal) common() *Common { return &r.Common }
func (r *OutsideCreditReversal) pan() string     { return r.PAN }

func (r *PendingClaim) Kind() Kind      { return KindPendingClaim }
func (r *PendingClaim) common() *Common { return &r.Common }
func (r *PendingClaim) pan() string     { return r.PAN }

func (r *OutsideCredit) fingerprint(h *fp) {
	r.cardAmount(h, r.PAN, r.Amount)
	h.e.str(r.Institution)
	if r.Pending {
		h.e.boolean(true) // a direct credit keeps the fingerprint it always had
	}
}

func (r *PendingClaim) fingerprint(h *fp) { r.Common.fp(h); h.e.str(r.PAN) }

func (r *OutsideCreditReversal) fingerprint(h *fp) {
	r.cardAmount(h, r.PAN, r.Amount)
	h.e.u(r.Original)
}

func (tx *txn) outsideCredit(r *OutsideCredit) error {
	if r.Institution == "" || len(r.Institution) > maxInstitutionLen {
		return fmt.Errorf("%w: institution id %q", ErrInvalidRequest, r.Institution)
	}
	if !validAmount(r.Amount) {
		return tx.decline(DeclineInvalidAmount)
	}
	tx.lockCards(r.PAN)
	tx.primary = r.PAN
	c := tx.staged.get(r.PAN)
	switch {
	case c == nil:
		return tx.decline(DeclineInvalidCard)
	case c.State != Active:
		// Lost, frozen or closed: 62 on the gateway (docs/recharge.md).
		return tx.decline(DeclineRestrictedCard)
	case c.MaxBalance > 0 && c.Cash+c.Subsidy+c.pending()+r.Amount > c.MaxBalance:
		return tx.decline(DeclineExceedsAmountLimit)
	}
	p := tx.newPosting(KindOutsideCredit, r.PAN)
	p.Amount = r.Amount
	to := CardCash(r.PAN)
	if r.Pending {
		to = PendingLoads
	}
	p.Legs = []leg{{to, r.Amount}, {GatewayClearing(r.Institution), -r.Amount}}
	return tx.finish(p)
}

func (tx *txn) pendingClaim(r *PendingClaim) error {
	if !r.MayLoad {
		return tx.decline(DeclineNotPermittedTerminal)
	}
	tx.lockCards(r.PAN)
	if d := tx.cardChecks(r.PAN, r.PIN, 0, classLoad, false); d != Approved {
		return tx.decline(d)
	}
	if declined, err := tx.refuseReversedFirst(); declined || err != nil {
		return err
	}
	amount := tx.staged.get(r.PAN).pending()
	if amount == 0 {
		// Nothing pending: approved, nothing moved, nothing posted.
		tx.res.AuthCode = authCode(tx.l.lastTx.Add(1), nil)
		return nil
	}
	p := tx.newPosting(KindPendingClaim, r.PAN)
	p.Amount = amount
	p.Legs = []leg{{CardCash(r.PAN), amount}, {PendingLoads, -amount}}
	return tx.finish(p)
}

// outsideCreditReversal undoes an outside credit exactly, as a reversal
// posting linked to it. The original is named by its posting id, so there
// is no reference index and no tombstone: the recharge service keeps the
// order that names it.
func (tx *txn) outsideCreditReversal(r *OutsideCreditReversal) error {
	tx.noIndex = true
	o, err := tx.loadPostingIfAny(r.Original)
	if err != nil {
		return err
	}
	if o == nil || o.Kind != KindOutsideCredit {
		tx.lockCards(r.PAN)
		tx.primary = r.PAN
		return tx.decline(DeclineOriginalNotFound)
	}
	tx.lockCards(o.PAN)
	tx.primary = o.PAN
	if r.PAN != o.PAN || r.Amount != o.Amount {
		return tx.decline(DeclineAmountDiffers)
	}
	if c := tx.staged.get(o.PAN); c == nil {
		return tx.decline(DeclineInvalidCard)
	}
	st, err := tx.status(o.TxID)
	if err != nil {
		return err
	}
	if st.ReversedBy != 0 {
		tx.res.NoOp = true
		return nil
	}
	// Always approved: a credit already spent leaves the card owing the
	// shortfall (docs/ledger.md#receivables).
	p := tx.inverse(o, KindReversal)
	claimedFromPending(p, tx.staged.get(o.PAN))
	return tx.undo(o, p)
}

// claimedFromPending rewrites the inverse of a pending credit when the
// card has claimed some of it since: what is still pending comes back
// from PendingLoads, the rest from the cash purse it was claimed to
// (where the receivable rule covers what has been spent).
func claimedFromPending(p *posting, c *card) {
	for i, g := range p.Legs {
		if g.Account != PendingLoads || g.Amount >= 0 {
			continue
		}
		if short := -g.Amount - c.pending(); short > 0 {
			p.Legs[i].Amount += short
			p.Legs = append(p.Legs, leg{CardCash(p.PAN), -short})
		}
		return
	}
}

// loadPostingIfAny is loadPosting for an id that came from outside: a
// missing posting is nil, not corruption.
func (tx *txn) loadPostingIfAny(id uint64) (*posting, error) {
	if id == 0 {
		return nil, nil
	}
	raw, err := get(tx.l.db, postKey(id))
	if err != nil || raw == nil {
		return nil, err
	}
	return tx.loadPosting(id)
}
