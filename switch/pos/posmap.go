package pos

import (
	"sync/atomic"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// The POS adapter's mapping of a financial request into the internal
// transaction and of an outcome back into the answer lives in switch/pos
// (the one place each way that reads or writes the POS fields of a
// transaction); these hand it what the flow knows.

// transactionOf maps a POS request into the internal transaction. A
// non-empty rc answers a request whose numbers do not parse.
func (p *Protocol) transactionOf(x *exchange, pan, rrn string) (*txn.Transaction, string) {
	if rc := transactionInto(Request{Msg: x.req, Type: x.tx, OriginalType: x.orig, Peer: x.s.Peer,
		Card: pan, TerminalMayLoad: x.term.MayLoad, BusinessDate: x.date, RRN: rrn,
		DuplicateDate: x.duplicateKey().Date, KnownNew: x.fresh}, &x.txn); rc != "" {
		return nil, rc
	}
	return &x.txn, ""
}

// answerOutcome maps a destination's outcome into the POS response.
func (p *Protocol) answerOutcome(x *exchange, t *txn.Transaction, o txn.Outcome) *spec.POSMessage {
	name := ""
	if m, ok := p.ledger.Merchant(x.req.MerchantID); ok {
		name = m.Name
	}
	answerInto(&x.resp, x.req, t, o, x.date, p.receipts.text(name))
	return &x.resp
}

// maxReceiptsCached bounds the receipt texts a protocol keeps: beyond it,
// a merchant's text is built per answer, as it always was.
const maxReceiptsCached = 256

// receiptCache keeps field 63 per merchant name (ReceiptText), so that an
// answer costs no concatenation: a map replaced whole (copy on write) when
// a name is first seen, read without a lock. Keyed by the name, not the
// merchant: a renamed merchant gets its new text.
type receiptCache struct {
	m atomic.Pointer[map[string]string]
}

// text is ReceiptText(name).
func (c *receiptCache) text(name string) string {
	cur := c.m.Load()
	if cur != nil {
		if t, ok := (*cur)[name]; ok {
			return t
		}
	}
	t := ReceiptText(name)
	if cur == nil || len(*cur) < maxReceiptsCached {
		next := make(map[string]string, 1+lenOf(cur))
		if cur != nil {
			for k, v := range *cur {
				next[k] = v
			}
		}
		next[name] = t
		c.m.CompareAndSwap(cur, &next) // lost to another writer: cached next time
	}
	return t
}

func lenOf(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
