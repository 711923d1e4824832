package switching

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/cardswitch/cardswitch/switch/admin"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

func TestCutover(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	for _, c := range []struct {
		cutover string
		at      string
		want    ledger.BusinessDate
	}{
		{"23:00", "2026-12-04T22:59:59+08:00", 20261204},
		{"23:00", "2026-12-04T23:00:00+08:00", 20261205},
		{"23:00", "2026-12-31T23:30:00+08:00", 20270101},
		{"00:00", "2026-12-04T23:59:59+08:00", 20261204},
		{"00:00", "2026-12-05T00:00:00+08:00", 20261205},
		{"21:30", "2026-12-04T21:29:00+08:00", 20261204},
		{"21:30", "2026-12-04T21:30:00+08:00", 20261205},
		// The zone is the business day's, not the clock's.
		{"23:00", "2026-12-04T15:00:00Z", 20261205},
	} {
		cut, err := BusinessDayConfig{Cutover: c.cutover}.cutoverOf()
		if err != nil {
			t.Fatal(err)
		}
		bc := &businessClock{loc: loc, cutover: cut}
		at, _ := time.Parse(time.RFC3339, c.at)
		if got := bc.dateOf(at); got != c.want {
			t.Errorf("cutover %s at %s: %d, want %d", c.cutover, c.at, got, c.want)
		}
	}
	for _, bad := range []string{"", "24:00", "7:00", "23:60", "23:00:00"} {
		if _, err := (BusinessDayConfig{Cutover: bad}).cutoverOf(); err == nil {
			t.Errorf("cutover %q accepted", bad)
		}
	}
}

func dayStatus(t *testing.T, sw *Switch) DayStatus {
	t.Helper()
	code, out := adminCall(t, sw, "GET", "/api/v1/day", nil)
	if code != http.StatusOK {
		t.Fatalf("day status: %d %s", code, out)
	}
	var st DayStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitExported waits for the export of day d to finish.
func waitExported(t *testing.T, sw *Switch, d string) DayRecord {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, r := range dayStatus(t, sw).Days {
			if r.Date == d && r.Export.State == exportDone {
				return r
			}
			if r.Date == d && r.Export.State == exportFailed {
				t.Fatalf("export of %s failed: %s", d, r.Export.Error)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("export of %s not done", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDayCloseAndExport closes the business day through the admin API
// while a terminal is signed on: answers before carry the day in field 15,
// answers after carry the next; the day's files appear in recon/DATE/,
// mode 0600, with header, one line per answered financial message and a
// trailer, and a re-export is byte for byte the same.
func TestDayCloseAndExport(t *testing.T) {
	reconDir := filepath.Join(t.TempDir(), "recon")
	sw := testSwitch(t, func(c *Config) { c.BusinessDay.ReconDir = reconDir })
	term := signedOn(t, sw, termCanteen, canteen)
	today := sw.clock.Today()

	req, err := term.Consume(cardStudent, 1250, pinStudent)
	ok := do(t, term, req, err)
	expectRC(t, "consume", ok, spec.RCApproved)
	if ok.SettlementDate != today.String()[4:] {
		t.Fatalf("field 15 %q, want %s", ok.SettlementDate, today.String()[4:])
	}
	req, err = term.Consume(cardEmpty, 100, "")
	expectRC(t, "consume on empty card", do(t, term, req, err), spec.RCInsufficientFunds)
	req, err = term.Balance(cardStudent, pinStudent)
	expectRC(t, "balance", do(t, term, req, err), spec.RCApproved)

	code, out := adminCall(t, sw, "POST", "/api/v1/day/close", admin.DayCloseRequest{Operator: "alice"})
	if code != http.StatusOK {
		t.Fatalf("close: %d %s", code, out)
	}
	next := today.AddDays(1)
	if got := sw.clock.Today(); got != next {
		t.Fatalf("business date after close %d, want %d", got, next)
	}
	// Closing it again answers the same record; a day not begun is refused.
	if code, out := adminCall(t, sw, "POST", "/api/v1/day/close", admin.DayCloseRequest{Date: today.String()}); code != http.StatusOK {
		t.Fatalf("close again: %d %s", code, out)
	}
	if code, _ := adminCall(t, sw, "POST", "/api/v1/day/close", admin.DayCloseRequest{Date: next.AddDays(1).String()}); code != http.StatusBadRequest {
		t.Fatalf("closing a future day: %d, want 400", code)
	}

	req, err = term.Consume(cardStudent, 300, pinStudent)
	after := do(t, term, req, err)
	expectRC(t, "consume after close", after, spec.RCApproved)
	if after.SettlementDate != next.String()[4:] {
		t.Fatalf("field 15 after close %q, want %s", after.SettlementDate, next.String()[4:])
	}
	// A card closed now is dated by the business day, not the calendar.
	if err := sw.ledger.CloseCard(cardStaff); err != nil {
		t.Fatal(err)
	}
	var closeDate ledger.BusinessDate
	err = ledger.ScanPostings(sw.db, today.AddDays(-3), next.AddDays(3), func(p *ledger.PostingView) error {
		if p.Kind == ledger.KindCloseCard {
			closeDate = p.Date
		}
		return nil
	})
	if err != nil || closeDate != next {
		t.Fatalf("close-card posting dated %d (%v), want %d", closeDate, err, next)
	}

	rec := waitExported(t, sw, today.String())
	if rec.ClosedBy != "operator alice" || rec.Export.Rows != 2 {
		t.Fatalf("day record %+v", rec)
	}
	path := filepath.Join(reconDir, today.String(), recon.InstitutionFile(recon.LocalInstitution))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("export mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 4 || lines[0] != recon.Header || lines[3] != "TOTAL,2,1350" {
		t.Fatalf("export:\n%s", b)
	}
	f := strings.Split(lines[1], ",")
	if f[0] != today.String() || f[2] != "local" || f[3] != "0200" || f[5] != termCanteen || f[6] != canteen ||
		f[7] != cardStudent || f[8] != "1250" || f[9] != "0" || f[10] != "00" || f[11] != ok.RRN || f[15] != ok.AuthCode {
		t.Fatalf("consume line %q", lines[1])
	}
	if f := strings.Split(lines[2], ","); f[10] != "51" || f[11] == "" {
		t.Fatalf("declined line %q", lines[2])
	}
	if _, err := os.Stat(filepath.Join(reconDir, today.String(), recon.MerchantFile(canteen))); err != nil {
		t.Fatal(err)
	}
	// Re-export through the API, and the day after traffic moved on.
	code, again := adminCall(t, sw, "GET", "/api/v1/recon/export?date="+today.String()+"&gateway=local", nil)
	if code != http.StatusOK || !bytes.Equal(again, b) {
		t.Fatalf("re-export: %d\n%s\nwant\n%s", code, again, b)
	}
}

// TestCloseAtCutover moves the clock three days on: the loop's check
// closes, in order, each day whose cutover has passed, and exports each.
func TestCloseAtCutover(t *testing.T) {
	dir := t.TempDir()
	demo, err := DemoConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg := *demo
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.LMK = LMKConfig{File: filepath.Join(dir, "lmk.key"), CreateDemo: true}
	cfg.BusinessDay.ReconDir = filepath.Join(dir, "recon")
	// Ephemeral ports: New checks its listen addresses, and the demo's may
	// be held by a running demo or another package's test.
	cfg.POS.Addr, cfg.Gateway.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Recharge.HTTPAddr = "127.0.0.1:0"
	sw, err := New(&cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Shutdown(context.Background())
	today := sw.clock.Today()
	if sw.clock.closed.Load() != 0 {
		t.Fatal("fresh data directory has a closed mark")
	}
	// Not started: the loop is not running, the test drives it.
	sw.days.running = false
	if err := sw.days.initMark(); err != nil {
		t.Fatal(err)
	}
	if got := ledger.BusinessDate(sw.clock.closed.Load()); got != today.AddDays(-1) {
		t.Fatalf("initial closed mark %d, want yesterday %d", got, today.AddDays(-1))
	}
	later := time.Now().Add(72 * time.Hour)
	sw.clock.now = func() time.Time { return later }
	sw.days.closeDue()
	sw.days.exports.Wait()
	want := sw.clock.dateOf(later).AddDays(-1)
	if got := ledger.BusinessDate(sw.clock.closed.Load()); got != want {
		t.Fatalf("closed through %d, want %d", got, want)
	}
	for d := today; d <= want; d = d.AddDays(1) {
		r, ok, err := sw.days.record(d)
		if err != nil || !ok || r.ClosedBy != "cutover" || r.Export.State != exportDone {
			t.Fatalf("day %d: %+v %v %v", d, r, ok, err)
		}
		if _, err := os.Stat(filepath.Join(cfg.BusinessDay.ReconDir, d.String(), recon.InstitutionFile(recon.LocalInstitution))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCloseUnderTraffic closes the day while a terminal keeps consuming:
// every answer carrying the closed day's date in field 15 is a line of its
// export, and no line is missing or extra, so nothing was posted to the
// day after its close.
func TestCloseUnderTraffic(t *testing.T) {
	reconDir := filepath.Join(t.TempDir(), "recon")
	sw := testSwitch(t, func(c *Config) { c.BusinessDay.ReconDir = reconDir })
	today := sw.clock.Today()
	type answer struct{ date, rrn string }
	answers := make(chan answer, 1000)
	stop := make(chan struct{})
	done := make(chan struct{})
	term := signedOn(t, sw, termCanteen, canteen)
	go func() {
		defer close(done)
		defer close(answers)
		for i := 0; i < 400; i++ {
			select {
			case <-stop:
				return
			default:
			}
			req, err := term.Consume(cardStaff, 1, pinStaff)
			if err != nil {
				return
			}
			resp, err := term.Do(req)
			if err != nil {
				return
			}
			answers <- answer{resp.SettlementDate, resp.RRN}
		}
	}()
	// Close once some traffic has gone through.
	var got []answer
	for a := range answers {
		got = append(got, a)
		if len(got) == 20 {
			if code, out := adminCall(t, sw, "POST", "/api/v1/day/close", admin.DayCloseRequest{Operator: "t"}); code != http.StatusOK {
				t.Fatalf("close: %d %s", code, out)
			}
		}
		if len(got) == 60 {
			close(stop)
		}
	}
	<-done
	before := map[string]bool{}
	after := 0
	for _, a := range got {
		switch a.date {
		case today.String()[4:]:
			before[a.rrn] = true
		case today.AddDays(1).String()[4:]:
			after++
		default:
			t.Fatalf("field 15 %q", a.date)
		}
	}
	if len(before) < 20 || after == 0 {
		t.Fatalf("%d answers before the close, %d after", len(before), after)
	}
	waitExported(t, sw, today.String())
	b, err := os.ReadFile(filepath.Join(reconDir, today.String(), recon.InstitutionFile(recon.LocalInstitution)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	rows := lines[1 : len(lines)-1]
	if len(rows) != len(before) {
		t.Fatalf("%d export lines, %d answers dated the closed day", len(rows), len(before))
	}
	for _, l := range rows {
		if f := strings.Split(l, ","); !before[f[11]] {
			t.Fatalf("export line of an answer not dated the closed day: %s", l)
		}
	}
}
