package ledger

import (
	"errors"
	"strings"
	"testing"
)

// TestReversalOfSpentCredit: a reversal that takes back a load already
// spent is approved; the purse goes to zero, the shortfall is the card's
// debt (on CardReceivable), debits are declined 51 while it owes, and the
// next credits repay the debt before the purse. Amounts hand-checked.
func TestReversalOfSpentCredit(t *testing.T) {
	l, db := seeded(t, Options{})
	load := pos("90000001", canteen, day1)
	must(t, exec(t, l, &CashLoad{Common: load, PAN: panEmpty, Amount: 10000, MayLoad: true}))
	must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 7000, PIN: PINVerified}))

	rev := exec(t, l, &Reversal{Common: load, PAN: panEmpty, Original: ref(load), OriginalKind: KindCashLoad})
	if !rev.Approved() || rev.NoOp || rev.CashDelta != -3000 || rev.Balances.Cash != 0 {
		t.Fatalf("reversal of a spent load: %+v", rev)
	}
	v := mustCard(t, l, panEmpty)
	if v.Owed != 7000 || v.Balances.Cash != 0 {
		t.Fatalf("after the reversal: cash %s owes %s, want 0.00 and 70.00", v.Balances.Cash, v.Owed)
	}
	if got := l.AccountBalance(CardReceivable); got != -7000 {
		t.Errorf("card receivable %s, want -70.00", got)
	}
	if got := l.AccountBalance(CashLoadClearing); got != 0 {
		t.Errorf("cash-load clearing %s, want 0.00 (the load is undone in full)", got)
	}
	list, total, more := l.Receivables("", 0)
	if len(list) != 1 || list[0].PAN != panEmpty || list[0].Owed != 7000 || total != 7000 || more {
		t.Errorf("receivables report %+v total %s more %v", list, total, more)
	}
	r := checkStore(t, db)
	if r.OwingCards != 1 || r.Accounts[CardReceivable] != -7000 {
		t.Errorf("check: %d owing cards, receivable %s", r.OwingCards, r.Accounts[CardReceivable])
	}

	// Owing: debits are declined 51, even with money the credits brought.
	wantDecline(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 1}), DeclineInsufficientFunds)
	wantDecline(t, exec(t, l, &PreAuth{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 1}), DeclineInsufficientFunds)

	// A credit repays the debt first: 50.00 of 70.00, nothing reaches the purse.
	l1 := pos("90000001", canteen, day1)
	r1 := must(t, exec(t, l, &CashLoad{Common: l1, PAN: panEmpty, Amount: 5000, MayLoad: true}))
	if r1.CashDelta != 0 || mustCard(t, l, panEmpty).Owed != 2000 {
		t.Fatalf("first repayment: %+v, owes %s", r1, mustCard(t, l, panEmpty).Owed)
	}
	wantDecline(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 1}), DeclineInsufficientFunds)
	// 30.00: 20.00 repays the rest, 10.00 reaches the purse.
	r2 := must(t, exec(t, l, &CashLoad{Common: pos("90000001", canteen, day1), PAN: panEmpty, Amount: 3000, MayLoad: true}))
	if r2.CashDelta != 1000 || r2.Balances.Cash != 1000 || mustCard(t, l, panEmpty).Owed != 0 {
		t.Fatalf("second repayment: %+v", r2)
	}
	if list, total, _ := l.Receivables("", 0); len(list) != 0 || total != 0 {
		t.Errorf("repaid card still listed: %+v", list)
	}
	must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 1000}))

	// Reversing the load that repaid 50.00 of debt brings the debt back
	// (the purse is empty: nothing else to take).
	rr := must(t, exec(t, l, &Reversal{Common: l1, PAN: panEmpty, Original: ref(l1), OriginalKind: KindCashLoad}))
	if rr.CashDelta != 0 || mustCard(t, l, panEmpty).Owed != 5000 {
		t.Fatalf("reversal of a repayment: %+v owes %s", rr, mustCard(t, l, panEmpty).Owed)
	}
	if got := l.AccountBalance(CardReceivable); got != -5000 {
		t.Errorf("card receivable %s, want -50.00", got)
	}
	checkStore(t, db)

	// The state survives a restart (the debt is the card's contribution).
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := l2.Card(panEmpty); v.Owed != 5000 {
		t.Errorf("after reopen owes %s", v.Owed)
	}
	if got := l2.AccountBalance(CardReceivable); got != -5000 {
		t.Errorf("after reopen receivable %s", got)
	}

	// A replacement card inherits the debt; the old card owes nothing.
	const newPAN = "6230151000000000079"
	if err := l2.ReplaceCard(panEmpty, newPAN, nil); err != nil {
		t.Fatal(err)
	}
	if o, n := mustCard(t, l2, panEmpty), mustCard(t, l2, newPAN); o.Owed != 0 || n.Owed != 5000 {
		t.Errorf("replacement: old owes %s, new owes %s", o.Owed, n.Owed)
	}
	if list, total, _ := l2.Receivables("", 0); len(list) != 1 || list[0].PAN != newPAN || total != 5000 {
		t.Errorf("receivables after replacement %+v", list)
	}
	checkStore(t, db)
}

// TestReversalOfSpentSubsidyAndVoid: reversing a void whose money was
// spent again; each purse keeps no more than it has, the shortfall of both
// is owed.
func TestReversalOfSpentVoid(t *testing.T) {
	l, db := seeded(t, Options{})
	// Student: subsidy 200.00, cash 500.00. A 150.00 canteen consume takes
	// it from subsidy; the void puts it back; a 190.00 consume takes it
	// again (subsidy 10.00 left); reversing the void takes 150.00 from
	// subsidy: 10.00 there, 140.00 owed.
	c := pos("10000001", canteen, day1)
	must(t, exec(t, l, &Consume{Common: c, PAN: panStudent, Amount: 15000, PIN: PINVerified}))
	vd := pos("10000001", canteen, day1)
	must(t, exec(t, l, &Void{Common: vd, PAN: panStudent, Amount: 15000, Original: ref(c)}))
	must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panStudent, Amount: 19000, PIN: PINVerified}))
	rev := must(t, exec(t, l, &Reversal{Common: vd, PAN: panStudent, Original: ref(vd), OriginalKind: KindVoid}))
	v := mustCard(t, l, panStudent)
	if rev.SubsidyDelta != -1000 || v.Balances.Subsidy != 0 || v.Balances.Cash != 50000 || v.Owed != 14000 {
		t.Fatalf("reversal %+v; card %+v owes %s", rev, v.Balances, v.Owed)
	}
	checkStore(t, db)
}

// TestReversalKeepsHolds: a purse keeps what open holds reserve; the
// reversal's shortfall beyond the free money is owed.
func TestReversalKeepsHolds(t *testing.T) {
	l, db := seeded(t, Options{})
	load := pos("90000001", canteen, day1)
	must(t, exec(t, l, &CashLoad{Common: load, PAN: panEmpty, Amount: 10000, MayLoad: true}))
	must(t, exec(t, l, &PreAuth{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 4000}))
	must(t, exec(t, l, &Reversal{Common: load, PAN: panEmpty, Original: ref(load), OriginalKind: KindCashLoad}))
	v := mustCard(t, l, panEmpty)
	// 100.00 loaded, 40.00 held: 60.00 is free, so 40.00 of the 100.00 is owed.
	if v.Balances.Cash != 4000 || v.Balances.Held != 4000 || v.Owed != 4000 {
		t.Fatalf("card %+v owes %s; want cash 40.00 held 40.00 owes 40.00", v.Balances, v.Owed)
	}
	checkStore(t, db)
}

// TestCountMaxima: cards and merchants are bounded by the configured
// maxima with a clear error; the demo seed has 6 cards and 3 merchants.
func TestCountMaxima(t *testing.T) {
	l, _ := seeded(t, Options{MaxCards: 6, MaxMerchants: 3})
	err := l.OpenCard(CardSpec{PAN: "6230151000000000079", Holder: "one more", HolderType: Student}, nil)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "ledger.max_cards") {
		t.Errorf("seventh card: %v", err)
	}
	if err := l.ReplaceCard(panStaff, "6230151000000000079", nil); !errors.Is(err, ErrLimit) {
		t.Errorf("replacement over the maximum: %v", err)
	}
	err = l.AddMerchant(MerchantSpec{ID: "898310000000009", Name: "one more"})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "ledger.max_merchants") {
		t.Errorf("fourth merchant: %v", err)
	}
	if _, ok := l.Card("6230151000000000079"); ok {
		t.Error("card opened over the maximum")
	}
	if err := (Options{MaxCards: -1}).Validate(); err == nil {
		t.Error("negative max_cards accepted")
	}
	if l2, _ := seeded(t, Options{MaxCards: 7}); l2.OpenCard(CardSpec{PAN: "6230151000000000079", Holder: "fits", HolderType: Student}, nil) != nil {
		t.Error("card under the maximum refused")
	}
}

// TestReversedCompletionHoldNotCovered: reversing a completion puts its
// hold back, unless the money the completion released has been spent
// since: then the reversal is approved without the hold.
func TestReversedCompletionHoldNotCovered(t *testing.T) {
	l, db := seeded(t, Options{})
	pa := pos("10000001", canteen, day1)
	auth := must(t, exec(t, l, &PreAuth{Common: pa, PAN: panStaff, Amount: 10000, PIN: PINVerified}))
	comp := pos("10000001", canteen, day1)
	must(t, exec(t, l, &PreAuthCompletion{Common: comp, PAN: panStaff, Amount: 6000, AuthCode: auth.AuthCode, Original: ref(pa), PIN: PINVerified}))
	// Staff: 1000.00 - 60.00 = 940.00, all of it spent.
	must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panStaff, Amount: 94000, PIN: PINVerified}))
	rev := exec(t, l, &Reversal{Common: comp, PAN: panStaff, Original: ref(comp), OriginalKind: KindPreAuthCompletion})
	if !rev.Approved() || rev.CashDelta != 6000 {
		t.Fatalf("reversal %+v", rev)
	}
	v := mustCard(t, l, panStaff)
	if v.Balances.Cash != 6000 || v.Balances.Held != 0 || v.Holds != 0 || v.Owed != 0 {
		t.Fatalf("card %+v holds %d owes %s; want cash 60.00, no hold, no debt", v.Balances, v.Holds, v.Owed)
	}
	checkStore(t, db)
}

// TestReplaceOwingCardWithMoney: a card that owes and still holds money is
// replaced; the money and the debt both follow the holder. The debt used
// to be moved onto a copy of the new card that apply had already replaced
// with its own, so the new card owed nothing: 40.00 of receivable gone.
func TestReplaceOwingCardWithMoney(t *testing.T) {
	l, db := seeded(t, Options{})
	load := pos("90000001", canteen, day1)
	must(t, exec(t, l, &CashLoad{Common: load, PAN: panEmpty, Amount: 10000, MayLoad: true}))
	pa := must(t, exec(t, l, &PreAuth{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 4000}))
	must(t, exec(t, l, &Reversal{Common: load, PAN: panEmpty, Original: ref(load), OriginalKind: KindCashLoad}))
	must(t, exec(t, l, &PreAuthCancel{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 4000, AuthCode: pa.AuthCode}))
	v := mustCard(t, l, panEmpty)
	if v.Balances.Cash != 4000 || v.Balances.Held != 0 || v.Owed != 4000 {
		t.Fatalf("setup: card %+v owes %s; want cash 40.00, nothing held, owes 40.00", v.Balances, v.Owed)
	}
	const newPAN = "6230151000000000079"
	if err := l.ReplaceCard(panEmpty, newPAN, nil); err != nil {
		t.Fatal(err)
	}
	n := mustCard(t, l, newPAN)
	if n.Balances.Cash != 4000 || n.Owed != 4000 {
		t.Errorf("new card %+v owes %s; want cash 40.00 and owes 40.00", n.Balances, n.Owed)
	}
	if o := mustCard(t, l, panEmpty); o.Owed != 0 || o.Balances.Cash != 0 {
		t.Errorf("old card %+v owes %s; want nothing either way", o.Balances, o.Owed)
	}
	if got := l.AccountBalance(CardReceivable); got != -4000 {
		t.Errorf("card receivable %s, want -40.00", got)
	}
	checkStore(t, db)
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := l2.Card(newPAN); v.Owed != 4000 {
		t.Errorf("after reopen the new card owes %s, want 40.00", v.Owed)
	}
}
