package ledger

import "fmt"

// TransferLoad credits a card's cash purse with money debited from the
// card's bound bank account (a bank-transfer load at a kiosk,
// docs/recharge.md): the bank's clearing account (GatewayClearing of the
// bank link's institution id) owes it to the school. The switch runs it
// twice per load: first as a Probe, before the bank leg, which checks the
// card (state, PIN, maximum balance) and posts nothing — approved means a
// credit of Amount would be taken now; then, after the bank approved the
// debit, without Probe and with its own Key, to post the credit. A
// declined credit is the switch's cue to reverse the bank's debit. The
// card rules are a cash load's: a frozen card is loaded, a lost or closed
// one is not.
type TransferLoad struct {
	Common
	PAN         string
	Amount      Fen
	Institution string // the credit's clearing account; not needed by a probe
	MayLoad     bool
	PIN         PINOutcome
	Probe       bool
}

func (r *TransferLoad) Kind() Kind      { return KindTransferLoad }
func (r *TransferLoad) common() *Common { return &r.Common }
func (r *TransferLoad) pan() string     { return r.PAN }

func (r *TransferLoad) fingerprint(h *fp) {
	r.cardAmount(h, r.PAN, r.Amount)
	h.e.str(r.Institution)
	h.e.boolean(r.Probe)
}

func (tx *txn) transferLoad(r *TransferLoad) error {
	if (!r.Probe && r.Institution == "") || len(r.Institution) > maxInstitutionLen {
		return fmt.Errorf("%w: institution id %q", ErrInvalidRequest, r.Institution)
	}
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
	// A load, like a cash load: allowed on a frozen card (the holder is
	// at the kiosk with the card and its PIN; a freeze stops debits),
	// declined on a lost or closed one (docs/recharge.md).
	c := tx.staged.get(r.PAN)
	if declined, err := tx.refuseReversedFirst(); declined || err != nil {
		return err
	}
	if c.MaxBalance > 0 && c.Cash+c.Subsidy+c.pending()+r.Amount > c.MaxBalance {
		return tx.decline(DeclineExceedsAmountLimit)
	}
	if r.Probe {
		// Nothing posted: the bank leg comes next.
		return nil
	}
	p := tx.newPosting(KindTransferLoad, r.PAN)
	p.Amount = r.Amount
	p.Legs = []leg{{CardCash(r.PAN), r.Amount}, {GatewayClearing(r.Institution), -r.Amount}}
	return tx.finish(p)
}
