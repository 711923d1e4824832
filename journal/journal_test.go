package journal

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// sampleEntry is a POS consume request as the switch would journal it (PIN
// block and track 2 already removed by the caller).
func sampleEntry() *Entry {
	return &Entry{
		Direction:    In,
		Listener:     "pos",
		Peer:         "10.1.2.3:40112",
		Terminal:     "10000001",
		Merchant:     "898310000000001",
		MTI:          "0200",
		STAN:         "000123",
		Batch:        "000001",
		RRN:          "123456789012",
		TxType:       "consume",
		Time:         time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC),
		BusinessDate: "20250314",
		Raw:          []byte{0x02, 0x00, 0x70, 0x20},
	}
}

// openDB opens a Pebble instance on fs (an in-memory one survives Close, so
// reopening it is a restart).
func openDB(t testing.TB, fs vfs.FS) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func openJournal(t testing.TB, db *pebble.DB, opts Options) *Journal {
	t.Helper()
	j, err := Open(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// entryFor builds an entry for the index tests.
func entryFor(date, terminal, batch, stan, rrn string, dir Direction) *Entry {
	return &Entry{
		Direction: dir, Listener: "pos", Terminal: terminal, Merchant: "898310000000001",
		MTI: "0200", STAN: stan, Batch: batch, RRN: rrn, TxType: "consume",
		Time: time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC), BusinessDate: date,
		Raw: []byte(terminal + stan),
	}
}

func appendCommit(t testing.TB, j *Journal, db *pebble.DB, es ...*Entry) []uint64 {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	var seqs []uint64
	for _, e := range es {
		s, err := j.Append(b, e)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// sq is the sequence of counter c on business day date.
func sq(date string, c uint64) uint64 {
	d, ok := dayNumber(date)
	if !ok {
		panic(date)
	}
	return dayStart(d) + c
}

// stans lists counter:STAN of each entry (the counter is the sequence
// without its day).
func stans(es []*Entry) string {
	var s []byte
	for i, e := range es {
		if i > 0 {
			s = append(s, ' ')
		}
		s = fmt.Appendf(s, "%d:%s", seqCounter(e.Seq), e.STAN)
	}
	return string(s)
}

func TestAppendAndIndexes(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	var appended atomic.Int64
	j := openJournal(t, db, Options{OnAppend: func() { appended.Add(1) }, MaxRead: 50})

	// Terminal "1000" and "10000" must not share an index range, nor RRNs
	// that are prefixes of one another.
	seqs := appendCommit(t, j, db,
		entryFor("20250313", "10000001", "000001", "000001", "000000000001", In),                       // 13th: 1
		entryFor("20250314", "10000001", "000001", "000002", "000000000002", In),                       // 14th: 1
		entryFor("20250314", "10000001", "000001", "000002", "000000000002", Out),                      // 2
		entryFor("20250314", "10000001", "000002", "000003", "", In),                                   // 3
		entryFor("20250314", "1000", "000001", "000004", "00000000000", In),                            // 4
		entryFor("20250314", "10000", "000001", "000005", "000000000001", In),                          // 5
		entryFor("20250315", "10000001", "000002", "000006", "", In),                                   // 15th: 1
		&Entry{Direction: In, Flags: FlagUndecodable, Time: time.Unix(1, 0), BusinessDate: "20250314"}, // 14th: 6
	)
	// Each day counts its own sequences.
	if want := []uint64{sq("20250313", 1), sq("20250314", 1), sq("20250314", 2), sq("20250314", 3), sq("20250314", 4), sq("20250314", 5), sq("20250315", 1), sq("20250314", 6)}; fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("sequences %v, want %v", seqs, want)
	}
	if appended.Load() != 8 {
		t.Fatalf("OnAppend called %d times, want 8", appended.Load())
	}

	e, err := j.Get(sq("20250314", 2))
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != sq("20250314", 2) || e.Direction != Out || e.STAN != "000002" || string(e.Raw) != "10000001000002" {
		t.Fatalf("Get(3) = %+v", e)
	}
	if _, err := j.Get(sq("20250314", 99)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(99): %v, want ErrNotFound", err)
	}

	tests := []struct {
		name string
		read func() ([]*Entry, error)
		want string
	}{
		{"rrn any day", func() ([]*Entry, error) { return j.ByRRN("000000000001", "", 10) }, "1:000001 5:000005"},
		{"rrn one day", func() ([]*Entry, error) { return j.ByRRN("000000000001", "20250314", 10) }, "5:000005"},
		{"rrn request and response", func() ([]*Entry, error) { return j.ByRRN("000000000002", "", 10) }, "1:000002 2:000002"},
		{"rrn prefix of another is separate", func() ([]*Entry, error) { return j.ByRRN("00000000000", "", 10) }, "4:000004"},
		{"rrn unknown", func() ([]*Entry, error) { return j.ByRRN("999999999999", "", 10) }, ""},
		{"rrn limited", func() ([]*Entry, error) { return j.ByRRN("000000000001", "", 1) }, "1:000001"},
		{"terminal batch across days", func() ([]*Entry, error) { return j.ByTerminalBatch("10000001", "000002", 10) }, "3:000003 1:000006"},
		{"terminal batch", func() ([]*Entry, error) { return j.ByTerminalBatch("10000001", "000001", 10) }, "1:000001 1:000002 2:000002"},
		{"short terminal id is separate", func() ([]*Entry, error) { return j.ByTerminalBatch("1000", "000001", 10) }, "4:000004"},
		{"terminal batch limited", func() ([]*Entry, error) { return j.ByTerminalBatch("10000001", "000001", 2) }, "1:000001 1:000002"},
		{"business day", func() ([]*Entry, error) {
			var out []*Entry
			err := j.ByBusinessDay("20250314", func(e *Entry) bool { out = append(out, e); return true })
			return out, err
		}, "1:000002 2:000002 3:000003 4:000004 5:000005 6:"},
		{"business day stops when told", func() ([]*Entry, error) {
			var out []*Entry
			err := j.ByBusinessDay("20250314", func(e *Entry) bool { out = append(out, e); return len(out) < 2 })
			return out, err
		}, "1:000002 2:000002"},
		{"business day empty", func() ([]*Entry, error) {
			var out []*Entry
			err := j.ByBusinessDay("20240101", func(e *Entry) bool { out = append(out, e); return true })
			return out, err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read()
			if err != nil {
				t.Fatal(err)
			}
			if s := stans(got); s != tt.want {
				t.Fatalf("got %q, want %q", s, tt.want)
			}
		})
	}

	bad := []struct {
		name string
		err  error
		want error
	}{
		{"rrn empty", func() error { _, err := j.ByRRN("", "", 1); return err }(), ErrInvalidEntry},
		{"rrn bad date", func() error { _, err := j.ByRRN("1", "2025", 1); return err }(), ErrInvalidEntry},
		{"rrn limit zero", func() error { _, err := j.ByRRN("1", "", 0); return err }(), ErrLimit},
		{"rrn limit over MaxRead", func() error { _, err := j.ByRRN("1", "", 51); return err }(), ErrLimit},
		{"terminal empty", func() error { _, err := j.ByTerminalBatch("", "000001", 1); return err }(), ErrInvalidEntry},
		{"terminal limit", func() error { _, err := j.ByTerminalBatch("1", "000001", 51); return err }(), ErrLimit},
		{"day bad", func() error { return j.ByBusinessDay("2025031x", func(*Entry) bool { return true }) }(), ErrInvalidEntry},
	}
	for _, tt := range bad {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
	}
}

// TestUncommittedBatchLeavesNothing: an Append whose batch is discarded
// leaves only a gap in the sequence.
func TestUncommittedBatchLeavesNothing(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	b := db.NewBatch()
	if _, err := j.Append(b, entryFor("20250314", "10000001", "000001", "000001", "000000000001", In)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := j.Get(sq("20250314", 1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(1) after discarded batch: %v, want ErrNotFound", err)
	}
	if es, err := j.ByRRN("000000000001", "", 10); err != nil || len(es) != 0 {
		t.Fatalf("ByRRN after discarded batch: %v, %v", es, err)
	}
	if seqs := appendCommit(t, j, db, entryFor("20250314", "10000001", "000001", "000002", "", In)); seqs[0] != sq("20250314", 2) {
		t.Fatalf("next sequence %d, want 2", seqs[0])
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	var calls atomic.Int64
	j := openJournal(t, db, Options{OnAppend: func() { calls.Add(1) }})
	b := db.NewBatch()
	defer b.Close()
	e := sampleEntry()
	e.BusinessDate = "2025"
	if _, err := j.Append(b, e); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("Append: %v, want ErrInvalidEntry", err)
	}
	if _, err := j.Append(nil, sampleEntry()); err == nil {
		t.Fatal("Append into nil batch succeeded")
	}
	if b.Count() != 0 || calls.Load() != 0 || j.LastSeq() != 0 {
		t.Fatalf("rejected entry left %d batch ops, %d OnAppend calls, seq %d", b.Count(), calls.Load(), j.LastSeq())
	}
}

// TestRestart: after a restart the day's counter continues at its
// counter mark, above every sequence handed out before (the discarded
// one too), and every entry and index is still there. It runs on a real
// directory so that the files really are closed and reopened.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *pebble.DB {
		db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	j := openJournal(t, db, Options{})
	for i := 0; i < 5; i++ {
		appendCommit(t, j, db, entryFor("20250314", "10000001", "000001", fmt.Sprintf("%06d", i), "", In))
	}
	// A discarded batch after the last commit: its sequence is not stored
	// and is not handed out again after the restart either.
	b := db.NewBatch()
	if _, err := j.Append(b, sampleEntry()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open()
	defer db.Close()
	j = openJournal(t, db, Options{})
	if j.LastSeq() != 0 {
		t.Fatalf("LastSeq after restart %d, want 0", j.LastSeq())
	}
	if seqs := appendCommit(t, j, db, entryFor("20250314", "10000001", "000001", "000005", "", In)); seqs[0] != sq("20250314", 1+seqBlock) {
		t.Fatalf("first sequence after restart %d, want the mark %d", seqs[0], sq("20250314", 1+seqBlock))
	}
	if j.LastSeq() != 1+seqBlock {
		t.Fatalf("LastSeq %d, want %d", j.LastSeq(), 1+seqBlock)
	}
	got, err := j.ByTerminalBatch("10000001", "000001", 100)
	if err != nil {
		t.Fatal(err)
	}
	if s := stans(got); s != "1:000000 2:000001 3:000002 4:000003 5:000004 10001:000005" {
		t.Fatalf("after restart: %s", s)
	}
}

// TestConcurrentAppend: appends into separate batches committed
// concurrently get unique sequences, and every one is readable. Run with
// -race.
func TestConcurrentAppend(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{MaxRead: 10000})
	const workers, each = 8, 100
	seqs := make([][]uint64, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			term := fmt.Sprintf("T%07d", w)
			for i := 0; i < each; i++ {
				b := db.NewBatch()
				req := entryFor("20250314", term, "000001", fmt.Sprintf("%06d", i), "", In)
				resp := entryFor("20250314", term, "000001", fmt.Sprintf("%06d", i), "", Out)
				s1, err1 := j.Append(b, req)
				s2, err2 := j.Append(b, resp)
				if err := errors.Join(err1, err2, b.Commit(pebble.Sync), b.Close()); err != nil {
					errs <- err
					return
				}
				seqs[w] = append(seqs[w], s1, s2)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for w, ss := range seqs {
		for i, s := range ss {
			if seen[s] {
				t.Fatalf("sequence %d handed out twice", s)
			}
			seen[s] = true
			if i > 0 && s <= ss[i-1] {
				t.Fatalf("worker %d: sequence %d after %d", w, s, ss[i-1])
			}
		}
		got, err := j.ByTerminalBatch(fmt.Sprintf("T%07d", w), "000001", 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2*each {
			t.Fatalf("worker %d: %d entries indexed, want %d", w, len(got), 2*each)
		}
	}
	n := 0
	var last uint64
	if err := j.ByBusinessDay("20250314", func(e *Entry) bool {
		if e.Seq <= last {
			t.Errorf("day index out of order: %d after %d", e.Seq, last)
		}
		last = e.Seq
		n++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if n != workers*each*2 || len(seen) != n {
		t.Fatalf("day has %d entries, %d sequences handed out, want %d", n, len(seen), workers*each*2)
	}
}

// TestReadsDetectDamage: a stored entry that does not decode, or an index
// key without its entry, is reported as corruption, never skipped.
func TestReadsDetectDamage(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	appendCommit(t, j, db, entryFor("20250314", "10000001", "000001", "000001", "000000000001", In))
	v, closer, err := db.Get(entryKey(sq("20250314", 1)))
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(v)
	closer.Close()
	damaged[len(damaged)/2] ^= 1
	if err := db.Set(entryKey(sq("20250314", 1)), damaged, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Get(sq("20250314", 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of damaged entry: %v, want ErrCorrupt", err)
	}
	if _, err := j.ByRRN("000000000001", "", 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ByRRN of damaged entry: %v, want ErrCorrupt", err)
	}
	if err := db.Delete(entryKey(sq("20250314", 1)), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := j.ByTerminalBatch("10000001", "000001", 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("index without entry: %v, want ErrCorrupt", err)
	}
}

func TestOpenOptions(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	if _, err := Open(nil, Options{}); err == nil {
		t.Fatal("Open(nil) succeeded")
	}
	for _, n := range []int{-1, maxMaxRead + 1} {
		if _, err := Open(db, Options{MaxRead: n}); err == nil {
			t.Fatalf("Open with MaxRead %d succeeded", n)
		}
	}
}

// BenchmarkAppend measures Append of a request-sized entry into a batch
// (no commit): the journal's share of the POS hot path.
func BenchmarkAppend(b *testing.B) {
	db := openDB(b, vfs.NewMem())
	defer db.Close()
	j := openJournal(b, db, Options{OnAppend: func() {}})
	e := sampleEntry()
	e.Raw = make([]byte, 120)
	batch := db.NewBatch()
	defer batch.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%1024 == 0 {
			batch.Reset()
		}
		if _, err := j.Append(batch, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendCommit measures a request + response pair appended and
// committed without sync (the fsync is the ledger's shared cost).
func BenchmarkAppendCommit(b *testing.B) {
	db := openDB(b, vfs.NewMem())
	defer db.Close()
	j := openJournal(b, db, Options{})
	req, resp := sampleEntry(), sampleEntry()
	resp.Direction = Out
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := db.NewBatch()
		if _, err := j.Append(batch, req); err != nil {
			b.Fatal(err)
		}
		if _, err := j.Append(batch, resp); err != nil {
			b.Fatal(err)
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}

// TestAppendPair: a request/response pair shares one set of index keys
// and every read returns both entries, in order, mixed with single
// entries.
func TestAppendPair(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	var appended atomic.Int64
	j := openJournal(t, db, Options{OnAppend: func() { appended.Add(1) }})

	single := entryFor("20250314", "10000001", "000001", "000001", "", In)
	void := entryFor("20250314", "10000001", "000001", "000002", "000000000007", In) // names the original
	voidResp := entryFor("20250314", "10000001", "000001", "000002", "000000000009", Out)
	consume := entryFor("20250314", "10000001", "000001", "000003", "", In)
	consumeResp := entryFor("20250314", "10000001", "000001", "000003", "000000000010", Out)

	b := db.NewBatch()
	if _, err := j.Append(b, single); err != nil {
		t.Fatal(err)
	}
	if s1, s2, err := j.AppendPair(b, void, voidResp); err != nil || s1 != sq("20250314", 2) || s2 != sq("20250314", 3) {
		t.Fatalf("pair: %d %d %v", s1, s2, err)
	}
	if _, _, err := j.AppendPair(b, consume, consumeResp); err != nil {
		t.Fatal(err)
	}
	// single: entry + terminal = 2; void pair: one entry for both +
	// terminal + 2 RRNs = 4; consume pair: one entry + terminal + RRN =
	// 3 (the sequence carries the day: no day index key).
	if b.Count() != 9 {
		t.Fatalf("batch holds %d keys, want 9", b.Count())
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if appended.Load() != 5 {
		t.Fatalf("OnAppend %d, want 5", appended.Load())
	}
	seqs := func(es []*Entry, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, e := range es {
			out += fmt.Sprintf("%d%s ", seqCounter(e.Seq), e.Direction)
		}
		return out
	}
	if got := seqs(j.ByTerminalBatch("10000001", "000001", 100)); got != "1in 2in 3out 4in 5out " {
		t.Fatalf("by terminal batch: %s", got)
	}
	if got := seqs(j.ByRRN("000000000009", "", 100)); got != "2in 3out " {
		t.Fatalf("by response RRN: %s", got)
	}
	if got := seqs(j.ByRRN("000000000007", "", 100)); got != "2in 3out " {
		t.Fatalf("by the RRN the request names: %s", got)
	}
	if got := seqs(j.ByRRN("000000000010", "20250314", 100)); got != "4in 5out " {
		t.Fatalf("by RRN and day: %s", got)
	}
	var day string
	if err := j.ByBusinessDay("20250314", func(e *Entry) bool { day += fmt.Sprintf("%d ", seqCounter(e.Seq)); return true }); err != nil || day != "1 2 3 4 5 " {
		t.Fatalf("by day: %q %v", day, err)
	}
	if got := seqs(j.ByTerminalBatch("10000001", "000001", 2)); got != "1in 2in " {
		t.Fatalf("limit: %s", got)
	}
	other := entryFor("20250314", "10000002", "000001", "000003", "", Out)
	if _, _, err := j.AppendPair(db.NewBatch(), consume, other); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("pair across terminals: %v", err)
	}
}
