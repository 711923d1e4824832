package pos

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"github.com/cardswitch/cardswitch/switch/transport"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

// untouched stands for every collaborator the frames of these tests must
// not reach: answered before any terminal is known, nothing is looked up,
// MACed, journaled or committed.
type untouched struct{ t *testing.T }

func (u untouched) fail(what string) { u.t.Helper(); u.t.Errorf("%s called", what) }
func (u untouched) NewBatch(...pebble.BatchOption) *pebble.Batch {
	u.fail("NewBatch")
	return nil
}
func (u untouched) AppendPairAt(*pebble.Batch, *journal.Reservation, *journal.Entry, *journal.Entry) (uint64, uint64, error) {
	u.fail("AppendPairAt")
	return 0, 0, nil
}
func (u untouched) AppendAnsweredAt(*pebble.Batch, *journal.Reservation, *journal.Entry, *journal.Entry, journal.DuplicateKey, journal.ResponseRecord) (uint64, uint64, error) {
	u.fail("AppendAnsweredAt")
	return 0, 0, nil
}
func (u untouched) GetResponse(journal.DuplicateKey) (journal.ResponseRecord, bool, error) {
	u.fail("GetResponse")
	return journal.ResponseRecord{}, false, nil
}
func (u untouched) ResponseSTANs(string, string, func(string) bool) error {
	u.fail("ResponseSTANs")
	return nil
}
func (u untouched) Get(uint64) (*journal.Entry, error) { u.fail("journal Get"); return nil, nil }
func (u untouched) VerifyTerminalMAC(string, []byte, []byte) (bool, error) {
	u.fail("VerifyTerminalMAC")
	return false, nil
}
func (u untouched) GenerateTerminalMAC(string, []byte) ([]byte, error) {
	u.fail("GenerateTerminalMAC")
	return nil, nil
}
func (u untouched) VerifySignOnProof(string, string, []byte) (bool, error) {
	u.fail("VerifySignOnProof")
	return false, nil
}
func (u untouched) SignOn(string, string) ([]byte, error) { u.fail("SignOn"); return nil, nil }
func (u untouched) BatchTotals(string, uint32) (ledger.Totals, error) {
	u.fail("BatchTotals")
	return ledger.Totals{}, nil
}
func (u untouched) Merchant(string) (ledger.MerchantInfo, bool) {
	u.fail("Merchant")
	return ledger.MerchantInfo{}, false
}
func (u untouched) Route(string, string, string) (string, error) { u.fail("Route"); return "", nil }
func (u untouched) Destination(string) (txn.Destination, bool) {
	u.fail("Destination")
	return nil, false
}
func (u untouched) Pinned(*txn.Transaction) (txn.Destination, bool) {
	u.fail("Pinned")
	return nil, false
}
func (u untouched) IsLink(string) bool { return false }

// noTerminals is a registry that knows no terminal.
type noTerminals struct{ untouched }

func (noTerminals) Get(string) *terminals.Terminal { return nil }
func (n noTerminals) Update(string, func(*terminals.Terminal) error) (*terminals.Terminal, error) {
	n.fail("Update")
	return nil, nil
}
func (n noTerminals) ClaimNewSTAN(string, uint32, uint32, bool, func(string, uint32) (uint32, uint32, error)) (bool, terminals.STANClaim, error) {
	n.fail("ClaimNewSTAN")
	return false, terminals.STANClaim{}, nil
}

// fixedClock counts the exchanges it opened and closed.
type fixedClock struct{ begun, ended int }

func (c *fixedClock) Begin() ledger.BusinessDate {
	c.begun++
	return ledger.DateOf(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
}
func (c *fixedClock) End(ledger.BusinessDate) { c.ended++ }
func (c *fixedClock) ReserveRRN(_ ledger.BusinessDate, r *journal.Reservation) (string, error) {
	*r = journal.Reservation{}
	return "", nil
}
func (c *fixedClock) LocalNow() time.Time { return time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC) }

func testProtocol(t *testing.T) (*Protocol, Metrics, *fixedClock) {
	u := untouched{t}
	m := Metrics{
		Messages:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "m"}, []string{"listener", "direction", "mti"}),
		Transactions:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t"}, []string{"type", "rc"}),
		Duration:       prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d"}, []string{"type"}),
		Rejected:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"listener", "reason"}),
		SignOnRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s"}, []string{"reason"}),
	}
	clock := &fixedClock{}
	p, err := New(Options{DB: u, Journal: u, Terminals: noTerminals{u}, HSM: u, Ledger: u, Clock: clock,
		Routes: u, Destinations: u, AnswerTimeout: time.Second,
		SignOn:  SignOnLimits{MaxFailuresPerTerminal: 1, MaxFailuresPerAddress: 1, Window: time.Minute},
		Metrics: m, Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return p, m, clock
}

var (
	testTPDU   = spec.TPDU{0x60, 0x00, 0x01, 0x00, 0x02}
	testHeader = spec.Header{0x60, 0x31, 0x00, 0x31, 0x00, 0x00}
)

// body is the frame body of m: TPDU, header, message.
func body(t *testing.T, m *spec.POSMessage) []byte {
	t.Helper()
	packed, err := spec.EncodePOS(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(append([]byte(nil), testTPDU[:]...), testHeader[:]...), packed...)
}

// answerOf reads a framed answer: length, TPDU swapped, header echoed.
func answerOf(t *testing.T, frame []byte) *spec.POSMessage {
	t.Helper()
	if len(frame) < 2 || int(binary.BigEndian.Uint16(frame)) != len(frame)-2 {
		t.Fatalf("frame length prefix wrong: % X", frame)
	}
	tp, h, msg, err := spec.SplitPOS(frame[2:])
	if err != nil {
		t.Fatal(err)
	}
	if tp != testTPDU.Reply() || !bytes.Equal(h[:], testHeader[:]) {
		t.Fatalf("TPDU %s header % X, want %s and % X", tp, h[:], testTPDU.Reply(), testHeader[:])
	}
	resp, err := spec.DecodePOS(msg)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestHandleWithoutSwitch runs frames through Protocol.Handle with
// nothing but the collaborators of Options: an echo test is answered 00,
// a sign-on of an unknown terminal 97, a frame too short 30 with the
// connection closed — all without a MAC, nothing journaled, every
// exchange's business date closed again.
func TestHandleWithoutSwitch(t *testing.T) {
	p, m, clock := testProtocol(t)
	mgmt := spec.Field60{Type: spec.NetworkManagementType, Batch: "000000"}
	echo := &spec.POSMessage{MTI: spec.MTINetworkManagement, STAN: "000001", TerminalID: "T0000001",
		MerchantID: "898110000000001", Reserved60: mgmt}
	echo.Reserved60.NetworkCode = spec.NetworkEchoTest
	signOn := *echo
	signOn.MTI, signOn.Reserved60.NetworkCode = spec.MTINetworkSignOn, spec.SignOnDoubleDES

	for _, tc := range []struct {
		name    string
		req     *spec.POSMessage
		wantMTI string
		wantRC  string
		tx      string
	}{
		{"echo test", echo, "0830", spec.RCApproved, "echo_test"},
		{"unknown terminal's sign-on", &signOn, "0810", spec.RCTerminalNotFound, "sign_on"},
	} {
		s := &transport.Session{Peer: "127.0.0.1:40000"}
		frame, closeAfter := p.Handle(s, body(t, tc.req))
		if closeAfter {
			t.Errorf("%s: connection closed", tc.name)
		}
		resp := answerOf(t, frame)
		if resp.MTI != tc.wantMTI || resp.ResponseCode != tc.wantRC || resp.MAC != nil || resp.STAN != tc.req.STAN {
			t.Errorf("%s: answer %s rc %s MAC %X STAN %s, want %s rc %s without MAC, STAN %s", tc.name,
				resp.MTI, resp.ResponseCode, resp.MAC, resp.STAN, tc.wantMTI, tc.wantRC, tc.req.STAN)
		}
		if !s.Unauthenticated || s.Terminal != tc.req.TerminalID || s.Written == nil {
			t.Errorf("%s: session unauthenticated %v terminal %q written %v", tc.name, s.Unauthenticated, s.Terminal, s.Written != nil)
		}
		if got := testutil.ToFloat64(m.Transactions.WithLabelValues(tc.tx, tc.wantRC)); got != 1 {
			t.Errorf("%s: counted %v times", tc.name, got)
		}
	}
	if clock.begun != 2 || clock.ended != 2 {
		t.Errorf("business dates begun %d, ended %d; want 2 and 2", clock.begun, clock.ended)
	}

	s := &transport.Session{Peer: "127.0.0.1:40000"}
	short := append(append([]byte(nil), testTPDU[:]...), testHeader[:]...)
	short = append(short, 0x02, 0x00, 0x20)
	frame, closeAfter := p.Handle(s, short)
	if !closeAfter {
		t.Error("frame too short: connection kept")
	}
	if resp := answerOf(t, frame); resp.MTI != "0210" || resp.ResponseCode != spec.RCFormatError || resp.MAC != nil {
		t.Errorf("frame too short: answer %s rc %s MAC %X, want 0210 rc 30 without MAC", resp.MTI, resp.ResponseCode, resp.MAC)
	}
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues("pos", "frame_too_short")); got != 1 {
		t.Errorf("frame too short counted %v times", got)
	}
}
