package links

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/links/linktest"
)

// A financial request the gateway sends on a link the switch opened,
// before the link's sign-on is answered, is answered 91 (the switch
// serves no financial requests on its outbound links; docs/gateway-links.md).
func TestFinancialRequestBeforeSignOnAnswered91(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var c net.Conn = nopConn{}
	e := &env{t: t, fs: vfs.NewMem()}
	e.peer = linktest.Start(t, "bank-a", testZMK)
	if e.lmk, err = hsm.NewRandomLMK(); err != nil {
		t.Fatal(err)
	}
	e.openWith(fastSAF(), func(c *Config) {
		c.Addresses = []string{ln.Addr().String()}
		c.SignOnTimeout = 10 * time.Second
	})
	// Start connects synchronously, waiting for the sign-on's answer.
	started := make(chan error, 1)
	go func() { started <- e.mgr.Start() }()
	t.Cleanup(func() {
		c.Close()
		<-started
		e.stop()
	})

	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	read := func() *iso8583.Message {
		t.Helper()
		body, err := spec.ReadFrame(c, nil, 8192)
		if err != nil {
			t.Fatal(err)
		}
		m, err := spec.DecodeGateway(body)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// The switch signs on first; the bank leaves it unanswered.
	if m := read(); get(m, 0) != spec.GWNetworkRequest || get(m, 70) != spec.GWNetworkSignOn {
		t.Fatalf("first message %s/%s, want the sign-on", get(m, 0), get(m, 70))
	}
	req := iso8583.NewMessage(spec.Gateway)
	for id, v := range map[int]string{0: spec.GWFinancialRequest, 3: "000000", 4: "000000000100",
		7: "1204120000", 11: "000042", 32: "87654321", 41: "99990001", 42: "999900000000001", 49: "156"} {
		if err := req.Field(id, v); err != nil {
			t.Fatalf("field %d: %v", id, err)
		}
	}
	frame, err := spec.AppendGatewayFrame(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	for {
		m := read()
		if get(m, 0) != "0210" {
			continue // a repeated network request
		}
		if get(m, 11) != "000042" || get(m, 39) != "91" {
			t.Fatalf("answer STAN %s code %s, want 000042 and 91", get(m, 11), get(m, 39))
		}
		return
	}
}

func get(m *iso8583.Message, id int) string { v, _ := m.GetString(id); return v }

type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// The connection's reader hands an answer to the request waiting for it
// on its connection, in the reading goroutine, and returns nothing to the
// library; an answer nobody waits for, and the gateway's own requests,
// go on to inbound (where an answer is counted late).
func TestReaderDeliversAnswers(t *testing.T) {
	l := newLink(Config{Name: "bank-a"}, nil, nil, zap.NewNop(), nil, time.Now)
	c, err := connection.New("127.0.0.1:1", spec.Gateway, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := connection.New("127.0.0.1:2", spec.Gateway, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rd := &reader{l: l}
	rd.c.Store(c)
	frame := func(mti, stan string) []byte {
		t.Helper()
		m := iso8583.NewMessage(spec.Gateway)
		for id, v := range map[int]string{0: mti, 7: "1204120000", 11: stan, 70: spec.GWNetworkEcho} {
			if err := m.Field(id, v); err != nil {
				t.Fatal(err)
			}
		}
		if mti == spec.GWNetworkResponse {
			if err := m.Field(39, spec.RCApproved); err != nil {
				t.Fatal(err)
			}
		}
		f, err := spec.AppendGatewayFrame(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	waiting := make(chan *iso8583.Message, 1)
	l.pending[pendingKey{c: c, id: "8/000001/"}] = waiting
	elsewhere := make(chan *iso8583.Message, 1)
	l.pending[pendingKey{c: other, id: "8/000002/"}] = elsewhere

	// The answer its request waits for on this connection: delivered.
	m, err := rd.ReadMessage(bytes.NewReader(frame(spec.GWNetworkResponse, "000001")))
	if err != nil || m != nil {
		t.Fatalf("a waited-for answer: %v, %v; want nothing for the library", m, err)
	}
	select {
	case got := <-waiting:
		if get(got, 11) != "000001" || get(got, 39) != spec.RCApproved {
			t.Fatalf("delivered STAN %s code %s", get(got, 11), get(got, 39))
		}
	default:
		t.Fatal("the answer was not delivered")
	}
	if len(l.pending) != 1 {
		t.Fatalf("%d requests still waiting, want 1 (the other connection's)", len(l.pending))
	}
	// The same STAN again (no one waits now), an answer whose request
	// waits on another connection, and a request from the gateway: all
	// returned for inbound, nothing delivered.
	for _, f := range [][]byte{frame(spec.GWNetworkResponse, "000001"), frame(spec.GWNetworkResponse, "000002"),
		frame(spec.GWNetworkRequest, "000003")} {
		m, err := rd.ReadMessage(bytes.NewReader(f))
		if err != nil || m == nil {
			t.Fatalf("%v, %v; want the message returned for inbound", m, err)
		}
	}
	if len(elsewhere) != 0 || len(l.pending) != 1 {
		t.Fatalf("an answer crossed connections: %d delivered, %d waiting", len(elsewhere), len(l.pending))
	}
}
