package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
	switching "github.com/cardswitch/cardswitch/switch"
)

// TestSIGHUPReloadsWithConnectionsOpen runs the real switchd: a POS
// connection opened before SIGHUP is still served after the reload, the
// terminal added by the reloaded file can sign on, and SIGTERM then stops
// the daemon cleanly.
func TestSIGHUPReloadsWithConnectionsOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfgText := string(switching.DemoConfigYAML())
	for old, repl := range map[string]string{
		"data_dir: ./data":          "data_dir: " + filepath.Join(dir, "data"),
		"file: ./demo-lmk.key":      "file: " + filepath.Join(dir, "lmk.key"),
		"addr: 127.0.0.1:8583":      "addr: 127.0.0.1:0",
		"addr: 127.0.0.1:8584":      "addr: 127.0.0.1:0",
		"addr: 127.0.0.1:9583":      "addr: 127.0.0.1:0",
		"http_addr: 127.0.0.1:9584": "http_addr: 127.0.0.1:0",
		`"127.0.0.1:8590"`:          `"127.0.0.1:1"`, // not a running demo's gwsim
	} {
		if !strings.Contains(cfgText, old) {
			t.Fatalf("the demo configuration has no %q", old)
		}
		cfgText = strings.Replace(cfgText, old, repl, 1)
	}
	cfgPath := filepath.Join(dir, "switchd.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	wait := func(what string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("switchd exited before %q", what)
				}
				if strings.Contains(l, what) {
					return l
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %q", what)
			}
		}
	}
	listening := wait("switch listening")
	var addrs struct {
		POS string `json:"pos"`
	}
	if i := strings.IndexByte(listening, '{'); i < 0 || json.Unmarshal([]byte(listening[i:]), &addrs) != nil || addrs.POS == "" {
		t.Fatalf("cannot read the POS address from %q", listening)
	}
	echo := func(c *posclient.Client, id, merchant string) {
		t.Helper()
		resp, err := c.Exchange(&spec.POSMessage{MTI: "0820", TerminalID: id, MerchantID: merchant,
			Reserved60: spec.Field60{Type: "00", Batch: "000000", NetworkCode: "301"}}, nil)
		if err != nil || resp.ResponseCode != spec.RCApproved {
			t.Fatalf("echo %s: %v %+v", id, err, resp)
		}
	}
	held, err := posclient.Dial(addrs.POS, posclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	echo(held, "10000001", "898310000000001")

	// A new terminal in the file, then SIGHUP.
	cfgText = strings.Replace(cfgText, "\n  terminals:\n", "\n  terminals:\n    - {id: \"10000077\", merchant: \"898310000000001\", tmk: 0123456789ABCDEFFEDCBA9876543210}\n", 1)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if l := wait("configuration reloaded"); !strings.Contains(l, "10000077") {
		t.Fatalf("reload log %q does not name the new terminal", l)
	}
	echo(held, "10000001", "898310000000001") // the same connection, still served
	tmk := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
	c2, err := posclient.Dial(addrs.POS, posclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if resp, err := posclient.NewTerminal(c2, "10000077", "898310000000001", tmk).SignOn(); err != nil || resp.ResponseCode != spec.RCApproved {
		t.Fatalf("sign-on of the reloaded terminal: %v %+v", err, resp)
	}

	// A broken file: logged, nothing changes, still serving.
	if err := os.WriteFile(cfgPath, []byte(cfgText+"ledgr: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	wait("configuration not reloaded")
	echo(held, "10000001", "898310000000001")

	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("switchd after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("switchd did not stop on SIGTERM")
	}
}
