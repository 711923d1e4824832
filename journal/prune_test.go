package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// pruneFixture is the journal the PruneDays tests start from. Sequences,
// in append order (day-index order differs: 10 is a late entry of the
// 10th, 4 an early one of the 12th):
//
//	seq  day  kind    terminal  batch   RRNs                  keys
//	1    10   single  1000      000001  …001                  e d t r  = 4
//	2,3  10   pair    10000001  000001  req …005, resp …002   2e d t 2r = 6
//	4    12   single  10000     000001  …001                  e d t r  = 4
//	5    11   single  -         -       -                     e d      = 2
//	6,7  11   pair    10000001  000001  resp …003             2e d t r = 5
//	8,9  12   pair    10000001  000001  both …002             2e d t r = 5
//	10   10   single  10000001  000002  -                     e d t    = 3
//	11   14   single  1000      000001  …001                  e d t r  = 4
//
// 33 journal keys, plus two stored responses ('j p') and two queued
// messages ('q m') that pruning days must not touch.
func pruneFixture(t *testing.T, j *Journal, db *pebble.DB) map[uint64]*Entry {
	t.Helper()
	const r1, r2, r3, r5 = "000000000001", "000000000002", "000000000003", "000000000005"
	b := db.NewBatch()
	defer b.Close()
	all := map[uint64]*Entry{}
	single := func(want uint64, e *Entry) {
		if s, err := j.Append(b, e); err != nil || s != want {
			t.Fatalf("append: seq %d %v, want %d", s, err, want)
		}
		all[e.Seq] = e
	}
	pair := func(want uint64, req, resp *Entry) {
		if s, _, err := j.AppendPair(b, req, resp); err != nil || s != want {
			t.Fatalf("append pair: seq %d %v, want %d", s, err, want)
		}
		all[req.Seq], all[resp.Seq] = req, resp
	}
	single(1, entryFor("20250310", "1000", "000001", "000001", r1, In))
	pair(2, entryFor("20250310", "10000001", "000001", "000002", r5, In), entryFor("20250310", "10000001", "000001", "000002", r2, Out))
	single(4, entryFor("20250312", "10000", "000001", "000003", r1, In))
	single(5, &Entry{Direction: In, Flags: FlagUndecodable, Time: time.Unix(1, 0).UTC(), BusinessDate: "20250311", Raw: []byte{0x02, 0x00}})
	pair(6, entryFor("20250311", "10000001", "000001", "000004", "", In), entryFor("20250311", "10000001", "000001", "000004", r3, Out))
	pair(8, entryFor("20250312", "10000001", "000001", "000005", r2, In), entryFor("20250312", "10000001", "000001", "000005", r2, Out))
	single(10, entryFor("20250310", "10000001", "000002", "000006", "", In))
	single(11, entryFor("20250314", "1000", "000001", "000007", r1, In))
	for i, k := range []DuplicateKey{
		{Terminal: "1000", Batch: "000001", STAN: "000001", Date: "0310"},
		{Terminal: "10000001", Batch: "000001", STAN: "000004", Date: "0311"},
	} {
		rec := sampleResponse()
		rec.Time = time.Date(2025, 3, 10+i, 10, 0, 0, 0, time.UTC)
		if err := j.PutResponse(b, k, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	q := openQueue(t, db, QueueOptions{})
	enqueue(t, q, db, "gw", "reversal 1", "reversal 2")
	return all
}

// keysWithPrefix returns a copy of every key and value starting with p.
func keysWithPrefix(t *testing.T, db *pebble.DB, p byte) (keys, values [][]byte) {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{p}, UpperBound: []byte{p + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		keys = append(keys, bytes.Clone(it.Key()))
		values = append(values, bytes.Clone(it.Value()))
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return keys, values
}

// seqsOf joins entries' sequence counters (the sequences without their
// day; an old-layout sequence is its own counter): "1 2 3".
func seqsOf(es []*Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprint(seqCounter(e.Seq)))
	}
	return strings.Join(s, " ")
}

// keep drops from a list like "1 2 3" the sequences not in kept.
func keep(list string, kept map[uint64]bool) string {
	var out []string
	for _, f := range strings.Fields(list) {
		var s uint64
		fmt.Sscan(f, &s)
		if kept[s] {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

func TestPruneDays(t *testing.T) {
	tests := []struct {
		name   string
		before string
		max    int
		calls  []int  // entries deleted by each call until more is false
		pruned string // sequences gone afterwards
		jKeys  int    // 'j' keys left: journal (a pair is one entry key) + 2 responses (+ sequence mark)
	}{
		{"nothing older", "20250310", 100, []int{0}, "", 30 + 2},
		{"one day", "20250311", MaxPrune, []int{4}, "1 2 3 10", 30 - 12 + 2 + 1},
		// max 2: 1 | pair | 10, 5 | pair, end of range after resuming |
		// a walk from the start that finds nothing.
		{"two days by two", "20250312", 2, []int{1, 2, 2, 2, 0}, "1 2 3 5 6 7 10", 30 - 12 - 6 + 2 + 1},
		// max 1: a pair is never split, so the second call deletes 2.
		{"two days by one", "20250312", 1, []int{1, 2, 1, 1, 2, 0}, "1 2 3 5 6 7 10", 30 - 12 - 6 + 2 + 1},
		{"everything by three", "20250315", 3, []int{3, 2, 3, 3, 0}, "1 2 3 4 5 6 7 8 9 10 11", 2 + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t, vfs.NewMem())
			defer db.Close()
			j := openJournal(t, db, Options{legacyLayout: layoutDay0})
			all := pruneFixture(t, j, db)
			qKeys, qVals := keysWithPrefix(t, db, prefixQueue)
			if len(qKeys) != 2 {
				t.Fatalf("fixture has %d queue keys", len(qKeys))
			}

			var calls []int
			for more := true; more; {
				if len(calls) == 20 {
					t.Fatalf("no end after calls %v", calls)
				}
				var st PruneStats
				var err error
				st, more, err = j.PruneDays(tc.before, tc.max)
				if err != nil {
					t.Fatal(err)
				}
				if st.Responses != 0 || st.Entries > tc.max && st.Entries != 2 {
					t.Fatalf("call %d: %+v over max %d", len(calls)+1, st, tc.max)
				}
				calls = append(calls, st.Entries)
			}
			if !reflect.DeepEqual(calls, tc.calls) {
				t.Fatalf("entries per call %v, want %v", calls, tc.calls)
			}

			pruned, kept := map[uint64]bool{}, map[uint64]bool{}
			for _, f := range strings.Fields(tc.pruned) {
				var s uint64
				fmt.Sscan(f, &s)
				pruned[s] = true
			}
			for s, e := range all {
				if !pruned[s] {
					kept[s] = true
				}
				if got := e.BusinessDate < tc.before; got != pruned[s] {
					t.Fatalf("seq %d of %s: pruned %v, want %v", s, e.BusinessDate, pruned[s], got)
				}
			}

			for s, e := range all {
				got, err := j.Get(s)
				switch {
				case pruned[s]:
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("Get(%d) of a pruned entry: %v, want ErrNotFound", s, err)
					}
				case err != nil:
					t.Errorf("Get(%d): %v", s, err)
				case !reflect.DeepEqual(got, e):
					t.Errorf("Get(%d) = %+v, want %+v", s, got, e)
				}
			}
			// Every read over the whole fixture, then with the pruned
			// entries removed.
			for _, r := range []struct {
				name string
				read func() ([]*Entry, error)
				all  string
			}{
				{"rrn 001", func() ([]*Entry, error) { return j.ByRRN("000000000001", "", 100) }, "1 4 11"},
				{"rrn 002", func() ([]*Entry, error) { return j.ByRRN("000000000002", "", 100) }, "2 3 8 9"},
				{"rrn 002 on the 12th", func() ([]*Entry, error) { return j.ByRRN("000000000002", "20250312", 100) }, "8 9"},
				{"rrn 003", func() ([]*Entry, error) { return j.ByRRN("000000000003", "", 100) }, "6 7"},
				{"rrn 005", func() ([]*Entry, error) { return j.ByRRN("000000000005", "", 100) }, "2 3"},
				{"terminal 1000", func() ([]*Entry, error) { return j.ByTerminalBatch("1000", "000001", 100) }, "1 11"},
				{"terminal 10000", func() ([]*Entry, error) { return j.ByTerminalBatch("10000", "000001", 100) }, "4"},
				{"terminal 10000001/1", func() ([]*Entry, error) { return j.ByTerminalBatch("10000001", "000001", 100) }, "2 3 6 7 8 9"},
				{"terminal 10000001/2", func() ([]*Entry, error) { return j.ByTerminalBatch("10000001", "000002", 100) }, "10"},
			} {
				got, err := r.read()
				if err != nil {
					t.Errorf("%s: %v", r.name, err)
				} else if want := keep(r.all, kept); seqsOf(got) != want {
					t.Errorf("%s: %q, want %q", r.name, seqsOf(got), want)
				}
			}
			for day, list := range map[string]string{"20250310": "1 2 3 10", "20250311": "5 6 7", "20250312": "4 8 9", "20250314": "11"} {
				var got []*Entry
				if err := j.ByBusinessDay(day, func(e *Entry) bool { got = append(got, e); return true }); err != nil {
					t.Errorf("day %s: %v", day, err)
				} else if want := keep(list, kept); seqsOf(got) != want {
					t.Errorf("day %s: %q, want %q", day, seqsOf(got), want)
				}
			}

			// No key of a pruned entry is left anywhere in 'j'.
			jKeys, jVals := keysWithPrefix(t, db, prefixJournal)
			for i, k := range jKeys {
				var seqs []uint64
				switch k[1] {
				case spaceEntry, spaceDay, spaceTermBat, spaceRRN:
					s := binary.BigEndian.Uint64(k[len(k)-seqLen:])
					seqs = append(seqs, s)
					if bytes.Equal(jVals[i], pairMark) {
						seqs = append(seqs, s+1)
					}
				case spaceResponse, spaceSeqMark:
				default:
					t.Errorf("unexpected key %q", k)
				}
				for _, s := range seqs {
					if pruned[s] {
						t.Errorf("key %q of pruned entry %d left", k, s)
					}
				}
			}
			if len(jKeys) != tc.jKeys {
				t.Errorf("%d 'j' keys left, want %d", len(jKeys), tc.jKeys)
			}
			// Queue and stored responses untouched.
			if k, v := keysWithPrefix(t, db, prefixQueue); !reflect.DeepEqual(k, qKeys) || !reflect.DeepEqual(v, qVals) {
				t.Error("queue keys changed")
			}
			for _, k := range []DuplicateKey{
				{Terminal: "1000", Batch: "000001", STAN: "000001", Date: "0310"},
				{Terminal: "10000001", Batch: "000001", STAN: "000004", Date: "0311"},
			} {
				if _, found, err := j.GetResponse(k); !found || err != nil {
					t.Errorf("response %+v: found %v, %v", k, found, err)
				}
			}
			if j.LastSeq() != 11 {
				t.Errorf("LastSeq %d, want 11", j.LastSeq())
			}
		})
	}
}

// TestPruneDaysKeepsSequences: pruning the newest entries, even all of
// them, never lets a restart hand out their sequences again.
func TestPruneDaysKeepsSequences(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	j := openJournal(t, db, Options{legacyLayout: layoutDay0})
	pruneFixture(t, j, db)
	// The 12th holds 4, 8 and 9, the largest stored sequence after 11.
	appendCommit(t, j, db, entryFor("20250312", "10000001", "000003", "000008", "", In)) // 12
	for _, step := range []struct {
		before  string
		entries int
		mark    uint64
	}{
		{"20250311", 4, 10}, // 1 2 3 10
		{"20250313", 7, 12}, // 5 6 7 4 8 9 12
		{"20250315", 1, 12}, // 11: below the mark, which stays
		{"20250316", 0, 12}, // nothing left
	} {
		st, more, err := j.PruneDays(step.before, MaxPrune)
		if err != nil || more || st.Entries != step.entries {
			t.Fatalf("before %s: %+v more=%v %v, want %d entries", step.before, st, more, err, step.entries)
		}
		if m, err := readSeqMark(db); err != nil || m != step.mark {
			t.Fatalf("before %s: mark %d %v, want %d", step.before, m, err, step.mark)
		}
	}
	if k, _ := keysWithPrefix(t, db, prefixJournal); len(k) != 2+1 {
		t.Fatalf("%d 'j' keys left, want 2 responses and the mark", len(k))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: the counter continues above the mark; once an entry above
	// it is stored again, that entry is what a restart finds.
	for _, want := range []uint64{12, 13} {
		db = openDB(t, fs)
		j = openJournal(t, db, Options{legacyLayout: layoutDay0})
		if j.LastSeq() != want {
			t.Fatalf("LastSeq after reopening: %d, want %d", j.LastSeq(), want)
		}
		if want == 12 {
			if s := appendCommit(t, j, db, entryFor("20250316", "1000", "000001", "000009", "", In)); s[0] != 13 {
				t.Fatalf("first sequence after reopening: %d, want 13", s[0])
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPruneDaysDamage: a day-index key whose entry is missing or does not
// decode is deleted without failing the call or counting; the damaged entry
// is left.
func TestPruneDaysDamage(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{legacyLayout: layoutDay0})
	appendCommit(t, j, db,
		entryFor("20250310", "10000001", "000001", "000001", "000000000001", In), // 1: damaged
		entryFor("20250310", "10000001", "000001", "000002", "000000000002", In), // 2: missing
		entryFor("20250310", "10000001", "000001", "000003", "000000000003", In), // 3: intact
	)
	b := db.NewBatch()
	req, resp := entryFor("20250310", "10000001", "000001", "000004", "", In), entryFor("20250310", "10000001", "000001", "000004", "000000000004", Out)
	if _, _, err := j.AppendPair(b, req, resp); err != nil { // 4, 5: the pair damaged
		t.Fatal(err)
	}
	if err := errors.Join(b.Commit(pebble.Sync), b.Close()); err != nil {
		t.Fatal(err)
	}
	v, closer, err := db.Get(entryKey(1))
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(v)
	closer.Close()
	damaged[len(damaged)/2] ^= 1
	for _, err := range []error{
		db.Set(entryKey(1), damaged, pebble.Sync),
		db.Delete(entryKey(2), pebble.Sync),
		db.Set(entryKey(4), damagedPair(t, db), pebble.Sync),
		// A key in the day index Append never writes.
		db.Set([]byte("jd2025030"), nil, pebble.Sync),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, more, err := j.PruneDays("20250311", 100)
	if err != nil || more || st.Entries != 1 {
		t.Fatalf("prune: %+v more=%v %v, want 1 entry", st, more, err)
	}
	if _, err := j.Get(3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("intact entry 3: %v, want ErrNotFound", err)
	}
	if _, err := j.Get(1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged entry 1: %v, want it left (ErrCorrupt)", err)
	}
	{
		k, _ := keysWithPrefix(t, db, prefixJournal)
		var ks []string
		for _, k := range k {
			ks = append(ks, fmt.Sprintf("%q", k))
		}
		// Left: entry 1 and its terminal and RRN keys, the terminal and
		// RRN keys of 2, entry 4 and the pair's terminal key.
		want := []string{
			fmt.Sprintf("%q", entryKey(1)),
			fmt.Sprintf("%q", entryKey(4)),
			fmt.Sprintf("%q", appendSeq(append(rrnPrefix(nil, "000000000001"), "20250310"...), 1)),
			fmt.Sprintf("%q", appendSeq(append(rrnPrefix(nil, "000000000002"), "20250310"...), 2)),
			fmt.Sprintf("%q", appendSeq(append(rrnPrefix(nil, "000000000004"), "20250310"...), 4)),
			fmt.Sprintf("%q", appendSeq(termBatchPrefix(nil, "10000001", "000001"), 1)),
			fmt.Sprintf("%q", appendSeq(termBatchPrefix(nil, "10000001", "000001"), 2)),
			fmt.Sprintf("%q", appendSeq(termBatchPrefix(nil, "10000001", "000001"), 4)),
			fmt.Sprintf("%q", seqMarkKey),
		}
		slices.Sort(ks)
		slices.Sort(want)
		if !slices.Equal(ks, want) {
			t.Fatalf("left:\n%s\nwant:\n%s", strings.Join(ks, "\n"), strings.Join(want, "\n"))
		}
	}
	if st, more, err := j.PruneDays("20250311", 100); err != nil || more || st.Entries != 0 {
		t.Fatalf("second prune: %+v more=%v %v", st, more, err)
	}
}

func TestPruneRejectsInvalid(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{legacyLayout: layoutDay0})
	for _, tc := range []struct {
		before string
		max    int
	}{
		{"", 10}, {"2025031", 10}, {"2025031x", 10}, {"202503140", 10},
		{"20250314", 0}, {"20250314", -1}, {"20250314", MaxPrune + 1},
	} {
		if _, _, err := j.PruneDays(tc.before, tc.max); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("PruneDays(%q, %d): %v, want ErrInvalidEntry", tc.before, tc.max, err)
		}
	}
	for _, max := range []int{0, -1, MaxPrune + 1} {
		if _, _, err := j.PruneResponses(time.Now(), max, nil); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("PruneResponses max %d: %v, want ErrInvalidEntry", max, err)
		}
	}
}

// respFixture stores seven response records; in key order:
//
//	k1 05:00  k2 01:00  k3 06:00  k4 00:00 corrupt  k5 03:00  k6 02:00  k7 04:00
func respFixture(t *testing.T, j *Journal, db *pebble.DB) []DuplicateKey {
	t.Helper()
	var keys []DuplicateKey
	b := db.NewBatch()
	defer b.Close()
	for i, hour := range []int{5, 1, 6, 0, 3, 2, 4} {
		k := DuplicateKey{Terminal: "10000001", Batch: "000001", STAN: fmt.Sprintf("00000%d", i+1), Date: "0314"}
		keys = append(keys, k)
		rec := sampleResponse()
		rec.Time = time.Date(2025, 3, 14, hour, 0, 0, 0, time.UTC)
		if err := j.PutResponse(b, k, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	// Damage k4: it stays whatever the cut-off.
	k4 := keys[3].appendKey(nil)
	v, closer, err := db.Get(k4)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(v)
	closer.Close()
	damaged[len(damaged)-1] ^= 1
	if err := db.Set(k4, damaged, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestPruneResponses(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2025, 3, 14, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		before time.Time
		max    int
		calls  []int  // responses deleted by each call until more is false
		left   string // keys left, k4 (corrupt) always among them
	}{
		{"none older", at(0, 30), 10, []int{0}, "1 2 3 4 5 6 7"},
		{"exactly at a record's time is kept", at(1, 0), 10, []int{0}, "1 2 3 4 5 6 7"},
		{"three", at(3, 30), 10, []int{3}, "1 3 4 7"},
		// Each call stops after its one deletion and the next resumes
		// at the following key: k2 | k5 | k6 | k7 and the end.
		{"three by one", at(3, 30), 1, []int{1, 1, 1, 0}, "1 3 4 7"},
		{"all", at(23, 0), MaxPrune, []int{6}, "4"},
		{"all by four", at(23, 0), 4, []int{4, 2}, "4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t, vfs.NewMem())
			defer db.Close()
			j := openJournal(t, db, Options{legacyLayout: layoutDay0})
			appendCommit(t, j, db, entryFor("20250301", "10000001", "000001", "000001", "000000000001", In))
			keys := respFixture(t, j, db)
			var calls []int
			for more := true; more; {
				if len(calls) == 20 {
					t.Fatalf("no end after calls %v", calls)
				}
				st, m, err := j.PruneResponses(tc.before, tc.max, nil)
				if err != nil {
					t.Fatal(err)
				}
				if st.Entries != 0 || st.Responses > tc.max {
					t.Fatalf("call %d: %+v, max %d", len(calls)+1, st, tc.max)
				}
				calls, more = append(calls, st.Responses), m
			}
			if !reflect.DeepEqual(calls, tc.calls) {
				t.Fatalf("responses per call %v, want %v", calls, tc.calls)
			}
			var left []string
			for i, k := range keys {
				_, found, err := j.GetResponse(k)
				if found || errors.Is(err, ErrCorrupt) {
					left = append(left, fmt.Sprint(i+1))
				}
			}
			if got := strings.Join(left, " "); got != tc.left {
				t.Fatalf("left %q, want %q", got, tc.left)
			}
			if _, err := j.Get(1); err != nil {
				t.Fatalf("journal entry: %v", err)
			}
		})
	}
}

// TestPruneResponsesResume: a pass resumes where the last call stopped,
// but only for the same cut-off; a call that examined its bound without
// deleting still reports more.
func TestPruneResponsesResume(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{legacyLayout: layoutDay0})
	keys := respFixture(t, j, db)

	// One call with 03:30 stops after k2, at k3; a call with another
	// cut-off starts from the beginning, so k1 is deleted too.
	if st, more, err := j.PruneResponses(time.Date(2025, 3, 14, 3, 30, 0, 0, time.UTC), 1, nil); err != nil || !more || st.Responses != 1 {
		t.Fatalf("first: %+v %v %v", st, more, err)
	}
	if st, more, err := j.PruneResponses(time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC), 10, nil); err != nil || more || st.Responses != 5 {
		t.Fatalf("other cut-off: %+v %v %v, want 5 deleted", st, more, err)
	}
	if _, found, _ := j.GetResponse(keys[0]); found {
		t.Fatal("k1 left: the call resumed with another cut-off")
	}

	// 100 records, only STAN 000090 old; with max 1 a call examines 64.
	b := db.NewBatch()
	for i := range 100 {
		rec := sampleResponse()
		rec.Time = time.Date(2025, 3, 20, 12, 0, 0, 0, time.UTC)
		if i == 90 {
			rec.Time = time.Date(2025, 3, 16, 12, 0, 0, 0, time.UTC)
		}
		if err := j.PutResponse(b, DuplicateKey{Terminal: "20000001", Batch: "000001", STAN: fmt.Sprintf("%06d", i), Date: "0320"}, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(b.Commit(pebble.Sync), b.Close()); err != nil {
		t.Fatal(err)
	}
	// The corrupt k4 sorts first: 64 = k4 + 000000..000062 | 000063..
	// 000090, deleted | 000091..000099, the end.
	before := time.Date(2025, 3, 17, 0, 0, 0, 0, time.UTC)
	var calls []string
	for more := true; more && len(calls) < 10; {
		var st PruneStats
		var err error
		st, more, err = j.PruneResponses(before, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, fmt.Sprintf("%d/%v", st.Responses, more))
	}
	if got := strings.Join(calls, " "); got != "0/true 1/true 0/false" {
		t.Fatalf("calls %s", got)
	}
}

// TestPruneWhileAppending: entries of today appended, and responses
// stored, while older days and responses are pruned are never affected.
// Run with -race.
func TestPruneWhileAppending(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{legacyLayout: layoutDay0, MaxRead: 100_000})
	const old, today = 300, "20250314"
	oldTime := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range old {
		b := db.NewBatch()
		day := fmt.Sprintf("202503%02d", 10+i%3)
		term := fmt.Sprintf("T%07d", i%4)
		req := entryFor(day, term, "000001", fmt.Sprintf("%06d", i), "", In)
		resp := entryFor(day, term, "000001", fmt.Sprintf("%06d", i), fmt.Sprintf("%012d", i%50), Out)
		rec := sampleResponse()
		rec.Time = oldTime
		_, _, err1 := j.AppendPair(b, req, resp)
		err2 := j.PutResponse(b, DuplicateKey{Terminal: term, Batch: "000001", STAN: fmt.Sprintf("%06d", i), Date: "0310"}, rec)
		if err := errors.Join(err1, err2, b.Commit(pebble.NoSync), b.Close()); err != nil {
			t.Fatal(err)
		}
	}

	const workers, each = 4, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			term := fmt.Sprintf("T%07d", w) // the same terminals and RRNs as the old days
			for i := range each {
				b := db.NewBatch()
				stan := fmt.Sprintf("1%05d", i)
				req := entryFor(today, term, "000001", stan, "", In)
				resp := entryFor(today, term, "000001", stan, fmt.Sprintf("%012d", i%50), Out)
				rec := sampleResponse()
				rec.Time = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
				_, _, err1 := j.AppendPair(b, req, resp)
				err2 := j.PutResponse(b, DuplicateKey{Terminal: term, Batch: "000001", STAN: stan, Date: "0314"}, rec)
				if err := errors.Join(err1, err2, b.Commit(pebble.Sync), b.Close()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var entries, responses int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for more := true; more; {
			st, m, err := j.PruneDays(today, 7)
			if err != nil {
				errs <- err
				return
			}
			entries, more = entries+st.Entries, m
		}
		for more := true; more; {
			st, m, err := j.PruneResponses(time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC), 7, nil)
			if err != nil {
				errs <- err
				return
			}
			responses, more = responses+st.Responses, m
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if entries != 2*old || responses != old {
		t.Fatalf("pruned %d entries and %d responses, want %d and %d", entries, responses, 2*old, old)
	}
	n := 0
	if err := j.ByBusinessDay(today, func(e *Entry) bool { n++; return true }); err != nil || n != 2*workers*each {
		t.Fatalf("today: %d entries %v, want %d", n, err, 2*workers*each)
	}
	for w := range workers {
		got, err := j.ByTerminalBatch(fmt.Sprintf("T%07d", w), "000001", 100_000)
		if err != nil || len(got) != 2*each {
			t.Fatalf("terminal %d: %d entries %v, want %d", w, len(got), err, 2*each)
		}
		for _, e := range got {
			if e.BusinessDate != today {
				t.Fatalf("terminal %d: entry %d of %s left", w, e.Seq, e.BusinessDate)
			}
		}
	}
	got, err := j.ByRRN(fmt.Sprintf("%012d", 7), "", 100_000)
	if err != nil || len(got) != 2*workers*each/50 {
		t.Fatalf("rrn 7: %d entries %v, want %d", len(got), err, 2*workers*each/50)
	}
	k, _ := keysWithPrefix(t, db, prefixJournal)
	// Today: per pair one entry + day + terminal + RRN + response = 5.
	if len(k) != 5*workers*each+1 {
		t.Fatalf("%d 'j' keys, want %d", len(k), 5*workers*each+1)
	}
}

// TestPruneDaysLateEntry: a call resumes where the last one stopped, and a
// pass ends with a walk from the start, so an entry of an old day committed
// behind the resume point during the pass is not left behind.
func TestPruneDaysLateEntry(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{legacyLayout: layoutDay0})
	pruneFixture(t, j, db)
	var calls []int
	for more := true; more; {
		if len(calls) == 20 {
			t.Fatalf("no end after calls %v", calls)
		}
		if len(calls) == 3 {
			// The first three calls deleted 1 | pair 2,3 | 10, 5 and
			// stopped at the 11th's pair: seq 12 of the 10th sorts
			// behind that.
			appendCommit(t, j, db, entryFor("20250310", "10000001", "000002", "000010", "000000000012", In))
		}
		st, m, err := j.PruneDays("20250312", 2)
		if err != nil {
			t.Fatal(err)
		}
		calls, more = append(calls, st.Entries), m
	}
	// The fourth call resumes at the pair (6, 7) and reaches the end of
	// the range; the fifth walks from the start and finds 12.
	if want := []int{1, 2, 2, 2, 1}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("entries per call %v, want %v", calls, want)
	}
	if _, err := j.Get(12); !errors.Is(err, ErrNotFound) {
		t.Fatalf("late entry 12: %v, want ErrNotFound", err)
	}
	if got, err := j.ByRRN("000000000012", "", 10); err != nil || len(got) != 0 {
		t.Fatalf("late entry's RRN: %v %v", got, err)
	}
}

// TestPruneResponsesKeepsOpenBatches: keep spares the records of the
// batches it names, whatever their age, and is asked with the terminal
// and batch read back from each key (terminal "1000" must not match
// "10000001", nor batch "000002" match "000001").
func TestPruneResponsesKeepsOpenBatches(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{legacyLayout: layoutDay0})
	old := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	keys := []DuplicateKey{
		{Terminal: "10000001", Batch: "000001", STAN: "000001", Date: "0301"}, // open: kept
		{Terminal: "10000001", Batch: "000001", STAN: "000002", Date: "0301"}, // open: kept
		{Terminal: "10000001", Batch: "000002", STAN: "000001", Date: "0301"}, // another batch
		{Terminal: "1000", Batch: "000001", STAN: "000001", Date: "0301"},     // another terminal
	}
	b := db.NewBatch()
	for _, k := range keys {
		rec := sampleResponse()
		rec.Time = old
		if err := j.PutResponse(b, k, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	var asked []string
	keep := func(terminal, batch string) bool {
		asked = append(asked, terminal+"/"+batch)
		return terminal == "10000001" && batch == "000001"
	}
	st, more, err := j.PruneResponses(old.Add(time.Hour), 10, keep)
	if err != nil || more || st.Responses != 2 {
		t.Fatalf("prune: %+v more %v, %v; want the 2 records outside the open batch", st, more, err)
	}
	for i, k := range keys {
		_, found, err := j.GetResponse(k)
		if err != nil || found != (i < 2) {
			t.Errorf("%+v: found %v (%v), want %v", k, found, err, i < 2)
		}
	}
	if want := "1000/000001 10000001/000001 10000001/000001 10000001/000002"; strings.Join(asked, " ") != want {
		t.Errorf("keep asked %q, want %q", strings.Join(asked, " "), want)
	}
}

// damagedPair returns the stored pair at sequence 4 with one bit flipped.
func damagedPair(t *testing.T, db *pebble.DB) []byte {
	t.Helper()
	v, closer, err := db.Get(entryKey(4))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	d := bytes.Clone(v)
	d[len(d)/2] ^= 1
	return d
}

// TestPruneDaysManyDamaged: more undecodable entries than one call's bound
// lie before intact ones. They are left for an operator and do not count
// against the bound, so the calls delete the intact entries and then say
// there is no more (they used to stop at the damage every time, and ask for
// another call for ever).
func TestPruneDaysManyDamaged(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	var es []*Entry
	for i := range 250 {
		es = append(es, entryFor("20250310", "10000001", "000001", fmt.Sprintf("%06d", i+1), "", In))
	}
	seqs := appendCommit(t, j, db, es...)
	for _, s := range seqs[:150] {
		if err := db.Set(entryKey(s), []byte("not an entry"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	deleted, calls := 0, 0
	for more := true; more; calls++ {
		if calls == 20 {
			t.Fatalf("still more after %d calls (%d deleted)", calls, deleted)
		}
		st, m, err := j.PruneDays("20250311", 100)
		if err != nil {
			t.Fatal(err)
		}
		deleted, more = deleted+st.Entries, m
	}
	if deleted != 100 {
		t.Fatalf("deleted %d entries, want the 100 intact ones", deleted)
	}
	if _, err := j.Get(seqs[0]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged entry: %v, want it left (ErrCorrupt)", err)
	}
}
