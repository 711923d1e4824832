package switching

import (
	"fmt"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// The POS adapter's mapping of a financial request into the internal
// transaction and of an outcome back into the answer: the one place each
// way that reads or writes the POS fields of a transaction.

// cardOrganisation opens field 63 of every response (docs/pos-dialect.md:
// card organisation + message text): this switch's closed-loop cards.
const cardOrganisation = "CSC"

// transactionOf maps a POS request into the internal transaction: the one
// place the POS fields of a financial request are read. A non-empty rc
// answers a request whose numbers do not parse.
func (p *posProtocol) transactionOf(x *exchange, pan, rrn string) (*txn.Transaction, string) {
	req := x.req
	batch, err1 := strconv.ParseUint(req.Reserved60.Batch, 10, 32)
	stan, err2 := strconv.ParseUint(req.STAN, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, spec.RCFormatError
	}
	dupKey := x.duplicateKey()
	t := &txn.Transaction{
		Type:            x.tx,
		OriginalType:    x.orig,
		Source:          "pos",
		Peer:            x.s.Peer,
		Card:            pan,
		Amount:          ledger.Fen(req.Amount),
		HasAmount:       req.HasAmount,
		Terminal:        req.TerminalID,
		Merchant:        req.MerchantID,
		TerminalMayLoad: x.term.MayLoad,
		Batch:           uint32(batch),
		STAN:            uint32(stan),
		LocalDate:       req.LocalDate,
		LocalTime:       req.LocalTime,
		BusinessDate:    x.date,
		RRN:             rrn,
		AuthCode:        req.AuthCode,
		Key:             fmt.Sprintf("%s/%s/%s/%s", req.TerminalID, req.Reserved60.Batch, req.STAN, dupKey.Date),
		KnownNew:        x.fresh,
		Deduplicated:    true,
	}
	// An 8-byte PIN block travels in field 52, a 16-byte SM4 block in
	// field 62 as tag P4 (docs/pos-dialect.md#pin-blocks); never both.
	block := req.PINBlock
	sm4, present, err := spec.SM4PINBlock(req.Reserved62)
	switch {
	case err != nil, present && len(block) > 0:
		return nil, spec.RCFormatError
	case present:
		block = sm4
	}
	if len(block) > 0 {
		t.PIN = &txn.PINBlock{Terminal: x.term.ID, Block: block, SecurityControl: req.SecurityControl}
	}
	switch {
	case x.tx == spec.Reversal:
		// A reversal repeats its original's batch and STAN (60.2, 11);
		// 39 is its reason (docs/pos-dialect.md#response-codes).
		t.Original = txn.Original{Present: true, Batch: t.Batch, STAN: t.STAN}
		t.ReversalReason = req.ResponseCode
	case req.Original.Present():
		ob, e1 := strconv.ParseUint(req.Original.Batch, 10, 32)
		os, e2 := strconv.ParseUint(req.Original.STAN, 10, 32)
		if e1 != nil || e2 != nil {
			return nil, spec.RCFormatError
		}
		t.Original = txn.Original{Present: true, Batch: uint32(ob), STAN: uint32(os), RRN: req.RRN}
		// The original's business date: from the RRN this switch
		// issued, else from the terminal's MMDD in field 61.
		od, ok := rrnDate(req.RRN, x.date)
		if !ok {
			od, ok = originalDate(req.Original.Date, x.date)
		}
		if ok {
			t.Original.Date = od
		}
	}
	return t, ""
}

// originalDate turns the MMDD of field 61 into a business date: the latest
// such day not after today.
func originalDate(mmdd string, today ledger.BusinessDate) (ledger.BusinessDate, bool) {
	if len(mmdd) != 4 {
		return 0, false
	}
	md, err := strconv.Atoi(mmdd)
	if err != nil {
		return 0, false
	}
	year := int(today / 10000)
	d := ledger.BusinessDate(year*10000 + md)
	if d > today {
		d = ledger.BusinessDate((year-1)*10000 + md)
	}
	return d, d.Valid()
}

// rrnDate reads the business date out of an RRN this switch issued: its
// first three digits are the day of the year of the business day, the
// latest such day not after today. It is preferred to the MMDD of field
// 61, which comes from the terminal's clock (and its time zone).
func rrnDate(rrn string, today ledger.BusinessDate) (ledger.BusinessDate, bool) {
	if len(rrn) != 12 {
		return 0, false
	}
	yday, err := strconv.Atoi(rrn[:3])
	if err != nil || yday < 1 || yday > 366 {
		return 0, false
	}
	year := int(today / 10000)
	for y := year; y >= year-1; y-- {
		t := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, yday-1)
		if t.Year() != y {
			continue // day 366 of a common year
		}
		if d := ledger.DateOf(t); d <= today {
			return d, true
		}
	}
	return 0, false
}

// answerOutcome maps a destination's outcome into the POS response: the
// one place the POS fields of a financial answer are written.
func (p *posProtocol) answerOutcome(x *exchange, t *txn.Transaction, o txn.Outcome) *spec.POSMessage {
	resp := spec.NewPOSResponse(x.req, o.ResponseCode)
	resp.RRN = t.RRN
	settle := o.SettlementDate
	if settle == 0 {
		settle = x.date
	}
	resp.SettlementDate = settle.String()[4:]
	if o.Approved() && o.AuthCode != "" {
		resp.AuthCode = o.AuthCode
	}
	if len(o.Balances) > 0 {
		if f54, err := balancesField(o.Balances); err == nil {
			resp.Balances = f54
		}
	}
	if o.Amount != nil {
		resp.Amount, resp.HasAmount = spec.Amount(*o.Amount), true
	}
	resp.Reserved63 = p.receiptText(x)
	return resp
}

// balancesField builds field 54: the available balance of each account.
func balancesField(bs []txn.Balance) (string, error) {
	out := make([]spec.Balance, len(bs))
	for i, b := range bs {
		out[i] = spec.Balance{AccountType: string(b.Account), AmountType: spec.AmountTypeAvailable,
			Currency: spec.CurrencyCNY, Amount: spec.Amount(b.Amount)}
	}
	return spec.FormatBalances(out)
}

// receiptText is field 63 of a response: the card organisation and the
// merchant's name for the receipt.
func (p *posProtocol) receiptText(x *exchange) string {
	m, ok := p.sw.ledger.Merchant(x.req.MerchantID)
	if !ok {
		return cardOrganisation
	}
	text := cardOrganisation + m.Name
	if len(text) > 163 {
		text = text[:163]
	}
	for i := 0; i < len(text); i++ {
		if text[i] < 0x20 || text[i] > 0x7E {
			return cardOrganisation // the field is ASCII only
		}
	}
	return text
}
