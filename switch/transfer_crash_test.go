package switching

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// The crash tests of bank-transfer loads (docs/recharge.md): the real
// daemon, linked to an in-process gwsim, is killed with SIGKILL between
// the bank's approval and the card's credit, or at random moments under
// a kiosk's loads; after the restarts and the store-and-forward queue's
// drain, both sides' books agree.

// transferBindings binds campus cards to gwsim's demo accounts.
var transferBindings = []struct{ card, pin, bankCard, account string }{
	{cardStaff, pinStaff, "6222020000000000018", "1102000000000018"},
	{cardVisitor, pinVisitor, "6222020000000000026", "1102000000000026"},
}

// transferDaemon is a daemon whose demo bank link goes to an in-process
// gwsim, with short link and store-and-forward timers, no daily transfer
// limit, and the cards of transferBindings bound.
func transferDaemon(t *testing.T, crashPoint string) (*daemon, *gwsim.Sim) {
	t.Helper()
	sim, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	d := newDaemon(t)
	raw, err := os.ReadFile(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		`addresses: ["127.0.0.1:1"]`, `addresses: ["`+sim.Addr()+`"]
    send_timeout: 3s
    reconnect_wait: 20ms
    max_reconnect_wait: 200ms`,
		`max_daily_load: "1000.00"`, `max_daily_load: "0"`,
	).Replace(string(raw)) + "saf:\n  initial_delay: 50ms\n  interval: 100ms\n  max_interval: 400ms\n"
	if !strings.Contains(cfg, sim.Addr()) {
		t.Fatal("the demo configuration's bank link address was not replaced")
	}
	if err := os.WriteFile(d.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start(crashPoint)
	for _, b := range transferBindings {
		body, _ := json.Marshal(map[string]string{"gateway": demoBank, "bank_card": b.bankCard, "account": b.account, "operator": "test"})
		if code, out := d.api(t, "POST", "/api/v1/cards/"+b.card+"/binding", body); code != http.StatusCreated {
			t.Fatalf("bind %s: %d %s", b.card, code, out)
		}
	}
	return d, sim
}

// api calls the daemon's admin API.
func (d *daemon) api(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.admin+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer demo-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// kiosk plays the demo kiosk against d across restarts: it reconnects,
// keeping its batch and keys, as a real terminal does.
type kiosk struct {
	d    *daemon
	term *posclient.Terminal
	up   bool // the current connection has not failed
}

// connect makes sure the kiosk has a connection, dialling when it has
// none (or its last one failed).
func (k *kiosk) connect(t *testing.T) bool {
	if k.up {
		return true
	}
	c, err := posclient.Dial(k.d.pos, posclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		return false
	}
	t.Cleanup(func() { c.Close() })
	if k.term != nil {
		k.term.Client = c
		k.up = true
		return true
	}
	tmk, _ := hex.DecodeString(demoTMK)
	k.term = posclient.NewTerminal(c, termKiosk, canteen, tmk)
	resp, err := k.term.SignOn()
	if err != nil || resp.ResponseCode != spec.RCApproved {
		if err == nil {
			t.Errorf("kiosk sign-on answered %s", resp.ResponseCode)
		} // else the daemon was killed during the sign-on: sign on again
		c.Close()
		k.term = nil
		return false
	}
	k.up = true
	return true
}

// send sends m once; nil when no answer came.
func (k *kiosk) send(m *spec.POSMessage) *spec.POSMessage {
	resp, err := k.term.Do(m)
	if err != nil {
		k.term.Client.Close()
		k.up = false
		return nil
	}
	return resp
}

// reverse sends the reversal of an unanswered request until it is
// answered, reconnecting while the daemon is down, within a bound.
func (k *kiosk) reverse(t *testing.T, orig *spec.POSMessage) bool {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if k.connect(t) {
			if resp := k.send(k.term.Reversal(orig, spec.ReversalTimeout)); resp != nil {
				if resp.ResponseCode != spec.RCApproved {
					t.Errorf("reversal answered %s", resp.ResponseCode)
					return false
				}
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("reversal unanswered for a minute")
	return false
}

// drainAndCompare waits for the store-and-forward queue to drain, then
// checks both sides' books: each card holds its opening cash plus the
// loads the kiosk saw approved and did not reverse; gwsim's transfer legs
// that stand (approved, not reversed) are exactly those, card by card;
// every bank account moved by exactly that; no original was reversed
// twice; and, once the daemon is gone, the ledger's own check passes (as
// switchctl ledger check).
func drainAndCompare(t *testing.T, d *daemon, sim *gwsim.Sim, opening, credited map[string]ledger.Fen) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, q := d.api(t, "GET", "/api/v1/saf", nil)
		_, dead := d.api(t, "GET", "/api/v1/saf?dead=true", nil)
		var qp, dp struct{ Entries []json.RawMessage }
		if json.Unmarshal(q, &qp) == nil && json.Unmarshal(dead, &dp) == nil && len(qp.Entries) == 0 && len(dp.Entries) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store-and-forward queue did not drain: %s %s", q, dead)
		}
		time.Sleep(50 * time.Millisecond)
	}
	standing := map[string]ledger.Fen{}
	reversedOnce := map[string]int{}
	for _, e := range sim.Entries() {
		if e.Op == gwsim.OpLoad && e.RC == spec.RCApproved && !e.Reversed {
			standing[e.Beneficiary] += ledger.Fen(e.Amount)
		}
		if e.Delta != 0 && e.Original != "" && e.Op != gwsim.OpLoad {
			reversedOnce[e.Original]++
		}
	}
	for orig, n := range reversedOnce {
		if n > 1 {
			t.Errorf("original %s given back %d times", orig, n)
		}
	}
	for _, b := range transferBindings {
		cash, err := ledger.ParseYuan(d.cash(b.card))
		if err != nil {
			t.Fatal(err)
		}
		if want := opening[b.card] + credited[b.card]; cash != want {
			t.Errorf("card %s: cash %s, want opening %s + acknowledged loads %s", b.card, cash, opening[b.card], credited[b.card])
		}
		if standing[b.card] != credited[b.card] {
			t.Errorf("card %s: the bank's standing transfer legs %s, the kiosk's acknowledged loads %s", b.card, standing[b.card], credited[b.card])
		}
		for _, a := range sim.Accounts() {
			if a.Card == b.bankCard && ledger.Fen(a.Opening-a.Balance) != credited[b.card] {
				t.Errorf("bank account of %s moved %s, want %s", b.card, ledger.Fen(a.Opening-a.Balance), credited[b.card])
			}
		}
	}
	if err := sim.Verify(); err != nil {
		t.Error(err)
	}
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	db, err := pebble.Open(filepath.Join(d.dir, "data"), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := ledger.Check(db)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger check: %v %v", err, rep.Violations)
	}
}

func daemonCash(t *testing.T, d *daemon, pan string) ledger.Fen {
	t.Helper()
	v, err := ledger.ParseYuan(d.cash(pan))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTransferCrashPoints kills switchd just after the bank approved a
// transfer load's debit (nothing of it durable) and just after the
// credit's commit. The kiosk, without an answer, reverses. Either way the
// card and the bank account end as they began: the open bank leg is
// reversed at restart, or the kiosk's reversal takes the credit back and
// reverses the debit.
func TestTransferCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	for _, point := range []string{"transfer-between-legs", "transfer-after-commit"} {
		t.Run(point, func(t *testing.T) {
			d, sim := transferDaemon(t, point)
			b := transferBindings[0]
			opening := map[string]ledger.Fen{}
			for _, x := range transferBindings {
				opening[x.card] = daemonCash(t, d, x.card)
			}
			k := &kiosk{d: d}
			if !k.connect(t) {
				t.Fatal("kiosk did not connect")
			}
			var resp *spec.POSMessage
			var req *spec.POSMessage
			deadline := time.Now().Add(60 * time.Second)
			for {
				// 91 until the link has signed on.
				var err error
				if req, err = k.term.TransferLoad(b.card, 1234, b.pin); err != nil {
					t.Fatal(err)
				}
				if resp = k.send(req); resp == nil || resp.ResponseCode != "91" || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if resp != nil {
				t.Fatalf("load answered %s although the daemon was to die", resp.ResponseCode)
			}
			d.waitKilled()
			if got, _ := sim.Balance(b.bankCard); got == bankStart {
				t.Fatal("the bank was not debited before the crash")
			}
			d.start("")
			if !k.reverse(t, req) {
				return
			}
			drainAndCompare(t, d, sim, opening, map[string]ledger.Fen{})
		})
	}
}

// maxCrashLoads bounds the kiosk's loads in one crash run.
const maxCrashLoads = 20_000

// TestTransferCrash: a kiosk loads cards from their bound bank accounts
// while switchd is killed with SIGKILL at random moments
// (TRANSFER_CRASH_KILLS times, default 2; make crashtest-transfer runs
// 10) and gwsim drops 5% of its answers after debiting. The kiosk
// reverses every load it got no answer to, as a real one does. At the
// end both sides' books agree and the ledger is consistent: no money
// taken and not loaded, none loaded twice.
func TestTransferCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	kills := 2
	if s := os.Getenv("TRANSFER_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			t.Fatalf("TRANSFER_CRASH_KILLS=%q: want 1..100", s)
		}
		kills = n
	}
	d, sim := transferDaemon(t, "")
	if err := sim.SetFaults(gwsim.Faults{DropPercent: 5}); err != nil {
		t.Fatal(err)
	}
	opening := map[string]ledger.Fen{}
	for _, b := range transferBindings {
		opening[b.card] = daemonCash(t, d, b.card)
	}
	var (
		mu       sync.Mutex
		credited = map[string]ledger.Fen{}
		counts   = map[string]int{}
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(7, 42))
		k := &kiosk{d: d}
		for i := 0; i < maxCrashLoads; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if !k.connect(t) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			b := transferBindings[rng.IntN(len(transferBindings))]
			amount := ledger.Fen(100 + rng.IntN(900))
			req, err := k.term.TransferLoad(b.card, spec.Amount(amount), b.pin)
			if err != nil {
				t.Error(err)
				return
			}
			resp := k.send(req)
			mu.Lock()
			switch {
			case resp == nil:
				counts["unanswered"]++
				mu.Unlock()
				if !k.reverse(t, req) {
					return
				}
				continue
			case resp.ResponseCode == spec.RCApproved:
				credited[b.card] += amount
			case resp.ResponseCode == spec.RCNoAnswer, resp.ResponseCode == "91",
				// A fast machine may fill a card to its maximum balance
				// or empty a bank account: declined, nothing moved.
				resp.ResponseCode == spec.RCExceedsAmountLimit, resp.ResponseCode == spec.RCInsufficientFunds:
			default:
				t.Errorf("load answered %s", resp.ResponseCode)
			}
			counts[resp.ResponseCode]++
			mu.Unlock()
		}
	}()
	approved := func() int { mu.Lock(); defer mu.Unlock(); return counts[spec.RCApproved] }
	for k := 1; k <= kills; k++ {
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		d.waitKilled()
		d.start("")
	}
	// After the last restart the kiosk loads until one more load is
	// approved (the link signs on again first; a loaded machine may take
	// seconds), within a bound.
	before := approved()
	time.Sleep(500 * time.Millisecond)
	for deadline := time.Now().Add(60 * time.Second); approved() == before && time.Now().Before(deadline); {
		select {
		case <-done:
			deadline = time.Time{} // the kiosk stopped (failed or done)
		case <-time.After(20 * time.Millisecond):
		}
	}
	close(stop)
	<-done
	_ = sim.SetFaults(gwsim.Faults{})
	if t.Failed() {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if counts[spec.RCApproved] == 0 {
		t.Fatalf("no load approved: %v", counts)
	}
	drainAndCompare(t, d, sim, opening, credited)
	t.Logf("%d kills; kiosk answers %v; books agree, ledger consistent", kills, counts)
}
