package ledger

import "testing"

// Admin postings (open, close, replace card) take their date from
// Options.Begin and hold it until they are committed: End comes after
// the posting is on disk, with the date Begin gave, once per posting.
func TestAdminPostingsHoldTheBusinessDay(t *testing.T) {
	const day = BusinessDate(20261204)
	var l *Ledger
	held := 0
	var kinds []Kind
	opts := Options{
		Today: func() BusinessDate { return day + 1 }, // not used when Begin is set
		Begin: func() BusinessDate { held++; return day },
		End: func(d BusinessDate) {
			if d != day {
				t.Errorf("End(%s), Begin gave %s", d, day)
			}
			if held--; held != 0 {
				t.Errorf("%d dates held at End", held)
			}
			if l == nil {
				return
			}
			// Committed before the date is released.
			kinds = kinds[:0]
			err := ScanPostings(l.db, day, day, func(p *PostingView) error {
				kinds = append(kinds, p.Kind)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		},
	}
	l, _ = seeded(t, opts)
	if err := l.CloseCard(panVisitor); err != nil {
		t.Fatal(err)
	}
	if n := len(kinds); n == 0 || kinds[n-1] != KindCloseCard {
		t.Fatalf("postings of %s at End of close: %v", day, kinds)
	}
	if err := l.ReplaceCard(panStaff, "6230151000000000999", nil); err != nil {
		t.Fatal(err)
	}
	if n := len(kinds); n == 0 || kinds[n-1] != KindReplaceCard {
		t.Fatalf("postings of %s at End of replace: %v", day, kinds)
	}
	if held != 0 {
		t.Fatalf("%d dates still held", held)
	}
}
