package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	switching "github.com/cardswitch/cardswitch/switch"
	"github.com/cardswitch/cardswitch/switch/links"
)

// TestShutdownBoundWarning: the shutdown bound must exceed every link's
// send timeout (10 s by default), else a warning names the link.
func TestShutdownBoundWarning(t *testing.T) {
	cfg := &switching.Config{Gateways: []links.Config{{Name: "a", SendTimeout: 2 * time.Second}, {Name: "b"}}}
	for _, c := range []struct {
		bound time.Duration
		want  string
	}{
		{15 * time.Second, ""},
		{10 * time.Second, "gateway b's send_timeout 10s"},
		{time.Second, "gateway a's send_timeout 2s"},
	} {
		got := shutdownBoundWarning(cfg, c.bound)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("bound %v: %q, want %q", c.bound, got, c.want)
		}
	}
	if got := shutdownBoundWarning(&switching.Config{}, time.Second); got != "" {
		t.Errorf("no links: %q", got)
	}
}

// TestCheckConfigFile: --check-config exits 0 on a good file and 2 on a
// bad one, and never creates the data directory or the LMK.
func TestCheckConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "data_dir: " + filepath.Join(dir, "data") + "\nlmk: {file: " + filepath.Join(dir, "lmk.key") + ", create_demo: true}\n" +
		"pos: {addr: '127.0.0.1:0'}\ngateway: {addr: '127.0.0.1:0'}\nhttp: {addr: '127.0.0.1:0'}\n"
	if rc := checkConfigFile(write("good.yaml", base)); rc != 0 {
		t.Errorf("good file: exit %d", rc)
	}
	if rc := checkConfigFile(write("typo.yaml", base+"ledger: {max_pin_trys: 3}\n")); rc != 2 {
		t.Errorf("typo: exit %d", rc)
	}
	if rc := checkConfigFile(filepath.Join(dir, "missing.yaml")); rc != 2 {
		t.Errorf("missing file: exit %d", rc)
	}
	if rc := checkConfigFile(write("nolmk.yaml", strings.Replace(base, ", create_demo: true", "", 1))); rc != 2 {
		t.Errorf("missing LMK: exit %d", rc)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			t.Errorf("--check-config created %s", e.Name())
		}
	}
}
