package switching

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// BenchmarkStorageDay replays b.N consumes' writes into a fresh Pebble
// store opened with the switch's options, to see what flushes and
// compactions cost over a day of traffic rather than in the first
// seconds of a store (docs/BENCHMARKS.md, "Keyspace-aligned sstables").
// The values are those of real consumes (the keys and values one
// consume commits through the daemon, harvested from 2,000 of them);
// the keys are laid out as the switch lays them out for 1,000 terminals
// and 20,000 cards: the journal entry `j e` and the posting `l p` under
// growing sequences of one business day, the duplicate record `j o`
// under terminal, batch and STAN, the purse `l b` rewritten in place.
// One unsynced batch per consume (the WAL still written): the fsyncs are
// not what is measured. Sub-benchmarks: the switch's options, and the
// same with files cut by size only (Pebble's default, the options
// before keyspace-aligned files). Run it with -benchtime 3000000x
// (about 1.5 days at 2 million consumes a day); smaller runs end before
// the store has levels below L0.
//
// compact-B/op and compact-read-B/op are the bytes compactions wrote and
// read per consume, moved-B/op those moved down a level without a
// rewrite; L0-sublevels the mean read amplification of L0 sampled
// every 20,000 consumes; cpu-µs/op the process's CPU per consume, the
// writer's and Pebble's background work up to the end of the last
// compaction.
func BenchmarkStorageDay(b *testing.B) {
	values := harvestConsumeValues(b)
	for _, bc := range []struct {
		name      string
		keyspaced bool
	}{{"keyspaces", true}, {"size-only", false}} {
		b.Run(bc.name, func(b *testing.B) {
			o := pebbleOptions(zap.NewNop())
			if !bc.keyspaced {
				o.Experimental.SpanPolicyFunc = nil
			}
			db, err := pebble.Open(b.TempDir(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			replayConsumes(b, db, values)
		})
	}
}

// consumeValues are the values one kind of key of real consumes holds.
type consumeValues struct{ entry, answered, purse, posting [][]byte }

func harvestConsumeValues(b *testing.B) consumeValues {
	b.Helper()
	sw, terms, cards := benchTerminals(b, 16)
	var wg sync.WaitGroup
	for i := range terms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for range 2000 / len(terms) {
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
	var v consumeValues
	it, err := sw.db.NewIter(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, val := it.Key(), append([]byte(nil), it.Value()...)
		if len(k) < 2 {
			continue
		}
		switch string(k[:2]) {
		case "je":
			v.entry = append(v.entry, val)
		case "jo":
			v.answered = append(v.answered, val)
		case "lb":
			v.purse = append(v.purse, val)
		case "lp":
			v.posting = append(v.posting, val)
		}
	}
	if len(v.entry) < 1000 || len(v.answered) < 1000 || len(v.purse) == 0 || len(v.posting) < 1000 {
		b.Fatalf("harvested %d entries, %d duplicate records, %d purses, %d postings", len(v.entry), len(v.answered), len(v.purse), len(v.posting))
	}
	return v
}

func replayConsumes(b *testing.B, db *pebble.DB, v consumeValues) {
	const terminals, cards = 1000, 20000
	const day = 20427 // 2025-12-04
	stan := make([]int, terminals)
	var sublevels, samples int
	key := make([]byte, 0, 64)
	b.ResetTimer()
	cpu0 := processCPU()
	for i := range b.N {
		batch := db.NewBatch()
		key = binary.BigEndian.AppendUint64(append(key[:0], 'j', 'e'), day*100_000_000_000+uint64(i+1))
		_ = batch.Set(key, v.entry[i%len(v.entry)], nil)
		t := i % terminals
		stan[t]++
		key = fmt.Appendf(append(key[:0], 'j', 'o', 8), "7%07d\x06%06d\x06%06d\x041205", t, 1+stan[t]/999999, stan[t]%999999)
		_ = batch.Set(key, v.answered[i%len(v.answered)], nil)
		key = fmt.Appendf(append(key[:0], 'l', 'b'), "62301580%011d", (i*7919)%cards)
		_ = batch.Set(key, v.purse[i%len(v.purse)], nil)
		key = binary.BigEndian.AppendUint64(append(key[:0], 'l', 'p'), uint64(i+1))
		_ = batch.Set(key, v.posting[i%len(v.posting)], nil)
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		_ = batch.Close()
		if i%20000 == 0 {
			sublevels += int(db.Metrics().Levels[0].Sublevels)
			samples++
		}
	}
	// The compactions the writes started are part of their cost.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for db.Metrics().Compact.NumInProgress > 0 {
		if ctx.Err() != nil {
			b.Fatal("compactions still running after 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpu := processCPU() - cpu0
	b.StopTimer()
	m := db.Metrics()
	var written, read, moved uint64
	for l := range m.Levels {
		written += m.Levels[l].TableBytesCompacted
		read += m.Levels[l].TableBytesRead
		moved += m.Levels[l].TableBytesMoved
	}
	n := float64(b.N)
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/op")
	b.ReportMetric(float64(m.Levels[0].TableBytesFlushed)/n, "flush-B/op")
	b.ReportMetric(float64(written)/n, "compact-B/op")
	b.ReportMetric(float64(read)/n, "compact-read-B/op")
	b.ReportMetric(float64(moved)/n, "moved-B/op")
	b.ReportMetric(float64(sublevels)/float64(samples), "L0-sublevels")
	b.ReportMetric(float64(m.DiskSpaceUsage())/n, "disk-B/op")
}
