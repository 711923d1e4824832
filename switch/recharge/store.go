package recharge

import (
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
const (
	keyPrefix = 'r'
	tagOrder  = 'o'
	tagDaily  = 'd'
)

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
}

const recordV1 = 1

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
	b = append(b, recordV1, byte(r.State))
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
	if len(b) < 2 || b[0] != recordV1 {
		return r, fmt.Errorf("%w: version", errCorrupt)
	}
	r.State = State(b[1])
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
	Date        ledger.BusinessDate `json:"business_date"`
	Time        time.Time           `json:"time"`
	ReversedAt  *time.Time          `json:"reversed_at,omitempty"`
	ReversalRRN string              `json:"reversal_rrn,omitempty"`
}

var stateNames = map[State]string{StateApproved: "approved", StateDeclined: "declined",
	StateReversed: "reversed", StateReversedFirst: "reversed-first"}

func (r *orderRecord) view(inst, order string) OrderView {
	v := OrderView{Institution: inst, Order: order, State: stateNames[r.State], Card: cardno.Mask(r.PAN), AmountFen: int64(r.Amount),
		RC: r.RC, RRN: r.RRN, AuthCode: r.AuthCode, Date: r.Date, Time: r.Time, ReversalRRN: r.ReversalRRN}
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
