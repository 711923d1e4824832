package ledger

import (
	"errors"
	"fmt"
	"testing"
)

// TestCardStateMachine drives every event from every state through the
// public admin operations, on a fresh card each time, and checks the state
// reached (and, for lost cards, the state a later "found" restores) against
// a table written out by hand, before and after reopening the ledger.
func TestCardStateMachine(t *testing.T) {
	type st struct{ state, lostFrom CardState }
	var (
		active         = st{Active, 0}
		frozen         = st{Frozen, 0}
		lostFromActive = st{Lost, Active}
		lostFromFrozen = st{Lost, Frozen}
		closed         = st{Closed, 0}
	)
	// How to reach each start state from a newly opened card.
	setup := map[st][]CardEvent{
		active:         nil,
		frozen:         {EventFreeze},
		lostFromActive: {EventReportLost},
		lostFromFrozen: {EventFreeze, EventReportLost},
		closed:         {EventClose},
	}
	refused := st{} // the event is refused and the card keeps its state
	want := map[st]map[CardEvent]st{
		active: {
			EventFreeze: frozen, EventUnfreeze: active, EventReportLost: lostFromActive,
			EventFound: active, EventClose: closed,
		},
		frozen: {
			EventFreeze: frozen, EventUnfreeze: active, EventReportLost: lostFromFrozen,
			EventFound: frozen, EventClose: closed,
		},
		lostFromActive: {
			EventFreeze: refused, EventUnfreeze: refused, EventReportLost: lostFromActive,
			EventFound: active, EventClose: closed,
		},
		lostFromFrozen: {
			EventFreeze: refused, EventUnfreeze: refused, EventReportLost: lostFromFrozen,
			EventFound: frozen, EventClose: closed,
		},
		closed: {
			EventFreeze: refused, EventUnfreeze: refused, EventReportLost: refused,
			EventFound: refused, EventClose: refused,
		},
	}
	l, db := seeded(t, Options{})
	do := func(pan string, ev CardEvent) error {
		switch ev {
		case EventFreeze:
			return l.Freeze(pan)
		case EventUnfreeze:
			return l.Unfreeze(pan)
		case EventReportLost:
			return l.ReportLost(pan)
		case EventFound:
			return l.CancelLoss(pan)
		case EventClose:
			return l.CloseCard(pan)
		}
		t.Fatalf("no operation for %s", ev)
		return nil
	}
	got := func(l *Ledger, pan string) st {
		v := mustCard(t, l, pan)
		return st{v.State, v.LostFrom}
	}
	type result struct {
		pan  string
		want st
	}
	var results []result
	n := 0
	for from, row := range want {
		if len(row) != len(cardEventNames) {
			t.Fatalf("row %v covers %d of %d events", from, len(row), len(cardEventNames))
		}
		for ev, to := range row {
			n++
			pan := fmt.Sprintf("623015200000%07d", n)
			if err := l.OpenCard(CardSpec{PAN: pan, Holder: "Test", HolderType: Student, Cash: 100}, nil); err != nil {
				t.Fatal(err)
			}
			for _, s := range setup[from] {
				if err := do(pan, s); err != nil {
					t.Fatalf("setup %v: %s: %v", from, s, err)
				}
			}
			if g := got(l, pan); g != from {
				t.Fatalf("setup reached %v, want %v", g, from)
			}
			err := do(pan, ev)
			if to == refused {
				if !errors.Is(err, ErrCardState) {
					t.Errorf("%v + %s: error %v, want ErrCardState", from, ev, err)
				}
				to = from
			} else if err != nil {
				t.Errorf("%v + %s: %v", from, ev, err)
			}
			if g := got(l, pan); g != to {
				t.Errorf("%v + %s: reached %v, want %v", from, ev, g, to)
			}
			results = append(results, result{pan, to})
		}
	}
	if len(cardTransitions) != len(cardEventNames) {
		t.Errorf("the table has %d events, %d are named", len(cardTransitions), len(cardEventNames))
	}
	checkStore(t, db)
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if g := got(l2, r.pan); g != r.want {
			t.Errorf("after reopen %s: %v, want %v", r.pan, g, r.want)
		}
	}
}

// TestFrozenLostFoundStaysFrozen is the operator's case: a card frozen by
// the school, then reported lost and found, is still declined as frozen.
func TestFrozenLostFoundStaysFrozen(t *testing.T) {
	l, _ := seeded(t, Options{})
	for _, op := range []func(string) error{l.Freeze, l.ReportLost, l.CancelLoss} {
		if err := op(panStaff); err != nil {
			t.Fatal(err)
		}
	}
	r := exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 100})
	if r.Decline != DeclineFrozenCard {
		t.Fatalf("consume after freeze, lost, found: %s, want frozen", r.Decline)
	}
}

// TestCardStateByte checks the packed state byte: the state before a loss
// is kept only for lost cards, and anything else is a corrupt record.
func TestCardStateByte(t *testing.T) {
	for _, tt := range []struct {
		b        uint8
		state    CardState
		lostFrom CardState
		ok       bool
	}{
		{0x01, Active, 0, true},
		{0x02, Frozen, 0, true},
		{0x03, Lost, 0, true}, // written before the state before lost was kept
		{0x13, Lost, Active, true},
		{0x23, Lost, Frozen, true},
		{0x04, Closed, 0, true},
		{0x00, 0, 0, false},
		{0x05, 0, 0, false},
		{0x21, 0, 0, false}, // active with a remembered state
		{0x33, 0, 0, false}, // lost from lost
		{0x43, 0, 0, false}, // lost from closed
	} {
		s, lf, ok := unpackState(tt.b)
		if s != tt.state || lf != tt.lostFrom || ok != tt.ok {
			t.Errorf("%#02x: %v %v %v, want %v %v %v", tt.b, s, lf, ok, tt.state, tt.lostFrom, tt.ok)
		}
		if ok && packState(&card{State: s, LostFrom: lf}) != tt.b {
			t.Errorf("%#02x does not round-trip", tt.b)
		}
	}
	c := sampleCard()
	c.State, c.LostFrom = Lost, Frozen
	if got, err := decodeCard(c.encode()); err != nil || got.State != Lost || got.LostFrom != Frozen {
		t.Errorf("lost card round trip: %v %v %v", got.State, got.LostFrom, err)
	}
}
