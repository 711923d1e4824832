// Package posimtest starts a real switch for the tests of posim and its
// tools: in-process, on ephemeral loopback ports, with a temp data
// directory, a demo LMK of its own and the demo data (README.md#demo-data).
package posimtest

import (
	"context"
	"path/filepath"
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
	demo, err := switching.DemoConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg := *demo
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.LMK = switching.LMKConfig{File: filepath.Join(dir, "lmk.key"), CreateDemo: true}
	cfg.POS.Addr, cfg.Gateway.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Recharge.HTTPAddr = "127.0.0.1:0"
	// The demo link's bank (127.0.0.1:8590) may be a running demo's
	// gwsim: point it where nothing answers (a test that needs a bank
	// starts its own gwsim and sets the address).
	for i := range cfg.Gateways {
		cfg.Gateways[i].Addresses = []string{"127.0.0.1:1"}
	}
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
