// Package journal keeps the message journal, the stored responses used for
// duplicate detection, and the store-and-forward queue, all on the switch's
// one Pebble instance (keys prefixed 'j' and 'q').
//
// The journal never commits on the POS path. One unit of work per
// transaction (docs/architecture.md) puts the
// request entry, the ledger postings, the idempotency record and the
// response entry into ONE synced batch committed before the response
// leaves, so Append and PutResponse write into a *pebble.Batch the caller
// owns and commits. A batch that is never committed leaves nothing behind
// but a gap in the sequence numbers.
//
// The journal stores the message bytes it is given. It cannot parse
// ISO 8583, so removing the PIN block, track data and key material before
// calling Append is the caller's job.
package journal

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/journal/internal/record"
	"github.com/cockroachdb/pebble/v2"
)

// DefaultMaxRead is the default bound on the entries one read returns.
const DefaultMaxRead = 1000

// maxMaxRead keeps a configuration typo from making a read unbounded.
const maxMaxRead = 1_000_000

// ErrNotFound is returned by Get for a sequence that has no entry, and by
// queue operations for a message that is not queued.
var ErrNotFound = errors.New("journal: not found")

// ErrLimit is returned when a read asks for more entries than MaxRead.
var ErrLimit = errors.New("journal: read limit out of range")

// Options configure a Journal. The zero value is usable.
type Options struct {
	// OnAppend, when set, is called once for every entry Append writes into
	// a batch, so the switch can count switch_journal_entries_total without
	// this package importing Prometheus. It runs on the caller's goroutine
	// and must be cheap and safe for concurrent use. It counts entries
	// written into batches, so a batch the caller later discards was still
	// counted: the switch discards only on a failed commit, which it
	// reports separately.
	OnAppend func()
	// MaxRead bounds the entries ByRRN and ByTerminalBatch return.
	// Zero means DefaultMaxRead.
	MaxRead int
	// CounterFloor, when set, is asked once per business day (YYYYMMDD)
	// and process, when the journal first hands out sequences of the
	// day: the smallest counter it may hand out, so that the counters,
	// which name RRNs, continue above the RRNs issued elsewhere that day
	// (the switch's RRN marks, which earlier versions issue RRNs from).
	CounterFloor func(date string) (uint64, error)
	// OnDamagedRecord, when set, is called for every duplicate record
	// ('j o') carrying a terminal reference that a reference lookup finds
	// undecodable (Reference, BatchReferences), so the switch can log it
	// and count switch_journal_damaged_records_total. It runs on the
	// lookup's goroutine, must be cheap and safe for concurrent use, and
	// must not log the record's bytes (they hold the response as sent).
	OnDamagedRecord func(DamagedRecord)
	// RRNMark, when set, is called for every move of the counter mark of
	// a day whose counters name RRNs, with the day (YYYYMMDD) and the new
	// mark, to add its own writes to the mark's synced batch b: the
	// switch raises its RRN mark of the day there, so that an earlier
	// version run on the same data directory (a rollback) issues RRNs
	// above every one the counters named (docs/journal.md#sequences).
	RRNMark func(b *pebble.Batch, date string, mark uint64) error

	// legacyLayout, set only by tests, writes the layout of data
	// directories of earlier versions, which reads and retention must
	// keep handling: layoutDay0, plain counters and a day index key per
	// entry (or pair); layoutShared, sequences carrying their day with a
	// counter shared by all days, and an RRN index key for every RRN.
	legacyLayout int
}

// The layouts Options.legacyLayout writes.
const (
	layoutCurrent = iota
	layoutDay0
	layoutShared
)

// Journal appends entries into caller-supplied batches and reads them back
// through its indexes. It is safe for concurrent use; each *pebble.Batch
// must be used by one goroutine at a time, as Pebble requires.
type Journal struct {
	db   *pebble.DB
	opts Options
	// seqMu guards the per-day counters (counter.go): days by day
	// number, cur the last one used. Concurrent appends into separate
	// batches get distinct sequences; batches may commit in a different
	// order than their sequences.
	seqMu sync.Mutex
	days  map[uint32]*dayCounter
	cur   *dayCounter
	// last is the counter of the last sequence handed out (LastSeq).
	last atomic.Uint64
	// shared is that shared counter, used only by the test layouts of
	// earlier versions (Options.legacyLayout).
	shared atomic.Uint64

	// pruneMu serializes PruneDays and PruneResponses: the sequence mark
	// is read, raised and written back, and each keeps where its pass
	// stopped so that the next call resumes there.
	pruneMu sync.Mutex
	// dayCursor is the first key (an old-layout day-index key or an
	// entry key) the last PruneDays call left
	// for later, valid for dayCursorBefore only; nil when no pass is
	// under way.
	dayCursor       []byte
	dayCursorBefore string
	// respCursor is the same for PruneResponses.
	respCursor       []byte
	respCursorBefore time.Time
	respCursorRefs   time.Time // ResponseRetention.ReferencesBefore of the pass
}

// Open returns the journal kept in db. Each business day's counter
// continues, at its first use, at the day's counter mark, above its
// stored counters and at or above its floor (docs/journal.md#sequences). The caller keeps ownership of db.
func Open(db *pebble.DB, opts Options) (*Journal, error) {
	if db == nil {
		return nil, errors.New("journal: open: nil db")
	}
	if opts.MaxRead == 0 {
		opts.MaxRead = DefaultMaxRead
	}
	if opts.MaxRead < 1 || opts.MaxRead > maxMaxRead {
		return nil, fmt.Errorf("journal: open: max read %d: want 1..%d", opts.MaxRead, maxMaxRead)
	}
	j := &Journal{db: db, opts: opts, days: map[uint32]*dayCounter{}}
	if opts.legacyLayout != layoutCurrent {
		top, err := sharedTop(db)
		if err != nil {
			return nil, fmt.Errorf("journal: open: %w", err)
		}
		j.shared.Store(top)
	}
	// Each day's counter is set up at its first use (counter.go).
	return j, nil
}

// LastSeq returns the counter of the last sequence handed out, by an
// append or ReserveRRN (the sequence without its business day; zero
// before the first since Open). Its entry may not be committed yet.
func (j *Journal) LastSeq() uint64 {
	if j.opts.legacyLayout != layoutCurrent {
		return j.shared.Load()
	}
	return j.last.Load()
}

// Append assigns e the next sequence number and writes it, with its index
// keys, into b. It does not commit b. On success e.Seq is set to the
// sequence, which is also returned.
//
// Indexes written: terminal + batch (when Terminal is set) and RRN (when
// RRN is set and is not the one the sequence names). The sequence begins
// with the business day, so the day needs no index key
// (docs/journal.md#sequences).
func (j *Journal) Append(b *pebble.Batch, e *Entry) (uint64, error) {
	if b == nil || e == nil {
		return 0, errors.New("journal: append: nil batch or entry")
	}
	n, err := e.Size()
	if err != nil {
		return 0, fmt.Errorf("journal: append %s %s terminal %q stan %q: %w", e.Direction, e.MTI, e.Terminal, e.STAN, err)
	}
	day, ok := dayNumber(e.BusinessDate)
	if !ok {
		return 0, fmt.Errorf("journal: append %s %s terminal %q stan %q: %w: business date %q is not a day", e.Direction, e.MTI, e.Terminal, e.STAN, ErrInvalidEntry, e.BusinessDate)
	}
	seq, err := j.nextSeqs(day, 1)
	if err != nil {
		return 0, fmt.Errorf("journal: append %s %s terminal %q stan %q: %w", e.Direction, e.MTI, e.Terminal, e.STAN, err)
	}

	op := b.SetDeferred(entryKeyLen, n)
	putEntryKey(op.Key, seq)
	e.EncodeInto(op.Value)
	if err := op.Finish(); err != nil {
		return 0, fmt.Errorf("journal: append seq %d: %w", seq, err)
	}

	// Index keys are built in a stack buffer; Batch.Set copies them. The
	// sequence carries the business day: no day index key.
	var buf [2 + 1 + maxTerminalLen + 1 + maxRRNLen + dateLen + seqLen + 8]byte
	if j.opts.legacyLayout == layoutDay0 {
		if err := b.Set(appendSeq(dayPrefix(buf[:0], e.BusinessDate), seq), nil, nil); err != nil {
			return 0, fmt.Errorf("journal: append seq %d day index: %w", seq, err)
		}
	}
	if e.Terminal != "" {
		k := appendSeq(termBatchPrefix(buf[:0], e.Terminal, e.Batch), seq)
		if err := b.Set(k, nil, nil); err != nil {
			return 0, fmt.Errorf("journal: append seq %d terminal index: %w", seq, err)
		}
	}
	if e.RRN != "" && !j.named(seq, e.RRN) {
		k := rrnKey(buf[:0], e.RRN, e.BusinessDate, seq)
		if err := b.Set(k, nil, nil); err != nil {
			return 0, fmt.Errorf("journal: append seq %d rrn index: %w", seq, err)
		}
	}
	e.Seq = seq
	if j.opts.OnAppend != nil {
		j.opts.OnAppend()
	}
	return seq, nil
}

// named reports whether rrn is the RRN sequence seq names, so that the
// entry (or pair) at seq needs no RRN index key for it
// (docs/journal.md#sequences). Whoever issued the RRN, ByRRN finds the
// entry at the sequence it names.
func (j *Journal) named(seq uint64, rrn string) bool {
	return j.opts.legacyLayout == layoutCurrent && namesRRN(seq, rrn)
}

// pairMark is the value of an index key that names a request/response
// pair: the entry at its sequence and the one after it.
var pairMark = []byte{2}

// AppendPair writes a request and its response as two entries with
// consecutive sequences and ONE set of index keys for both (the index
// value marks the pair), so a transaction costs two index keys rather
// than six or seven. Both entries must share terminal, batch and business
// day. The response's RRN is indexed, and the request's too when it names
// another (the original of a void or refund), unless the request's
// sequence names it (docs/journal.md#sequences). It does not commit b.
func (j *Journal) AppendPair(b *pebble.Batch, req, resp *Entry) (reqSeq, respSeq uint64, err error) {
	return j.appendPair(b, nil, req, resp, true)
}

// AppendPairAt is AppendPair at the sequences r reserved (ReserveRRN)
// when r is not nil, holds sequences of the pair's business day and was
// not used before; else at new ones. An RRN of the pair that the request's
// sequence names gets no RRN index key: ByRRN reads that sequence.
func (j *Journal) AppendPairAt(b *pebble.Batch, r *Reservation, req, resp *Entry) (reqSeq, respSeq uint64, err error) {
	return j.appendPair(b, r, req, resp, true)
}

// AppendAnswered writes a request, the response that decides it and the
// duplicate record that answers it again (ResponseRecord, its ResponseSeq
// set here to the response's sequence) into b, as AppendPair and
// PutResponse would, with one key less: the duplicate record, keyed by
// terminal, batch, STAN and date, is the pair's terminal + batch index
// (ByTerminalBatch reads both; PruneResponses leaves an index key in its
// place when it deletes it). key must name the request's terminal and
// batch. It does not commit b.
func (j *Journal) AppendAnswered(b *pebble.Batch, req, resp *Entry, key DuplicateKey, rec ResponseRecord) (reqSeq, respSeq uint64, err error) {
	return j.AppendAnsweredAt(b, nil, req, resp, key, rec)
}

// AppendAnsweredAt is AppendAnswered at the sequences r reserved, as
// AppendPairAt.
func (j *Journal) AppendAnsweredAt(b *pebble.Batch, r *Reservation, req, resp *Entry, key DuplicateKey, rec ResponseRecord) (reqSeq, respSeq uint64, err error) {
	if req == nil || key.Terminal != req.Terminal || key.Batch != req.Batch {
		return 0, 0, fmt.Errorf("journal: append answered: %w: duplicate key of another terminal or batch", ErrInvalidEntry)
	}
	if err := key.validate(); err != nil {
		return 0, 0, fmt.Errorf("journal: append answered: %w", err)
	}
	if reqSeq, respSeq, err = j.appendPair(b, r, req, resp, false); err != nil {
		return 0, 0, err
	}
	rec.ResponseSeq = respSeq
	// b was checked by appendPair, key above.
	if err := j.putResponse(b, spaceAnswered, &key, &rec); err != nil {
		return 0, 0, err
	}
	return reqSeq, respSeq, nil
}

// pairBufs hold a pair's encoding until the batch copies it (its size is
// known only once encoded: the response is stored as a delta).
var pairBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putPairBuf returns a buffer to pairBufs unless a large message grew it.
func putPairBuf(b *[]byte) {
	if cap(*b) <= 16<<10 {
		pairBufs.Put(b)
	}
}

func (j *Journal) appendPair(b *pebble.Batch, r *Reservation, req, resp *Entry, termIndex bool) (reqSeq, respSeq uint64, err error) {
	if b == nil || req == nil || resp == nil {
		return 0, 0, errors.New("journal: append pair: nil batch or entry")
	}
	if req.Terminal != resp.Terminal || req.Batch != resp.Batch || req.BusinessDate != resp.BusinessDate {
		return 0, 0, fmt.Errorf("journal: append pair: %w: request and response differ in terminal, batch or day", ErrInvalidEntry)
	}
	pb := pairBufs.Get().(*[]byte)
	defer putPairBuf(pb)
	v, err := record.AppendPair((*pb)[:0], req, resp)
	*pb = v
	if err != nil {
		return 0, 0, fmt.Errorf("journal: append pair %s terminal %q stan %q: %w", req.MTI, req.Terminal, req.STAN, err)
	}
	day, ok := dayNumber(req.BusinessDate)
	if !ok {
		return 0, 0, fmt.Errorf("journal: append pair %s terminal %q stan %q: %w: business date %q is not a day", req.MTI, req.Terminal, req.STAN, ErrInvalidEntry, req.BusinessDate)
	}
	reqSeq, ok = r.take(day)
	if !ok {
		if reqSeq, err = j.nextSeqs(day, 2); err != nil {
			return 0, 0, fmt.Errorf("journal: append pair %s terminal %q stan %q: %w", req.MTI, req.Terminal, req.STAN, err)
		}
	}
	respSeq = reqSeq + 1
	// One value under the request's sequence holds both entries; the
	// response's sequence has no key of its own (docs/journal.md).
	var ek [entryKeyLen]byte
	putEntryKey(ek[:], reqSeq)
	if err := b.Set(ek[:], v, nil); err != nil {
		return 0, 0, fmt.Errorf("journal: append seq %d: %w", reqSeq, err)
	}
	var buf [2 + 1 + maxTerminalLen + 1 + maxRRNLen + dateLen + seqLen + 8]byte
	if j.opts.legacyLayout == layoutDay0 {
		if err := b.Set(appendSeq(dayPrefix(buf[:0], req.BusinessDate), reqSeq), pairMark, nil); err != nil {
			return 0, 0, fmt.Errorf("journal: append seq %d day index: %w", reqSeq, err)
		}
	}
	if req.Terminal != "" && termIndex {
		k := appendSeq(termBatchPrefix(buf[:0], req.Terminal, req.Batch), reqSeq)
		if err := b.Set(k, pairMark, nil); err != nil {
			return 0, 0, fmt.Errorf("journal: append seq %d terminal index: %w", reqSeq, err)
		}
	}
	rrns := [2]string{resp.RRN}
	if req.RRN != resp.RRN {
		rrns[1] = req.RRN
	}
	for _, rrn := range rrns {
		if rrn == "" || j.named(reqSeq, rrn) {
			continue
		}
		k := rrnKey(buf[:0], rrn, req.BusinessDate, reqSeq)
		if err := b.Set(k, pairMark, nil); err != nil {
			return 0, 0, fmt.Errorf("journal: append seq %d rrn index: %w", reqSeq, err)
		}
	}
	req.Seq, resp.Seq = reqSeq, respSeq
	if j.opts.OnAppend != nil {
		j.opts.OnAppend()
		j.opts.OnAppend()
	}
	return reqSeq, respSeq, nil
}

// Get returns the committed entry with sequence seq, or ErrNotFound. The
// response of a pair is stored with its request, under the sequence
// before its own.
func (j *Journal) Get(seq uint64) (*Entry, error) {
	es, _, err := j.read(seq)
	if err == nil {
		return &es[0], nil // a single entry, or a pair's request
	}
	if errors.Is(err, ErrNotFound) && seq > 1 {
		var n int
		if es, n, err = j.read(seq - 1); err == nil {
			if n == 2 {
				return &es[1], nil
			}
			err = ErrNotFound
		}
	}
	return nil, fmt.Errorf("journal: get seq %d: %w", seq, err)
}

// read decodes the value stored under sequence seq: n is 1 for a single
// entry, 2 for a pair (request, then response).
func (j *Journal) read(seq uint64) (es [2]Entry, n int, err error) {
	if es, n, err = readAt(j.db, seq); err == nil && n == 0 {
		err = ErrNotFound
	}
	return es, n, err
}

// decodeStored decodes a stored value into es[0] (and es[1] for a pair),
// with their sequences, and says how many entries it held.
func decodeStored(v []byte, seq uint64, es []Entry) (int, error) {
	if record.IsPair(v) {
		es[0].Seq, es[1].Seq = seq, seq+1
		if err := record.DecodePair(v, &es[0], &es[1]); err != nil {
			return 0, fmt.Errorf("seq %d: %w", seq, err)
		}
		return 2, nil
	}
	es[0].Seq = seq
	if err := DecodeEntry(v, &es[0]); err != nil {
		return 0, fmt.Errorf("seq %d: %w", seq, err)
	}
	return 1, nil
}

// ByRRN returns up to limit entries carrying the retrieval reference
// number rrn, oldest business day first and in sequence order within a
// day. A non-empty date (YYYYMMDD) restricts the search to that business
// day; RRNs are unique only within a day or so, depending on who issued
// them.
func (j *Journal) ByRRN(rrn, date string, limit int) ([]*Entry, error) {
	if rrn == "" || len(rrn) > maxRRNLen {
		return nil, fmt.Errorf("journal: by rrn: %w: rrn %q", ErrInvalidEntry, rrn)
	}
	if date != "" && !validDate(date) {
		return nil, fmt.Errorf("journal: by rrn %s: %w: date %q", rrn, ErrInvalidEntry, date)
	}
	if err := j.checkLimit(limit); err != nil {
		return nil, fmt.Errorf("journal: by rrn %s: %w", rrn, err)
	}
	out, err := j.byRRN(rrn, date, limit)
	if err != nil {
		return nil, fmt.Errorf("journal: by rrn %s: %w", rrn, err)
	}
	return out, nil
}

// byRRN reads the old layout's RRN keys (rrn date seq: after the RRN an
// ASCII digit) first, then the current ones (rrn seq: after the RRN the
// sequence, whose first byte is 0x00) and the entries at the sequences
// rrn names (which have no RRN key), within date's day when date is set.
// Both layouts' keys are read through one iterator (its view is the
// entries' too, through a clone made only when a key is found), and a
// named sequence with one point read: a POS refund, whose original's RRN
// names its sequence and has no key, costs one seek and one read.
func (j *Journal) byRRN(rrn, date string, limit int) (out []*Entry, err error) {
	p := rrnPrefix(nil, rrn)
	oldLo, oldHi := append(bytes.Clone(p), '0'), append(bytes.Clone(p), '9'+1)
	if date != "" {
		oldLo = append(bytes.Clone(p), date...)
		oldHi = prefixEnd(oldLo)
	}
	newLo, newHi := appendSeq(bytes.Clone(p), dayStart(1)), appendSeq(bytes.Clone(p), dayStart(maxSeqDay+1))
	var named []uint64
	if date != "" {
		d, ok := dayNumber(date)
		if !ok {
			newHi = newLo // not a day: only the old layout could hold it
		} else {
			newLo, newHi = appendSeq(bytes.Clone(p), dayStart(d)), appendSeq(bytes.Clone(p), dayStart(d+1))
			if seq, ok := rrnSeq(rrn, d); ok {
				named = append(named, seq)
			}
		}
	} else {
		if named, err = namedSeqs(j.db, rrn); err != nil {
			return nil, err
		}
	}
	// The new layout's keys sort before the old one's (0x00 < '0').
	idx, err := j.db.NewIter(&pebble.IterOptions{LowerBound: newLo, UpperBound: oldHi})
	if err != nil {
		return nil, err
	}
	var ents *pebble.Iterator
	defer func() {
		cerr := idx.Close()
		if ents != nil {
			cerr = errors.Join(cerr, ents.Close())
		}
		if err == nil && cerr != nil {
			out, err = nil, cerr
		}
	}()
	collect := func(e *Entry) bool {
		out = append(out, e)
		return len(out) < limit
	}
	walk := func(lower, upper []byte) (more bool, err error) {
		if bytes.Compare(lower, upper) >= 0 {
			return true, nil
		}
		for ok := idx.SeekGE(lower); ok && bytes.Compare(idx.Key(), upper) < 0; ok = idx.Next() {
			if ents == nil {
				if ents, err = idx.Clone(pebble.CloneOptions{IterOptions: entryIterOptions()}); err != nil {
					return false, err
				}
			}
			if more, err = readIndexed(ents, idx, collect); err != nil || !more {
				return false, err
			}
		}
		return true, idx.Error()
	}
	if more, err := walk(oldLo, oldHi); err != nil || !more {
		return out, err
	}
	old := len(out)
	if _, err := walk(newLo, newHi); err != nil {
		return nil, err
	}
	// The entries at the sequences rrn names, in sequence order among
	// the indexed ones; a sequence both indexed and named (written by an
	// earlier version, which indexed every RRN) is read once.
	added := false
	for _, seq := range named {
		es, n, err := readAt(j.db, seq)
		if err != nil {
			return nil, err
		}
		has := false
		for i := 0; i < n; i++ {
			has = has || es[i].RRN == rrn
		}
		if !has || slices.ContainsFunc(out[old:], func(e *Entry) bool { return e.Seq == seq }) {
			continue
		}
		for i := 0; i < n; i++ {
			e := es[i]
			out = append(out, &e)
		}
		added = true
	}
	if added {
		slices.SortStableFunc(out[old:], func(a, b *Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return out[:min(len(out), limit)], nil
}

// namedSeqs returns the sequences rrn names on the days that have stored
// entries and rrn's day of the year: one a year, from the oldest stored
// day to the newest.
func namedSeqs(r pebble.Reader, rrn string) ([]uint64, error) {
	if len(rrn) != rrnLen {
		return nil, nil
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: entryKey(dayStart(1)), UpperBound: entryKey(dayStart(maxSeqDay + 1))})
	if err != nil {
		return nil, err
	}
	var first, last uint64
	if it.First() {
		first, _ = seqSuffix(it.Key())
		if it.Last() {
			last, _ = seqSuffix(it.Key())
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil || first == 0 {
		return nil, err
	}
	yday := 0
	for i := 0; i < 3; i++ {
		if rrn[i] < '0' || rrn[i] > '9' {
			return nil, nil
		}
		yday = yday*10 + int(rrn[i]-'0')
	}
	lo, hi := seqDay(first), seqDay(last)
	y0, _, _ := record.CivilFromDays(int64(lo))
	y1, _, _ := record.CivilFromDays(int64(hi))
	var seqs []uint64
	for y := y0; y <= y1 && yday >= 1; y++ {
		// rrnSeq checks that day d is the yday-th of its year (not so
		// for 366 in a common year).
		d := record.DaysFromCivil(y, 1, 1) + int64(yday) - 1
		if d < int64(lo) || d > int64(hi) {
			continue
		}
		if seq, ok := rrnSeq(rrn, uint32(d)); ok {
			seqs = append(seqs, seq)
		}
	}
	return seqs, nil
}

// readAt decodes the value stored under sequence seq from r: n is 0 when
// there is none, 1 for a single entry, 2 for a pair.
func readAt(r pebble.Reader, seq uint64) (es [2]Entry, n int, err error) {
	v, closer, err := r.Get(entryKey(seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return es, 0, nil
	}
	if err != nil {
		return es, 0, err
	}
	defer closer.Close()
	n, err = decodeStored(v, seq, es[:])
	return es, n, err
}

// ByTerminalBatch returns up to limit entries of one terminal's batch in
// sequence order. Batch numbers repeat over the years, so a long-lived
// terminal's batch may collect entries of several business days; compare
// BusinessDate to tell them apart. It reads the terminal + batch index and
// the duplicate records of answered pairs (AppendAnswered), which index
// their pairs; a duplicate record whose pair retention has deleted is
// skipped.
func (j *Journal) ByTerminalBatch(terminal, batch string, limit int) ([]*Entry, error) {
	if terminal == "" || len(terminal) > maxTerminalLen || len(batch) > maxBatchLen {
		return nil, fmt.Errorf("journal: by terminal batch: %w: terminal %q batch %q", ErrInvalidEntry, terminal, batch)
	}
	if err := j.checkLimit(limit); err != nil {
		return nil, fmt.Errorf("journal: by terminal %s batch %s: %w", terminal, batch, err)
	}
	out, err := j.byTerminalBatch(terminal, batch, limit)
	if err != nil {
		return nil, fmt.Errorf("journal: by terminal %s batch %s: %w", terminal, batch, err)
	}
	return out, nil
}

// maxAnsweredScan bounds the duplicate records one ByTerminalBatch reads
// (a batch holds at most 999 999 trace numbers).
const maxAnsweredScan = 1 << 20

func (j *Journal) byTerminalBatch(terminal, batch string, limit int) (out []*Entry, err error) {
	snap := j.db.NewSnapshot()
	defer snap.Close()
	type ref struct {
		seq      uint64
		n        int  // entries at seq: 1, or 2 for a pair
		answered bool // from a duplicate record: its pair may be pruned
	}
	var refs []ref
	// The index keys, in sequence order: the first limit are enough.
	idx, err := snap.NewIter(&pebble.IterOptions{LowerBound: termBatchPrefix(nil, terminal, batch), UpperBound: prefixEnd(termBatchPrefix(nil, terminal, batch))})
	if err != nil {
		return nil, err
	}
	for ok := idx.First(); ok && len(refs) < limit; ok = idx.Next() {
		seq, err := seqSuffix(idx.Key())
		if err != nil {
			idx.Close()
			return nil, err
		}
		n := 1
		if string(idx.Value()) == string(pairMark) {
			n = 2
		}
		refs = append(refs, ref{seq, n, false})
	}
	if err := errors.Join(idx.Error(), idx.Close()); err != nil {
		return nil, err
	}
	// The duplicate records, in trace-number order: all of them.
	ap := appendStr(appendStr([]byte{prefixJournal, spaceAnswered}, terminal), batch)
	dup, err := snap.NewIter(&pebble.IterOptions{LowerBound: ap, UpperBound: prefixEnd(ap)})
	if err != nil {
		return nil, err
	}
	seen := 0
	for ok := dup.First(); ok; ok = dup.Next() {
		if seen++; seen > maxAnsweredScan {
			dup.Close()
			return nil, fmt.Errorf("%w: more than %d answered requests in one batch", ErrLimit, maxAnsweredScan)
		}
		rec, err := DecodeResponseRecord(dup.Value())
		if err != nil || rec.ResponseSeq < 2 {
			dup.Close()
			return nil, fmt.Errorf("%w: duplicate record %x: %v", ErrCorrupt, dup.Key(), err)
		}
		refs = append(refs, ref{rec.ResponseSeq - 1, 2, true})
	}
	if err := errors.Join(dup.Error(), dup.Close()); err != nil {
		return nil, err
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].seq < refs[b].seq })

	ents, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixJournal, spaceEntry},
		UpperBound: []byte{prefixJournal, spaceEntry + 1},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := ents.Close(); err == nil && cerr != nil {
			out, err = nil, cerr
		}
	}()
	var (
		ek   [entryKeyLen]byte
		es   [2]Entry
		last uint64
	)
	for i, r := range refs {
		if i > 0 && r.seq == last {
			continue // a pair indexed both ways (written before AppendAnswered)
		}
		last = r.seq
		for seq := r.seq; seq < r.seq+uint64(r.n); {
			putEntryKey(ek[:], seq)
			if !ents.SeekGE(ek[:]) || string(ents.Key()) != string(ek[:]) {
				if err := ents.Error(); err != nil {
					return nil, err
				}
				if r.answered && seq == r.seq {
					break // retention deleted the pair before its duplicate record
				}
				return nil, fmt.Errorf("%w: terminal %s batch %s names entry %d, which is missing", ErrCorrupt, terminal, batch, seq)
			}
			v, err := ents.ValueAndErr()
			if err != nil {
				return nil, err
			}
			n, err := decodeStored(v, seq, es[:])
			if err != nil {
				return nil, err
			}
			for h := 0; h < n; h++ {
				e := es[h]
				out = append(out, &e)
				if len(out) == limit {
					return out, nil
				}
			}
			seq += uint64(n)
		}
	}
	return out, nil
}

// ByBusinessDay calls fn for every entry of business day date (YYYYMMDD) in
// sequence order until fn returns false. The whole walk reads one
// consistent snapshot. It is meant for reconciliation and operator tools,
// not the transaction path. The day's entries are one range of entry
// keys (their sequences carry the day); entries written before that
// layout are found through their day index keys, and come first.
func (j *Journal) ByBusinessDay(date string, fn func(*Entry) bool) error {
	if !validDate(date) {
		return fmt.Errorf("journal: by business day: %w: date %q", ErrInvalidEntry, date)
	}
	if fn == nil {
		return errors.New("journal: by business day: nil callback")
	}
	if err := j.byBusinessDay(date, fn); err != nil {
		return fmt.Errorf("journal: by business day %s: %w", date, err)
	}
	return nil
}

func (j *Journal) byBusinessDay(date string, fn func(*Entry) bool) (err error) {
	snap := j.db.NewSnapshot()
	defer snap.Close()
	stopped := false
	if err := scanIndex(snap, dayPrefix(nil, date), func(e *Entry) bool {
		stopped = !fn(e)
		return !stopped
	}); err != nil || stopped {
		return err
	}
	day, ok := dayNumber(date)
	if !ok {
		return nil // not a calendar day: only old-layout data could hold it
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: entryKey(dayStart(day)), UpperBound: entryKey(dayStart(day + 1))})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	var es [2]Entry
	for ok := it.First(); ok; ok = it.Next() {
		seq, err := seqSuffix(it.Key())
		if err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		n, err := decodeStored(v, seq, es[:])
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if es[i].BusinessDate != date {
				return fmt.Errorf("%w: entry %d of day %s is dated %s", ErrCorrupt, es[i].Seq, date, es[i].BusinessDate)
			}
			e := es[i]
			if !fn(&e) {
				return nil
			}
		}
	}
	return it.Error()
}

func (j *Journal) checkLimit(limit int) error {
	if limit < 1 || limit > j.opts.MaxRead {
		return fmt.Errorf("%w: %d, want 1..%d", ErrLimit, limit, j.opts.MaxRead)
	}
	return nil
}

// scanIndex walks the index keys starting with prefix and calls fn with
// each entry they point to. Index and entries are read from one snapshot:
// an index key and its entry are written in the same batch, so an index
// key without its entry means damage.
func scanIndex(snap *pebble.Snapshot, prefix []byte, fn func(*Entry) bool) error {
	return scanRange(snap, prefix, prefixEnd(prefix), fn)
}

// scanRange is scanIndex over the index keys in [lower, upper).
func scanRange(snap *pebble.Snapshot, lower, upper []byte, fn func(*Entry) bool) (err error) {
	if bytes.Compare(lower, upper) >= 0 {
		return nil
	}
	idx, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := idx.Close(); err == nil {
			err = cerr
		}
	}()
	ents, err := snap.NewIter(entryIterOptions())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := ents.Close(); err == nil {
			err = cerr
		}
	}()
	for ok := idx.First(); ok; ok = idx.Next() {
		if more, err := readIndexed(ents, idx, fn); err != nil || !more {
			return err
		}
	}
	return idx.Error()
}

// entryIterOptions bounds an iterator to the entries ('j e').
func entryIterOptions() *pebble.IterOptions {
	return &pebble.IterOptions{
		LowerBound: []byte{prefixJournal, spaceEntry},
		UpperBound: []byte{prefixJournal, spaceEntry + 1},
	}
}

// readIndexed calls fn with the entry, or the pair, that the index key at
// idx points to, read through ents (an iterator over the entries with
// idx's view: an index key and its entry are written in the same batch,
// so an index key without its entry means damage). more is false when fn
// asked to stop.
func readIndexed(ents, idx *pebble.Iterator, fn func(*Entry) bool) (more bool, err error) {
	var (
		ek [entryKeyLen]byte
		es [2]Entry
	)
	first, err := seqSuffix(idx.Key())
	if err != nil {
		return false, err
	}
	want := 1
	if iv, err := idx.ValueAndErr(); err != nil {
		return false, err
	} else if string(iv) == string(pairMark) {
		want = 2 // a request/response pair
	}
	for seq := first; seq < first+uint64(want); {
		putEntryKey(ek[:], seq)
		if !ents.SeekGE(ek[:]) || string(ents.Key()) != string(ek[:]) {
			if err := ents.Error(); err != nil {
				return false, err
			}
			return false, fmt.Errorf("%w: index key %x has no entry %d", ErrCorrupt, idx.Key(), seq)
		}
		v, err := ents.ValueAndErr()
		if err != nil {
			return false, err
		}
		n, err := decodeStored(v, seq, es[:])
		if err != nil {
			return false, err
		}
		if seq+uint64(n) > first+uint64(want) {
			return false, fmt.Errorf("%w: index key %x names one entry, seq %d holds a pair", ErrCorrupt, idx.Key(), seq)
		}
		for i := 0; i < n; i++ {
			e := es[i]
			if !fn(&e) {
				return false, nil
			}
		}
		seq += uint64(n)
	}
	return true, nil
}
