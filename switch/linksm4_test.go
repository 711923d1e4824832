package switching

import (
	"fmt"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/links"
)

// TestGatewayLinkSM4MAC: a link configured `mac: sm4` takes an SM4 ZAK in
// its key exchange and carries a bank-card consume both ways under the
// SM4 MAC (docs/gateway-dialect.md, MAC): gwsim, run with the SM4 MAC,
// verifies the request's and the switch the answer's.
func TestGatewayLinkSM4MAC(t *testing.T) {
	sw, sim := linkedSwitchTo(t, gwsim.Options{MAC: gwsim.MACSM4}, links.StateUp, func(c *Config) {
		c.Gateways[0].MAC = links.MACSM4
	})
	// The switch holds the bank's ZAK as an SM4 key: its check value is
	// SM4 of a zero block.
	_, zakHex := sim.WorkingKeys()
	zak, err := blockcipher.New(blockcipher.SM4, mustHexKey(t, zakHex))
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 16)
	zak.Encrypt(zero, zero)
	st, err := sw.links.Status()
	if err != nil || len(st) != 1 || st[0].MAC != links.MACSM4 {
		t.Fatalf("status %+v %v: want one link, its MAC sm4", st, err)
	}
	if want := fmt.Sprintf("%X", zero[:3]); st[0].ZAKCheck != want {
		t.Fatalf("switch's ZAK check value %s, want the SM4 check value %s of the bank's ZAK", st[0].ZAKCheck, want)
	}

	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(bankCard, 321, bankPIN)
	expectRC(t, "consume over an SM4-MAC link", do(t, term, buy, err), spec.RCApproved)
	if got := simBalance(t, sim); got != bankStart-321 {
		t.Fatalf("bank balance %v, want %v", got, bankStart-321)
	}
	if s := sim.Stats(); s.MACErrors != 0 || s.Approved != 1 {
		t.Fatalf("bank stats %+v: want one approval and no MAC error", s)
	}
	if n := metricValue(t, sw, "switch_gateway_link_bad_mac_total", map[string]string{"link": demoBank}); n != 0 {
		t.Fatalf("%v answers failed the switch's SM4 MAC check", n)
	}
}

// TestGatewayLinkMACMismatch: a link whose MAC algorithm differs from the
// bank's never carries traffic: the SM4 ZAK the bank issues fails the
// X9.19 link's check value, the link has no key of its algorithm and
// stays off, and the terminal gets 91 with nothing sent.
func TestGatewayLinkMACMismatch(t *testing.T) {
	sw, sim := linkedSwitchTo(t, gwsim.Options{MAC: gwsim.MACSM4}, links.StateDown)
	waitUntil(t, "a sign-on left without keys", func() bool { return noKeys(t, sw) > 0 })
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(bankCard, 321, bankPIN)
	expectRC(t, "consume over a mismatched link", do(t, term, buy, err), links.RC91)
	if got := simBalance(t, sim); got != bankStart {
		t.Fatalf("bank balance %v, want %v untouched", got, bankStart)
	}
	if s := sim.Stats(); s.Approved+s.Declined+s.MACErrors != 0 {
		t.Fatalf("bank saw financial traffic: %+v", s)
	}
}

// noKeys counts the demo link's sign-ons that ended without working keys
// of the link's algorithm.
func noKeys(t *testing.T, sw *Switch) float64 {
	t.Helper()
	return metricValue(t, sw, "switch_gateway_link_signons_total", map[string]string{"link": demoBank, "result": "no_keys"})
}

func mustHexKey(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	if _, err := fmt.Sscanf(s, "%X", &b); err != nil || len(b) != 16 {
		t.Fatalf("key %q: %v", s, err)
	}
	return b
}

// TestLinkMACChangeWaitsForKeys: a reload that changes a link's mac from
// x9.19 to sm4 restarts it, and while the bank still issues TDES ZAKs the
// link has no key of its new algorithm: it stays off and terminals get 91
// with nothing sent — never a request MACed (or refused as unsendable)
// under the old key.
func TestLinkMACChangeWaitsForKeys(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(bankCard, 100, bankPIN)
	expectRC(t, "consume over x9.19", do(t, term, buy, err), spec.RCApproved)
	exchanges := sim.Stats().KeyExchanges

	cfg := *sw.cfg
	cfg.Gateways = []links.Config{sw.cfg.Gateways[0]}
	cfg.Gateways[0].MAC = links.MACSM4
	rep, err := sw.Reload(&cfg)
	if err != nil || len(rep.Links.Restarted) != 1 {
		t.Fatalf("reload: %+v %v", rep, err)
	}
	before := noKeys(t, sw)
	waitUntil(t, "a key exchange refused by the new algorithm", func() bool {
		return sim.Stats().KeyExchanges > exchanges && noKeys(t, sw) > before
	})
	if l, _ := sw.links.Link(demoBank); l.State() == links.StateUp {
		t.Fatal("the link is up with a ZAK of the old algorithm")
	}
	messages := sim.Stats().Approved + sim.Stats().Declined + sim.Stats().MACErrors
	buy, err = term.Consume(bankCard, 200, bankPIN)
	expectRC(t, "consume after the change", do(t, term, buy, err), links.RC91)
	if got := sim.Stats().Approved + sim.Stats().Declined + sim.Stats().MACErrors; got != messages {
		t.Fatal("a financial request reached the bank under the old ZAK")
	}
	if q, _ := sw.links.SAFList(demoBank, false, 10); len(q) != 0 {
		t.Fatalf("reversals queued for a request never sent: %+v", q)
	}
}
