package pos

import "github.com/cardswitch/cardswitch/spec"

// journaled says whether an exchange answered without a commit of its own
// is journaled. Only what a terminal proved it sent is: a request whose
// MAC was verified (its answer carries a MAC), and an approved sign-on or
// sign-off, which change a terminal's keys or state. Echo tests, requests
// refused before their MAC was checked (unknown terminal 97, wrong
// merchant 03, disabled 58, no sign-on 77, bad MAC A0) and frames that do
// not decode are counted in switch_messages_total, switch_transactions_total
// and switch_rejected_total, not journaled: anyone who can reach the port
// can send them as fast as they like, and the journal is kept for years
// (docs/security.md).
func (r *record) journaled(resp *spec.POSMessage) bool {
	if r.x.macTerm != "" || r.replayed {
		return true // the request's MAC was verified
	}
	switch r.x.tx {
	case spec.SignOn, spec.SignOff:
		return resp.ResponseCode == spec.RCApproved
	}
	return false
}

// withoutCardNumber is what the journal keeps of a message whose card
// matched no route: the message less its card number (and less what
// redacted removes). No settlement or reconciliation needs the number of
// a card this switch does not serve, and it may be anyone's card.
func withoutCardNumber(m *spec.POSMessage) []byte {
	c := *m
	c.PAN, c.Raw = "", nil
	return redacted(&c)
}
