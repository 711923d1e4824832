package journal

import (
	"errors"
	"fmt"

	"github.com/cardswitch/cardswitch/journal/internal/record"
	"github.com/cockroachdb/pebble/v2"
)

// DuplicateKey names one POS request for duplicate detection (DESIGN
// §4.7): the same terminal, batch, STAN and date. Date is whatever date the
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

func (k DuplicateKey) appendKey(dst []byte) []byte {
	dst = append(dst, prefixJournal, spaceResponse)
	dst = appendStr(dst, k.Terminal)
	dst = appendStr(dst, k.Batch)
	dst = appendStr(dst, k.STAN)
	return appendStr(dst, k.Date)
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
	n, err := rec.Size()
	if err != nil {
		return fmt.Errorf("journal: put response terminal %s batch %s stan %s: %w", key.Terminal, key.Batch, key.STAN, err)
	}
	var buf [2 + 4 + maxTerminalLen + maxBatchLen + maxSTANLen + maxDupDateLen]byte
	k := key.appendKey(buf[:0])
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
	v, closer, err := j.db.Get(key.appendKey(buf[:0]))
	if errors.Is(err, pebble.ErrNotFound) {
		return ResponseRecord{}, false, nil
	}
	if err != nil {
		return ResponseRecord{}, false, fmt.Errorf("journal: get response terminal %s batch %s stan %s: %w", key.Terminal, key.Batch, key.STAN, err)
	}
	defer closer.Close()
	rec, err = DecodeResponseRecord(v)
	if err != nil {
		return ResponseRecord{}, false, fmt.Errorf("journal: get response terminal %s batch %s stan %s: %w", key.Terminal, key.Batch, key.STAN, err)
	}
	return rec, true, nil
}
