package ledger

import (
	"fmt"
	"reflect"
	"testing"
)

// TestExecuteReusesCleanTxn checks what the txn pool relies on: a txn
// back in the pool holds nothing (no card, batch, posting, lock or result
// of the operation before), and an operation run on a reused txn answers
// exactly as on a ledger that has run nothing else.
func TestExecuteReusesCleanTxn(t *testing.T) {
	la, _ := seeded(t, Options{})
	// Dirty the pooled txns with the state of approvals, a void (original
	// looked up, status written) and declines.
	c := pos("T0000001", canteen, day1)
	must(t, exec(t, la, &Consume{Common: c, PAN: panVisitor, Amount: 1000, PIN: PINVerified}))
	must(t, exec(t, la, &Void{Common: pos("T0000001", canteen, day1), PAN: panVisitor, Amount: 1000, Original: ref(c), PIN: PINVerified}))
	must(t, exec(t, la, &Consume{Common: pos("T0000002", canteen, day1), PAN: panStudent, Amount: 2500, PIN: PINVerified}))
	for range 4 {
		tx := txnPool.Get().(*txn)
		if !reflect.ValueOf(tx).Elem().IsZero() {
			t.Fatalf("pooled txn not cleared: %+v", *tx)
		}
		defer txnPool.Put(tx)
	}

	decline := func(l *Ledger) Result {
		return exec(t, l, &Consume{Common: Common{Key: "T0000009|1|000001", Date: day1, Terminal: "T0000009", Merchant: canteen,
			Batch: 1, STAN: 1, RRN: "000000000901"}, PAN: panEmpty, Amount: 500, PIN: PINVerified})
	}
	ra := decline(la)
	lb, _ := seeded(t, Options{})
	rb := decline(lb)
	wantDecline(t, ra, DeclineInsufficientFunds)
	if !reflect.DeepEqual(ra, rb) {
		t.Fatalf("decline after other operations:\n%+v\nfresh:\n%+v", ra, rb)
	}
}

// TestCloneNewIsPrivate checks that a card copied with cloneNew (with
// room for contributions in its own allocation) shares nothing it may
// change with the card it was copied from, for every number of
// contributions around the sizes of its room.
func TestCloneNewIsPrivate(t *testing.T) {
	for k := 0; k <= 20; k++ {
		orig := &card{PAN: panStudent, Cash: 100, Holds: []hold{{AuthCode: "000001", Amount: 5, Cash: 5}}}
		for i := range k {
			orig.Contribs = append(orig.Contribs, contrib{MerchantPayable(fmt.Sprintf("8983100000%05d", i)), Fen(i)})
		}
		want := orig.clone()
		c := orig.cloneNew()
		if !reflect.DeepEqual(*c, want) {
			t.Fatalf("%d contributions: cloneNew = %+v, want %+v", k, *c, want)
		}
		c.Cash = 1
		c.addContrib(FeeIncome, 7)
		c.addContrib(MerchantPayable("898310000000000"), 9)
		c.Holds[0].Amount = 99
		c.Holds = append(c.Holds, hold{AuthCode: "000002"})
		if !reflect.DeepEqual(*orig, want) {
			t.Fatalf("%d contributions: changing the copy changed the original: %+v", k, *orig)
		}
		if k > 0 && &c.Contribs[0] == &orig.Contribs[0] {
			t.Fatalf("%d contributions: the copy shares its contributions", k)
		}
	}
}
