package ledger

import (
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentOneCard runs 64 terminals debiting the same card at once
// (plus reversals of some of their own consumes): the card is never
// overdrawn and no update is lost.
func TestConcurrentOneCard(t *testing.T) {
	l, db := seeded(t, Options{})
	const workers, each = 64, 20 // 1280 attempts of 1.00 on 1000.00
	var approved, reversed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			term := fmt.Sprintf("T%07d", w)
			for i := 0; i < each; i++ {
				c := Common{Key: fmt.Sprintf("%s|%d", term, i), Date: day1, Terminal: term, Merchant: market, Batch: 1, STAN: uint32(i + 1)}
				res := exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 100, PIN: PINVerified})
				if res.Approved() {
					approved.Add(1)
					if res.Balances.Cash < 0 {
						t.Errorf("negative balance %s", res.Balances.Cash)
					}
					if i%7 == 0 {
						rc := c
						rc.Key = "R" + c.Key
						if r := exec(t, l, &Reversal{Common: rc, Original: ref(c), OriginalKind: KindConsume}); r.Approved() && !r.NoOp {
							reversed.Add(1)
						}
					}
				} else if res.Decline != DeclineInsufficientFunds {
					t.Errorf("unexpected decline %s", res.Decline)
				}
			}
		}(w)
	}
	wg.Wait()
	net := approved.Load() - reversed.Load()
	v := mustCard(t, l, panStaff)
	if Fen(net)*100 != 100000-v.Balances.Cash || v.Balances.Cash < 0 {
		t.Errorf("approved %d reversed %d, cash %s", approved.Load(), reversed.Load(), v.Balances.Cash)
	}
	if approved.Load() == workers*each {
		t.Errorf("no attempt ran out of money: the test did not reach the boundary")
	}
	if got := l.AccountBalance(MerchantPayable(market)); got != Fen(net)*100 {
		t.Errorf("merchant %s, want %d", got, net*100)
	}
	checkStore(t, db)
}

// model is the simple in-memory ledger the property test compares with.
type model struct {
	cards map[string]*mcard
	txns  []*mtxn
	fees  Fen
}

type mcard struct {
	cash, sub          Fen
	day                BusinessDate
	spent              Fen
	daily, perTxn, fee Fen
	feeBP              int32
	owed               Fen // the card's receivable (docs/ledger.md#receivables)
}

type mtxn struct {
	c                   Common
	kind                Kind
	pan                 string
	amount, fee         Fen
	cash, sub           Fen // purse deltas, as applied
	recv                Fen // receivable repaid by this credit
	spend               Fen
	approved            bool
	voided, reversed    bool
	refunded, refundFee Fen
	refundSub           Fen
	link                *mtxn
}

func (m *model) spentOn(c *mcard, d BusinessDate) Fen {
	if c.day == d {
		return c.spent
	}
	return 0
}

// credit applies tx's purse credits (cash, sub ≥ 0) to an owing card the
// ledger's way: the receivable is repaid first, from cash, then subsidy.
func (m *model) credit(mc *mcard, tx *mtxn) {
	for _, v := range []*Fen{&tx.cash, &tx.sub} {
		if *v > 0 && mc.owed > 0 {
			r := min(mc.owed, *v)
			*v -= r
			mc.owed -= r
			tx.recv += r
		}
	}
	mc.cash += tx.cash
	mc.sub += tx.sub
}

func (m *model) addSpend(c *mcard, d BusinessDate, v Fen) {
	switch {
	case d > c.day:
		c.day, c.spent = d, max(0, v)
	case d == c.day:
		c.spent = max(0, c.spent+v)
	}
}

// TestProperty runs random operation sequences — consumes on and off
// campus, loads, voids, refunds, reversals of known, unknown and already
// reversed operations, replays — against the model, checking every
// decision, every balance and the zero-sum invariant after every step.
func TestProperty(t *testing.T) {
	var owingSteps, owingDeclines int
	for _, seed := range []int64{1, 2, 3, 4, 5, 20250301} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			a, b := runProperty(t, seed, 600)
			owingSteps += a
			owingDeclines += b
		})
	}
	// The receivable rule must have been exercised, not just allowed.
	if owingSteps == 0 || owingDeclines == 0 {
		t.Errorf("no seed made a card owe (%d steps) or declined its debit (%d)", owingSteps, owingDeclines)
	}
	t.Logf("steps with an owing card: %d; debits declined while owing: %d", owingSteps, owingDeclines)
}

func runProperty(t *testing.T, seed int64, steps int) (owingSteps, owingDeclines int) {
	rng := rand.New(rand.NewSource(seed))
	l, db := seeded(t, Options{})
	m := &model{cards: map[string]*mcard{
		panStudent: {cash: 50000, sub: 20000, daily: 30000, perTxn: 20000},
		panStaff:   {cash: 100000},
		panVisitor: {cash: 10000, feeBP: 500},
		panEmpty:   {},
	}}
	pans := []string{panStudent, panStaff, panVisitor, panEmpty}
	terms := []string{"10000001", "10000002"}
	date := day1
	stan := uint32(0)
	newCommon := func(term string) Common {
		stan++
		return Common{Key: fmt.Sprintf("%s|%d|%d", term, stan, date), Date: date, Terminal: term, Merchant: canteen, Batch: 1, STAN: stan, RRN: fmt.Sprintf("%012d", stan)}
	}
	var last Request
	var lastRes Result
	for step := 0; step < steps; step++ {
		if rng.Intn(40) == 0 {
			date++
		}
		var req Request
		var want Decline
		var apply func(res Result)
		op := rng.Intn(100)
		switch {
		case op < 5 && last != nil: // replay the previous request
			res := exec(t, l, last)
			if !res.Replay || res.Decline != lastRes.Decline || res.TxID != lastRes.TxID {
				t.Fatalf("step %d: replay %+v of %+v", step, res, lastRes)
			}
			continue
		case op < 45:
			pan := pans[rng.Intn(len(pans))]
			term := terms[rng.Intn(2)]
			c := newCommon(term)
			onCampus := rng.Intn(3) > 0
			if !onCampus {
				c.Merchant = cafe
			}
			amt := Fen(rng.Intn(25000) + 1)
			req = &Consume{Common: c, PAN: pan, Amount: amt, PIN: PINVerified}
			mc := m.cards[pan]
			fee := ServiceFee(amt, mc.feeBP)
			total := amt + fee
			sub := Fen(0)
			if onCampus {
				sub = min(total, mc.sub)
			}
			switch {
			case mc.owed > 0:
				want = DeclineInsufficientFunds
				owingDeclines++
			case mc.perTxn > 0 && total > mc.perTxn, mc.daily > 0 && m.spentOn(mc, date)+total > mc.daily:
				want = DeclineExceedsAmountLimit
			case total-sub > mc.cash:
				want = DeclineInsufficientFunds
			}
			tx := &mtxn{c: c, kind: KindConsume, pan: pan, amount: amt, fee: fee, cash: -(total - sub), sub: -sub, spend: total}
			apply = func(res Result) {
				tx.approved = res.Approved()
				m.txns = append(m.txns, tx)
				if tx.approved {
					mc.cash += tx.cash
					mc.sub += tx.sub
					m.fees += fee
					m.addSpend(mc, date, total)
				}
			}
		case op < 60:
			pan := pans[rng.Intn(len(pans))]
			c := newCommon("90000001")
			amt := Fen(rng.Intn(50000) + 1)
			req = &CashLoad{Common: c, PAN: pan, Amount: amt, MayLoad: true}
			mc := m.cards[pan]
			if mc.cash+mc.sub+amt > 1_000_000 {
				want = DeclineExceedsAmountLimit
			}
			tx := &mtxn{c: c, kind: KindCashLoad, pan: pan, amount: amt, cash: amt}
			apply = func(res Result) {
				tx.approved = res.Approved()
				m.txns = append(m.txns, tx)
				if tx.approved {
					m.credit(mc, tx)
				}
			}
		case op < 75 && len(m.txns) > 0: // void a random consume
			o := m.txns[rng.Intn(len(m.txns))]
			if o.kind != KindConsume {
				continue
			}
			c := newCommon(o.c.Terminal)
			req = &Void{Common: c, PAN: o.pan, Amount: o.amount, Original: ref(o.c)}
			mc := m.cards[o.pan]
			switch {
			case !o.approved:
				want = DeclineOriginalNotFound
			case o.c.Date != date || o.voided || o.reversed || o.refunded > 0:
				want = DeclineInvalidTransaction
			}
			tx := &mtxn{c: c, kind: KindVoid, pan: o.pan, amount: o.amount, fee: o.fee, cash: -o.cash, sub: -o.sub, spend: -o.spend, link: o}
			apply = func(res Result) {
				tx.approved = res.Approved()
				m.txns = append(m.txns, tx)
				if tx.approved {
					o.voided = true
					m.credit(mc, tx)
					m.fees -= o.fee
					m.addSpend(mc, date, tx.spend)
				}
			}
		case op < 85 && len(m.txns) > 0: // refund part of a random consume
			o := m.txns[rng.Intn(len(m.txns))]
			if o.kind != KindConsume || !o.approved {
				continue
			}
			c := newCommon(o.c.Terminal)
			c.Merchant = o.c.Merchant // refunds are taken at the original's merchant
			amt := Fen(rng.Intn(int(o.amount))) + 1
			req = &Refund{Common: c, PAN: o.pan, Amount: amt, OriginalRRN: o.c.RRN, OriginalDate: o.c.Date}
			mc := m.cards[o.pan]
			switch {
			case o.voided || o.reversed:
				want = DeclineInvalidTransaction
			case o.refunded+amt > o.amount:
				want = DeclineAmountDiffers
			}
			feeBack := Fen(int64(o.fee)*int64(o.refunded+amt)/int64(o.amount)) - o.refundFee
			subBack := min(amt+feeBack, -o.sub-o.refundSub)
			tx := &mtxn{c: c, kind: KindRefund, pan: o.pan, amount: amt, fee: feeBack, cash: amt + feeBack - subBack, sub: subBack, link: o}
			apply = func(res Result) {
				tx.approved = res.Approved()
				m.txns = append(m.txns, tx)
				if tx.approved {
					m.credit(mc, tx)
					o.refunded += amt
					o.refundFee += feeBack
					o.refundSub += tx.sub
					m.fees -= feeBack
				}
			}
		default: // reverse a random operation, or an unknown one
			var o *mtxn
			if len(m.txns) > 0 && rng.Intn(5) > 0 {
				o = m.txns[rng.Intn(len(m.txns))]
			}
			if o == nil {
				c := newCommon(terms[0])
				req = &Reversal{Common: c, Original: ref(c), OriginalKind: KindConsume}
				apply = func(res Result) {
					if !res.NoOp {
						t.Fatalf("step %d: reversal of unknown moved money", step)
					}
				}
				break
			}
			c := o.c
			c.Key = fmt.Sprintf("R%d|%s", step, o.c.Key)
			c.Date = date
			req = &Reversal{Common: c, Original: ref(o.c), OriginalKind: o.kind}
			mc := m.cards[o.pan]
			noop := !o.approved || o.reversed || o.voided
			spend := Fen(0)
			if date == o.c.Date {
				spend = -o.spend
			}
			if !noop && o.refunded > 0 {
				want = DeclineInvalidTransaction
			}
			apply = func(res Result) {
				if res.NoOp != (noop && res.Approved()) {
					t.Fatalf("step %d: reversal NoOp=%v, model no-op %v", step, res.NoOp, noop)
				}
				if noop || !res.Approved() {
					return
				}
				o.reversed = true
				// The exact inverse; a purse it would overdraw goes to
				// zero and the shortfall becomes the card's debt; a
				// credit back to an owing card repays it first.
				dc, ds := -o.cash, -o.sub
				var short Fen
				if mc.cash+dc < 0 {
					short += -(mc.cash + dc)
					dc = -mc.cash
				}
				if mc.sub+ds < 0 {
					short += -(mc.sub + ds)
					ds = -mc.sub
				}
				rev := &mtxn{cash: dc, sub: ds}
				if short > 0 {
					mc.cash += dc
					mc.sub += ds
				} else {
					m.credit(mc, rev)
				}
				mc.owed += short + o.recv
				m.addSpend(mc, date, spend)
				switch o.kind {
				case KindConsume:
					m.fees -= o.fee
				case KindVoid:
					o.link.voided = false
					m.fees += o.link.fee
				case KindRefund:
					o.link.refunded -= o.amount
					o.link.refundFee -= o.fee
					o.link.refundSub -= o.sub
					m.fees += o.fee
				}
			}
		}
		if req == nil {
			continue
		}
		res := exec(t, l, req)
		if res.Decline != want {
			t.Fatalf("step %d: %s %+v: got %s, want %s", step, req.Kind(), req, res.Decline, want)
		}
		apply(res)
		last, lastRes = req, res
		var total, owing Fen
		for pan, mc := range m.cards {
			v := mustCard(t, l, pan)
			if v.Balances.Cash != mc.cash || v.Balances.Subsidy != mc.sub || v.Balances.Cash < 0 || v.Balances.Subsidy < 0 || v.Owed != mc.owed {
				t.Fatalf("step %d (%s): card %s %+v owes %s, model cash %s subsidy %s owes %s", step, req.Kind(), pan, v.Balances, v.Owed, mc.cash, mc.sub, mc.owed)
			}
			owing += mc.owed
			if mc.daily > 0 && m.spentOn(mc, date) > mc.daily {
				t.Fatalf("step %d: daily limit broken in the model", step)
			}
			total += v.Balances.Cash + v.Balances.Subsidy
		}
		for _, pan := range []string{panLost, panFrozen} {
			total += mustCard(t, l, pan).Balances.Available
		}
		if l.AccountBalance(FeeIncome) != m.fees {
			t.Fatalf("step %d: fee income %s, model %s", step, l.AccountBalance(FeeIncome), m.fees)
		}
		if owing > 0 {
			owingSteps++
		}
		if l.AccountBalance(CardReceivable) != -owing {
			t.Fatalf("step %d: receivable %s, model owes %s", step, l.AccountBalance(CardReceivable), owing)
		}
		for _, a := range []AccountID{FeeIncome, MerchantPayable(canteen), MerchantPayable(cafe), CashLoadClearing, OpeningFunds, SubsidyFunding, CardReceivable} {
			total += l.AccountBalance(a)
		}
		if total != 0 {
			t.Fatalf("step %d: accounts sum to %s", step, total)
		}
		if step%100 == 0 {
			checkStore(t, db)
		}
	}
	checkStore(t, db)
	return owingSteps, owingDeclines
}

// TestKeyLocks: a key is locked once however often an operation names it,
// nil keys are skipped, a second operation on the key waits for the first,
// and no lock outlives its last holder (the table never grows with the
// keys seen, only with the keys held).
func TestKeyLocks(t *testing.T) {
	var k keyLocks
	k.init()
	a, b := []byte("lrT0000001\x00a"), []byte("lrT0000002\x00b")
	h := k.lockAll(a, nil, a)
	if h.n != 1 {
		t.Fatalf("held %d locks for one key", h.n)
	}
	got, left := make(chan struct{}), make(chan struct{})
	go func() {
		h2 := k.lockAll(b, a)
		close(got)
		h2.unlock()
		close(left)
	}()
	select {
	case <-got:
		t.Fatal("a key held by one operation was locked by another")
	case <-time.After(20 * time.Millisecond):
	}
	h.unlock()
	<-got
	// The second holder unlocks after it reports the lock taken: wait for
	// it to leave before counting (the CI run that counted between the two
	// saw its lock still in the table).
	<-left
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n := len(s.m)
		for j := range s.slots {
			n += s.slots[j].n
		}
		if s.used != 0 {
			n++
		}
		s.mu.Unlock()
		if n != 0 {
			t.Fatalf("shard %d keeps %d locks after every holder left", i, n)
		}
	}
}

// TestKeyLocksExclusiveAcrossSlotsAndMap: with far more keys held than
// the shards have slots (so most go to the shards' maps, and slots free
// up while map entries are held), a held key is never taken again and a
// free one always is, in any order of taking and giving back; at the end
// every slot and map is empty.
func TestKeyLocksExclusiveAcrossSlotsAndMap(t *testing.T) {
	var k keyLocks
	k.init()
	keys := make([][]byte, 3000)
	for i := range keys {
		keys[i] = refKey(TxnRef{Terminal: fmt.Sprintf("%08d", i%97), Batch: uint32(i / 97), STAN: uint32(i)})
	}
	held := make(map[int]heldKeys)
	rng := rand.New(rand.NewSource(5))
	for step := 0; step < 200_000; step++ {
		i := rng.Intn(len(keys))
		h, isHeld := held[i]
		switch {
		case isHeld && rng.Intn(3) == 0:
			h.unlock()
			delete(held, i)
		case isHeld:
			if h2, ok := k.tryLock(keys[i]); ok {
				h2.unlock()
				t.Fatalf("step %d: key %d taken while held", step, i)
			}
		default:
			h2, ok := k.tryLock(keys[i])
			if !ok {
				t.Fatalf("step %d: free key %d refused", step, i)
			}
			held[i] = h2
		}
	}
	for i, h := range held {
		h.unlock()
		delete(held, i)
	}
	for i := range k.shards {
		s := &k.shards[i]
		n := len(s.m)
		for j := range s.slots {
			n += s.slots[j].n
		}
		if s.used != 0 {
			n++
		}
		if n != 0 {
			t.Fatalf("shard %d keeps %d locks after every holder left", i, n)
		}
	}
}

// TestReplaceCardSeesConcurrentSpend: a consume that commits while a
// replacement waits for the card's lock must count on the new card's day
// (the replacement once copied the day's spend before taking the lock, so
// a 300.00 daily limit let 400.00 through).
func TestReplaceCardSeesConcurrentSpend(t *testing.T) {
	l, _ := seeded(t, Options{})
	e := l.entry(panStudent)
	e.mu.Lock() // the consume in flight holds the card
	done := make(chan error, 1)
	go func() { done <- l.ReplaceCard(panStudent, "6230151000000000079", nil) }()
	time.Sleep(20 * time.Millisecond) // the replacement is waiting for the lock
	// The consume commits and publishes 200.00 of today's spend.
	c := e.cur.Load().clone()
	c.DayDate, c.DaySpent = day1, 20000
	e.cur.Store(&c)
	e.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := mustCard(t, l, "6230151000000000079"); v.DayDate != day1 || v.DaySpent != 20000 {
		t.Fatalf("new card spent %s on %s, want 200.00 on %s", v.DaySpent, v.DayDate, day1)
	}
	if d := exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: "6230151000000000079", Amount: 20000, PIN: PINVerified}).Decline; d != DeclineExceedsAmountLimit {
		t.Fatalf("200.00 more under a 300.00 limit: %s", d)
	}
}
