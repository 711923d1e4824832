package gateway

import (
	"strconv"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/recharge"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/moov-io/iso8583"
)

// The gateway ↔ txn.Transaction mapping of an outside institution's
// request (docs/recharge.md "ISO 8583"): the one place that reads the
// fields of an inbound request into a transaction and writes an outcome
// into its answer.

// inboundRow identifies an institution's request by MTI and field 3.
type inboundRow struct {
	tx   txn.Type
	mtis []string
	proc string
}

// inboundTable is the identification table of the institutions'
// requests.
var inboundTable = []inboundRow{
	{spec.RechargeVerify, []string{spec.GWAuthorizationRequest}, recharge.ProcVerify},
	{spec.RechargeQuery, []string{spec.GWAuthorizationRequest}, recharge.ProcQuery},
	{spec.RechargeCredit, []string{spec.GWFinancialRequest}, recharge.ProcCredit},
	{spec.RechargeReversal, []string{spec.GWReversalRequest, spec.GWReversalRepeat}, recharge.ProcCredit},
}

// inboundType is the type of an institution's request, spec.Unknown for
// none of the table's.
func inboundType(mti, proc string) txn.Type {
	for _, row := range inboundTable {
		for _, m := range row.mtis {
			if m == mti && row.proc == proc {
				return row.tx
			}
		}
	}
	return spec.Unknown
}

// typeLabel is the metrics and journal label of an institution's request.
func typeLabel(t txn.Type) string {
	if t == spec.Unknown {
		return "recharge_unknown"
	}
	return t.String()
}

// Field 48 tags of the institutions' requests and answers.
const (
	tagOrder   = "ON"
	tagName    = "NM"
	tagChannel = "CH"
	tagStatus  = "ST"
	tagRC      = "RC"
)

// inboundTransaction reads the fields of request req of type tx from
// institution inst into a transaction; false for a format error (a
// missing or malformed field).
func inboundTransaction(tx txn.Type, inst string, req *iso8583.Message) (*txn.Transaction, bool) {
	t := &txn.Transaction{Type: tx, Source: "gateway", Institution: inst}
	t.Card, _ = req.GetString(2)
	if s, err := req.GetString(4); err == nil && s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return t, false
		}
		t.Amount, t.HasAmount = ledger.Fen(v), true
	}
	f48, _ := req.GetString(48)
	tags, err := spec.ParseTagList(f48)
	if err != nil {
		return t, false
	}
	t.Order, _ = spec.TagValue(tags, tagOrder)
	t.HolderName, _ = spec.TagValue(tags, tagName)
	ch, _ := spec.TagValue(tags, tagChannel)
	if len(t.Order) > recharge.MaxOrderLen || len(t.HolderName) > recharge.MaxNameBytes || len(ch) > recharge.MaxChannelLen ||
		!printableASCII(t.Order) || !printableASCII(ch) {
		t.Order = "" // an answer repeats only an order number within bounds
		return t, false
	}
	switch tx {
	case spec.RechargeVerify:
		return t, t.Card != "" && t.HolderName != ""
	case spec.RechargeQuery:
		return t, t.Order != ""
	default:
		return t, t.Order != "" && t.Card != "" && t.HasAmount
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// echoed are the request fields every answer to an institution repeats.
var echoed = []int{2, 3, 4, 7, 11, 32, 37, 41, 42, 49}

// inboundAnswer writes the answer to req with outcome o into resp (MTI
// set, MAC not): the echoed fields, 39, and 37, 38, 48 (order number,
// an order query's state and decline code), 2 and 4 (an order query's
// card and amount) and 54 (an approved credit's purses) when the outcome
// has them. order is the request's order number ("" when it had none).
func inboundAnswer(resp, req *iso8583.Message, order string, o txn.Outcome) error {
	for _, id := range echoed {
		if v, err := req.GetString(id); err == nil && v != "" {
			if err := resp.Field(id, v); err != nil {
				return err
			}
		}
	}
	set := func(id int, v string) error {
		if v == "" {
			return nil
		}
		return resp.Field(id, v)
	}
	if err := resp.Field(39, o.ResponseCode); err != nil {
		return err
	}
	if err := set(37, o.RRN); err != nil {
		return err
	}
	if err := set(38, o.AuthCode); err != nil {
		return err
	}
	var tags []spec.Tag
	if order != "" {
		tags = append(tags, spec.Tag{Name: tagOrder, Value: order})
	}
	if q := o.Order; q != nil {
		tags = append(tags, spec.Tag{Name: tagStatus, Value: string(q.State)})
		if q.RC != "" {
			tags = append(tags, spec.Tag{Name: tagRC, Value: q.RC})
		}
		if err := set(2, q.Card); err != nil {
			return err
		}
		if q.Amount > 0 {
			if err := resp.Field(4, zeroPad(int64(q.Amount), 12)); err != nil {
				return err
			}
		}
	}
	if len(tags) > 0 {
		f48, err := spec.FormatTagList(tags)
		if err != nil {
			return err
		}
		if err := resp.Field(48, f48); err != nil {
			return err
		}
	}
	if len(o.Balances) > 0 {
		bs := make([]spec.Balance, 0, len(o.Balances))
		for _, b := range o.Balances {
			bs = append(bs, spec.Balance{AccountType: string(b.Account), AmountType: spec.AmountTypeAvailable,
				Currency: spec.CurrencyCNY, Amount: spec.Amount(b.Amount)})
		}
		f54, err := spec.FormatBalances(bs)
		if err != nil {
			return err
		}
		if err := resp.Field(54, f54); err != nil {
			return err
		}
	}
	return nil
}

func zeroPad(v int64, n int) string {
	s := strconv.FormatInt(v, 10)
	for len(s) < n {
		s = "0" + s
	}
	return s
}
