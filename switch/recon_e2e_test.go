package switching

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/admin"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/internal/rechargesim"
	"github.com/cardswitch/cardswitch/internal/recongen"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cardswitch/cardswitch/spec"
	"gopkg.in/yaml.v3"
)

// TestReconLoop runs the finance office's morning against the real daemon:
// transactions, day close, export, import of a counterparty file with one
// ours-only, one theirs-only and one amount-differs, each resolved, the
// credit reaching the card.
func TestReconLoop(t *testing.T) {
	b, err := os.ReadFile("../testdata/recon/layouts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var layouts map[string]recon.Layout
	if err := yaml.Unmarshal(b, &layouts); err != nil {
		t.Fatal(err)
	}
	sw := testSwitch(t, func(c *Config) {
		c.BusinessDay.ReconDir = t.TempDir()
		c.Recon.Gateways = map[string]ReconGateway{"local": {Layout: layouts["gwsim"]}}
	})
	term := signedOn(t, sw, termCanteen, canteen)
	today := sw.clock.Today()
	var txns []recongen.Txn
	for _, amt := range []spec.Amount{1000, 2000, 3000, 4000} {
		req, err := term.Consume(cardStudent, amt, pinStudent)
		resp := do(t, term, req, err)
		expectRC(t, "consume", resp, spec.RCApproved)
		txns = append(txns, recongen.Txn{RRN: resp.RRN, Card: cardStudent, Amount: ledger.Fen(amt), Approved: true})
	}
	if code, out := adminCall(t, sw, "POST", "/api/v1/day/close", admin.DayCloseRequest{Operator: "alice"}); code != http.StatusOK {
		t.Fatalf("close: %d %s", code, out)
	}
	waitExported(t, sw, today.String())

	var file bytes.Buffer
	w := recongen.NewFileWriter(&file, today)
	w.Skip[txns[1].RRN] = true       // ours-only
	w.Alter[txns[2].RRN] = 3000 + 55 // amount-differs
	for _, x := range txns {
		w.Add(x)
	}
	w.Extra("999000000001", cardStudent, 888) // theirs-only
	w.Close()
	code, out := adminCall(t, sw, "POST", "/api/v1/recon/import?gateway=local&date="+today.String(), nil)
	if code != http.StatusBadRequest {
		t.Fatalf("import without a file body: %d %s", code, out)
	}
	_, _, httpAddr := sw.Addrs()
	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/recon/import?gateway=local&date="+today.String(), bytes.NewReader(file.Bytes()))
	req.Header.Set("Authorization", "Bearer test-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep recon.Report
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || rep.Matched.Count != 2 || rep.OursOnly.Count != 1 || rep.TheirsOnly.Count != 1 ||
		rep.AmountDiffers.Count != 1 || rep.TheirsOnly.Amount != 888 {
		t.Fatalf("import: %d %+v", resp.StatusCode, rep)
	}
	code, out = adminCall(t, sw, "GET", "/api/v1/recon/discrepancies?state=open&limit=2", nil)
	var page admin.DiscrepancyPage
	json.Unmarshal(out, &page)
	if code != http.StatusOK || len(page.Discrepancies) != 2 || page.Next == 0 || page.Discrepancies[0].Card == cardStudent {
		t.Fatalf("discrepancies page: %d %s", code, out)
	}
	cash, sub := purses(t, sw, cardStudent)
	actions := map[string]string{recon.TheirsOnly: recon.ActionCredit, recon.AmountDiffers: recon.ActionRefund, recon.OursOnly: recon.ActionAccept}
	for _, id := range rep.Discrepancies {
		code, out := adminCall(t, sw, "GET", "/api/v1/recon/discrepancies/"+strconv.FormatUint(id, 10), nil)
		var d recon.Discrepancy
		json.Unmarshal(out, &d)
		if code != http.StatusOK {
			t.Fatalf("get %d: %d %s", id, code, out)
		}
		code, out = adminCall(t, sw, "POST", "/api/v1/recon/discrepancies/"+strconv.FormatUint(id, 10)+"/resolve", admin.ResolveRequest{Action: actions[d.Class], Operator: "bob"})
		if code != http.StatusOK {
			t.Fatalf("resolve %s: %d %s", d.Class, code, out)
		}
	}
	expectPurses(t, sw, cardStudent, cash+888, sub)
	for metric, labels := range map[string]map[string]string{
		"switch_recon_resolutions_total":   {"action": "credit"},
		"switch_recon_discrepancies_total": {"class": recon.TheirsOnly},
		"switch_recon_imports_total":       {"result": "ok"},
	} {
		if v := metricValue(t, sw, metric, labels); v != 1 {
			t.Fatalf("%s%v = %v, want 1", metric, labels, v)
		}
	}
	code, out = adminCall(t, sw, "GET", "/api/v1/recon/discrepancies?state=open", nil)
	json.Unmarshal(out, &page)
	if code != http.StatusOK || len(page.Discrepancies) != 0 {
		t.Fatalf("open after resolving: %s", out)
	}
	code, out = adminCall(t, sw, "GET", "/api/v1/recon/report?gateway=local&format=csv&date="+today.String(), nil)
	if code != http.StatusOK || !bytes.Contains(out, []byte("theirs-only,1,888\n")) {
		t.Fatalf("report csv: %d %s", code, out)
	}

	// The week's settlement: the canteen's rates change from today.
	code, out = adminCall(t, sw, "POST", "/api/v1/settlement/rates", admin.SetRatesRequest{Merchant: canteen, From: today.String(), FeeBP: 100, ManagementBP: 200, Operator: "carol"})
	if code != http.StatusOK {
		t.Fatalf("set rates: %d %s", code, out)
	}
	week := "from=" + today.AddDays(-6).String() + "&to=" + today.AddDays(1).String()
	code, out = adminCall(t, sw, "GET", "/api/v1/settlement?"+week, nil)
	var st recon.Settlement
	json.Unmarshal(out, &st)
	if code != http.StatusOK || !st.Balanced || len(st.Merchants) != 1 || st.Next != "" {
		t.Fatalf("settlement: %d %s", code, out)
	}
	code, out = adminCall(t, sw, "GET", "/api/v1/settlement?limit=1&after="+canteen+"&"+week, nil)
	var rest recon.Settlement
	json.Unmarshal(out, &rest)
	if code != http.StatusOK || len(rest.Merchants) != 0 || rest.Total.ConsumeCount != 4 {
		t.Fatalf("settlement page after the canteen: %d %s", code, out)
	}
	if m := st.Merchants[0]; m.Merchant != canteen || m.ConsumeCount != 4 || m.ConsumeAmount != 10000 ||
		m.Fee != 100 || m.ManagementFee != 200 || m.Net != 9700 || m.LedgerMovement != 10000 {
		t.Fatalf("canteen settlement %+v", m)
	}
	code, out = adminCall(t, sw, "GET", "/api/v1/settlement?format=csv&"+week, nil)
	if code != http.StatusOK || !bytes.HasPrefix(out, []byte(recon.SettlementCSVHeader+"\n"+canteen+",4,10000,0,0,100,200,9700,10000,0,true\n")) {
		t.Fatalf("settlement csv: %d %s", code, out)
	}
	code, out = adminCall(t, sw, "GET", "/api/v1/settlement/refunds?"+week, nil)
	var refunds admin.RefundPage
	json.Unmarshal(out, &refunds)
	if code != http.StatusOK || len(refunds.Refunds) != 1 || refunds.Refunds[0].Kind != "payer-refund" || refunds.Refunds[0].Amount != 55 {
		t.Fatalf("refunds: %d %s", code, out)
	}
	code, out = adminCall(t, sw, "GET", "/api/v1/recon/statistics?date="+today.String(), nil)
	var stats recon.Statistics
	json.Unmarshal(out, &stats)
	if code != http.StatusOK || stats.Approved.Count != 4 || stats.Approved.Amount != 10000 || len(stats.ByTerminal) != 1 {
		t.Fatalf("statistics: %d %s", code, out)
	}
}

// TestReconAgainstGwsim reconciles bank-card consumes forwarded on the
// gateway link with gwsim's own daily file, three discrepancies planted
// in it, matched on the link STAN and transmission time.
func TestReconAgainstGwsim(t *testing.T) {
	b, err := os.ReadFile("../testdata/recon/layouts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var layouts map[string]recon.Layout
	if err := yaml.Unmarshal(b, &layouts); err != nil {
		t.Fatal(err)
	}
	sw, sim := linkedSwitch(t)
	sw.cfg.Recon.Gateways = map[string]ReconGateway{demoBank: {Layout: layouts["gwsim"]}}
	term := signedOn(t, sw, termCanteen, canteen)
	today := sw.clock.Today()
	var rrns []string
	for _, amt := range []spec.Amount{100, 200, 300, 400} {
		req, err := term.Consume(bankCard, amt, bankPIN)
		resp := do(t, term, req, err)
		expectRC(t, "bank consume", resp, spec.RCApproved)
		rrns = append(rrns, resp.RRN)
	}
	// A reversed one stands on neither side: gwsim lists it with status R.
	rev, err := term.Consume(bankCard, 500, bankPIN)
	expectRC(t, "bank consume", do(t, term, rev, err), spec.RCApproved)
	expectRC(t, "reversal", do(t, term, term.Reversal(rev, spec.ReversalTimeout), nil), spec.RCApproved)
	waitUntil(t, "bank reversal", func() bool { return simBalance(t, sim) == bankStart-1000 })
	// A campus card's consume is the local ledger's, not the bank's.
	req, err := term.Consume(cardStudent, 100, pinStudent)
	expectRC(t, "campus consume", do(t, term, req, err), spec.RCApproved)

	if code, out := adminCall(t, sw, "POST", "/api/v1/day/close", admin.DayCloseRequest{Operator: "alice"}); code != http.StatusOK {
		t.Fatalf("close: %d %s", code, out)
	}
	waitExported(t, sw, today.String())
	var file bytes.Buffer
	if _, err := sim.WriteReconTo(&file, today.String(), gwsim.Plant{
		Skip:  []string{rrns[1]},
		Alter: map[string]spec.Amount{rrns[2]: 333},
		Extra: []gwsim.Extra{{Card: bankCard, Amount: 4242}},
	}); err != nil {
		t.Fatal(err)
	}
	rep, ok := importFile(t, sw, demoBank, today, file.Bytes())
	if !ok || rep.Matched.Count != 3 || rep.OursOnly.Count != 1 || rep.OursOnly.Amount != 200 ||
		rep.TheirsOnly.Count != 1 || rep.TheirsOnly.Amount != 4242 || rep.AmountDiffers.Count != 1 || rep.StatusDiffers.Count != 0 {
		t.Fatalf("import: %+v\n%s", rep, file.String())
	}
}

// importFile posts a counterparty file to the admin API.
func importFile(t *testing.T, sw *Switch, gw string, d ledger.BusinessDate, data []byte) (recon.Report, bool) {
	t.Helper()
	_, _, httpAddr := sw.Addrs()
	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/recon/import?gateway="+gw+"&date="+d.String(), bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer test-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep recon.Report
	json.NewDecoder(resp.Body).Decode(&rep)
	return rep, resp.StatusCode == http.StatusOK
}

// TestReconImportLargerThanAdminBody: a counterparty's file is bounded
// by the import's own limit, not by the admin API's 64 KiB bound on
// request bodies (a real day's file is megabytes).
func TestReconImportLargerThanAdminBody(t *testing.T) {
	b, err := os.ReadFile("../testdata/recon/layouts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var layouts map[string]recon.Layout
	if err := yaml.Unmarshal(b, &layouts); err != nil {
		t.Fatal(err)
	}
	sw := testSwitch(t, func(c *Config) {
		c.BusinessDay.ReconDir = t.TempDir()
		c.Recon.Gateways = map[string]ReconGateway{"local": {Layout: layouts["gwsim"]}}
	})
	today := sw.clock.Today()
	if code, out := adminCall(t, sw, "POST", "/api/v1/day/close", admin.DayCloseRequest{Operator: "alice"}); code != http.StatusOK {
		t.Fatalf("close: %d %s", code, out)
	}
	waitExported(t, sw, today.String())
	var file bytes.Buffer
	w := recongen.NewFileWriter(&file, today)
	const extras = 2000
	for i := range extras {
		w.Extra(fmt.Sprintf("998%09d", i), cardStudent, ledger.Fen(100+i))
	}
	w.Close()
	if file.Len() <= admin.MaxBody {
		t.Fatalf("file of %d bytes is within the admin bound; the test needs a larger one", file.Len())
	}
	rep, ok := importFile(t, sw, "local", today, file.Bytes())
	if !ok || rep.TheirsOnly.Count != extras {
		t.Fatalf("import of %d bytes: ok %v, theirs-only %d, want %d", file.Len(), ok, rep.TheirsOnly.Count, extras)
	}
}

// TestReconOutsideCredits reconciles credits an outside institution sent
// over the gateway port: exported under the institution's id with their
// order numbers, matched by order number, a reversed credit standing on
// neither side, and the credit the institution took but never sent
// credited to the card by the configured auto-resolution.
func TestReconOutsideCredits(t *testing.T) {
	sw := testSwitch(t, func(c *Config) {
		c.BusinessDay.ReconDir = t.TempDir()
		c.Recon.Gateways = map[string]ReconGateway{demoInst: {
			Layout: recon.Layout{Format: "csv", Header: true, Success: []string{"PAID"},
				Fields: map[string]recon.Column{"order_no": {Name: "order"}, "card": {Name: "card"},
					"amount": {Name: "yuan"}, "status": {Name: "status"}}, AmountUnit: "yuan"},
			AutoResolve: recon.AutoRules{TheirsOnly: recon.ActionCredit, MaxAmount: 100000, MaxTotal: 1000000},
		}}
	})
	c := dialInst(t, sw, demoInst)
	today := sw.clock.Today()
	a, err := c.Credit(rechargesim.Op{Order: "R-1", Card: cardZhaoMin, Amount: 5000})
	want(t, "credit", a, err, "00")
	a, err = c.Credit(rechargesim.Op{Order: "R-2", Card: cardZhaoMin, Amount: 700})
	want(t, "credit", a, err, "00")
	a, err = c.Reverse(rechargesim.Op{Order: "R-2", Card: cardZhaoMin, Amount: 700})
	want(t, "reversal", a, err, "00")

	code, out := adminCall(t, sw, "GET", "/api/v1/recon/export?gateway="+demoInst+"&date="+today.String(), nil)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if code != http.StatusOK || len(lines) != 5 || !strings.Contains(lines[1], ","+demoInst+",0200,210000,,,"+cardZhaoMin+",5000,0,00,") ||
		!strings.Contains(lines[1], ",R-1,") || lines[4] != "TOTAL,3,6400" {
		t.Fatalf("export: %d\n%s", code, out)
	}
	cash := cashOf(t, sw, cardZhaoMin)
	file := "order,card,yuan,status\nR-1," + cardZhaoMin + ",50.00,PAID\nR-2," + cardZhaoMin + ",7.00,REVERSED\nR-3," + cardZhaoMin + ",3.00,PAID\n"
	rep, ok := importFile(t, sw, demoInst, today, []byte(file))
	if !ok || rep.Matched.Count != 2 || rep.TheirsOnly.Count != 1 || rep.TheirsOnly.Amount != 300 || rep.AutoResolved != 1 ||
		rep.OursOnly.Count+rep.AmountDiffers.Count+rep.StatusDiffers.Count != 0 {
		t.Fatalf("import: %+v", rep)
	}
	if got := cashOf(t, sw, cardZhaoMin); got != cash+300 {
		t.Fatalf("cash %s after the auto-resolved credit, want %s", got, cash+300)
	}
}
