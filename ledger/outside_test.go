package ledger

import "testing"

func outside(key string) Common {
	return Common{Key: "rc/10001/" + key, Date: day1, RRN: "060000000" + key[len(key)-3:]}
}

func TestOutsideCredit(t *testing.T) {
	l, db := seeded(t, Options{})
	res := must(t, exec(t, l, &OutsideCredit{Common: outside("A001"), PAN: panEmpty, Amount: 12345, Institution: "10001"}))
	if res.Balances.Cash != 12345 || res.CashDelta != 12345 || res.AuthCode == "" {
		t.Fatalf("credit result %+v", res)
	}
	if got := l.AccountBalance(GatewayClearing("10001")); got != -12345 {
		t.Fatalf("clearing %s, want -123.45", got)
	}
	// The same key and content replays; other content is a duplicate.
	again := exec(t, l, &OutsideCredit{Common: outside("A001"), PAN: panEmpty, Amount: 12345, Institution: "10001"})
	if !again.Replay || again.TxID != res.TxID {
		t.Fatalf("replay %+v", again)
	}
	wantDecline(t, exec(t, l, &OutsideCredit{Common: outside("A001"), PAN: panEmpty, Amount: 1, Institution: "10001"}), DeclineDuplicate)

	// Card checks: unknown 14, lost, frozen and closed 62 (the gateway's
	// restricted card), over the maximum balance 61, amount 13.
	wantDecline(t, exec(t, l, &OutsideCredit{Common: outside("A002"), PAN: "6230151000000009999", Amount: 100, Institution: "10001"}), DeclineInvalidCard)
	wantDecline(t, exec(t, l, &OutsideCredit{Common: outside("A003"), PAN: panLost, Amount: 100, Institution: "10001"}), DeclineRestrictedCard)
	wantDecline(t, exec(t, l, &OutsideCredit{Common: outside("A004"), PAN: panFrozen, Amount: 100, Institution: "10001"}), DeclineRestrictedCard)
	if err := l.CloseCard(panLost); err != nil {
		t.Fatal(err)
	}
	wantDecline(t, exec(t, l, &OutsideCredit{Common: outside("A008"), PAN: panLost, Amount: 100, Institution: "10001"}), DeclineRestrictedCard)
	max := mustCard(t, l, panEmpty).MaxBalance
	wantDecline(t, exec(t, l, &OutsideCredit{Common: outside("A005"), PAN: panEmpty, Amount: max - 12345 + 1, Institution: "10001"}), DeclineExceedsAmountLimit)
	must(t, exec(t, l, &OutsideCredit{Common: outside("A006"), PAN: panEmpty, Amount: max - 12345, Institution: "10001"}))
	wantDecline(t, exec(t, l, &OutsideCredit{Common: outside("A007"), PAN: panStaff, Amount: 0, Institution: "10001"}), DeclineInvalidAmount)

	// Reversal: wrong amount 64, then exact, then a repeat is a no-op.
	wantDecline(t, exec(t, l, &OutsideCreditReversal{Common: outside("A001"), PAN: panEmpty, Amount: 1, Original: res.TxID}), DeclineAmountDiffers)
	rev := must(t, exec(t, l, &OutsideCreditReversal{Common: outside("B001"), PAN: panEmpty, Amount: 12345, Original: res.TxID}))
	if rev.CashDelta != -12345 || rev.NoOp {
		t.Fatalf("reversal %+v", rev)
	}
	if again := must(t, exec(t, l, &OutsideCreditReversal{Common: outside("B002"), PAN: panEmpty, Amount: 12345, Original: res.TxID})); !again.NoOp {
		t.Fatalf("second reversal %+v", again)
	}
	wantDecline(t, exec(t, l, &OutsideCreditReversal{Common: outside("B003"), PAN: panEmpty, Amount: 12345, Original: 999999}), DeclineOriginalNotFound)
	if got := mustCard(t, l, panEmpty).Balances.Cash; got != max-12345 {
		t.Fatalf("cash after reversal %s", got)
	}
	checkStore(t, db)
}

// A reversal of a credit already spent is approved: the purse goes to
// zero and the card owes the rest.
func TestOutsideCreditReversalOfSpentCredit(t *testing.T) {
	l, db := seeded(t, Options{})
	res := must(t, exec(t, l, &OutsideCredit{Common: outside("S001"), PAN: panEmpty, Amount: 3000, Institution: "10001"}))
	must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 2000}))
	rev := must(t, exec(t, l, &OutsideCreditReversal{Common: outside("T001"), PAN: panEmpty, Amount: 3000, Original: res.TxID}))
	if rev.NoOp {
		t.Fatalf("reversal %+v", rev)
	}
	c := mustCard(t, l, panEmpty)
	if c.Balances.Cash != 0 || c.Owed != 2000 {
		t.Fatalf("after reversing a spent credit: cash %s owed %s, want 0 and 20.00", c.Balances.Cash, c.Owed)
	}
	if got := l.AccountBalance(GatewayClearing("10001")); got != 0 {
		t.Fatalf("clearing %s, want 0", got)
	}
	checkStore(t, db)
}

// Pending loads: an outside credit held as pending, claimed at a load
// terminal, the claim reversed, and a pending credit reversed after it
// was claimed and partly spent.
func TestPendingLoads(t *testing.T) {
	l, db := seeded(t, Options{})
	res := must(t, exec(t, l, &OutsideCredit{Common: outside("P001"), PAN: panEmpty, Amount: 3000, Institution: "10001", Pending: true}))
	if res.CashDelta != 0 || res.Balances.Cash != 0 {
		t.Fatalf("pending credit touched the purse: %+v", res)
	}
	if c := mustCard(t, l, panEmpty); c.Pending != 3000 {
		t.Fatalf("pending %s, want 30.00", c.Pending)
	}
	claim := func(stan uint32) Result {
		c := pos("90000001", canteen, day1)
		return exec(t, l, &PendingClaim{Common: c, PAN: panEmpty, MayLoad: true})
	}
	wantDecline(t, exec(t, l, &PendingClaim{Common: pos("10000001", canteen, day1), PAN: panEmpty}), DeclineNotPermittedTerminal)
	cl := must(t, claim(0))
	if cl.CashDelta != 3000 || cl.Balances.Cash != 3000 {
		t.Fatalf("claim %+v", cl)
	}
	if c := mustCard(t, l, panEmpty); c.Pending != 0 {
		t.Fatalf("pending %s after the claim", c.Pending)
	}
	// Nothing pending: approved, nothing moved.
	if again := must(t, claim(0)); again.CashDelta != 0 || again.TxID != 0 {
		t.Fatalf("empty claim %+v", again)
	}
	// A second pending credit, claimed, 20.00 spent, then the credit
	// reversed: 10.00 from the purse ... the rest owed.
	res2 := must(t, exec(t, l, &OutsideCredit{Common: outside("P002"), PAN: panEmpty, Amount: 2000, Institution: "10001", Pending: true}))
	must(t, claim(0))
	must(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panEmpty, Amount: 4000}))
	must(t, exec(t, l, &OutsideCreditReversal{Common: outside("Q002"), PAN: panEmpty, Amount: 2000, Original: res2.TxID}))
	c := mustCard(t, l, panEmpty)
	if c.Balances.Cash != 0 || c.Owed != 1000 || c.Pending != 0 {
		t.Fatalf("after reversing a claimed, spent credit: cash %s owed %s pending %s", c.Balances.Cash, c.Owed, c.Pending)
	}
	// The first credit reversed while still pending comes back from
	// pending only.
	res3 := must(t, exec(t, l, &OutsideCredit{Common: outside("P003"), PAN: panStaff, Amount: 500, Institution: "10001", Pending: true}))
	must(t, exec(t, l, &OutsideCreditReversal{Common: outside("Q003"), PAN: panStaff, Amount: 500, Original: res3.TxID}))
	if c := mustCard(t, l, panStaff); c.Pending != 0 || c.Balances.Cash != 100000 {
		t.Fatalf("staff card after a pending reversal: %+v", c)
	}
	// A claim reversed puts the money back to pending.
	must(t, exec(t, l, &OutsideCredit{Common: outside("P004"), PAN: panStaff, Amount: 700, Institution: "10001", Pending: true}))
	cc := pos("90000001", canteen, day1)
	must(t, exec(t, l, &PendingClaim{Common: cc, PAN: panStaff, MayLoad: true}))
	must(t, exec(t, l, &Reversal{Common: cc, PAN: panStaff, Original: ref(cc), OriginalKind: KindPendingClaim}))
	if c := mustCard(t, l, panStaff); c.Pending != 700 || c.Balances.Cash != 100000 {
		t.Fatalf("after a claim reversal: pending %s cash %s", c.Pending, c.Balances.Cash)
	}
	checkStore(t, db)
}
