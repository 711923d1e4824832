package gateway

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/transport"
	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func testMetrics() Metrics {
	return Metrics{
		Messages:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "m"}, []string{"listener", "direction", "mti"}),
		Rejected:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"listener", "reason"}),
		Transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t"}, []string{"type", "rc"}),
		Duration:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d"}, []string{"type"}),
	}
}

func body(t *testing.T, mti string, fields map[int]string) []byte {
	t.Helper()
	m := iso8583.NewMessage(spec.Gateway)
	m.MTI(mti)
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func answer(t *testing.T, frame []byte) (mti, rc string) {
	t.Helper()
	if len(frame) < 2 || int(frame[0])<<8|int(frame[1]) != len(frame)-2 {
		t.Fatalf("frame %X: bad length prefix", frame)
	}
	m, err := spec.DecodeGateway(frame[2:])
	if err != nil {
		t.Fatalf("answer %X: %v", frame, err)
	}
	mti, _ = m.GetMTI()
	rc, _ = m.GetString(39)
	return mti, rc
}

// fakeInbound records what it was handed and answers a fixed message.
type fakeInbound struct {
	calls         int
	authenticated bool
	answer        []byte
}

func (f *fakeInbound) Handle(peer netip.Addr, peerStr string, req *iso8583.Message, raw []byte, start time.Time) ([]byte, bool) {
	f.calls++
	return f.answer, f.authenticated
}

func TestProtocolAnswers(t *testing.T) {
	p := New(zap.NewNop(), testMetrics(), nil)
	for _, tt := range []struct {
		name     string
		mti      string
		fields   map[int]string
		wantMTI  string
		wantRC   string
		wantNone bool
	}{
		{"echo test", "0800", map[int]string{11: "000001", 70: "301"}, "0810", spec.RCApproved, false},
		{"sign-on", "0800", map[int]string{11: "000002", 70: "001"}, "0810", spec.RCApproved, false},
		{"other network management", "0800", map[int]string{11: "000003", 70: "002"}, "0810", spec.RCFunctionNotSupported, false},
		{"financial without institutions", "0200", map[int]string{3: "210000", 11: "000004"}, "0210", spec.RCFunctionNotSupported, false},
		{"a response is not answered", "0210", map[int]string{11: "000005"}, "", "", true},
	} {
		s := &transport.Session{}
		got, closeConn := p.Handle(s, body(t, tt.mti, tt.fields))
		if closeConn {
			t.Errorf("%s: closes the connection", tt.name)
		}
		if tt.wantNone {
			if got != nil {
				t.Errorf("%s: answered %X", tt.name, got)
			}
			continue
		}
		mti, rc := answer(t, got)
		if mti != tt.wantMTI || rc != tt.wantRC {
			t.Errorf("%s: %s rc %s, want %s rc %s", tt.name, mti, rc, tt.wantMTI, tt.wantRC)
		}
	}

	// Undecodable with a readable request MTI: 30, and the session is
	// marked unproved and undecodable.
	s := &transport.Session{}
	got, _ := p.Handle(s, []byte{'0', '8', '0', '0', 0xFF, 0xFF})
	if mti, rc := answer(t, got); mti != "0810" || rc != spec.RCFormatError {
		t.Fatalf("undecodable: %s rc %s", mti, rc)
	}
	if !s.Unauthenticated || !s.Undecodable {
		t.Fatalf("undecodable: session %+v", s)
	}
}

func TestProtocolHandsInstitutionsToInbound(t *testing.T) {
	in := &fakeInbound{answer: body(t, "0210", map[int]string{11: "000009", 39: spec.RCMACError})}
	p := New(zap.NewNop(), testMetrics(), in)
	s := &transport.Session{}
	got, _ := p.Handle(s, body(t, "0200", map[int]string{3: "210000", 11: "000009"}))
	if mti, rc := answer(t, got); in.calls != 1 || mti != "0210" || rc != spec.RCMACError {
		t.Fatalf("inbound called %d times, answer %s rc %s", in.calls, mti, rc)
	}
	if !s.Unauthenticated {
		t.Fatal("an answer the inbound front end did not authenticate leaves the session proved")
	}
	in.authenticated, s = true, &transport.Session{}
	p.Handle(s, body(t, "0200", map[int]string{3: "210000", 11: "000010"}))
	if s.Unauthenticated {
		t.Fatal("an authenticated request leaves the session unproved")
	}
	// Echo tests stay with the port, institutions or not.
	got, _ = p.Handle(&transport.Session{}, body(t, "0800", map[int]string{11: "000011", 70: "301"}))
	if mti, rc := answer(t, got); in.calls != 2 || mti != "0810" || rc != spec.RCApproved {
		t.Fatalf("echo with institutions: inbound called %d times, %s rc %s", in.calls, mti, rc)
	}
	// No answer from the front end: nothing is written.
	in.answer = nil
	if got, _ := p.Handle(&transport.Session{}, body(t, "0200", map[int]string{3: "210000", 11: "000012"})); got != nil {
		t.Fatalf("answered %X for a request the front end left unanswered", got)
	}
}
