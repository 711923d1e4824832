package baseline

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// startServer starts a baseline server on a loopback port and a temp
// directory, closed when the test ends.
func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestBaselineEchoes(t *testing.T) {
	s := startServer(t)
	res, err := Load(context.Background(), s.Addr(), 4, 300*time.Millisecond, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Every echo decoded, carried the request's STAN and a MAC that
	// verified under the terminal's MAK; and every frame was committed.
	if res.Errors != 0 || res.Approved == 0 || res.Latency.Count() != res.Approved {
		t.Fatalf("%s", res.Summary())
	}
	if got := s.seq.Load(); got < res.Approved {
		t.Fatalf("%d frames committed for %d echoes", got, res.Approved)
	}
	if _, err := Load(context.Background(), s.Addr(), 0, time.Second, 0, 0); err == nil {
		t.Fatal("0 connections accepted")
	}
	if _, err := Load(context.Background(), s.Addr(), 4, time.Second, -1, 0); err == nil {
		t.Fatal("a negative rate accepted")
	}
}

func TestBaselineFixedRate(t *testing.T) {
	s := startServer(t)
	// 200/s for 0.6 s is 120 sends, give or take the last tick; closed
	// loop on 4 connections would do thousands, so the pacing shows.
	res, err := Load(context.Background(), s.Addr(), 4, 600*time.Millisecond, 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The pacer's own count (sent + missed ticks) shows the pacing; how
	// many ticks a loaded machine misses measures the machine, not the
	// pacer, so it is not checked. A closed loop would send thousands.
	sent := res.Approved + res.Missed
	if res.Errors != 0 || sent < 100 || sent > 130 || res.Approved > 130 {
		t.Fatalf("200/s for 0.6 s: %s missed %d", res.Summary(), res.Missed)
	}
}

// TestConsumeShapedCommit checks what the storage floor commits: per
// frame the four keys of a consume, of ConsumeShape's sizes — a journal
// pair and a posting set under sequences that only grow, a duplicate
// record per terminal and STAN, the purses of two cards per terminal
// rewritten in place.
func TestConsumeShapedCommit(t *testing.T) {
	s, err := ListenCommit("127.0.0.1:0", filepath.Join(t.TempDir(), "db"), CommitConsume)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	res, err := Load(context.Background(), s.Addr(), 4, 300*time.Millisecond, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Approved == 0 {
		t.Fatalf("%s", res.Summary())
	}
	// Every answer came after its commit, so the counters bound the
	// answers; read the store after the last commit.
	frames := s.seq.Load()
	if frames < res.Approved || s.txid.Load() != frames {
		t.Fatalf("%d sequences, %d posting ids for %d answers", frames, s.txid.Load(), res.Approved)
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]uint64{}
	prefixes := map[string]int{"je": 0, "jo": 1, "lb": 2, "lp": 3}
	for it.First(); it.Valid(); it.Next() {
		p := string(it.Key()[:2])
		i, ok := prefixes[p]
		if !ok {
			t.Fatalf("unexpected key %q", it.Key())
		}
		if sh := ConsumeShape[i]; len(it.Key()) != sh.Key || len(it.Value()) != sh.Value {
			t.Fatalf("%q: key %d value %d bytes, want %d and %d", it.Key(), len(it.Key()), len(it.Value()), sh.Key, sh.Value)
		}
		count[p]++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if count["je"] != frames || count["lp"] != frames || count["jo"] != frames {
		t.Fatalf("keys %v for %d frames: want one pair, posting set and duplicate record each", count, frames)
	}
	if count["lb"] == 0 || count["lb"] > 2*4 {
		t.Fatalf("%d purse keys for 4 terminals of 2 cards", count["lb"])
	}
}

// TestConsumeShapeMatchesTheJournalTable keeps ConsumeShape the sizes
// docs/journal.md gives for one consume: the key's bytes equal, the
// value's within the range the table gives, 385 bytes in all.
func TestConsumeShapeMatchesTheJournalTable(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/journal.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(j e|j o|l b|l p)` [^|]*\\| (\\d+) \\+ (\\d+)(?:–(\\d+))? \\|")
	order := map[string]int{"j e": 0, "j o": 1, "l b": 2, "l p": 3}
	seen, total := 0, 0
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		sh := ConsumeShape[order[m[1]]]
		key, _ := strconv.Atoi(m[2])
		lo, _ := strconv.Atoi(m[3])
		hi := lo
		if m[4] != "" {
			hi, _ = strconv.Atoi(m[4])
		}
		if sh.Key != key || sh.Value < lo || sh.Value > hi {
			t.Errorf("`%s`: ConsumeShape has %d + %d, docs/journal.md %s", m[1], sh.Key, sh.Value, m[0])
		}
		seen++
		total += sh.Key + sh.Value
	}
	if seen != 4 || total != 385 {
		t.Fatalf("%d rows of docs/journal.md's consume table matched, %d bytes in all: want 4 and 385", seen, total)
	}
}
