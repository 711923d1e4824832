package ledger

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func TestConsume(t *testing.T) {
	tests := []struct {
		name          string
		pan, merchant string
		amount        Fen
		pin           PINOutcome
		want          Decline
		cash, subsidy Fen // purse deltas when approved
		fee           Fen
	}{
		{"subsidy first on campus", panStudent, canteen, 1000, PINNotPresent, Approved, 0, -1000, 0},
		{"subsidy then cash", panStudent, canteen, 20000, PINVerified, Approved, -0, -20000, 0},
		{"cash only off campus", panStudent, cafe, 1000, PINNotPresent, Approved, -1000, 0, 0},
		{"visitor pays 5% fee", panVisitor, canteen, 1000, PINNotPresent, Approved, -1050, 0, 50},
		{"fee rounds half up", panVisitor, canteen, 10, PINNotPresent, Approved, -11, 0, 1},
		{"staff", panStaff, market, 5000, PINNotPresent, Approved, -5000, 0, 0},
		{"no-PIN limit is inclusive", panStaff, market, 5000, PINNotPresent, Approved, -5000, 0, 0},
		{"above no-PIN limit needs PIN", panStaff, market, 5001, PINNotPresent, DeclineIncorrectPIN, 0, 0, 0},
		{"per-transaction limit", panStudent, canteen, 20001, PINVerified, DeclineExceedsAmountLimit, 0, 0, 0},
		{"lost card", panLost, canteen, 100, PINNotPresent, DeclineLostCard, 0, 0, 0},
		{"frozen card", panFrozen, canteen, 100, PINNotPresent, DeclineFrozenCard, 0, 0, 0},
		{"empty card", panEmpty, canteen, 100, PINNotPresent, DeclineInsufficientFunds, 0, 0, 0},
		{"unknown card", "6230151999999999999", canteen, 100, PINNotPresent, DeclineInvalidCard, 0, 0, 0},
		{"zero amount", panStaff, canteen, 0, PINNotPresent, DeclineInvalidAmount, 0, 0, 0},
		{"negative amount", panStaff, canteen, -5, PINNotPresent, DeclineInvalidAmount, 0, 0, 0},
		{"unknown merchant", panStaff, "898399999999999", 100, PINNotPresent, DeclineInvalidMerchant, 0, 0, 0},
		{"visitor over balance with fee", panVisitor, canteen, 9600, PINVerified, DeclineInsufficientFunds, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, db := seeded(t, Options{})
			before, _ := l.Card(tt.pan)
			unchanged := publishedUnchanged(t, l, tt.pan)
			res := exec(t, l, &Consume{Common: pos("10000001", tt.merchant, day1), PAN: tt.pan, Amount: tt.amount, PIN: tt.pin})
			wantDecline(t, res, tt.want)
			unchanged()
			after, _ := l.Card(tt.pan)
			if res.CashDelta != tt.cash || res.SubsidyDelta != tt.subsidy || res.Fee != tt.fee {
				t.Errorf("deltas cash %s subsidy %s fee %s, want %s %s %s", res.CashDelta, res.SubsidyDelta, res.Fee, tt.cash, tt.subsidy, tt.fee)
			}
			if after.Balances.Cash-before.Balances.Cash != tt.cash || after.Balances.Subsidy-before.Balances.Subsidy != tt.subsidy {
				t.Errorf("balances moved %+v -> %+v", before.Balances, after.Balances)
			}
			if tt.want == Approved {
				if res.Balances != after.Balances || len(res.AuthCode) != 6 || res.TxID == 0 {
					t.Errorf("result %+v, card %+v", res, after.Balances)
				}
				if got := l.AccountBalance(MerchantPayable(tt.merchant)); got != tt.amount {
					t.Errorf("merchant payable %s, want %s", got, tt.amount)
				}
				if got := l.AccountBalance(FeeIncome); got != tt.fee {
					t.Errorf("fee income %s, want %s", got, tt.fee)
				}
			}
			checkStore(t, db)
		})
	}
}

func TestDailyLimit(t *testing.T) {
	l, db := seeded(t, Options{})
	// Daily limit 300.00: 150 + 150 fit, one fen more does not, and the
	// next business day starts afresh.
	for i, tt := range []struct {
		amount Fen
		date   BusinessDate
		want   Decline
	}{
		{15000, day1, Approved},
		{15000, day1, Approved},
		{1, day1, DeclineExceedsAmountLimit},
		{15000, day1 + 1, Approved},
	} {
		res := exec(t, l, &Consume{Common: pos("10000001", canteen, tt.date), PAN: panStudent, Amount: tt.amount, PIN: PINVerified})
		if res.Decline != tt.want {
			t.Fatalf("step %d: %s, want %s", i, res.Decline, tt.want)
		}
	}
	if v := mustCard(t, l, panStudent); v.DaySpent != 15000 || v.DayDate != day1+1 {
		t.Errorf("day spend %s on %s", v.DaySpent, v.DayDate)
	}
	checkStore(t, db)
}

// TestPINTries is the demo sequence: wrong, wrong, wrong → 55, 55, 75; the
// card stays locked even for the right PIN; a verified PIN before the
// limit resets the counter; the counter survives a restart although every
// attempt was declined.
func TestPINTries(t *testing.T) {
	l, db := seeded(t, Options{})
	consume := func(pan string, pin PINOutcome) Decline {
		return exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: pan, Amount: 6000, PIN: pin}).Decline
	}
	steps := []struct {
		pin   PINOutcome
		want  Decline
		tries int
	}{
		{PINWrong, DeclineIncorrectPIN, 1},
		{PINVerified, Approved, 0},
		{PINWrong, DeclineIncorrectPIN, 1},
		{PINWrong, DeclineIncorrectPIN, 2},
		{PINWrong, DeclinePINTriesExceeded, 3},
		{PINVerified, DeclinePINTriesExceeded, 3},
		{PINNotPresent, DeclinePINTriesExceeded, 3},
	}
	for i, s := range steps {
		unchanged := publishedUnchanged(t, l, panStaff)
		if got := consume(panStaff, s.pin); got != s.want {
			t.Fatalf("step %d: %s, want %s", i, got, s.want)
		}
		unchanged()
		if v := mustCard(t, l, panStaff); v.PINTries != s.tries {
			t.Fatalf("step %d: tries %d, want %d", i, v.PINTries, s.tries)
		}
	}
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := mustCard(t, l2, panStaff); v.PINTries != 3 {
		t.Errorf("tries after reopen %d", v.PINTries)
	}
	// Setting a new PIN unlocks.
	if err := l.SetPINVerificationValue(panStaff, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := consume(panStaff, PINVerified); got != Approved {
		t.Errorf("after PIN change: %s", got)
	}
	checkStore(t, db)
}

func TestBalanceInquiry(t *testing.T) {
	l, _ := seeded(t, Options{})
	for _, tt := range []struct {
		pan  string
		want Decline
		bal  Balances
	}{
		{panStudent, Approved, Balances{50000, 20000, 0, 70000}},
		{panFrozen, Approved, Balances{5000, 0, 0, 5000}},
		{panLost, DeclineLostCard, Balances{5000, 0, 0, 5000}},
		{"6230151999999999999", DeclineInvalidCard, Balances{}},
	} {
		res := exec(t, l, &BalanceInquiry{Common: pos("10000001", canteen, day1), PAN: tt.pan, PIN: PINVerified})
		if res.Decline != tt.want || res.Balances != tt.bal {
			t.Errorf("%s: %s %+v, want %s %+v", tt.pan, res.Decline, res.Balances, tt.want, tt.bal)
		}
	}
}

func TestCashLoad(t *testing.T) {
	l, db := seeded(t, Options{})
	for _, tt := range []struct {
		name    string
		pan     string
		amount  Fen
		mayLoad bool
		want    Decline
	}{
		{"kiosk", panEmpty, 10000, true, Approved},
		{"not a kiosk", panEmpty, 10000, false, DeclineNotPermittedTerminal},
		{"frozen card may receive", panFrozen, 100, true, Approved},
		{"lost card may not", panLost, 100, true, DeclineLostCard},
		{"maximum balance", panStaff, 900001, true, DeclineExceedsAmountLimit},
		{"up to maximum balance", panStaff, 900000, true, Approved},
	} {
		res := exec(t, l, &CashLoad{Common: pos("90000001", canteen, day1), PAN: tt.pan, Amount: tt.amount, MayLoad: tt.mayLoad})
		if res.Decline != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, res.Decline, tt.want)
		}
	}
	if v := mustCard(t, l, panEmpty); v.Balances.Cash != 10000 {
		t.Errorf("empty card cash %s", v.Balances.Cash)
	}
	if got := l.AccountBalance(CashLoadClearing); got != -(10000 + 100 + 900000) {
		t.Errorf("clearing %s", got)
	}
	checkStore(t, db)
}

func TestVoid(t *testing.T) {
	l, db := seeded(t, Options{})
	c := pos("10000001", canteen, day1)
	// 250.00 at the canteen: 200.00 subsidy + 50.00 cash.
	orig := exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 25000, PIN: PINVerified})
	if !orig.Approved() {
		t.Fatal(orig.Decline)
	}
	sc := pos("10000001", canteen, day1)
	stu := exec(t, l, &Consume{Common: sc, PAN: panStudent, Amount: 20000, PIN: PINVerified})
	if !stu.Approved() || stu.SubsidyDelta != -20000 {
		t.Fatalf("%+v", stu)
	}
	other := pos("10000002", canteen, day1)
	tests := []struct {
		name string
		v    Void
		want Decline
	}{
		{"unknown original", Void{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 25000, Original: TxnRef{STAN: 999999, Batch: 1}}, DeclineOriginalNotFound},
		{"other terminal", Void{Common: other, PAN: panStaff, Amount: 25000, Original: TxnRef{Batch: 1, STAN: c.STAN}}, DeclineOriginalNotFound},
		{"amount differs", Void{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 100, Original: ref(c)}, DeclineAmountDiffers},
		{"next day", Void{Common: pos("10000001", canteen, day1+1), PAN: panStaff, Amount: 25000, Original: ref(c)}, DeclineInvalidTransaction},
		{"other card", Void{Common: pos("10000001", canteen, day1), PAN: panStudent, Amount: 25000, Original: ref(c)}, DeclineInvalidTransaction},
		{"void", Void{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 25000, Original: ref(c)}, Approved},
		{"void again", Void{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 25000, Original: ref(c)}, DeclineInvalidTransaction},
		{"student void back to subsidy", Void{Common: pos("10000001", canteen, day1), PAN: panStudent, Amount: 20000, Original: ref(sc)}, Approved},
	}
	for _, tt := range tests {
		res := exec(t, l, &tt.v)
		if res.Decline != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, res.Decline, tt.want)
		}
	}
	if v := mustCard(t, l, panStaff); v.Balances.Cash != 100000 || v.DaySpent != 0 {
		t.Errorf("staff after void %+v", v)
	}
	if v := mustCard(t, l, panStudent); v.Balances.Subsidy != 20000 || v.Balances.Cash != 50000 {
		t.Errorf("student after void %+v", v.Balances)
	}
	if got := l.AccountBalance(MerchantPayable(canteen)); got != 0 {
		t.Errorf("merchant payable %s", got)
	}
	checkStore(t, db)
}

func TestReversal(t *testing.T) {
	l, db := seeded(t, Options{})
	c := pos("10000001", canteen, day1)
	if res := exec(t, l, &Consume{Common: c, PAN: panVisitor, Amount: 2000}); !res.Approved() {
		t.Fatal(res.Decline)
	}
	rev := Reversal{Common: c, PAN: panVisitor, Amount: 2000, Original: ref(c), OriginalKind: KindConsume}
	r1 := exec(t, l, &rev)
	if !r1.Approved() || r1.NoOp || r1.CashDelta != 2100 {
		t.Fatalf("reversal %+v", r1)
	}
	// The same reversal again replays; a second reversal message with its
	// own key finds the original reversed: approved, nothing moves.
	r2 := exec(t, l, &rev)
	if !r2.Replay || r2.CashDelta != 2100 {
		t.Errorf("repeat %+v", r2)
	}
	rev.Key += "-again"
	if r3 := exec(t, l, &rev); !r3.Approved() || !r3.NoOp {
		t.Errorf("second reversal %+v", r3)
	}
	if v := mustCard(t, l, panVisitor); v.Balances.Cash != 10000 || v.DaySpent != 0 {
		t.Errorf("after reversal %+v", v)
	}
	if l.AccountBalance(FeeIncome) != 0 || l.AccountBalance(MerchantPayable(canteen)) != 0 {
		t.Error("fee or merchant not reversed")
	}
	// Unknown original: approved no-op, and the late original is declined.
	late := pos("10000001", canteen, day1)
	u := exec(t, l, &Reversal{Common: late, PAN: panVisitor, Amount: 500, Original: ref(late), OriginalKind: KindConsume})
	if !u.Approved() || !u.NoOp {
		t.Errorf("unknown %+v", u)
	}
	if res := exec(t, l, &Consume{Common: late, PAN: panVisitor, Amount: 500}); res.Decline != DeclineInvalidTransaction {
		t.Errorf("late original %s", res.Decline)
	}
	// The tombstone survives a restart.
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	late.Key += "-after-restart"
	if res := exec(t, l2, &Consume{Common: late, PAN: panVisitor, Amount: 500}); res.Decline != DeclineInvalidTransaction {
		t.Errorf("late original after restart %s", res.Decline)
	}
	// Wrong original kind does not match.
	c2 := pos("10000001", canteen, day1)
	exec(t, l, &Consume{Common: c2, PAN: panVisitor, Amount: 500})
	if res := exec(t, l, &Reversal{Common: c2, PAN: panVisitor, Original: ref(c2), OriginalKind: KindCashLoad}); !res.NoOp {
		t.Errorf("kind mismatch %+v", res)
	}
	checkStore(t, db)
}

// TestReversalOfEach reverses every reversible kind and checks that the
// cards, the merchant, the fee and the clearing accounts are exactly where
// they were before the reversed operation.
func TestReversalOfEach(t *testing.T) {
	type state struct {
		student, visitor        Balances
		stuSpent, visSpent      Fen
		merchant, fee, clearing Fen
	}
	// prep runs before the snapshot; last is the operation to reverse.
	cases := []struct {
		name string
		prep func(t *testing.T, l *Ledger) any
		last func(t *testing.T, l *Ledger, prep any) (Common, Kind)
	}{
		{"consume", nil, func(t *testing.T, l *Ledger, _ any) (Common, Kind) {
			c := pos("10000001", canteen, day1)
			must(t, exec(t, l, &Consume{Common: c, PAN: panStudent, Amount: 15000, PIN: PINVerified}))
			return c, KindConsume
		}},
		{"void", func(t *testing.T, l *Ledger) any {
			o := pos("10000001", canteen, day1)
			must(t, exec(t, l, &Consume{Common: o, PAN: panStudent, Amount: 15000, PIN: PINVerified}))
			return o
		}, func(t *testing.T, l *Ledger, o any) (Common, Kind) {
			c := pos("10000001", canteen, day1)
			must(t, exec(t, l, &Void{Common: c, PAN: panStudent, Amount: 15000, Original: ref(o.(Common))}))
			return c, KindVoid
		}},
		{"refund", func(t *testing.T, l *Ledger) any {
			o := pos("10000001", canteen, day1)
			must(t, exec(t, l, &Consume{Common: o, PAN: panVisitor, Amount: 4000}))
			return o
		}, func(t *testing.T, l *Ledger, o any) (Common, Kind) {
			c := pos("10000001", canteen, day1+2)
			must(t, exec(t, l, &Refund{Common: c, PAN: panVisitor, Amount: 1000, OriginalRRN: o.(Common).RRN, OriginalDate: day1}))
			return c, KindRefund
		}},
		{"cash load", nil, func(t *testing.T, l *Ledger, _ any) (Common, Kind) {
			c := pos("90000001", canteen, day1)
			must(t, exec(t, l, &CashLoad{Common: c, PAN: panStudent, Amount: 777, MayLoad: true}))
			return c, KindCashLoad
		}},
		{"cash load void", func(t *testing.T, l *Ledger) any {
			o := pos("90000001", canteen, day1)
			must(t, exec(t, l, &CashLoad{Common: o, PAN: panStudent, Amount: 777, MayLoad: true}))
			return o
		}, func(t *testing.T, l *Ledger, o any) (Common, Kind) {
			c := pos("90000001", canteen, day1)
			must(t, exec(t, l, &CashLoadVoid{Common: c, PAN: panStudent, Amount: 777, Original: ref(o.(Common))}))
			return c, KindCashLoadVoid
		}},
		{"pre-auth", nil, func(t *testing.T, l *Ledger, _ any) (Common, Kind) {
			c := pos("10000001", canteen, day1)
			must(t, exec(t, l, &PreAuth{Common: c, PAN: panStudent, Amount: 12000, PIN: PINVerified}))
			return c, KindPreAuth
		}},
		{"completion", func(t *testing.T, l *Ledger) any {
			return must(t, exec(t, l, &PreAuth{Common: pos("10000001", canteen, day1), PAN: panVisitor, Amount: 5000, PIN: PINVerified})).AuthCode
		}, func(t *testing.T, l *Ledger, code any) (Common, Kind) {
			c := pos("10000001", canteen, day1)
			must(t, exec(t, l, &PreAuthCompletion{Common: c, PAN: panVisitor, Amount: 4000, AuthCode: code.(string)}))
			return c, KindPreAuthCompletion
		}},
		{"cancel", func(t *testing.T, l *Ledger) any {
			return must(t, exec(t, l, &PreAuth{Common: pos("10000001", canteen, day1), PAN: panVisitor, Amount: 5000, PIN: PINVerified})).AuthCode
		}, func(t *testing.T, l *Ledger, code any) (Common, Kind) {
			c := pos("10000001", canteen, day1)
			must(t, exec(t, l, &PreAuthCancel{Common: c, PAN: panVisitor, Amount: 5000, AuthCode: code.(string)}))
			return c, KindPreAuthCancel
		}},
		{"completion void", func(t *testing.T, l *Ledger) any {
			pa := must(t, exec(t, l, &PreAuth{Common: pos("10000001", canteen, day1), PAN: panVisitor, Amount: 5000, PIN: PINVerified}))
			c := pos("10000001", canteen, day1)
			must(t, exec(t, l, &PreAuthCompletion{Common: c, PAN: panVisitor, Amount: 4000, AuthCode: pa.AuthCode}))
			return c
		}, func(t *testing.T, l *Ledger, o any) (Common, Kind) {
			c := pos("10000001", canteen, day1)
			must(t, exec(t, l, &CompletionVoid{Common: c, PAN: panVisitor, Amount: 4000, Original: ref(o.(Common))}))
			return c, KindCompletionVoid
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, db := seeded(t, Options{})
			// Day spend is compared as the spend of the day the reversed
			// operation ran on (a refund runs on a later day).
			day := day1
			if kind := tc.name; kind == "refund" {
				day = day1 + 2
			}
			spent := func(v CardView) Fen {
				if v.DayDate == day {
					return v.DaySpent
				}
				return 0
			}
			snap := func() state {
				s, v := mustCard(t, l, panStudent), mustCard(t, l, panVisitor)
				return state{s.Balances, v.Balances, spent(s), spent(v),
					l.AccountBalance(MerchantPayable(canteen)), l.AccountBalance(FeeIncome), l.AccountBalance(CashLoadClearing)}
			}
			var prep any
			if tc.prep != nil {
				prep = tc.prep(t, l)
			}
			before := snap()
			c, kind := tc.last(t, l, prep)
			if snap() == before {
				t.Fatalf("%s changed nothing", kind)
			}
			res := exec(t, l, &Reversal{Common: c, Original: ref(c), OriginalKind: kind})
			if !res.Approved() || res.NoOp {
				t.Fatalf("reversal of %s: %+v", kind, res)
			}
			if after := snap(); after != before {
				t.Errorf("after reversal %+v, want %+v", after, before)
			}
			checkStore(t, db)
		})
	}
}

func TestIdempotency(t *testing.T) {
	l, db := seeded(t, Options{})
	c := pos("10000001", canteen, day1)
	req := &Consume{Common: c, PAN: panStaff, Amount: 1234}
	r1 := exec(t, l, req)
	r2 := exec(t, l, req)
	if !r2.Replay || r1.Replay || r2.TxID != r1.TxID || r2.Balances != r1.Balances {
		t.Errorf("replay %+v of %+v", r2, r1)
	}
	if v := mustCard(t, l, panStaff); v.Balances.Cash != 100000-1234 {
		t.Errorf("debited twice: %s", v.Balances.Cash)
	}
	changed := *req
	changed.Amount = 999
	if r := exec(t, l, &changed); r.Decline != DeclineDuplicate {
		t.Errorf("changed content: %s", r.Decline)
	}
	// A declined request replays its decline, without counting a PIN try twice.
	w := &Consume{Common: pos("10000001", canteen, day1), PAN: panStudent, Amount: 100, PIN: PINWrong}
	exec(t, l, w)
	if r := exec(t, l, w); !r.Replay || r.Decline != DeclineIncorrectPIN {
		t.Errorf("declined replay %+v", r)
	}
	if v := mustCard(t, l, panStudent); v.PINTries != 1 {
		t.Errorf("tries %d", v.PINTries)
	}
	checkStore(t, db)
}

// TestKnownNewSkipsOnlyTheLookup: a request the caller marks KnownNew is
// executed and recorded as usual, so that a later retransmission without
// the mark still replays it.
func TestKnownNewSkipsOnlyTheLookup(t *testing.T) {
	l, db := seeded(t, Options{})
	c := pos("10000001", canteen, day1)
	c.KnownNew = true
	first := exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 500})
	if !first.Approved() || first.Replay {
		t.Fatalf("first %+v", first)
	}
	c.KnownNew = false
	again := exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 500})
	if !again.Replay || again.TxID != first.TxID {
		t.Fatalf("retransmission %+v, want a replay of %+v", again, first)
	}
	if v := mustCard(t, l, panStaff); v.Balances.Cash != 100000-500 {
		t.Errorf("cash %s", v.Balances.Cash)
	}
	checkStore(t, db)
}

// TestCommitFailure checks that nothing is published when the caller's
// commit fails, and that the locks are released.
func TestCommitFailure(t *testing.T) {
	l, db := seeded(t, Options{})
	boom := errors.New("disk full")
	c := pos("10000001", canteen, day1)
	b := db.NewBatch()
	_, err := l.Execute(&Consume{Common: c, PAN: panStaff, Amount: 100}, b, func(Result) error { return boom })
	b.Close()
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if v := mustCard(t, l, panStaff); v.Balances.Cash != 100000 {
		t.Errorf("published after failed commit: %s", v.Balances.Cash)
	}
	// The same request now goes through: nothing of the failed one stuck.
	if r := exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 100}); !r.Approved() || r.Replay {
		t.Errorf("retry %+v", r)
	}
	if _, err := l.Execute(&Consume{Common: Common{Date: day1}, PAN: panStaff, Amount: 1}, db.NewBatch(), func(Result) error {
		t.Error("commit called for an invalid request")
		return nil
	}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("missing key: %v", err)
	}
	checkStore(t, db)
}

func TestRefund(t *testing.T) {
	l, db := seeded(t, Options{})
	o := pos("10000001", canteen, day1)
	// Visitor 40.00 + 2.00 fee.
	if r := exec(t, l, &Consume{Common: o, PAN: panVisitor, Amount: 4000}); !r.Approved() {
		t.Fatal(r.Decline)
	}
	refund := func(d BusinessDate, amt Fen, rrn string) Result {
		return exec(t, l, &Refund{Common: pos("10000001", canteen, d), PAN: panVisitor, Amount: amt, OriginalRRN: rrn, OriginalDate: o.Date})
	}
	steps := []struct {
		date      BusinessDate
		amount    Fen
		rrn       string
		want      Decline
		cash, fee Fen
	}{
		{day1 + 1, 1000, o.RRN, Approved, 1050, 50},
		{day1 + 2, 1500, o.RRN, Approved, 1575, 75}, // floor(200*2500/4000)=125, 125-50
		{day1 + 2, 1501, o.RRN, DeclineAmountDiffers, 0, 0},
		{day1 + 2, 100, "999999999999", DeclineOriginalNotFound, 0, 0},
		{day1.AddDays(31), 100, o.RRN, DeclineInvalidTransaction, 0, 0},
		{day1.AddDays(30), 1500, o.RRN, Approved, 1575, 75}, // the last refund returns the whole fee
		{day1.AddDays(30), 1, o.RRN, DeclineAmountDiffers, 0, 0},
	}
	for i, s := range steps {
		r := refund(s.date, s.amount, s.rrn)
		if r.Decline != s.want || r.CashDelta != s.cash || r.Fee != s.fee {
			t.Errorf("step %d: %s cash %s fee %s, want %s %s %s", i, r.Decline, r.CashDelta, r.Fee, s.want, s.cash, s.fee)
		}
	}
	if v := mustCard(t, l, panVisitor); v.Balances.Cash != 10000 {
		t.Errorf("visitor cash %s after full refund", v.Balances.Cash)
	}
	if l.AccountBalance(FeeIncome) != 0 || l.AccountBalance(MerchantPayable(canteen)) != 0 {
		t.Error("fee or merchant not refunded")
	}
	// A voided consume cannot be refunded; a refund goes back to subsidy first.
	s := pos("10000001", canteen, day1)
	exec(t, l, &Consume{Common: s, PAN: panStudent, Amount: 15000, PIN: PINVerified})
	exec(t, l, &Void{Common: pos("10000001", canteen, day1), PAN: panStudent, Amount: 15000, Original: ref(s)})
	if r := exec(t, l, &Refund{Common: pos("10000001", canteen, day1+1), Amount: 100, OriginalRRN: s.RRN, OriginalDate: day1}); r.Decline != DeclineInvalidTransaction {
		t.Errorf("refund of voided: %s", r.Decline)
	}
	s2 := pos("10000001", canteen, day1)
	exec(t, l, &Consume{Common: s2, PAN: panStudent, Amount: 100, PIN: PINVerified})
	if r := exec(t, l, &Refund{Common: pos("10000001", canteen, day1+1), Amount: 100, OriginalRRN: s2.RRN, OriginalDate: day1}); r.SubsidyDelta != 100 || r.CashDelta != 0 {
		t.Errorf("student refund %+v", r)
	}
	if r := exec(t, l, &Refund{Common: pos("20000001", cafe, day1+1), Amount: 1, OriginalRRN: s2.RRN, OriginalDate: day1}); r.Decline != DeclineInvalidTransaction {
		t.Errorf("refund at another merchant: %s", r.Decline)
	}
	checkStore(t, db)
}

// TestPreAuthCountsAgainstDailyLimit: an open hold reserves daily limit as
// it reserves funds, so pre-auth 200 + consume 200 + completion 200 cannot
// take a 300.00 daily limit to 400.00. Completion and cancel give back
// what the hold reserved beyond what was taken, on the hold's day; on a
// later day the hold's day has passed and today's spend is untouched.
func TestPreAuthCountsAgainstDailyLimit(t *testing.T) {
	l, db := seeded(t, Options{})
	spent := func(d BusinessDate) Fen {
		v := mustCard(t, l, panStudent)
		if v.DayDate != d {
			return 0
		}
		return v.DaySpent
	}
	at := func(d BusinessDate) Common { return pos("10000001", canteen, d) }
	consume := func(d BusinessDate, amt Fen) Decline {
		return exec(t, l, &Consume{Common: at(d), PAN: panStudent, Amount: amt, PIN: PINVerified}).Decline
	}
	// Day 1: the hold takes 200 of the 300 limit.
	pa := must(t, exec(t, l, &PreAuth{Common: at(day1), PAN: panStudent, Amount: 20000, PIN: PINVerified}))
	if got := spent(day1); got != 20000 {
		t.Fatalf("after pre-auth: spent %s, want 200.00", got)
	}
	if d := consume(day1, 20000); d != DeclineExceedsAmountLimit {
		t.Fatalf("consume 200 beside a 200 hold under a 300 limit: %s", d)
	}
	if d := consume(day1, 10000); d != Approved {
		t.Fatalf("consume 100: %s", d)
	}
	// Completing 150 of the 200 hold gives back 50 of the limit.
	must(t, exec(t, l, &PreAuthCompletion{Common: at(day1), PAN: panStudent, Amount: 15000, AuthCode: pa.AuthCode}))
	if got := spent(day1); got != 25000 {
		t.Fatalf("after completion: spent %s, want 250.00", got)
	}
	if d := consume(day1, 5001); d != DeclineExceedsAmountLimit {
		t.Fatalf("consume beyond what the completion gave back: %s", d)
	}
	// Cancel on the hold's day gives back the whole reservation.
	pa2 := must(t, exec(t, l, &PreAuth{Common: at(day1 + 1), PAN: panStudent, Amount: 20000, PIN: PINVerified}))
	must(t, exec(t, l, &PreAuthCancel{Common: at(day1 + 1), PAN: panStudent, Amount: 20000, AuthCode: pa2.AuthCode}))
	if got := spent(day1 + 1); got != 0 {
		t.Fatalf("after cancel: spent %s, want 0", got)
	}
	// A hold of day 2 completed on day 3 counted on day 2; day 3's limit is
	// whole.
	pa3 := must(t, exec(t, l, &PreAuth{Common: at(day1 + 2), PAN: panStudent, Amount: 10000, PIN: PINVerified}))
	must(t, exec(t, l, &PreAuthCompletion{Common: at(day1 + 3), PAN: panStudent, Amount: 10000, AuthCode: pa3.AuthCode}))
	if got := spent(day1 + 3); got != 0 {
		t.Fatalf("completion of an earlier day's hold: spent %s today, want 0", got)
	}
	if d := consume(day1+3, 20000); d != Approved {
		t.Fatalf("consume 200 on day 4: %s", d)
	}
	if d := consume(day1+3, 10000); d != Approved {
		t.Fatalf("consume 100 more on day 4: %s", d)
	}
	checkStore(t, db)
}

func TestPreAuth(t *testing.T) {
	l, db := seeded(t, Options{MaxHoldsPerCard: 2})
	p := pos("10000001", canteen, day1)
	pa := exec(t, l, &PreAuth{Common: p, PAN: panVisitor, Amount: 5000, PIN: PINVerified})
	if !pa.Approved() || pa.Balances.Held != 5250 || pa.Balances.Available != 10000-5250 || pa.Balances.Cash != 10000 {
		t.Fatalf("pre-auth %+v", pa)
	}
	// The hold is not spendable.
	if r := exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panVisitor, Amount: 4800, PIN: PINVerified}); r.Decline != DeclineInsufficientFunds {
		t.Errorf("spend held money: %s", r.Decline)
	}
	comp := func(amt Fen, code string) Result {
		return exec(t, l, &PreAuthCompletion{Common: pos("10000001", canteen, day1), PAN: panVisitor, Amount: amt, AuthCode: code, Original: ref(p)})
	}
	if r := comp(5001, pa.AuthCode); r.Decline != DeclineExceedsAmountLimit {
		t.Errorf("over hold: %s", r.Decline)
	}
	if r := comp(100, "000000"); r.Decline != DeclineOriginalNotFound {
		t.Errorf("unknown code: %s", r.Decline)
	}
	cr := comp(4000, pa.AuthCode)
	if !cr.Approved() || cr.CashDelta != -4200 || cr.Balances.Held != 0 || cr.Balances.Cash != 5800 {
		t.Fatalf("completion %+v", cr)
	}
	if r := comp(100, pa.AuthCode); r.Decline != DeclineOriginalNotFound {
		t.Errorf("second completion: %s", r.Decline)
	}
	// Completion void restores the hold.
	cv := exec(t, l, &CompletionVoid{Common: pos("10000001", canteen, day1), PAN: panVisitor, Amount: 4000, Original: TxnRef{Batch: 1, STAN: cr.stan(t, l)}})
	if !cv.Approved() || cv.Balances.Cash != 10000 || cv.Balances.Held != 5250 {
		t.Fatalf("completion void %+v", cv)
	}
	// Cancel needs the held amount; then the hold is gone.
	if r := exec(t, l, &PreAuthCancel{Common: pos("10000001", canteen, day1), PAN: panVisitor, Amount: 1, AuthCode: pa.AuthCode}); r.Decline != DeclineAmountDiffers {
		t.Errorf("cancel amount: %s", r.Decline)
	}
	// Only the merchant that holds the money may release it.
	if r := exec(t, l, &PreAuthCancel{Common: pos("10000002", market, day1), PAN: panVisitor, Amount: 5000, AuthCode: pa.AuthCode}); r.Decline != DeclineInvalidTransaction {
		t.Errorf("cancel by another merchant: %s", r.Decline)
	}
	if r := exec(t, l, &PreAuthCancel{Common: pos("10000001", canteen, day1), PAN: panVisitor, Amount: 5000, AuthCode: pa.AuthCode}); !r.Approved() || r.Balances.Held != 0 {
		t.Errorf("cancel %+v", r)
	}
	// Count limit, then expiry releases the holds (30 days by default).
	for i, want := range []Decline{Approved, Approved, DeclineExceedsCountLimit} {
		if r := exec(t, l, &PreAuth{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 100}); r.Decline != want {
			t.Errorf("hold %d: %s", i, r.Decline)
		}
	}
	if r := exec(t, l, &BalanceInquiry{Common: pos("10000001", canteen, day1.AddDays(30)), PAN: panStaff}); r.Balances.Held != 200 {
		t.Errorf("held on the last day %s", r.Balances.Held)
	}
	if r := exec(t, l, &BalanceInquiry{Common: pos("10000001", canteen, day1.AddDays(31)), PAN: panStaff}); r.Balances.Held != 0 {
		t.Errorf("held after expiry %s", r.Balances.Held)
	}
	checkStore(t, db)
}

// stan finds the STAN of the posting behind a result (test helper).
func (r Result) stan(t *testing.T, l *Ledger) uint32 {
	t.Helper()
	raw, closer, err := l.db.Get(postKey(r.TxID))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	p, err := decodePosting(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p.STAN
}

func TestCardAdmin(t *testing.T) {
	l, db := seeded(t, Options{})
	consume := func(pan string) Decline {
		return exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: pan, Amount: 100}).Decline
	}
	steps := []struct {
		name string
		op   func() error
		want Decline
		err  error
	}{
		{"freeze", func() error { return l.Freeze(panStaff) }, DeclineFrozenCard, nil},
		{"freeze again", func() error { return l.Freeze(panStaff) }, DeclineFrozenCard, nil},
		{"unfreeze", func() error { return l.Unfreeze(panStaff) }, Approved, nil},
		{"lost", func() error { return l.ReportLost(panStaff) }, DeclineLostCard, nil},
		{"unfreeze lost", func() error { return l.Unfreeze(panStaff) }, DeclineLostCard, ErrCardState},
		{"cancel loss", func() error { return l.CancelLoss(panStaff) }, Approved, nil},
		{"black list", func() error { return l.SetList(panStaff, ListBlack) }, DeclineNotPermittedCardholder, nil},
		{"grey list", func() error { return l.SetList(panStaff, ListGrey) }, Approved, nil},
		{"limits", func() error { return l.SetLimits(panStaff, Limits{PerTxnLimit: 99, NoPINLimit: 5000}) }, DeclineExceedsAmountLimit, nil},
		{"unknown", func() error { return l.Freeze("6230151999999999999") }, DeclineExceedsAmountLimit, ErrUnknownCard},
	}
	for _, s := range steps {
		if err := s.op(); !errors.Is(err, s.err) {
			t.Fatalf("%s: error %v, want %v", s.name, err, s.err)
		}
		if got := consume(panStaff); got != s.want {
			t.Fatalf("%s: consume %s, want %s", s.name, got, s.want)
		}
	}
	if r := exec(t, l, &BalanceInquiry{Common: pos("10000001", canteen, day1), PAN: panStaff}); !r.Alert {
		t.Error("grey list without alert")
	}
	// Replace: balance, subsidy and limits move; the old card is closed.
	if err := l.ReplaceCard(panStudent, "6230151000000000079", []byte("pvv2")); err != nil {
		t.Fatal(err)
	}
	n := mustCard(t, l, "6230151000000000079")
	o := mustCard(t, l, panStudent)
	if n.Balances.Cash != 50000 || n.Balances.Subsidy != 20000 || n.DailyLimit != 30000 || n.State != Active ||
		o.Balances.Available != 0 || o.State != Closed || o.ReplacedBy != n.PAN {
		t.Errorf("replace: new %+v old %+v", n, o)
	}
	if got := consume(panStudent); got != DeclineInvalidCard {
		t.Errorf("closed old card: %s", got)
	}
	if err := l.ReplaceCard(panStaff, panVisitor, nil); !errors.Is(err, ErrCardExists) {
		t.Errorf("replace onto existing: %v", err)
	}
	// Close: the balance goes to the refund payable.
	if err := l.CloseCard(panVisitor); err != nil {
		t.Fatal(err)
	}
	if v := mustCard(t, l, panVisitor); v.State != Closed || v.Balances.Cash != 0 || l.AccountBalance(RefundPayable) != 10000 {
		t.Errorf("close %+v payable %s", v, l.AccountBalance(RefundPayable))
	}
	if err := l.CloseCard(panVisitor); !errors.Is(err, ErrCardState) {
		t.Errorf("close twice: %v", err)
	}
	checkStore(t, db)
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mustCard(t, l2, "6230151000000000079") != n || l2.AccountBalance(RefundPayable) != 10000 {
		t.Error("admin changes lost on reopen")
	}
}

func TestBatchTotals(t *testing.T) {
	l, _ := seeded(t, Options{})
	a := pos("10000001", canteen, day1)
	exec(t, l, &Consume{Common: a, PAN: panStaff, Amount: 1000})
	b := pos("10000001", canteen, day1)
	exec(t, l, &Consume{Common: b, PAN: panStaff, Amount: 2000})
	exec(t, l, &Void{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 2000, Original: ref(b)})
	c := pos("10000001", canteen, day1)
	exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 4000})
	exec(t, l, &Reversal{Common: c, Original: ref(c), OriginalKind: KindConsume})
	exec(t, l, &Refund{Common: pos("10000001", canteen, day1), Amount: 300, OriginalRRN: a.RRN, OriginalDate: day1})
	exec(t, l, &Consume{Common: pos("10000002", canteen, day1), PAN: panStaff, Amount: 8000, PIN: PINVerified}) // other terminal
	exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 1})                      // declined
	got, err := l.BatchTotals("10000001", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := Totals{DebitCount: 2, DebitAmount: 3000, CreditCount: 2, CreditAmount: 2300}
	if got != want {
		t.Errorf("totals %+v, want %+v", got, want)
	}
}

// TestCheckFindsViolations corrupts a store on purpose: a check that never
// fails proves nothing.
func TestCheckFindsViolations(t *testing.T) {
	l, db := seeded(t, Options{})
	exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 1000})
	checkStore(t, db)
	raw, closer, err := db.Get(cardKey(panStaff))
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCard(raw)
	closer.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.Cash += 1 // money out of nowhere
	if err := db.Set(cardKey(panStaff), c.encode(), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	p := posting{TxID: 1 << 40, Kind: KindVoid, Link: 12345, Legs: []leg{{FeeIncome, 5}, {OpeningFunds, -4}}}
	if err := db.Set(postKey(p.TxID), p.encode(), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	r, err := Check(db)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Violations) < 4 {
		t.Errorf("violations %q", r.Violations)
	}
}

// A completion void put the hold back; a second completion then used it.
// Reversing the void now would charge the first completion again: two
// charges for one pre-auth. It is declined and the card is charged once.
func TestReversalOfCompletionVoidAfterTheHoldIsUsed(t *testing.T) {
	l, db := seeded(t, Options{})
	auth := pos("10000001", canteen, day1)
	pa := must(t, exec(t, l, &PreAuth{Common: auth, PAN: panStaff, Amount: 1000}))
	opening := mustCard(t, l, panStaff).Balances.Cash
	first := pos("10000001", canteen, day1)
	must(t, exec(t, l, &PreAuthCompletion{Common: first, PAN: panStaff, Amount: 1000, AuthCode: pa.AuthCode, Original: ref(auth)}))
	void := pos("10000001", canteen, day1)
	must(t, exec(t, l, &CompletionVoid{Common: void, PAN: panStaff, Amount: 1000, Original: ref(first)}))
	must(t, exec(t, l, &PreAuthCompletion{Common: pos("10000002", canteen, day1), PAN: panStaff, Amount: 1000, AuthCode: pa.AuthCode, Original: ref(auth)}))

	rev := Common{Key: void.Key + "/reversal", Date: day1, Terminal: void.Terminal, Merchant: canteen, Batch: void.Batch, STAN: void.STAN}
	r := exec(t, l, &Reversal{Common: rev, PAN: panStaff, OriginalKind: KindCompletionVoid, Original: ref(void)})
	if r.Decline != DeclineInvalidTransaction {
		t.Fatalf("reversal of the void: %s (no-op %v), want invalid transaction", r.Decline, r.NoOp)
	}
	if got := mustCard(t, l, panStaff).Balances; opening-got.Cash != 1000 || got.Held != 0 {
		t.Fatalf("cash %s → %s held %s: want one charge of 10.00", opening, got.Cash, got.Held)
	}
	checkStore(t, db)
}

// TestDeduplicatedWritesNoIdempotencyRecord: a request whose caller
// keeps its record itself (the switch) is executed without an
// idempotency record, so the same key reaching the ledger again is
// executed again — the caller answers repeats before the ledger.
func TestDeduplicatedWritesNoIdempotencyRecord(t *testing.T) {
	l, db := seeded(t, Options{})
	c := pos("10000001", canteen, day1)
	c.Deduplicated = true
	first := exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 500})
	if !first.Approved() || first.Replay {
		t.Fatalf("first %+v", first)
	}
	if raw, err := get(db, idemKey(KindConsume, c.Key)); err != nil || raw != nil {
		t.Fatalf("idempotency record %x %v, want none", raw, err)
	}
	again := exec(t, l, &Consume{Common: c, PAN: panStaff, Amount: 500})
	if again.Replay || again.TxID == first.TxID {
		t.Fatalf("second %+v: executed as new was expected", again)
	}
	if v := mustCard(t, l, panStaff); v.Balances.Cash != 100000-1000 {
		t.Errorf("cash %s", v.Balances.Cash)
	}
	checkStore(t, db)
}

// TestRefundByCallerReference: a POS original executed with
// RRNIndexedByCaller leaves no RRN index record; its refund finds it by
// the reference the caller resolved, only while that reference still
// names a posting of the refund's RRN and date (a reused reference, or no
// reference, is 25); PostingByRRN finds nothing, PostingByReference the
// posting.
func TestRefundByCallerReference(t *testing.T) {
	l, db := seeded(t, Options{})
	o := pos("10000001", canteen, day1)
	o.RRNIndexedByCaller = true
	if r := exec(t, l, &Consume{Common: o, PAN: panVisitor, Amount: 4000}); !r.Approved() {
		t.Fatal(r.Decline)
	}
	if _, ok, err := PostingByRRN(db, day1, o.RRN); ok || err != nil {
		t.Fatalf("RRN index record written for a caller-indexed consume: %v %v", ok, err)
	}
	if p, ok, err := PostingByReference(db, nil, ref(o)); !ok || err != nil || p.RRN != o.RRN || p.Fee != 200 {
		t.Fatalf("by reference: %+v %v %v", p, ok, err)
	}
	refund := func(amt Fen, rrn string, date BusinessDate, by TxnRef) Result {
		c := pos("10000001", canteen, day1+1)
		c.RRNIndexedByCaller = true
		return exec(t, l, &Refund{Common: c, PAN: panVisitor, Amount: amt, OriginalRRN: rrn, OriginalDate: date, OriginalRef: by})
	}
	for i, s := range []struct {
		amount Fen
		rrn    string
		date   BusinessDate
		by     TxnRef
		want   Decline
	}{
		{1000, o.RRN, day1, TxnRef{}, DeclineOriginalNotFound},                                        // no reference: nothing to find it by
		{1000, o.RRN, day1, TxnRef{Terminal: "10000001", Batch: 9, STAN: 9}, DeclineOriginalNotFound}, // names nothing
		{1000, "999999999999", day1, ref(o), DeclineOriginalNotFound},                                 // the reference names another RRN
		{1000, o.RRN, day1 + 1, ref(o), DeclineOriginalNotFound},                                      // ... or another day
		{1000, o.RRN, day1, ref(o), Approved},
		{3001, o.RRN, day1, ref(o), DeclineAmountDiffers},
	} {
		if r := refund(s.amount, s.rrn, s.date, s.by); r.Decline != s.want {
			t.Errorf("step %d: %s, want %s", i, r.Decline, s.want)
		}
	}
}

// TestRefundPassesOverOtherPostingsOfTheRRN: the RRN index names postings
// that are no POS original (an outside credit here) under the RRN and
// date a POS refund names: the refund passes over them to the original
// the caller resolved, and without one it is 25, as before.
func TestRefundPassesOverOtherPostingsOfTheRRN(t *testing.T) {
	l, _ := seeded(t, Options{})
	o := pos("10000001", canteen, day1)
	o.RRNIndexedByCaller = true
	must(t, exec(t, l, &Consume{Common: o, PAN: panVisitor, Amount: 4000}))
	// An outside credit of another card, indexed under the same RRN and
	// date, and another consume indexed under it too.
	must(t, exec(t, l, &OutsideCredit{Common: Common{Key: "10001|order-1", Date: day1, RRN: o.RRN},
		PAN: panStaff, Amount: 100, Institution: "10001"}))
	refund := func(amt Fen, by TxnRef) Result {
		c := pos("10000001", canteen, day1+1)
		c.RRNIndexedByCaller = true
		return exec(t, l, &Refund{Common: c, PAN: panVisitor, Amount: amt, OriginalRRN: o.RRN, OriginalDate: day1, OriginalRef: by})
	}
	wantDecline(t, refund(1000, TxnRef{}), DeclineOriginalNotFound)
	must(t, refund(1000, ref(o)))

	// A consume the RRN index names that is not the original the caller
	// resolved is passed over too.
	other := pos("10000002", canteen, day1)
	other.RRN = o.RRN
	must(t, exec(t, l, &Consume{Common: other, PAN: panStaff, Amount: 500}))
	must(t, refund(1000, ref(o)))
	if v := mustCard(t, l, panStaff); v.Balances.Cash != 100000+100-500 {
		t.Errorf("staff cash %s: a refund went to the wrong original", v.Balances.Cash)
	}
}

// publishedUnchanged snapshots the published state of a card; the
// function it returns fails the test if that state object was changed
// since (an operation changes its own copy and publishes that: readers
// hold the published one without the card's lock).
func publishedUnchanged(t *testing.T, l *Ledger, pan string) func() {
	t.Helper()
	e := l.entry(pan)
	if e == nil {
		return func() {}
	}
	c := e.cur.Load()
	card, purse, tries := c.encode(), c.encodePurse(), c.PINTries
	return func() {
		t.Helper()
		if !bytes.Equal(c.encode(), card) || !bytes.Equal(c.encodePurse(), purse) || c.PINTries != tries {
			t.Errorf("card %s: the published state was changed in place", pan)
		}
	}
}
