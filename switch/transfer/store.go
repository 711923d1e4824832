package transfer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cardswitch/cardswitch/ledger"
)

// Storage (docs/architecture.md): the service owns the key prefix x.
//
//	x d PAN / YYYYMMDD                     a card's transfer loads of a business day, fen (8 bytes)
//	x r TERMINAL / BATCH / STAN            one transfer load (JSON Record)
const (
	keyPrefix = 'x'
	tagDay    = 'd'
	tagRecord = 'r'
)

func dayKey(pan string, d ledger.BusinessDate) []byte {
	return fmt.Appendf([]byte{keyPrefix, tagDay}, "%s/%08d", pan, uint32(d))
}

func recordKey(terminal string, batch, stan uint32) []byte {
	return fmt.Appendf([]byte{keyPrefix, tagRecord}, "%s/%06d/%06d", terminal, batch, stan)
}

// States of a transfer load once its bank leg went out.
const (
	StateCredited     = "credited"      // the bank debited, the card was credited
	StateBankDeclined = "bank_declined" // the bank declined the debit
	StateNoAnswer     = "no_answer"     // no answer in time: the debit's reversal is queued
	StateRefused      = "refused"       // the bank debited, the card could not take it: reversal queued
	StateReversed     = "reversed"      // the terminal reversed it: credit taken back, debit reversed
)

// Record is one transfer load whose bank leg went out, as stored.
type Record struct {
	View
	// PAN is the card in clear, for the day total and the card filter
	// (never shown: View.Card is masked).
	PAN string `json:"pan"`
}

// View is a transfer load as operators see it (switchctl transfer list).
type View struct {
	Terminal     string    `json:"terminal"`
	Merchant     string    `json:"merchant"`
	Batch        uint32    `json:"batch"`
	STAN         uint32    `json:"stan"`
	BusinessDate string    `json:"business_date"`
	Card         string    `json:"card"` // masked
	AmountFen    int64     `json:"amount_fen"`
	RRN          string    `json:"rrn"`
	Gateway      string    `json:"gateway"`
	BankRC       string    `json:"bank_rc"` // the bank's answer (98: none)
	RC           string    `json:"rc"`      // the kiosk's answer
	State        string    `json:"state"`
	Time         time.Time `json:"time"`
}

func get(db pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// dayTotal is what the card has loaded by transfer on business day d.
func (s *Service) dayTotal(pan string, d ledger.BusinessDate) (ledger.Fen, error) {
	v, err := get(s.db, dayKey(pan, d))
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("transfer: corrupt day total of %d bytes", len(v))
	}
	return ledger.Fen(binary.BigEndian.Uint64(v)), nil
}

func (s *Service) putDayTotal(b *pebble.Batch, pan string, d ledger.BusinessDate, total ledger.Fen) error {
	if total <= 0 {
		return b.Delete(dayKey(pan, d), nil)
	}
	return b.Set(dayKey(pan, d), binary.BigEndian.AppendUint64(nil, uint64(total)), nil)
}

func putRecord(b *pebble.Batch, r *Record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Set(recordKey(r.Terminal, r.Batch, r.STAN), raw, nil)
}

func (s *Service) record(terminal string, batch, stan uint32) (*Record, error) {
	v, err := get(s.db, recordKey(terminal, batch, stan))
	if err != nil || v == nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("transfer: corrupt record: %w", err)
	}
	return &r, nil
}

// MaxList bounds one page of List.
const MaxList = 1000

// Filter selects transfer loads for List.
type Filter struct {
	Card         string // full card number; "" any
	BusinessDate string // YYYYMMDD; "" any
	Terminal     string
	// After is the cursor of the previous page ("" from the start).
	After string
	Limit int
}

// List returns transfer loads in key order (terminal, batch, STAN) and
// the cursor of the next page ("" at the end).
func (s *Service) List(f Filter) ([]View, string, error) {
	if f.Limit <= 0 || f.Limit > MaxList {
		f.Limit = MaxList
	}
	lower := []byte{keyPrefix, tagRecord}
	if f.Terminal != "" {
		lower = append(lower, f.Terminal+"/"...)
	}
	upper := append(append([]byte(nil), lower...), 0xff)
	start := lower
	if f.After != "" {
		start = append(append([]byte{keyPrefix, tagRecord}, f.After...), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, "", err
	}
	defer it.Close()
	var out []View
	next := ""
	for ok := it.SeekGE(start); ok; ok = it.Next() {
		var r Record
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return nil, "", fmt.Errorf("transfer: corrupt record: %w", err)
		}
		if (f.Card != "" && r.PAN != f.Card) || (f.BusinessDate != "" && r.BusinessDate != f.BusinessDate) {
			continue
		}
		if len(out) == f.Limit {
			next = string(out[len(out)-1].cursor())
			break
		}
		out = append(out, r.View)
	}
	return out, next, it.Error()
}

func (r *View) cursor() []byte { return recordKey(r.Terminal, r.Batch, r.STAN)[2:] }

// Prune deletes, at most max at a time, the transfer records and day
// totals of business days before before (the retention job, with the
// ledger's lookup window: a reversal older than that finds nothing
// anyway). more reports that the bound was reached.
func (s *Service) Prune(before ledger.BusinessDate, max int) (n int, more bool, err error) {
	if max <= 0 {
		max = 1000
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{keyPrefix}, UpperBound: []byte{keyPrefix + 1}})
	if err != nil {
		return 0, false, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		var date int
		switch {
		case len(k) > 2 && k[1] == tagDay:
			i := bytes.LastIndexByte(k, '/')
			if i < 0 {
				continue
			}
			date, _ = strconv.Atoi(string(k[i+1:]))
		case len(k) > 2 && k[1] == tagRecord:
			var r Record
			if json.Unmarshal(it.Value(), &r) != nil {
				continue
			}
			date, _ = strconv.Atoi(r.BusinessDate)
		default:
			continue
		}
		if date == 0 || ledger.BusinessDate(date) >= before {
			continue
		}
		if n == max {
			more = true
			break
		}
		if err := b.Delete(k, nil); err != nil {
			it.Close()
			return 0, false, err
		}
		n++
	}
	if err := it.Close(); err != nil {
		return 0, false, err
	}
	if n == 0 {
		return 0, false, nil
	}
	return n, more, b.Commit(pebble.Sync)
}
