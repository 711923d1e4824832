package ledger

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// The day index (docs/ledger.md, "Reading the books") says where each
// business date's posting sets lie in id order, so that a period's
// postings are read without walking the whole book:
//
//	l d                 the first posting id the index covers (lower ids
//	                    were written before it was kept: "old postings")
//	l d DATE(4)         the ids [lo, hi] holding every posting set of DATE
//
// A span is kept in whole blocks of dayBlock ids: it is rewritten only
// when a posting set of its date falls outside it — the first of the
// date, then once per block the date's postings reach, and for a set
// posted late (at a cutover, or under another date) outside the date's
// blocks — so a transaction writes no index key but a few times a day.
// The span key goes in the same batch as the posting set it covers.
const (
	tagDay   = 'd'
	dayBlock = 1 << 12
	dayMask  = dayBlock - 1
)

func dayKey(d BusinessDate) []byte {
	return binary.BigEndian.AppendUint32(tagged(tagDay, 4), uint32(d))
}
func dayFromKey() []byte { return []byte{keyPrefix, tagDay} }

type idSpan struct{ lo, hi uint64 } // inclusive

func (s idSpan) has(id uint64) bool { return id >= s.lo && id <= s.hi }

func blockOf(id uint64) idSpan { return idSpan{id &^ dayMask, id | dayMask} }

func (s idSpan) encode() []byte {
	e := encoder{b: make([]byte, 0, 1+2*binary.MaxVarintLen64)}
	e.byte1(1)
	e.u(s.lo)
	e.u(s.hi)
	return e.b
}

func decodeSpan(b []byte) (idSpan, error) {
	d := decoder{b: b}
	if v := d.byte1(); d.err == nil && v != 1 {
		d.fail(fmt.Sprintf("unknown day span version %d", v))
	}
	s := idSpan{lo: d.u(), hi: d.u()}
	if d.err == nil && s.lo > s.hi {
		d.fail("day span lo above hi")
	}
	if err := d.done(); err != nil {
		return idSpan{}, err
	}
	return s, nil
}

func encodeFrom(id uint64) []byte {
	e := encoder{}
	e.byte1(1)
	e.u(id)
	return e.b
}

func decodeFrom(b []byte) (uint64, error) {
	d := decoder{b: b}
	if v := d.byte1(); d.err == nil && v != 1 {
		d.fail(fmt.Sprintf("unknown day index version %d", v))
	}
	id := d.u()
	if err := d.done(); err != nil {
		return 0, err
	}
	return id, nil
}

type dateSpan struct {
	date BusinessDate
	idSpan
}

// dayIndex is the ledger's copy of the durable spans.
type dayIndex struct {
	// last is the span the last posting set looked up: the hot path's
	// only read, a pointer load and two comparisons.
	last atomic.Pointer[dateSpan]
	// mu guards spans and is held from staging a wider span until the
	// batch holding it has committed, so that two wider spans of a date
	// are never written out of order.
	mu    sync.Mutex
	spans map[BusinessDate]idSpan
}

// stage adds to b the spans ps (posting sets about to be committed in b)
// need widened. done is nil when none does; otherwise the caller calls it
// once b's commit has returned, with whether it succeeded, and the index
// stays locked until then.
func (ix *dayIndex) stage(b *pebble.Batch, ps []*posting) (done func(committed bool), err error) {
	covered := true
	for _, p := range ps {
		if s := ix.last.Load(); s == nil || s.date != p.Date || !s.has(p.TxID) {
			covered = false
			break
		}
	}
	if covered {
		return nil, nil
	}
	ix.mu.Lock()
	var wider []dateSpan
	for _, p := range ps {
		i := 0
		for i < len(wider) && wider[i].date != p.Date {
			i++
		}
		var s idSpan
		var ok bool
		if i < len(wider) {
			s, ok = wider[i].idSpan, true
		} else {
			s, ok = ix.spans[p.Date]
		}
		if ok && s.has(p.TxID) {
			if i == len(wider) {
				ix.last.Store(&dateSpan{p.Date, s})
			}
			continue
		}
		blk := blockOf(p.TxID)
		if ok {
			blk = idSpan{min(s.lo, blk.lo), max(s.hi, blk.hi)}
		}
		if i < len(wider) {
			wider[i].idSpan = blk
		} else {
			wider = append(wider, dateSpan{p.Date, blk})
		}
	}
	if len(wider) == 0 {
		ix.mu.Unlock()
		return nil, nil
	}
	for _, s := range wider {
		if err := b.Set(dayKey(s.date), s.encode(), nil); err != nil {
			ix.mu.Unlock()
			return nil, err
		}
	}
	return func(committed bool) {
		if committed {
			for _, s := range wider {
				ix.spans[s.date] = s.idSpan
				ix.last.Store(&dateSpan{s.date, s.idSpan})
			}
		}
		ix.mu.Unlock()
	}, nil
}

// openDayIndex loads the spans. A book written before the index was kept
// gets its start mark (the next posting id): its older postings stay
// outside the index, and ScanPostings walks them. Then the postings from
// the last indexed block on are checked, and any outside its date's span
// is indexed: a version that did not keep the index may have written them.
func openDayIndex(db *pebble.DB, last uint64) (*dayIndex, error) {
	from, spans, ok, err := readDayIndex(db)
	if err != nil {
		return nil, err
	}
	ix := &dayIndex{spans: spans}
	if !ok {
		if err := db.Set(dayFromKey(), encodeFrom(last+1), pebble.Sync); err != nil {
			return nil, fmt.Errorf("day index: %w", err)
		}
		return ix, nil
	}
	top := uint64(0)
	for _, s := range spans {
		top = max(top, s.hi)
	}
	start := from
	if len(ix.spans) > 0 {
		start = max(start, top&^dayMask)
	}
	var missed []*posting
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: postKey(start), UpperBound: prefixEnd([]byte{keyPrefix, tagPost})})
	if err != nil {
		return nil, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		q, err := decodePosting(it.Value())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("posting %x: %w", it.Key(), err)
		}
		if s, ok := ix.spans[q.Date]; !ok || !s.has(q.TxID) {
			missed = append(missed, &posting{TxID: q.TxID, Date: q.Date})
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	if len(missed) > 0 {
		b := db.NewBatch()
		defer b.Close()
		done, err := ix.stage(b, missed)
		if err != nil {
			return nil, err
		}
		err = b.Commit(pebble.Sync)
		done(err == nil)
		if err != nil {
			return nil, fmt.Errorf("day index: %w", err)
		}
	}
	return ix, nil
}

// readDayIndex reads the index's start and spans; ok is false when r
// has none (a book never opened by a version that keeps it).
func readDayIndex(r pebble.Reader) (from uint64, spans map[BusinessDate]idSpan, ok bool, err error) {
	spans = map[BusinessDate]idSpan{}
	raw, err := get(r, dayFromKey())
	if err != nil || raw == nil {
		return 0, spans, false, err
	}
	if from, err = decodeFrom(raw); err != nil {
		return 0, nil, false, fmt.Errorf("%w: day index start: %v", ErrCorrupt, err)
	}
	err = scan(r, dayFromKey(), func(k, v []byte) error {
		if len(k) == 2 {
			return nil
		}
		if len(k) != 6 {
			return fmt.Errorf("%w: day index key %x", ErrCorrupt, k)
		}
		s, err := decodeSpan(v)
		if err != nil {
			return fmt.Errorf("%w: day index %x: %v", ErrCorrupt, k, err)
		}
		spans[BusinessDate(binary.BigEndian.Uint32(k[2:]))] = s
		return nil
	})
	if err != nil {
		return 0, nil, false, err
	}
	return from, spans, true, nil
}

// postingRanges are the id ranges ScanPostings walks for from..to: the
// postings written before the index was kept (all of them in a book that
// has never had one), then the union of the period's spans.
func postingRanges(r pebble.Reader, from, to BusinessDate) ([]idSpan, error) {
	raw, err := get(r, dayFromKey())
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return []idSpan{{0, math.MaxUint64}}, nil
	}
	start, err := decodeFrom(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: day index start: %v", ErrCorrupt, err)
	}
	var out []idSpan
	if start > 1 {
		out = append(out, idSpan{0, start - 1})
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: dayKey(from), UpperBound: dayKey(to + 1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	span, any := idSpan{math.MaxUint64, 0}, false
	for ok := it.First(); ok; ok = it.Next() {
		s, err := decodeSpan(it.Value())
		if err != nil {
			return nil, fmt.Errorf("%w: day index %x: %v", ErrCorrupt, it.Key(), err)
		}
		span, any = idSpan{min(span.lo, s.lo), max(span.hi, s.hi)}, true
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if any {
		span.lo = max(span.lo, start)
		if span.lo <= span.hi {
			out = append(out, span)
		}
	}
	return out, nil
}
