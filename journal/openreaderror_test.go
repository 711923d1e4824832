package journal

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestCounterRestoreReadError: a read error while the journal restores
// its sequence counter from the stored entries (Open's walk of the days,
// or wherever a day's counter is restored) must surface as an error, never
// as a counter restored too low: the next append would write over a
// stored entry. Once the reads work again, numbering continues above
// every stored sequence and nothing stored was lost.
func TestCounterRestoreReadError(t *testing.T) {
	// One read of a table block fails, the first once failing is set
	// (the entries are flushed to tables): the reads after it, the
	// sequence mark's among them, work, so only the restoring walk sees
	// the error.
	var failing atomic.Bool
	var injected atomic.Int64
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind == errorfs.OpFileReadAt && strings.HasSuffix(op.Path, ".sst") &&
			injected.CompareAndSwap(0, 1) {
			return errorfs.ErrInjected
		}
		return nil
	}))
	open := func() *pebble.DB {
		t.Helper()
		// No table statistics: their collection reads tables in the
		// background, and would take the one failing read.
		db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}, DisableTableStats: true})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	j := openJournal(t, db, Options{})
	const last = "20250314"
	var top uint64 // the largest sequence stored on the last day
	for _, date := range []string{"20250312", "20250313", last} {
		for i := 0; i < 3; i++ {
			seqs := appendCommit(t, j, db, entryFor(date, "10000001", "000001", fmt.Sprintf("%06d", i), "", In))
			if date == last {
				top = max(top, seqs[0])
			}
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open()
	defer db.Close()
	failing.Store(true)
	next := entryFor(last, "10000001", "000001", "000003", "", In)
	j, err := Open(db, Options{})
	if err == nil {
		// A journal that restores a day's counter at its first use must
		// fail there instead.
		b := db.NewBatch()
		var seq uint64
		seq, err = j.Append(b, next)
		b.Close()
		if err == nil && seq <= top {
			t.Fatalf("sequence %d handed out again after a read error (stored up to %d)", seq, top)
		}
	}
	failing.Store(false)
	if injected.Load() == 0 {
		t.Fatal("no read of the stored entries was made, so none failed: the test tests nothing")
	}
	if !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("a read error while restoring the counter went unnoticed: %v", err)
	}

	j = openJournal(t, db, Options{})
	if seqs := appendCommit(t, j, db, next); seqs[0] <= top {
		t.Fatalf("after the reads work again: sequence %d, stored up to %d", seqs[0], top)
	}
	got, err := j.ByTerminalBatch("10000001", "000001", 100)
	if err != nil || len(got) != 10 {
		t.Fatalf("entries after the read error: %d, %v", len(got), err)
	}
}
