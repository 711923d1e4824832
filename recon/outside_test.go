package recon_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cockroachdb/pebble/v2"
)

// TestOutsideCredits reconciles credits that came in from an outside
// institution over the JSON channel, matched by order number: a reversed
// credit stands on neither side, a credit they have and we do not is
// credited to the card by the configured auto-resolution.
func TestOutsideCredits(t *testing.T) {
	f := newFixture(t, 0)
	pan := "6230159999999999990"
	if err := f.l.OpenCard(ledger.CardSpec{PAN: pan, Holder: "Test", HolderType: ledger.Student}, nil); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	pair := func(tx, order string, amount int64, rc, rrn string) {
		b := f.db.NewBatch()
		defer b.Close()
		in := &journal.Entry{Direction: journal.In, Listener: "recharge_http", TxType: tx, Time: at, BusinessDate: day.String(),
			Raw: fmt.Appendf(nil, `{"institution":"10001","order":%q,"card":%q,"amount_fen":%d}`, order, pan, amount)}
		out := &journal.Entry{Direction: journal.Out, Listener: "recharge_http", TxType: tx, Time: at, BusinessDate: day.String(),
			ResponseCode: rc, RRN: rrn, Raw: fmt.Appendf(nil, `{"rc":%q,"auth_code":"123456","rrn":%q}`, rc, rrn)}
		if _, _, err := f.j.AppendPair(b, in, out); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	pair("recharge_credit", "WEB-1", 5000, "00", "337000000001")
	pair("recharge_credit", "WEB-2", 2000, "00", "337000000002")
	pair("recharge_reversal", "WEB-2", 2000, "00", "337000000003")
	pair("recharge_credit", "WEB-3", 100, "51", "337000000004")

	var c bytes.Buffer
	if _, err := f.book.Source.WriteCSV(&c, day, recon.Filter{Institution: "10001"}, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(c.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[1], ",10001,,,,,"+pan+",5000,0,00,337000000001,,,WEB-1,123456,") {
		t.Fatalf("export:\n%s", c.String())
	}
	layout := &recon.Layout{Format: "csv", Header: true, Success: []string{"S"},
		Fields: map[string]recon.Column{"order_no": {Name: "order"}, "amount": {Name: "amount"}, "status": {Name: "st"}, "card": {Name: "card"}}}
	file := "order,card,amount,st\nWEB-1," + pan + ",5000,S\nWEB-2," + pan + ",2000,R\nWEB-4," + pan + ",300,S\n"
	rep, err := f.book.Import(context.Background(), "10001", day, layout, recon.AutoRules{TheirsOnly: recon.ActionCredit, MaxAmount: 1000, MaxTotal: 5000},
		strings.NewReader(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Matched.Count != 2 || rep.TheirsOnly.Count != 1 || rep.TheirsOnly.Amount != 300 || rep.AutoResolved != 1 ||
		rep.OursOnly.Count+rep.AmountDiffers.Count+rep.StatusDiffers.Count != 0 {
		t.Fatalf("report %+v", rep)
	}
	d, err := f.book.Get(rep.Discrepancies[0])
	if err != nil || d.State != "resolved" || d.Operator != "auto" || d.Key != "order_no:WEB-4" {
		t.Fatalf("auto-resolved %+v %v", d, err)
	}
	if v, _ := f.l.Card(pan); v.Balances.Cash != 300 {
		t.Fatalf("card cash %d, want the 300 credited", v.Balances.Cash)
	}
}

// TestAutoResolveBounds: automatic credits stop at the rule's bounds — a
// record above max_amount_fen, and every record that would carry the
// import past max_total_fen, stays open for an operator.
func TestAutoResolveBounds(t *testing.T) {
	f := newFixture(t, 0)
	pan := "6230159999999999990"
	if err := f.l.OpenCard(ledger.CardSpec{PAN: pan, Holder: "Test", HolderType: ledger.Student}, nil); err != nil {
		t.Fatal(err)
	}
	layout := &recon.Layout{Format: "csv", Header: true, Success: []string{"S"},
		Fields: map[string]recon.Column{"order_no": {Name: "order"}, "amount": {Name: "amount"}, "status": {Name: "st"}, "card": {Name: "card"}}}
	// 300 credited; 2000 above the single bound; 900 would make 1200 of
	// 1000; 700 makes exactly 1000.
	file := "order,card,amount,st\nA-1," + pan + ",300,S\nA-2," + pan + ",2000,S\nA-3," + pan + ",900,S\nA-4," + pan + ",700,S\n"
	rules := recon.AutoRules{TheirsOnly: recon.ActionCredit, MaxAmount: 1000, MaxTotal: 1000}
	if err := rules.Validate(); err != nil {
		t.Fatal(err)
	}
	rep, err := f.book.Import(context.Background(), "10001", day, layout, rules, strings.NewReader(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.TheirsOnly.Count != 4 || rep.AutoResolved != 2 || rep.AutoHeld != 2 {
		t.Fatalf("report %+v", rep)
	}
	if v, _ := f.l.Card(pan); v.Balances.Cash != 1000 {
		t.Fatalf("card cash %d, want 1000 credited automatically", v.Balances.Cash)
	}
	open := map[string]bool{}
	for _, id := range rep.Discrepancies {
		d, err := f.book.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if d.State == "open" {
			open[d.Key] = true
		}
	}
	if len(open) != 2 || !open["order_no:A-2"] || !open["order_no:A-3"] {
		t.Fatalf("left open %v, want A-2 and A-3", open)
	}
}

func TestAutoRulesValidate(t *testing.T) {
	for _, c := range []struct {
		rules recon.AutoRules
		ok    bool
	}{
		{recon.AutoRules{}, true},
		{recon.AutoRules{TheirsOnly: recon.ActionAccept, OursOnly: recon.ActionAccept}, true},
		{recon.AutoRules{TheirsOnly: recon.ActionCredit}, false},
		{recon.AutoRules{OursOnly: recon.ActionRefund, MaxAmount: 100}, false},
		{recon.AutoRules{TheirsOnly: recon.ActionCredit, MaxAmount: 100, MaxTotal: 1000}, true},
		{recon.AutoRules{TheirsOnly: recon.ActionCredit, MaxAmount: 2000, MaxTotal: 1000}, false},
		{recon.AutoRules{TheirsOnly: recon.ActionCredit, MaxAmount: -1, MaxTotal: 1000}, false},
		{recon.AutoRules{TheirsOnly: "pay"}, false},
	} {
		if err := c.rules.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v, want ok=%v", c.rules, err, c.ok)
		}
	}
}
