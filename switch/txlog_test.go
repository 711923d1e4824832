package switching

import (
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestTransactionLogFields: each transaction is one log line with the
// stable field set of docs/operations.md "Logs"; approvals at debug,
// declines at info; the card number masked.
func TestTransactionLogFields(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	sw := testSwitchLog(t, zap.New(core))
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Balance(cardStudent, pinStudent)
	ok := do(t, term, req, err)
	expectRC(t, "balance", ok, spec.RCApproved)
	req, err = term.Balance(cardStudent, "999999")
	bad := do(t, term, req, err)
	expectRC(t, "wrong PIN", bad, spec.RCIncorrectPIN)

	var lines []observer.LoggedEntry
	defer func() {
		if t.Failed() {
			for _, e := range logs.All() {
				t.Logf("%s %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	}()
	waitUntil(t, "two transaction lines", func() bool {
		lines = logs.FilterMessage("transaction").Filter(func(e observer.LoggedEntry) bool {
			return e.ContextMap()["type"] == "balance_inquiry"
		}).All()
		return len(lines) >= 2
	})
	for i, want := range []struct {
		level zapcore.Level
		resp  *spec.POSMessage
	}{{zapcore.DebugLevel, ok}, {zapcore.InfoLevel, bad}} {
		e := lines[i]
		f := e.ContextMap()
		if e.Level != want.level {
			t.Errorf("line %d at %s, want %s", i, e.Level, want.level)
		}
		for k, v := range map[string]any{"terminal": termCanteen, "merchant": canteen, "card": "623015*********0012",
			"rrn": want.resp.RRN, "stan": want.resp.STAN, "rc": want.resp.ResponseCode, "type": "balance_inquiry"} {
			if f[k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, f[k], v, f)
			}
		}
		if ms, ok := f["latency_ms"].(float64); !ok || ms <= 0 {
			t.Errorf("line %d: latency_ms %v", i, f["latency_ms"])
		}
		if _, ok := f["link"]; ok {
			t.Errorf("line %d: link on a local transaction", i)
		}
	}
}
