package ledger

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// Benchmarks run on a real directory (b.TempDir) with pebble.Sync, so the
// figures include fsync and Pebble's commit-pipeline grouping. Compare
// BenchmarkConsume/distinct-64 with BenchmarkRawSyncedCommit/writers-64 in
// the same run: the target is ≥ 60% of the raw rate.
//
//	go test -run '^$' -bench . -benchtime 5s -count 3 ./ledger/

func benchDB(b *testing.B) *pebble.DB {
	o := RecommendedPebbleOptions()
	o.Logger = quietLogger{}
	db, err := pebble.Open(b.TempDir(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkRawSyncedCommit is the ceiling: one synced batch per operation,
// 64 writers, nothing else. keys-1 is one small record; keys-6 writes as
// many keys and bytes as a consume batch does (card, posting set,
// idempotency record, reference and RRN index, journal entry), so the
// ratio to BenchmarkConsume/distinct-64 separates the ledger's own cost
// from Pebble's per-key cost.
func BenchmarkRawSyncedCommit(b *testing.B) {
	for _, sizes := range [][]int{{200}, {150, 170, 60, 16, 16, 160}} {
		b.Run(fmt.Sprintf("keys-%d", len(sizes)), func(b *testing.B) {
			db := benchDB(b)
			var seq atomic.Uint64
			b.SetParallelism(32) // 64 goroutines with GOMAXPROCS=2
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := []byte("x-raw-000000000")
				for pb.Next() {
					binary.BigEndian.PutUint64(key[6:], seq.Add(1))
					bt := db.NewBatch()
					for i, n := range sizes {
						key[14] = byte(i)
						bt.Set(key, make([]byte, n), nil)
					}
					if err := bt.Commit(pebble.Sync); err != nil {
						b.Error(err)
					}
					bt.Close()
				}
			})
		})
	}
}

func benchLedger(b *testing.B, cards int) (*Ledger, []string) {
	db := benchDB(b)
	l, err := Open(db, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := l.AddMerchant(MerchantSpec{ID: canteen, Name: "Canteen", OnCampus: true}); err != nil {
		b.Fatal(err)
	}
	pans := make([]string, cards)
	big := MaxAmount
	for i := range pans {
		pans[i] = fmt.Sprintf("62301520%011d", i)
		if err := l.OpenCard(CardSpec{PAN: pans[i], HolderType: Staff, Cash: 1_000_000_000, MaxBalance: &big}, nil); err != nil {
			b.Fatal(err)
		}
	}
	return l, pans
}

// callerSeq stands for the switch's own sequence numbers: it allocates
// RRNs from one counter (switch/clock.go) and keys its journal entries by
// a global sequence (journal/), so both reach the memtable in ascending
// order, as they do here. Per-terminal RRNs and journal keys would put two
// more scattered inserts in every commit than the switch ever makes.
var callerSeq atomic.Uint64

// consumeLoop runs consumes of 0.01 on pan from one simulated terminal,
// each in its own synced batch with a journal-sized entry of the caller's.
func consumeLoop(b *testing.B, l *Ledger, term, pan string, next func() bool) {
	journal := make([]byte, 160)
	stan := uint32(0)
	for next() {
		stan++
		seq := callerSeq.Add(1)
		c := Common{Key: fmt.Sprintf("%s|%d", term, stan), Date: day1, Terminal: term, Merchant: canteen, Batch: stan / 999999, STAN: stan % 999999, RRN: fmt.Sprintf("%012d", seq),
			// Keys are unique, as the switch proves with its trace watermark.
			KnownNew: true}
		bt := l.db.NewBatch()
		res, err := l.Execute(&Consume{Common: c, PAN: pan, Amount: 1, PIN: PINVerified}, bt, func(Result) error {
			bt.Set(binary.BigEndian.AppendUint64([]byte("j"), seq), journal, nil)
			return bt.Commit(pebble.Sync)
		})
		bt.Close()
		if err != nil || !res.Approved() {
			b.Errorf("consume: %v %s", err, res.Decline)
			return
		}
	}
}

func BenchmarkConsume(b *testing.B) {
	b.Run("writers-1", func(b *testing.B) {
		l, pans := benchLedger(b, 1)
		b.ResetTimer()
		i := 0
		consumeLoop(b, l, "B0000000", pans[0], func() bool { i++; return i <= b.N })
	})
	b.Run("distinct-64", func(b *testing.B) {
		l, pans := benchLedger(b, 64)
		var g atomic.Int32
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := int(g.Add(1) - 1) // one terminal per goroutine, cards shared only beyond 64
			consumeLoop(b, l, fmt.Sprintf("B%07d", w), pans[w%len(pans)], pb.Next)
		})
	})
	b.Run("hot-card-64", func(b *testing.B) {
		l, pans := benchLedger(b, 1)
		var g atomic.Int32
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			consumeLoop(b, l, fmt.Sprintf("H%07d", g.Add(1)), pans[0], pb.Next)
		})
	})
}
