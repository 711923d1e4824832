package cli

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/internal/posim/posimtest"
	switching "github.com/cardswitch/cardswitch/switch"
	"github.com/cardswitch/cardswitch/switch/links"
)

// TestKioskTransfer: posim kiosk loads the staff card from its bound
// bank account at gwsim through the real switch, and shows the balance.
func TestKioskTransfer(t *testing.T) {
	sim, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sw, pos, _ := posimtest.StartSwitch(t, func(cfg *switching.Config) {
		cfg.Gateways = append([]links.Config(nil), cfg.Gateways...)
		cfg.Gateways[0].Addresses = []string{sim.Addr()}
		cfg.Gateways[0].ReconnectWait = 20 * time.Millisecond
		cfg.Gateways[0].MaxReconnectWait = 200 * time.Millisecond
	})
	_, _, httpAddr := sw.Addrs()
	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/cards/6230151000000000020/binding",
		strings.NewReader(`{"gateway":"demo-bank","bank_card":"6222020000000000018","account":"1102000000000018","operator":"test"}`))
	req.Header.Set("Authorization", "Bearer demo-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("bind: HTTP %d", resp.StatusCode)
	}
	// The link signs on by itself; until then a load is answered 91.
	args := []string{"kiosk", "transfer", "--addr", pos, "--card", "6230151000000000020", "--pin", "654321", "--amount", "100.00"}
	var out, errs bytes.Buffer
	deadline := time.Now().Add(15 * time.Second)
	for {
		out.Reset()
		errs.Reset()
		if rc := Main(args, &out, &errs); rc == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "rc=00") || !strings.Contains(out.String(), "cash=1100.00") ||
		strings.Contains(out.String(), "6230151000000000020") {
		t.Fatalf("kiosk transfer: %q %q", out.String(), errs.String())
	}
	if b, _ := sim.Balance("6222020000000000018"); b != 990000 {
		t.Fatalf("bank balance %v, want 9900.00", b)
	}
	out.Reset()
	if rc := Main([]string{"kiosk", "balance", "--addr", pos, "--card", "6230151000000000020", "--pin", "654321"}, &out, &errs); rc != 0 ||
		!strings.Contains(out.String(), "cash=1100.00") {
		t.Fatalf("kiosk balance: rc %d %q %q", rc, out.String(), errs.String())
	}
	// A decline exits 1 and says which.
	out.Reset()
	if rc := Main([]string{"kiosk", "transfer", "--addr", pos, "--card", "6230151000000000012", "--pin", "123456", "--amount", "1.00"}, &out, &errs); rc != 1 ||
		!strings.Contains(out.String(), "rc=57") {
		t.Fatalf("unbound card: rc %d %q", rc, out.String())
	}
}

func TestKioskUsage(t *testing.T) {
	for _, args := range [][]string{
		{"kiosk", "nope"},
		{"kiosk", "transfer", "--pin", "1"},
		{"kiosk", "transfer", "--card", "6230151000000000020"},
		{"kiosk", "transfer", "--card", "6230151000000000020", "--amount", "1.001"},
		{"kiosk", "balance", "--card", "6230151000000000020", "--tmk", "00"},
	} {
		var out, errs bytes.Buffer
		if rc := Main(args, &out, &errs); rc != 2 || errs.Len() == 0 {
			t.Errorf("%v: rc %d, stderr %q", args, rc, errs.String())
		}
	}
	var out, errs bytes.Buffer
	if rc := Main([]string{"kiosk", "--help"}, &out, &errs); rc != 0 || !strings.Contains(out.String(), "posim kiosk") {
		t.Errorf("help: rc %d %q", rc, out.String())
	}
}
