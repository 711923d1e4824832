package ledger

import "fmt"

// CardEvent is an operator's action on a card's life-cycle state.
type CardEvent uint8

// Card events.
const (
	EventFreeze     CardEvent = iota + 1 // block debits (the school's decision)
	EventUnfreeze                        // lift a freeze
	EventReportLost                      // the holder reports the card lost
	EventFound                           // the holder has the card again (cancel the loss)
	EventClose                           // close (or replace): the balance leaves the card
)

var cardEventNames = map[CardEvent]string{
	EventFreeze: "freeze", EventUnfreeze: "unfreeze", EventReportLost: "report lost",
	EventFound: "found", EventClose: "close",
}

func (e CardEvent) String() string {
	if n, ok := cardEventNames[e]; ok {
		return n
	}
	return fmt.Sprintf("CardEvent(%d)", uint8(e))
}

// beforeLost, as the target of a transition, means "the state the card was
// in when it was reported lost" (active or frozen): finding a card must not
// lift an operator's freeze.
const beforeLost CardState = 0xF

// cardTransitions is the card state machine, the one place that says which
// event is allowed in which state and where it leads. A pair that is not in
// the table is refused with ErrCardState and changes nothing. A transition
// to the state a card is already in is a no-op that succeeds, so a retried
// admin request does no harm. docs/ledger.md#card-states has the same table.
var cardTransitions = map[CardEvent]map[CardState]CardState{
	EventFreeze:     {Active: Frozen, Frozen: Frozen},
	EventUnfreeze:   {Frozen: Active, Active: Active},
	EventReportLost: {Active: Lost, Frozen: Lost, Lost: Lost},
	EventFound:      {Lost: beforeLost, Active: Active, Frozen: Frozen},
	EventClose:      {Active: Closed, Frozen: Closed, Lost: Closed},
}

// applyEvent moves c through the state machine, remembering the state
// before a loss report and restoring it when the card is found.
func applyEvent(c *card, ev CardEvent) error {
	to, ok := cardTransitions[ev][c.State]
	if !ok {
		return fmt.Errorf("%w: %s: card is %s", ErrCardState, ev, c.State)
	}
	switch {
	case to == beforeLost:
		to = c.lostFrom() // Active for records written before it was kept
		c.LostFrom = 0
	case to == Lost && c.State != Lost:
		c.LostFrom = c.State
	case to != Lost:
		c.LostFrom = 0
	}
	c.State = to
	return nil
}

// The card record stores the state in the low nibble of its state byte and,
// for a lost card, the state before the loss report in the high nibble (0 in
// records written before it was kept: active).
func packState(c *card) uint8 {
	if c.State == Lost {
		return uint8(c.State) | uint8(c.LostFrom)<<4
	}
	return uint8(c.State)
}

func unpackState(b uint8) (state, lostFrom CardState, ok bool) {
	state, lostFrom = CardState(b&0x0F), CardState(b>>4)
	if state < Active || state > Closed {
		return 0, 0, false
	}
	if lostFrom != 0 && (state != Lost || (lostFrom != Active && lostFrom != Frozen)) {
		return 0, 0, false
	}
	return state, lostFrom, true
}

// lostFrom is the state a lost card returns to when found (zero for a card
// that is not lost).
func (c *card) lostFrom() CardState {
	switch {
	case c.State != Lost:
		return 0
	case c.LostFrom == Frozen:
		return Frozen
	default:
		return Active
	}
}
