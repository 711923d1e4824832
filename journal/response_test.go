package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal/internal/record"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func sampleResponse() ResponseRecord {
	return ResponseRecord{
		Fingerprint:   sha256.Sum256([]byte("0200 consume 6230151000000000012 000000001000")),
		ResponseCode:  "00",
		Response:      []byte{0x02, 0x10, 0x30, 0x38, 0x00, 0x00},
		MAKGeneration: 7,
		MAKCheckValue: []byte{0x82, 0xE1, 0x36, 0x65},
		ResponseSeq:   42,
		Time:          time.Date(2025, 3, 14, 10, 0, 0, 123, time.UTC),
	}
}

// expectStored checks that got is what a record keeps of want: the first
// 16 bytes of its fingerprint, its time to the second, every other field.
func expectStored(t *testing.T, got, want ResponseRecord) {
	t.Helper()
	var fp [FingerprintLen]byte
	copy(fp[:record.StoredFingerprintLen], want.Fingerprint[:])
	if got.Fingerprint != fp || !got.MatchesFingerprint(want.Fingerprint) {
		t.Fatalf("fingerprint %x, want %x", got.Fingerprint, fp)
	}
	if !got.Time.Equal(want.Time.Truncate(time.Second)) {
		t.Fatalf("time %s, want %s to the second", got.Time, want.Time)
	}
	got.Fingerprint, got.Time = want.Fingerprint, want.Time
	if !reflect.DeepEqual(got.ResponseCode, want.ResponseCode) || !reflect.DeepEqual(got.Response, want.Response) ||
		got.MAKGeneration != want.MAKGeneration || !reflect.DeepEqual(got.MAKCheckValue, want.MAKCheckValue) ||
		got.ResponseSeq != want.ResponseSeq || got.TxID != want.TxID {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestResponseStore(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	key := DuplicateKey{Terminal: "10000001", Batch: "000001", STAN: "000123", Date: "0314"}

	if _, found, err := j.GetResponse(key); err != nil || found {
		t.Fatalf("empty store: found=%v err=%v", found, err)
	}
	rec := sampleResponse()
	b := db.NewBatch()
	if err := j.PutResponse(b, key, rec); err != nil {
		t.Fatal(err)
	}
	// Nothing is visible until the caller commits the transaction's batch.
	if _, found, _ := j.GetResponse(key); found {
		t.Fatal("response visible before commit")
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	got, found, err := j.GetResponse(key)
	if err != nil || !found {
		t.Fatalf("after commit: found=%v err=%v", found, err)
	}
	expectStored(t, got, rec)

	// Keys differing in any one part, or whose parts would concatenate to
	// the same string, are separate.
	for _, other := range []DuplicateKey{
		{Terminal: "10000002", Batch: "000001", STAN: "000123", Date: "0314"},
		{Terminal: "10000001", Batch: "000002", STAN: "000123", Date: "0314"},
		{Terminal: "10000001", Batch: "000001", STAN: "000124", Date: "0314"},
		{Terminal: "10000001", Batch: "000001", STAN: "000123", Date: "0315"},
		{Terminal: "100000010", Batch: "00001", STAN: "000123", Date: "0314"},
	} {
		if _, found, err := j.GetResponse(other); err != nil || found {
			t.Fatalf("key %+v: found=%v err=%v", other, found, err)
		}
	}

	// A later Put replaces the record (the switch re-MACs after a key change).
	rec2 := rec
	rec2.MAKGeneration, rec2.Response = 8, []byte{0x02, 0x10}
	b = db.NewBatch()
	if err := j.PutResponse(b, key, rec2); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if got, _, _ := j.GetResponse(key); got.MAKGeneration != 8 || !bytes.Equal(got.Response, rec2.Response) {
		t.Fatalf("after replace: %+v", got)
	}
}

func TestResponseStoreRejectsInvalid(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	good := DuplicateKey{Terminal: "10000001", Batch: "000001", STAN: "000123", Date: "0314"}
	keys := []DuplicateKey{
		{Batch: "000001", STAN: "000123", Date: "0314"},
		{Terminal: "10000001", STAN: "000123", Date: "0314"},
		{Terminal: "10000001", Batch: "000001", Date: "0314"},
		{Terminal: "10000001", Batch: "000001", STAN: "000123"},
		{Terminal: strings.Repeat("1", maxTerminalLen+1), Batch: "000001", STAN: "000123", Date: "0314"},
		{Terminal: "10000001", Batch: "000001", STAN: "000123", Date: "202503140"},
	}
	b := db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		if err := j.PutResponse(b, k, sampleResponse()); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("PutResponse %+v: %v, want ErrInvalidEntry", k, err)
		}
		if _, _, err := j.GetResponse(k); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("GetResponse %+v: %v, want ErrInvalidEntry", k, err)
		}
	}
	recs := []func(r *ResponseRecord){
		func(r *ResponseRecord) { r.Time = time.Time{} },
		func(r *ResponseRecord) { r.ResponseCode = "00000" },
		func(r *ResponseRecord) { r.MAKCheckValue = make([]byte, record.MaxKCVLen+1) },
		func(r *ResponseRecord) { r.Response = make([]byte, MaxRawLen+1) },
	}
	for i, change := range recs {
		r := sampleResponse()
		change(&r)
		if err := j.PutResponse(b, good, r); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("record %d: %v, want ErrInvalidEntry", i, err)
		}
	}
	if b.Count() != 0 {
		t.Fatalf("rejected puts left %d operations in the batch", b.Count())
	}
}

func TestResponseSTANs(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	b := db.NewBatch()
	keys := []DuplicateKey{
		{Terminal: "10000001", Batch: "000001", STAN: "0200000007", Date: "0314"},
		{Terminal: "10000001", Batch: "000001", STAN: "0400000003", Date: "0314"},
		{Terminal: "10000001", Batch: "000002", STAN: "0200000099", Date: "0314"}, // another batch
		{Terminal: "1000000", Batch: "1000001", STAN: "0200000055", Date: "0314"}, // a prefix of the first terminal
	}
	for _, k := range keys {
		if err := j.PutResponse(b, k, sampleResponse()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := j.ResponseSTANs("10000001", "000001", func(s string) bool { got = append(got, s); return true }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"0200000007", "0400000003"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("STANs %q, want %q", got, want)
	}
	if err := j.ResponseSTANs("", "000001", func(string) bool { return true }); err == nil {
		t.Fatal("empty terminal accepted")
	}
}

// storedV2 is a record as version 2 wrote it (before version 3): the
// whole SHA-256 fingerprint of sampleResponse, MAK generation 7, response
// sequence 42, time 2025-03-14T10:00:00.000000123Z, txid 300, rc 00.
const storedV2 = "02ed14042decae345104518f4c2c0ab1dafbc28c895691809e972d645b28c4738600000007000000000000002a182ca30585c5407bac020230300000651b28c6"

// TestResponseRecordWrittenBefore: a version 2 record still reads, and
// compares all 32 bytes of its fingerprint; a new record compares the 16
// it keeps.
func TestResponseRecordWrittenBefore(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	key := DuplicateKey{Terminal: "10000001", Batch: "000001", STAN: "000123", Date: "0314"}
	v2, err := hex.DecodeString(storedV2)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(key.appendKeyIn(nil, spaceAnswered), v2, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	got, found, err := j.GetResponse(key)
	if err != nil || !found {
		t.Fatalf("version 2 record: found %v, %v", found, err)
	}
	want := sampleResponse()
	if got.Fingerprint != want.Fingerprint || got.ResponseSeq != 42 || got.TxID != 300 || got.ResponseCode != "00" ||
		got.MAKGeneration != 7 || !got.Time.Equal(want.Time) {
		t.Fatalf("version 2 record: %+v", got)
	}
	late := want.Fingerprint
	late[31] ^= 1
	if !got.MatchesFingerprint(want.Fingerprint) || got.MatchesFingerprint(late) {
		t.Fatal("a version 2 record is not compared on its whole fingerprint")
	}
	// Rewritten by PutResponse, it is version 3 and keeps 16 bytes.
	b := db.NewBatch()
	defer b.Close()
	if err := j.PutResponse(b, key, want); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	v, closer, err := db.Get(key.appendKeyIn(nil, spaceResponse))
	if err != nil {
		t.Fatal(err)
	}
	version := v[0]
	closer.Close()
	if version != 3 {
		t.Fatalf("PutResponse wrote version %d", version)
	}
	got, _, err = j.GetResponse(key) // 'j o' first: the version 2 record
	if err != nil || got.Fingerprint != want.Fingerprint {
		t.Fatalf("'j o' record: %+v, %v", got, err)
	}
	if err := db.Delete(key.appendKeyIn(nil, spaceAnswered), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	got, _, err = j.GetResponse(key)
	if err != nil || !got.MatchesFingerprint(want.Fingerprint) || !got.MatchesFingerprint(late) {
		t.Fatalf("version 3 record: %+v, %v", got, err)
	}
}

// TestPruneResponsesToTheSecond: a record keeps its time to the second,
// retention takes its cut to the second: a record answered at 10:00:00.6
// (kept as 10:00:00) and one written before version 3 at
// 10:00:00.000000123 are both kept by a cut at 10:00:00.9 and deleted by
// one at 10:00:01 — as their exact times compare with the cut's second.
func TestPruneResponsesToTheSecond(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	newKey := DuplicateKey{Terminal: "10000001", Batch: "000001", STAN: "000001", Date: "0314"}
	oldKey := newKey
	oldKey.STAN = "000002"
	rec := sampleResponse()
	rec.Time = time.Date(2025, 3, 14, 10, 0, 0, 600_000_000, time.UTC)
	b := db.NewBatch()
	defer b.Close()
	if err := j.PutResponse(b, newKey, rec); err != nil {
		t.Fatal(err)
	}
	v2, err := hex.DecodeString(storedV2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Set(oldKey.appendKeyIn(nil, spaceResponse), v2, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cut     time.Time
		deleted int
	}{
		{time.Date(2025, 3, 14, 10, 0, 0, 900_000_000, time.UTC), 0},
		{time.Date(2025, 3, 14, 10, 0, 1, 0, time.UTC), 2},
	} {
		st, more, err := j.PruneResponses(tc.cut, 10, nil)
		if err != nil || more || st.Responses != tc.deleted {
			t.Fatalf("cut %s: %+v more %v %v; want %d deleted", tc.cut.Format(time.RFC3339Nano), st, more, err, tc.deleted)
		}
	}
}
