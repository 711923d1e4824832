// Package gateway is the protocol of the switch's gateway port
// (docs/gateway-dialect.md): ISO 8583:1987 with a 2-byte binary length,
// ASCII MTI and fields and binary bitmaps, served by a transport.Acceptor
// as its transport.Protocol. It answers echo tests and sign-ons itself,
// hands every other request to the institutions' front end
// (Institutions, docs/recharge.md) when institutions are configured, and
// says 40 to everything else. Institutions maps an institution's request
// into a txn.Transaction and its outcome back into the answer (txn.go)
// and has the recharge service decide it as a txn.Destination.
package gateway

import (
	"net/netip"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/transport"
	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Inbound answers the requests of outside institutions (Institutions):
// the packed answer, or nil when there is none to give, and whether the
// request proved its sender (a verified MAC).
type Inbound interface {
	Handle(peer netip.Addr, peerStr string, req *iso8583.Message, raw []byte, start time.Time) (answer []byte, authenticated bool)
}

// Metrics are the switch's series the protocol counts into
// (docs/operations.md#metrics).
type Metrics struct {
	Messages     *prometheus.CounterVec   // listener, direction, mti
	Rejected     *prometheus.CounterVec   // listener, reason
	Transactions *prometheus.CounterVec   // type, rc
	Duration     *prometheus.HistogramVec // type
}

// Protocol is the gateway port's transport.Protocol.
type Protocol struct {
	log     *zap.Logger
	metrics Metrics
	inbound Inbound
}

// New builds the protocol; inbound is nil when no institution is
// configured (then every request but an echo test or sign-on is 40).
func New(log *zap.Logger, m Metrics, inbound Inbound) *Protocol {
	return &Protocol{log: log, metrics: m, inbound: inbound}
}

// echoFields are echoed from a request into its response.
var echoFields = []int{2, 3, 4, 7, 11, 12, 13, 32, 33, 37, 41, 42, 49, 70}

// FormatError answers a frame that could not be read whole: 30 when its
// head names a request MTI, nothing otherwise.
func (g *Protocol) FormatError(s *transport.Session, head []byte) []byte {
	if len(head) < 4 {
		return nil
	}
	mti := string(head[:4])
	rmti := spec.ResponseMTI(mti)
	if rmti == "" {
		return nil
	}
	resp := iso8583.NewMessage(spec.Gateway)
	resp.MTI(rmti)
	if err := resp.Field(39, spec.RCFormatError); err != nil {
		return nil
	}
	return g.pack(resp, rmti)
}

func (g *Protocol) pack(resp *iso8583.Message, mti string) []byte {
	packed, err := resp.Pack()
	if err != nil {
		g.log.Error("cannot pack gateway response", zap.String("mti", mti), zap.Error(err))
		return nil
	}
	frame, err := spec.AppendFrame(make([]byte, 0, len(packed)+2), packed)
	if err != nil {
		g.log.Error("gateway response too large", zap.String("mti", mti), zap.Error(err))
		return nil
	}
	g.metrics.Messages.WithLabelValues("gateway", "out", spec.MTILabel(mti)).Inc()
	return frame
}

// Handle answers one frame body: decode, then an inbound institution's
// request goes to Inbound, an echo test or sign-on is answered here.
func (g *Protocol) Handle(s *transport.Session, body []byte) ([]byte, bool) {
	start := time.Now()
	req, err := spec.DecodeGateway(body)
	if err != nil {
		mti := ""
		if len(body) >= 4 {
			mti = string(body[:4])
		}
		g.metrics.Messages.WithLabelValues("gateway", "in", spec.MTILabel(mti)).Inc()
		g.metrics.Rejected.WithLabelValues("gateway", "undecodable").Inc()
		s.Unauthenticated, s.Undecodable = true, true
		g.log.Info("undecodable gateway message", zap.String("peer", s.Peer), zap.Error(err))
		return g.FormatError(s, body), false
	}
	mti, _ := req.GetMTI()
	g.metrics.Messages.WithLabelValues("gateway", "in", spec.MTILabel(mti)).Inc()
	rmti := spec.ResponseMTI(mti)
	if rmti == "" {
		g.metrics.Rejected.WithLabelValues("gateway", "not_a_request").Inc()
		return nil, false
	}
	if mti != "0800" && g.inbound != nil {
		// Inbound institutions (docs/recharge.md).
		packed, authenticated := g.inbound.Handle(s.IP(), s.Peer, req, body, start)
		s.Unauthenticated = !authenticated
		return g.frame(packed), false
	}
	resp := iso8583.NewMessage(spec.Gateway)
	resp.MTI(rmti)
	for _, id := range echoFields {
		if v, err := req.GetString(id); err == nil && v != "" {
			if err := resp.Field(id, v); err != nil {
				g.log.Warn("cannot echo gateway field", zap.Int("field", id), zap.Error(err))
			}
		}
	}
	code, _ := req.GetString(70)
	tx, rc := "unknown", spec.RCFunctionNotSupported
	switch {
	case mti == "0800" && code == "301":
		tx, rc = "gateway_echo_test", spec.RCApproved
	case mti == "0800" && code == "001":
		// Inbound institutions need no sign-on; one that sends it is
		// answered 00 (docs/recharge.md).
		tx, rc = "gateway_sign_on", spec.RCApproved
	}
	if err := resp.Field(39, rc); err != nil {
		return nil, true
	}
	frame := g.pack(resp, rmti)
	g.metrics.Transactions.WithLabelValues(tx, rc).Inc()
	g.metrics.Duration.WithLabelValues(tx).Observe(time.Since(start).Seconds())
	return frame, false
}

// frame frames an answer packed elsewhere (nil stays nil) and counts it.
func (g *Protocol) frame(packed []byte) []byte {
	if packed == nil {
		return nil
	}
	frame, err := spec.AppendFrame(make([]byte, 0, len(packed)+2), packed)
	if err != nil {
		g.log.Error("gateway response too large", zap.Error(err))
		return nil
	}
	g.metrics.Messages.WithLabelValues("gateway", "out", spec.MTILabel(string(packed[:4]))).Inc()
	return frame
}
