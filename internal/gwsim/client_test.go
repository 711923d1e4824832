package gwsim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/moov-io/iso8583"
)

// testClient plays the switch's side of a link, built from the spec
// package and the lower hsm packages only, independently of gwsim's own
// key and MAC code.
type testClient struct {
	t        *testing.T
	c        net.Conn
	stan     int
	zpk, zak []byte // clear, from the key exchange
	buf      []byte
}

const (
	testAcquirer   = "48020000"
	testForwarding = "48020001"
)

func startSim(t *testing.T, o Options) *Sim {
	t.Helper()
	if o.ReconDir == "" {
		o.ReconDir = t.TempDir()
	}
	s, err := Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, s *Sim) *testClient {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &testClient{t: t, c: c, buf: make([]byte, maxFrame)}
}

// signOn signs on and exchanges keys, checking the 0810's key tags.
func (tc *testClient) signOn(zmkHex string) {
	tc.t.Helper()
	if rc := tc.network(nmSignOn); rc != "00" {
		tc.t.Fatalf("sign-on answered %s", rc)
	}
	resp := tc.exchange(tc.networkMsg(nmKeyExchange), time.Second)
	if rc, _ := resp.GetString(39); rc != "00" {
		tc.t.Fatalf("key exchange answered %s", rc)
	}
	f48, _ := resp.GetString(48)
	tags, err := spec.ParseTagList(f48)
	if err != nil {
		tc.t.Fatalf("key exchange 48 %q: %v", f48, err)
	}
	zmk, _ := hex.DecodeString(zmkHex)
	kek, err := blockcipher.New(blockcipher.TDES, zmk)
	if err != nil {
		tc.t.Fatal(err)
	}
	unwrap := func(keyTag, checkTag string) []byte {
		enc, _ := spec.TagValue(tags, keyTag)
		cv, _ := spec.TagValue(tags, checkTag)
		b, err := hex.DecodeString(enc)
		if err != nil || len(b) != 16 {
			tc.t.Fatalf("tag %s = %q", keyTag, enc)
		}
		clearKey, err := blockcipher.DecryptECB(kek, b)
		if err != nil {
			tc.t.Fatal(err)
		}
		check, err := blockcipher.CheckBlock(blockcipher.TDES, clearKey)
		if err != nil {
			tc.t.Fatal(err)
		}
		if got := strings.ToUpper(hex.EncodeToString(check[:3])); got != cv || len(cv) != 6 {
			tc.t.Fatalf("tag %s check value %q, key gives %s", checkTag, cv, got)
		}
		return clearKey
	}
	tc.zpk = unwrap("PK", "PC")
	tc.zak = unwrap("AK", "AC")
}

func (tc *testClient) nextSTAN() string {
	tc.stan++
	return fmt.Sprintf("%06d", tc.stan)
}

func (tc *testClient) networkMsg(code string) *iso8583.Message {
	m := iso8583.NewMessage(spec.Gateway)
	m.MTI("0800")
	set(tc.t, m, 7, spec.FormatTransmissionTime(time.Now()))
	set(tc.t, m, 11, tc.nextSTAN())
	set(tc.t, m, 32, testAcquirer)
	set(tc.t, m, 70, code)
	return m
}

func (tc *testClient) network(code string) string {
	tc.t.Helper()
	resp := tc.exchange(tc.networkMsg(code), time.Second)
	if resp == nil {
		tc.t.Fatalf("no answer to 0800 %s", code)
	}
	rc, _ := resp.GetString(39)
	return rc
}

func set(t *testing.T, m *iso8583.Message, id int, v string) {
	t.Helper()
	if err := m.Field(id, v); err != nil {
		t.Fatalf("field %d = %q: %v", id, v, err)
	}
}

// req is a financial request under construction.
type req struct {
	mti, pc, card, account, beneficiary, original string
	amount                                        spec.Amount
	pin                                           string // "" sends no 52
	currency                                      string // "" = 156
	transmission                                  string // "" = now
	stan                                          string // "" = next
	rrn                                           string
	cond, auth                                    string // 25, 38 ("" sends none)
}

// build returns the message and the key (field 90 form) naming it.
func (tc *testClient) build(r req) (*iso8583.Message, string) {
	tc.t.Helper()
	m := iso8583.NewMessage(spec.Gateway)
	m.MTI(r.mti)
	if r.card != "" {
		set(tc.t, m, 2, r.card)
	}
	set(tc.t, m, 3, r.pc)
	n12, err := r.amount.N12()
	if err != nil {
		tc.t.Fatal(err)
	}
	set(tc.t, m, 4, n12)
	if r.transmission == "" {
		r.transmission = spec.FormatTransmissionTime(time.Now())
	}
	if r.stan == "" {
		r.stan = tc.nextSTAN()
	}
	set(tc.t, m, 7, r.transmission)
	set(tc.t, m, 11, r.stan)
	set(tc.t, m, 32, testAcquirer)
	set(tc.t, m, 33, testForwarding)
	if r.rrn == "" {
		r.rrn = "RRN" + r.stan + "000"
	}
	set(tc.t, m, 37, r.rrn)
	set(tc.t, m, 41, "10000001")
	set(tc.t, m, 42, "898310000000001")
	if r.currency == "" {
		r.currency = "156"
	}
	set(tc.t, m, 49, r.currency)
	if r.pin != "" {
		zpk, err := blockcipher.New(blockcipher.TDES, tc.zpk)
		if err != nil {
			tc.t.Fatal(err)
		}
		block, err := pinblock.Encrypt(zpk, pinblock.Format0, r.pin, r.card, "")
		if err != nil {
			tc.t.Fatal(err)
		}
		if err := m.BinaryField(52, block); err != nil {
			tc.t.Fatal(err)
		}
		set(tc.t, m, 53, "2000000000000000")
	}
	if r.original != "" {
		set(tc.t, m, 90, r.original)
	}
	if r.cond != "" {
		set(tc.t, m, 25, r.cond)
	}
	if r.auth != "" {
		set(tc.t, m, 38, r.auth)
	}
	if r.account != "" {
		set(tc.t, m, 102, r.account)
	}
	if r.beneficiary != "" {
		set(tc.t, m, 103, r.beneficiary)
	}
	key, err := spec.OriginalData{MTI: r.mti, STAN: r.stan, Transmission: r.transmission, Acquirer: testAcquirer, Forwarding: testForwarding}.Format()
	if err != nil {
		tc.t.Fatal(err)
	}
	return m, key
}

// macOf is X9.19 under a clear double-length key, computed here from the
// mac package so the test does not lean on gwsim's zoneKey.
func macOf(t *testing.T, key, data []byte) []byte {
	t.Helper()
	k1, err := blockcipher.New(blockcipher.DES, key[:8])
	if err != nil {
		t.Fatal(err)
	}
	k2, err := blockcipher.New(blockcipher.DES, key[8:])
	if err != nil {
		t.Fatal(err)
	}
	sum, err := mac.RetailMAC(k1, k2, data, mac.Pad1)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// packMAC packs m with a MAC under key (or a wrong MAC when bad).
func (tc *testClient) packMAC(m *iso8583.Message, key []byte, bad bool) []byte {
	tc.t.Helper()
	id := 64
	for f := range m.GetFields() {
		if f > 64 {
			id = 128
		}
	}
	if err := m.BinaryField(id, make([]byte, 8)); err != nil {
		tc.t.Fatal(err)
	}
	packed, err := spec.EncodeGateway(m)
	if err != nil {
		tc.t.Fatal(err)
	}
	block, err := spec.GatewayMACBlock(packed)
	if err != nil {
		tc.t.Fatal(err)
	}
	sum := macOf(tc.t, key, block)
	if bad {
		sum[0] ^= 1
	}
	copy(packed[len(packed)-8:], sum)
	return packed
}

// send writes a packed body and reads the answer; nil on timeout.
func (tc *testClient) send(body []byte, wait time.Duration) (*iso8583.Message, []byte) {
	tc.t.Helper()
	frame, err := spec.AppendFrame(nil, body)
	if err != nil {
		tc.t.Fatal(err)
	}
	if _, err := tc.c.Write(frame); err != nil {
		tc.t.Fatalf("write: %v", err)
	}
	return tc.read(wait)
}

func (tc *testClient) read(wait time.Duration) (*iso8583.Message, []byte) {
	tc.t.Helper()
	tc.c.SetReadDeadline(time.Now().Add(wait))
	body, err := spec.ReadFrame(tc.c, tc.buf, maxFrame)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, nil
		}
		tc.t.Fatalf("read: %v", err)
	}
	raw := append([]byte(nil), body...)
	m, err := spec.DecodeGateway(raw)
	if err != nil {
		tc.t.Fatalf("answer does not decode: %v", err)
	}
	return m, raw
}

func (tc *testClient) exchange(m *iso8583.Message, wait time.Duration) *iso8583.Message {
	tc.t.Helper()
	body, err := spec.EncodeGateway(m)
	if err != nil {
		tc.t.Fatal(err)
	}
	resp, _ := tc.send(body, wait)
	return resp
}

// answer is a checked financial answer.
type answer struct {
	rc, auth, balances string
	mac                bool
}

// do sends a MACed financial request and checks the answer's MAC.
func (tc *testClient) do(r req) (answer, string) {
	tc.t.Helper()
	m, key := tc.build(r)
	resp, raw := tc.send(tc.packMAC(m, tc.zak, false), 2*time.Second)
	if resp == nil {
		tc.t.Fatalf("no answer to %s %s", r.mti, r.pc)
	}
	return tc.checkAnswer(r, resp, raw), key
}

func (tc *testClient) checkAnswer(r req, resp *iso8583.Message, raw []byte) answer {
	tc.t.Helper()
	var a answer
	a.rc, _ = resp.GetString(39)
	a.auth, _ = resp.GetString(38)
	a.balances, _ = resp.GetString(54)
	mti, _ := resp.GetMTI()
	if want := answerMTI(r.mti); mti != want {
		tc.t.Errorf("answer MTI %s, want %s", mti, want)
	}
	if stan, _ := resp.GetString(11); r.stan != "" && stan != r.stan {
		tc.t.Errorf("answer STAN %s, want %s", stan, r.stan)
	}
	if block, err := spec.GatewayMACBlock(raw); err == nil {
		a.mac = true
		if got, want := raw[len(raw)-8:], macOf(tc.t, tc.zak, block); string(got) != string(want) {
			tc.t.Errorf("answer MAC %X, want %X under the ZAK", got, want)
		}
	}
	return a
}
