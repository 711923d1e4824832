package switching

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
)

// encodeResponseV2 writes a duplicate record as version 2 did, before
// version 3 (docs/journal.md#duplicate-detection): the whole fingerprint,
// fixed-width MAK generation, sequence and nanosecond time, the txid.
func encodeResponseV2(fp [journal.FingerprintLen]byte, r journal.ResponseRecord) []byte {
	b := append([]byte{2}, fp[:]...)
	b = binary.BigEndian.AppendUint32(b, r.MAKGeneration)
	b = binary.BigEndian.AppendUint64(b, r.ResponseSeq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	b = binary.AppendUvarint(b, r.TxID)
	b = append(append(b, byte(len(r.ResponseCode))), r.ResponseCode...)
	b = append(b, 0, 0) // no MAK check value, no response bytes
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// onlyDuplicateRecord returns the key and value of the one duplicate
// record ('j o') the switch holds.
func onlyDuplicateRecord(t *testing.T, sw *Switch) (key, value []byte) {
	t.Helper()
	it, err := sw.db.NewIter(&pebble.IterOptions{LowerBound: []byte("jo"), UpperBound: []byte("jp")})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if key != nil {
			t.Fatalf("duplicate records %q and %q, want one", key, it.Key())
		}
		key, value = bytes.Clone(it.Key()), bytes.Clone(it.Value())
	}
	if key == nil {
		t.Fatal("no duplicate record")
	}
	return key, value
}

// TestDuplicateRecordWrittenBefore: a request answered before the
// duplicate record's version 3 — its record version 2, with the whole
// 32-byte fingerprint — is answered again from it: its retransmission
// gets the stored response byte for byte and the card is debited once;
// other content under its STAN gets 94, and so does a request whose
// fingerprint agrees with the old record's in the 16 bytes a new record
// keeps but not in the rest (an old record is compared on all 32).
func TestDuplicateRecordWrittenBefore(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Consume(cardStaff, 1234, "")
	first := do(t, term, req, err)
	expectRC(t, "consume", first, spec.RCApproved)

	key, v := onlyDuplicateRecord(t, sw)
	if v[0] != 3 {
		t.Fatalf("duplicate record version %d, want 3", v[0])
	}
	rec, err := journal.DecodeResponseRecord(v)
	if err != nil || rec.TxID == 0 {
		t.Fatalf("duplicate record %+v, %v", rec, err)
	}
	// The fingerprint the switch takes: SHA-256 of the request less its
	// MAC, as a retransmission sends it again.
	again := *req
	var block []byte
	if _, err := spec.EncodePOSWithMAC(&again, func(b []byte) ([]byte, error) {
		block = bytes.Clone(b)
		return make([]byte, 8), nil
	}); err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256(block)
	if !rec.MatchesFingerprint(fp) || !bytes.Equal(rec.Fingerprint[:journal.StoredFingerprintLen], fp[:journal.StoredFingerprintLen]) {
		t.Fatalf("record fingerprint %x, request's %x", rec.Fingerprint, fp)
	}

	// The record as the switch wrote it before version 3.
	putV2 := func(fp [journal.FingerprintLen]byte) {
		t.Helper()
		old := rec
		old.Time = rec.Time.Add(123 * time.Nanosecond)
		b := encodeResponseV2(fp, old)
		if got, err := journal.DecodeResponseRecord(b); err != nil || got.Fingerprint != fp || got.ResponseSeq != rec.ResponseSeq {
			t.Fatalf("version 2 record: %+v, %v", got, err)
		}
		if err := sw.db.Set(key, b, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	putV2(fp)
	again.MAC = nil
	second := do(t, term, &again, nil)
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Fatalf("retransmission answered under version 2 got another response\nfirst  %X\nsecond %X", first.Raw, second.Raw)
	}
	expectPurses(t, sw, cardStaff, 100000-1234, 0)
	if _, v := onlyDuplicateRecord(t, sw); v[0] != 2 {
		t.Fatalf("a replay rewrote the duplicate record (version %d)", v[0])
	}

	other := again
	other.MAC = nil
	other.Amount = 999
	expectRC(t, "other content under a version 2 record's STAN", do(t, term, &other, nil), spec.RCDuplicate)

	late := fp
	late[20] ^= 1
	putV2(late)
	again.MAC = nil
	expectRC(t, "a version 2 record differing after 16 bytes", do(t, term, &again, nil), spec.RCDuplicate)
	expectPurses(t, sw, cardStaff, 100000-1234, 0)
}
