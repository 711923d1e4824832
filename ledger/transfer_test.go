package ledger

import "testing"

func transfer(c Common, pan string, amount Fen, pin PINOutcome, probe bool) *TransferLoad {
	return &TransferLoad{Common: c, PAN: pan, Amount: amount, Institution: "01020000", MayLoad: true, PIN: pin, Probe: probe}
}

func TestTransferLoad(t *testing.T) {
	l, db := seeded(t, Options{})
	c := pos("90000001", canteen, day1)
	probe := c
	probe.Key += "/probe"
	before := mustCard(t, l, panStaff).Balances.Cash

	// The probe checks and posts nothing.
	must(t, exec(t, l, transfer(probe, panStaff, 5000, PINVerified, true)))
	if got := mustCard(t, l, panStaff).Balances.Cash; got != before {
		t.Fatalf("probe moved money: %s -> %s", before, got)
	}
	res := must(t, exec(t, l, transfer(c, panStaff, 5000, PINVerified, false)))
	if res.CashDelta != 5000 || res.Balances.Cash != before+5000 {
		t.Fatalf("credit %+v", res)
	}
	if got := l.AccountBalance(GatewayClearing("01020000")); got != -5000 {
		t.Fatalf("bank clearing %s, want -50.00", got)
	}
	// Counted as a credit of the terminal's batch.
	tot, err := l.BatchTotals("90000001", 1)
	if err != nil || tot.CreditCount != 1 || tot.CreditAmount != 5000 {
		t.Fatalf("batch totals %+v %v", tot, err)
	}
	// The terminal's reversal undoes it exactly.
	rev := must(t, exec(t, l, &Reversal{Common: pos("90000001", canteen, day1), PAN: panStaff, Amount: 5000,
		Original: ref(c), OriginalKind: KindTransferLoad}))
	if rev.NoOp || mustCard(t, l, panStaff).Balances.Cash != before {
		t.Fatalf("reversal %+v", rev)
	}
	checkStore(t, db)
}

// A frozen card takes a transfer load as it takes a cash load: a freeze
// stops debits, not loads; a lost card takes neither.
func TestTransferLoadFrozenCardLikeCashLoad(t *testing.T) {
	l, db := seeded(t, Options{})
	before := mustCard(t, l, panFrozen).Balances.Cash
	c := pos("90000001", canteen, day1)
	probe := c
	probe.Key += "/probe"
	must(t, exec(t, l, transfer(probe, panFrozen, 700, PINVerified, true)))
	res := must(t, exec(t, l, transfer(c, panFrozen, 700, PINVerified, false)))
	cash := must(t, exec(t, l, &CashLoad{Common: pos("90000001", canteen, day1), PAN: panFrozen, Amount: 300, MayLoad: true}))
	if res.Balances.Cash != before+700 || cash.Balances.Cash != before+1000 {
		t.Fatalf("frozen card loaded: transfer %+v, cash %+v", res.Balances, cash.Balances)
	}
	if v := mustCard(t, l, panFrozen); v.State != Frozen {
		t.Fatalf("card state %s", v.State)
	}
	// Still no debit.
	wantDecline(t, exec(t, l, &Consume{Common: pos("10000001", canteen, day1), PAN: panFrozen, Amount: 100, PIN: PINVerified}), DeclineFrozenCard)
	for _, r := range []Request{
		transfer(pos("90000001", canteen, day1), panLost, 100, PINVerified, true),
		&CashLoad{Common: pos("90000001", canteen, day1), PAN: panLost, Amount: 100, MayLoad: true},
	} {
		wantDecline(t, exec(t, l, r), DeclineLostCard)
	}
	checkStore(t, db)
}

func TestTransferLoadDeclines(t *testing.T) {
	l, db := seeded(t, Options{MaxPINTries: 3})
	d := func(pan string, amount Fen, pin PINOutcome, mayLoad bool) Decline {
		r := transfer(pos("90000001", canteen, day1), pan, amount, pin, true)
		r.MayLoad = mayLoad
		return exec(t, l, r).Decline
	}
	max := mustCard(t, l, panEmpty).MaxBalance
	for _, tc := range []struct {
		name    string
		pan     string
		amount  Fen
		pin     PINOutcome
		mayLoad bool
		want    Decline
	}{
		{"unknown card", "6230151000000009999", 100, PINVerified, true, DeclineInvalidCard},
		{"lost", panLost, 100, PINVerified, true, DeclineLostCard},
		{"no amount", panStaff, 0, PINVerified, true, DeclineInvalidAmount},
		{"not a kiosk", panStaff, 100, PINVerified, false, DeclineNotPermittedTerminal},
		{"over the maximum balance", panEmpty, max + 1, PINVerified, true, DeclineExceedsAmountLimit},
		{"wrong PIN", panStaff, 100, PINWrong, true, DeclineIncorrectPIN},
		{"wrong PIN again", panStaff, 100, PINWrong, true, DeclineIncorrectPIN},
		{"third wrong PIN locks", panStaff, 100, PINWrong, true, DeclinePINTriesExceeded},
		{"locked even with the right PIN", panStaff, 100, PINVerified, true, DeclinePINTriesExceeded},
	} {
		if got := d(tc.pan, tc.amount, tc.pin, tc.mayLoad); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	checkStore(t, db)
}
