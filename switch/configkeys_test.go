package switching

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestConfigErrorsNameYAMLPath: each class of mistake in a configuration
// file is reported by its YAML path, never by a Go type name, with a near
// key suggested for a typo.
func TestConfigErrorsNameYAMLPath(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"typo in a section", "lmk: {file: k}\nledger:\n  max_pin_trys: 4\n",
			"ledger.max_pin_trys (line 3): unknown key; did you mean max_pin_tries?"},
		{"typo at the top", "lmk: {file: k}\nlogg: {level: info}\n", "logg (line 2): unknown key; did you mean log?"},
		{"transposed letters", "lmk: {file: k}\npos: {adrd: '127.0.0.1:1'}\n", "pos.adrd (line 2): unknown key; did you mean addr?"},
		{"no near key", "lmk: {file: k}\nhttp: {zzzzzzzz: 1}\n", "http.zzzzzzzz (line 2): unknown key; http has addr, admin_token, admin_token_env"},
		{"typo in a list item", "lmk: {file: k}\nroutes:\n  - name: x\n    bin: ['1']\n", "routes[0].bin (line 4): unknown key; did you mean bins?"},
		{"typo in an inline struct", "lmk: {file: k}\nseed:\n  cards:\n    - pan: '1'\n      pinn: '1234'\n", "seed.cards[0].pinn (line 5): unknown key; did you mean pin?"},
		{"not a number", "lmk: {file: k}\npos: {max_connections: abc}\n", "pos.max_connections (line 2): cannot unmarshal !!str `abc` into int"},
		{"not a duration", "lmk: {file: k}\nretention: {interval: 5y}\n", `retention.interval (line 2): duration "5y": want a number and a unit`},
		{"not an amount", "lmk: {file: k}\nledger: {default_no_pin_limit: xyz}\n", `ledger.default_no_pin_limit (line 2): bad amount: "xyz"`},
		{"not a holder type", "lmk: {file: k}\nseed:\n  cards:\n    - pan: '1'\n      holder_type: alien\n", `seed.cards[0].holder_type (line 5): unknown holder type "alien"`},
		{"a scalar for a section", "lmk: {file: k}\npos: 5\n", "pos (line 2): cannot unmarshal !!int `5` into a mapping of keys"},
		{"a map for a list", "lmk: {file: k}\nroutes: {a: 1}\n", "routes (line 2): cannot unmarshal !!map into a list"},
		{"out of range", "lmk: {file: k}\nledger: {max_pin_tries: 300, hold_days: -1}\n", "ledger.max_pin_tries 300: want 0..255 (0 = default)\nledger.hold_days -1: want 0..366"},
		{"listener bound", "lmk: {file: k}\npos: {max_frame: 10}\n", "pos.max_frame 10: want 64..65536"},
		{"both LMK sources", "lmk: {file: k, env: X}\n", "lmk: set exactly one of file and env"},
		{"bad YAML", "lmk: [\n", "line 1: did not find expected node content"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant one containing %q", err, tc.want)
			}
			for _, goName := range []string{"switching.", "ledger.LedgerConfig", "routing.Rule", "ListenerConfig", "struct"} {
				if strings.Contains(err.Error(), goName) {
					t.Errorf("the message names a Go type (%s): %v", goName, err)
				}
			}
		})
	}
}

func TestNearestKey(t *testing.T) {
	fields := yamlFields(reflect.TypeFor[LedgerConfig]())
	for in, want := range map[string]string{
		"max_pin_trys": "max_pin_tries", "holddays": "hold_days", "MAX_PIN_TRIES": "max_pin_tries",
		"refund_window": "refund_window_days", "x": "", "zzzzzzzzzz": "",
	} {
		if got := nearestKey(in, fields); got != want {
			t.Errorf("nearestKey(%q) = %q, want %q", in, got, want)
		}
	}
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "abc", 0}, {"abc", "acb", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

// TestBusyPortNamesKeyCreatesNothing: a listen address already in use is
// reported by its key before the data directory or the LMK is created.
func TestBusyPortNamesKeyCreatesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, key := range []string{"pos.addr", "gateway.addr", "http.addr"} {
		t.Run(key, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := DemoConfig()
			if err != nil {
				t.Fatal(err)
			}
			cfg.DataDir = filepath.Join(dir, "data")
			cfg.LMK = LMKConfig{File: filepath.Join(dir, "lmk.key"), CreateDemo: true}
			cfg.POS.Addr, cfg.Gateway.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
			switch key {
			case "pos.addr":
				cfg.POS.Addr = busy.Addr().String()
			case "gateway.addr":
				cfg.Gateway.Addr = busy.Addr().String()
			case "http.addr":
				cfg.HTTP.Addr = busy.Addr().String()
			}
			_, err = New(cfg, zap.NewNop())
			want := key + " " + busy.Addr().String() + ": address already in use"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("New: %v, want %q", err, want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("a busy port left %v behind", ents)
			}
		})
	}
	t.Run("two keys one address", func(t *testing.T) {
		// A port of its own, not the demo's: CheckListeners binds what it
		// checks, and the demo's ports may be held by a running demo. It
		// is below the ephemeral range (freePort, crash_test.go), so that
		// no connection made meanwhile takes it before CheckListeners
		// binds it (which would report it busy instead).
		addr := freePort(t)
		cfg, _ := DemoConfig()
		cfg.POS.Addr, cfg.Gateway.Addr, cfg.HTTP.Addr = addr, addr, "127.0.0.1:0"
		if err := CheckListeners(cfg); err == nil || !strings.Contains(err.Error(), "gateway.addr "+addr+": the same address as pos.addr") {
			t.Fatalf("CheckListeners: %v", err)
		}
	})
}

// TestCheckConfigCreatesNothing: CheckConfig reports the LMK and data
// directory problems by key and creates no file.
func TestCheckConfigCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	base := func() *Config {
		cfg, err := DemoConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.LMK = LMKConfig{File: filepath.Join(dir, "lmk.key"), CreateDemo: true}
		cfg.POS.Addr, cfg.Gateway.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		return cfg
	}
	notes, err := CheckConfig(base())
	if err != nil || len(notes) != 2 || !strings.Contains(notes[0], "creates a DEMO key") || !strings.Contains(notes[1], "a start creates it") {
		t.Fatalf("fresh demo: notes %q, err %v", notes, err)
	}
	cfg := base()
	cfg.LMK.CreateDemo = false
	if _, err := CheckConfig(cfg); err == nil || !strings.Contains(err.Error(), "lmk.file: open LMK file") {
		t.Errorf("missing LMK: %v", err)
	}
	if err := os.WriteFile(cfg.LMK.File, []byte(strings.Repeat("ab", 32)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckConfig(cfg); err == nil || !strings.Contains(err.Error(), "lmk.file: LMK file") || !strings.Contains(err.Error(), "mode 0644") {
		t.Errorf("readable LMK: %v", err)
	}
	if err := os.Chmod(cfg.LMK.File, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.DataDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckConfig(cfg); err == nil || !strings.Contains(err.Error(), "data_dir "+cfg.DataDir+": not a directory") {
		t.Errorf("data_dir a file: %v", err)
	}
	_ = os.Remove(cfg.DataDir)
	cfg.LMK = LMKConfig{Env: "SWITCH_TEST_NO_SUCH_LMK"}
	if _, err := CheckConfig(cfg); err == nil || !strings.Contains(err.Error(), "lmk.env: LMK environment variable SWITCH_TEST_NO_SUCH_LMK is not set") {
		t.Errorf("unset LMK variable: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "lmk.key" {
		t.Errorf("CheckConfig created files: %v", ents)
	}
}
