package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// MaxPrune bounds the max argument of PruneDays and PruneResponses.
const MaxPrune = 100_000

// respScanFactor bounds the stored responses one PruneResponses call
// examines to this many times max, so that a call that finds little to
// delete still ends quickly; the next call resumes where it stopped.
const respScanFactor = 64

// PruneStats counts what one prune call deleted.
type PruneStats struct {
	Entries   int // journal entries deleted (each with all its index keys)
	Responses int // stored response records deleted
}

func checkPruneMax(max int) error {
	if max < 1 || max > MaxPrune {
		return fmt.Errorf("%w: max %d, want 1..%d", ErrInvalidEntry, max, MaxPrune)
	}
	return nil
}

// PruneDays deletes every journal entry whose BusinessDate (YYYYMMDD) is
// before `before`, together with every index key that points at it
// (terminal + batch, RRN, and the day index of the old layout). It walks
// the old layout's day index, ordered by date, then the entry keys of the
// days before `before` (sequences begin with their day), so entries of
// `before` and later days, including those appended concurrently, are
// never read or touched; nor are stored responses or queue keys.
//
// One call handles at most max keys (day-index keys, then entry keys) and
// deletes at most max
// entries (1..MaxPrune, else an error wrapping ErrInvalidEntry), except
// that a request/response pair is never split: a call with max 1 whose
// first key is a pair deletes both of its entries. The deletions go into
// one batch committed without sync: deletions lost in a crash are redone
// by the next call. more is true when the call stopped at its bound with
// keys left, and also after a call that resumed where the previous one
// stopped, so that a pass ends with one call that walks the range from its
// start and finds nothing more (keys committed behind the resume point
// while the pass ran are not left behind). Callers loop while more is true.
//
// A day-index key whose entry (or either entry of a pair) is missing or
// does not decode is deleted and counted nowhere; the damaged entry and any
// other index keys pointing at it cannot be located reliably and are left
// for an operator (reads through them report ErrCorrupt, as before). I/O
// errors are returned and nothing of that call is committed.
//
// When it deletes entries it also raises the sequence mark (key 'j s') to
// the largest sequence deleted, in the same batch, so that Open never
// hands out a pruned sequence again even when every entry is gone.
func (j *Journal) PruneDays(before string, max int) (st PruneStats, more bool, err error) {
	if !validDate(before) {
		return PruneStats{}, false, fmt.Errorf("journal: prune days: %w: before %q", ErrInvalidEntry, before)
	}
	if err := checkPruneMax(max); err != nil {
		return PruneStats{}, false, fmt.Errorf("journal: prune days before %s: %w", before, err)
	}
	beforeDay, ok := dayNumber(before)
	if !ok {
		return PruneStats{}, false, fmt.Errorf("journal: prune days: %w: before %q is not a day", ErrInvalidEntry, before)
	}
	j.pruneMu.Lock()
	defer j.pruneMu.Unlock()

	// Two ranges, in this order: the day index of entries written before
	// sequences carried their day, then the entry keys of days 1 up to
	// before's first sequence. One cursor: its keyspace says which.
	lowerIndex := []byte{prefixJournal, spaceDay}
	lowerEntries := entryKey(dayStart(1))
	resumed, inEntries := false, false
	if j.dayCursor != nil && j.dayCursorBefore == before {
		resumed = true
		if j.dayCursor[1] == spaceEntry {
			lowerEntries, inEntries = j.dayCursor, true
		} else {
			lowerIndex = j.dayCursor
		}
	}
	j.dayCursor = nil // set again only after a successful commit

	var idx PruneStats // what the day index phase deleted
	if !inEntries {
		var next []byte
		idx, next, err = j.pruneDays(lowerIndex, dayPrefix(nil, before), max)
		if err != nil {
			return PruneStats{}, false, fmt.Errorf("journal: prune days before %s: %w", before, err)
		}
		if next == nil && idx.Entries >= max {
			// The index is done and this call's bound reached: the entry
			// range next, if it holds anything.
			if more, err := j.anyKey(lowerEntries, entryKey(dayStart(beforeDay))); err != nil {
				return PruneStats{}, false, fmt.Errorf("journal: prune days before %s: %w", before, err)
			} else if more {
				next = lowerEntries
			}
		}
		if next != nil {
			j.dayCursor, j.dayCursorBefore = next, before
			return idx, true, nil
		}
		if idx.Entries >= max {
			return idx, resumed, nil
		}
	}
	st, next, err := j.pruneEntries(lowerEntries, entryKey(dayStart(beforeDay)), max-idx.Entries)
	if err != nil {
		// The index phase's deletions are committed: the next call
		// starts again from the beginning and finds them done.
		return PruneStats{}, false, fmt.Errorf("journal: prune days before %s: %w", before, err)
	}
	if next != nil {
		j.dayCursor, j.dayCursorBefore = next, before
	}
	st.Entries += idx.Entries
	return st, next != nil || resumed, nil
}

// anyKey says whether [lower, upper) holds a key.
func (j *Journal) anyKey(lower, upper []byte) (bool, error) {
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, err
	}
	found := it.First()
	return found, errors.Join(it.Error(), it.Close())
}

// pruneEntries deletes the entries whose keys are in [lower, upper) —
// whole business days, as sequences begin with their day — with their
// index keys, within the bounds PruneDays documents, and commits. An
// entry that does not decode, or whose day or pair does not match its
// key, is left for an operator; such keys do not count against max, or a
// few hundred of them would stop every pass before any entry behind them
// (and a resumed pass would always ask for another), but a pass stops
// after skipping 16 × max of them. next is the first key it left (nil
// when it reached upper).
func (j *Journal) pruneEntries(lower, upper []byte, max int) (PruneStats, []byte, error) {
	return j.prunePass(lower, upper, func(snap *pebble.Snapshot, it *pebble.Iterator, b *pebble.Batch) (st PruneStats, top uint64, stopped bool, err error) {
		var (
			keys, skipped int
			es            [2]Entry
			buf           [2 + 1 + maxTerminalLen + 1 + maxRRNLen + dateLen + seqLen + 8]byte
		)
		ok := it.First()
		for ; ok; ok = it.Next() {
			if keys == max || skipped == 16*max {
				break
			}
			k := it.Key()
			if len(k) != entryKeyLen {
				skipped++
				continue
			}
			seq, _ := seqSuffix(k)
			v, err := it.ValueAndErr()
			if err != nil {
				return st, 0, false, err
			}
			n, derr := decodeStored(v, seq, es[:])
			if derr != nil {
				skipped++
				continue
			}
			if d, ok := dayNumber(es[0].BusinessDate); !ok || d != seqDay(seq) ||
				(n == 2 && (es[1].BusinessDate != es[0].BusinessDate || es[1].Terminal != es[0].Terminal || es[1].Batch != es[0].Batch)) {
				skipped++
				continue
			}
			if st.Entries > 0 && st.Entries+n > max {
				break
			}
			keys++
			if err := deleteEntries(b, buf[:], es[:n], seq, es[0].BusinessDate); err != nil {
				return st, 0, false, err
			}
			st.Entries += n
			if last := seqCounter(seq) + uint64(n) - 1; last > top {
				top = last
			}
		}
		return st, top, ok, nil
	})
}

// pruneDays deletes the entries of the day-index keys in [lower, upper),
// within the bounds PruneDays documents, and commits. next is the first key
// it left (nil when it reached upper).
func (j *Journal) pruneDays(lower, upper []byte, max int) (PruneStats, []byte, error) {
	return j.prunePass(lower, upper, func(snap *pebble.Snapshot, it *pebble.Iterator, b *pebble.Batch) (st PruneStats, top uint64, stopped bool, err error) {
		var (
			keys int
			es   [2]Entry
			buf  [2 + 1 + maxTerminalLen + 1 + maxRRNLen + dateLen + seqLen + 8]byte
		)
		const dayKeyLen = 2 + dateLen + seqLen
		ok := it.First()
		for ; ok; ok = it.Next() {
			if keys == max {
				break
			}
			k := it.Key()
			if len(k) != dayKeyLen {
				// Not a key Append writes: drop it so the pass moves on.
				if err := b.Delete(k, nil); err != nil {
					return st, 0, false, err
				}
				keys++
				continue
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return st, 0, false, err
			}
			n := 1
			if string(v) == string(pairMark) {
				n = 2
			}
			if st.Entries > 0 && st.Entries+n > max {
				break
			}
			keys++
			first, _ := seqSuffix(k)
			date := string(k[2 : 2+dateLen])
			found, err := readEntries(snap, first, date, es[:n])
			if err != nil {
				return st, 0, false, err
			}
			if err := b.Delete(k, nil); err != nil {
				return st, 0, false, err
			}
			if !found {
				continue
			}
			if err := deleteEntries(b, buf[:], es[:n], first, date); err != nil {
				return st, 0, false, err
			}
			st.Entries += n
			if last := first + uint64(n) - 1; last > top {
				top = last
			}
		}
		return st, top, ok, nil
	})
}

// prunePass runs one pruning pass of pruneEntries or pruneDays: walk
// visits the keys in [lower, upper) of one snapshot and puts its deletes
// in b; it returns what it deleted, top (the largest sequence counter
// deleted) and whether it stopped on a key it did not handle. prunePass
// then ends the pass through finishPrune.
func (j *Journal) prunePass(lower, upper []byte, walk func(snap *pebble.Snapshot, it *pebble.Iterator, b *pebble.Batch) (st PruneStats, top uint64, stopped bool, err error)) (st PruneStats, next []byte, err error) {
	snap := j.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return PruneStats{}, nil, err
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			st, next, err = PruneStats{}, nil, cerr
		}
	}()
	b := j.db.NewBatch()
	defer b.Close()
	st, top, stopped, err := walk(snap, it, b)
	if err != nil {
		return PruneStats{}, nil, err
	}
	return j.finishPrune(b, it, stopped, st, top)
}

// finishPrune ends a pruning pass of pruneEntries or pruneDays: it checks
// the walk's iterator, raises the sequence mark to top (the largest counter
// deleted) when entries went, and commits b. stopped says the walk left
// the iterator on a key it did not handle: next is that key, nil when it
// reached the end of its range.
func (j *Journal) finishPrune(b *pebble.Batch, it *pebble.Iterator, stopped bool, st PruneStats, top uint64) (PruneStats, []byte, error) {
	if err := it.Error(); err != nil {
		return PruneStats{}, nil, err
	}
	var next []byte
	if stopped {
		next = append([]byte(nil), it.Key()...)
	}
	if st.Entries > 0 && j.opts.legacyLayout != layoutCurrent {
		if err := j.raiseSeqMark(b, top); err != nil {
			return PruneStats{}, nil, err
		}
	}
	if !b.Empty() {
		if err := b.Commit(pebble.NoSync); err != nil {
			return PruneStats{}, nil, err
		}
	}
	return st, next, nil
}

// deleteEntries deletes, in b, the entries es (one, or a pair) from
// sequence first on and the index keys Append and AppendPair wrote for
// them: terminal + batch of the (shared) terminal, and the RRN of each
// entry that has one, all ending in the first sequence. A pair whose two
// RRNs are equal has one RRN key; deleting it twice is harmless. buf is
// scratch space for the keys.
func deleteEntries(b *pebble.Batch, buf []byte, es []Entry, first uint64, date string) error {
	for i := range es {
		putEntryKey(buf[:entryKeyLen], first+uint64(i))
		if err := b.Delete(buf[:entryKeyLen], nil); err != nil {
			return err
		}
	}
	if es[0].Terminal != "" {
		if err := b.Delete(appendSeq(termBatchPrefix(buf[:0], es[0].Terminal, es[0].Batch), first), nil); err != nil {
			return err
		}
	}
	for i := range es {
		if es[i].RRN == "" {
			continue
		}
		if err := b.Delete(rrnKey(buf[:0], es[i].RRN, date, first), nil); err != nil {
			return err
		}
	}
	return nil
}

// raiseSeqMark raises, in b, the pruned-sequence mark to top, a sequence
// counter (the sequence without its day; an old-layout sequence is its
// own counter), never lowering it (day order is not counter order). Only
// pruning writes it, under pruneMu, and only for the layouts of earlier
// versions (Options.legacyLayout), whose counter all days share: per-day
// counters continue at their day's counter mark, which pruning leaves.
func (j *Journal) raiseSeqMark(b *pebble.Batch, top uint64) error {
	mark, err := readSeqMark(j.db)
	if err != nil {
		return err
	}
	if top > mark {
		return b.Set(seqMarkKey, binary.BigEndian.AppendUint64(nil, top), nil)
	}
	return nil
}

// readEntries reads the n = len(es) entries from sequence first on into es.
// found is false when one is missing, does not decode, is of another
// business day than its day-index key says, or (for a pair) differs from
// the other in terminal or batch: damage the caller skips. err is an I/O
// error.
func readEntries(r pebble.Reader, first uint64, date string, es []Entry) (found bool, err error) {
	var k [entryKeyLen]byte
	for i := 0; i < len(es); {
		seq := first + uint64(i)
		putEntryKey(k[:], seq)
		v, closer, err := r.Get(k[:])
		if errors.Is(err, pebble.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var got [2]Entry
		n, derr := decodeStored(v, seq, got[:])
		if err := closer.Close(); err != nil {
			return false, err
		}
		if derr != nil || i+n > len(es) {
			return false, nil
		}
		for h := 0; h < n; h++ {
			es[i+h] = got[h]
			if es[i+h].BusinessDate != date {
				return false, nil
			}
			if i+h > 0 && (es[i+h].Terminal != es[0].Terminal || es[i+h].Batch != es[0].Batch) {
				return false, nil
			}
		}
		i += n
	}
	return true, nil
}

// readSeqMark returns the sequence mark, zero when there is none.
func readSeqMark(r pebble.Reader) (uint64, error) {
	v, closer, err := r.Get(seqMarkKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != seqLen {
		return 0, fmt.Errorf("%w: sequence mark of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// PruneResponses deletes stored response records (written by PutResponse,
// and the duplicate records of AppendAnswered) whose Time is before
// `before`, taken to the whole second (records keep their time to the
// second: ResponseRecord.Time). A duplicate record is its pair's terminal + batch index: while
// the pair is kept, an index key (as AppendPair writes) takes its place in
// the same batch. Their keys carry whatever date the switch
// matches on (MMDD has no year), so the record's own Time decides: the call
// walks the response keyspace in key order and decodes each record.
//
// One call deletes at most max records (1..MaxPrune, else an error
// wrapping ErrInvalidEntry) and examines at most 64 × max, in one batch
// committed without sync. more is true when it stopped at either bound
// with records left; the next call with the same `before` resumes there,
// so a pass walks the keyspace once. A call with another `before` starts
// from the beginning. A record written during a pass with a Time already
// before `before` may be left to the next pass (PutResponse is given the
// time of the answer, so that takes a clock set back).
//
// keep, when not nil, spares the records of the terminal batches it
// returns true for, whatever their age: the switch keeps the responses of
// every batch still open, because a terminal's trace watermark is rebuilt
// from them after a restart (ResponseSTANs), and a watermark missing its
// old STANs could take a very late retransmission for a new request.
//
// A record that does not decode is neither deleted nor reported: it is
// left for an operator (GetResponse reports it as ErrCorrupt). I/O errors
// are returned and nothing of that call is committed.
func (j *Journal) PruneResponses(before time.Time, max int, keep func(terminal, batch string) bool) (st PruneStats, more bool, err error) {
	return j.PruneAnswered(ResponseRetention{Before: before, Keep: keep}, max)
}

// ResponseRetention says which stored responses PruneAnswered deletes.
type ResponseRetention struct {
	// Before: records answered before it are deleted (PruneResponses).
	Before time.Time
	// ReferencesBefore, when set and earlier than Before, is the cut of
	// the duplicate records that carry a ledger transaction id
	// (ResponseRecord.TxID): they are the ledger's reference index for
	// POS requests and live its lookup window (docs/journal.md#retention),
	// not only the duplicate window.
	ReferencesBefore time.Time
	// Keep, when not nil, spares the records of the terminal batches it
	// returns true for (PruneResponses).
	Keep func(terminal, batch string) bool
	// KeepReference, when not nil, is asked about a record carrying a
	// transaction id before it is deleted, and spares it when it returns
	// true: the ledger keeps the reference of a pre-auth whose hold is
	// still open past its window (docs/ledger.md#retention). Every newer
	// record of a reference with a record kept is kept too
	// (docs/journal.md#retention).
	KeepReference func(txid uint64) (bool, error)
	// OlderReference, when not nil, returns the id of a transaction the
	// caller keeps for a terminal reference outside these records, 0 for
	// none: the ledger's own reference record of a POS original written
	// before the switch kept them here. A record of that reference with
	// a higher id is kept while it is (docs/journal.md#retention).
	OlderReference func(terminal, batch, stan string) (uint64, error)
}

// PruneAnswered is PruneResponses with the duplicate records that carry a
// ledger transaction id kept as ret says; its bounds, cursor and errors
// are PruneResponses'. A pass is resumed by a call with the same Before
// and ReferencesBefore.
func (j *Journal) PruneAnswered(ret ResponseRetention, max int) (st PruneStats, more bool, err error) {
	if err := checkPruneMax(max); err != nil {
		return PruneStats{}, false, fmt.Errorf("journal: prune responses: %w", err)
	}
	j.pruneMu.Lock()
	defer j.pruneMu.Unlock()

	// The duplicate records of answered pairs ('j o') and the stored
	// responses ('j p') are adjacent: one range, one cursor.
	lower := []byte{prefixJournal, spaceAnswered}
	upper := []byte{prefixJournal, spaceResponse + 1}
	if j.respCursor != nil && j.respCursorBefore.Equal(ret.Before) && j.respCursorRefs.Equal(ret.ReferencesBefore) {
		lower = j.respCursor
	}
	j.respCursor = nil
	st, next, err := j.pruneResponses(lower, upper, ret, max)
	if err != nil {
		return PruneStats{}, false, fmt.Errorf("journal: prune responses before %s: %w", ret.Before.Format(time.RFC3339), err)
	}
	if next != nil {
		j.respCursor, j.respCursorBefore, j.respCursorRefs = next, ret.Before, ret.ReferencesBefore
	}
	return st, next != nil, nil
}

func (j *Journal) pruneResponses(lower, upper []byte, ret ResponseRetention, max int) (st PruneStats, next []byte, err error) {
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return PruneStats{}, nil, err
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			st, next, err = PruneStats{}, nil, cerr
		}
	}()
	b := j.db.NewBatch()
	defer b.Close()
	seen, scan := 0, respScanFactor*max
	var refs refFloors
	ok := it.First()
	for ; ok; ok = it.Next() {
		if st.Responses == max || seen == scan {
			break
		}
		seen++
		v, err := it.ValueAndErr()
		if err != nil {
			return PruneStats{}, nil, err
		}
		rec, derr := DecodeResponseRecord(v)
		if derr != nil {
			continue
		}
		keep, err := ret.keeps(it.Key(), &rec)
		if err != nil {
			return PruneStats{}, nil, err
		}
		if !keep && rec.TxID != 0 && it.Key()[1] == spaceAnswered {
			// A reference's record goes only with every older one:
			// else an older record kept (a pre-auth's open hold) would
			// stand in for this newer one in Reference.
			if keep, err = refs.olderKept(j.db, ret, it.Key(), rec.TxID); err != nil {
				return PruneStats{}, nil, err
			}
		}
		if keep {
			continue
		}
		if err := b.Delete(it.Key(), nil); err != nil {
			return PruneStats{}, nil, err
		}
		if it.Key()[1] == spaceAnswered {
			// The record was its pair's terminal + batch index: an index
			// key takes its place while the pair is kept.
			if err := j.indexAnswered(b, it.Key(), rec.ResponseSeq); err != nil {
				return PruneStats{}, nil, err
			}
		}
		st.Responses++
	}
	if err := it.Error(); err != nil {
		return PruneStats{}, nil, err
	}
	if ok {
		next = append([]byte(nil), it.Key()...)
	}
	if !b.Empty() {
		if err := b.Commit(pebble.NoSync); err != nil {
			return PruneStats{}, nil, err
		}
	}
	return st, next, nil
}

// keeps reports whether rec, stored at key k, is kept by its own age,
// terminal batch and hold (ResponseRetention), regardless of the other
// records of its reference.
func (ret ResponseRetention) keeps(k []byte, rec *ResponseRecord) (bool, error) {
	// A record keeps its time to the second: the cuts are taken to the
	// second too, so that a record is deleted exactly when the time it
	// was answered, to the nanosecond, is before the cut's second.
	cut := ret.Before.Truncate(time.Second)
	if rec.TxID != 0 && !ret.ReferencesBefore.IsZero() && ret.ReferencesBefore.Before(ret.Before) {
		cut = ret.ReferencesBefore.Truncate(time.Second)
	}
	if !rec.Time.Before(cut) {
		return true, nil
	}
	if ret.Keep != nil {
		if term, batch, ok := responseKeyBatch(k); ok && ret.Keep(term, batch) {
			return true, nil
		}
	}
	if rec.TxID != 0 && ret.KeepReference != nil {
		return ret.KeepReference(rec.TxID)
	}
	return false, nil
}

// refFloors remembers, for the reference (terminal, batch, STAN) a prune
// pass last looked at, the lowest transaction id among its duplicate
// records that retention keeps on their own (keeps): the records of one
// reference are adjacent in key order, so each reference is read once.
type refFloors struct {
	prefix []byte // 'j o' terminal batch stan of the reference read
	floor  uint64 // lowest id kept; 0 when none is
}

// olderKept reports whether a duplicate record of the reference of key k
// with a transaction id below txid is kept (keeps): then the record at
// k, newer, must stay too, or Reference would name that older
// transaction for the reference (docs/journal.md#retention). A reference
// with more records than Reference reads (maxAnsweredDates) keeps them.
func (f *refFloors) olderKept(r pebble.Reader, ret ResponseRetention, k []byte, txid uint64) (bool, error) {
	n, ok := answeredRefPrefixLen(k)
	if !ok {
		return true, nil // damage: left for an operator
	}
	if f.prefix == nil || string(f.prefix) != string(k[:n]) {
		f.prefix = append(f.prefix[:0], k[:n]...)
		floor, err := keptFloor(r, ret, f.prefix)
		if err != nil {
			return false, err
		}
		f.floor = floor
	}
	return f.floor != 0 && f.floor < txid, nil
}

// keptFloor returns the lowest transaction id among the records under
// prefix (one reference's) that retention keeps on their own and the
// caller's older reference (OlderReference), 0 when there is none; 1 (keep every record) when the prefix holds more than
// maxAnsweredDates records.
func keptFloor(r pebble.Reader, ret ResponseRetention, prefix []byte) (floor uint64, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	if ret.OlderReference != nil {
		f, ok := answeredKeyFields(append(append([]byte(nil), prefix...), 0))
		if !ok {
			return 1, nil // damage: keep
		}
		if floor, err = ret.OlderReference(f[0], f[1], f[2]); err != nil {
			return 0, err
		}
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n > maxAnsweredDates {
			return 1, nil
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, err
		}
		rec, derr := DecodeResponseRecord(v)
		if derr != nil || rec.TxID == 0 || (floor != 0 && rec.TxID >= floor) {
			continue
		}
		keep, err := ret.keeps(it.Key(), &rec)
		if err != nil {
			return 0, err
		}
		if keep {
			floor = rec.TxID
		}
	}
	return floor, it.Error()
}

// answeredRefPrefixLen returns the length of the reference part of a
// duplicate record key: 'j o' and the length-prefixed terminal, batch and
// STAN, before the date.
func answeredRefPrefixLen(k []byte) (int, bool) {
	n := 2
	for range 3 {
		if len(k) < n+1 || len(k) < n+1+int(k[n]) {
			return 0, false
		}
		n += 1 + int(k[n])
	}
	return n, true
}

// indexAnswered writes, in b, the terminal + batch index key of the pair
// whose duplicate record k is being deleted, if the pair is still there.
func (j *Journal) indexAnswered(b *pebble.Batch, k []byte, responseSeq uint64) error {
	term, batch, ok := responseKeyBatch(k)
	if !ok || responseSeq < 2 {
		return nil // damage: left for an operator, like a record that does not decode
	}
	_, closer, err := j.db.Get(entryKey(responseSeq - 1))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	closer.Close()
	return b.Set(appendSeq(termBatchPrefix(nil, term, batch), responseSeq-1), pairMark, nil)
}

// responseKeyBatch reads the terminal and batch of a stored response key
// ('j p' len terminal len batch ...); ok is false for a key too short to
// hold them.
func responseKeyBatch(k []byte) (terminal, batch string, ok bool) {
	k = k[2:]
	var f [2]string
	for i := range f {
		if len(k) < 1 || len(k) < 1+int(k[0]) {
			return "", "", false
		}
		f[i], k = string(k[1:1+int(k[0])]), k[1+int(k[0]):]
	}
	return f[0], f[1], true
}
