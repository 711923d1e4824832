package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCounterAfterRollback: a day served by per-day counters, then by
// the version before them (a rollback: its shared counter continues
// above the stored counters and writes the day's entries above the
// day's counter mark, its RRNs from the switch's own marks), then by
// this version again the same day. The reopened day hands out no
// sequence that holds an entry and no RRN at or below the floor; the
// RRN mark the journal raises with each named mark (Options.RRNMark)
// is in the mark's batch, at the mark, and only on named days.
func TestCounterAfterRollback(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	const day, unnamed = "20261204", "20261203"
	rrnMarks := map[string]uint64{} // the switch's own RRN marks
	floor := func(date string) (uint64, error) { return rrnMarks[date], nil }
	rrnMark := func(b *pebble.Batch, date string, mark uint64) error {
		return b.Set([]byte("d/rrn/"+date), binary.BigEndian.AppendUint64(nil, mark), nil)
	}
	storedRRNMark := func(date string) uint64 {
		v, closer, err := db.Get([]byte("d/rrn/" + date))
		if errors.Is(err, pebble.ErrNotFound) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return binary.BigEndian.Uint64(v)
	}
	counterMark := func(date string) uint64 {
		d, _ := dayNumber(date)
		v, closer, err := db.Get(counterKey(d))
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return binary.BigEndian.Uint64(v)
	}

	j := openJournal(t, db, Options{CounterFloor: floor, RRNMark: rrnMark})
	r, err := reserve(j, day)
	if err != nil {
		t.Fatal(err)
	}
	pairAt(t, j, db, r, day, "000001", "", r.RRN())
	mark := counterMark(day)
	if mark <= seqCounter(r.Seq())+1 || storedRRNMark(day) != mark {
		t.Fatalf("counter mark %d, RRN mark %d after the first pair", mark, storedRRNMark(day))
	}

	// The rollback: the earlier version's shared counter is above the
	// stored counters (another day took it there), and it writes this
	// day's pairs across the mark.
	old := openJournal(t, db, Options{legacyLayout: layoutShared})
	old.shared.Store(mark - 3)
	var top uint64
	for i := range 3 {
		s := pairAt(t, old, db, nil, day, fmt.Sprintf("%06d", 2+i), "", "")
		top = seqCounter(s) + 1
	}
	if top <= mark {
		t.Fatalf("the earlier version wrote up to %d, not above the mark %d", top, mark)
	}
	// and issued RRNs from the switch's marks: above its mark, which the
	// journal raised to its counter mark.
	rrnMarks[day] = storedRRNMark(day) + 10_000

	j = openJournal(t, db, Options{CounterFloor: floor, RRNMark: rrnMark})
	r2, err := reserve(j, day)
	if err != nil {
		t.Fatal(err)
	}
	if c := seqCounter(r2.Seq()); c <= top || c < rrnMarks[day] {
		t.Fatalf("reserved counter %d after the rollback: stored up to %d, the earlier version's RRNs below %d", c, top, rrnMarks[day])
	}
	s := pairAt(t, j, db, nil, day, "000009", "", "")
	if seqCounter(s) <= top {
		t.Fatalf("pair at %d after the rollback, stored up to %d", seqCounter(s), top)
	}
	n := 0
	if err := j.ByBusinessDay(day, func(*Entry) bool { n++; return true }); err != nil || n != 10 {
		t.Fatalf("%d entries of the day, want 10 (none overwritten): %v", n, err)
	}
	if m := counterMark(day); storedRRNMark(day) != m || m <= seqCounter(s)+1 {
		t.Fatalf("counter mark %d, RRN mark %d after the upgrade again", m, storedRRNMark(day))
	}

	// A day the shared counter took past the RRN's digits: its mark
	// raises no RRN mark (the switch issues that day's RRNs from it).
	old.shared.Store(rrnSpan)
	pairAt(t, old, db, nil, unnamed, "000001", "", "337000000001")
	if _, err := reserve(j, unnamed); !errors.Is(err, ErrRRNNotNamed) {
		t.Fatalf("reserve on an unnamed day: %v", err)
	}
	pairAt(t, j, db, nil, unnamed, "000002", "", "")
	if m := storedRRNMark(unnamed); m != 0 {
		t.Fatalf("RRN mark %d of an unnamed day", m)
	}
}
