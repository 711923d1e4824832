package recon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
)

// Key layout of recon's own records (prefix 'R'):
//
//	R n                                next discrepancy id (8)
//	R d id(8)                          discrepancy (JSON, version 1)
//	R k len gw date(8) len class key  -> discrepancy id (re-import finds it)
//	R i len gw date(8)                 the last import's report (JSON)
//	R m len merchant date(8)           merchant rates from that date (rates.go)
const (
	prefix       = 'R'
	spaceNextID  = 'n'
	spaceDisc    = 'd'
	spaceDiscKey = 'k'
	spaceImport  = 'i'
)

func appendStr(b []byte, s string) []byte { return append(append(b, byte(len(s))), s...) }

func discKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix, spaceDisc}, id)
}
func discIndexPrefix(gw, date string) []byte {
	return append(appendStr([]byte{prefix, spaceDiscKey}, gw), date...)
}
func discIndexKey(gw, date, class, key string) []byte {
	return appendStr(appendStr(discIndexPrefix(gw, date), class), key)
}
func importKey(gw, date string) []byte {
	return append(appendStr([]byte{prefix, spaceImport}, gw), date...)
}

// Resolution actions.
const (
	ActionCredit = "credit"
	ActionRefund = "refund"
	ActionAccept = "accept"
)

// Discrepancy is one record that did not match, kept until resolved.
type Discrepancy struct {
	ID      uint64 `json:"id"`
	Gateway string `json:"gateway"`
	Date    string `json:"business_date"`
	Class   string `json:"class"`
	Key     string `json:"key"`
	// Card is the full card number; the admin API shows it masked.
	Card         string     `json:"card"`
	OursAmount   ledger.Fen `json:"ours_amount"`
	TheirsAmount ledger.Fen `json:"theirs_amount"`
	OursRC       string     `json:"ours_response_code,omitempty"`
	OursRRN      string     `json:"ours_rrn,omitempty"`
	OursTxType   string     `json:"ours_type,omitempty"`
	TheirsStatus string     `json:"theirs_status,omitempty"`
	TheirsRef    string     `json:"theirs_ref,omitempty"`
	// TheirsBankCard is the payer's bank card in their file (masked by
	// the admin API like Card).
	TheirsBankCard string `json:"theirs_bank_card,omitempty"`
	TheirsLine     int    `json:"theirs_line,omitempty"`

	State      string    `json:"state"` // open or resolved
	Action     string    `json:"action,omitempty"`
	Operator   string    `json:"operator,omitempty"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// TxID is the ledger posting set of a credit or refund (0 for none).
	TxID uint64 `json:"ledger_txid,omitempty"`
	// JournalSeq is the journal entry of the resolution.
	JournalSeq uint64 `json:"journal_seq,omitempty"`
}

// Masked returns a copy fit for the admin API and logs.
func (d Discrepancy) Masked() Discrepancy {
	d.Card = cardno.Mask(d.Card)
	if d.TheirsBankCard != "" {
		d.TheirsBankCard = cardno.Mask(d.TheirsBankCard)
	}
	return d
}

// AutoRules resolve outside-credit discrepancies of one gateway without an
// operator: the action for ours-only and for theirs-only ("" = none).
//
// An action that moves money (credit or refund) needs both bounds: a
// wrong or forged counterparty file must not be able to credit cards
// without limit while nobody watches. A discrepancy above MaxAmount, and
// every one after the import's auto-resolved amount would pass MaxTotal,
// stays open for an operator (counted in the report's auto_held).
type AutoRules struct {
	OursOnly   string `yaml:"ours_only" json:"ours_only,omitempty"`
	TheirsOnly string `yaml:"theirs_only" json:"theirs_only,omitempty"`
	// MaxAmount is the largest single discrepancy resolved automatically.
	MaxAmount ledger.Fen `yaml:"max_amount_fen" json:"max_amount_fen,omitempty"`
	// MaxTotal bounds the amount one import resolves automatically.
	MaxTotal ledger.Fen `yaml:"max_total_fen" json:"max_total_fen,omitempty"`
}

// Validate checks the rules.
func (a AutoRules) Validate() error {
	if a.OursOnly != "" && a.OursOnly != ActionRefund && a.OursOnly != ActionAccept {
		return fmt.Errorf("auto_resolve.ours_only %q: want refund or accept", a.OursOnly)
	}
	if a.TheirsOnly != "" && a.TheirsOnly != ActionCredit && a.TheirsOnly != ActionRefund && a.TheirsOnly != ActionAccept {
		return fmt.Errorf("auto_resolve.theirs_only %q: want credit, refund or accept", a.TheirsOnly)
	}
	if a.MaxAmount < 0 || a.MaxTotal < 0 {
		return fmt.Errorf("auto_resolve: max_amount_fen and max_total_fen cannot be negative")
	}
	if a.movesMoney() && (a.MaxAmount == 0 || a.MaxTotal == 0) {
		return fmt.Errorf("auto_resolve: max_amount_fen and max_total_fen are required when an action credits or refunds")
	}
	if a.MaxAmount > a.MaxTotal && a.MaxTotal > 0 {
		return fmt.Errorf("auto_resolve: max_amount_fen %d above max_total_fen %d", a.MaxAmount, a.MaxTotal)
	}
	return nil
}

func (a AutoRules) movesMoney() bool {
	return a.OursOnly == ActionRefund || a.TheirsOnly == ActionCredit || a.TheirsOnly == ActionRefund
}

// action is the rule for a discrepancy of class c ("" = none).
func (a AutoRules) action(c string) string {
	switch c {
	case OursOnly:
		return a.OursOnly
	case TheirsOnly:
		return a.TheirsOnly
	}
	return ""
}

// MaxDiscrepancies bounds the discrepancies one import stores: a file that
// disagrees on more lines than this is the wrong file or layout.
const MaxDiscrepancies = 100_000

// Errors of the book.
var (
	ErrNotFound       = errors.New("recon: no such discrepancy")
	ErrResolved       = errors.New("recon: discrepancy already resolved")
	ErrAction         = errors.New("recon: action does not fit the discrepancy")
	ErrTooManyDiscrep = errors.New("recon: too many discrepancies")
	ErrBusy           = errors.New("recon: an import of this gateway and day is running")
)

// Book keeps imports and discrepancies and carries out resolutions as
// journaled ledger operations.
type Book struct {
	DB      *pebble.DB
	Journal *journal.Journal
	Ledger  *ledger.Ledger
	Source  Source
	// Today is the business date resolutions are posted on. Begin and
	// End, when set, take it instead and hold it open while the posting
	// commits, so that closing the day waits for it (the switch's
	// business clock).
	Today func() ledger.BusinessDate
	Begin func() ledger.BusinessDate
	End   func(ledger.BusinessDate)

	mu      sync.Mutex // serialises resolutions and the id counter
	running sync.Map   // gw/date imports under way
}

// Import matches a counterparty file and stores the outcome: each
// discrepancy as a record (a re-import of the same gateway and day keeps
// the ids and resolutions of the discrepancies it finds again and drops
// the open ones it no longer finds), and the report. Discrepancies the
// rules cover are resolved at once, by "auto".
func (b *Book) Import(ctx context.Context, gw string, date ledger.BusinessDate, layout *Layout, auto AutoRules,
	file io.Reader, progress func(string, int64)) (*Report, error) {
	if gw == "" || len(gw) > 64 {
		return nil, fmt.Errorf("recon: gateway name %q", gw)
	}
	if err := auto.Validate(); err != nil {
		return nil, err
	}
	run := gw + "/" + date.String()
	if _, busy := b.running.LoadOrStore(run, true); busy {
		return nil, ErrBusy
	}
	defer b.running.Delete(run)

	var found []*Found
	rep, err := b.Source.Match(ctx, gw, date, layout, file, func(f *Found) error {
		if len(found) >= MaxDiscrepancies {
			return fmt.Errorf("%w: more than %d (wrong file or layout?)", ErrTooManyDiscrep, MaxDiscrepancies)
		}
		found = append(found, f)
		return nil
	}, progress)
	if err != nil {
		return nil, err
	}
	ds := date.String()
	old := map[string]uint64{}
	p := discIndexPrefix(gw, ds)
	it, err := b.DB.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		old[string(it.Key())] = binary.BigEndian.Uint64(it.Value())
	}
	if err := it.Close(); err != nil {
		return nil, err
	}

	b.mu.Lock()
	batch := b.DB.NewBatch()
	defer batch.Close()
	next, err := b.nextID()
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	var autoIDs []uint64
	for _, f := range found {
		k := discIndexKey(gw, ds, f.Class, f.Key)
		d := Discrepancy{Gateway: gw, Date: ds, Class: f.Class, Key: f.Key, State: "open"}
		if f.Ours != nil {
			d.Card, d.OursAmount, d.OursRC, d.OursRRN, d.OursTxType = f.Ours.Card, f.Ours.Amount, f.Ours.ResponseCode, f.Ours.RRN, f.Ours.TxType
		}
		if f.Theirs != nil {
			if d.Card == "" {
				d.Card = f.Theirs.Card
			}
			d.TheirsAmount, d.TheirsStatus, d.TheirsRef, d.TheirsLine = f.Theirs.Amount, f.Theirs.Status, f.Theirs.TheirRef, f.Theirs.Line
			d.TheirsBankCard = f.Theirs.BankCard
		}
		if id, ok := old[string(k)]; ok {
			delete(old, string(k))
			prev, err := b.get(id)
			if err != nil {
				b.mu.Unlock()
				return nil, err
			}
			if prev.State != "open" {
				rep.Discrepancies = append(rep.Discrepancies, id)
				continue // resolved before: kept as it was
			}
			d.ID = id
		} else {
			d.ID = next
			next++
		}
		if err := putJSON(batch, discKey(d.ID), d); err != nil {
			b.mu.Unlock()
			return nil, err
		}
		if err := batch.Set(k, binary.BigEndian.AppendUint64(nil, d.ID), nil); err != nil {
			b.mu.Unlock()
			return nil, err
		}
		rep.Discrepancies = append(rep.Discrepancies, d.ID)
		if auto.action(d.Class) != "" {
			autoIDs = append(autoIDs, d.ID)
		}
	}
	// Open discrepancies the file no longer shows are gone.
	for k, id := range old {
		prev, err := b.get(id)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		if prev.State == "open" {
			batch.Delete([]byte(k), nil)
			batch.Delete(discKey(id), nil)
		}
	}
	batch.Set([]byte{prefix, spaceNextID}, binary.BigEndian.AppendUint64(nil, next), nil)
	if err := putJSON(batch, importKey(gw, ds), rep); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	err = batch.Commit(pebble.Sync)
	b.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("recon: store import: %w", err)
	}
	var moved ledger.Fen // by this import's automatic credits and refunds
	for _, id := range autoIDs {
		d, err := b.Get(id)
		if err != nil {
			return rep, err
		}
		action := auto.action(d.Class)
		if action != ActionAccept {
			amount := d.TheirsAmount
			if d.Class == OursOnly {
				amount = d.OursAmount
			}
			if amount > auto.MaxAmount || moved+amount > auto.MaxTotal {
				rep.AutoHeld++ // left open for an operator
				continue
			}
			if _, err := b.Resolve(id, action, "auto"); err == nil {
				rep.AutoResolved++
				moved += amount
			}
			continue
		}
		if _, err := b.Resolve(id, action, "auto"); err == nil {
			rep.AutoResolved++
		}
	}
	if rep.AutoResolved > 0 || rep.AutoHeld > 0 {
		if err := putJSONSync(b.DB, importKey(gw, ds), rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func putJSON(b *pebble.Batch, k []byte, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(k, append([]byte{1}, j...), nil)
}

func putJSONSync(db *pebble.DB, k []byte, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return db.Set(k, append([]byte{1}, j...), pebble.Sync)
}

func getJSON(r pebble.Reader, k []byte, v any) (bool, error) {
	raw, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if len(raw) < 1 || raw[0] != 1 {
		return false, fmt.Errorf("recon: record %x: unknown version", k)
	}
	if err := json.Unmarshal(raw[1:], v); err != nil {
		return false, fmt.Errorf("recon: record %x: %w", k, err)
	}
	return true, nil
}

func (b *Book) nextID() (uint64, error) {
	v, closer, err := b.DB.Get([]byte{prefix, spaceNextID})
	if errors.Is(err, pebble.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, errors.New("recon: id counter damaged")
	}
	return binary.BigEndian.Uint64(v), nil
}

func (b *Book) get(id uint64) (Discrepancy, error) {
	var d Discrepancy
	ok, err := getJSON(b.DB, discKey(id), &d)
	if err != nil {
		return d, err
	}
	if !ok {
		return d, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	return d, nil
}

// Get returns one discrepancy.
func (b *Book) Get(id uint64) (Discrepancy, error) { return b.get(id) }

// ImportReport returns the stored report of the last import of gw, date.
func (b *Book) ImportReport(gw string, date ledger.BusinessDate) (*Report, bool, error) {
	var r Report
	ok, err := getJSON(b.DB, importKey(gw, date.String()), &r)
	if !ok || err != nil {
		return nil, ok, err
	}
	return &r, true, nil
}

// DiscrepancyFilter selects discrepancies to list.
type DiscrepancyFilter struct {
	Gateway string
	Date    string
	Class   string
	State   string
}

// Discrepancies lists up to limit discrepancies with id above after, in
// id order; more says whether there are others.
func (b *Book) Discrepancies(f DiscrepancyFilter, after uint64, limit int) (list []Discrepancy, more bool, err error) {
	lo := discKey(after + 1)
	hi := []byte{prefix, spaceDisc + 1}
	it, err := b.DB.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		var d Discrepancy
		v := it.Value()
		if len(v) < 1 || v[0] != 1 {
			return nil, false, fmt.Errorf("recon: discrepancy %x: unknown version", it.Key())
		}
		if err := json.Unmarshal(v[1:], &d); err != nil {
			return nil, false, err
		}
		if (f.Gateway != "" && d.Gateway != f.Gateway) || (f.Date != "" && d.Date != f.Date) ||
			(f.Class != "" && d.Class != f.Class) || (f.State != "" && d.State != f.State) {
			continue
		}
		if len(list) == limit {
			return list, true, nil
		}
		list = append(list, d)
	}
	return list, false, it.Error()
}

func prefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] < 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}
