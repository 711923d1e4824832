package switching

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

const longToken = "0123456789abcdef0123456789abcdef" // 32 characters

func TestAdminTokenRules(t *testing.T) {
	t.Setenv("SWITCH_TEST_TOKEN", longToken)
	t.Setenv("SWITCH_TEST_EMPTY", "")
	cases := []struct{ name, yaml, want string }{
		{"short token", "lmk: {file: k}\nhttp: {admin_token: demo-admin-token}\n", "admin token is 16 characters, want at least 32"},
		{"short token from env", "lmk: {file: k}\nhttp: {admin_token_env: SHORT_TOKEN}\n", "want at least 32"},
		{"env unset", "lmk: {file: k}\nhttp: {admin_token_env: SWITCH_TEST_UNSET_VAR}\n", "SWITCH_TEST_UNSET_VAR is not set"},
		{"env empty", "lmk: {file: k}\nhttp: {admin_token_env: SWITCH_TEST_EMPTY}\n", "SWITCH_TEST_EMPTY is not set"},
		{"token and unset env", "lmk: {file: k}\nhttp: {admin_token: " + longToken + ", admin_token_env: SWITCH_TEST_UNSET_VAR}\n", "not both"},
		{"token and env", "lmk: {file: k}\nhttp: {admin_token: " + longToken + ", admin_token_env: SWITCH_TEST_TOKEN}\n", "not both"},
		{"demo short token off loopback", "demo: true\nlmk: {file: k}\nhttp: {addr: '0.0.0.0:9583', admin_token: demo-admin-token}\n", "only the demo configuration on a loopback address"},
		{"not an address", "lmk: {file: k}\npos: {addr: notanaddr}\n", `pos.addr: "notanaddr" is not host:port`},
		{"bad port", "lmk: {file: k}\ngateway: {addr: '127.0.0.1:99999'}\n", "gateway.addr"},
		{"bad host", "lmk: {file: k}\nhttp: {addr: 'not an address:80'}\n", "http.addr"},
	}
	t.Setenv("SHORT_TOKEN", "short")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	for _, ok := range []string{
		"lmk: {file: k}\nhttp: {admin_token: " + longToken + "}\n",
		"lmk: {file: k}\nhttp: {admin_token_env: SWITCH_TEST_TOKEN}\n",
		"lmk: {file: k}\n", // no token: the admin API refuses everything
		"demo: true\nlmk: {file: k}\nhttp: {addr: '127.0.0.1:9583', admin_token: demo-admin-token}\n",
		"demo: true\nlmk: {file: k}\nhttp: {addr: 'localhost:9583', admin_token: demo-admin-token}\n",
		"lmk: {file: k}\npos: {addr: '[::1]:0'}\ngateway: {addr: ':8584'}\n",
	} {
		if _, err := ParseConfig([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if _, err := DemoConfig(); err != nil {
		t.Fatalf("the demo configuration with its contract token: %v", err)
	}
}

// TestBadConfigCreatesNothing: switchd with a mistyped address stops before
// it creates key material or its data directory.
func TestBadConfigCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg, err := DemoConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.LMK = LMKConfig{File: filepath.Join(dir, "lmk.key"), CreateDemo: true}
	cfg.POS.Addr = "notanaddr"
	cfg.Gateway.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0" // not the demo's: others may hold them
	if _, err := New(cfg, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "pos.addr") {
		t.Fatalf("New: %v, want a pos.addr error", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a bad configuration created %v", ents)
	}
}

// TestLockedDataDirNamesHolder: a second switchd on the same data
// directory is told which process holds it.
func TestLockedDataDirNamesHolder(t *testing.T) {
	if os.Getenv("SWITCH_TEST_HOLD_LOCK") != "" {
		return // the helper process's own run of this test
	}
	sw := testSwitch(t)
	// In the same process.
	cfg := *sw.cfg
	if _, err := New(&cfg, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "locked by this process (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Fatalf("second open in the same process: %v", err)
	}
	// From another process: this test binary, holding the lock of a
	// fresh data directory until its stdin closes.
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldLockHelper$")
	cmd.Env = append(os.Environ(), "SWITCH_TEST_HOLD_LOCK="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "locked") {
		t.Fatalf("helper: %q %v", line, err)
	}
	cfg.DataDir = dir
	_, err := New(&cfg, zap.NewNop())
	if want := "locked by process " + strconv.Itoa(cmd.Process.Pid); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("open a directory another process holds: %v, want %q", err, want)
	}
}

// TestHoldLockHelper is the helper process of TestLockedDataDirNamesHolder.
func TestHoldLockHelper(t *testing.T) {
	dir := os.Getenv("SWITCH_TEST_HOLD_LOCK")
	if dir == "" {
		t.Skip("helper process only")
	}
	l, err := vfs.Default.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Stdout.WriteString("locked\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

func TestConnectionPolicyConfig(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"not a network", "lmk: {file: k}\npos: {trusted_networks: {notacidr: 5}}\n", `pos.trusted_networks: "notacidr" is not a network in CIDR notation`},
		{"zero allowance", "lmk: {file: k}\npos: {trusted_networks: {'10.0.0.0/8': 0}}\n", "pos.trusted_networks 10.0.0.0/8: 0 connections, want 1..100000"},
		{"no first-frame deadline", "lmk: {file: k}\npos: {first_frame_timeout: 0s}\n", "pos.first_frame_timeout 0s: want > 0 and <= 1h"},
		{"per-terminal too high", "lmk: {file: k}\npos: {max_connections_per_terminal: 65}\n", "pos.max_connections_per_terminal 65: want 1..64"},
		{"no unauthenticated budget", "lmk: {file: k}\ngateway: {unauthenticated_per_second: 0}\n", "gateway.unauthenticated_per_second 0: want 1..100000"},
	} {
		if _, err := ParseConfig([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	c, err := ParseConfig([]byte("lmk: {file: k}\npos:\n  max_connections_per_peer: 10\n  unauthenticated_per_second: 100\n  trusted_networks: {'10.0.0.0/8': 2000, '10.1.0.0/16': 50, '192.168.0.0/16': 5, '::1/128': 300}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// The acceptor gets the policy as configured (its workings are tested
	// in switch/transport).
	tc := c.POS.transport()
	if tc.MaxConnectionsPerPeer != 10 || tc.UnauthenticatedPerSecond != 100 || len(tc.TrustedNetworks) != 4 || tc.TrustedNetworks["10.1.0.0/16"] != 50 ||
		tc.FirstFrameTimeout != time.Duration(c.POS.FirstFrameTimeout) || tc.MaxConnectionsPerTerminal != c.POS.MaxConnectionsPerTerminal {
		t.Fatalf("transport config %+v from %+v", tc, c.POS)
	}

}
