package posim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cardswitch/cardswitch/spec"
)

// Ack is one answered transaction as a terminal records it: the line of
// the ack log. Card is the card's reference "#N", its 1-based index in the
// run's card list (CardIndex: the card numbers sorted, as the lines of the
// cards file), never the card number: the ack log is kept and passed
// around, and a card number does not belong in it.
type Ack struct {
	Terminal string
	Batch    string
	STAN     string
	// Type is the spec.TxType label of the request ("consume",
	// "consume_void", "refund", "cash_load", "balance_inquiry",
	// "pre_auth", "pre_auth_completion", "pre_auth_cancel", "reversal").
	// A reversal carries the STAN of its original.
	Type   string
	Card   string
	Amount spec.Amount
	RC     string
}

// String formats the ack as one log line (without the newline):
// terminal batch STAN type card amount rc, separated by single spaces.
func (a Ack) String() string { return string(a.appendTo(nil)) }

// appendTo appends the line String formats to b.
func (a Ack) appendTo(b []byte) []byte {
	for _, f := range [...]string{a.Terminal, a.Batch, a.STAN, a.Type, a.Card} {
		b = append(append(b, f...), ' ')
	}
	b = strconv.AppendInt(b, int64(a.Amount), 10)
	return append(append(b, ' '), a.RC...)
}

// Bounds on an ack log line read back, against a damaged file.
const (
	maxAckLine   = 256
	ackLineField = 7
)

// ErrBadAckLine: a line of an ack log does not parse.
var ErrBadAckLine = errors.New("posim: bad ack log line")

// ParseAck parses one ack log line.
func ParseAck(line string) (Ack, error) {
	if len(line) > maxAckLine {
		return Ack{}, fmt.Errorf("%w: %d bytes, at most %d", ErrBadAckLine, len(line), maxAckLine)
	}
	f := strings.Fields(line)
	if len(f) != ackLineField {
		return Ack{}, fmt.Errorf("%w: %d fields, want %d: %q", ErrBadAckLine, len(f), ackLineField, line)
	}
	amt, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil || amt < 0 || spec.Amount(amt) > spec.MaxAmount {
		return Ack{}, fmt.Errorf("%w: amount %q", ErrBadAckLine, f[5])
	}
	if len(f[2]) != 6 || len(f[6]) != 2 {
		return Ack{}, fmt.Errorf("%w: STAN %q rc %q", ErrBadAckLine, f[2], f[6])
	}
	if !validCardRef(f[4]) {
		return Ack{}, fmt.Errorf("%w: the card field is not a reference #N", ErrBadAckLine)
	}
	return Ack{Terminal: f[0], Batch: f[1], STAN: f[2], Type: f[3], Card: f[4], Amount: spec.Amount(amt), RC: f[6]}, nil
}

// AckLog writes ack lines from many terminals. Lines are buffered and
// written whole; Close flushes.
type AckLog struct {
	mu  sync.Mutex
	w   *bufio.Writer
	c   io.Closer
	err error
	idx *CardIndex
}

// NewAckLog writes to w (closed by Close when it is an io.Closer). Acks
// are written with their card number replaced by its reference in idx.
func NewAckLog(w io.Writer, idx *CardIndex) *AckLog {
	l := &AckLog{w: bufio.NewWriterSize(w, 64<<10), idx: idx}
	if c, ok := w.(io.Closer); ok {
		l.c = c
	}
	return l
}

// Write records one ack. A nil log records nothing.
func (l *AckLog) Write(a Ack) {
	if l == nil {
		return
	}
	a.Card = l.idx.Ref(a.Card)
	l.mu.Lock()
	if l.err == nil {
		_, l.err = l.w.Write(append(a.appendTo(l.w.AvailableBuffer()), '\n'))
	}
	l.mu.Unlock()
}

// Flush writes buffered lines out.
func (l *AckLog) Flush() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.w.Flush()
	}
	return l.err
}

// Close flushes and closes the underlying file.
func (l *AckLog) Close() error {
	if l == nil {
		return nil
	}
	err := l.Flush()
	if l.c != nil {
		if cerr := l.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// ReadAcks parses a whole ack log, bounded to maxLines lines.
func ReadAcks(r io.Reader, maxLines int) ([]Ack, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxAckLine+1)
	var out []Ack
	for n := 1; sc.Scan(); n++ {
		if n > maxLines {
			return nil, fmt.Errorf("ack log longer than %d lines", maxLines)
		}
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		a, err := ParseAck(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// effect is what an approved transaction of a type does to the card's
// total balance, per fen of its amount: -1 debit, +1 credit, 0 nothing.
func effect(txType string) (int64, bool) {
	switch txType {
	case spec.Consume.String(), spec.CashLoadVoid.String(), spec.PreAuthCompletion.String():
		return -1, true
	case spec.ConsumeVoid.String(), spec.Refund.String(), spec.CashLoad.String(), spec.CompletionVoid.String():
		return +1, true
	case spec.BalanceInquiry.String(), spec.PreAuth.String(), spec.PreAuthCancel.String():
		return 0, true
	}
	return 0, false
}

// holdEffect is a type's effect on what a card has held, as posim sends
// it: a pre-auth holds its amount; a completion or cancel releases the
// pre-auth's hold, and names the whole held amount.
func holdEffect(txType string) int64 {
	switch txType {
	case spec.PreAuth.String():
		return +1
	case spec.PreAuthCompletion.String(), spec.PreAuthCancel.String():
		return -1
	}
	return 0
}

// Deltas returns, per card, the net change of its balance that the
// answered transactions of an ack log imply: every approved debit and
// credit, except those a later approved reversal undid. A reversal whose
// original is not in the log (the terminal never got the original's
// answer) changes nothing: the switch either never committed the original
// or has undone it. Cards paying a service fee are not modelled: use fee-
// free (staff or student) cards when reconciling.
func Deltas(acks []Ack) (map[string]int64, error) {
	return netOf(acks, effect)
}

// Holds returns, per card, what its approved pre-auths that were not
// reversed, completed or cancelled still hold, as Deltas does for
// balances. It relies on completions and cancels naming the whole held
// amount, as posim's do.
func Holds(acks []Ack) (map[string]int64, error) {
	return netOf(acks, func(t string) (int64, bool) {
		if _, ok := effect(t); !ok {
			return 0, false
		}
		return holdEffect(t), true
	})
}

// netOf sums the approved, not reversed acks of a log per card, each
// signed by effect.
func netOf(acks []Ack, effect func(string) (int64, bool)) (map[string]int64, error) {
	type key struct{ terminal, batch, stan string }
	type orig struct {
		card   string
		amount int64
	}
	approved := make(map[key]orig)
	deltas := make(map[string]int64)
	for i, a := range acks {
		if a.RC != spec.RCApproved {
			continue
		}
		k := key{a.Terminal, a.Batch, a.STAN}
		if a.Type == spec.Reversal.String() {
			if o, ok := approved[k]; ok {
				deltas[o.card] -= o.amount
				delete(approved, k)
			}
			continue
		}
		sign, ok := effect(a.Type)
		if !ok {
			return nil, fmt.Errorf("ack %d: type %q has no modelled effect", i+1, a.Type)
		}
		amt := sign * int64(a.Amount)
		deltas[a.Card] += amt
		if _, dup := approved[k]; dup {
			return nil, fmt.Errorf("ack %d: %s batch %s STAN %s approved twice", i+1, a.Terminal, a.Batch, a.STAN)
		}
		approved[k] = orig{a.Card, amt}
	}
	return deltas, nil
}

func sortStrings(s []string) { sort.Strings(s) }

// ReadCards reads a file written by WriteCards, bounded to maxCards lines.
func ReadCards(r io.Reader, maxCards int) (map[string]spec.Amount, error) {
	sc := bufio.NewScanner(r)
	out := make(map[string]spec.Amount)
	for n := 1; sc.Scan(); n++ {
		if n > maxCards {
			return nil, fmt.Errorf("cards file longer than %d lines", maxCards)
		}
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 || !digits(f[0]) || len(f[0]) > 19 {
			return nil, fmt.Errorf("cards file line %d: want \"PAN fen\"", n)
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("cards file line %d: amount %q", n, f[1])
		}
		out[f[0]] = spec.Amount(v)
	}
	return out, sc.Err()
}

// CardIndex numbers the cards of a run: the card numbers sorted, 1-based,
// the order of the lines of the cards file (WriteCards). The ack log names
// a card by its reference "#N" in it.
type CardIndex struct {
	pans []string
	ref  map[string]string
}

// NewCardIndex indexes pans (sorted and deduplicated here).
func NewCardIndex(pans []string) *CardIndex {
	s := append([]string(nil), pans...)
	sort.Strings(s)
	x := &CardIndex{ref: make(map[string]string, len(s))}
	for _, p := range s {
		if _, dup := x.ref[p]; dup {
			continue
		}
		x.pans = append(x.pans, p)
		x.ref[p] = "#" + strconv.Itoa(len(x.pans))
	}
	return x
}

// Ref is the reference of pan: "#N", or "#0" for a card not in the index
// (never the number itself).
func (x *CardIndex) Ref(pan string) string {
	if x != nil {
		if r, ok := x.ref[pan]; ok {
			return r
		}
	}
	return "#0"
}

// PAN is the card number a reference names.
func (x *CardIndex) PAN(ref string) (string, bool) {
	if x == nil || !validCardRef(ref) {
		return "", false
	}
	n, err := strconv.Atoi(ref[1:])
	if err != nil || n < 1 || n > len(x.pans) {
		return "", false
	}
	return x.pans[n-1], true
}

// validCardRef reports whether s is "#" and 1 to 9 digits.
func validCardRef(s string) bool {
	return len(s) >= 2 && len(s) <= 10 && s[0] == '#' && digits(s[1:])
}

// RunCards is the card list of a run for its CardIndex: the cards of
// opening (the cards file) when known, else every card the terminals use.
func RunCards(terms []TerminalSpec, opening map[string]spec.Amount) []string {
	var pans []string
	if opening != nil {
		for p := range opening {
			pans = append(pans, p)
		}
		return pans
	}
	for _, t := range terms {
		for _, c := range t.Cards {
			pans = append(pans, c.PAN)
		}
	}
	return pans
}
