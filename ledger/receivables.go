package ledger

import "sort"

// Receivable is one owing card in the receivables report: what its
// holder owes the school after a reversal took back a credit that had
// already been spent (docs/ledger.md#receivables).
type Receivable struct {
	PAN    string
	Holder string
	State  CardState
	Owed   Fen
}

// Receivables lists the owing cards, by card number, from the published
// state; total is their sum (the negation of the CardReceivable balance).
// At most limit entries after the card number after are returned (limit
// ≤ 0: all); more reports whether further owing cards follow.
func (l *Ledger) Receivables(after string, limit int) (list []Receivable, total Fen, more bool) {
	l.mu.RLock()
	entries := make([]*cardEntry, 0, len(l.cards))
	for _, e := range l.cards {
		entries = append(entries, e)
	}
	l.mu.RUnlock()
	for _, e := range entries {
		c := e.cur.Load()
		owed := c.owed()
		if owed == 0 {
			continue
		}
		total += owed
		if c.PAN > after {
			list = append(list, Receivable{PAN: c.PAN, Holder: c.Holder, State: c.State, Owed: owed})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].PAN < list[j].PAN })
	if limit > 0 && len(list) > limit {
		list, more = list[:limit], true
	}
	return list, total, more
}
