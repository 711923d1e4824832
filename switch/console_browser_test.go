package switching

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/internal/posim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome to drive. Without one the browser
// test is skipped on a developer's machine and fails in CI (.ci/run sets
// CI and installs the Debian package chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium found: .ci/run installs the Debian package chromium")
	}
	t.Skip("no chromium found: install the Debian package chromium to run the console's browser test (CI always runs it)")
	return ""
}

// TestConsoleInBrowser drives headless Chromium through the DevTools
// protocol against a real daemon with a gateway link to gwsim: a wrong
// token is refused, the right one signs in, the numbers move under a
// bounded posim load (internal/posim), the link shows, and a dead letter
// is retried with its button and delivered to the bank.
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium(t)
	sw, sim := linkedSwitch(t, func(c *Config) { c.SAF.MaxAttempts = 2 })
	_, _, httpAddr := sw.Addrs()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute) // every step polls within its own bound
	defer cancel()

	text := func(sel string) string {
		t.Helper()
		var s string
		if err := chromedp.Run(ctx, chromedp.Text(sel, &s, chromedp.ByQuery)); err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// A wrong token is refused on the login form.
	if err := chromedp.Run(ctx,
		chromedp.Navigate("http://"+httpAddr+"/console"),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.SendKeys("#token", "wrong-token", chromedp.ByQuery),
		chromedp.Click("#login-button", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitFor("the wrong token refused", func() bool { return strings.Contains(text("#login-error"), "refused the token") })

	// The right one shows the dashboard.
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#token", "test-token", chromedp.ByQuery),
		chromedp.Click("#login-button", chromedp.ByQuery),
		chromedp.WaitVisible("#dashboard", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitFor("the link shown up", func() bool {
		return strings.Contains(text("#gateways"), demoBank) && strings.Contains(text("#gateways"), "up")
	})

	// posim provisions two terminals with funded campus cards through the
	// admin API and drives them at a bounded rate: the numbers move on the
	// page.
	prov, err := posim.Provision(ctx, posim.ProvisionOptions{Admin: "http://" + httpAddr, Token: "test-token", Terminals: 2})
	if err != nil {
		t.Fatal(err)
	}
	sims := prov.Terminals
	pos, _, _ := sw.Addrs()
	load, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	type runResult struct {
		res *posim.Result
		err error
	}
	ran := make(chan runResult, 1)
	go func() {
		res, err := posim.Run(load, posim.Options{Addr: pos, Terminals: sims, Duration: 60 * time.Second,
			Rate: 40, Mix: posim.MixConsume, Timeout: 10 * time.Second, Drain: 5 * time.Second, Seed: 1})
		ran <- runResult{res, err}
	}()
	number := func(sel string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(text(sel), "%")), 64)
		if err != nil {
			return -1
		}
		return v
	}
	waitFor("posim's transactions counted, a rate and an approval rate shown", func() bool {
		select {
		case r := <-ran:
			t.Fatalf("posim ended before the numbers moved: %v %+v", r.err, r.res)
		default:
		}
		return number("#transactions") >= 20 && number("#tps") > 0 && number("#approval") > 0 &&
			strings.HasSuffix(text("#p99"), "ms") && strings.HasSuffix(text("#approval"), "%")
	})
	first := number("#transactions")
	waitFor("the count still moving", func() bool { return number("#transactions") >= first+20 })
	waitFor("posim's terminals listed", func() bool {
		return strings.Contains(text("#terminals"), sims[0].ID) && strings.Contains(text("#networks"), "127.0.0.0/24")
	})
	stopLoad()
	var r runResult
	select {
	case r = <-ran:
	case <-time.After(60 * time.Second):
		t.Fatal("posim did not stop")
	}
	if r.err != nil || r.res.Approved == 0 {
		t.Fatalf("posim: %v %+v", r.err, r.res)
	}
	term := signedOn(t, sw, termCanteen, canteen)

	// A reversal the bank never answers becomes a dead letter; its retry
	// button sends it again and the bank gets its money back.
	_ = sim.SetFaults(gwsim.Faults{DropPercent: 100})
	expectRC(t, "no answer", do(t, term, mustReq(term.Consume(bankCard, 700, bankPIN)), nil), spec.RCNoAnswer)
	waitFor("the dead letter listed with its buttons", func() bool {
		var n int
		_ = chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll("#saf button.retry").length`, &n))
		return n == 1
	})
	if strings.Contains(text("#saf"), bankCard) {
		t.Fatal("the console shows a whole card number")
	}
	_ = sim.SetFaults(gwsim.Faults{})
	if err := chromedp.Run(ctx, chromedp.Click("#saf button.retry", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitFor("the retry confirmed", func() bool { return strings.Contains(text("#saf-message"), "retry "+demoBank) })
	waitFor("the retried reversal delivered", func() bool { return simBalance(t, sim) == bankStart })
}
