package switching

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// TestRetention runs a consume and a void's worth of traffic today, then
// runs the retention job as of later days: stored responses go after
// response_days, but an approved POS request's duplicate record — the
// ledger's reference for it — after the ledger's lookup window, as the
// ledger's lookup records do; journal days after journal_days; the books
// never change and still check.
func TestRetention(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.Retention.JournalDays = 90 })
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Consume(cardStaff, 1000, "")
	resp := do(t, term, req, err)
	expectRC(t, "consume", resp, spec.RCApproved)
	rrn, date := resp.RRN, sw.clock.Today().String()
	if got, err := sw.journal.ByRRN(rrn, date, 10); err != nil || len(got) != 2 {
		t.Fatalf("journal by RRN before pruning: %d entries, %v; want request and response", len(got), err)
	}
	dup := journal.DuplicateKey{Terminal: termCanteen, Batch: term.Batch, STAN: req.STAN, Date: req.LocalDate}
	if rec, found, err := sw.journal.GetResponse(dup); err != nil || !found || rec.TxID == 0 {
		t.Fatalf("stored response before pruning: found %v, %v, txid %d", found, err, rec.TxID)
	}
	// A declined consume: its duplicate record names no transaction.
	reqD, err := term.Consume(cardEmpty, 1000, "")
	expectRC(t, "declined consume", do(t, term, reqD, err), spec.RCInsufficientFunds)
	declined := journal.DuplicateKey{Terminal: termCanteen, Batch: term.Batch, STAN: reqD.STAN, Date: reqD.LocalDate}
	if rec, found, err := sw.journal.GetResponse(declined); err != nil || !found || rec.TxID != 0 {
		t.Fatalf("declined consume's record: found %v, %v, txid %d", found, err, rec.TxID)
	}
	// The terminal signs on again: a new batch, with one consume in it.
	// The first batch is closed; the open one keeps its stored responses
	// whatever their age (the trace watermark is rebuilt from them).
	if r, err := term.SignOn(); err != nil || r.ResponseCode != spec.RCApproved || term.Batch == dup.Batch {
		t.Fatalf("second sign-on: %v, batch %q after %q", err, term.Batch, dup.Batch)
	}
	req2, err := term.Consume(cardStaff, 200, "")
	expectRC(t, "consume in the open batch", do(t, term, req2, err), spec.RCApproved)
	open := journal.DuplicateKey{Terminal: termCanteen, Batch: term.Batch, STAN: req2.STAN, Date: req2.LocalDate}
	cash, subsidy := purses(t, sw, cardStaff)
	lookup := sw.retention.lookupDays
	if lookup < 31 || lookup >= 90 {
		t.Fatalf("ledger lookup window %d days: want the ledger's minimum, past the 30-day refund window", lookup)
	}

	now := time.Now()
	day := 24 * time.Hour
	run := func(at time.Time) RetentionReport {
		t.Helper()
		rep, err := sw.retention.run(at)
		if err != nil || !rep.Complete {
			t.Fatalf("retention run: %v (%+v)", err, rep)
		}
		return rep
	}

	// Today nothing is old enough.
	if rep := run(now); rep.JournalEntries+rep.Responses+rep.LedgerIdempotency+rep.LedgerReferences+rep.LedgerRRNs != 0 {
		t.Fatalf("run today deleted %+v", rep)
	}
	// Past response_days (7): the stored responses that name no
	// transaction go, nothing else.
	rep := run(now.Add(8 * day))
	if rep.Responses != 1 || rep.JournalEntries != 0 || rep.LedgerReferences != 0 || rep.LedgerRRNs != 0 {
		t.Fatalf("run after 8 days: %+v; want the closed batch's declined consume's record only (a sign-on stores none)", rep)
	}
	if _, found, _ := sw.journal.GetResponse(declined); found {
		t.Fatal("stored response of a declined request kept past response_days")
	}
	if _, found, _ := sw.journal.GetResponse(dup); !found {
		t.Fatal("the approved consume's record, its ledger reference, pruned inside the ledger's window")
	}
	if _, found, _ := sw.journal.GetResponse(open); !found {
		t.Fatal("stored response of the open batch pruned")
	}
	// Past the ledger's window: the approved consume's record goes, as
	// would the ledger's lookup records (a POS transaction leaves none:
	// no idempotency record, the switch's transaction record is its one
	// duplicate record, nor reference, that record names its posting
	// set, docs/journal.md); the journal stays.
	rep = run(now.Add(time.Duration(lookup+2) * day)) // the window, a day more (retention.go)
	if rep.Responses != 1 || rep.LedgerReferences != 0 || rep.LedgerIdempotency != 0 || rep.LedgerRRNs != 0 || rep.JournalEntries != 0 {
		t.Fatalf("run past the ledger window: %+v; want the approved consume's record only", rep)
	}
	if _, found, _ := sw.journal.GetResponse(dup); found {
		t.Fatal("the approved consume's record kept past the ledger's window")
	}
	if got, _ := sw.journal.ByRRN(rrn, date, 10); len(got) != 2 {
		t.Fatalf("journal lost entries inside journal_days: %d left", len(got))
	}
	// Past journal_days: the day's entries go. POS consumes leave no
	// ledger RRN index records (the journal's is theirs, docs/journal.md).
	rep = run(now.Add(91 * day))
	if rep.JournalEntries != 10 || rep.LedgerRRNs != 0 {
		t.Fatalf("run past journal_days: %+v; want two sign-on and three consume pairs, and no ledger RRN records", rep)
	}
	if got, err := sw.journal.ByRRN(rrn, date, 10); err != nil || len(got) != 0 {
		t.Fatalf("journal by RRN after pruning: %d entries, %v", len(got), err)
	}

	// The books are untouched and consistent.
	expectPurses(t, sw, cardStaff, cash, subsidy)
	report, err := ledger.Check(sw.db)
	if err != nil || !report.OK() {
		t.Fatalf("ledger check after pruning: %v %v", err, report.Violations)
	}
	if got := metricValue(t, sw, "switch_retention_deleted_total", map[string]string{"keyspace": "journal_entries"}); got != float64(rep.JournalEntries) {
		t.Fatalf("switch_retention_deleted_total{keyspace=journal_entries} = %v, want %d", got, rep.JournalEntries)
	}
	if got := metricValue(t, sw, "switch_retention_runs_total", map[string]string{"result": "ok"}); got != 4 {
		t.Fatalf("switch_retention_runs_total{result=ok} = %v, want 4", got)
	}
	if metricValue(t, sw, "switch_retention_last_success_timestamp_seconds", nil) == 0 {
		t.Fatal("switch_retention_last_success_timestamp_seconds not set")
	}

	// The terminal goes on transacting after its old records are gone.
	req, err = term.Consume(cardStaff, 100, "")
	expectRC(t, "consume after pruning", do(t, term, req, err), spec.RCApproved)

	// The admin API runs it too, as of now.
	code, body := adminCall(t, sw, "POST", "/api/v1/retention/run", nil)
	var got RetentionReport
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || !got.Complete || got.BusinessDate != sw.clock.Today().String() {
		t.Fatalf("admin retention run: %d %s", code, body)
	}
}

// TestRetentionBelowLedgerMinimum: a lookup window shorter than the
// refund window would let a refund inside it find nothing; the switch
// refuses to start with one.
func TestRetentionBelowLedgerMinimum(t *testing.T) {
	demo, err := DemoConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg := *demo
	cfg.DataDir = t.TempDir()
	cfg.LMK = LMKConfig{File: t.TempDir() + "/lmk.key", CreateDemo: true}
	cfg.Retention.LedgerLookupDays = 10
	// Ephemeral ports: New checks its listen addresses first, and the
	// demo's may be held by a running demo or another package's test.
	cfg.POS.Addr, cfg.Gateway.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Recharge.HTTPAddr = "127.0.0.1:0"
	_, err = New(&cfg, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "retention.ledger_lookup_days 10: below the ledger's minimum") {
		t.Fatalf("New with a 10-day lookup window: %v", err)
	}
}

// TestShutdownAfterFailedStart: switchd calls Shutdown when Start fails
// (a port in use); the retention loop never ran, and Shutdown must not
// wait for it.
func TestShutdownAfterFailedStart(t *testing.T) {
	demo, err := DemoConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg := *demo
	cfg.DataDir = t.TempDir()
	cfg.LMK = LMKConfig{File: t.TempDir() + "/lmk.key", CreateDemo: true}
	// New refuses a busy port itself: the gateway port is free for New
	// (below the ephemeral range, so that no connection takes it
	// meanwhile; crash_test.go), and taken before Start.
	cfg.POS.Addr, cfg.Gateway.Addr, cfg.HTTP.Addr = "127.0.0.1:0", freePort(t), "127.0.0.1:0"
	cfg.Recharge.HTTPAddr = "127.0.0.1:0"
	sw, err := New(&cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", cfg.Gateway.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := sw.Start(); err == nil {
		t.Fatal("Start on a busy gateway port succeeded")
	}
	done := make(chan error, 1)
	go func() { done <- sw.Shutdown(context.Background()) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown after a failed Start never returned")
	}
}
