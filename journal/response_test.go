package journal

import (
	"bytes"
	"crypto/sha256"
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
	if !reflect.DeepEqual(got, rec) {
		t.Fatalf("got %+v\nwant %+v", got, rec)
	}

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
