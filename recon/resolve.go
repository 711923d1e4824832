package recon

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
)

// Listener is the journal's listener name for resolutions, and their
// transaction labels are ResolutionType(action).
const Listener = "recon"

// ResolutionType is the journal label of a resolution.
func ResolutionType(action string) string { return "recon_" + action }

// Resolution is the body of a resolution's journal entries (their Raw):
// what was decided, by whom, and what the ledger posted.
type Resolution struct {
	Discrepancy uint64     `json:"discrepancy"`
	Gateway     string     `json:"gateway"`
	Date        string     `json:"business_date"`
	Class       string     `json:"class"`
	Key         string     `json:"key"`
	Action      string     `json:"action"`
	Operator    string     `json:"operator"`
	Card        string     `json:"card"`
	Amount      ledger.Fen `json:"amount"`
	TxID        uint64     `json:"ledger_txid,omitempty"`
	// PayerRefund: the payer is owed Amount back by the institution (a
	// refund with no posting on our books); it is on the refund list.
	PayerRefund bool `json:"payer_refund,omitempty"`
}

// maxOperatorLen bounds an operator's name.
const maxOperatorLen = 64

// Resolve settles discrepancy id with action (credit, refund, accept) in
// the operator's name. Credit posts an outside credit of the shortfall to
// the card (the institution's clearing account owes it); refund reverses
// our outside credit the institution does not have (ours-only), or, when
// they took money we never credited, records that the payer is owed it
// back; accept moves no money. Each is journaled (listener "recon") in the
// same synced batch as the ledger posting and the new state of the
// discrepancy.
func (b *Book) Resolve(id uint64, action, operator string) (Discrepancy, error) {
	if operator == "" || len(operator) > maxOperatorLen {
		return Discrepancy{}, fmt.Errorf("recon: operator name: 1..%d characters", maxOperatorLen)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d, err := b.get(id)
	if err != nil {
		return d, err
	}
	if d.State != "open" {
		return d, fmt.Errorf("%w: %d (%s by %s)", ErrResolved, id, d.Action, d.Operator)
	}
	today := b.Today()
	if b.Begin != nil {
		today = b.Begin()
		defer b.End(today)
	}
	res := Resolution{Discrepancy: d.ID, Gateway: d.Gateway, Date: d.Date, Class: d.Class, Key: d.Key,
		Action: action, Operator: operator, Card: d.Card}
	var req ledger.Request
	common := ledger.Common{Key: "recon/" + strconv.FormatUint(d.ID, 10), Date: today}
	switch action {
	case ActionAccept:
	case ActionCredit:
		short := d.TheirsAmount
		if d.Class == AmountDiffers {
			short = d.TheirsAmount - d.OursAmount
		}
		if (d.Class != TheirsOnly && d.Class != AmountDiffers) || short <= 0 {
			return d, fmt.Errorf("%w: credit is for theirs-only or an amount they took above ours", ErrAction)
		}
		res.Amount = short
		req = &ledger.OutsideCredit{Common: common, PAN: d.Card, Amount: short, Institution: d.Gateway}
	case ActionRefund:
		switch d.Class {
		case OursOnly:
			date, err := parseDate(d.Date)
			if err != nil {
				return d, err
			}
			p, ok, err := ledger.PostingByRRN(b.DB, date, d.OursRRN)
			if err != nil {
				return d, err
			}
			if !ok || p.Kind != ledger.KindOutsideCredit {
				return d, fmt.Errorf("%w: refund of ours-only undoes an outside credit; this is %s: resolve it at the institution and accept", ErrAction, d.OursTxType)
			}
			res.Amount, res.TxID = p.Amount, p.TxID
			req = &ledger.OutsideCreditReversal{Common: common, PAN: p.PAN, Amount: p.Amount, Original: p.TxID}
		case TheirsOnly, AmountDiffers:
			res.Amount = d.TheirsAmount
			if d.Class == AmountDiffers {
				res.Amount = d.TheirsAmount - d.OursAmount
			}
			if res.Amount <= 0 {
				return d, fmt.Errorf("%w: they took no more than we credited", ErrAction)
			}
			res.PayerRefund = true
		default:
			return d, fmt.Errorf("%w: refund of %s", ErrAction, d.Class)
		}
	default:
		return d, fmt.Errorf("%w: unknown action %q: want credit, refund or accept", ErrAction, action)
	}
	batch := b.DB.NewBatch()
	defer batch.Close()
	commit := func(txid uint64) error {
		if txid != 0 {
			res.TxID = txid
		}
		raw, err := json.Marshal(res)
		if err != nil {
			return err
		}
		now := time.Now()
		in := &journal.Entry{Direction: journal.In, Listener: Listener, Peer: "operator:" + operator[:min(len(operator), 55)],
			TxType: ResolutionType(action), Time: now, BusinessDate: today.String(), Raw: raw}
		out := *in
		out.Direction, out.ResponseCode = journal.Out, "00"
		_, seq, err := b.Journal.AppendPair(batch, in, &out)
		if err != nil {
			return err
		}
		d.State, d.Action, d.Operator, d.ResolvedAt, d.TxID, d.JournalSeq = "resolved", action, operator, now.UTC(), res.TxID, seq-1
		if err := putJSON(batch, discKey(d.ID), d); err != nil {
			return err
		}
		return batch.Commit(pebble.Sync)
	}
	if req == nil {
		if err := commit(0); err != nil {
			return Discrepancy{}, fmt.Errorf("recon: resolve %d: %w", id, err)
		}
		return d, nil
	}
	r, err := b.Ledger.Execute(req, batch, func(r ledger.Result) error {
		if r.Decline != ledger.Approved {
			return fmt.Errorf("declined: %s", r.Decline)
		}
		return commit(r.TxID)
	})
	if err != nil {
		return Discrepancy{}, fmt.Errorf("recon: resolve %d: %w", id, err)
	}
	if r.Decline != ledger.Approved {
		return Discrepancy{}, fmt.Errorf("recon: resolve %d: ledger declined: %s", id, r.Decline)
	}
	return d, nil
}

func parseDate(s string) (ledger.BusinessDate, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	d := ledger.BusinessDate(v)
	if err != nil || len(s) != 8 || !d.Valid() {
		return 0, errors.New("recon: bad business date " + strconv.Quote(s))
	}
	return d, nil
}
