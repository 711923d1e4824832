package gwsim

import (
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/moov-io/iso8583"
)

const (
	cardLi    = "6222020000000000018" // 10000.00, PIN 123456
	cardWang  = "6222020000000000026" // 5000.00, PIN 654321
	cardZhang = "6222020000000000034" // 20.00, PIN 111111
	acctWang  = "1102000000000026"
)

func balanceOf(t *testing.T, s *Sim, card string) spec.Amount {
	t.Helper()
	b, ok := s.Balance(card)
	if !ok {
		t.Fatalf("no account for %s", card)
	}
	return b
}

func TestNetworkManagement(t *testing.T) {
	s := startSim(t, Options{})
	tc := dial(t, s)
	if rc := tc.network(nmEcho); rc != "00" {
		t.Fatalf("echo before sign-on: %s", rc)
	}
	// Before sign-on: financial messages 91, key exchange 91.
	if rc := tc.network(nmKeyExchange); rc != "91" {
		t.Fatalf("key exchange before sign-on: %s, want 91", rc)
	}
	tc.zak = make([]byte, 16)
	m, _ := tc.build(req{mti: "0200", pc: "000000", card: cardLi, amount: 100})
	resp, raw := tc.send(tc.packMAC(m, tc.zak, false), time.Second)
	if rc, _ := resp.GetString(39); rc != "91" {
		t.Fatalf("consume before sign-on: %s, want 91", rc)
	}
	if _, err := spec.GatewayMACBlock(raw); err == nil {
		t.Fatal("91 before sign-on carries a MAC")
	}
	tc.signOn(DemoZMK)
	zpk, zak := s.WorkingKeys()
	if zpk != hexU(tc.zpk) || zak != hexU(tc.zak) {
		t.Fatalf("exchanged keys differ from the simulator's: %s/%s vs %s/%s", hexU(tc.zpk), hexU(tc.zak), zpk, zak)
	}
	if rc := tc.network("999"); rc != "40" {
		t.Fatalf("unknown network code: %s, want 40", rc)
	}
	if rc := tc.network(nmSignOff); rc != "00" {
		t.Fatalf("sign-off: %s", rc)
	}
	a, _ := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 100, pin: "123456"})
	if a.rc != "91" {
		t.Fatalf("consume after sign-off: %s, want 91", a.rc)
	}
	st := s.Stats()
	if st.SignOns != 1 || st.KeyExchanges != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func hexU(b []byte) string {
	const digitsHex = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digitsHex[c>>4], digitsHex[c&15])
	}
	return string(out)
}

func TestConsumeAndChecks(t *testing.T) {
	s := startSim(t, Options{})
	tc := dial(t, s)
	tc.signOn(DemoZMK)
	for _, tt := range []struct {
		name string
		r    req
		rc   string
	}{
		{"approved", req{card: cardLi, amount: 12345, pin: "123456"}, "00"},
		{"wrong PIN", req{card: cardLi, amount: 100, pin: "000000"}, "55"},
		{"no PIN", req{card: cardLi, amount: 100}, "55"},
		{"unknown card", req{card: "6222029999999999990", amount: 100, pin: "123456"}, "14"},
		{"zero amount", req{card: cardLi, amount: 0, pin: "123456"}, "13"},
		{"insufficient", req{card: cardZhang, amount: 2001, pin: "111111"}, "51"},
		{"all of the balance", req{card: cardZhang, amount: 2000, pin: "111111"}, "00"},
		{"wrong currency", req{card: cardLi, amount: 100, pin: "123456", currency: "840"}, "30"},
		{"stale field 7", req{card: cardLi, amount: 100, pin: "123456", transmission: spec.FormatTransmissionTime(time.Now().Add(-10 * time.Minute))}, "30"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.mti, tt.r.pc = "0200", "000000"
			a, _ := tc.do(tt.r)
			if a.rc != tt.rc {
				t.Fatalf("rc %s, want %s", a.rc, tt.rc)
			}
			if !a.mac {
				t.Fatal("answer without MAC")
			}
			if (a.auth != "") != (tt.rc == "00") {
				t.Fatalf("auth code %q with rc %s", a.auth, a.rc)
			}
		})
	}
	if got := balanceOf(t, s, cardLi); got != 1_000_000-12345 {
		t.Fatalf("Li's balance %d", got)
	}
	if got := balanceOf(t, s, cardZhang); got != 0 {
		t.Fatalf("Zhang's balance %d", got)
	}
	// A repeat of the same MTI, STAN, time and ids is a duplicate.
	tr := spec.FormatTransmissionTime(time.Now())
	r := req{mti: "0200", pc: "000000", card: cardLi, amount: 1, pin: "123456", stan: "777777", transmission: tr}
	if a, _ := tc.do(r); a.rc != "00" {
		t.Fatalf("first: %s", a.rc)
	}
	if a, _ := tc.do(r); a.rc != "94" {
		t.Fatalf("duplicate: %s, want 94", a.rc)
	}
	if got := balanceOf(t, s, cardLi); got != 1_000_000-12345-1 {
		t.Fatalf("duplicate moved money: %d", got)
	}
}

func TestBadMACAnsweredA0WithoutMAC(t *testing.T) {
	s := startSim(t, Options{})
	tc := dial(t, s)
	tc.signOn(DemoZMK)
	m, _ := tc.build(req{mti: "0200", pc: "000000", card: cardLi, amount: 100, pin: "123456"})
	resp, raw := tc.send(tc.packMAC(m, tc.zak, true), time.Second)
	if rc, _ := resp.GetString(39); rc != "A0" {
		t.Fatalf("bad MAC: %s, want A0", rc)
	}
	if _, err := spec.GatewayMACBlock(raw); err == nil {
		t.Fatal("A0 carries a MAC")
	}
	// No MAC at all.
	m, _ = tc.build(req{mti: "0200", pc: "000000", card: cardLi, amount: 100, pin: "123456"})
	body, _ := spec.EncodeGateway(m)
	resp, _ = tc.send(body, time.Second)
	if rc, _ := resp.GetString(39); rc != "A0" {
		t.Fatalf("missing MAC: %s, want A0", rc)
	}
	if got := balanceOf(t, s, cardLi); got != 1_000_000 {
		t.Fatalf("money moved on a bad MAC: %d", got)
	}
	if n := s.Stats().MACErrors; n != 2 {
		t.Fatalf("MAC errors %d", n)
	}
	// Undecodable: 30 without MAC.
	resp, raw = tc.send([]byte("0200\x00\x00\x00\x00\x00\x00\x00"), time.Second)
	if rc, _ := resp.GetString(39); rc != "30" {
		t.Fatalf("garbage: %s, want 30", rc)
	}
	if _, err := spec.GatewayMACBlock(raw); err == nil {
		t.Fatal("30 for garbage carries a MAC")
	}
}

func TestBalanceVoidRefundLoad(t *testing.T) {
	s := startSim(t, Options{})
	tc := dial(t, s)
	tc.signOn(DemoZMK)

	a, _ := tc.do(req{mti: "0200", pc: "310000", card: cardWang, pin: "654321"})
	if a.rc != "00" || a.balances != "1002156C000000500000" {
		t.Fatalf("balance inquiry: %s %q", a.rc, a.balances)
	}
	if a, _ := tc.do(req{mti: "0200", pc: "310000", card: cardWang, pin: "123456"}); a.rc != "55" {
		t.Fatalf("balance with a wrong PIN: %s", a.rc)
	}

	a, consume := tc.do(req{mti: "0200", pc: "000000", card: cardWang, amount: 10000, pin: "654321"})
	if a.rc != "00" {
		t.Fatalf("consume: %s", a.rc)
	}
	for _, tt := range []struct {
		name string
		r    req
		rc   string
		bal  spec.Amount
	}{
		{"void, wrong amount", req{mti: "0200", pc: "200000", card: cardWang, amount: 9999, original: consume}, "64", 490000},
		{"void, unknown original", req{mti: "0200", pc: "200000", card: cardWang, amount: 10000, original: consume[:4] + "999999" + consume[10:]}, "25", 490000},
		{"refund 30.00", req{mti: "0220", pc: "200000", card: cardWang, amount: 3000, original: consume}, "00", 493000},
		{"void after a refund", req{mti: "0200", pc: "200000", card: cardWang, amount: 10000, original: consume}, "12", 493000},
		{"refund over the rest", req{mti: "0220", pc: "200000", card: cardWang, amount: 7001, original: consume}, "61", 493000},
		{"refund the rest", req{mti: "0220", pc: "200000", card: cardWang, amount: 7000, original: consume}, "00", 500000},
	} {
		a, _ := tc.do(tt.r)
		if a.rc != tt.rc {
			t.Fatalf("%s: rc %s, want %s", tt.name, a.rc, tt.rc)
		}
		if got := balanceOf(t, s, cardWang); got != tt.bal {
			t.Fatalf("%s: balance %d, want %d", tt.name, got, tt.bal)
		}
	}

	_, c2 := tc.do(req{mti: "0200", pc: "000000", card: cardWang, amount: 2500, pin: "654321"})
	if a, _ := tc.do(req{mti: "0200", pc: "200000", card: cardWang, amount: 2500, original: c2}); a.rc != "00" {
		t.Fatalf("void: %s", a.rc)
	}
	if a, _ := tc.do(req{mti: "0200", pc: "200000", card: cardWang, amount: 2500, original: c2}); a.rc != "12" {
		t.Fatalf("second void: %s, want 12", a.rc)
	}
	if got := balanceOf(t, s, cardWang); got != 500000 {
		t.Fatalf("after void: %d", got)
	}

	// Transfer-load leg: 102 names the account, no PIN.
	a, _ = tc.do(req{mti: "0200", pc: "400000", card: cardWang, account: acctWang, beneficiary: "6230151000000000012", amount: 20000})
	if a.rc != "00" || a.auth == "" {
		t.Fatalf("transfer load: %s %q", a.rc, a.auth)
	}
	if a, _ := tc.do(req{mti: "0200", pc: "400000", account: "no-such-account", amount: 100}); a.rc != "14" {
		t.Fatalf("transfer load to an unknown account: %s", a.rc)
	}
	if a, _ := tc.do(req{mti: "0200", pc: "400000", account: acctWang, amount: 480001}); a.rc != "51" {
		t.Fatalf("transfer load over the balance: %s", a.rc)
	}
	if got := balanceOf(t, s, cardWang); got != 480000 {
		t.Fatalf("after the load: %d", got)
	}
	if a, _ := tc.do(req{mti: "0200", pc: "990000", card: cardWang, amount: 1}); a.rc != "40" {
		t.Fatalf("unknown processing code: %s, want 40", a.rc)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	// Verify catches books that do not add up.
	s.mu.Lock()
	s.byCard[cardWang].Balance++
	s.mu.Unlock()
	if err := s.Verify(); err == nil {
		t.Fatal("Verify missed a balance off by one fen")
	}
}

func TestReversalExactlyOnce(t *testing.T) {
	s := startSim(t, Options{})
	tc := dial(t, s)
	tc.signOn(DemoZMK)
	_, consume := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 5000, pin: "123456"})
	if got := balanceOf(t, s, cardLi); got != 995000 {
		t.Fatalf("after consume %d", got)
	}
	rev := req{mti: "0420", pc: "000000", card: cardLi, amount: 5000, original: consume}
	if a, _ := tc.do(rev); a.rc != "00" {
		t.Fatalf("0420: %s", a.rc)
	}
	rev.mti = "0421"
	for i := 0; i < 3; i++ {
		if a, _ := tc.do(rev); a.rc != "00" {
			t.Fatalf("0421: %s", a.rc)
		}
	}
	if got := balanceOf(t, s, cardLi); got != 1_000_000 {
		t.Fatalf("reversed more or less than once: %d", got)
	}
	if a, _ := tc.do(req{mti: "0420", pc: "000000", card: cardLi, amount: 4999, original: consume}); a.rc != "00" {
		t.Fatalf("already reversed, other amount: %s", a.rc)
	}
	// A reversed consume cannot be voided.
	if a, _ := tc.do(req{mti: "0200", pc: "200000", card: cardLi, amount: 5000, original: consume}); a.rc != "12" {
		t.Fatalf("void of a reversed consume: %s", a.rc)
	}

	// A reversal of a void takes the money again; of a refund likewise.
	_, c2 := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 1000, pin: "123456"})
	_, v := tc.do(req{mti: "0200", pc: "200000", card: cardLi, amount: 1000, original: c2})
	if a, _ := tc.do(req{mti: "0420", pc: "200000", card: cardLi, amount: 1000, original: v}); a.rc != "00" {
		t.Fatalf("reversal of a void: %s", a.rc)
	}
	if got := balanceOf(t, s, cardLi); got != 999000 {
		t.Fatalf("after the void's reversal: %d", got)
	}

	// Unknown original: 25, and the original is refused if it comes later.
	tr := spec.FormatTransmissionTime(time.Now())
	late := req{mti: "0200", pc: "000000", card: cardLi, amount: 700, pin: "123456", stan: "555555", transmission: tr}
	key, _ := OriginalKey("0200", "555555", tr, testAcquirer, testForwarding)
	if a, _ := tc.do(req{mti: "0420", pc: "000000", card: cardLi, amount: 700, original: key}); a.rc != "25" {
		t.Fatalf("reversal of an unknown original: %s, want 25", a.rc)
	}
	if a, _ := tc.do(late); a.rc != "12" {
		t.Fatalf("original after its reversal: %s, want 12", a.rc)
	}
	if got := balanceOf(t, s, cardLi); got != 999000 {
		t.Fatalf("late original moved money: %d", got)
	}
	// Reversal of a declined consume: approved, nothing moves.
	_, d := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 100, pin: "999999"})
	if a, _ := tc.do(req{mti: "0420", pc: "000000", card: cardLi, amount: 100, original: d}); a.rc != "00" {
		t.Fatalf("reversal of a decline: %s", a.rc)
	}
	if got := balanceOf(t, s, cardLi); got != 999000 {
		t.Fatalf("reversal of a decline moved money: %d", got)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Reversed != 2 {
		t.Fatalf("reversed %d, want 2", st.Reversed)
	}
	var reversed int
	for _, e := range s.Entries() {
		if e.Reversed && e.RC == "00" && e.Op != OpBalance {
			reversed++
		}
	}
	if reversed != 2 {
		t.Fatalf("entries marked reversed: %d", reversed)
	}
}

func TestFaults(t *testing.T) {
	t.Run("decline", func(t *testing.T) {
		s := startSim(t, Options{Faults: Faults{Decline: "05"}})
		tc := dial(t, s)
		tc.signOn(DemoZMK)
		a, consume := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 100, pin: "123456"})
		if a.rc != "05" {
			t.Fatalf("declined: %s", a.rc)
		}
		if a, _ := tc.do(req{mti: "0420", pc: "000000", card: cardLi, amount: 100, original: consume}); a.rc != "00" {
			t.Fatalf("reversals still honoured: %s", a.rc)
		}
		if balanceOf(t, s, cardLi) != 1_000_000 {
			t.Fatal("a declined consume moved money")
		}
	})
	t.Run("decline reversals", func(t *testing.T) {
		s := startSim(t, Options{Faults: Faults{DeclineReversals: "05"}})
		tc := dial(t, s)
		tc.signOn(DemoZMK)
		a, consume := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 100, pin: "123456"})
		if a.rc != "00" {
			t.Fatalf("consume: %s", a.rc)
		}
		for _, mti := range []string{"0420", "0421", "0400"} {
			if a, _ := tc.do(req{mti: mti, pc: "000000", card: cardLi, amount: 100, original: consume}); a.rc != "05" {
				t.Fatalf("%s declined: %s, want 05", mti, a.rc)
			}
		}
		if balanceOf(t, s, cardLi) != 1_000_000-100 {
			t.Fatal("a declined reversal gave the money back")
		}
		if st := s.Stats(); st.Reversed != 0 || st.ReversalsSeen != 3 {
			t.Fatalf("reversed %d, seen %d; want 0, 3", st.Reversed, st.ReversalsSeen)
		}
		// Lifted: the next repeat reverses the consume.
		if err := s.SetFaults(Faults{}); err != nil {
			t.Fatal(err)
		}
		if a, _ := tc.do(req{mti: "0421", pc: "000000", card: cardLi, amount: 100, original: consume}); a.rc != "00" {
			t.Fatalf("reversal once lifted: %s", a.rc)
		}
		if balanceOf(t, s, cardLi) != 1_000_000 {
			t.Fatal("the reversal after the fault was lifted did not give the money back")
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("refuse sign-on", func(t *testing.T) {
		s := startSim(t, Options{Faults: Faults{RefuseSignOn: true}})
		tc := dial(t, s)
		if rc := tc.network(nmSignOn); rc != "91" {
			t.Fatalf("sign-on: %s, want 91", rc)
		}
		if err := s.SetFaults(Faults{}); err != nil {
			t.Fatal(err)
		}
		if rc := tc.network(nmSignOn); rc != "00" {
			t.Fatalf("sign-on after the fault is lifted: %s", rc)
		}
	})
	t.Run("drop all, processed anyway", func(t *testing.T) {
		s := startSim(t, Options{Faults: Faults{DropPercent: 100}})
		tc := dial(t, s)
		tc.signOn(DemoZMK) // network management is never dropped
		m, _ := tc.build(req{mti: "0200", pc: "000000", card: cardLi, amount: 300, pin: "123456"})
		if resp, _ := tc.send(tc.packMAC(m, tc.zak, false), 300*time.Millisecond); resp != nil {
			t.Fatal("a dropped answer arrived")
		}
		if balanceOf(t, s, cardLi) != 1_000_000-300 {
			t.Fatal("a dropped answer's request was not processed")
		}
		if s.Stats().Dropped != 1 {
			t.Fatalf("dropped %d", s.Stats().Dropped)
		}
	})
	t.Run("delay", func(t *testing.T) {
		s := startSim(t, Options{Faults: Faults{Delay: 3 * time.Second}})
		tc := dial(t, s)
		tc.signOn(DemoZMK)
		m, _ := tc.build(req{mti: "0200", pc: "000000", card: cardLi, amount: 300, pin: "123456"})
		sent := time.Now()
		if resp, _ := tc.send(tc.packMAC(m, tc.zak, false), 20*time.Millisecond); resp != nil {
			t.Fatal("answer came before its delay")
		}
		if resp, _ := tc.read(10 * time.Second); resp == nil {
			t.Fatal("delayed answer never came")
		}
		arrived := time.Now()
		if arrived.Sub(sent) < 3*time.Second {
			t.Fatal("answer came before its delay")
		}
		// Processed before the delay: the money moved, and the answer was
		// held back the whole delay after that (lower bounds only, which
		// no load on the machine can break).
		if balanceOf(t, s, cardLi) != 1_000_000-300 {
			t.Fatal("the delayed request was not processed")
		}
		entries := s.Entries()
		if len(entries) == 0 {
			t.Fatal("no entry for the delayed request")
		}
		if held := arrived.Sub(entries[len(entries)-1].Time); held < 3*time.Second {
			t.Fatalf("answer arrived %s after the request was processed, want the whole 3 s delay", held)
		}
	})
	t.Run("disconnect after N", func(t *testing.T) {
		s := startSim(t, Options{Faults: Faults{DisconnectAfter: 3}})
		tc := dial(t, s)
		tc.signOn(DemoZMK) // messages 1 and 2
		if a, _ := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 1, pin: "123456"}); a.rc != "00" {
			t.Fatalf("third message: %s", a.rc)
		}
		tc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := tc.c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("connection still open after 3 messages (read %d)", n)
		}
		if s.Stats().Disconnects != 1 {
			t.Fatalf("disconnects %d", s.Stats().Disconnects)
		}
	})
}

func TestKeyGrace(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s := startSim(t, Options{Now: clock, KeyGrace: 10 * time.Second})
	tc := dial(t, s)
	tc.signOn(DemoZMK)
	oldZAK, oldZPK := tc.zak, tc.zpk
	tc.signOn(DemoZMK) // a second exchange: new keys
	if hexU(oldZAK) == hexU(tc.zak) {
		t.Fatal("key exchange gave the same ZAK")
	}
	// A third (another connection of the pool exchanging): the first
	// pair is still within the grace period.
	tc.signOn(DemoZMK)
	newZAK, newZPK := tc.zak, tc.zpk
	tc.zak, tc.zpk = oldZAK, oldZPK
	m, _ := tc.build(req{mti: "0200", pc: "000000", card: cardLi, amount: 1, pin: "123456"})
	resp, _ := tc.send(tc.packMAC(m, oldZAK, false), time.Second)
	if rc, _ := resp.GetString(39); rc != "00" {
		t.Fatalf("previous keys within the grace period: %s", rc)
	}
	now = now.Add(11 * time.Second)
	m, _ = tc.build(req{mti: "0200", pc: "000000", card: cardLi, amount: 1, pin: "123456", transmission: spec.FormatTransmissionTime(now)})
	resp, _ = tc.send(tc.packMAC(m, oldZAK, false), time.Second)
	if rc, _ := resp.GetString(39); rc != "A0" {
		t.Fatalf("previous ZAK after the grace period: %s, want A0", rc)
	}
	tc.zak, tc.zpk = newZAK, newZPK
	if a, _ := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 1, pin: "123456", transmission: spec.FormatTransmissionTime(now)}); a.rc != "00" {
		t.Fatalf("new keys: %s", a.rc)
	}
}

// sendAwait sends m MACed and returns the answer with STAN stan, skipping
// late answers to earlier requests; nil when none comes within wait of
// the last message read.
func (tc *testClient) sendAwait(m *iso8583.Message, stan string, wait time.Duration) *iso8583.Message {
	resp, _ := tc.send(tc.packMAC(m, tc.zak, false), wait)
	for resp != nil {
		if got, _ := resp.GetString(11); got == stan {
			return resp
		}
		resp, _ = tc.read(wait)
	}
	return nil
}

// TestConcurrentLinksWithDrops runs several connections at once with
// answers dropped; every consume whose answer never came is reversed, as
// the switch's store-and-forward would. At the end the bank's books hold:
// balance = opening - the consumes whose 00 arrived, and nothing was
// reversed twice.
func TestConcurrentLinksWithDrops(t *testing.T) {
	s := startSim(t, Options{Faults: Faults{DropPercent: 10}, Seed: 99})
	const conns, each, amount = 4, 25, 100
	got := make(chan int, conns)
	var first *testClient
	for i := 0; i < conns; i++ {
		tc := dial(t, s)
		// The working keys are the bank's, not a connection's: one key
		// exchange serves every connection (each exchange would retire
		// the keys before the previous ones).
		if first == nil {
			tc.signOn(DemoZMK)
			first = tc
		} else if rc := tc.network(nmSignOn); rc != "00" {
			t.Fatalf("sign-on %d: %s", i, rc)
		}
		tc.zak, tc.zpk = first.zak, first.zpk
		tc.stan = 100000 * (i + 1)
		go func() {
			approved := 0
			defer func() { got <- approved }()
			for j := 0; j < each; j++ {
				r := req{mti: "0200", pc: "000000", card: cardLi, amount: amount, pin: "123456"}
				r.stan = tc.nextSTAN()
				m, key := tc.build(r)
				resp := tc.sendAwait(m, r.stan, 300*time.Millisecond)
				if resp != nil {
					if rc, _ := resp.GetString(39); rc == "00" {
						approved++
					} else {
						t.Errorf("consume STAN %s: %s", r.stan, rc)
					}
					continue
				}
				// No answer: reverse until a 0430 for this reversal comes
				// (repeats as 0421, answers to others skipped).
				mti := "0420"
				for {
					rev := req{mti: mti, pc: "000000", card: cardLi, amount: amount, original: key, stan: tc.nextSTAN()}
					rm, _ := tc.build(rev)
					if resp := tc.sendAwait(rm, rev.stan, 300*time.Millisecond); resp != nil {
						if rc, _ := resp.GetString(39); rc != "00" {
							t.Errorf("reversal STAN %s: %s", rev.stan, rc)
						}
						break
					}
					mti = "0421"
				}
			}
		}()
	}
	approved := 0
	for i := 0; i < conns; i++ {
		approved += <-got
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Dropped == 0 {
		t.Fatal("nothing was dropped: the test proves nothing")
	}
	if b := balanceOf(t, s, cardLi); b != spec.Amount(1_000_000-approved*amount) {
		t.Fatalf("balance %d, want opening - %d approved x %d", b, approved, amount)
	}
}

// TestPreAuthHolds: a pre-auth holds part of the balance, its cancel or
// completion releases the hold, a completion void credits the completion
// back, and the reversal of each undoes exactly it (a completion's or a
// cancel's reversal puts the hold back).
func TestPreAuthHolds(t *testing.T) {
	s := startSim(t, Options{})
	tc := dial(t, s)
	tc.signOn(DemoZMK)
	const pre = "06"
	held := func() spec.Amount {
		for _, a := range s.Accounts() {
			if a.Card == cardWang {
				return a.Held
			}
		}
		t.Fatal("no account")
		return 0
	}
	step := func(name string, r req, rc string, bal, hold spec.Amount) (answer, string) {
		t.Helper()
		a, key := tc.do(r)
		if a.rc != rc {
			t.Fatalf("%s: rc %s, want %s", name, a.rc, rc)
		}
		if got := balanceOf(t, s, cardWang); got != bal || held() != hold {
			t.Fatalf("%s: balance %d held %d, want %d and %d", name, got, held(), bal, hold)
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return a, key
	}
	preAuth := func(amount spec.Amount) req {
		return req{mti: "0100", pc: "030000", cond: pre, card: cardWang, amount: amount, pin: "654321"}
	}
	step("pre-auth, wrong PIN", req{mti: "0100", pc: "030000", cond: pre, card: cardWang, amount: 10000, pin: "111111"}, "55", 500000, 0)
	a, p1 := step("pre-auth", preAuth(10000), "00", 500000, 10000)
	if a.auth == "" {
		t.Fatal("pre-auth approved without an approval code")
	}
	auth := a.auth
	step("consume over the available balance", req{mti: "0200", pc: "000000", card: cardWang, amount: 495000, pin: "654321"}, "51", 500000, 10000)
	step("pre-auth over the available balance", preAuth(490001), "51", 500000, 10000)
	cancel := req{mti: "0100", pc: "200000", cond: pre, card: cardWang, amount: 10000, original: p1, auth: auth}
	wrongAmount := cancel
	wrongAmount.amount = 9999
	step("cancel, other amount", wrongAmount, "64", 500000, 10000)
	wrongAuth := cancel
	wrongAuth.auth = "000000"
	step("cancel, other approval code", wrongAuth, "25", 500000, 10000)
	completion := req{mti: "0200", pc: "000000", cond: pre, card: cardWang, amount: 10001, original: p1, auth: auth}
	step("completion over the hold", completion, "61", 500000, 10000)
	completion.amount = 6000
	a, c1 := step("completion", completion, "00", 494000, 0)
	step("second completion", completion, "12", 494000, 0)
	step("cancel after the completion", cancel, "12", 494000, 0)
	cv := req{mti: "0200", pc: "200000", cond: pre, card: cardWang, amount: 6000, original: c1, auth: a.auth}
	_, v1 := step("completion void", cv, "00", 500000, 0)
	step("reversal of the completion void", req{mti: "0420", pc: "200000", cond: pre, card: cardWang, amount: 6000, original: v1}, "00", 494000, 0)
	step("reversal of a completed pre-auth: nothing held", req{mti: "0420", pc: "030000", cond: pre, card: cardWang, amount: 10000, original: p1}, "00", 494000, 0)

	_, p2 := step("pre-auth", preAuth(3000), "00", 494000, 3000)
	step("reversal of the pre-auth", req{mti: "0420", pc: "030000", cond: pre, card: cardWang, amount: 3000, original: p2}, "00", 494000, 0)
	step("repeated reversal", req{mti: "0421", pc: "030000", cond: pre, card: cardWang, amount: 3000, original: p2}, "00", 494000, 0)

	a, p3 := step("pre-auth", preAuth(4000), "00", 494000, 4000)
	_, x3 := step("cancel", req{mti: "0100", pc: "200000", cond: pre, card: cardWang, amount: 4000, original: p3, auth: a.auth}, "00", 494000, 0)
	step("reversal of the cancel", req{mti: "0420", pc: "200000", cond: pre, card: cardWang, amount: 4000, original: x3}, "00", 494000, 4000)
	_, c3 := step("completion", req{mti: "0200", pc: "000000", cond: pre, card: cardWang, amount: 4000, original: p3, auth: a.auth}, "00", 490000, 0)
	step("reversal of the completion", req{mti: "0420", pc: "000000", cond: pre, card: cardWang, amount: 4000, original: c3}, "00", 494000, 4000)

	// Verify catches holds that do not add up.
	s.mu.Lock()
	s.byCard[cardWang].held++
	s.mu.Unlock()
	if err := s.Verify(); err == nil {
		t.Fatal("Verify missed a hold off by one fen")
	}
}
