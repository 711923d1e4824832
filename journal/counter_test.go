package journal

import (
	"encoding/binary"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestMarkMovedByReservations: the synced move of a day's counter mark
// is left to reservations (ReserveRRN, called before the switch holds
// any lock) while an append (inside the ledger's callback, holding card
// locks) would take it half-way through a block; an append moves it
// only when the block is down to its last tenth (a day without
// reservations), still before any counter at or above the mark is
// handed out.
func TestMarkMovedByReservations(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	const day = "20261204"
	d, _ := dayNumber(day)
	mark := func() uint64 {
		t.Helper()
		v, closer, err := db.Get(counterKey(d))
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return binary.BigEndian.Uint64(v)
	}
	b := db.NewBatch() // never committed: only the sequences count
	defer b.Close()
	appendTo := func(next uint64) {
		t.Helper()
		for j.LastSeq()+1 < next {
			if _, _, err := j.AppendPair(b, entryFor(day, "10000001", "000001", "000001", "", In), entryFor(day, "10000001", "000001", "000001", "", Out)); err != nil {
				t.Fatal(err)
			}
			if j.LastSeq() >= mark() {
				t.Fatalf("counter %d handed out at or above the mark %d", j.LastSeq(), mark())
			}
		}
	}

	if _, err := reserve(j, day); err != nil {
		t.Fatal(err)
	}
	m := mark() // the first block: counters 1..seqBlock
	if m != 1+seqBlock {
		t.Fatalf("first mark %d", m)
	}
	appendTo(m - seqBlock/2 + 2) // past half the block
	if mark() != m {
		t.Fatalf("appends past half the block moved the mark to %d", mark())
	}
	if _, err := reserve(j, day); err != nil {
		t.Fatal(err)
	}
	if mark() != m+seqBlock {
		t.Fatalf("a reservation past half the block: mark %d, want %d", mark(), m+seqBlock)
	}
	m += seqBlock
	appendTo(m - seqBlock/10 - 3) // appends only: not yet
	if mark() != m {
		t.Fatalf("appends with a tenth of the block left moved the mark to %d", mark())
	}
	appendTo(m - seqBlock/10 + 2)
	if mark() != m+seqBlock {
		t.Fatalf("appends into the block's last tenth: mark %d, want %d", mark(), m+seqBlock)
	}
}
