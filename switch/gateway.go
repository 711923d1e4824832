package switching

import (
	"github.com/cardswitch/cardswitch/switch/transport"

	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"
)

// gatewayProtocol speaks the ISO 8583:1987 gateway dialect on the gateway
// acceptor: 2-byte binary length, ASCII MTI and fields, binary bitmaps.
// This wave answers echo tests (0800, field 70 = 301) and says 40 to
// everything else; inbound web recharge comes with the gateway links.
type gatewayProtocol struct {
	sw *Switch
}

// gatewayEchoFields are echoed from a request into its response.
var gatewayEchoFields = []int{2, 3, 4, 7, 11, 12, 13, 32, 33, 37, 41, 42, 49, 70}

func (g *gatewayProtocol) FormatError(s *transport.Session, head []byte) []byte {
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

func (g *gatewayProtocol) pack(resp *iso8583.Message, mti string) []byte {
	packed, err := resp.Pack()
	if err != nil {
		g.sw.log.Error("cannot pack gateway response", zap.String("mti", mti), zap.Error(err))
		return nil
	}
	frame, err := spec.AppendFrame(make([]byte, 0, len(packed)+2), packed)
	if err != nil {
		g.sw.log.Error("gateway response too large", zap.String("mti", mti), zap.Error(err))
		return nil
	}
	g.sw.metrics.Messages.WithLabelValues("gateway", "out", mtiLabel(mti)).Inc()
	return frame
}

func (g *gatewayProtocol) Handle(s *transport.Session, body []byte) ([]byte, bool) {
	start := time.Now()
	req, err := spec.DecodeGateway(body)
	if err != nil {
		mti := ""
		if len(body) >= 4 {
			mti = string(body[:4])
		}
		g.sw.metrics.Messages.WithLabelValues("gateway", "in", mtiLabel(mti)).Inc()
		g.sw.metrics.Rejected.WithLabelValues("gateway", "undecodable").Inc()
		s.Unauthenticated, s.Undecodable = true, true
		g.sw.log.Info("undecodable gateway message", zap.String("peer", s.Peer), zap.Error(err))
		return g.FormatError(s, body), false
	}
	mti, _ := req.GetMTI()
	g.sw.metrics.Messages.WithLabelValues("gateway", "in", mtiLabel(mti)).Inc()
	rmti := spec.ResponseMTI(mti)
	if rmti == "" {
		g.sw.metrics.Rejected.WithLabelValues("gateway", "not_a_request").Inc()
		return nil, false
	}
	if mti != "0800" && g.sw.recharge != nil && g.sw.recharge.enabled {
		// Inbound institutions (docs/recharge.md).
		packed, authenticated := g.sw.recharge.iso.Handle(s.IP(), s.Peer, req, body, start)
		s.Unauthenticated = !authenticated
		return g.frame(packed), false
	}
	resp := iso8583.NewMessage(spec.Gateway)
	resp.MTI(rmti)
	for _, id := range gatewayEchoFields {
		if v, err := req.GetString(id); err == nil && v != "" {
			if err := resp.Field(id, v); err != nil {
				g.sw.log.Warn("cannot echo gateway field", zap.Int("field", id), zap.Error(err))
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
	g.sw.metrics.Transactions.WithLabelValues(tx, rc).Inc()
	g.sw.metrics.Duration.WithLabelValues(tx).Observe(time.Since(start).Seconds())
	return frame, false
}

// frame frames an answer packed elsewhere (nil stays nil) and counts it.
func (g *gatewayProtocol) frame(packed []byte) []byte {
	if packed == nil {
		return nil
	}
	frame, err := spec.AppendFrame(make([]byte, 0, len(packed)+2), packed)
	if err != nil {
		g.sw.log.Error("gateway response too large", zap.Error(err))
		return nil
	}
	g.sw.metrics.Messages.WithLabelValues("gateway", "out", mtiLabel(string(packed[:4]))).Inc()
	return frame
}
