package pos

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/local"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// probeOriginals is a links journal holding a pre-auth at one terminal,
// counting the terminals PreAuthAt looks at.
type probeOriginals struct {
	at     string // the terminal its pre-auth was forwarded from, "" none
	probed int
}

func (o *probeOriginals) ForwardedOn(string, uint32, uint32) (string, bool, error) {
	return "", false, nil
}
func (o *probeOriginals) RefundedOn(string, uint32, uint32, string) (string, bool, error) {
	return "", false, nil
}
func (o *probeOriginals) PreAuthAt(terminals []string, _, _ uint32, _, _ string) (string, string, bool, error) {
	o.probed += len(terminals)
	for _, id := range terminals {
		if id == o.at {
			return id, "bank", true, nil
		}
	}
	return "", "", false, nil
}

// merchantTerminals is a merchant with 256 other terminals.
type merchantTerminals struct{ Terminals }

func (merchantTerminals) OfMerchant(_, except string, max int) []string {
	var ids []string
	for i := 0; len(ids) < max && i < 256; i++ {
		if id := fmt.Sprintf("T%07d", i); id != except {
			ids = append(ids, id)
		}
	}
	return ids
}

// ledgerPreAuths is a local ledger holding a pre-auth of one card at one
// terminal's batch 1, STAN 7.
type ledgerPreAuths struct{ terminal, card string }

func (l ledgerPreAuths) LocalPreAuth(terminal string, batch, stan uint32, card string) (bool, error) {
	return terminal == l.terminal && batch == 1 && stan == 7 && card == l.card, nil
}

type namedDest string

func (d namedDest) Name() string { return string(d) }
func (namedDest) Execute(context.Context, *txn.Transaction, txn.Record) (txn.Outcome, error) {
	return txn.Outcome{}, nil
}

type namedDests struct{ Destinations }

func (namedDests) Destination(name string) (txn.Destination, bool) { return namedDest(name), true }

// TestOriginalDestinationProbe: a completion of a pre-auth the local
// ledger holds at its own terminal goes to the ledger without probing the
// merchant's other terminals' links records; one the ledger does not
// hold there (another card, another STAN, no ledger lookup) still finds a
// forwarded pre-auth at another terminal.
func TestOriginalDestinationProbe(t *testing.T) {
	const card, other = "6230151000000000012", "6222020000000000018"
	for _, c := range []struct {
		name       string
		ledger     LocalPreAuths
		card       string
		stan       uint32
		forwarded  string // terminal of the forwarded pre-auth
		wantDest   string
		wantProbed int
	}{
		{"local pre-auth at its own terminal", ledgerPreAuths{"T0000001", card}, card, 7, "", local.Name, 1},
		{"local pre-auth, forwarded one elsewhere too", ledgerPreAuths{"T0000001", card}, card, 7, "T0000005", local.Name, 1},
		{"another card", ledgerPreAuths{"T0000001", card}, other, 7, "T0000005", "bank", 256},
		{"another STAN", ledgerPreAuths{"T0000001", card}, card, 8, "", local.Name, 256},
		{"no ledger lookup", nil, card, 7, "", local.Name, 256},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := &probeOriginals{at: c.forwarded}
			p := &Protocol{originals: o, terminals: merchantTerminals{}, localPreAuths: c.ledger,
				dests: namedDests{}, log: zap.NewNop()}
			tx := &txn.Transaction{Type: spec.PreAuthCompletion, Card: c.card, Terminal: "T0000001", Merchant: "M1",
				Batch: 1, STAN: 20, AuthCode: "123456", Original: txn.Original{Present: true, Batch: 1, STAN: c.stan}}
			d, rc := p.originalDestination(tx, namedDest(local.Name))
			if rc != "" {
				t.Fatalf("rc %s", rc)
			}
			if d.Name() != c.wantDest || o.probed != c.wantProbed {
				t.Fatalf("went to %s after probing %d terminals, want %s after %d", d.Name(), o.probed, c.wantDest, c.wantProbed)
			}
		})
	}
}
