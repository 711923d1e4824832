package recharge

import (
	"context"
	"errors"
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
)

// testRecord is a txn.Record over the fixture's database that counts its
// commits and keeps what it recorded.
type testRecord struct {
	db      *pebble.DB
	b       *pebble.Batch
	commits int
	out     txn.Outcome
}

func (r *testRecord) Batch() *pebble.Batch {
	if r.b == nil {
		r.b = r.db.NewBatch()
	}
	return r.b
}

func (r *testRecord) Commit(o txn.Outcome) error {
	r.commits++
	r.out = o
	return r.Batch().Commit(pebble.Sync)
}

func (f *fixture) execute(t *testing.T, tr *txn.Transaction) (txn.Outcome, *testRecord, error) {
	t.Helper()
	rec := &testRecord{db: f.db}
	out, err := f.s.Execute(context.Background(), tr, rec)
	if rec.b != nil {
		rec.b.Close()
	}
	return out, rec, err
}

func TestServiceAsDestination(t *testing.T) {
	f := newFixture(t)
	credit := &txn.Transaction{Type: spec.RechargeCredit, Institution: "10001", Order: "WEB-1", Card: panEmpty, Amount: 5000, HasAmount: true}
	out, rec, err := f.execute(t, credit)
	if err != nil || rec.commits != 1 || !out.Approved() || out.RRN == "" || out.AuthCode == "" || out.Replay ||
		len(out.Balances) != 2 || out.Balances[0] != (txn.Balance{Account: txn.CashPurse, Amount: 5000}) ||
		out.Balances[1] != (txn.Balance{Account: txn.SubsidyPurse}) || rec.out.RRN != out.RRN {
		t.Fatalf("credit: %+v, %d commits, %v", out, rec.commits, err)
	}
	if got := f.cash(t, panEmpty); got != 5000 {
		t.Fatalf("cash %s after the credit", got)
	}
	// The order record went out with the record's batch: a repeat is a
	// replay of the same answer, the service's own Credit agreeing.
	again, rec, err := f.execute(t, credit)
	if err != nil || rec.commits != 1 || !again.Replay || again.RRN != out.RRN || again.AuthCode != out.AuthCode {
		t.Fatalf("repeat: %+v, %d commits, %v", again, rec.commits, err)
	}
	if q := f.query(t, "WEB-1"); q.Status != StateApproved || q.RRN != out.RRN {
		t.Fatalf("order after the credit: %+v", q)
	}

	query, rec, err := f.execute(t, &txn.Transaction{Type: spec.RechargeQuery, Institution: "10001", Order: "WEB-1"})
	if err != nil || rec.commits != 1 || query.ResponseCode != spec.RCApproved || query.Order == nil ||
		*query.Order != (txn.OrderState{State: 'A', Card: panEmpty, Amount: 5000}) {
		t.Fatalf("query: %+v, %v", query, err)
	}
	if q, _, _ := f.execute(t, &txn.Transaction{Type: spec.RechargeQuery, Institution: "10001", Order: "NONE"}); q.ResponseCode != spec.RCOriginalNotFound || q.Order != nil {
		t.Fatalf("query of an order never seen: %+v", q)
	}

	for _, tt := range []struct{ pan, name, want string }{
		{panStudent, "Li Lei", spec.RCApproved}, {panStudent, "Han Meimei", spec.RCDoNotHonour}, {panLost, "Han Meimei", spec.RCRestrictedCard},
	} {
		v, rec, err := f.execute(t, &txn.Transaction{Type: spec.RechargeVerify, Institution: "10001", Card: tt.pan, HolderName: tt.name})
		if err != nil || rec.commits != 1 || v.ResponseCode != tt.want {
			t.Errorf("verify %s %s: %+v, %v, want %s", tt.pan, tt.name, v, err, tt.want)
		}
	}

	rev, rec, err := f.execute(t, &txn.Transaction{Type: spec.RechargeReversal, Institution: "10001", Order: "WEB-1", Card: panEmpty, Amount: 5000, HasAmount: true})
	if err != nil || rec.commits != 1 || !rev.Approved() || rev.RRN == "" || rev.RRN == out.RRN {
		t.Fatalf("reversal: %+v, %v", rev, err)
	}
	if got := f.cash(t, panEmpty); got != 0 {
		t.Fatalf("cash %s after the reversal", got)
	}

	// What the service answers without a record, and a type it does not
	// serve, are rejections with nothing committed.
	_, rec, err = f.execute(t, &txn.Transaction{Type: spec.RechargeCredit, Institution: "99999", Order: "X", Card: panEmpty, Amount: 1, HasAmount: true})
	var rej *txn.Rejection
	if !errors.As(err, &rej) || rej.ResponseCode != spec.RCInvalidMerchant || rec.commits != 0 {
		t.Fatalf("unknown institution: %v, %d commits", err, rec.commits)
	}
	_, rec, err = f.execute(t, &txn.Transaction{Type: spec.Consume, Card: panEmpty, Amount: 1, HasAmount: true})
	if txn.ResponseCodeOf(err) != spec.RCFunctionNotSupported || rec.commits != 0 {
		t.Fatalf("consume: %v, %d commits", err, rec.commits)
	}
}
