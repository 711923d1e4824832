package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
	switching "github.com/cardswitch/cardswitch/switch"
)

// The tests here run the real switchd binary, built once per test run.

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// switchdBinary builds switchd (once) and returns its path.
func switchdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs switchd")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "switchd-test")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "switchd")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// demoConfigText is the demo configuration moved into dir, on ephemeral
// ports, its demo link pointed where nothing answers.
func demoConfigText(t *testing.T, dir string) string {
	t.Helper()
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
		cfgText = replaceOnce(t, cfgText, old, repl)
	}
	return cfgText
}

// replaceOnce replaces the first old in s, which must be there.
func replaceOnce(t *testing.T, s, old, repl string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("the configuration has no %q", old)
	}
	return strings.Replace(s, old, repl, 1)
}

// withGateways replaces the configuration's gateways: section by block
// (YAML lines, each starting with "  - " or "    ").
func withGateways(t *testing.T, cfgText, block string) string {
	t.Helper()
	i := strings.Index(cfgText, "\ngateways:\n")
	if i < 0 {
		t.Fatal("the configuration has no gateways: section")
	}
	j := strings.Index(cfgText[i+1:], "\nseed:\n")
	if j < 0 {
		t.Fatal("the configuration has no seed: after gateways:")
	}
	return cfgText[:i] + "\ngateways:\n" + block + cfgText[i+1+j:]
}

// linkYAML is one gateways: entry to addr.
func linkYAML(name, addr, extra string) string {
	return fmt.Sprintf("  - {name: %s, addresses: [%q], acquirer_id: \"48020000\", forwarding_id: \"48020000\", institution_id: \"01020000\","+
		" send_timeout: 2s, reconnect_wait: 50ms, max_reconnect_wait: 500ms%s}\n", name, addr, extra)
}

// daemon is a running switchd.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	cfgPath string
	lines   chan string
	seen    []string // the last lines read, for failure messages
	pos     string
	http    string
	exited  chan error
}

// startDaemon writes cfgText to cfgPath and starts switchd on it, waiting
// until it listens.
func startDaemon(t *testing.T, cfgPath, cfgText string) *daemon {
	t.Helper()
	bin := switchdBinary(t)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: exec.Command(bin, "--config", cfgPath), cfgPath: cfgPath, lines: make(chan string, 10000), exited: make(chan error, 1)}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.exited
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case d.lines <- sc.Text():
			default: // nobody reads that far: drop
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		close(d.lines)
		d.exited <- d.cmd.Wait()
		close(d.exited)
	}()
	listening := d.wait("switch listening")
	var addrs struct {
		POS  string `json:"pos"`
		HTTP string `json:"http"`
	}
	if i := strings.IndexByte(listening, '{'); i < 0 || json.Unmarshal([]byte(listening[i:]), &addrs) != nil || addrs.POS == "" {
		t.Fatalf("cannot read the addresses from %q", listening)
	}
	d.pos, d.http = addrs.POS, addrs.HTTP
	return d
}

// wait returns the next log line containing what and each of also
// (other lines, such as a store-and-forward delivery logged meanwhile,
// are skipped).
func (d *daemon) wait(what string, also ...string) string {
	d.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				d.t.Fatalf("switchd exited before logging %q; its last lines:\n%s", what, strings.Join(d.seen, "\n"))
			}
			if d.seen = append(d.seen, l); len(d.seen) > 40 {
				d.seen = d.seen[1:]
			}
			if strings.Contains(l, what) && containsAll(l, also) {
				return l
			}
		case <-deadline:
			d.t.Fatalf("timed out waiting for switchd to log %q %q; its last lines:\n%s", what, also, strings.Join(d.seen, "\n"))
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// reload rewrites the configuration and sends SIGHUP.
func (d *daemon) reload(cfgText string) {
	d.t.Helper()
	if err := os.WriteFile(d.cfgPath, []byte(cfgText), 0o600); err != nil {
		d.t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		d.t.Fatal(err)
	}
}

// stop sends SIGTERM and waits for a clean exit; it returns the log lines
// written meanwhile.
func (d *daemon) stop() []string {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	var out []string
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if ok {
				out = append(out, l)
				continue
			}
			select {
			case err := <-d.exited:
				if err != nil {
					d.t.Fatalf("switchd after SIGTERM: %v\n%s", err, strings.Join(out, "\n"))
				}
			case <-deadline:
				d.t.Fatal("switchd did not exit after SIGTERM")
			}
			return out
		case <-deadline:
			d.t.Fatal("switchd did not stop on SIGTERM")
		}
	}
}

// demoTMK is the demo terminals' TMK.
var demoTMK = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}

// terminal dials the daemon's POS port and signs a demo terminal on.
func (d *daemon) terminal(id, merchant string) (*posclient.Terminal, *posclient.Client) {
	d.t.Helper()
	c, err := posclient.Dial(d.pos, posclient.Options{Timeout: 15 * time.Second})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	term := posclient.NewTerminal(c, id, merchant, demoTMK)
	if resp, err := term.SignOn(); err != nil || resp.ResponseCode != spec.RCApproved {
		d.t.Fatalf("sign-on of %s: %v %+v", id, err, resp)
	}
	return term, c
}
