package switching

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/admin"
	"github.com/cardswitch/cardswitch/switch/terminals"
)

// TestKioskRegisteredBeforeTransferLoads: a kiosk whose stored permissions
// predate transfer loads is named at start, its transfer loads are
// answered 58 with nothing sent to the bank, and once an operator permits
// transfer_load (POST /api/v1/terminals/{id}/permit, what `switchctl
// terminal permit` sends) they are approved; forbidding takes it away
// again (docs/recharge.md#bank-transfer-loads); each change applied is
// counted in switch_terminal_permission_changes_total, a refused one not.
func TestKioskRegisteredBeforeTransferLoads(t *testing.T) {
	sw, sim := transferSwitch(t)
	// What a kiosk registered before transfer loads existed holds: a
	// kiosk's defaults of then, without transfer_load.
	if _, err := sw.terminals.Update(termKiosk, func(k *terminals.Terminal) error {
		k.Permitted &^= 1 << uint(spec.TransferLoad)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The next start names it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := *sw.cfg
	sw, err := New(&cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sw.Shutdown(context.Background()) })
	noted := logs.FilterMessageSnippet("kiosks not permitted transfer_load").All()
	if len(noted) != 1 || noted[0].ContextMap()["kiosks"] != int64(1) ||
		!slices.Equal(noted[0].ContextMap()["first"].([]any), []any{termKiosk}) {
		t.Fatalf("start notes %+v", noted)
	}
	waitLink(t, sw, "up")

	kiosk := signedOn(t, sw, termKiosk, canteen)
	cash, _ := purses(t, sw, cardStaff)
	req, err := kiosk.TransferLoad(cardStaff, 2000, pinStaff)
	expectRC(t, "transfer load at the old kiosk", do(t, kiosk, req, err), spec.RCNotPermittedTerminal)
	if got := simBalance(t, sim); got != bankStart {
		t.Fatalf("a refused load reached the bank: balance %v", got)
	}

	// The operator permits it.
	code, body := adminCall(t, sw, "POST", "/api/v1/terminals/"+termKiosk+"/permit", map[string]any{"types": []string{"transfer_load"}})
	var shown admin.TerminalResponse
	if code != 200 || json.Unmarshal(body, &shown) != nil || !slices.Contains(shown.Permitted, "transfer_load") ||
		!slices.Contains(shown.Permitted, "cash_load") || !slices.Contains(shown.Permitted, "consume") {
		t.Fatalf("permit: %d %s", code, body)
	}
	changes := func(action string) float64 {
		return testutil.ToFloat64(sw.metrics.PermissionChanges.WithLabelValues(action))
	}
	if p, f := changes("permit"), changes("forbid"); p != 1 || f != 0 {
		t.Fatalf("switch_terminal_permission_changes_total after a permit: permit %v forbid %v", p, f)
	}
	req, err = kiosk.TransferLoad(cardStaff, 2000, pinStaff)
	expectRC(t, "transfer load once permitted", do(t, kiosk, req, err), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash+2000, 0)
	if got := simBalance(t, sim); got != bankStart-2000 {
		t.Fatalf("bank balance %v", got)
	}

	// Forbidden again: 58, nothing moves.
	if code, body := adminCall(t, sw, "POST", "/api/v1/terminals/"+termKiosk+"/forbid", map[string]any{"types": []string{"transfer_load"}}); code != 200 {
		t.Fatalf("forbid: %d %s", code, body)
	}
	if p, f := changes("permit"), changes("forbid"); p != 1 || f != 1 {
		t.Fatalf("switch_terminal_permission_changes_total after a forbid: permit %v forbid %v", p, f)
	}
	req, err = kiosk.TransferLoad(cardStaff, 2000, pinStaff)
	expectRC(t, "transfer load once forbidden", do(t, kiosk, req, err), spec.RCNotPermittedTerminal)
	expectPurses(t, sw, cardStaff, cash+2000, 0)

	// What cannot be permitted changes nothing.
	for _, c := range []struct {
		terminal string
		types    []string
		code     int
	}{
		{termCanteen, []string{"transfer_load"}, 400}, // not a kiosk
		{termKiosk, []string{"recharge_credit"}, 400}, // an institution's type
		{termKiosk, []string{"nope"}, 400},
		{termKiosk, nil, 400},
		{"99999999", []string{"transfer_load"}, 404},
	} {
		before := sw.terminals.Get(c.terminal)
		if code, body := adminCall(t, sw, "POST", "/api/v1/terminals/"+c.terminal+"/permit", map[string]any{"types": c.types}); code != c.code {
			t.Errorf("permit %v to %s: %d %s, want %d", c.types, c.terminal, code, body, c.code)
		}
		if after := sw.terminals.Get(c.terminal); before != nil && after.Permitted != before.Permitted {
			t.Errorf("permit %v to %s changed its permissions", c.types, c.terminal)
		}
	}
	if p := changes("permit"); p != 1 {
		t.Errorf("refused permits counted: switch_terminal_permission_changes_total{action=permit} %v", p)
	}
}

// TestReversalAfterForbid: a consume approved before an operator forbids
// consumes (and reversals) at the terminal is still reversed — a reversal
// is always approved (docs/pos-dialect.md) — while a new consume is 58.
func TestReversalAfterForbid(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(cardVisitor, 1000, "")
	expectRC(t, "consume", do(t, term, buy, err), spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000-1050, 0)

	if code, body := adminCall(t, sw, "POST", "/api/v1/terminals/"+termCanteen+"/forbid", map[string]any{"types": []string{"consume", "reversal"}}); code != 200 {
		t.Fatalf("forbid: %d %s", code, body)
	}
	again, err := term.Consume(cardVisitor, 1000, "")
	expectRC(t, "consume once forbidden", do(t, term, again, err), spec.RCNotPermittedTerminal)
	expectRC(t, "reversal of the earlier consume", do(t, term, term.Reversal(buy, spec.ReversalTimeout), nil), spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000, 0)
}
