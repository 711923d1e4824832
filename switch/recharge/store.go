package recharge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
)

// Key layout (prefix 'r', owned by the recharge service,
// docs/architecture.md):
//
//	r o INSTITUTION 0x00 ORDER            order record (orderRecord)
//	r d INSTITUTION 0x00 PAN 0x00 DATE(4) the card's credits from the institution that business day (fen, 8 bytes)
//	r p PAN 0x00 TIME(8) INSTITUTION 0x00 ORDER   a pending credit (credit_mode: pending), for the refund list
const (
	keyPrefix  = 'r'
	tagOrder   = 'o'
	tagDaily   = 'd'
	tagPending = 'p'
)

func pendingKey(pan string, at time.Time, inst, order string) []byte {
	k := make([]byte, 0, 13+len(pan)+len(inst)+len(order))
	k = append(k, keyPrefix, tagPending)
	k = append(k, pan...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
	k = append(k, inst...)
	k = append(k, 0)
	return append(k, order...)
}

func orderKey(inst, order string) []byte {
	k := make([]byte, 0, 3+len(inst)+len(order))
	k = append(k, keyPrefix, tagOrder)
	k = append(k, inst...)
	k = append(k, 0)
	return append(k, order...)
}

func dailyKey(inst, pan string, d ledger.BusinessDate) []byte {
	k := make([]byte, 0, 8+len(inst)+len(pan))
	k = append(k, keyPrefix, tagDaily)
	k = append(k, inst...)
	k = append(k, 0)
	k = append(k, pan...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(d))
}

// State is where an order stands.
type State byte

// Order states. The letters are those of the order query's ST tag, except
// StateReversedFirst, which a query reports as R.
const (
	StateApproved      State = 'A'
	StateDeclined      State = 'D'
	StateReversed      State = 'R'
	StateReversedFirst State = 'T' // a reversal came before any credit
)

// orderRecord is everything the service keeps about one order: the
// content of the credit request that opened it (the fields whose equality
// makes a repeat a replay: 2, 3, 4, 49), the outcome sent (replayed to a
// repeat), and its reversal.
type orderRecord struct {
	State    State
	PAN      string
	ProcCode string
	Amount   ledger.Fen
	Currency string
	RC       string
	RRN      string
	AuthCode string
	Balances ledger.Balances
	TxID     uint64 // the ledger posting of an approved credit
	Date     ledger.BusinessDate
	Time     time.Time
	// Reversal: when it was made, its RRN, and for StateReversedFirst the
	// card and amount it named.
	ReversedAt  time.Time
	ReversalRRN string
	// Pending: the credit was recorded as pending (credit_mode: pending).
	Pending bool
}

// Record versions: 2 adds a flags byte after the state.
const (
	recordV1 = 1
	recordV2 = 2
)

// Bounds of what a stored record may hold.
const (
	maxStr = 64
)

func appendStr(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func (r *orderRecord) encode() []byte {
	b := make([]byte, 0, 160)
	flags := byte(0)
	if r.Pending {
		flags = 1
	}
	b = append(b, recordV2, byte(r.State), flags)
	for _, s := range []string{r.PAN, r.ProcCode, r.Currency, r.RC, r.RRN, r.AuthCode, r.ReversalRRN} {
		b = appendStr(b, s)
	}
	for _, v := range []int64{int64(r.Amount), int64(r.Balances.Cash), int64(r.Balances.Subsidy),
		int64(r.Balances.Held), int64(r.Balances.Available), int64(r.TxID), int64(r.Date),
		unixNano(r.Time), unixNano(r.ReversedAt)} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

var errCorrupt = errors.New("recharge: corrupt order record")

func decodeOrder(b []byte) (orderRecord, error) {
	var r orderRecord
	if len(b) < 2 || (b[0] != recordV1 && b[0] != recordV2) {
		return r, fmt.Errorf("%w: version", errCorrupt)
	}
	r.State = State(b[1])
	if b[0] == recordV2 {
		if len(b) < 3 || b[2] > 1 {
			return r, fmt.Errorf("%w: flags", errCorrupt)
		}
		r.Pending = b[2] == 1
		b = b[1:]
	}
	switch r.State {
	case StateApproved, StateDeclined, StateReversed, StateReversedFirst:
	default:
		return r, fmt.Errorf("%w: state %q", errCorrupt, b[1])
	}
	b = b[2:]
	strs := []*string{&r.PAN, &r.ProcCode, &r.Currency, &r.RC, &r.RRN, &r.AuthCode, &r.ReversalRRN}
	for _, p := range strs {
		if len(b) < 1 || len(b) < 1+int(b[0]) || int(b[0]) > maxStr {
			return r, fmt.Errorf("%w: string", errCorrupt)
		}
		*p = string(b[1 : 1+int(b[0])])
		b = b[1+int(b[0]):]
	}
	if len(b) != 9*8 {
		return r, fmt.Errorf("%w: %d bytes of numbers", errCorrupt, len(b))
	}
	n := func(i int) int64 { return int64(binary.BigEndian.Uint64(b[i*8:])) }
	r.Amount = ledger.Fen(n(0))
	r.Balances = ledger.Balances{Cash: ledger.Fen(n(1)), Subsidy: ledger.Fen(n(2)), Held: ledger.Fen(n(3)), Available: ledger.Fen(n(4))}
	r.TxID = uint64(n(5))
	r.Date = ledger.BusinessDate(n(6))
	r.Time = fromUnixNano(n(7))
	r.ReversedAt = fromUnixNano(n(8))
	return r, nil
}

// get reads the value at key; nil when absent.
func get(db pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte{}, v...)
	return out, closer.Close()
}

func (s *Service) loadOrder(inst, order string) (orderRecord, bool, error) {
	raw, err := get(s.db, orderKey(inst, order))
	if err != nil || raw == nil {
		return orderRecord{}, false, err
	}
	r, err := decodeOrder(raw)
	if err != nil {
		return r, false, fmt.Errorf("order %s/%s: %w", inst, order, err)
	}
	return r, true, nil
}

func (s *Service) daily(inst, pan string, d ledger.BusinessDate) (ledger.Fen, error) {
	raw, err := get(s.db, dailyKey(inst, pan, d))
	if err != nil || raw == nil {
		return 0, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("%w: daily total of %d bytes", errCorrupt, len(raw))
	}
	return ledger.Fen(binary.BigEndian.Uint64(raw)), nil
}

func putDaily(b *pebble.Batch, inst, pan string, d ledger.BusinessDate, v ledger.Fen) error {
	return b.Set(dailyKey(inst, pan, d), binary.BigEndian.AppendUint64(nil, uint64(max(0, v))), nil)
}

// OrderView is an order as operators see it (admin API, switchctl).
type OrderView struct {
	Institution string              `json:"institution"`
	Order       string              `json:"order"`
	State       string              `json:"state"` // approved, declined, reversed, reversed-first
	Card        string              `json:"card"`  // masked
	AmountFen   int64               `json:"amount_fen"`
	RC          string              `json:"rc"`
	RRN         string              `json:"rrn,omitempty"`
	AuthCode    string              `json:"auth_code,omitempty"`
	Pending     bool                `json:"pending,omitempty"`
	Date        ledger.BusinessDate `json:"business_date"`
	Time        time.Time           `json:"time"`
	ReversedAt  *time.Time          `json:"reversed_at,omitempty"`
	ReversalRRN string              `json:"reversal_rrn,omitempty"`
}

var stateNames = map[State]string{StateApproved: "approved", StateDeclined: "declined",
	StateReversed: "reversed", StateReversedFirst: "reversed-first"}

func (r *orderRecord) view(inst, order string) OrderView {
	v := OrderView{Institution: inst, Order: order, State: stateNames[r.State], Card: cardno.Mask(r.PAN), AmountFen: int64(r.Amount),
		RC: r.RC, RRN: r.RRN, AuthCode: r.AuthCode, Pending: r.Pending, Date: r.Date, Time: r.Time, ReversalRRN: r.ReversalRRN}
	if !r.ReversedAt.IsZero() {
		t := r.ReversedAt
		v.ReversedAt = &t
	}
	return v
}

// Order returns one order of an institution.
func (s *Service) Order(inst, order string) (OrderView, bool, error) {
	rec, ok, err := s.loadOrder(inst, order)
	if err != nil || !ok {
		return OrderView{}, ok, err
	}
	return rec.view(inst, order), true, nil
}

// MaxOrdersPage bounds one page of Orders.
const MaxOrdersPage = 1000

// Orders lists an institution's orders in order-number order, after the
// order number after, at most limit (1..MaxOrdersPage).
func (s *Service) Orders(inst, after string, limit int) ([]OrderView, error) {
	if limit <= 0 || limit > MaxOrdersPage {
		return nil, fmt.Errorf("limit %d: want 1..%d", limit, MaxOrdersPage)
	}
	lo := orderKey(inst, "")
	if after != "" {
		lo = append(orderKey(inst, after), 0)
	}
	hi := orderKey(inst, "")
	hi[len(hi)-1] = 1 // just past every order of inst
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	prefix := len(orderKey(inst, ""))
	out := []OrderView{}
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		rec, err := decodeOrder(it.Value())
		if err != nil {
			return nil, fmt.Errorf("order %x: %w", it.Key(), err)
		}
		out = append(out, rec.view(inst, string(it.Key()[prefix:])))
	}
	return out, it.Error()
}

// Institutions lists the configured institutions by id.
func (s *Service) Institutions() []Institution {
	out := make([]Institution, 0, len(s.insts))
	for _, in := range s.insts {
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PendingCredit is a pending credit still wholly or partly unclaimed, in
// the refund list: AmountFen is what the institution credited, PendingFen
// the part of it still pending on the card (see PendingOlderThan).
type PendingCredit struct {
	Institution string              `json:"institution"`
	Order       string              `json:"order"`
	Card        string              `json:"card"` // masked
	AmountFen   int64               `json:"amount_fen"`
	PendingFen  int64               `json:"pending_fen"`
	Date        ledger.BusinessDate `json:"business_date"`
	Time        time.Time           `json:"time"`
	AgeDays     int                 `json:"age_days"`
}

// MaxPendingScan bounds the pending-credit records one refund list reads.
const MaxPendingScan = 200_000

// PendingOlderThan lists the pending credits no load terminal has claimed
// that are older than days business days (by the credit's business date),
// for refund. What a card has pending is one amount, not per credit: it
// is attributed to the card's approved, unreversed pending credits newest
// first, each taking up to its amount (a claim takes everything pending,
// so what is still pending came after the last claim), and the oldest
// credit reached may be partly pending — a reversal of a credit already
// claimed takes back from what later credits left pending
// (docs/recharge.md). Each credit listed has PendingFen > 0, and over all
// of a card's credits, of any age, PendingFen adds up to the card's
// pending amount as long as its credit records cover it. truncated says
// the scan stopped at MaxPendingScan records.
func (s *Service) PendingOlderThan(days int) (list []PendingCredit, truncated bool, err error) {
	lo := []byte{keyPrefix, tagPending}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: []byte{keyPrefix, tagPending + 1}})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	type ref struct{ inst, order string }
	byCard := map[string][]ref{}
	var cards []string
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n > MaxPendingScan {
			truncated = true
			break
		}
		k := it.Key()[2:]
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) < i+1+8 {
			return nil, false, fmt.Errorf("%w: pending key %x", errCorrupt, it.Key())
		}
		pan := string(k[:i])
		rest := k[i+1+8:]
		j := bytes.IndexByte(rest, 0)
		if j < 0 {
			return nil, false, fmt.Errorf("%w: pending key %x", errCorrupt, it.Key())
		}
		if _, seen := byCard[pan]; !seen {
			cards = append(cards, pan)
		}
		byCard[pan] = append(byCard[pan], ref{string(rest[:j]), string(rest[j+1:])})
	}
	if err := it.Error(); err != nil {
		return nil, false, err
	}
	today := s.today()
	list = []PendingCredit{}
	for _, pan := range cards {
		c, ok := s.ledger.Card(pan)
		if !ok || c.Pending <= 0 {
			continue
		}
		left := c.Pending
		refs := byCard[pan]
		for i := len(refs) - 1; i >= 0 && left > 0; i-- { // newest first
			rec, found, err := s.loadOrder(refs[i].inst, refs[i].order)
			if err != nil {
				return nil, false, err
			}
			if !found || rec.State != StateApproved || rec.Amount <= 0 {
				continue
			}
			part := min(rec.Amount, left)
			left -= part
			if age := today.DaysSince(rec.Date); age > days {
				list = append(list, PendingCredit{Institution: refs[i].inst, Order: refs[i].order, Card: cardno.Mask(pan),
					AmountFen: int64(rec.Amount), PendingFen: int64(part), Date: rec.Date, Time: rec.Time, AgeDays: age})
			}
		}
	}
	return list, truncated, nil
}
