package links

import (
	"errors"
	"fmt"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// A pre-auth forwarded on a link is completed or cancelled once, as at the
// local ledger, and the switch checks that itself before anything is sent
// (docs/gateway-links.md, "Pre-authorisation"): a completion above the
// pre-auth's amount is declined 61 (exceeds amount limit, as at the local
// ledger), and a completion or cancel of a pre-auth that already has one
// standing is declined 12 (invalid transaction: the original is known but
// closed, as a void of a voided consume). A completion or cancel stands
// while it is in flight or approved, and a completion also until a
// completion void of it is answered approved: a void in flight, declined,
// unanswered or reversed leaves its completion standing. A completion or
// cancel declined, or reversed once the bank acknowledged the reversal,
// or a completion voided, leaves the pre-auth open again (the bank still decides whether a voided completion's
// pre-auth may be completed again). The link's journal
// records which requests follow up which (journal.Links.FollowUps).

// followedUp reports whether requests of type t are recorded as follow-ups
// of their original: completions and cancels of a pre-auth, completion
// voids of a completion.
func followedUp(t spec.TxType) bool {
	return t == spec.PreAuthCompletion || t == spec.PreAuthCancel || t == spec.CompletionVoid
}

// maxFollowUps bounds the follow-ups of one original read to decide
// whether it is still open: each needs the one before it reversed,
// declined or voided, so a pre-auth with more is refused (65).
const maxFollowUps = 64

// closingKey names a link request being closed.
type closingKey struct {
	link string
	id   uint64
}

// closePreAuth checks that completion or cancel req may close pre-auth
// orig and holds the pre-auth until done is called (once the request's
// answer, or reversal, is recorded): a second completion or cancel
// meanwhile is declined 12.
func (m *Manager) closePreAuth(req *Request, orig *journal.LinkRequest) (done func(), err error) {
	if req.Type == spec.PreAuthCompletion && req.HasAmount && req.Amount > orig.Amount {
		return nil, reject(spec.RCExceedsAmountLimit,
			fmt.Errorf("completion of %d fen above its pre-auth's %d", req.Amount, orig.Amount))
	}
	k := closingKey{orig.Link, orig.ID}
	m.closingMu.Lock()
	_, busy := m.closing[k]
	if !busy {
		m.closing[k] = struct{}{}
	}
	m.closingMu.Unlock()
	if busy {
		return nil, reject(spec.RCInvalidTransaction, errors.New("pre-auth being completed or cancelled"))
	}
	done = func() {
		m.closingMu.Lock()
		delete(m.closing, k)
		m.closingMu.Unlock()
	}
	closed, err := m.preAuthClosed(orig)
	if err == nil && closed {
		err = reject(spec.RCInvalidTransaction, errors.New("pre-auth already completed or cancelled"))
	}
	if err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// preAuthClosed reports whether pre-auth orig has a completion or cancel
// standing.
func (m *Manager) preAuthClosed(orig *journal.LinkRequest) (bool, error) {
	fs, err := m.followUps(orig)
	if err != nil {
		return false, err
	}
	for _, f := range fs {
		if !standing(f) {
			continue
		}
		switch f.TxType {
		case spec.PreAuthCancel.String():
			return true, nil
		case spec.PreAuthCompletion.String():
			voids, err := m.followUps(f)
			if err != nil {
				return false, err
			}
			voided := false
			for _, v := range voids {
				if v.TxType == spec.CompletionVoid.String() && approved(v) {
					voided = true
					break
				}
			}
			if !voided {
				return true, nil
			}
		}
	}
	return false, nil
}

// followUps reads the follow-ups of r, at most maxFollowUps (65 beyond).
func (m *Manager) followUps(r *journal.LinkRequest) ([]*journal.LinkRequest, error) {
	fs, more, err := m.recs.FollowUps(r.Link, r.ID, maxFollowUps)
	if err != nil {
		return nil, err
	}
	if more {
		return nil, reject(spec.RCExceedsCountLimit,
			fmt.Errorf("%s %s of link %s followed up more than %d times", r.TxType, r.STAN, r.Link, maxFollowUps))
	}
	return fs, nil
}

// standing reports whether follow-up f has taken effect at the bank, or
// may have: in flight (sent, no final answer yet), approved, or with its
// reversal not yet acknowledged by the bank (queued, being retried, or
// dead-lettered or dropped by an operator). One declined, or whose
// reversal the bank acknowledged (LinkReversed), has not.
func standing(f *journal.LinkRequest) bool {
	return f.State == journal.LinkSent || f.State == journal.LinkReversalQueued || approved(f)
}

// approved reports whether follow-up f was answered approved. Only such a
// completion void reopens its completion's pre-auth: one still in flight
// may yet be declined or time out, and the completion then stands.
func approved(f *journal.LinkRequest) bool {
	return f.State == journal.LinkAnswered && f.ResponseCode == spec.RCApproved
}
