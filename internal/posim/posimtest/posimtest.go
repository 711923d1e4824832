// Package posimtest starts a real switch for the tests of posim and its
// tools: in-process, on ephemeral loopback ports, with a temp data
// directory, a demo LMK of its own and the demo data (README.md#demo-data).
package posimtest

import (
	"context"
	"testing"

	switching "github.com/cardswitch/cardswitch/switch"
	"go.uber.org/zap"
)

// StartSwitch starts the demo switch, changed by mutate when it is not nil,
// and shuts it down when the test ends. It returns the switch, its POS
// address and its data directory.
func StartSwitch(t testing.TB, mutate func(*switching.Config)) (sw *switching.Switch, pos, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	demo, err := switching.IsolatedDemoConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *demo
	cfg.Log = switching.LogConfig{Format: "console", Level: "error"}
	if mutate != nil {
		mutate(&cfg)
	}
	sw, err = switching.New(&cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sw.Shutdown(context.Background()) })
	pos, _, _ = sw.Addrs()
	return sw, pos, cfg.DataDir
}
