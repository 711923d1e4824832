package pos

import (
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
	return Answer(x.req, t, o, x.date, name)
}
