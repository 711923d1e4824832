package journal

import (
	"errors"
	"fmt"

	"github.com/cardswitch/cardswitch/journal/internal/record"
	"github.com/cockroachdb/pebble/v2"
)

// DuplicateKey names one POS request for duplicate detection
// (docs/pos-dialect.md#rules): the same terminal, batch, STAN and date. Date is whatever date the
// switch matches on (field 13 MMDD or the business date YYYYMMDD); the
// journal only bounds it.
type DuplicateKey struct {
	Terminal string
	Batch    string
	STAN     string
	Date     string
}

// maxDupDateLen bounds DuplicateKey.Date (MMDD or YYYYMMDD).
const maxDupDateLen = 8

// ResponseRecord is what the switch keeps about an answered request so that
// a duplicate gets the same answer; see package record for its fields and
// encoding.
type ResponseRecord = record.ResponseRecord

// FingerprintLen is the size of ResponseRecord.Fingerprint.
const FingerprintLen = record.FingerprintLen

// DecodeResponseRecord decodes a stored response record; errors wrap
// ErrCorrupt.
func DecodeResponseRecord(b []byte) (ResponseRecord, error) { return record.DecodeResponseRecord(b) }

func (k DuplicateKey) validate() error {
	switch {
	case k.Terminal == "" || len(k.Terminal) > maxTerminalLen:
		return fmt.Errorf("%w: duplicate key terminal %q", ErrInvalidEntry, k.Terminal)
	case k.Batch == "" || len(k.Batch) > maxBatchLen:
		return fmt.Errorf("%w: duplicate key batch %q", ErrInvalidEntry, k.Batch)
	case k.STAN == "" || len(k.STAN) > maxSTANLen:
		return fmt.Errorf("%w: duplicate key stan %q", ErrInvalidEntry, k.STAN)
	case k.Date == "" || len(k.Date) > maxDupDateLen:
		return fmt.Errorf("%w: duplicate key date %q", ErrInvalidEntry, k.Date)
	}
	return nil
}

func (k DuplicateKey) appendKey(dst []byte) []byte { return k.appendKeyIn(dst, spaceResponse) }

func (k DuplicateKey) appendKeyIn(dst []byte, space byte) []byte {
	dst = append(dst, prefixJournal, space)
	dst = appendStr(dst, k.Terminal)
	dst = appendStr(dst, k.Batch)
	dst = appendStr(dst, k.STAN)
	return appendStr(dst, k.Date)
}

// PutResponse writes the response record for key into b, in the same batch
// as the transaction it answers, replacing any earlier record for key.
func (j *Journal) PutResponse(b *pebble.Batch, key DuplicateKey, rec ResponseRecord) error {
	return j.putResponse(b, spaceResponse, key, rec)
}

func (j *Journal) putResponse(b *pebble.Batch, space byte, key DuplicateKey, rec ResponseRecord) error {
	if b == nil {
		return errors.New("journal: put response: nil batch")
	}
	if err := key.validate(); err != nil {
		return fmt.Errorf("journal: put response terminal %q stan %q: %w", key.Terminal, key.STAN, err)
	}
	n, err := rec.Size()
	if err != nil {
		return fmt.Errorf("journal: put response terminal %s batch %s stan %s: %w", key.Terminal, key.Batch, key.STAN, err)
	}
	var buf [2 + 4 + maxTerminalLen + maxBatchLen + maxSTANLen + maxDupDateLen]byte
	k := key.appendKeyIn(buf[:0], space)
	op := b.SetDeferred(len(k), n)
	copy(op.Key, k)
	rec.EncodeInto(op.Value)
	if err := op.Finish(); err != nil {
		return fmt.Errorf("journal: put response terminal %s batch %s stan %s: %w", key.Terminal, key.Batch, key.STAN, err)
	}
	return nil
}

// GetResponse returns the committed response record for key. found is false
// when there is none. It reads committed state only: the switch must not
// process two requests with the same key at once (a terminal has one
// request outstanding; the switch serializes per terminal).
func (j *Journal) GetResponse(key DuplicateKey) (rec ResponseRecord, found bool, err error) {
	if err := key.validate(); err != nil {
		return ResponseRecord{}, false, fmt.Errorf("journal: get response terminal %q stan %q: %w", key.Terminal, key.STAN, err)
	}
	var buf [2 + 4 + maxTerminalLen + maxBatchLen + maxSTANLen + maxDupDateLen]byte
	// The record AppendAnswered wrote, else one PutResponse wrote.
	for _, space := range [2]byte{spaceAnswered, spaceResponse} {
		v, closer, err := j.db.Get(key.appendKeyIn(buf[:0], space))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return ResponseRecord{}, false, fmt.Errorf("journal: get response terminal %s batch %s stan %s: %w", key.Terminal, key.Batch, key.STAN, err)
		}
		rec, err = DecodeResponseRecord(v)
		closer.Close()
		if err != nil {
			return ResponseRecord{}, false, fmt.Errorf("journal: get response terminal %s batch %s stan %s: %w", key.Terminal, key.Batch, key.STAN, err)
		}
		return rec, true, nil
	}
	return ResponseRecord{}, false, nil
}

// ResponseSTANs calls fn with the STAN part of every stored response of
// one terminal batch, in key order, until fn returns false. The switch
// reads it once per terminal batch after a start, to learn which trace
// numbers it has answered before and so skip the duplicate lookup for the
// ones it cannot have seen.
func (j *Journal) ResponseSTANs(terminal, batch string, fn func(stan string) bool) error {
	if terminal == "" || len(terminal) > maxTerminalLen || batch == "" || len(batch) > maxBatchLen {
		return fmt.Errorf("journal: response STANs terminal %q batch %q: %w", terminal, batch, ErrInvalidEntry)
	}
	for _, space := range [2]byte{spaceAnswered, spaceResponse} {
		more, err := j.responseSTANs(appendStr(appendStr([]byte{prefixJournal, space}, terminal), batch), fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (j *Journal) responseSTANs(prefix []byte, fn func(stan string) bool) (more bool, err error) {
	iter, err := j.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return false, fmt.Errorf("journal: response STANs: %w", err)
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		rest := iter.Key()[len(prefix):]
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return false, fmt.Errorf("journal: response key %q: %w", iter.Key(), ErrCorrupt)
		}
		if !fn(string(rest[1 : 1+int(rest[0])])) {
			return false, iter.Error()
		}
	}
	return true, iter.Error()
}

// maxAnsweredDates bounds the duplicate records one Reference lookup
// reads: one terminal reference (terminal, batch, STAN) is answered once
// per date at most, and its records live the ledger's lookup window, or
// longer while the terminal's batch stays open.
const maxAnsweredDates = 1024

// Reference returns the ledger transaction id the newest duplicate record
// of terminal, batch and STAN carries (ResponseRecord.TxID), 0 when none
// does. The record's key also holds a date, which the ledger's reference
// does not: the records of every date are read (one prefix, at most
// maxAnsweredDates of them, else an error) and the highest id wins — the
// ledger hands its ids out in order, so that is the newest transaction
// answered under the reference, as the ledger's own reference record,
// rewritten by each, would name (docs/journal.md#what-one-consume-writes).
// r is the reader to use (a snapshot, or nil for committed state).
func (j *Journal) Reference(r pebble.Reader, terminal, batch, stan string) (uint64, error) {
	if terminal == "" || len(terminal) > maxTerminalLen || batch == "" || len(batch) > maxBatchLen || stan == "" || len(stan) > maxSTANLen {
		return 0, fmt.Errorf("journal: reference %q/%q/%q: %w", terminal, batch, stan, ErrInvalidEntry)
	}
	var buf [2 + 3 + maxTerminalLen + maxBatchLen + maxSTANLen]byte
	prefix := appendStr(appendStr(appendStr(append(buf[:0], prefixJournal, spaceAnswered), terminal), batch), stan)
	var newest uint64
	n := 0
	err := j.answered(r, prefix, func(_ []byte, rec *ResponseRecord) error {
		if n++; n > maxAnsweredDates {
			return fmt.Errorf("more than %d duplicate records", maxAnsweredDates)
		}
		newest = max(newest, rec.TxID)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: reference %s/%s/%s: %w", terminal, batch, stan, err)
	}
	return newest, nil
}

// BatchReferences calls fn, in STAN order, for every STAN of a terminal
// batch whose duplicate records carry a ledger transaction id, with the
// highest id among that STAN's records (as Reference). r is the reader to
// use (a snapshot, or nil for committed state). fn's error stops the walk
// and is returned.
func (j *Journal) BatchReferences(r pebble.Reader, terminal, batch string, fn func(stan string, txid uint64) error) error {
	if terminal == "" || len(terminal) > maxTerminalLen || batch == "" || len(batch) > maxBatchLen {
		return fmt.Errorf("journal: batch references %q/%q: %w", terminal, batch, ErrInvalidEntry)
	}
	prefix := appendStr(appendStr([]byte{prefixJournal, spaceAnswered}, terminal), batch)
	var (
		stan   string
		newest uint64
	)
	flush := func() error {
		if newest == 0 {
			return nil
		}
		err := fn(stan, newest)
		newest = 0
		return err
	}
	err := j.answered(r, prefix, func(k []byte, rec *ResponseRecord) error {
		rest := k[len(prefix):]
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return fmt.Errorf("duplicate record key %q: %w", k, ErrCorrupt)
		}
		if s := rest[1 : 1+int(rest[0])]; string(s) != stan {
			if err := flush(); err != nil {
				return err
			}
			stan = string(s)
		}
		newest = max(newest, rec.TxID)
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("journal: batch references %s/%s: %w", terminal, batch, err)
	}
	return nil
}

// answered calls fn for every duplicate record ('j o') under prefix that
// carries a transaction id, in key order.
func (j *Journal) answered(r pebble.Reader, prefix []byte, fn func(k []byte, rec *ResponseRecord) error) (err error) {
	if r == nil {
		r = j.db
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		rec, err := DecodeResponseRecord(v)
		if err != nil {
			return fmt.Errorf("duplicate record %q: %w", it.Key(), err)
		}
		if rec.TxID == 0 {
			continue
		}
		if err := fn(it.Key(), &rec); err != nil {
			return err
		}
	}
	return it.Error()
}
