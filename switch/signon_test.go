package switching

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/hsm/terminal"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

func signOnRejected(t *testing.T, sw *Switch, reason string) float64 {
	t.Helper()
	return metricValue(t, sw, "switch_signon_rejected_total", map[string]string{"reason": reason})
}

// attacker is a connection that knows a terminal id and merchant, not
// the terminal's TMK.
func attacker(t *testing.T, sw *Switch) *posclient.Client {
	t.Helper()
	pos, _, _ := sw.Addrs()
	c, err := posclient.Dial(pos, posclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// forgedSignOn is an 0800 for id with field 62 as given.
func forgedSignOn(id, merchant string, proof []byte) *spec.POSMessage {
	now := time.Now()
	return &spec.POSMessage{
		MTI: spec.MTINetworkSignOn, STAN: "999999", TerminalID: id, MerchantID: merchant,
		LocalTime: now.Format("150405"), LocalDate: now.Format("0102"),
		Reserved60: spec.Field60{Type: spec.NetworkManagementType, Batch: "000000", NetworkCode: spec.SignOnDoubleDES},
		Reserved62: proof, Reserved63: "01",
	}
}

// TestForgedSignOnLeavesTerminalWorking: the one-packet denial of service
// of an unauthenticated sign-on. An attacker who knows a terminal's id
// sends 0800s without a proof, with a wrong proof, and with a proof under
// another TMK: each gets A0 and is counted; the real terminal's batch and
// keys are unchanged and it goes on transacting (its MACs still verify).
// A captured sign-on sent again is a replay (A0), and so is one with an
// older stamp.
func TestForgedSignOnLeavesTerminalWorking(t *testing.T) {
	sw := testSwitch(t)
	real := signedOn(t, sw, termCanteen, canteen)
	req, err := real.Consume(cardStaff, 1000, "")
	expectRC(t, "consume before the attack", do(t, real, req, err), spec.RCApproved)
	before := *sw.terminals.Get(termCanteen)

	evil := attacker(t, sw)
	otherTMK, _ := hex.DecodeString("00112233445566778899AABBCCDDEEFF")
	otherCipher, _ := terminal.TMKCipher(otherTMK, spec.SignOnDoubleDES)
	fm := forgedSignOn(termCanteen, canteen, nil)
	stamp, _ := fm.SignOnStamp()
	wrongKeyProof, _ := terminal.SignOnProof(otherCipher, stamp)
	for _, tc := range []struct {
		name   string
		proof  []byte
		reason string
	}{
		{"no proof", nil, "missing_proof"},
		{"random proof", []byte{1, 2, 3, 4, 5, 6, 7, 8}, "bad_proof"},
		{"proof under another TMK", wrongKeyProof, "bad_proof"},
		{"proof of the wrong length", []byte{1, 2, 3}, "bad_proof"},
	} {
		resp, err := evil.Exchange(forgedSignOn(termCanteen, canteen, tc.proof), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		expectRC(t, tc.name, resp, spec.RCMACError)
		if resp.Reserved62 != nil {
			t.Fatalf("%s: keys handed out", tc.name)
		}
	}
	if got := signOnRejected(t, sw, "missing_proof"); got != 1 {
		t.Errorf("missing_proof counted %v, want 1", got)
	}
	if got := signOnRejected(t, sw, "bad_proof"); got != 3 {
		t.Errorf("bad_proof counted %v, want 3", got)
	}
	after := *sw.terminals.Get(termCanteen)
	if after.Batch != before.Batch || after.KeyGeneration != before.KeyGeneration || !after.SignedOn || after.LastSignOn != before.LastSignOn {
		t.Fatalf("terminal changed by forged sign-ons: before %+v after %+v", before, after)
	}
	req, err = real.Consume(cardStaff, 1000, "")
	expectRC(t, "consume after the attack", do(t, real, req, err), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000-2000, 0)

	// Replay: the real terminal's own sign-on captured and sent again.
	tmk, _ := hex.DecodeString(demoTMK)
	again := posclient.NewTerminal(attacker(t, sw), termCanteen, canteen, tmk)
	captured, err := again.SignOnRequest()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := again.Client.Exchange(captured, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "fresh sign-on", resp, spec.RCApproved)
	keys, err := terminal.ParseField62(tmk, spec.SignOnDoubleDES, resp.Reserved62)
	if err != nil {
		t.Fatal(err)
	}
	again.Keys, again.Batch = keys, resp.Reserved60.Batch
	signed := *sw.terminals.Get(termCanteen)
	resp, err = evil.Exchange(captured, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "replayed sign-on", resp, spec.RCMACError)
	// An older stamp with a valid proof: also not later.
	older := *captured
	older.LocalDate = time.Now().AddDate(0, 0, -1).Format("0102") // yesterday
	older.STAN = "999999"
	os, _ := older.SignOnStamp()
	realCipher, _ := terminal.TMKCipher(tmk, spec.SignOnDoubleDES)
	older.Reserved62, _ = terminal.SignOnProof(realCipher, os)
	if resp, err = evil.Exchange(&older, nil); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "older stamp", resp, spec.RCMACError)
	if got := signOnRejected(t, sw, "replay"); got != 2 {
		t.Errorf("replay counted %v, want 2", got)
	}
	if now := *sw.terminals.Get(termCanteen); now.Batch != signed.Batch || now.KeyGeneration != signed.KeyGeneration {
		t.Fatalf("replayed sign-on changed the terminal: %+v, was %+v", now, signed)
	}
	req, err = again.Consume(cardStaff, 500, "")
	expectRC(t, "consume after the replays", do(t, again, req, err), spec.RCApproved)

	// The last accepted stamp is durable: a restart does not reopen the
	// replay window.
	sw = restart(t, sw)
	evil = attacker(t, sw)
	if resp, err = evil.Exchange(captured, nil); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "replay after restart", resp, spec.RCMACError)
}

// TestSignOnRateLimits: failed sign-ons are limited per terminal and per
// source address; once over, even a good sign-on is answered A0 (counted
// rate_limited) and changes nothing, while other terminals sign on.
func TestSignOnRateLimits(t *testing.T) {
	sw := testSwitch(t, func(c *Config) {
		c.SignOn.MaxFailuresPerTerminal = 3
		c.SignOn.MaxFailuresPerAddress = 6
		c.SignOn.Window = Duration(time.Hour)
	})
	evil := attacker(t, sw)
	fail := func(id, merchant string) {
		t.Helper()
		resp, err := evil.Exchange(forgedSignOn(id, merchant, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		expectRC(t, "forged", resp, spec.RCMACError)
	}
	for i := 0; i < 3; i++ {
		fail(termCafe, partnerCafe)
	}
	tmk, _ := hex.DecodeString(demoTMK)
	cafe := posclient.NewTerminal(attacker(t, sw), termCafe, partnerCafe, tmk)
	resp, err := cafe.SignOn()
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "good sign-on of a terminal over its limit", resp, spec.RCMACError)
	if got := signOnRejected(t, sw, "rate_limited"); got != 1 {
		t.Errorf("rate_limited counted %v, want 1", got)
	}
	if sw.terminals.Get(termCafe).SignedOn {
		t.Fatal("rate-limited sign-on signed the terminal on")
	}
	signedOn(t, sw, termCanteen, canteen) // another terminal is not affected
	// Three more failures from this address (6 in all): the address is
	// over its limit for every terminal.
	for i := 0; i < 3; i++ {
		fail(termCanteen2, canteen)
	}
	kiosk := posclient.NewTerminal(attacker(t, sw), termKiosk, canteen, tmk)
	if resp, err = kiosk.SignOn(); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "sign-on from an address over its limit", resp, spec.RCMACError)
	if got := signOnRejected(t, sw, "rate_limited"); got != 2 {
		t.Errorf("rate_limited counted %v, want 2", got)
	}
}

// TestLegacySignOn: a terminal registered legacy_signon may sign on
// without a proof only from its source network.
func TestLegacySignOn(t *testing.T) {
	sw := testSwitch(t, func(c *Config) {
		for i := range c.Seed.Terminals {
			switch c.Seed.Terminals[i].ID {
			case termCafe:
				c.Seed.Terminals[i].LegacySignOn, c.Seed.Terminals[i].SourceNetwork = true, "127.0.0.0/8"
			case termCanteen2:
				c.Seed.Terminals[i].LegacySignOn, c.Seed.Terminals[i].SourceNetwork = true, "10.9.0.0/16"
			}
		}
	})
	c := attacker(t, sw)
	resp, err := c.Exchange(forgedSignOn(termCafe, partnerCafe, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "legacy sign-on from its network", resp, spec.RCApproved)
	tmk, _ := hex.DecodeString(demoTMK)
	keys, err := terminal.ParseField62(tmk, spec.SignOnDoubleDES, resp.Reserved62)
	if err != nil {
		t.Fatal(err)
	}
	legacy := posclient.NewTerminal(c, termCafe, partnerCafe, tmk)
	legacy.Keys, legacy.Batch = keys, resp.Reserved60.Batch
	req, err := legacy.Consume(cardStaff, 100, "")
	expectRC(t, "legacy terminal consume", do(t, legacy, req, err), spec.RCApproved)

	if resp, err = c.Exchange(forgedSignOn(termCanteen2, canteen, nil), nil); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "legacy sign-on from another network", resp, spec.RCMACError)
	if got := signOnRejected(t, sw, "legacy_network"); got != 1 {
		t.Errorf("legacy_network counted %v, want 1", got)
	}
	// A terminal that is not legacy still needs the proof.
	if resp, err = c.Exchange(forgedSignOn(termCanteen, canteen, nil), nil); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "non-legacy sign-on without proof", resp, spec.RCMACError)
	// A legacy terminal may still send a proof.
	signedOn(t, sw, termCanteen2, canteen)
}

// TestSettlementAndUploadNeedMAC: 0500 and 0320 without field 64 get A0
// and change nothing; with it they are answered.
func TestSettlementAndUploadNeedMAC(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen2, canteen)
	settle, err := term.Settlement(spec.SettlementTotals{})
	if err != nil {
		t.Fatal(err)
	}
	settle.TerminalID, settle.MerchantID = term.ID, term.Merchant
	resp, err := term.Client.Exchange(settle, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "0500 without MAC", resp, spec.RCMACError)
	upload := term.BatchUpload("0123", true)
	upload.TerminalID, upload.MerchantID = term.ID, term.Merchant
	if resp, err = term.Client.Exchange(upload, nil); err != nil {
		t.Fatal(err)
	}
	expectRC(t, "0320 without MAC", resp, spec.RCMACError)

	settle, err = term.Settlement(spec.SettlementTotals{})
	expectRC(t, "0500 with MAC", do(t, term, settle, err), spec.RCApproved)
	expectRC(t, "0320 with MAC", do(t, term, term.BatchUpload("0123", true), nil), spec.RCApproved)
}

// TestForgedSignOff: an 0820 sign-off of a signed-on terminal needs its
// MAC, or anyone could stop a canteen's terminal (77 until it signs on
// again) with one packet. The terminal's own MACed sign-off works.
func TestForgedSignOff(t *testing.T) {
	sw := testSwitch(t)
	real := signedOn(t, sw, termCanteen, canteen)
	batch := sw.terminals.Get(termCanteen).Batch
	forged := &spec.POSMessage{
		MTI: spec.MTINetworkManagement, STAN: "000777", TerminalID: termCanteen, MerchantID: canteen,
		Reserved60: spec.Field60{Type: spec.NetworkManagementType, Batch: batchString(batch), NetworkCode: spec.NetworkSignOff},
	}
	resp, err := attacker(t, sw).Exchange(forged, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "forged sign-off", resp, spec.RCMACError)
	if got := signOnRejected(t, sw, "signoff_mac"); got != 1 {
		t.Errorf("signoff_mac counted %v, want 1", got)
	}
	req, err := real.Consume(cardStaff, 100, "")
	expectRC(t, "consume after the forged sign-off", do(t, real, req, err), spec.RCApproved)
	resp, err = real.SignOff()
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "the terminal's own sign-off", resp, spec.RCApproved)
	if sw.terminals.Get(termCanteen).SignedOn {
		t.Fatal("still signed on after its sign-off")
	}
}

// TestConcurrentCopiesOfOneSignOn: copies of one captured sign-on sent at
// once on several connections: exactly one is accepted (the replay rule
// is applied under the terminal's lock), the rest are A0 replays.
func TestConcurrentCopiesOfOneSignOn(t *testing.T) {
	sw := testSwitch(t)
	tmk, _ := hex.DecodeString(demoTMK)
	term := posclient.NewTerminal(attacker(t, sw), termCanteen, canteen, tmk)
	req, err := term.SignOnRequest()
	if err != nil {
		t.Fatal(err)
	}
	const copies = 8
	clients := make([]*posclient.Client, copies)
	for i := range clients {
		clients[i] = attacker(t, sw)
	}
	rcs := make(chan string, copies)
	start := make(chan struct{})
	for _, c := range clients {
		go func(c *posclient.Client) {
			<-start
			m := *req
			resp, err := c.Exchange(&m, nil)
			if err != nil {
				rcs <- "error: " + err.Error()
				return
			}
			rcs <- resp.ResponseCode
		}(c)
	}
	close(start)
	approved := 0
	for i := 0; i < copies; i++ {
		switch rc := <-rcs; rc {
		case spec.RCApproved:
			approved++
		case spec.RCMACError:
		default:
			t.Fatalf("copy answered %s", rc)
		}
	}
	if approved != 1 || sw.terminals.Get(termCanteen).KeyGeneration != 1 {
		t.Fatalf("%d copies approved, key generation %d; want 1 and 1", approved, sw.terminals.Get(termCanteen).KeyGeneration)
	}
	if got := signOnRejected(t, sw, "replay"); got != copies-1 {
		t.Errorf("replay counted %v, want %d", got, copies-1)
	}
}
