package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/admin"
)

const demoToken = "demo-admin-token"

// switchctlBinary builds switchctl into dir.
func switchctlBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "switchctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../switchctl").CombinedOutput(); err != nil {
		t.Fatalf("build switchctl: %v\n%s", err, out)
	}
	return bin
}

// TestDeclinedReversalDeadLettered runs the real switchd against a bank
// (gwsim) that declines reversals (--decline-reversals 05): a terminal's
// reversal of a bank consume, and of a pre-auth completion, is answered
// 00 at the POS and queued; the bank declines it, so it becomes a dead
// letter at once (docs/gateway-links.md "Store-and-forward"): logged,
// counted (switch_saf_dead_letters, switch_saf_sends_total{result=dead}),
// listed by `switchctl saf list --dead`. The consume stays debited at the
// bank, and the completion stands: its pre-auth stays closed (a second
// completion is 12). Once the bank takes reversals again, `switchctl saf
// retry` delivers each: the money comes back and the pre-auth reopens.
func TestDeclinedReversalDeadLettered(t *testing.T) {
	sim, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution, Faults: gwsim.Faults{DeclineReversals: "05"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	cfgText := demoConfigText(t, dir) + "saf: {initial_delay: 50ms, interval: 100ms, max_interval: 1s, max_attempts: 10000}\n"
	cfgText = withGateways(t, cfgText, linkYAML("demo-bank", sim.Addr(), ""))
	d := startDaemon(t, filepath.Join(dir, "switchd.yaml"), cfgText)
	ctl := switchctlBinary(t, dir)
	switchctl := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(ctl, append(args, "--admin", "http://"+d.http)...)
		cmd.Env = append(os.Environ(), "SWITCHCTL_TOKEN="+demoToken)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("switchctl %v: %v\n%s", args, err, out)
		}
		return out
	}
	term, _ := d.terminal("10000001", canteen)

	// do sends a request; while the link is still signing on (91) it
	// sends it again (a new STAN), for a bounded time.
	do := func(what string, build func() (*spec.POSMessage, error), want string) (*spec.POSMessage, *spec.POSMessage) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, err := build()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := term.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if resp.ResponseCode == want {
				return req, resp
			}
			if resp.ResponseCode != "91" || time.Now().After(deadline) {
				t.Fatalf("%s: %s, want %s", what, resp.ResponseCode, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	bank := func() (balance, held spec.Amount) {
		for _, a := range sim.Accounts() {
			if a.Card == bankCard {
				return a.Balance, a.Held
			}
		}
		t.Fatal("no bank account of the card")
		return 0, 0
	}

	consume, _ := do("consume", func() (*spec.POSMessage, error) { return term.Consume(bankCard, 1200, bankPIN) }, spec.RCApproved)
	authReq, authResp := do("pre-auth", func() (*spec.POSMessage, error) { return term.PreAuth(bankCard, 5000, bankPIN) }, spec.RCApproved)
	completion, _ := do("completion", func() (*spec.POSMessage, error) {
		return term.Completion(authReq, authResp, 4000, bankPIN)
	}, spec.RCApproved)
	if b, h := bank(); b != bankStart-1200-4000 || h != 0 {
		t.Fatalf("bank after consume and completion: balance %v held %v", b, h)
	}

	// The terminal reverses both: answered 00 once queued.
	for _, orig := range []*spec.POSMessage{consume, completion} {
		resp, err := term.Do(term.Reversal(orig, "98"))
		if err != nil || resp.ResponseCode != spec.RCApproved {
			t.Fatalf("reversal of %s: %v %+v", orig.ProcessingCode, err, resp)
		}
	}
	// The bank declines each: dead letters, logged.
	for range 2 {
		d.wait("reversal dead-lettered")
	}
	var page admin.SAFPage
	if err := json.Unmarshal(switchctl("saf", "list", "--gateway", "demo-bank", "--dead"), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 2 {
		t.Fatalf("switchctl saf list --dead: %+v, want 2 dead letters", page.Entries)
	}
	for _, e := range page.Entries {
		if !e.Dead || e.Link != "demo-bank" || e.Reason != "98" || e.Card != "622202*********0018" || e.Attempts < 1 {
			t.Fatalf("dead letter %+v", e)
		}
	}
	var queued admin.SAFPage
	if err := json.Unmarshal(switchctl("saf", "list", "--gateway", "demo-bank"), &queued); err != nil || len(queued.Entries) != 0 {
		t.Fatalf("queue besides the dead letters: %+v, %v", queued.Entries, err)
	}
	// The gauge follows the queue at the sender's next turn.
	waitFor(t, "the dead letters counted", func() bool {
		m := scrape(t, d.http)
		return m[`switch_saf_dead_letters{link="demo-bank"} 2`] && m[`switch_saf_sends_total{link="demo-bank",result="dead"} 2`]
	})

	// What a declined reversal leaves: the consume debited at the bank,
	// the completion standing — its pre-auth closed at the switch.
	if b, h := bank(); b != bankStart-1200-4000 || h != 0 {
		t.Fatalf("bank after the declined reversals: balance %v held %v", b, h)
	}
	do("second completion while the first's reversal is a dead letter", func() (*spec.POSMessage, error) {
		return term.Completion(authReq, authResp, 3000, bankPIN)
	}, spec.RCInvalidTransaction)

	// The bank takes reversals again; the operator retries both.
	if err := sim.SetFaults(gwsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		var got admin.SAFActionResponse
		if err := json.Unmarshal(switchctl("saf", "retry", fmt.Sprint(e.ID), "--gateway", "demo-bank"), &got); err != nil || got.Action != "retry" {
			t.Fatalf("switchctl saf retry %d: %+v, %v", e.ID, got, err)
		}
	}
	waitFor(t, "the retried reversals delivered", func() bool { b, h := bank(); return b == bankStart && h == 5000 })
	// Counted done once the switch has recorded each acknowledged.
	waitFor(t, "both retried reversals recorded done, no dead letter left", func() bool {
		m := scrape(t, d.http)
		return m[`switch_saf_sends_total{link="demo-bank",result="done"} 2`] && m[`switch_saf_dead_letters{link="demo-bank"} 0`]
	})
	// The completion's reversal acknowledged: the pre-auth is open again.
	do("completion after its first one's reversal was delivered", func() (*spec.POSMessage, error) {
		return term.Completion(authReq, authResp, 3000, bankPIN)
	}, spec.RCApproved)
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
	d.stop()
}

// scrape reads the daemon's metrics as a set of "name{labels} value"
// lines.
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "#") {
			out[l] = true
		}
	}
	return out
}
