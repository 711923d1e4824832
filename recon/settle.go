package recon

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
)

const spaceRates = 'm'

// MaxRateBP bounds a fee or management-fee rate (basis points): 100 %.
const MaxRateBP = 10_000

// Rates are a merchant's settlement rates from a business date on.
type Rates struct {
	Merchant string `json:"merchant"`
	From     string `json:"from"`
	// FeeBP is the fee the school keeps, in basis points of each
	// consume (half up to the fen per transaction).
	FeeBP int32 `json:"fee_bp"`
	// ManagementBP is the management fee (搭伙费) kept, in basis points.
	ManagementBP int32     `json:"management_bp"`
	SetBy        string    `json:"set_by,omitempty"`
	SetAt        time.Time `json:"set_at,omitzero"`
}

func ratesPrefix(merchant string) []byte { return appendStr([]byte{prefix, spaceRates}, merchant) }
func ratesKey(merchant string, from ledger.BusinessDate) []byte {
	return binary.BigEndian.AppendUint32(ratesPrefix(merchant), uint32(from))
}

// SetRates records a merchant's rates from business date from on. Earlier
// entries stay: settlement of a period before from uses them.
func (b *Book) SetRates(r Rates) error {
	from, err := parseDate(r.From)
	if err != nil {
		return err
	}
	if r.Merchant == "" || len(r.Merchant) > 32 {
		return fmt.Errorf("recon: rates: merchant id %q", r.Merchant)
	}
	if b.Ledger != nil {
		if _, ok := b.Ledger.Merchant(r.Merchant); !ok {
			return fmt.Errorf("recon: rates: merchant %s is not registered", r.Merchant)
		}
	}
	if r.FeeBP < 0 || r.FeeBP > MaxRateBP || r.ManagementBP < 0 || r.ManagementBP > MaxRateBP || r.FeeBP+r.ManagementBP > MaxRateBP {
		return fmt.Errorf("recon: rates: fee_bp and management_bp 0..%d, together at most %d", MaxRateBP, MaxRateBP)
	}
	if r.SetAt.IsZero() {
		r.SetAt = time.Now().UTC()
	}
	return putJSONSync(b.DB, ratesKey(r.Merchant, from), r)
}

// RateHistory lists a merchant's rates, oldest first ("" = every
// merchant's).
func (b *Book) RateHistory(merchant string) ([]Rates, error) {
	p := []byte{prefix, spaceRates}
	if merchant != "" {
		p = ratesPrefix(merchant)
	}
	it, err := b.DB.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Rates
	for ok := it.First(); ok; ok = it.Next() {
		var r Rates
		v := it.Value()
		if len(v) < 1 || v[0] != 1 {
			return nil, fmt.Errorf("recon: rates %x: unknown version", it.Key())
		}
		if err := json.Unmarshal(v[1:], &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, it.Error()
}

// rateTable answers the rates in force for a merchant on a date: the
// latest entry from that date or before, else the merchant's fee rate
// in the ledger and no management fee.
type rateTable struct {
	hist  map[string][]Rates // by merchant, oldest first
	dflt  func(string) int32
	cache map[string]int32
}

func (b *Book) rateTable() (*rateTable, error) {
	all, err := b.RateHistory("")
	if err != nil {
		return nil, err
	}
	t := &rateTable{hist: map[string][]Rates{}, cache: map[string]int32{}}
	for _, r := range all {
		t.hist[r.Merchant] = append(t.hist[r.Merchant], r)
	}
	t.dflt = func(m string) int32 {
		if b.Ledger == nil {
			return 0
		}
		if v, ok := t.cache[m]; ok {
			return v
		}
		info, _ := b.Ledger.Merchant(m)
		t.cache[m] = info.FeeRateBP
		return info.FeeRateBP
	}
	return t, nil
}

func (t *rateTable) at(m string, d ledger.BusinessDate) (fee, mgmt int32) {
	h := t.hist[m]
	ds := d.String()
	i := sort.Search(len(h), func(i int) bool { return h[i].From > ds })
	if i == 0 {
		return t.dflt(m), 0
	}
	return h[i-1].FeeBP, h[i-1].ManagementBP
}

// MerchantSettlement is one merchant's payout for a period.
type MerchantSettlement struct {
	Merchant      string     `json:"merchant"`
	ConsumeCount  int64      `json:"consume_count"`
	ConsumeAmount ledger.Fen `json:"consume_amount"`
	RefundCount   int64      `json:"refund_count"`
	RefundAmount  ledger.Fen `json:"refund_amount"`
	// Fee and ManagementFee are what the school keeps: per consume at the
	// rate of its business date, half up, less the same on each refund.
	Fee           ledger.Fen `json:"fee"`
	ManagementFee ledger.Fen `json:"management_fee"`
	// Net is what the merchant is paid: consumes − refunds − fees.
	Net ledger.Fen `json:"net_payable"`
	// LedgerMovement is the sum of the period's postings on the merchant's
	// account; CrossPeriod the part of it from voids and reversals whose
	// original lies in another period (or the originals they undid). The
	// check: LedgerMovement = ConsumeAmount − RefundAmount + CrossPeriod.
	LedgerMovement ledger.Fen `json:"ledger_movement"`
	CrossPeriod    ledger.Fen `json:"cross_period"`
	Balanced       bool       `json:"balanced"`
}

// Settlement is the settlement of a period.
type Settlement struct {
	From      string               `json:"from"`
	To        string               `json:"to"`
	Merchants []MerchantSettlement `json:"merchants"`
	Total     MerchantSettlement   `json:"total"`
	// Balanced: every merchant's figures agree with the ledger.
	Balanced bool `json:"balanced"`
	// Next is the after= of the next page of merchants ("" on the last).
	Next string `json:"next,omitempty"`
}

// Page keeps the merchants after the one named after, at most limit of
// them, setting Next when more follow; totals stay those of all.
func (s *Settlement) Page(after string, limit int) {
	i := sort.Search(len(s.Merchants), func(i int) bool { return s.Merchants[i].Merchant > after })
	m := s.Merchants[i:]
	if len(m) > limit {
		m = m[:limit]
		s.Next = m[len(m)-1].Merchant
	}
	s.Merchants = m
}

func isOriginal(k ledger.Kind) bool {
	return k == ledger.KindConsume || k == ledger.KindPreAuthCompletion || k == ledger.KindRefund
}

func isUndo(k ledger.Kind) bool {
	return k == ledger.KindVoid || k == ledger.KindCompletionVoid || k == ledger.KindReversal
}

// Settle computes the settlement of business dates from..to for every
// merchant with postings in the period (or only merchant), from one
// snapshot of the books, and checks each against the ledger's movements
// on the merchant's account.
func (b *Book) Settle(from, to ledger.BusinessDate, merchant string) (*Settlement, error) {
	rt, err := b.rateTable()
	if err != nil {
		return nil, err
	}
	snap := b.DB.NewSnapshot()
	defer snap.Close()
	in := func(d ledger.BusinessDate) bool { return d >= from && d <= to }
	dateOf := func(id uint64) (ledger.BusinessDate, error) {
		p, ok, err := ledger.PostingByID(snap, id)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("recon: posting %d named by a status is missing", id)
		}
		return p.Date, nil
	}
	byM := map[string]*MerchantSettlement{}
	get := func(m string) *MerchantSettlement {
		s := byM[m]
		if s == nil {
			s = &MerchantSettlement{Merchant: m}
			byM[m] = s
		}
		return s
	}
	err = ledger.ScanPostings(snap, from, to, func(p *ledger.PostingView) error {
		var legs ledger.Fen
		touched := false
		for _, l := range p.Legs {
			if l.Account == ledger.MerchantPayable(p.Merchant) {
				legs += l.Amount
				touched = true
			}
		}
		if p.Merchant == "" || (merchant != "" && p.Merchant != merchant) {
			return nil
		}
		if !touched && !isOriginal(p.Kind) {
			return nil
		}
		s := get(p.Merchant)
		s.LedgerMovement += legs
		switch {
		case isOriginal(p.Kind) && p.VoidedBy == 0 && p.ReversedBy == 0:
			fee, mgmt := rt.at(p.Merchant, p.Date)
			f, g := ledger.ServiceFee(p.Amount, fee), ledger.ServiceFee(p.Amount, mgmt)
			if p.Kind == ledger.KindRefund {
				s.RefundCount++
				s.RefundAmount += p.Amount
				s.Fee -= f
				s.ManagementFee -= g
			} else {
				s.ConsumeCount++
				s.ConsumeAmount += p.Amount
				s.Fee += f
				s.ManagementFee += g
			}
		case isOriginal(p.Kind):
			u := p.VoidedBy
			if u == 0 {
				u = p.ReversedBy
			}
			d, err := dateOf(u)
			if err != nil {
				return err
			}
			if !in(d) {
				s.CrossPeriod += legs
			}
		case isUndo(p.Kind):
			if p.ReversedBy != 0 { // a void reversed again: the pair cancels
				d, err := dateOf(p.ReversedBy)
				if err != nil {
					return err
				}
				if !in(d) {
					s.CrossPeriod += legs
				}
				return nil
			}
			d, err := dateOf(p.Link)
			if err != nil {
				return err
			}
			if !in(d) {
				s.CrossPeriod += legs
			}
		default:
			// Anything else on a merchant's account is unexplained: it
			// stays in LedgerMovement and unbalances the check.
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st := &Settlement{From: from.String(), To: to.String(), Balanced: true, Total: MerchantSettlement{Merchant: "TOTAL", Balanced: true}}
	names := make([]string, 0, len(byM))
	for m := range byM {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		s := byM[m]
		s.Net = s.ConsumeAmount - s.RefundAmount - s.Fee - s.ManagementFee
		s.Balanced = s.LedgerMovement == s.ConsumeAmount-s.RefundAmount+s.CrossPeriod
		st.Balanced = st.Balanced && s.Balanced
		t := &st.Total
		t.ConsumeCount += s.ConsumeCount
		t.ConsumeAmount += s.ConsumeAmount
		t.RefundCount += s.RefundCount
		t.RefundAmount += s.RefundAmount
		t.Fee += s.Fee
		t.ManagementFee += s.ManagementFee
		t.Net += s.Net
		t.LedgerMovement += s.LedgerMovement
		t.CrossPeriod += s.CrossPeriod
		st.Merchants = append(st.Merchants, *s)
	}
	st.Total.Balanced = st.Balanced
	return st, nil
}

// SettlementCSVHeader is the header of the settlement CSV.
const SettlementCSVHeader = "merchant,consume_count,consume_amount_fen,refund_count,refund_amount_fen,fee_fen,management_fee_fen,net_payable_fen,ledger_movement_fen,cross_period_fen,balanced"

// AppendCSV writes one settlement line.
func (s *MerchantSettlement) AppendCSV(b []byte) []byte {
	return fmt.Appendf(b, "%s,%d,%d,%d,%d,%d,%d,%d,%d,%d,%t\n", s.Merchant, s.ConsumeCount, int64(s.ConsumeAmount),
		s.RefundCount, int64(s.RefundAmount), int64(s.Fee), int64(s.ManagementFee), int64(s.Net),
		int64(s.LedgerMovement), int64(s.CrossPeriod), s.Balanced)
}
