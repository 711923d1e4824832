package switching

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
	"github.com/cockroachdb/pebble/v2"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// BenchmarkConsumeEndToEnd drives consumes through the real acceptor,
// HSM, ledger and journal with one synced commit each, from 64 terminals
// on their own connections and cards, closed loop, client in-process.
// ns/op is wall time per transaction across all terminals (1/throughput).
func BenchmarkConsumeEndToEnd(b *testing.B) {
	sw, terms, cards := benchTerminals(b, 64)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	cpu0 := processCPU()
	syncs0 := walSyncs(b, sw.db)
	for i := range terms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				req, err := terms[i].Consume(cards[i], 1, "")
				if err != nil {
					b.Error(err)
					return
				}
				resp, err := terms[i].Do(req)
				if err != nil || resp.ResponseCode != spec.RCApproved {
					b.Errorf("consume: %v %v", resp, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tps")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	// Each consume commits one synced batch; concurrent commits share a
	// WAL sync when Pebble's commit pipeline groups them, so fewer than
	// one fsync per consume means group commit happens
	// (docs/BENCHMARKS.md#group-commit).
	b.ReportMetric(float64(walSyncs(b, sw.db)-syncs0)/float64(b.N), "fsyncs/op")
}

// BenchmarkStorageGrowth measures what a consume leaves on disk once
// Pebble has compacted it away from its WAL and memtable: b.N consumes
// from 16 terminals, then a flush and a full compaction; disk-B/op is the
// growth of the sstables per consume, journal-B/op and ledger-B/op the
// part under each key prefix, postings-B/op the posting sets (the books,
// never pruned) (docs/BENCHMARKS.md#storage-growth). Run it
// with -benchtime 20000x or more: the first transactions of a terminal
// and the tables' fixed costs weigh on smaller runs.
func BenchmarkStorageGrowth(b *testing.B) {
	sw, terms, cards := benchTerminals(b, 16)
	compacted := func() (total, j, l, lp uint64) {
		b.Helper()
		if err := sw.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := sw.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
			b.Fatal(err)
		}
		var err error
		est := func(lo, hi string) uint64 {
			var n uint64
			if err == nil {
				n, err = sw.db.EstimateDiskUsage([]byte(lo), []byte(hi))
			}
			return n
		}
		total, j, l, lp = est("\x00", "\xff"), est("j", "k"), est("l", "m"), est("lp", "lq")
		if err != nil {
			b.Fatal(err)
		}
		return total, j, l, lp
	}
	t0, j0, l0, p0 := compacted()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range terms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				req, err := terms[i].Consume(cards[i], 1, "")
				if err != nil {
					b.Error(err)
					return
				}
				if resp, err := terms[i].Do(req); err != nil || resp.ResponseCode != spec.RCApproved {
					b.Errorf("consume: %v %v", resp, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	b.StopTimer()
	t1, j1, l1, p1 := compacted()
	n := float64(b.N)
	b.ReportMetric(float64(t1-t0)/n, "disk-B/op")
	b.ReportMetric(float64(j1-j0)/n, "journal-B/op")
	b.ReportMetric(float64(l1-l0)/n, "ledger-B/op")
	b.ReportMetric(float64(p1-p0)/n, "postings-B/op")
}

// walSyncs is the number of WAL fsyncs Pebble has done (the sample count
// of its fsync latency histogram).
func walSyncs(b *testing.B, db *pebble.DB) uint64 {
	var m dto.Metric
	h := db.Metrics().LogWriter.FsyncLatency
	if h == nil {
		b.Fatal("pebble keeps no fsync histogram")
	}
	if err := h.Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// benchTerminals starts a test switch with n terminals signed on, each
// with a card of its own.
func benchTerminals(b *testing.B, numTerminals int) (*Switch, []*posclient.Terminal, []string) {
	sw := testSwitch(b)
	tmk, _ := hex.DecodeString(demoTMK)
	terms := make([]*posclient.Terminal, numTerminals)
	cards := make([]string, numTerminals)
	pos, _, _ := sw.Addrs()
	for i := range terms {
		id := fmt.Sprintf("7%07d", i)
		if err := sw.addTerminal(terminals.Spec{ID: id, Merchant: canteen, TMK: demoTMK}); err != nil {
			b.Fatal(err)
		}
		cards[i] = fmt.Sprintf("62301580%011d", i)
		pvv, err := sw.hsm.PINVerificationValue(cards[i], "123456")
		if err != nil {
			b.Fatal(err)
		}
		if err := sw.ledger.OpenCard(ledger.CardSpec{PAN: cards[i], Holder: "bench", HolderType: ledger.Staff, Cash: 900_000}, []byte(pvv)); err != nil {
			b.Fatal(err)
		}
		c, err := posclient.Dial(pos, posclient.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		terms[i] = posclient.NewTerminal(c, id, canteen, tmk)
		if r, err := terms[i].SignOn(); err != nil || r.ResponseCode != spec.RCApproved {
			b.Fatalf("sign-on %s: %v", id, err)
		}
	}
	return sw, terms, cards
}

// processCPU is the user+system CPU time of this process so far (server
// and in-process clients together).
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBaselineEcho is the floor the switch is measured against: the
// same framing, one small synced Pebble batch per message, an echo, and
// nothing else; 64 connections closed loop, client in-process.
func BenchmarkBaselineEcho(b *testing.B) {
	const conns = 64
	dir := b.TempDir()
	db, err := pebble.Open(dir, pebbleOptions(zap.NewNop()))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var seq atomic.Uint64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				var buf []byte
				key := make([]byte, 9)
				for {
					body, err := spec.ReadFrame(br, buf, spec.DefaultMaxFrame)
					if err != nil {
						return
					}
					buf = body[:0]
					batch := db.NewBatch()
					key[0] = 'x'
					binary.BigEndian.PutUint64(key[1:], seq.Add(1))
					_ = batch.Set(key, body, nil)
					if err := batch.Commit(pebble.Sync); err != nil {
						return
					}
					batch.Close()
					out, _ := spec.AppendFrame(nil, body)
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	msg := unhex(b, echoRequest)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	cpu0 := processCPU()
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(c)
			var buf []byte
			for next.Add(1) <= int64(b.N) {
				if _, err := c.Write(msg); err != nil {
					b.Error(err)
					return
				}
				body, err := spec.ReadFrame(br, buf, spec.DefaultMaxFrame)
				if err != nil {
					b.Error(err)
					return
				}
				buf = body[:0]
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tps")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
