package ledger

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Benchmarks run on a real directory (b.TempDir) with pebble.Sync, so the
// figures include fsync and Pebble's commit-pipeline grouping. Compare
// BenchmarkConsume/distinct-64 with BenchmarkRawSyncedCommit/keys-1 in
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
// idempotency record, reference and RRN index, journal entry) but side by
// side; consume-records writes the same six records at the places a
// consume puts them (a card record per writer, the reference and
// idempotency record per terminal, posting, RRN and journal in ascending
// order), with no ledger logic at all. The ratios separate Pebble's cost
// of the records a consume must persist from the ledger's own.
func BenchmarkRawSyncedCommit(b *testing.B) {
	for _, sizes := range [][]int{{200}, {150, 170, 60, 16, 16, 160}} {
		b.Run(fmt.Sprintf("keys-%d", len(sizes)), func(b *testing.B) {
			db := benchDB(b)
			var seq atomic.Uint64
			b.SetParallelism(32) // 64 goroutines with GOMAXPROCS=2
			defer reportCPU(b)()
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
	b.Run("consume-records", func(b *testing.B) {
		db := benchDB(b)
		var w atomic.Uint32
		b.SetParallelism(32)
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			n := w.Add(1)
			term, pan := fmt.Sprintf("B%07d", n), fmt.Sprintf("62301520%011d", n)
			val := make([]byte, 160)
			stan := uint32(0)
			for pb.Next() {
				stan++
				seq := callerSeq.Add(1)
				bt := db.NewBatch()
				bt.Set(cardKey(pan), val[:104], nil)
				bt.Set(postKey(seq), val[:139], nil)
				bt.Set(refKey(TxnRef{term, 1, stan}), val[:7], nil)
				bt.Set(rrnKey(day1, fmt.Sprintf("%012d", seq)), val[:7], nil)
				bt.Set(idemKey(KindConsume, fmt.Sprintf("%s|%d", term, stan)), val[:37], nil)
				bt.Set(binary.BigEndian.AppendUint64([]byte("j"), seq), val, nil)
				if err := bt.Commit(pebble.Sync); err != nil {
					b.Error(err)
				}
				bt.Close()
			}
		})
	})
}

// reportCPU starts the benchmark's clock and returns the function that
// reports the process's CPU time (user + system, every goroutine and
// Pebble's background work) per operation: on two cores shared by 64
// writers, wall time per operation follows CPU time per operation.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	b.ResetTimer()
	return func() {
		b.StopTimer()
		b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e3, "cpu-µs/op")
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
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			w := int(g.Add(1) - 1) // one terminal per goroutine, cards shared only beyond 64
			consumeLoop(b, l, fmt.Sprintf("B%07d", w), pans[w%len(pans)], pb.Next)
		})
	})
	b.Run("hot-card-64", func(b *testing.B) {
		l, pans := benchLedger(b, 1)
		var g atomic.Int32
		b.SetParallelism(32)
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			consumeLoop(b, l, fmt.Sprintf("H%07d", g.Add(1)), pans[0], pb.Next)
		})
	})
}
