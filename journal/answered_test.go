package journal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestAppendAnswered: an answered pair costs one key less than a pair and
// a stored response (its duplicate record is its terminal + batch index),
// and every read finds it as before — by key, by terminal and batch in
// sequence order among other entries, by trace number — and after its
// duplicate record is pruned an index key takes its place.
func TestAppendAnswered(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	const day, term, batch = "20250314", "10000001", "000001"
	old := time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

	b := db.NewBatch()
	// seq 1, 2: a rejection (a pair with no duplicate record)
	if _, _, err := j.AppendPair(b, entryFor(day, term, batch, "000009", "", In), entryFor(day, term, batch, "000009", "", Out)); err != nil {
		t.Fatal(err)
	}
	// seq 3, 4: answered, trace number 000007 (sorts before 000009)
	key := DuplicateKey{Terminal: term, Batch: batch, STAN: "000007", Date: "0314"}
	rec := ResponseRecord{ResponseCode: "00", Time: old, MAKGeneration: 3}
	rec.Fingerprint[0] = 7
	if _, _, err := j.AppendAnswered(b, entryFor(day, term, batch, "000007", "", In), entryFor(day, term, batch, "000007", "000000000007", Out), key, rec); err != nil {
		t.Fatal(err)
	}
	// pair + terminal = 2; answered pair + RRN + duplicate record = 3
	// (the sequence carries the day: no day index key).
	if b.Count() != 5 {
		t.Fatalf("batch holds %d keys, want 5", b.Count())
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	// seq 5, 6: another answered one, new trace number, kept young.
	b = db.NewBatch()
	young := key
	young.STAN = "000008"
	yrec := rec
	yrec.Time = old.Add(48 * time.Hour)
	if _, _, err := j.AppendAnswered(b, entryFor(day, term, batch, "000008", "", In), entryFor(day, term, batch, "000008", "", Out), young, yrec); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	other := key
	other.Batch = "000002"
	bad := db.NewBatch()
	if _, _, err := j.AppendAnswered(bad, entryFor(day, term, batch, "000001", "", In), entryFor(day, term, batch, "000001", "", Out), other, rec); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("duplicate key of another batch: %v, want ErrInvalidEntry", err)
	}
	bad.Close()

	got, found, err := j.GetResponse(key)
	if err != nil || !found || got.ResponseSeq != sq(day, 4) || !got.MatchesFingerprint(rec.Fingerprint) || got.MAKGeneration != 3 {
		t.Fatalf("GetResponse: %+v %v %v", got, found, err)
	}
	if e, err := j.Get(got.ResponseSeq); err != nil || e.STAN != "000007" || e.Direction != Out {
		t.Fatalf("the stored answer: %+v %v", e, err)
	}
	list := func() string {
		t.Helper()
		es, err := j.ByTerminalBatch(term, batch, 100)
		if err != nil {
			t.Fatal(err)
		}
		return seqsOf(es)
	}
	if s := list(); s != "1 2 3 4 5 6" {
		t.Fatalf("by terminal batch: %q, want 1 2 3 4 5 6", s)
	}
	if es, err := j.ByTerminalBatch(term, batch, 3); err != nil || seqsOf(es) != "1 2 3" {
		t.Fatalf("limit 3: %q %v", seqsOf(es), err)
	}
	var stans []string
	if err := j.ResponseSTANs(term, batch, func(s string) bool { stans = append(stans, s); return true }); err != nil || len(stans) != 2 || stans[0] != "000007" {
		t.Fatalf("response STANs %q %v", stans, err)
	}

	// Past the first record's time: it goes, an index key takes its place.
	st, more, err := j.PruneResponses(old.Add(time.Hour), 100, nil)
	if err != nil || more || st.Responses != 1 {
		t.Fatalf("prune responses: %+v %v %v", st, more, err)
	}
	if _, found, _ := j.GetResponse(key); found {
		t.Fatal("pruned duplicate record still answers")
	}
	if s := list(); s != "1 2 3 4 5 6" {
		t.Fatalf("by terminal batch after pruning the duplicate record: %q", s)
	}
	if _, closer, err := db.Get(appendSeq(termBatchPrefix(nil, term, batch), sq(day, 3))); err != nil {
		t.Fatalf("index key in place of the duplicate record: %v", err)
	} else {
		closer.Close()
	}

	// The day pruned: the pairs go with their index keys; the young
	// duplicate record outlives its pair and is skipped by the listing.
	if st, _, err := j.PruneDays("20250315", 100); err != nil || st.Entries != 6 {
		t.Fatalf("prune days: %+v %v", st, err)
	}
	if s := list(); s != "" {
		t.Fatalf("by terminal batch after pruning the day: %q", s)
	}
	// Its pair gone, the last record is deleted without an index key.
	if st, _, err := j.PruneResponses(old.Add(72*time.Hour), 100, nil); err != nil || st.Responses != 1 {
		t.Fatalf("prune the young record: %+v %v", st, err)
	}
	if k, _ := keysWithPrefix(t, db, prefixJournal); len(k) != 1 || string(k[0]) != string(counterKey(20161)) {
		t.Fatalf("'j' keys left: %q, want the day's counter mark only", k)
	}
}

// BenchmarkAppendAnswered: the journal's share of an approved consume on
// the POS path — the pair (a real consume and its answer, the response
// naming the reserved RRN) and its duplicate record written into the
// transaction's batch, no commit.
func BenchmarkAppendAnswered(b *testing.B) {
	db := openDB(b, vfs.NewMem())
	defer db.Close()
	j := openJournal(b, db, Options{})
	unhex := func(h string) []byte {
		v, err := hex.DecodeString(h)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	at := time.Date(2026, 12, 4, 21, 53, 53, 241744107, time.UTC)
	req := Entry{
		Direction: In, Listener: "pos", Peer: "127.0.0.1:56020", Terminal: "10000001", Merchant: "898310000000001",
		MTI: "0200", STAN: "000002", Batch: "000001", TxType: "consume", Time: at, BusinessDate: "20261204",
		Raw: unhex("02007038048000c0801119623015100000000001200000000000000030000000022153531204022000" +
			"3130303030303031383938333130303030303030303031313536001122000001000042374444373037" + "45"),
	}
	resp := req
	resp.Direction, resp.MTI, resp.ResponseCode, resp.Time = Out, "0210", "00", at.Add(2406164)
	resp.Raw = unhex("0210703a00800ec08413196230151000000000012000000000000000300000000221535312041204003333" +
		"3830303030303030303130303030303630303130303030303031383938333130303030303030303031313536" +
		"00403030303231353643303030303030303530303030303130323135364330303030303030313730303000" +
		"11220000010000001543534343616e7465656e204e6f2e313344363636363143")
	rrnAt := bytes.Index(resp.Raw, []byte("338000000001")) // field 37
	if rrnAt < 0 {
		b.Fatal("no RRN in the response")
	}
	key := DuplicateKey{Terminal: req.Terminal, Batch: req.Batch, STAN: req.STAN, Date: "1204"}
	rec := ResponseRecord{ResponseCode: "00", Time: resp.Time, MAKGeneration: 1, TxID: 4711}
	batch := db.NewBatch()
	defer batch.Close()
	var r Reservation
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1024 == 0 {
			batch.Reset()
		}
		if err := j.ReserveRRN(req.BusinessDate, &r); err != nil {
			b.Fatal(err)
		}
		// The answer carries the RRN it was given, as the switch's does.
		resp.RRN = r.RRN()
		copy(resp.Raw[rrnAt:], resp.RRN)
		if _, _, err := j.AppendAnsweredAt(batch, &r, &req, &resp, key, rec); err != nil {
			b.Fatal(err)
		}
	}
}
