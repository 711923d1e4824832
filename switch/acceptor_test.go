package switching

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"github.com/cardswitch/cardswitch/switch/txn"
	"io"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// testSwitch starts a real switch on ephemeral ports with a temp data dir.
func testSwitch(t testing.TB, mutate ...func(*Config)) *Switch {
	t.Helper()
	return testSwitchLog(t, zap.NewNop(), mutate...)
}

// testSwitchLog is testSwitch with the given logger.
func testSwitchLog(t testing.TB, log *zap.Logger, mutate ...func(*Config)) *Switch {
	t.Helper()
	return testSwitchWith(t, log, nil, mutate...)
}

// testSwitchWith is testSwitchLog with destinations registered besides
// the local ledger.
func testSwitchWith(t testing.TB, log *zap.Logger, extra []txn.Destination, mutate ...func(*Config)) *Switch {
	t.Helper()
	demo, err := IsolatedDemoConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := *demo
	cfg.HTTP.AdminToken = "test-token"
	cfg.Log = LogConfig{Format: "console", Level: "error"}
	for _, m := range mutate {
		m(&cfg)
	}
	sw, err := newSwitch(&cfg, log, extra)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sw.Shutdown(ctx)
	})
	return sw
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// echoRequest is an echo test (0820, 60.3 = 301) from terminal 10000001 of
// merchant 898310000000001, written by hand from docs/pos-dialect.md, framing and fields.
const echoRequest = `
0034                         # length: 52 bytes follow
60 0003 0000                 # TPDU: id, destination 0003, source 0000
60 31 00 313030              # header: app 60, version 31, status 0 / processing 0, sub-version
0820                         # MTI
0000000000C00010             # bitmap: 41, 42, 60
3130303030303031             # 41 "10000001"
383938333130303030303030303031  # 42 "898310000000001"
0011 000000013010            # 60: LLL=11 digits "00" "000001" "301", left-aligned
`

// echoResponse is the 0830 the contract requires: TPDU addresses swapped,
// header echoed, 39 = 00, and 41, 42, 60 echoed.
const echoResponse = `
0036
60 0000 0003
60 31 00 313030
0830
0000000002C00010             # bitmap: 39, 41, 42, 60
3030                         # 39 "00"
3130303030303031
383938333130303030303030303031
0011 000000013010
`

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes a frame and reads one length-prefixed answer.
func roundTrip(t testing.TB, c net.Conn, frame []byte) ([]byte, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return nil, err
	}
	return readAnswer(c)
}

func readAnswer(c net.Conn) ([]byte, error) {
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint16(lb[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	return append(lb[:], body...), nil
}

func TestEchoTestGoldenBytes(t *testing.T) {
	sw := testSwitch(t)
	pos, _, _ := sw.Addrs()
	c := dial(t, pos)
	for i := 0; i < 3; i++ { // the connection stays usable
		got, err := roundTrip(t, c, unhex(t, echoRequest))
		if err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, echoResponse); !bytes.Equal(got, want) {
			t.Fatalf("echo response\n got %X\nwant %X", got, want)
		}
	}
}

// expectClosed asserts the switch closes the connection (possibly after
// one answer) within the frame timeout.
func expectClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	// A close with our unread bytes still in its buffer is a reset.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("want the switch to close the connection, got %v", err)
	}
	return b
}

func TestAcceptorSurvivesAbuse(t *testing.T) {
	sw := testSwitch(t, func(c *Config) {
		c.POS.FrameTimeout = Duration(300 * time.Millisecond)
		// Every connection here comes from 127.0.0.1, the 1,000 idle
		// ones included; the per-peer limit has its own test.
		c.POS.MaxConnectionsPerPeer = c.POS.MaxConnections
	})
	pos, _, _ := sw.Addrs()
	baseline := runtime.NumGoroutine()

	// Garbage from a fixed seed, so that a failure can be replayed; its
	// MTI bytes are forced out of BCD so that no seed can make its head
	// readable (that case, a 30 before the close, is "truncated frame").
	random := make([]byte, 4096)
	rng := mrand.New(mrand.NewPCG(20261122, 1))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0], random[1] = 0x7F, 0xFF // a length beyond the maximum
	random[2+5+6] = 0xFA              // not a BCD digit pair

	echo := unhex(t, echoRequest)
	bit1 := append([]byte(nil), echo...)
	bit1[2+5+6+2] |= 0x80 // bitmap byte 0: secondary bitmap bit

	cases := []struct {
		name  string
		frame []byte
		// answer is the response code expected before the close; "" means
		// a close without an answer.
		answer string
	}{
		{"random bytes", random, ""},
		{"length 65535 then nothing", []byte{0xFF, 0xFF}, ""},
		{"truncated frame", echo[:len(echo)-10], "30"},
		{"truncated before MTI", echo[:2+8], ""},
		{"length below minimum", []byte{0x00, 0x02, 0x60, 0x00}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, pos)
			if _, err := c.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			rest := expectClosed(t, c)
			if tc.answer == "" {
				if len(rest) != 0 {
					t.Fatalf("want a close without an answer, got %X", rest)
				}
				return
			}
			if got := responseCode(t, rest); got != tc.answer {
				t.Fatalf("response code %q, want %q (frame %X)", got, tc.answer, rest)
			}
		})
	}

	t.Run("bit 1 set", func(t *testing.T) {
		c := dial(t, pos)
		got, err := roundTrip(t, c, bit1)
		if err != nil {
			t.Fatal(err)
		}
		if rc := responseCode(t, got); rc != "30" {
			t.Fatalf("rc %q, want 30", rc)
		}
	})

	// 1,000 idle connections must not stop a well-behaved terminal.
	idle := make([]net.Conn, 0, 1000)
	for i := 0; i < 1000; i++ {
		c, err := net.Dial("tcp", pos)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	c := dial(t, pos)
	got, err := roundTrip(t, c, echo)
	if err != nil || !bytes.Equal(got, unhex(t, echoResponse)) {
		t.Fatalf("echo with 1000 idle connections: %X, %v", got, err)
	}
	for _, ic := range idle {
		ic.Close()
	}
	c.Close()

	// Every connection goroutine is gone once its peer is.
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > baseline+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), baseline, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnectionLimit(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.POS.MaxConnections, c.POS.MaxConnectionsPerPeer = 2, 2 })
	pos, _, _ := sw.Addrs()
	a, b := dial(t, pos), dial(t, pos)
	// Both served.
	for _, c := range []net.Conn{a, b} {
		if _, err := roundTrip(t, c, unhex(t, echoRequest)); err != nil {
			t.Fatal(err)
		}
	}
	// A third is closed at once.
	c := dial(t, pos)
	if rest := expectClosed(t, c); len(rest) != 0 {
		t.Fatalf("over-limit connection got %X", rest)
	}
	expectRejected(t, sw, "connection_limit", 1)
	// A freed slot is reused.
	a.Close()
	var ok bool
	for i := 0; i < 500 && !ok; i++ { // up to 10 s on a loaded machine
		d := dial(t, pos)
		_, err := roundTrip(t, d, unhex(t, echoRequest))
		ok = err == nil
		if !ok {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatal("slot of a closed connection never freed")
	}
}

func TestShutdownFinishesAndClosesIdle(t *testing.T) {
	sw := testSwitch(t)
	pos, _, _ := sw.Addrs()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		c := dial(t, pos)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.ReadAll(c) // returns when the switch closes it
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := net.DialTimeout("tcp", pos, time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// responseCode extracts field 39 of a POS response frame.
func responseCode(t testing.TB, frame []byte) string {
	t.Helper()
	_, _, msg, err := spec.SplitPOS(frame[2:])
	if err != nil {
		t.Fatalf("response frame %X: %v", frame, err)
	}
	m, err := spec.DecodePOS(msg)
	if err != nil {
		t.Fatalf("response %X: %v", frame, err)
	}
	return m.ResponseCode
}

// rejected is switch_rejected_total{listener="pos",reason=reason}, as the
// registry exports it (0 when there is no such series).
func rejected(t *testing.T, sw *Switch, reason string) float64 {
	t.Helper()
	return metricValue(t, sw, "switch_rejected_total", map[string]string{"listener": "pos", "reason": reason})
}

// expectRejected checks that the POS listener has counted want refusals
// for reason. The acceptor counts a refused connection before it closes
// it, so a client that has seen the close finds it counted.
func expectRejected(t *testing.T, sw *Switch, reason string, want float64) {
	t.Helper()
	if n := rejected(t, sw, reason); n != want {
		t.Fatalf("%s rejections %v, want %v", reason, n, want)
	}
}

// metricValue is the value of the counter or gauge series name{want} as
// the registry exports it (0 when there is no such series).
func metricValue(t *testing.T, sw *Switch, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := sw.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// dialFrom connects to addr from the local IP address from; ok is false
// when that address cannot be bound here.
func dialFrom(t *testing.T, from, addr string) (c net.Conn, ok bool) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Logf("dial from %s: %v", from, err)
		return nil, false
	}
	t.Cleanup(func() { c.Close() })
	return c, true
}

// One host may hold max_connections_per_peer connections however many
// slots are free; its next one is accepted and closed at once, its first
// ones keep being served, another host is not affected, a connection it
// closes gives its place back, and no entry outlives its connections.
func TestPeerConnectionLimit(t *testing.T) {
	sw := testSwitch(t, func(c *Config) {
		c.POS.MaxConnections, c.POS.MaxConnectionsPerPeer = 100, 2
		c.POS.TrustedNetworks = nil // the demo's allowance for this machine
	})
	pos, _, _ := sw.Addrs()
	echo, want := unhex(t, echoRequest), unhex(t, echoResponse)
	var open []net.Conn // closed at the end, to see the entries go
	served := func(t *testing.T, c net.Conn) {
		t.Helper()
		got, err := roundTrip(t, c, echo)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("echo: %X, %v", got, err)
		}
	}

	a, b := dial(t, pos), dial(t, pos)
	open = append(open, b)
	served(t, a)
	served(t, b)

	// The third from 127.0.0.1 is closed without an answer, though 98
	// slots are free.
	c := dial(t, pos)
	_, _ = c.Write(echo) // the close may come before or after this
	if rest := expectClosed(t, c); len(rest) != 0 {
		t.Fatalf("over-limit connection got %X", rest)
	}
	expectRejected(t, sw, "peer_connection_limit", 1)
	if n := rejected(t, sw, "connection_limit"); n != 0 {
		t.Fatalf("connection_limit rejections %v, want 0", n)
	}

	// The first two are still served.
	served(t, a)
	served(t, b)

	// Another host is not affected (all of 127/8 is loopback on Linux).
	if o, ok := dialFrom(t, "127.0.0.2", pos); ok {
		open = append(open, o)
		served(t, o)
	}

	// Closing one of the first two gives its place back. The switch sees
	// the close a moment later; retry until it has.
	a.Close()
	var ok bool
	for i := 0; i < 500 && !ok; i++ { // up to 10 s on a loaded machine
		d := dial(t, pos)
		got, err := roundTrip(t, d, echo)
		if ok = err == nil && bytes.Equal(got, want); ok {
			open = append(open, d)
		} else {
			d.Close()
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatal("place of a closed connection never given back")
	}
	served(t, b)

	// Once every connection is gone, so is every per-peer entry.
	for _, c := range open {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for sw.pos.PeerEntries() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d per-peer entries left with no connection open", sw.pos.PeerEntries())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRefusalsAreLoggedOnce: connections turned away by a limit are
// logged, naming the reason and the peer, but at most once a minute, so a
// host hammering a full listener cannot flood the log.
func TestRefusalsAreLoggedOnce(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	sw := testSwitchLog(t, zap.New(core), func(c *Config) {
		c.POS.MaxConnections, c.POS.MaxConnectionsPerPeer = 10, 1
		c.POS.TrustedNetworks = nil // the demo's allowance for this machine
	})
	pos, _, _ := sw.Addrs()
	keep := dial(t, pos)
	defer keep.Close()
	if _, err := roundTrip(t, keep, unhex(t, echoRequest)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		expectClosed(t, dial(t, pos))
	}
	expectRejected(t, sw, "peer_connection_limit", 3)
	got := logs.FilterMessageSnippet("connection refused").All()
	if len(got) != 1 {
		t.Fatalf("%d refusal warnings for 3 refusals, want 1", len(got))
	}
	f := got[0].ContextMap()
	if f["reason"] != "peer_connection_limit" || f["peer"] != "127.0.0.1" {
		t.Fatalf("warning fields %v", f)
	}
}
