package recon

import (
	"sort"
	"strconv"

	"github.com/cardswitch/cardswitch/ledger"
)

// RefundItem is one amount to pay out to a cardholder or payer.
type RefundItem struct {
	// Kind: "refund" (an approved refund at a merchant, money back on the
	// card), "payer-refund" (a resolved discrepancy: the institution owes
	// the payer), "closed-card" (a closed card's balance, owed to its
	// holder through the refund payable).
	Kind     string     `json:"kind"`
	Date     string     `json:"business_date"`
	Card     string     `json:"card"`
	Merchant string     `json:"merchant,omitempty"`
	Amount   ledger.Fen `json:"amount"`
	// Ref is the RRN of a refund, the discrepancy id of a payer refund,
	// the posting id of a closed card.
	Ref string `json:"ref"`
}

// RefundList lists what is to be paid out for business dates from..to:
// approved refunds that stand, payer refunds decided in reconciliation,
// and the balances of cards closed in the period.
func (b *Book) RefundList(from, to ledger.BusinessDate) ([]RefundItem, error) {
	var out []RefundItem
	snap := b.DB.NewSnapshot()
	defer snap.Close()
	err := ledger.ScanPostings(snap, from, to, func(p *ledger.PostingView) error {
		switch {
		case p.Kind == ledger.KindRefund && p.ReversedBy == 0:
			out = append(out, RefundItem{Kind: "refund", Date: p.Date.String(), Card: p.PAN, Merchant: p.Merchant, Amount: p.Amount, Ref: p.RRN})
		case p.Kind == ledger.KindCloseCard && p.Amount > 0:
			out = append(out, RefundItem{Kind: "closed-card", Date: p.Date.String(), Card: p.PAN, Amount: p.Amount, Ref: strconv.FormatUint(p.TxID, 10)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var after uint64
	for {
		list, more, err := b.Discrepancies(DiscrepancyFilter{State: "resolved"}, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, d := range list {
			after = d.ID
			if d.Action != ActionRefund || d.Class == OursOnly {
				continue
			}
			// Listed on the business day the decision was journaled.
			e, err := b.Journal.Get(d.JournalSeq)
			if err != nil {
				return nil, err
			}
			rd, err := parseDate(e.BusinessDate)
			if err != nil || rd < from || rd > to {
				continue
			}
			amt := d.TheirsAmount
			if d.Class == AmountDiffers {
				amt -= d.OursAmount
			}
			out = append(out, RefundItem{Kind: "payer-refund", Date: e.BusinessDate, Card: d.Card, Amount: amt, Ref: strconv.FormatUint(d.ID, 10)})
		}
		if !more {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Date < out[j].Date })
	return out, nil
}

// Count is a count and an amount.
type Count struct {
	Key    string     `json:"key"`
	Count  int64      `json:"count"`
	Amount ledger.Fen `json:"amount"`
}

// Statistics are one business day's figures from its export rows.
type Statistics struct {
	Date       string  `json:"business_date"`
	Messages   int64   `json:"messages"`
	Approved   Count   `json:"approved"`
	ByType     []Count `json:"by_type"`
	ByMerchant []Count `json:"by_merchant"`
	ByTerminal []Count `json:"by_terminal"`
	// ByHour is keyed "00".."23", local hour of the business day's zone.
	ByHour []Count `json:"by_hour"`
	// Declines counts declined messages by response code.
	Declines []Count `json:"declines"`
}

// MaxStatKeys bounds each breakdown (terminals are the largest).
const MaxStatKeys = 100_000

// DayStatistics counts one business day's approved financial messages by
// type, merchant, terminal and hour, and declines by response code.
func (s Source) DayStatistics(date ledger.BusinessDate) (*Statistics, error) {
	st := &Statistics{Date: date.String(), Approved: Count{Key: "approved"}}
	maps := [5]map[string]*Count{{}, {}, {}, {}, {}}
	add := func(i int, k string, amt ledger.Fen) {
		c := maps[i][k]
		if c == nil {
			if len(maps[i]) >= MaxStatKeys {
				k = "other"
				if c = maps[i][k]; c == nil {
					c = &Count{Key: k}
					maps[i][k] = c
				}
			} else {
				c = &Count{Key: k}
				maps[i][k] = c
			}
		}
		c.Count++
		c.Amount += amt
	}
	err := s.ScanDay(date, func(r *Row) error {
		st.Messages++
		if !r.Approved() {
			add(4, r.ResponseCode, r.Amount)
			return nil
		}
		st.Approved.Count++
		st.Approved.Amount += r.Amount
		add(0, r.TxType, r.Amount)
		add(1, r.Merchant, r.Amount)
		add(2, r.Terminal, r.Amount)
		add(3, r.Time.Format("15"), r.Amount)
		return nil
	})
	if err != nil {
		return nil, err
	}
	lists := [5]*[]Count{&st.ByType, &st.ByMerchant, &st.ByTerminal, &st.ByHour, &st.Declines}
	for i, m := range maps {
		l := make([]Count, 0, len(m))
		for _, c := range m {
			l = append(l, *c)
		}
		sort.Slice(l, func(a, b int) bool { return l[a].Key < l[b].Key })
		*lists[i] = l
	}
	return st, nil
}
