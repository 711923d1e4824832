package journal

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestLinkSTANReservationSurvivesRestart(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	l, _ := OpenLinks(db)
	var last uint64
	for i := 1; i <= 3; i++ {
		id, stan, err := l.NextID("bank-a")
		if err != nil || id != uint64(i) || stan != STANOf(id) {
			t.Fatalf("NextID = %d %s %v", id, stan, err)
		}
		last = id
	}
	if id, _, _ := l.NextID("bank-b"); id != 1 {
		t.Fatalf("bank-b starts at %d", id)
	}
	// A restart resumes above the reservation, never at a used number.
	l2, _ := OpenLinks(db)
	id, _, err := l2.NextID("bank-a")
	if err != nil || id <= last || id != LinkSTANBlock+1 {
		t.Fatalf("after restart NextID = %d, %v; want %d", id, err, LinkSTANBlock+1)
	}
	for _, c := range []struct {
		id   uint64
		stan string
	}{{1, "000001"}, {999999, "999999"}, {1000000, "000001"}, {1000001, "000002"}} {
		if got := STANOf(c.id); got != c.stan {
			t.Errorf("STANOf(%d) = %s, want %s", c.id, got, c.stan)
		}
	}
}

func TestLinkRequestsOpenAndMapping(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	l, _ := OpenLinks(db)
	put := func(r *LinkRequest) {
		t.Helper()
		b := db.NewBatch()
		defer b.Close()
		if err := l.Put(b, r); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 3, 15, 6, 30, 5, 0, time.UTC)
	r1 := &LinkRequest{Link: "bank-a", ID: 1, STAN: "000001", Transmission: "0315063005", MTI: "0200",
		ProcCode: "000000", Amount: 1234, Card: "6217001234567890123", Terminal: "10000001", Merchant: "898310000000001",
		Batch: "000001", LocalSTAN: "000124", RRN: "031500000124", Acquirer: "12345678", Forwarding: "87654321",
		BusinessDate: "20260315", TxType: "consume", State: LinkSent, Created: now}
	r2 := *r1
	r2.ID, r2.STAN, r2.LocalSTAN = 2, "000002", "000125"
	put(r1)
	put(&r2)
	var open []uint64
	if err := l.Open("bank-a", func(r *LinkRequest) bool { open = append(open, r.ID); return true }); err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 || open[0] != 1 || open[1] != 2 {
		t.Fatalf("open = %v", open)
	}
	r1.State, r1.ResponseCode, r1.AuthCode = LinkAnswered, "00", "123456"
	put(r1)
	open = nil
	_ = l.Open("bank-a", func(r *LinkRequest) bool { open = append(open, r.ID); return true })
	if len(open) != 1 || open[0] != 2 {
		t.Fatalf("open after answer = %v", open)
	}
	got, err := l.ByLocal("10000001", "000001", "000124")
	if err != nil {
		t.Fatal(err)
	}
	if *got != *r1 {
		t.Fatalf("ByLocal = %+v\nwant %+v", got, r1)
	}
	if _, err := l.ByLocal("10000001", "000001", "000999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown local: %v", err)
	}
	// The RRN names the request last written with it (r2 shares r1's
	// here; r1 was written last).
	if got, err := l.ByRRN("031500000124"); err != nil || *got != *r1 {
		t.Fatalf("ByRRN = %+v, %v", got, err)
	}
	if _, err := l.ByRRN("031500000999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown RRN: %v", err)
	}
	if _, err := l.ByRRN(""); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("empty RRN: %v", err)
	}
	// A corrupted record is an error, not a silent default.
	v, closer, _ := db.Get(linkKey(spaceLinkReq, "bank-a", 2))
	bad := append([]byte(nil), v...)
	closer.Close()
	bad[5] ^= 1
	_ = db.Set(linkKey(spaceLinkReq, "bank-a", 2), bad, pebble.Sync)
	if _, err := l.Get("bank-a", 2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt record: %v", err)
	}
}

func TestQueueKillDropStats(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	q := openQueue(t, db, QueueOptions{})
	ids := enqueue(t, q, db, "bank-a", "r1", "r2")
	if n, d, oldest, err := q.Stats("bank-a", 100); err != nil || n != 2 || d != 0 || oldest.IsZero() {
		t.Fatalf("stats = %d %d %v %v", n, d, oldest, err)
	}
	if err := q.Kill("bank-a", ids[0]); err != nil {
		t.Fatal(err)
	}
	dead, _ := q.Dead("bank-a", 10)
	if len(dead) != 1 || string(dead[0].Payload) != "r1" {
		t.Fatalf("dead = %v", dead)
	}
	if n, d, _, _ := q.Stats("bank-a", 100); n != 1 || d != 1 {
		t.Fatalf("stats after kill = %d %d", n, d)
	}
	if err := q.Drop("bank-a", ids[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("drop of a queued message: %v", err)
	}
	if err := q.Drop("bank-a", ids[0]); err != nil {
		t.Fatal(err)
	}
	if n, d, _, _ := q.Stats("bank-a", 100); n != 1 || d != 0 {
		t.Fatalf("stats after drop = %d %d", n, d)
	}
	if err := q.Kill("bank-a", ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("kill of a dropped message: %v", err)
	}
}

func FuzzDecodeLinkRequest(f *testing.F) {
	r := &LinkRequest{State: LinkSent, Amount: 1234, Created: time.Unix(0, 1773556205000000000).UTC(),
		STAN: "000001", Transmission: "0315063005", MTI: "0200", ProcCode: "000000", Card: "6217001234567890123",
		Terminal: "10000001", Batch: "000001", LocalSTAN: "000124", RRN: "031500000124", Acquirer: "12345678"}
	v, _ := r.encode()
	f.Add(v)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got LinkRequest
		if err := decodeLinkRequest(b, &got); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		again, err := got.encode()
		if err != nil {
			t.Fatal(err)
		}
		var back LinkRequest
		if err := decodeLinkRequest(again, &back); err != nil || back != got {
			t.Fatalf("round trip: %+v -> %+v, %v", got, back, err)
		}
	})
}

func TestPruneLinkRequests(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	l, _ := OpenLinks(db)
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cut := old.Add(24 * time.Hour)
	put := func(link string, id uint64, st LinkState, created time.Time, stan string) {
		t.Helper()
		b := db.NewBatch()
		defer b.Close()
		r := &LinkRequest{Link: link, ID: id, STAN: STANOf(id), State: st, Created: created,
			Terminal: "10000001", Batch: "000001", LocalSTAN: stan, RRN: "RRN000" + stan}
		if err := l.Put(b, r); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	put("bank-a", 1, LinkAnswered, old, "000001")
	put("bank-a", 2, LinkSent, old, "000002")
	put("bank-a", 3, LinkAnswered, cut.Add(time.Hour), "000003")
	put("bank-a", 4, LinkAnswered, old, "000004") // an id after a newer one is not reached: ids grow with time
	put("bank-b", 1, LinkReversalQueued, old, "000005")
	n, more, err := l.PruneLinkRequests(cut, 1)
	if err != nil || n != 1 || !more {
		t.Fatalf("first batch: %d %v %v", n, more, err)
	}
	n, more, err = l.PruneLinkRequests(cut, 100)
	if err != nil || n != 1 || more {
		t.Fatalf("second batch: %d %v %v", n, more, err)
	}
	for _, c := range []struct {
		link string
		id   uint64
		kept bool
	}{{"bank-a", 1, false}, {"bank-a", 2, true}, {"bank-a", 3, true}, {"bank-a", 4, true}, {"bank-b", 1, false}} {
		_, err := l.Get(c.link, c.id)
		if kept := err == nil; kept != c.kept {
			t.Errorf("%s %d kept=%v, want %v (%v)", c.link, c.id, kept, c.kept, err)
		}
	}
	if _, err := l.ByLocal("10000001", "000001", "000001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("mapping of a pruned request: %v", err)
	}
	if _, err := l.ByLocal("10000001", "000001", "000002"); err != nil {
		t.Fatalf("mapping of an open request: %v", err)
	}
	if _, err := l.ByRRN("RRN000000001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RRN index of a pruned request: %v", err)
	}
	if _, err := l.ByRRN("RRN000000002"); err != nil {
		t.Fatalf("RRN index of an open request: %v", err)
	}
	if n, _, _ := l.PruneLinkRequests(cut, 100); n != 0 {
		t.Fatalf("third run deleted %d", n)
	}
}

// SetState changes a request's state with its record and open index only
// (two keys), and the mapping and RRN index Put wrote still find it.
func TestLinkRequestSetState(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	l, _ := OpenLinks(db)
	commit := func(write func(*pebble.Batch) error) uint32 {
		t.Helper()
		b := db.NewBatch()
		defer b.Close()
		if err := write(b); err != nil {
			t.Fatal(err)
		}
		n := b.Count()
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
		return n
	}
	r := &LinkRequest{Link: "bank-a", ID: 7, STAN: "000007", Transmission: "0315063005", MTI: "0200",
		ProcCode: "000000", Amount: 1234, Card: "6217001234567890123", Terminal: "10000001", Merchant: "898310000000001",
		Batch: "000001", LocalSTAN: "000124", RRN: "031500000124", Acquirer: "12345678", Forwarding: "87654321",
		BusinessDate: "20260315", TxType: "consume", State: LinkSent, Created: time.Date(2026, 3, 15, 6, 30, 5, 0, time.UTC)}
	if n := commit(func(b *pebble.Batch) error { return l.Put(b, r) }); n != 4 {
		t.Fatalf("Put wrote %d keys, want 4 (record, open, RRN, local)", n)
	}
	for _, st := range []LinkState{LinkAnswered, LinkReversalQueued} {
		r.State, r.ResponseCode, r.AuthCode = st, "00", "123456"
		if n := commit(func(b *pebble.Batch) error { return l.SetState(b, r) }); n != 2 {
			t.Fatalf("SetState wrote %d keys, want 2 (record, open index)", n)
		}
		open := 0
		if err := l.Open("bank-a", func(*LinkRequest) bool { open++; return true }); err != nil || open != 0 {
			t.Fatalf("%v: %d open, %v", st, open, err)
		}
		if got, err := l.ByLocal("10000001", "000001", "000124"); err != nil || *got != *r {
			t.Fatalf("%v: ByLocal = %+v, %v", st, got, err)
		}
		if got, err := l.ByRRN("031500000124"); err != nil || *got != *r {
			t.Fatalf("%v: ByRRN = %+v, %v", st, got, err)
		}
	}
	// Back to sent (as no caller does, but the open index follows the state).
	r.State = LinkSent
	commit(func(b *pebble.Batch) error { return l.SetState(b, r) })
	var open []uint64
	if err := l.Open("bank-a", func(o *LinkRequest) bool { open = append(open, o.ID); return true }); err != nil || len(open) != 1 || open[0] != 7 {
		t.Fatalf("open after SetState(sent) = %v, %v", open, err)
	}
	b := db.NewBatch()
	defer b.Close()
	if err := l.SetState(b, &LinkRequest{Link: "bank-a"}); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("SetState without id: %v", err)
	}
}

// TestLinkFollowUps: PutFollowUp records which requests follow up an
// original, FollowUps lists them oldest first within its bound (more
// beyond it), leaves out a follow-up whose record is gone, and pruning
// the original deletes its follow-up keys.
func TestLinkFollowUps(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	l, _ := OpenLinks(db)
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(id, follows uint64, created time.Time) {
		t.Helper()
		b := db.NewBatch()
		defer b.Close()
		r := &LinkRequest{Link: "bank-a", ID: id, STAN: STANOf(id), State: LinkAnswered, Created: created, TxType: "x"}
		err := l.Put(b, r)
		if err == nil && follows != 0 {
			err = l.PutFollowUp(b, "bank-a", follows, id)
		}
		if err == nil {
			err = b.Commit(pebble.Sync)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []*LinkRequest) (out []uint64) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	put(1, 0, old)
	put(2, 1, old)
	put(3, 1, old.Add(48*time.Hour))
	put(4, 3, old.Add(48*time.Hour))
	put(5, 1, old.Add(48*time.Hour))
	if fs, more, err := l.FollowUps("bank-a", 1, 10); err != nil || more || fmt.Sprint(ids(fs)) != "[2 3 5]" {
		t.Fatalf("follow-ups of 1: %v %v %v", ids(fs), more, err)
	}
	if fs, more, err := l.FollowUps("bank-a", 1, 2); err != nil || !more || fmt.Sprint(ids(fs)) != "[2 3]" {
		t.Fatalf("follow-ups of 1, at most 2: %v %v %v", ids(fs), more, err)
	}
	if fs, _, err := l.FollowUps("bank-b", 1, 10); err != nil || len(fs) != 0 {
		t.Fatalf("follow-ups on another link: %v %v", ids(fs), err)
	}
	if _, _, err := l.FollowUps("bank-a", 1, 0); err == nil {
		t.Fatal("a zero bound accepted")
	}
	if err := l.PutFollowUp(db.NewBatch(), "bank-a", 0, 2); err == nil {
		t.Fatal("a follow-up of request 0 accepted")
	}
	// Pruning deletes 1 and 2 (old), with 1's follow-up keys; 3's stay.
	if n, _, err := l.PruneLinkRequests(old.Add(24*time.Hour), 100); err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	p := linkKey(spaceLinkFollow, "bank-a", 1)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		t.Fatal(err)
	}
	if it.First() {
		t.Errorf("follow-up key %x of a pruned request kept", it.Key())
	}
	it.Close()
	if fs, _, err := l.FollowUps("bank-a", 3, 10); err != nil || fmt.Sprint(ids(fs)) != "[4]" {
		t.Fatalf("follow-ups of 3 after pruning: %v %v", ids(fs), err)
	}
	// A follow-up whose record is gone is left out.
	b := db.NewBatch()
	if err := l.PutFollowUp(b, "bank-a", 3, 99); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if fs, _, err := l.FollowUps("bank-a", 3, 10); err != nil || fmt.Sprint(ids(fs)) != "[4]" {
		t.Fatalf("follow-ups of 3 with one record missing: %v %v", ids(fs), err)
	}
}
