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
	rep, err := f.book.Import(context.Background(), "10001", day, layout, recon.AutoRules{TheirsOnly: recon.ActionCredit},
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
