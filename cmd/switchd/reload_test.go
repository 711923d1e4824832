package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

const (
	canteen   = "898310000000001"
	bankCard  = "6222020000000000018" // gwsim demo account, PIN 123456
	bankPIN   = "123456"
	bankStart = spec.Amount(1_000_000)
)

// TestSIGHUPReloadsWithConnectionsOpen runs the real switchd: a POS
// connection opened before SIGHUP is still served after the reload, the
// terminal added by the reloaded file can sign on, and SIGTERM then stops
// the daemon cleanly.
func TestSIGHUPReloadsWithConnectionsOpen(t *testing.T) {
	dir := t.TempDir()
	cfgText := demoConfigText(t, dir)
	d := startDaemon(t, filepath.Join(dir, "switchd.yaml"), cfgText)
	echo := func(c *posclient.Client, id, merchant string) {
		t.Helper()
		resp, err := c.Exchange(&spec.POSMessage{MTI: "0820", TerminalID: id, MerchantID: merchant,
			Reserved60: spec.Field60{Type: "00", Batch: "000000", NetworkCode: "301"}}, nil)
		if err != nil || resp.ResponseCode != spec.RCApproved {
			t.Fatalf("echo %s: %v %+v", id, err, resp)
		}
	}
	held, err := posclient.Dial(d.pos, posclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	echo(held, "10000001", canteen)

	// A new terminal in the file, then SIGHUP.
	cfgText = replaceOnce(t, cfgText, "\n  terminals:\n", "\n  terminals:\n    - {id: \"10000077\", merchant: \"898310000000001\", tmk: 0123456789ABCDEFFEDCBA9876543210}\n")
	d.reload(cfgText)
	if l := d.wait("configuration reloaded"); !strings.Contains(l, "10000077") {
		t.Fatalf("reload log %q does not name the new terminal", l)
	}
	echo(held, "10000001", canteen) // the same connection, still served
	d.terminal("10000077", canteen)

	// A broken file: logged, nothing changes, still serving.
	d.reload(cfgText + "ledgr: {}\n")
	d.wait("configuration not reloaded")
	echo(held, "10000001", canteen)
	d.stop()
}

// TestSIGHUPReloadsLinks runs the real switchd with two banks (gwsim): a
// terminal's connection held open throughout is served by the link a
// reload adds, the unchanged link keeps its connection (its bank sees no
// second sign-on), a link holding work is not removed (the reload is
// refused, logged), the removed link signs off, and log.level takes effect
// without a restart.
func TestSIGHUPReloadsLinks(t *testing.T) {
	simA, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	defer simA.Close()
	simB, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	defer simB.Close()
	dir := t.TempDir()
	base := demoConfigText(t, dir) + "saf: {initial_delay: 100ms, interval: 200ms, max_interval: 1s, max_attempts: 10000}\n"
	// config: the links given (name, line), the bank BIN routed to dest,
	// the log level.
	config := func(dest, level string, ls ...[2]string) string {
		var lines, keys string
		for _, l := range ls {
			lines += l[1]
			keys += "    - {link: " + l[0] + ", zmk: \"" + gwsim.DemoZMK + "\"}\n"
		}
		c := withGateways(t, base, lines)
		c = replaceOnce(t, c, "destination: demo-bank", "destination: "+dest)
		c = replaceOnce(t, c, "level: info", "level: "+level)
		return replaceOnce(t, c, "    - {link: demo-bank, zmk: \""+gwsim.DemoZMK+"\"}\n", keys)
	}
	linkA := [2]string{"demo-bank", linkYAML("demo-bank", simA.Addr(), "")}
	linkB := [2]string{"bank-b", linkYAML("bank-b", simB.Addr(), "")}

	d := startDaemon(t, filepath.Join(dir, "switchd.yaml"), config("demo-bank", "info", linkA))
	term, _ := d.terminal("10000001", canteen) // held open throughout
	// consume sends a consume; while its link is still signing on (91)
	// it tries again, for a bounded time.
	consume := func(what string, amount spec.Amount, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, err := term.Consume(bankCard, amount, bankPIN)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := term.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if resp.ResponseCode == want {
				return
			}
			if resp.ResponseCode != "91" || time.Now().After(deadline) {
				t.Fatalf("%s: %+v, want %s", what, resp, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	consume("consume at bank A", 100, spec.RCApproved)

	// A reversal stuck in bank A's queue: removing bank A is refused.
	if err := simA.SetFaults(gwsim.Faults{DropPercent: 100}); err != nil {
		t.Fatal(err)
	}
	consume("consume at bank A, answer lost", 200, spec.RCNoAnswer)
	d.reload(config("bank-b", "info", linkB))
	if l := d.wait("configuration not reloaded"); !strings.Contains(l, "demo-bank cannot be removed") {
		t.Fatalf("refused reload logged %q", l)
	}
	if err := simA.SetFaults(gwsim.Faults{}); err != nil {
		t.Fatal(err)
	}

	// Add bank B, route the BIN there, log at debug.
	d.reload(config("bank-b", "debug", linkA, linkB))
	if l := d.wait("links_added"); !strings.Contains(l, "bank-b") {
		t.Fatalf("reload log %q does not name the added link", l)
	}
	consume("consume at bank B", 300, spec.RCApproved)
	// The approval is logged at debug now (bank A's reversal, delivered
	// meanwhile, logs its "rc": "00" at info: not this line).
	if l := d.wait(`"rc": "00"`, "\ttransaction\t", `"link": "bank-b"`); !strings.Contains(l, "DEBUG") {
		t.Fatalf("debug transaction line %q", l)
	}
	if b, _ := simB.Balance(bankCard); b != bankStart-300 {
		t.Fatalf("bank B balance %v", b)
	}
	waitFor(t, "bank A's reversal delivered", func() bool {
		b, _ := simA.Balance(bankCard)
		return b == bankStart-100
	})

	// Remove bank A: signed off, and its connection was the first one
	// throughout (one sign-on).
	d.reload(config("bank-b", "debug", linkB))
	if l := d.wait("links_removed"); !strings.Contains(l, "demo-bank") {
		t.Fatalf("reload log %q does not name the removed link", l)
	}
	waitFor(t, "bank A signed off", func() bool { return simA.Stats().SignOffs == 1 })
	if n := simA.Stats().SignOns; n != 1 {
		t.Fatalf("bank A saw %d sign-ons, want 1: reloads must not reconnect an unchanged link", n)
	}
	consume("consume at bank B after bank A left", 400, spec.RCApproved)
	d.stop()
	if n := simB.Stats().SignOffs; n != 1 {
		t.Fatalf("bank B saw %d sign-offs at shutdown, want 1", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
