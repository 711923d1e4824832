// Package pos is the POS port's protocol (docs/pos-dialect.md): Protocol
// serves the POS acceptor and runs each frame through the flow (decode,
// authenticate, dedupe, route, execute, record, reply; protocol.go,
// flow.go, signon.go, record.go), and this file holds the dialect's
// mapping to and from the switch's one internal transaction (switch/txn):
// the one place each way that reads or writes the POS fields of a
// financial transaction. The protocol asks its collaborators through the
// small interfaces of Options and holds no switch.
package pos

import (
	"strconv"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// CardOrganisation opens field 63 of every response (docs/pos-dialect.md:
// card organisation + message text): this switch's closed-loop cards.
const CardOrganisation = "CSC"

// Request is what the flow knows of a financial request besides its
// message when it maps it.
type Request struct {
	Msg *spec.POSMessage
	// Type and OriginalType are the message's transaction type and, for
	// a reversal, the type it reverses (spec.POSMessage.TxType).
	Type, OriginalType spec.TxType
	// Peer is the connection's remote address.
	Peer string
	// Card is the card number (field 2 or track 2).
	Card string
	// TerminalMayLoad is the terminal's permission to take cash loads.
	TerminalMayLoad bool
	// BusinessDate is the switch's business day of the request; RRN the
	// retrieval reference number the switch assigned it.
	BusinessDate ledger.BusinessDate
	RRN          string
	// DuplicateDate is the date part of the request's duplicate key (the
	// terminal's MMDD, or the business date without one).
	DuplicateDate string
	// KnownNew: the trace number is above every one the terminal sent in
	// the batch (txn.Transaction.KnownNew).
	KnownNew bool
}

// Transaction maps a POS request into the internal transaction. A
// non-empty response code answers a request whose numbers do not parse or
// whose PIN block is malformed.
func Transaction(r Request) (*txn.Transaction, string) {
	t := new(txn.Transaction)
	if rc := transactionInto(r, t); rc != "" {
		return nil, rc
	}
	return t, ""
}

// transactionInto is Transaction into t (the flow's lives in its
// exchange).
func transactionInto(r Request, t *txn.Transaction) string {
	req := r.Msg
	batch, err1 := strconv.ParseUint(req.Reserved60.Batch, 10, 32)
	stan, err2 := strconv.ParseUint(req.STAN, 10, 32)
	if err1 != nil || err2 != nil {
		return spec.RCFormatError
	}
	*t = txn.Transaction{
		Type:            r.Type,
		OriginalType:    r.OriginalType,
		Source:          "pos",
		Peer:            r.Peer,
		Card:            r.Card,
		Amount:          ledger.Fen(req.Amount),
		HasAmount:       req.HasAmount,
		Terminal:        req.TerminalID,
		Merchant:        req.MerchantID,
		TerminalMayLoad: r.TerminalMayLoad,
		Batch:           uint32(batch),
		STAN:            uint32(stan),
		LocalDate:       req.LocalDate,
		LocalTime:       req.LocalTime,
		BusinessDate:    r.BusinessDate,
		RRN:             r.RRN,
		AuthCode:        req.AuthCode,
		Key:             transactionKey(req.TerminalID, req.Reserved60.Batch, req.STAN, r.DuplicateDate),
		KnownNew:        r.KnownNew,
		Deduplicated:    true,
	}
	// An 8-byte PIN block travels in field 52, a 16-byte SM4 block in
	// field 62 as tag P4 (docs/pos-dialect.md#pin-blocks); never both.
	block := req.PINBlock
	sm4, present, err := spec.SM4PINBlock(req.Reserved62)
	switch {
	case err != nil, present && len(block) > 0:
		return spec.RCFormatError
	case present:
		block = sm4
	}
	if len(block) > 0 {
		t.PIN = &txn.PINBlock{Terminal: req.TerminalID, Block: block, SecurityControl: req.SecurityControl}
	}
	switch {
	case r.Type == spec.Reversal:
		// A reversal repeats its original's batch and STAN (60.2, 11);
		// 39 is its reason (docs/pos-dialect.md#response-codes).
		t.Original = txn.Original{Present: true, Batch: t.Batch, STAN: t.STAN}
		t.ReversalReason = req.ResponseCode
	case req.Original.Present():
		ob, e1 := strconv.ParseUint(req.Original.Batch, 10, 32)
		os, e2 := strconv.ParseUint(req.Original.STAN, 10, 32)
		if e1 != nil || e2 != nil {
			return spec.RCFormatError
		}
		t.Original = txn.Original{Present: true, Batch: uint32(ob), STAN: uint32(os), RRN: req.RRN}
		// The original's business date: from the RRN this switch
		// issued, else from the terminal's MMDD in field 61.
		od, ok := RRNDate(req.RRN, r.BusinessDate)
		if !ok {
			od, ok = OriginalDate(req.Original.Date, r.BusinessDate)
		}
		if ok {
			t.Original.Date = od
		}
	}
	return ""
}

// OriginalDate turns the MMDD of field 61 into a business date: the latest
// such day not after today.
func OriginalDate(mmdd string, today ledger.BusinessDate) (ledger.BusinessDate, bool) {
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

// RRNDate reads the business date out of an RRN this switch issued: its
// first three digits are the day of the year of the business day, the
// latest such day not after today. It is preferred to the MMDD of field
// 61, which comes from the terminal's clock (and its time zone).
func RRNDate(rrn string, today ledger.BusinessDate) (ledger.BusinessDate, bool) {
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

// Answer maps a destination's outcome into the POS response to req: the
// one place the POS fields of a financial answer are written. date is the
// request's business date; merchantName the merchant's name for the
// receipt ("" when the merchant is not registered).
func Answer(req *spec.POSMessage, t *txn.Transaction, o txn.Outcome, date ledger.BusinessDate, merchantName string) *spec.POSMessage {
	resp := new(spec.POSMessage)
	answerInto(resp, req, t, o, date, ReceiptText(merchantName))
	return resp
}

// answerInto is Answer written into resp (the exchange's own message: no
// allocation per answer), with field 63 given.
func answerInto(resp *spec.POSMessage, req *spec.POSMessage, t *txn.Transaction, o txn.Outcome, date ledger.BusinessDate, receipt string) {
	resp.InitResponse(req, o.ResponseCode)
	resp.RRN = t.RRN
	settle := o.SettlementDate
	if settle == 0 {
		settle = date
	}
	resp.SettlementDate = settle.String()[4:]
	if o.Approved() && o.AuthCode != "" {
		resp.AuthCode = o.AuthCode
	}
	if len(o.Balances) > 0 {
		if f54, err := BalancesField(o.Balances); err == nil {
			resp.Balances = f54
		}
	}
	if o.Amount != nil {
		resp.Amount, resp.HasAmount = spec.Amount(*o.Amount), true
	}
	resp.Reserved63 = receipt
}

// BalancesField builds field 54: the available balance of each account.
func BalancesField(bs []txn.Balance) (string, error) {
	var buf [spec.MaxBalances]spec.Balance // FormatBalances keeps nothing of it
	out := buf[:0]
	if len(bs) > len(buf) {
		out = make([]spec.Balance, 0, len(bs)) // refused by FormatBalances
	}
	for _, b := range bs {
		out = append(out, spec.Balance{AccountType: string(b.Account), AmountType: spec.AmountTypeAvailable,
			Currency: spec.CurrencyCNY, Amount: spec.Amount(b.Amount)})
	}
	return spec.FormatBalances(out)
}

// maxReceiptText bounds field 63 (docs/pos-dialect.md).
const maxReceiptText = 163

// ReceiptText is field 63 of a response: the card organisation and the
// merchant's name for the receipt; the organisation alone when there is
// no name or it is not printable ASCII.
func ReceiptText(merchantName string) string {
	if merchantName == "" {
		return CardOrganisation
	}
	text := CardOrganisation + merchantName
	if len(text) > maxReceiptText {
		text = text[:maxReceiptText]
	}
	for i := 0; i < len(text); i++ {
		if text[i] < 0x20 || text[i] > 0x7E {
			return CardOrganisation // the field is ASCII only
		}
	}
	return text
}

// transactionKey is terminal/batch/stan/date, the transaction's
// idempotency key: built in one buffer of its exact size, which costs
// fewer instructions than the runtime's general concatenation.
func transactionKey(terminal, batch, stan, date string) string {
	var b strings.Builder
	b.Grow(len(terminal) + len(batch) + len(stan) + len(date) + 3)
	b.WriteString(terminal)
	b.WriteByte('/')
	b.WriteString(batch)
	b.WriteByte('/')
	b.WriteString(stan)
	b.WriteByte('/')
	b.WriteString(date)
	return b.String()
}
