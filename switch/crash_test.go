package switching

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/pos"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// buildSwitchd builds the real daemon binary once per test.
func buildSwitchd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchd")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/switchd").CombinedOutput()
	if err != nil {
		t.Fatalf("build switchd: %v\n%s", err, out)
	}
	return bin
}

// freePort picks a loopback port for a daemon that is started, killed
// and started again on it. It is below the kernel's ephemeral range, so
// that no connection made meanwhile (by this or any parallel test
// process) is given it as its local port, and it is never handed out
// twice in one test process; a port picked from port 0 and closed again
// was taken by such a connection in a -race run before the daemon bound
// it ("bind: address already in use").
func freePort(t *testing.T) string {
	t.Helper()
	lo := ephemeralLow()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := lo - 1 - rand.IntN(min(lo-10000, 12000))
		if portsGiven[p] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		return addr
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return ""
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// ephemeralLow is the first port of the kernel's ephemeral range
// (32768 when it cannot be read, Linux's default).
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				lo = n
			}
		}
	}
	return lo
}

// daemon is a switchd process on a data directory that outlives it.
type daemon struct {
	t          *testing.T
	bin, dir   string
	cfg        string
	pos, admin string
	gateway    string
	recharge   string
	cmd        *exec.Cmd
}

func newDaemon(t *testing.T) *daemon {
	dir := t.TempDir()
	d := &daemon{t: t, bin: buildSwitchd(t), dir: dir, pos: freePort(t), admin: freePort(t), gateway: freePort(t), recharge: freePort(t)}
	cfg := strings.NewReplacer(
		"data_dir: ./data", "data_dir: "+filepath.Join(dir, "data"),
		"file: ./demo-lmk.key", "file: "+filepath.Join(dir, "lmk.key"),
		"addr: 127.0.0.1:8583", "addr: "+d.pos,
		"addr: 127.0.0.1:8584", "addr: "+d.gateway,
		"addr: 127.0.0.1:9583", "addr: "+d.admin,
		"http_addr: 127.0.0.1:9584", "http_addr: "+d.recharge,
		`"127.0.0.1:8590"`, `"127.0.0.1:1"`, // not a running demo's gwsim
		"level: info", "level: error",
	).Replace(string(demoConfig))
	d.cfg = filepath.Join(dir, "switchd.yaml")
	if err := os.WriteFile(d.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs switchd, with a crash point when given, and waits until it
// is ready.
func (d *daemon) start(crashPoint string) {
	d.t.Helper()
	d.cmd = exec.Command(d.bin, "--config", d.cfg)
	d.cmd.Env = append(os.Environ(), "CARDSWITCH_CRASH_POINT="+crashPoint)
	d.cmd.Stderr = os.Stderr
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { _ = d.cmd.Process.Kill(); _ = d.cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + d.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatal("switchd did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitKilled waits for the process to die by SIGKILL.
func (d *daemon) waitKilled() {
	d.t.Helper()
	err := d.cmd.Wait()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		d.t.Fatalf("switchd ended with %v, want killed", err)
	}
}

func (d *daemon) cash(pan string) string {
	d.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.admin+"/api/v1/cards/"+pan, nil)
	req.Header.Set("Authorization", "Bearer demo-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		d.t.Fatal(err)
	}
	return fmt.Sprint(v["cash"])
}

func (d *daemon) terminal(t *testing.T, signOn bool, prev *posclient.Terminal) *posclient.Terminal {
	t.Helper()
	c, err := posclient.Dial(d.pos, posclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if prev != nil {
		prev.Client = c
		return prev
	}
	tmk, _ := hex.DecodeString(demoTMK)
	term := posclient.NewTerminal(c, termCanteen, canteen, tmk)
	if signOn {
		if resp, err := term.SignOn(); err != nil || resp.ResponseCode != spec.RCApproved {
			t.Fatalf("sign-on: %v %v", resp, err)
		}
	}
	return term
}

// TestCrashAroundCommit kills switchd with SIGKILL just after, and just
// before, a consume's synced commit, restarts it, and lets the terminal do
// what a real one does: send the reversal. Either way the card ends as it
// began (docs/architecture.md, one unit of work per transaction).
func TestCrashAroundCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	for _, tc := range []struct {
		point         string
		cashAfterKill string // the consume's effect, seen after restart
	}{
		{pos.CrashAfterCommit, "987.66"},
		{pos.CrashBeforeCommit, "1000.00"},
	} {
		t.Run(tc.point, func(t *testing.T) {
			d := newDaemon(t)
			d.start(tc.point)
			term := d.terminal(t, true, nil)
			buy, err := term.Consume(cardStaff, 1234, "")
			if err != nil {
				t.Fatal(err)
			}
			if resp, err := term.Do(buy); err == nil {
				t.Fatalf("consume answered (%s) although the daemon was to die", resp.ResponseCode)
			}
			d.waitKilled()

			d.start("")
			if got := d.cash(cardStaff); got != tc.cashAfterKill {
				t.Fatalf("after restart: cash %s, want %s", got, tc.cashAfterKill)
			}
			// The terminal never got an answer: it reverses, on the batch
			// it signed on with (which survived the crash).
			term = d.terminal(t, false, term)
			rev, err := term.Do(term.Reversal(buy, spec.ReversalTimeout))
			if err != nil {
				t.Fatal(err)
			}
			expectRC(t, "reversal after crash", rev, spec.RCApproved)
			if got := d.cash(cardStaff); got != "1000.00" {
				t.Fatalf("after reversal: cash %s, want 1000.00", got)
			}
		})
	}
}

// TestCrashNeverReissuesRRN: switchd killed with SIGKILL just before a
// consume's commit — its RRN reserved (as one sent out on a gateway link
// before the commit is), its pair never journaled — and restarted: the
// next RRN is above it (docs/journal.md#sequences). Before the consume a
// balance inquiry is answered, so that the lost RRN is known: the pair
// after the inquiry's (one terminal, one request at a time), right above
// the last sequence stored; continuing above the stored sequences would
// issue it again.
func TestCrashNeverReissuesRRN(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	d := newDaemon(t)
	d.start(pos.CrashBeforeCommit)
	term := d.terminal(t, true, nil)
	bal, err := term.Balance(cardStaff, "")
	if err != nil {
		t.Fatal(err)
	}
	inquiry, err := term.Do(bal)
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "balance inquiry", inquiry, spec.RCApproved)
	n, err := strconv.ParseUint(inquiry.RRN[3:], 10, 64)
	if err != nil || len(inquiry.RRN) != 12 {
		t.Fatalf("inquiry RRN %q", inquiry.RRN)
	}
	lostRRN := fmt.Sprintf("%s%09d", inquiry.RRN[:3], n+2)
	lost, err := term.Consume(cardStaff, 200, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := term.Do(lost); err == nil {
		t.Fatalf("consume answered (%s) although the daemon was to die", resp.ResponseCode)
	}
	d.waitKilled()

	d.start("")
	term = d.terminal(t, false, term)
	buy, err := term.Consume(cardStaff, 300, "")
	if err != nil {
		t.Fatal(err)
	}
	next, err := term.Do(buy)
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "consume after restart", next, spec.RCApproved)
	if len(next.RRN) != 12 || next.RRN[:3] != lostRRN[:3] || next.RRN <= lostRRN {
		t.Fatalf("RRN after the crash %s, want above the lost consume's %s", next.RRN, lostRRN)
	}
	// The terminal reverses what it got no answer for.
	if rev, err := term.Do(term.Reversal(lost, spec.ReversalTimeout)); err != nil {
		t.Fatal(err)
	} else {
		expectRC(t, "reversal after crash", rev, spec.RCApproved)
	}
}
