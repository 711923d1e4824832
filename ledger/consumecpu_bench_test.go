package ledger

import (
	"fmt"
	"testing"
)

// BenchmarkConsumeCPU isolates the ledger's own work for one consume as
// the switch asks for it (POS flags: deduplicated, known new, reference
// and RRN indexed by the caller): Execute from validation to publishing,
// with a commit callback that commits nothing, so Pebble's commit is not
// in the figure. One writer, one card: instruction counts (callgrind) and
// allocations per consume are what it is for.
//
//	go test -run '^$' -bench ConsumeCPU -benchmem ./ledger/
func BenchmarkConsumeCPU(b *testing.B) {
	l, pans := benchLedger(b, 1)
	benchConsumeCPU(b, l, pans[0])
}

func benchConsumeCPU(b *testing.B, l *Ledger, pan string) {
	defer func(v bool) { verifyApplied = v }(verifyApplied)
	verifyApplied = false // the production path, not the tests' check
	bt := l.db.NewBatch()
	defer bt.Close()
	commit := func(Result) error { return nil }
	const term = "10000001"
	reqs := make([]Consume, 1024)
	for i := range reqs {
		stan := uint32(i + 1)
		reqs[i] = Consume{Common: Common{Key: fmt.Sprintf("%s|%d", term, stan), Date: day1, Terminal: term, Merchant: canteen,
			Batch: 1, STAN: stan, RRN: fmt.Sprintf("%012d", 500000+i), KnownNew: true, Deduplicated: true,
			RRNIndexedByCaller: true, ReferenceKeptByCaller: true}, PAN: pan, Amount: 1, PIN: PINVerified}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt.Reset()
		res, err := l.Execute(&reqs[i%len(reqs)], bt, commit)
		if err != nil || !res.Approved() {
			b.Fatalf("consume: %v %s", err, res.Decline)
		}
	}
}

// BenchmarkConsumeTombstonesCPU is BenchmarkConsumeCPU with a day's
// reversal tombstones of other terminals in memory, as a running switch
// has them: every consume asks whether a reversal of it came first.
func BenchmarkConsumeTombstonesCPU(b *testing.B) {
	l, pans := benchLedger(b, 1)
	for i := 0; i < 2000; i++ {
		l.putTomb(tombKey(TxnRef{Terminal: fmt.Sprintf("2%07d", i%200), Batch: 1, STAN: uint32(i + 1)}),
			refValue{Kind: KindConsume, Date: day1})
	}
	benchConsumeCPU(b, l, pans[0])
}
