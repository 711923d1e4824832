package posim

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	switching "github.com/cardswitch/cardswitch/switch"
	"github.com/cardswitch/cardswitch/switch/links"
)

// TestBankCardsThroughGateway drives the demo switch with posim's bank
// cards, forwarded over the demo configuration's gateway link to an
// in-process gwsim: every consume carries a PIN that the switch translates
// to the link's ZPK and the bank verifies, MACs are checked both ways, and
// at the end the bank's balances equal opening plus what posim's ack log
// acknowledged (reversals included, once the switch's store-and-forward
// has delivered them), and its holds what the acknowledged pre-auths
// still hold (the preauth mix: pre-auths, completions, cancels).
func TestBankCardsThroughGateway(t *testing.T) {
	for _, mix := range []Mix{MixMixed, MixPreAuth} {
		t.Run(mix.Name, func(t *testing.T) { bankCardsThroughGateway(t, mix) })
	}
}

func bankCardsThroughGateway(t *testing.T, mix Mix) {
	sim, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	_, pos, _ := startSwitchWith(t, func(cfg *switching.Config) {
		if len(cfg.Gateways) != 1 || cfg.Gateways[0].Name != "demo-bank" {
			t.Fatalf("demo gateways %+v: want the demo-bank link", cfg.Gateways)
		}
		cfg.Gateways = append([]links.Config(nil), cfg.Gateways...)
		cfg.Gateways[0].Addresses = []string{sim.Addr()}
		cfg.Gateways[0].ReconnectWait = 20 * time.Millisecond
		cfg.Gateways[0].MaxReconnectWait = 200 * time.Millisecond
		cfg.SAF = links.SAFConfig{InitialDelay: 50 * time.Millisecond, Interval: 100 * time.Millisecond, MaxInterval: 400 * time.Millisecond}
	})
	// The link signs on and exchanges keys by itself; wait for that.
	deadline := time.Now().Add(15 * time.Second)
	for sim.Stats().KeyExchanges == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the switch never exchanged keys with gwsim")
		}
		time.Sleep(10 * time.Millisecond)
	}

	terms, err := DemoTerminals(3)
	if err != nil {
		t.Fatal(err)
	}
	bank := DemoBankCards()
	if terms, err = WithCards(terms, CardsBank, bank); err != nil {
		t.Fatal(err)
	}
	var ack bytes.Buffer
	res, err := Run(context.Background(), Options{Addr: pos, Terminals: terms, Duration: 1500 * time.Millisecond,
		Rate: 60, Mix: mix, AckLog: NewAckLog(&ack, NewCardIndex(RunCards(terms, nil))), Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Unresolved != 0 || res.Approved == 0 {
		t.Fatalf("%s unresolved %d", res.Summary(), res.Unresolved)
	}
	st := sim.Stats()
	if st.MACErrors != 0 || st.Approved == 0 {
		t.Fatalf("gwsim %+v", st)
	}
	for _, e := range sim.Entries() {
		if e.Op == gwsim.OpConsume && e.RC == spec.RCIncorrectPIN {
			t.Fatalf("gwsim refused the PIN of consume %s: the translation to the ZPK is wrong", e.Serial)
		}
	}
	acks, err := ReadAcks(&ack, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	opening := map[string]spec.Amount{}
	for _, a := range sim.Accounts() {
		for _, c := range bank {
			if c.PAN == a.Card {
				opening[a.Card] = a.Opening
			}
		}
	}
	balance := func(pan string) (spec.Amount, spec.Amount, error) {
		for _, a := range sim.Accounts() {
			if a.Card == pan {
				return a.Balance, a.Held, nil
			}
		}
		return 0, 0, fmt.Errorf("gwsim has no card %s", pan)
	}
	// Reversals reach the bank through store-and-forward: wait for them.
	var bad []string
	for deadline := time.Now().Add(20 * time.Second); ; {
		if bad, err = Reconcile(acks, opening, balance); err != nil {
			t.Fatal(err)
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, b := range bad {
		t.Error(b)
	}
	if err := sim.Verify(); err != nil {
		t.Fatal(err)
	}
	if mix.Name != MixPreAuth.Name {
		return
	}
	// The pre-auth family went to the bank and was done there.
	ops := map[gwsim.Op]int{}
	for _, e := range sim.Entries() {
		if e.RC == spec.RCApproved {
			ops[e.Op]++
		}
	}
	if ops[gwsim.OpPreAuth] == 0 || ops[gwsim.OpCompletion]+ops[gwsim.OpPreAuthCancel] == 0 {
		t.Fatalf("approved at the bank: %v, want pre-auths and their completions or cancels", ops)
	}
}
