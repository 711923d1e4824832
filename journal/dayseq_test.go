package journal

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestDayNumber(t *testing.T) {
	for _, c := range []struct {
		date string
		day  uint32
		ok   bool
	}{
		{"19700101", 0, false}, // day 0 is the old layout's
		{"19700102", 1, true},
		{"20000229", 11016, true},
		{"20250314", 20161, true},
		{"20241231", 20088, true},
		{"20250101", 20089, true},
		{"20250229", 0, false},
		{"20251301", 0, false},
		{"20250100", 0, false},
		{"2025031", 0, false},
		{"22170101", 0, false}, // past maxSeqDay
	} {
		d, ok := dayNumber(c.date)
		if d != c.day || ok != c.ok {
			t.Errorf("dayNumber(%s) = %d %v, want %d %v", c.date, d, ok, c.day, c.ok)
		}
	}
	if dayStart(maxSeqDay+1) > 1<<53 {
		t.Errorf("largest sequence %d above 2^53", dayStart(maxSeqDay+1))
	}
}

// TestDayInSequence: a data directory written before sequences carried
// their day (legacy entries with day index keys) keeps being read and
// pruned next to entries of the layout that came next (sequences with
// their day, a counter shared by all days); that counter continued above
// both after a reopen, whatever the order of days; an entry of a day
// that is not a calendar day is refused. TestPerDayCounters continues
// such a directory with per-day counters.
func TestDayInSequence(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	old := openJournal(t, db, Options{legacyLayout: layoutDay0})
	appendCommit(t, old, db, entryFor("20250313", "10000001", "000001", "000001", "000000000001", In)) // 1
	pairCommit := func(j *Journal, date, stan string) (uint64, uint64) {
		t.Helper()
		b := db.NewBatch()
		defer b.Close()
		s1, s2, err := j.AppendPair(b, entryFor(date, "10000001", "000001", stan, "", In), entryFor(date, "10000001", "000001", stan, "0000000"+stan[1:], Out))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(nil); err != nil {
			t.Fatal(err)
		}
		return s1, s2
	}
	pairCommit(old, "20250314", "000002") // 2, 3

	j := openJournal(t, db, Options{legacyLayout: layoutShared})
	if j.LastSeq() != 3 {
		t.Fatalf("counter after the old layout: %d, want 3", j.LastSeq())
	}
	if s1, s2 := pairCommit(j, "20250314", "000004"); s1 != sq("20250314", 4) || s2 != sq("20250314", 5) {
		t.Fatalf("pair of the new layout: %d %d", s1, s2)
	}
	pairCommit(j, "20250315", "000006")                                                          // 6, 7
	pairCommit(j, "20250313", "000008")                                                          // 8, 9: a late entry of an older day
	seqs := appendCommit(t, j, db, entryFor("20250312", "10000002", "000001", "000010", "", In)) // 10
	if seqs[0] != sq("20250312", 10) {
		t.Fatalf("single entry: %d", seqs[0])
	}
	if _, err := j.Append(db.NewBatch(), entryFor("20250230", "10000002", "000001", "000011", "", In)); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("entry of 2025-02-30: %v, want ErrInvalidEntry", err)
	}

	day := func(date string) string {
		t.Helper()
		var got []string
		if err := j.ByBusinessDay(date, func(e *Entry) bool {
			got = append(got, fmt.Sprintf("%d%s", seqCounter(e.Seq), e.Direction))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	for date, want := range map[string]string{
		"20250312": "[10in]",
		"20250313": "[1in 8in 9out]",
		"20250314": "[2in 3out 4in 5out]",
		"20250315": "[6in 7out]",
		"20250316": "[]",
	} {
		if got := day(date); got != want {
			t.Errorf("day %s: %s, want %s", date, got, want)
		}
	}
	if es, err := j.ByTerminalBatch("10000001", "000001", 100); err != nil || seqsOf(es) != "1 2 3 8 9 4 5 6 7" {
		t.Fatalf("by terminal batch: %q %v", seqsOf(es), err)
	}
	if es, err := j.ByRRN("000000000006", "", 100); err != nil || seqsOf(es) != "6 7" {
		t.Fatalf("by RRN: %q %v", seqsOf(es), err)
	}
	// A void of the 13th naming the old entry's RRN: found after it, by
	// day or not; an RRN key of the new layout holds no date.
	b := db.NewBatch()
	void := entryFor("20250313", "10000001", "000001", "000012", "000000000001", In)
	if _, _, err := j.AppendPair(b, void, entryFor("20250313", "10000001", "000001", "000012", "000000000012", Out)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	for _, date := range []string{"", "20250313"} {
		if es, err := j.ByRRN("000000000001", date, 100); err != nil || seqsOf(es) != "1 11 12" {
			t.Fatalf("by RRN on %q across layouts: %q %v", date, seqsOf(es), err)
		}
		if es, err := j.ByRRN("000000000001", date, 2); err != nil || seqsOf(es) != "1 11" {
			t.Fatalf("by RRN on %q, limit 2: %q %v", date, seqsOf(es), err)
		}
	}
	if es, err := j.ByRRN("000000000001", "20250314", 100); err != nil || len(es) != 0 {
		t.Fatalf("by RRN on another day: %q %v", seqsOf(es), err)
	}
	if es, err := j.ByRRN("000000000002", "20250314", 100); err != nil || seqsOf(es) != "2 3" {
		t.Fatalf("old layout by RRN and day: %q %v", seqsOf(es), err)
	}
	if _, closer, err := db.Get(appendSeq(rrnPrefix(nil, "000000000012"), sq("20250313", 11))); err != nil {
		t.Fatalf("RRN key without a date: %v", err)
	} else {
		closer.Close()
	}
	if e, err := j.Get(sq("20250313", 9)); err != nil || e.STAN != "000008" || e.Direction != Out {
		t.Fatalf("get: %+v %v", e, err)
	}

	// Reopened: the counter continues above the largest, which is on an
	// older day than the last key.
	if j = openJournal(t, db, Options{legacyLayout: layoutShared}); j.LastSeq() != 12 {
		t.Fatalf("counter after reopening: %d, want 12", j.LastSeq())
	}

	// Pruning before the 15th, one entry (or pair) per call: the old
	// layout's first, then the new one's days in order.
	var per []int
	for i := 0; i < 20; i++ {
		st, more, err := j.PruneDays("20250315", 1)
		if err != nil {
			t.Fatal(err)
		}
		per = append(per, st.Entries)
		if !more {
			break
		}
	}
	if fmt.Sprint(per) != "[1 2 1 2 2 2 0]" {
		t.Fatalf("entries per call %v", per)
	}
	for date, want := range map[string]string{"20250312": "[]", "20250313": "[]", "20250314": "[]", "20250315": "[6in 7out]"} {
		if got := day(date); got != want {
			t.Errorf("day %s after pruning: %s, want %s", date, got, want)
		}
	}
	if es, err := j.ByTerminalBatch("10000001", "000001", 100); err != nil || seqsOf(es) != "6 7" {
		t.Fatalf("by terminal batch after pruning: %q %v", seqsOf(es), err)
	}
	keys, _ := keysWithPrefix(t, db, prefixJournal)
	for _, k := range keys {
		if k[1] == spaceDay || (k[1] == spaceRRN && string(k) != string(appendSeq(rrnPrefix(nil, "000000000006"), sq("20250315", 6)))) {
			t.Errorf("index key %q left", k)
		}
	}
	// Everything pruned: the mark keeps the counter.
	if _, _, err := j.PruneDays("20250316", 100); err != nil {
		t.Fatal(err)
	}
	if j = openJournal(t, db, Options{legacyLayout: layoutShared}); j.LastSeq() != 12 {
		t.Fatalf("counter after pruning everything: %d, want 12", j.LastSeq())
	}
	db.Close()
}
