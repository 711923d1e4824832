package recharge

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	panStudent = "6230151000000000012"
	panLost    = "6230151000000000046"
	panFrozen  = "6230151000000000053"
	panEmpty   = "6230151000000000061"
	today      = ledger.BusinessDate(20261204)
)

type fixture struct {
	s  *Service
	l  *ledger.Ledger
	db *pebble.DB
}

func newFixture(t testing.TB) *fixture { return newFixtureWith(t, func(*Options) {}) }

func newFixtureWith(t testing.TB, mutate func(*Options)) *fixture {
	t.Helper()
	o := ledger.RecommendedPebbleOptions()
	o.FS = vfs.NewMem()
	o.Logger = quiet{}
	db, err := pebble.Open("", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := ledger.Open(db, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AddMerchant(ledger.MerchantSpec{ID: "898310000000001", Name: "Canteen No.1", OnCampus: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []ledger.CardSpec{
		{PAN: panStudent, Holder: "Li Lei", HolderType: ledger.Student, Cash: 50000},
		{PAN: panLost, Holder: "Han Meimei", HolderType: ledger.Student, State: ledger.Lost},
		{PAN: panFrozen, Holder: "Chen Jie", HolderType: ledger.Student, State: ledger.Frozen},
		{PAN: panEmpty, Holder: "赵敏", HolderType: ledger.Student},
	} {
		if err := l.OpenCard(c, nil); err != nil {
			t.Fatal(err)
		}
	}
	var rrn atomic.Uint64
	opts := Options{DB: db, Ledger: l,
		Institutions: []Institution{{ID: "10001", Name: "demo-recharge",
			Allow:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			MaxCredit: 100000, MaxDailyCredit: 500000}},
		Today:   func() ledger.BusinessDate { return today },
		NextRRN: func(ledger.BusinessDate) (string, error) { return fmt.Sprintf("338%09d", rrn.Add(1)), nil },
	}
	mutate(&opts)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, l: l, db: db}
}

func syncCommit(b *pebble.Batch, _ Outcome) error { return b.Commit(pebble.Sync) }

func credit(order, pan string, amount ledger.Fen) Request {
	return Request{Institution: "10001", Order: order, PAN: pan, Amount: amount, HasAmount: true, ProcCode: "210000", Currency: "156"}
}

func (f *fixture) credit(t *testing.T, r Request, want string) Outcome {
	t.Helper()
	out, err := f.s.Credit(r, syncCommit)
	if err != nil {
		t.Fatal(err)
	}
	if out.RC != want {
		t.Fatalf("credit %s: rc %s, want %s", r.Order, out.RC, want)
	}
	return out
}

func (f *fixture) reverse(t *testing.T, r Request, want string) Outcome {
	t.Helper()
	out, err := f.s.Reverse(r, syncCommit)
	if err != nil {
		t.Fatal(err)
	}
	if out.RC != want {
		t.Fatalf("reverse %s: rc %s, want %s", r.Order, out.RC, want)
	}
	return out
}

func (f *fixture) query(t *testing.T, order string) Outcome {
	t.Helper()
	out, err := f.s.Query(Request{Institution: "10001", Order: order})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) cash(t *testing.T, pan string) ledger.Fen {
	c, ok := f.l.Card(pan)
	if !ok {
		t.Fatalf("no card %s", pan)
	}
	return c.Balances.Cash
}

func TestCreditIdempotency(t *testing.T) {
	f := newFixture(t)
	first := f.credit(t, credit("ORD-1", panEmpty, 5000), spec.RCApproved)
	if first.Balances == nil || first.Balances.Cash != 5000 || first.AuthCode == "" || first.RRN == "" {
		t.Fatalf("first %+v", first)
	}
	again := f.credit(t, credit("ORD-1", panEmpty, 5000), spec.RCApproved)
	if !again.Replayed || again.RRN != first.RRN || again.AuthCode != first.AuthCode || again.Balances.Cash != 5000 {
		t.Fatalf("replay %+v", again)
	}
	if got := f.cash(t, panEmpty); got != 5000 {
		t.Fatalf("cash %s after a replay", got)
	}
	// The same order with another amount, card, processing code or currency: 94.
	f.credit(t, credit("ORD-1", panEmpty, 5001), spec.RCDuplicate)
	f.credit(t, credit("ORD-1", panStudent, 5000), spec.RCDuplicate)
	r := credit("ORD-1", panEmpty, 5000)
	r.Currency = "840"
	f.credit(t, r, spec.RCDuplicate)
	// Another institution's order of the same number is another order;
	// an unknown institution is 03.
	r = credit("ORD-1", panEmpty, 5000)
	r.Institution = "99999"
	f.credit(t, r, spec.RCInvalidMerchant)
	q := f.query(t, "ORD-1")
	if q.RC != "00" || q.Status != StateApproved || q.PAN != panEmpty || q.Amount != 5000 || q.AuthCode != first.AuthCode || q.RRN != first.RRN {
		t.Fatalf("query %+v", q)
	}
	if q := f.query(t, "NOPE"); q.RC != spec.RCOriginalNotFound {
		t.Fatalf("unknown order query %+v", q)
	}
}

func TestCreditDeclines(t *testing.T) {
	f := newFixture(t)
	f.credit(t, credit("U", "6230151000000009999", 100), spec.RCInvalidCard)
	f.credit(t, credit("L", panLost, 100), spec.RCRestrictedCard)
	f.credit(t, credit("F", panFrozen, 100), spec.RCRestrictedCard)
	f.credit(t, credit("Z", panEmpty, 0), spec.RCInvalidAmount)
	// max_credit 100000: equal is allowed, one fen more is 61.
	f.credit(t, credit("M1", panEmpty, 100001), spec.RCExceedsAmountLimit)
	f.credit(t, credit("M2", panEmpty, 100000), spec.RCApproved)
	// A declined order is stored: the same request gets the same answer,
	// and a query says D with the code.
	f.credit(t, credit("M1", panEmpty, 100001), spec.RCExceedsAmountLimit)
	if q := f.query(t, "M1"); q.Status != StateDeclined || q.StatusRC != spec.RCExceedsAmountLimit {
		t.Fatalf("query of a declined order %+v", q)
	}
	if q := f.query(t, "L"); q.Status != StateDeclined || q.StatusRC != spec.RCRestrictedCard {
		t.Fatalf("query of a declined order %+v", q)
	}
}

func TestDailyLimit(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.credit(t, credit(fmt.Sprintf("D%d", i), panEmpty, 100000), spec.RCApproved)
	}
	// 500000 reached: one fen more is over.
	f.credit(t, credit("D5", panEmpty, 1), spec.RCExceedsAmountLimit)
	// A reversed credit does not count.
	f.reverse(t, credit("D0", panEmpty, 100000), spec.RCApproved)
	f.credit(t, credit("D6", panEmpty, 100000), spec.RCApproved)
	f.credit(t, credit("D7", panEmpty, 1), spec.RCExceedsAmountLimit)
	if got := f.cash(t, panEmpty); got != 500000 {
		t.Fatalf("cash %s", got)
	}
}

func TestReversal(t *testing.T) {
	f := newFixture(t)
	first := f.credit(t, credit("R1", panEmpty, 3000), spec.RCApproved)
	// Card or amount other than the order's: 64, nothing reversed.
	f.reverse(t, credit("R1", panEmpty, 3001), spec.RCAmountDiffers)
	f.reverse(t, credit("R1", panStudent, 3000), spec.RCAmountDiffers)
	if got := f.cash(t, panEmpty); got != 3000 {
		t.Fatalf("cash %s after refused reversals", got)
	}
	f.reverse(t, credit("R1", panEmpty, 3000), spec.RCApproved)
	f.reverse(t, credit("R1", panEmpty, 3000), spec.RCApproved) // repeat (0401)
	if got := f.cash(t, panEmpty); got != 0 {
		t.Fatalf("cash %s after reversal", got)
	}
	if q := f.query(t, "R1"); q.Status != StateReversed || q.AuthCode != first.AuthCode {
		t.Fatalf("query %+v", q)
	}
	// A reversed order cannot be credited again.
	f.credit(t, credit("R1", panEmpty, 3000), spec.RCInvalidTransaction)

	// A reversal before its credit: 00, and the late credit gets 12.
	f.reverse(t, credit("R2", panEmpty, 700), spec.RCApproved)
	if q := f.query(t, "R2"); q.Status != StateReversed || q.PAN != panEmpty || q.Amount != 700 || q.AuthCode != "" {
		t.Fatalf("query of a reversal-only order %+v", q)
	}
	f.credit(t, credit("R2", panEmpty, 700), spec.RCInvalidTransaction)
	if got := f.cash(t, panEmpty); got != 0 {
		t.Fatalf("cash %s after a late credit", got)
	}
	// A declined order has nothing to undo.
	f.credit(t, credit("R3", panLost, 700), spec.RCRestrictedCard)
	f.reverse(t, credit("R3", panLost, 700), spec.RCApproved)
	rep, err := ledger.Check(f.db)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger check: %v %v", err, rep.Violations)
	}
}

// Concurrent repeats of one order credit it once.
func TestConcurrentRepeats(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	var approved atomic.Int32
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.s.Credit(credit("C1", panEmpty, 4200), syncCommit)
			if err != nil {
				t.Error(err)
				return
			}
			if out.RC == spec.RCApproved {
				approved.Add(1)
			}
		}()
	}
	wg.Wait()
	if approved.Load() != 16 {
		t.Fatalf("%d of 16 repeats approved", approved.Load())
	}
	if got := f.cash(t, panEmpty); got != 4200 {
		t.Fatalf("cash %s: credited more than once", got)
	}
}

func TestVerifyAndNames(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		pan, name, want string
	}{
		{panStudent, "Li Lei", "00"},
		{panStudent, "  li   LEI ", "00"},
		{panStudent, "Li\u3000Lei", "00"},
		{panStudent, "Li Le", "05"},
		{panEmpty, "赵敏", "00"},
		{panEmpty, "\u3000赵敏 ", "00"},
		{panEmpty, "赵 敏", "05"},
		{panLost, "Han Meimei", "62"},
		{panFrozen, "Chen Jie", "62"},
		{"6230151000000009999", "x", "14"},
	} {
		if got := f.s.Verify(Request{Institution: "10001", PAN: tc.pan, Name: tc.name}); got.RC != tc.want {
			t.Errorf("verify %s %q: %s, want %s", tc.pan, tc.name, got.RC, tc.want)
		}
	}
	// NFC: é as one code point and as e + combining acute are the same name.
	if !NamesMatch("Jos\u00e9", "Jose\u0301") {
		t.Error("NFC forms differ")
	}
	// Folding J to j lets the caron compose (U+01F0): both spellings match.
	if !NamesMatch("J\u030Cohn", "\u01F0ohn") {
		t.Error("a mark that composes only after ASCII folding")
	}
	if NamesMatch("Ä", "A") || NamesMatch("ä", "Ä") {
		t.Error("non-ASCII letters must compare exactly")
	}
}

func TestOrderRecordRoundTrip(t *testing.T) {
	rec := orderRecord{State: StateReversed, PAN: panEmpty, ProcCode: "210000", Amount: 123, Currency: "156",
		RC: "00", RRN: "338000000001", AuthCode: "000042", Balances: ledger.Balances{Cash: 1, Subsidy: 2, Held: 3, Available: 0},
		TxID: 99, Date: today, ReversalRRN: "338000000002", Pending: true}
	got, err := decodeOrder(rec.encode())
	if err != nil || got != rec {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for n := range rec.encode() {
		if _, err := decodeOrder(rec.encode()[:n]); err == nil {
			t.Fatalf("truncated to %d decodes", n)
		}
	}
}

// quiet keeps Pebble's informational lines out of test output.
type quiet struct{}

func (quiet) Infof(string, ...any)      {}
func (quiet) Errorf(f string, a ...any) { fmt.Printf(f+"\n", a...) }
func (quiet) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// A reversal of a credit already spent is approved; the card owes the
// shortfall.
func TestReversalOfSpentCredit(t *testing.T) {
	f := newFixture(t)
	f.credit(t, credit("S1", panEmpty, 3000), spec.RCApproved)
	b := f.db.NewBatch()
	res, err := f.l.Execute(&ledger.Consume{Common: ledger.Common{Key: "t/1", Date: today, Terminal: "10000001",
		Merchant: "898310000000001", Batch: 1, STAN: 1}, PAN: panEmpty, Amount: 2500}, b,
		func(ledger.Result) error { return b.Commit(pebble.Sync) })
	b.Close()
	if err != nil || !res.Approved() {
		t.Fatalf("consume: %v %v", res.Decline, err)
	}
	f.reverse(t, credit("S1", panEmpty, 3000), spec.RCApproved)
	c, _ := f.l.Card(panEmpty)
	if c.Balances.Cash != 0 || c.Owed != 2500 {
		t.Fatalf("cash %s owed %s", c.Balances.Cash, c.Owed)
	}
	if q := f.query(t, "S1"); q.Status != StateReversed {
		t.Fatalf("query %+v", q)
	}
	rep, err := ledger.Check(f.db)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger check: %v %v", err, rep.Violations)
	}
}

// Pending credits: recorded as pending, listed for refund once older than
// the age asked for, gone from the list once claimed or reversed.
func TestPendingCredits(t *testing.T) {
	day := today
	f := newFixtureWith(t, func(o *Options) {
		o.PendingCredits = true
		o.Today = func() ledger.BusinessDate { return day }
	})
	f.credit(t, credit("P1", panEmpty, 1000), spec.RCApproved)
	day = today.AddDays(1)
	f.credit(t, credit("P2", panEmpty, 2000), spec.RCApproved)
	f.credit(t, credit("P3", panStudent, 300), spec.RCApproved)
	if got := f.cash(t, panEmpty); got != 0 {
		t.Fatalf("a pending credit reached the purse: %s", got)
	}
	if c, _ := f.l.Card(panEmpty); c.Pending != 3000 {
		t.Fatalf("pending %s", c.Pending)
	}
	day = today.AddDays(10)
	list, truncated, err := f.s.PendingOlderThan(9)
	if err != nil || truncated {
		t.Fatal(err, truncated)
	}
	if len(list) != 1 || list[0].Order != "P1" || list[0].AgeDays != 10 || list[0].Card != "623015*********0061" {
		t.Fatalf("older than 9 days: %+v", list)
	}
	if list, _, _ := f.s.PendingOlderThan(0); len(list) != 3 {
		t.Fatalf("older than 0 days: %+v", list)
	}
	// Reversed: off the list. Claimed: off the list.
	f.reverse(t, credit("P3", panStudent, 300), spec.RCApproved)
	b := f.db.NewBatch()
	res, err := f.l.Execute(&ledger.PendingClaim{Common: ledger.Common{Key: "t/claim", Date: day, Terminal: "90000001",
		Merchant: "898310000000001", Batch: 1, STAN: 9}, PAN: panEmpty, MayLoad: true}, b,
		func(ledger.Result) error { return b.Commit(pebble.Sync) })
	b.Close()
	if err != nil || res.CashDelta != 3000 {
		t.Fatalf("claim: %+v %v", res, err)
	}
	if list, _, _ := f.s.PendingOlderThan(0); len(list) != 0 {
		t.Fatalf("after claim and reversal: %+v", list)
	}
	// A new pending credit after the claim is listed alone.
	f.credit(t, credit("P4", panEmpty, 500), spec.RCApproved)
	day = day.AddDays(40)
	if list, _, _ := f.s.PendingOlderThan(30); len(list) != 1 || list[0].Order != "P4" {
		t.Fatalf("after a new credit: %+v", list)
	}
	rep, err := ledger.Check(f.db)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger check: %v %v", err, rep.Violations)
	}
}

// The refund list attributes what a card has pending to its credits
// newest first, the oldest reached partly: the reversal of a credit
// already claimed took back part of what later credits left pending, and
// the credit partly pending is listed with that part, not left out.
func TestPendingCreditsPartlyPending(t *testing.T) {
	day := today
	f := newFixtureWith(t, func(o *Options) {
		o.PendingCredits = true
		o.Today = func() ledger.BusinessDate { return day }
	})
	f.credit(t, credit("A", panEmpty, 1000), spec.RCApproved)
	b := f.db.NewBatch()
	res, err := f.l.Execute(&ledger.PendingClaim{Common: ledger.Common{Key: "t/claim", Date: day, Terminal: "90000001",
		Merchant: "898310000000001", Batch: 1, STAN: 9}, PAN: panEmpty, MayLoad: true}, b,
		func(ledger.Result) error { return b.Commit(pebble.Sync) })
	b.Close()
	if err != nil || res.CashDelta != 1000 {
		t.Fatalf("claim: %+v %v", res, err)
	}
	day = today.AddDays(1)
	f.credit(t, credit("B", panEmpty, 600), spec.RCApproved)
	f.credit(t, credit("C", panEmpty, 900), spec.RCApproved)
	// The institution reverses A, claimed: the ledger takes it back from
	// what is pending (1500 -> 500).
	f.reverse(t, credit("A", panEmpty, 1000), spec.RCApproved)
	if c, _ := f.l.Card(panEmpty); c.Pending != 500 {
		t.Fatalf("pending %s", c.Pending)
	}
	day = today.AddDays(10)
	list, _, err := f.s.PendingOlderThan(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Order != "C" || list[0].AmountFen != 900 || list[0].PendingFen != 500 {
		t.Fatalf("refund list: %+v", list)
	}
	// Fully pending credits carry their whole amount.
	f.credit(t, credit("D", panEmpty, 200), spec.RCApproved)
	day = today.AddDays(20)
	list, _, _ = f.s.PendingOlderThan(0)
	if len(list) != 2 || list[0].Order != "D" || list[0].PendingFen != 200 || list[1].Order != "C" || list[1].PendingFen != 500 {
		t.Fatalf("refund list after D: %+v", list)
	}
}
