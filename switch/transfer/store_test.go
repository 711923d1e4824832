package transfer

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cardswitch/cardswitch/ledger"
)

func TestPruneAndList(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &Service{db: db}
	b := db.NewBatch()
	for i, d := range []ledger.BusinessDate{20260301, 20260302, 20260310} {
		r := &Record{PAN: "6230151000000000020", View: View{Terminal: "90000001", Batch: 1, STAN: uint32(i + 1),
			BusinessDate: d.String(), Card: "623015*********0020", AmountFen: 100, State: StateCredited}}
		if err := putRecord(b, r); err != nil {
			t.Fatal(err)
		}
		if err := s.putDayTotal(b, r.PAN, d, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	// Pages of one, by terminal, batch, STAN; the card filter needs the
	// full number, and the answer shows it masked.
	page, next, err := s.List(Filter{Card: "6230151000000000020", Limit: 2})
	if err != nil || len(page) != 2 || next != "90000001/000001/000002" || page[0].STAN != 1 || page[0].Card != "623015*********0020" {
		t.Fatalf("first page %+v %q %v", page, next, err)
	}
	page, next, err = s.List(Filter{After: next})
	if err != nil || len(page) != 1 || next != "" || page[0].STAN != 3 {
		t.Fatalf("second page %+v %q %v", page, next, err)
	}
	if page, _, _ := s.List(Filter{BusinessDate: "20260302"}); len(page) != 1 || page[0].STAN != 2 {
		t.Fatalf("by date %+v", page)
	}
	// Days before 20260310 go, one at a time; the rest stays.
	total := 0
	for {
		n, more, err := s.Prune(20260310, 1)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if !more {
			break
		}
	}
	if total != 4 {
		t.Fatalf("pruned %d, want 2 records and 2 day totals", total)
	}
	if page, _, _ := s.List(Filter{}); len(page) != 1 || page[0].BusinessDate != "20260310" {
		t.Fatalf("after prune %+v", page)
	}
	if v, _ := s.dayTotal("6230151000000000020", 20260310); v != 100 {
		t.Fatalf("day total of the kept day %s", v)
	}
	if v, _ := s.dayTotal("6230151000000000020", 20260301); v != 0 {
		t.Fatalf("day total of a pruned day %s", v)
	}
}

// TestCardLocks: one card's lock is held while another card's is taken,
// and the table is empty once nobody holds a lock.
func TestCardLocks(t *testing.T) {
	s := &Service{locks: map[string]*cardLock{}}
	a := s.lockCard("6230151000000000020")
	done := make(chan struct{})
	go func() {
		s.lockCard("6230151000000000038")() // another card: not blocked by a
		close(done)
	}()
	<-done
	second := make(chan struct{})
	released := make(chan struct{})
	go func() {
		unlock := s.lockCard("6230151000000000020") // the same card: waits for a
		close(second)
		unlock()
		close(released)
	}()
	// Once the second holder waits on the lock, it must stay waiting
	// while a holds it (a broken lock lets it through at once).
	for waiting := false; !waiting; {
		s.locksMu.Lock()
		waiting = s.locks["6230151000000000020"].refs == 2
		s.locksMu.Unlock()
		time.Sleep(time.Millisecond)
	}
	select {
	case <-second:
		t.Fatal("a card's lock was taken twice")
	case <-time.After(20 * time.Millisecond):
	}
	a()
	<-second
	<-released // counted once the second holder has let go, not in between
	s.locksMu.Lock()
	n := len(s.locks)
	s.locksMu.Unlock()
	if n != 0 {
		t.Fatalf("%d locks left in the table", n)
	}
}
