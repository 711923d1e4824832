package local

import (
	"context"
	"fmt"
	"testing"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// nopRecord is a txn.Record whose Commit commits nothing: the batch is
// reset for the next transaction.
type nopRecord struct{ b *pebble.Batch }

func (r nopRecord) Batch() *pebble.Batch { return r.b }
func (r nopRecord) Commit(txn.Outcome) error {
	r.b.Reset()
	return nil
}

// BenchmarkExecuteConsume isolates the local destination's work for one
// approved POS consume without a PIN — mapping the transaction, the
// ledger's Execute, the outcome — with a commit that commits nothing:
// for instruction counts (callgrind) and allocations per consume.
//
//	go test -run '^$' -bench ExecuteConsume -benchmem ./switch/local/
func BenchmarkExecuteConsume(b *testing.B) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	l, err := ledger.Open(db, ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const pan, merchant, term = "6230152000000000000", "898310000000001", "10000001"
	if err := l.AddMerchant(ledger.MerchantSpec{ID: merchant, Name: "Canteen", OnCampus: true}); err != nil {
		b.Fatal(err)
	}
	big := ledger.MaxAmount
	if err := l.OpenCard(ledger.CardSpec{PAN: pan, HolderType: ledger.Staff, Cash: 1_000_000_000, MaxBalance: &big}, nil); err != nil {
		b.Fatal(err)
	}
	d := New(l, nil, zap.NewNop(), nil)
	bt := db.NewBatch()
	defer bt.Close()
	rec := nopRecord{bt}
	ts := make([]txn.Transaction, 1024)
	for i := range ts {
		stan := uint32(i + 1)
		ts[i] = txn.Transaction{Type: spec.Consume, Source: "pos", Card: pan, Amount: 1, HasAmount: true, Terminal: term,
			Merchant: merchant, Batch: 1, STAN: stan, BusinessDate: 20260105, RRN: fmt.Sprintf("%012d", 500000+i),
			Key: fmt.Sprintf("%s/000001/%06d/0105", term, stan), KnownNew: true, Deduplicated: true}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := d.Execute(context.Background(), &ts[i%len(ts)], rec)
		if err != nil || out.ResponseCode != spec.RCApproved {
			b.Fatalf("consume: %v %+v", err, out)
		}
	}
}
