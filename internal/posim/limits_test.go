package posim

import (
	"context"
	"strings"
	"testing"
	"time"

	switching "github.com/cardswitch/cardswitch/switch"
)

// TestSignOnRefusedNamesCause: terminals that the switch turns away (here
// its per-address limit, without the demo's allowance for this machine)
// end posim with one line naming how many failed and why.
func TestSignOnRefusedNamesCause(t *testing.T) {
	_, pos, _ := startSwitchWith(t, func(c *switching.Config) {
		c.POS.MaxConnectionsPerPeer = 2
		c.POS.TrustedNetworks = nil
	})
	terms, err := DemoTerminals(5)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{
		Addr: pos, Terminals: terms, Duration: 200 * time.Millisecond, Seed: 1,
		Timeout: 2 * time.Second, ReconnectFor: 300 * time.Millisecond,
	})
	if err == nil {
		t.Fatalf("5 terminals through a limit of 2: %s", res.Summary())
	}
	msg := err.Error()
	if !strings.Contains(msg, "3 of 5 terminals could not sign on") || !strings.Contains(msg, "connection limits") || strings.Count(msg, "\n") != 0 {
		t.Fatalf("error %q: want one line naming 3 of 5 and the connection limits", msg)
	}
}
