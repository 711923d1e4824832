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

func (r *OutsideCredit) fingerprint(h *fp) {
	r.cardAmount(h, r.PAN, r.Amount)
	h.e.str(r.Institution)
}

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
	c := tx.staged[r.PAN]
	switch {
	case c == nil || c.State == Closed:
		return tx.decline(DeclineInvalidCard)
	case c.State != Active:
		return tx.decline(DeclineRestrictedCard)
	case c.MaxBalance > 0 && c.Cash+c.Subsidy+r.Amount > c.MaxBalance:
		return tx.decline(DeclineExceedsAmountLimit)
	}
	p := tx.newPosting(KindOutsideCredit, r.PAN)
	p.Amount = r.Amount
	p.Legs = []leg{{CardCash(r.PAN), r.Amount}, {GatewayClearing(r.Institution), -r.Amount}}
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
	if c := tx.staged[o.PAN]; c == nil {
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
	return tx.undo(o, tx.inverse(o, KindReversal))
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
