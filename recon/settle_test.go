package recon_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// modelTxn is the test's own record of an approved consume or refund.
type modelTxn struct {
	c        ledger.Common
	pan      string
	kind     ledger.Kind
	amount   ledger.Fen
	left     ledger.Fen // refundable
	undone   bool
	voidedBy *ledger.Common
}

// TestSettlementProperty generates random business days of consumes,
// voids, refunds and reversals (some reversals days later) through the
// real ledger, then settles random periods: every merchant's figures must
// balance against the ledger's postings on its account, and equal what
// the test computed on its own from the approved operations.
func TestSettlementProperty(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { settlementRun(t, seed) })
	}
}

func settlementRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := ledger.Open(db, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	merchants := []string{"898310000000001", "898310000000002", "898320000000001"}
	feeBP := map[string]int32{}
	for i, m := range merchants {
		feeBP[m] = int32(i * 63)
		if err := l.AddMerchant(ledger.MerchantSpec{ID: m, Name: m, OnCampus: i < 2, FeeRateBP: feeBP[m]}); err != nil {
			t.Fatal(err)
		}
	}
	var cards []string
	for i := 0; i < 8; i++ {
		pan := fmt.Sprintf("62301510000000%05d", i)
		noPIN, maxBal := ledger.Fen(0), ledger.Fen(100_000_000)
		ht := ledger.Student
		if i%3 == 0 {
			ht = ledger.Visitor
		}
		if err := l.OpenCard(ledger.CardSpec{PAN: pan, Holder: "H", HolderType: ht, Cash: 5_000_000, Subsidy: 100_000,
			NoPINLimit: &noPIN, MaxBalance: &maxBal}, nil); err != nil {
			t.Fatal(err)
		}
		cards = append(cards, pan)
	}
	book := &recon.Book{DB: db, Ledger: l}
	start := ledger.BusinessDate(20261101)
	// Rates change from the fourth day for the second merchant, and a
	// management fee starts for the first.
	for _, r := range []recon.Rates{
		{Merchant: merchants[1], From: start.AddDays(3).String(), FeeBP: 80, ManagementBP: 300},
		{Merchant: merchants[0], From: start.AddDays(2).String(), FeeBP: 0, ManagementBP: 1250},
	} {
		if err := book.SetRates(r); err != nil {
			t.Fatal(err)
		}
	}
	rateAt := func(m string, d ledger.BusinessDate) (int32, int32) {
		switch {
		case m == merchants[1] && d >= start.AddDays(3):
			return 80, 300
		case m == merchants[0] && d >= start.AddDays(2):
			return 0, 1250
		}
		return feeBP[m], 0
	}

	var stan uint32
	common := func(m string, d ledger.BusinessDate) ledger.Common {
		stan++
		return ledger.Common{Key: fmt.Sprintf("k%d", stan), Date: d, Terminal: "T" + m[len(m)-1:], Merchant: m,
			Batch: 1, STAN: stan, RRN: fmt.Sprintf("%012d", stan)}
	}
	exec := func(req ledger.Request) ledger.Result {
		b := db.NewBatch()
		defer b.Close()
		r, err := l.Execute(req, b, func(ledger.Result) error { return b.Commit(pebble.Sync) })
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ref := func(c ledger.Common) ledger.TxnRef {
		return ledger.TxnRef{Terminal: c.Terminal, Batch: c.Batch, STAN: c.STAN}
	}
	var txns []*modelTxn
	days := 7
	for di := 0; di < days; di++ {
		d := start.AddDays(di)
		for n := 0; n < 40; n++ {
			switch op := rng.IntN(10); {
			case op < 5 || len(txns) == 0: // consume
				m := merchants[rng.IntN(len(merchants))]
				c := common(m, d)
				pan := cards[rng.IntN(len(cards))]
				amt := ledger.Fen(1 + rng.IntN(30000))
				if r := exec(&ledger.Consume{Common: c, PAN: pan, Amount: amt, PIN: ledger.PINVerified}); r.Approved() {
					txns = append(txns, &modelTxn{c: c, pan: pan, kind: ledger.KindConsume, amount: amt, left: amt})
				}
			case op < 6: // void of a consume of today
				o := txns[rng.IntN(len(txns))]
				if o.kind != ledger.KindConsume || o.c.Date != d || o.undone || o.left != o.amount {
					continue
				}
				c := common(o.c.Merchant, d)
				c.Terminal = o.c.Terminal
				if r := exec(&ledger.Void{Common: c, PAN: o.pan, Amount: o.amount, Original: ref(o.c), PIN: ledger.PINVerified}); r.Approved() {
					o.undone, o.voidedBy = true, &c
				}
			case op < 8: // refund, part or all of what is left
				o := txns[rng.IntN(len(txns))]
				if o.kind != ledger.KindConsume || o.undone || o.left == 0 {
					continue
				}
				amt := 1 + ledger.Fen(rng.Int64N(int64(o.left)))
				c := common(o.c.Merchant, d)
				if r := exec(&ledger.Refund{Common: c, PAN: o.pan, Amount: amt, OriginalRRN: o.c.RRN, OriginalDate: o.c.Date}); r.Approved() {
					o.left -= amt
					txns = append(txns, &modelTxn{c: c, pan: o.pan, kind: ledger.KindRefund, amount: amt})
				}
			case op < 9: // reversal of a consume or refund, maybe days later
				o := txns[rng.IntN(len(txns))]
				if o.undone || (o.kind == ledger.KindConsume && o.left != o.amount) {
					continue
				}
				c := common(o.c.Merchant, d)
				c.Terminal, c.Batch, c.STAN, c.Key = o.c.Terminal, o.c.Batch, o.c.STAN, "rev"+o.c.Key
				if r := exec(&ledger.Reversal{Common: c, PAN: o.pan, Amount: o.amount, Original: ref(o.c), OriginalKind: o.kind}); r.Approved() && !r.NoOp {
					o.undone = true
				}
			default: // reversal of a void of today: the consume stands again
				o := txns[rng.IntN(len(txns))]
				if o.voidedBy == nil || o.voidedBy.Date != d || !o.undone {
					continue
				}
				v := *o.voidedBy
				c := common(o.c.Merchant, d)
				c.Terminal, c.Batch, c.STAN, c.Key = v.Terminal, v.Batch, v.STAN, "rev"+v.Key
				if r := exec(&ledger.Reversal{Common: c, PAN: o.pan, Amount: o.amount, Original: ref(v), OriginalKind: ledger.KindVoid}); r.Approved() && !r.NoOp {
					o.undone, o.voidedBy = false, nil
				}
			}
		}
	}
	for k := 0; k < 8; k++ {
		a := start.AddDays(rng.IntN(days))
		b := a.AddDays(rng.IntN(days))
		st, err := book.Settle(a, b, "")
		if err != nil {
			t.Fatal(err)
		}
		if !st.Balanced {
			t.Fatalf("period %d..%d not balanced: %+v", a, b, st)
		}
		want := map[string]*recon.MerchantSettlement{}
		for _, x := range txns {
			if x.undone || x.c.Date < a || x.c.Date > b {
				continue
			}
			w := want[x.c.Merchant]
			if w == nil {
				w = &recon.MerchantSettlement{Merchant: x.c.Merchant}
				want[x.c.Merchant] = w
			}
			fee, mgmt := rateAt(x.c.Merchant, x.c.Date)
			f, g := ledger.ServiceFee(x.amount, fee), ledger.ServiceFee(x.amount, mgmt)
			if x.kind == ledger.KindRefund {
				w.RefundCount++
				w.RefundAmount += x.amount
				f, g = -f, -g
			} else {
				w.ConsumeCount++
				w.ConsumeAmount += x.amount
			}
			w.Fee += f
			w.ManagementFee += g
		}
		for _, s := range st.Merchants {
			w := want[s.Merchant]
			if w == nil {
				w = &recon.MerchantSettlement{}
			}
			if s.ConsumeCount != w.ConsumeCount || s.ConsumeAmount != w.ConsumeAmount || s.RefundCount != w.RefundCount ||
				s.RefundAmount != w.RefundAmount || s.Fee != w.Fee || s.ManagementFee != w.ManagementFee ||
				s.Net != s.ConsumeAmount-s.RefundAmount-s.Fee-s.ManagementFee {
				t.Fatalf("period %d..%d merchant %s: got %+v, want %+v", a, b, s.Merchant, s, *w)
			}
			delete(want, s.Merchant)
		}
		for m, w := range want {
			if w.ConsumeCount+w.RefundCount > 0 {
				t.Fatalf("period %d..%d: merchant %s missing (%+v)", a, b, m, *w)
			}
		}
	}
}
