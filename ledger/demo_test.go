package ledger

import (
	"errors"
	"testing"
)

// TestDemoSeed seeds exactly the demo cards and merchants of README.md#demo-data and
// checks every balance, state and limit listed there.
func TestDemoSeed(t *testing.T) {
	l, db := seeded(t, Options{})
	tests := []struct {
		pan           string
		holder        HolderType
		cash, subsidy Fen
		state         CardState
		daily, perTxn Fen
		fee           int32
	}{
		{panStudent, Student, 50000, 20000, Active, 30000, 20000, 0},
		{panStaff, Staff, 100000, 0, Active, 0, 0, 0},
		{panVisitor, Visitor, 10000, 0, Active, 0, 0, 500},
		{panLost, Student, 5000, 0, Lost, 0, 0, 0},
		{panFrozen, Student, 5000, 0, Frozen, 0, 0, 0},
		{panEmpty, Student, 0, 0, Active, 0, 0, 0},
	}
	for _, tt := range tests {
		v := mustCard(t, l, tt.pan)
		if v.HolderType != tt.holder || v.Balances.Cash != tt.cash || v.Balances.Subsidy != tt.subsidy ||
			v.State != tt.state || v.DailyLimit != tt.daily || v.PerTxnLimit != tt.perTxn ||
			v.FeeBP != tt.fee || v.NoPINLimit != 5000 || v.Balances.Available != tt.cash+tt.subsidy {
			t.Errorf("card %s = %+v, want %+v", tt.pan, v, tt)
		}
	}
	for _, m := range []struct {
		id       string
		onCampus bool
	}{{canteen, true}, {market, true}, {cafe, false}} {
		got, ok := l.Merchant(m.id)
		if !ok || got.OnCampus != m.onCampus {
			t.Errorf("merchant %s = %+v, %v", m.id, got, ok)
		}
	}
	pvv, err := l.PINVerificationValue(panStudent)
	if err != nil || string(pvv) != "pvv-0012" {
		t.Errorf("PVV = %q, %v", pvv, err)
	}
	if _, err := l.PINVerificationValue("6230151999999999999"); !errors.Is(err, ErrUnknownCard) {
		t.Errorf("unknown PVV error = %v", err)
	}
	// Seeding twice (the switch seeds on every start) is refused per card.
	if err := l.OpenCard(loadDemo(t).Cards[0], nil); !errors.Is(err, ErrCardExists) {
		t.Errorf("second seed: %v", err)
	}
	r := checkStore(t, db)
	// 500+1000+100+50+50 yuan cash and 200 subsidy opened: cash from opening funds, subsidy
	// from subsidy funding.
	if r.Accounts[OpeningFunds] != -170000 || r.Accounts[SubsidyFunding] != -20000 || r.ClassTotals["card/cash"] != 170000 {
		t.Errorf("report totals %+v", r)
	}
}

// TestReopen checks that state published in memory equals what Open
// reloads from Pebble.
func TestReopen(t *testing.T) {
	l, db := seeded(t, Options{})
	c := pos("10000001", canteen, day1)
	if res := exec(t, l, &Consume{Common: c, PAN: panVisitor, Amount: 1000}); !res.Approved() {
		t.Fatal(res.Decline)
	}
	l2, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pan := range []string{panStudent, panVisitor} {
		if a, b := mustCard(t, l, pan), mustCard(t, l2, pan); a != b {
			t.Errorf("reloaded %s = %+v, want %+v", pan, b, a)
		}
	}
	for _, a := range []AccountID{FeeIncome, MerchantPayable(canteen), OpeningFunds} {
		if l.AccountBalance(a) != l2.AccountBalance(a) {
			t.Errorf("%s: %s after reopen, %s before", a, l2.AccountBalance(a), l.AccountBalance(a))
		}
	}
	if l2.lastTx.Load() != l.lastTx.Load() {
		t.Errorf("last tx %d after reopen, %d before", l2.lastTx.Load(), l.lastTx.Load())
	}
}
