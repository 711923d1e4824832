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

// FingerprintLen is the size of ResponseRecord.Fingerprint;
// StoredFingerprintLen how much of it a record keeps (see package record
// for why 128 bits suffice).
const (
	FingerprintLen       = record.FingerprintLen
	StoredFingerprintLen = record.StoredFingerprintLen
)

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

// keyLen is the length of the key appendKeyIn appends.
func (k *DuplicateKey) keyLen() int {
	return 2 + 4 + len(k.Terminal) + len(k.Batch) + len(k.STAN) + len(k.Date)
}

// putKeyIn writes into dst, of length keyLen, the key appendKeyIn
// appends; k is valid (k.validate: every part shorter than 256 bytes).
func (k *DuplicateKey) putKeyIn(dst []byte, space byte) {
	_ = dst[k.keyLen()-1]
	dst[0], dst[1] = prefixJournal, space
	off := putKeyStr(dst, 2, k.Terminal)
	off = putKeyStr(dst, off, k.Batch)
	off = putKeyStr(dst, off, k.STAN)
	putKeyStr(dst, off, k.Date)
}

// putKeyStr writes s as appendStr appends it at dst[off:], returning
// the offset after it.
func putKeyStr(dst []byte, off int, s string) int {
	dst[off] = byte(len(s))
	return off + 1 + copy(dst[off+1:], s)
}

// PutResponse writes the response record for key into b, in the same batch
// as the transaction it answers, replacing any earlier record for key.
func (j *Journal) PutResponse(b *pebble.Batch, key DuplicateKey, rec ResponseRecord) error {
	if b == nil {
		return errors.New("journal: put response: nil batch")
	}
	if err := key.validate(); err != nil {
		return fmt.Errorf("journal: put response terminal %q stan %q: %w", key.Terminal, key.STAN, err)
	}
	return j.putResponse(b, spaceResponse, &key, &rec)
}

// putResponse writes rec under key in space into b; the caller has
// checked b and key (key.validate).
func (j *Journal) putResponse(b *pebble.Batch, space byte, key *DuplicateKey, rec *ResponseRecord) error {
	n, err := rec.Size()
	if err != nil {
		return fmt.Errorf("journal: put response terminal %s batch %s stan %s: %w", key.Terminal, key.Batch, key.STAN, err)
	}
	op := b.SetDeferred(key.keyLen(), n)
	key.putKeyIn(op.Key, space)
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

// DamagedRecord names a duplicate record ('j o') that does not decode,
// met by a reference lookup: its key's terminal, batch, STAN and date (no
// card data: the key holds none, and the record's bytes are never
// reported), the decoding error, and what the lookup did about it.
type DamagedRecord struct {
	Terminal, Batch, STAN, Date string
	// Lookup is LookupReference (the lookup of that very reference
	// failed) or LookupBatch (a batch walk skipped the record).
	Lookup string
	Err    error
}

// The values of DamagedRecord.Lookup.
const (
	LookupReference = "reference"
	LookupBatch     = "batch"
)

// DamagedRecordError is Reference's error when one of the records of the
// reference looked up does not decode: the lookup fails closed, as that
// record may be the newest. It wraps ErrCorrupt.
type DamagedRecordError struct{ Record DamagedRecord }

func (e *DamagedRecordError) Error() string {
	r := e.Record
	return fmt.Sprintf("duplicate record terminal %s batch %s stan %s date %s: %v", r.Terminal, r.Batch, r.STAN, r.Date, r.Err)
}

func (e *DamagedRecordError) Unwrap() error { return e.Err() }

// Err returns the decoding error (it wraps ErrCorrupt).
func (e *DamagedRecordError) Err() error { return e.Record.Err }

// damaged reports the undecodable record at key k (Options.OnDamagedRecord)
// and returns it.
func (j *Journal) damaged(k []byte, lookup string, err error) DamagedRecord {
	d := DamagedRecord{Lookup: lookup, Err: err}
	if f, ok := answeredKeyFields(k); ok {
		d.Terminal, d.Batch, d.STAN, d.Date = f[0], f[1], f[2], f[3]
	}
	if j.opts.OnDamagedRecord != nil {
		j.opts.OnDamagedRecord(d)
	}
	return d
}

// answeredKeyFields reads the terminal, batch, STAN and date of a
// duplicate record key ('j o' and four length-prefixed strings); ok is
// false for a key that does not hold them.
func answeredKeyFields(k []byte) (f [4]string, ok bool) {
	if len(k) < 2 {
		return f, false
	}
	k = k[2:]
	for i := range f {
		if len(k) < 1 || len(k) < 1+int(k[0]) {
			return f, false
		}
		f[i], k = string(k[1:1+int(k[0])]), k[1+int(k[0]):]
	}
	return f, len(k) == 0
}

// Reference returns the ledger transaction id the newest duplicate record
// of terminal, batch and STAN carries (ResponseRecord.TxID), 0 when none
// does. The record's key also holds a date, which the ledger's reference
// does not: the records of every date are read (one prefix, at most
// maxAnsweredDates of them, else an error) and the highest id wins — the
// ledger hands its ids out in order, so that is the newest transaction
// answered under the reference, as the ledger's own reference record,
// rewritten by each, would name (docs/journal.md#what-one-consume-writes).
// A record of this reference that does not decode may be the newest: the
// lookup fails closed with a *DamagedRecordError (wrapping ErrCorrupt),
// after reporting it (Options.OnDamagedRecord). Records of other
// references are not read. r is the reader to use (a snapshot, or nil for
// committed state).
func (j *Journal) Reference(r pebble.Reader, terminal, batch, stan string) (uint64, error) {
	if terminal == "" || len(terminal) > maxTerminalLen || batch == "" || len(batch) > maxBatchLen || stan == "" || len(stan) > maxSTANLen {
		return 0, fmt.Errorf("journal: reference %q/%q/%q: %w", terminal, batch, stan, ErrInvalidEntry)
	}
	var buf [2 + 3 + maxTerminalLen + maxBatchLen + maxSTANLen]byte
	// Length-prefixed fields: the prefix holds this reference's records
	// (of every date) and no other's.
	prefix := appendStr(appendStr(appendStr(append(buf[:0], prefixJournal, spaceAnswered), terminal), batch), stan)
	var newest uint64
	n := 0
	err := j.answered(r, prefix, func(_ []byte, rec *ResponseRecord) error {
		if n++; n > maxAnsweredDates {
			return fmt.Errorf("more than %d duplicate records", maxAnsweredDates)
		}
		newest = max(newest, rec.TxID)
		return nil
	}, func(k []byte, err error) error {
		return &DamagedRecordError{Record: j.damaged(k, LookupReference, err)}
	})
	if err != nil {
		return 0, fmt.Errorf("journal: reference %s/%s/%s: %w", terminal, batch, stan, err)
	}
	return newest, nil
}

// BatchReferences calls fn, in STAN order, for every STAN of a terminal
// batch whose duplicate records carry a ledger transaction id, with the
// highest id among that STAN's records (as Reference). A record that does
// not decode is skipped and reported (Options.OnDamagedRecord): one
// damaged record does not stop the walk of a whole batch (its settlement
// totals). r is the reader to use (a snapshot, or nil for committed
// state). fn's error stops the walk and is returned.
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
			j.damaged(k, LookupBatch, fmt.Errorf("%w: duplicate record key of %d bytes", ErrCorrupt, len(k)))
			return nil
		}
		if s := rest[1 : 1+int(rest[0])]; string(s) != stan {
			if err := flush(); err != nil {
				return err
			}
			stan = string(s)
		}
		newest = max(newest, rec.TxID)
		return nil
	}, func(k []byte, err error) error {
		j.damaged(k, LookupBatch, err)
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
// carries a transaction id, in key order, and damaged for every record
// that does not decode; either's error stops the walk and is returned.
func (j *Journal) answered(r pebble.Reader, prefix []byte, fn func(k []byte, rec *ResponseRecord) error, damaged func(k []byte, err error) error) (err error) {
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
			if err := damaged(it.Key(), err); err != nil {
				return err
			}
			continue
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
