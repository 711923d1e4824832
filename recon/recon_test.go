package recon_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/recongen"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"gopkg.in/yaml.v3"
)

const day = ledger.BusinessDate(20261203)

type fixture struct {
	db   *pebble.DB
	j    *journal.Journal
	l    *ledger.Ledger
	book *recon.Book
	txns []recongen.Txn
}

func newFixture(t *testing.T, pairs int) *fixture {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	j, err := journal.Open(db, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(db, ledger.Options{Today: func() ledger.BusinessDate { return day.AddDays(1) }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, j: j, l: l}
	err = recongen.Generate(db, j, recongen.Options{Date: day, Pairs: pairs, Institution: "gwsim", Seed: 7, DeclinePercent: 10},
		func(x recongen.Txn) error { f.txns = append(f.txns, x); return nil })
	if err != nil {
		t.Fatal(err)
	}
	src := recon.Source{Journal: j, Books: db, Location: time.UTC}
	f.book = &recon.Book{DB: db, Journal: j, Ledger: l, Source: src, Today: func() ledger.BusinessDate { return day.AddDays(1) }}
	return f
}

func layouts(t *testing.T) map[string]*recon.Layout {
	t.Helper()
	b, err := os.ReadFile("../testdata/recon/layouts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]*recon.Layout
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for n, l := range m {
		if err := l.Validate(); err != nil {
			t.Fatalf("layout %s: %v", n, err)
		}
	}
	return m
}

// TestExportIsStableAndComplete exports the same day twice into files and
// once through WriteCSV: same bytes, one line per pair, trailer totals.
func TestExportIsStableAndComplete(t *testing.T) {
	f := newFixture(t, 500)
	dir := t.TempDir()
	first, err := f.book.Source.ExportDay(dir, day, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, day.String(), recon.InstitutionFile("gwsim"))
	a, _ := os.ReadFile(name)
	if _, err := f.book.Source.ExportDay(dir, day, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(name)
	var c bytes.Buffer
	if _, err := f.book.Source.WriteCSV(&c, day, recon.Filter{Institution: "gwsim"}, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || !bytes.Equal(a, c.Bytes()) {
		t.Fatal("re-export differs")
	}
	var sum ledger.Fen
	for _, x := range f.txns {
		sum += x.Amount
	}
	lines := strings.Split(strings.TrimSuffix(string(a), "\n"), "\n")
	if first.Rows != 500 || len(lines) != 502 || lines[501] != "TOTAL,500,"+strconv.FormatInt(int64(sum), 10) {
		t.Fatalf("rows %d, lines %d, trailer %q (sum %d)", first.Rows, len(lines), lines[len(lines)-1], sum)
	}
	// 20 merchant files + the institution file + the (empty) local one.
	if len(first.Files) != 22 {
		t.Fatalf("%d files", len(first.Files))
	}
	entries, _ := os.ReadDir(filepath.Join(dir, day.String()))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", e.Name(), fi.Mode().Perm())
		}
	}
}

// TestMatchClassesAndResolve plants one discrepancy of each kind in the
// counterparty's file, checks the classes and sums, resolves them, and
// re-imports: ids and resolutions are kept.
func TestMatchClassesAndResolve(t *testing.T) {
	f := newFixture(t, 200)
	var approved []recongen.Txn
	for _, x := range f.txns {
		if x.Approved {
			approved = append(approved, x)
		}
	}
	skip, alter := approved[3], approved[7]
	var file bytes.Buffer
	w := recongen.NewFileWriter(&file, day)
	w.Skip[skip.RRN] = true
	w.Alter[alter.RRN] = alter.Amount + 150
	for _, x := range f.txns {
		if err := w.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	// The extra debit is on a card of ours, so a credit can be posted.
	pan := "6230159999999999990"
	if err := f.l.OpenCard(ledger.CardSpec{PAN: pan, Holder: "Test", HolderType: ledger.Student}, nil); err != nil {
		t.Fatal(err)
	}
	w.Extra("999000000001", pan, 777)
	w.Close()
	lay := layouts(t)["gwsim"]
	data := file.Bytes()

	rep, err := f.book.Import(context.Background(), "gwsim", day, lay, recon.AutoRules{}, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OursOnly.Count != 1 || rep.OursOnly.Amount != skip.Amount ||
		rep.TheirsOnly.Count != 1 || rep.TheirsOnly.Amount != 777 ||
		rep.AmountDiffers.Count != 1 || rep.AmountDiffers.Amount != alter.Amount ||
		rep.StatusDiffers.Count != 0 || rep.Matched.Count != int64(len(approved)-2) ||
		rep.OurRows != 200 || rep.TheirRecords != int64(len(approved)) || len(rep.Discrepancies) != 3 {
		t.Fatalf("report %+v", rep)
	}
	byClass := map[string]recon.Discrepancy{}
	list, more, err := f.book.Discrepancies(recon.DiscrepancyFilter{Gateway: "gwsim"}, 0, 10)
	if err != nil || more || len(list) != 3 {
		t.Fatalf("list %v %v %v", list, more, err)
	}
	for _, d := range list {
		byClass[d.Class] = d
	}
	to := byClass[recon.TheirsOnly]
	if to.Card != pan || to.TheirsAmount != 777 || to.Key != "rrn:999000000001" {
		t.Fatalf("theirs-only %+v", to)
	}
	// Refund of an ours-only consume is not ours to do: refused, clearly.
	if _, err := f.book.Resolve(byClass[recon.OursOnly].ID, recon.ActionRefund, "alice"); err == nil {
		t.Fatal("refund of an ours-only consume accepted")
	}
	if _, err := f.book.Resolve(to.ID, recon.ActionCredit, "alice"); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.l.Card(pan); v.Balances.Cash != 777 {
		t.Fatalf("card cash %d after credit, want 777", v.Balances.Cash)
	}
	if _, err := f.book.Resolve(to.ID, recon.ActionCredit, "alice"); err == nil {
		t.Fatal("resolved twice")
	}
	if _, err := f.book.Resolve(byClass[recon.AmountDiffers].ID, recon.ActionRefund, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.book.Resolve(byClass[recon.OursOnly].ID, recon.ActionAccept, "bob"); err != nil {
		t.Fatal(err)
	}
	// Resolutions are journaled on the day they were made, and the
	// credit and refund are export lines of it.
	var c bytes.Buffer
	if _, err := f.book.Source.WriteCSV(&c, day.AddDays(1), recon.Filter{}, nil); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(c.String()), "\n"); len(lines) != 4 ||
		!strings.Contains(lines[1], ","+pan+",777,") || lines[3] != "TOTAL,2,927" {
		t.Fatalf("resolution export:\n%s", c.String())
	}
	refunds, err := f.book.RefundList(day.AddDays(1), day.AddDays(1))
	if err != nil || len(refunds) != 1 || refunds[0].Kind != "payer-refund" || refunds[0].Amount != 150 {
		t.Fatalf("refund list %+v %v", refunds, err)
	}
	st, err := f.book.Source.DayStatistics(day)
	if err != nil {
		t.Fatal(err)
	}
	var declined int64
	for _, c := range st.Declines {
		declined += c.Count
	}
	if st.Messages != 200 || st.Approved.Count != int64(len(approved)) || declined != int64(200-len(approved)) ||
		len(st.ByMerchant) != 20 || len(st.ByType) != 1 || st.ByType[0].Key != "consume" {
		t.Fatalf("statistics %+v", st)
	}
	// Re-import: the same three, still resolved, same ids.
	rep2, err := f.book.Import(context.Background(), "gwsim", day, lay, recon.AutoRules{}, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	list2, _, _ := f.book.Discrepancies(recon.DiscrepancyFilter{}, 0, 10)
	if len(list2) != 3 || rep2.Discrepancies[0] != rep.Discrepancies[0] {
		t.Fatalf("re-import: %+v", list2)
	}
	for _, d := range list2 {
		if d.State != "resolved" {
			t.Fatalf("re-import reopened %+v", d)
		}
	}
}

// TestBankFixedLayout reads the fixed-width example layout.
func TestBankFixedLayout(t *testing.T) {
	f := newFixture(t, 20)
	var file bytes.Buffer
	for _, x := range f.txns {
		if x.Approved {
			file.WriteString(x.Card + strings.Repeat(" ", 19-len(x.Card)) + "6222000011112222333" + x.RRN + "B00000000001" + pad12(int64(x.Amount)) + "\n")
		}
	}
	file.WriteString("62301510000000000126222000011112222333999888777666B00000000002000000000777\n")
	rep, err := f.book.Import(context.Background(), "gwsim", day, layouts(t)["bank-fixed"], recon.AutoRules{}, &file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Matched.Count == 0 || rep.OursOnly.Count+rep.AmountDiffers.Count+rep.StatusDiffers.Count != 0 || rep.TheirsOnly.Count != 1 {
		t.Fatalf("report %+v", rep)
	}
	d, err := f.book.Get(rep.Discrepancies[0])
	if err != nil || d.Card != "6230151000000000012" || d.TheirsBankCard != "6222000011112222333" || d.TheirsRef != "B00000000002" ||
		d.TheirsAmount != 777 || d.Key != "rrn:999888777666" || d.Masked().TheirsBankCard == d.TheirsBankCard {
		t.Fatalf("theirs-only from the bank file %+v %v", d, err)
	}
}

func pad12(v int64) string {
	s := strconv.FormatInt(v, 10)
	return strings.Repeat("0", 12-len(s)) + s
}

func TestLayoutRejects(t *testing.T) {
	for _, l := range []recon.Layout{
		{Format: "xml", Fields: map[string]recon.Column{"amount": {Index: 1}, "rrn": {Index: 2}}},
		{Format: "csv", Fields: map[string]recon.Column{"rrn": {Index: 2}}},
		{Format: "csv", Fields: map[string]recon.Column{"amount": {Index: 1}}},
		{Format: "csv", Fields: map[string]recon.Column{"amount": {Name: "a"}, "rrn": {Index: 2}}},
		{Format: "fixed", Fields: map[string]recon.Column{"amount": {Start: 0, Length: 3}, "rrn": {Start: 4, Length: 12}}},
		{Format: "csv", Fields: map[string]recon.Column{"amount": {Index: 1}, "link_stan": {Index: 2}}},
		{Format: "csv", AmountUnit: "cents", Fields: map[string]recon.Column{"amount": {Index: 1}, "rrn": {Index: 2}}},
	} {
		if err := l.Validate(); err == nil {
			t.Errorf("layout %+v accepted", l)
		}
	}
}
