package switching

import (
	"encoding/json"
	"testing"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/admin"
	"github.com/cardswitch/cardswitch/switch/links"
)

// TestUnMACableRequestIsNotSent: when the switch cannot MAC a request
// for a link (here its ZAK became an SM4 key while the link MACs with
// X9.19), nothing is journaled or sent and the terminal gets 91 — not a
// 98 and a reversal queued for a request the bank never saw.
func TestUnMACableRequestIsNotSent(t *testing.T) {
	sw, sim := linkedSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(bankCard, 100, bankPIN)
	expectRC(t, "consume with the link's key", do(t, term, buy, err), spec.RCApproved)
	before := sim.Stats()

	if _, err := sw.hsm.IssueZoneKeysAlg(demoBank, hsm.SM4); err != nil {
		t.Fatal(err)
	}
	buy, err = term.Consume(bankCard, 200, bankPIN)
	expectRC(t, "consume without a usable ZAK", do(t, term, buy, err), links.RC91)

	if got := sim.Stats(); got.Approved+got.Declined+got.MACErrors != before.Approved+before.Declined+before.MACErrors {
		t.Fatalf("the bank saw the request: %+v, before %+v", got, before)
	}
	if got := simBalance(t, sim); got != bankStart-100 {
		t.Fatalf("bank balance %v, want %v", got, bankStart-100)
	}
	for _, dead := range []string{"false", "true"} {
		code, body := adminCall(t, sw, "GET", "/api/v1/saf?dead="+dead+"&gateway="+demoBank, nil)
		var page admin.SAFPage
		if code != 200 || json.Unmarshal(body, &page) != nil || len(page.Entries) != 0 {
			t.Fatalf("store-and-forward (dead=%s): %d %s, want nothing queued", dead, code, body)
		}
	}
}
