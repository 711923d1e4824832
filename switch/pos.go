package switching

import (
	"encoding/hex"
	"errors"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// posProtocol speaks the POS dialect (DESIGN §4) on the POS acceptor.
type posProtocol struct {
	sw *Switch
}

// headMTI reads the MTI of a POS frame body when its head arrived:
// TPDU + header + 2 BCD bytes. "" when it did not or is not BCD digits.
func headMTI(body []byte) (spec.TPDU, spec.Header, string, bool) {
	var t spec.TPDU
	var h spec.Header
	if len(body) < spec.TPDULen+spec.HeaderLen+2 {
		return t, h, "", false
	}
	copy(t[:], body)
	copy(h[:], body[spec.TPDULen:])
	mti := hex.EncodeToString(body[spec.TPDULen+spec.HeaderLen : spec.TPDULen+spec.HeaderLen+2])
	for i := 0; i < len(mti); i++ {
		if mti[i] < '0' || mti[i] > '9' {
			return t, h, "", false
		}
	}
	return t, h, mti, true
}

// formatError answers 30 to a frame whose head is readable and whose MTI
// is a request MTI; otherwise nothing.
func (p *posProtocol) formatError(s *session, head []byte) []byte {
	t, h, mti, ok := headMTI(head)
	if !ok || spec.ResponseMTI(mti) == "" {
		return nil
	}
	return p.answer(spec.NewPOSResponse(&spec.POSMessage{MTI: mti}, spec.RCFormatError), t, h, nil)
}

// answer packs resp (with a MAC when mac is non-nil) into a frame back
// to the terminal: TPDU swapped, header echoed.
func (p *posProtocol) answer(resp *spec.POSMessage, t spec.TPDU, h spec.Header, mac spec.MACFunc) []byte {
	var (
		packed []byte
		err    error
	)
	if mac != nil {
		packed, err = spec.EncodePOSWithMAC(resp, mac)
	} else {
		packed, err = spec.EncodePOS(resp)
	}
	if err != nil {
		// Only our own response can fail to pack here: a bug, not an
		// input problem. Answer 96 without the fields that failed.
		p.sw.log.Error("cannot pack response", zap.String("mti", resp.MTI), zap.Error(err))
		packed, err = spec.EncodePOS(&spec.POSMessage{
			MTI: resp.MTI, ResponseCode: spec.RCSystemMalfunction,
			TerminalID: resp.TerminalID, MerchantID: resp.MerchantID, STAN: resp.STAN,
		})
		if err != nil {
			return nil
		}
	}
	p.sw.metrics.Messages.WithLabelValues("pos", "out", mtiLabel(resp.MTI)).Inc()
	return spec.AppendPOSFrame(make([]byte, 0, spec.POSFrameLen(len(packed))), t.Reply(), h, packed)
}

func (p *posProtocol) handle(s *session, body []byte) ([]byte, bool) {
	start := time.Now()
	t, h, msg, err := spec.SplitPOS(body)
	if err != nil {
		p.sw.metrics.Rejected.WithLabelValues("pos", "frame_too_short").Inc()
		return p.formatError(s, body), true
	}
	req, err := spec.DecodePOS(msg)
	if err != nil {
		_, _, mti, _ := headMTI(body)
		p.sw.metrics.Messages.WithLabelValues("pos", "in", mtiLabel(mti)).Inc()
		p.sw.metrics.Rejected.WithLabelValues("pos", "undecodable").Inc()
		p.sw.log.Info("undecodable POS message", zap.String("peer", s.peer), zap.String("mti", mti), zap.Error(errors.Unwrap(err)))
		// The frame was read whole, so the stream is still in step:
		// answer 30 and keep the connection.
		return p.formatError(s, body), false
	}
	p.sw.metrics.Messages.WithLabelValues("pos", "in", mtiLabel(req.MTI)).Inc()
	s.terminal = req.TerminalID
	tx, _ := req.TxType()

	var resp *spec.POSMessage
	switch tx {
	case spec.EchoTest:
		resp = spec.NewPOSResponse(req, spec.RCApproved)
	default:
		// Not built yet: say so plainly rather than stay silent.
		resp = spec.NewPOSResponse(req, spec.RCFunctionNotSupported)
	}
	if resp.MTI == "" {
		// A response or unknown MTI sent as a request: nothing to answer
		// with; a terminal never does this.
		p.sw.metrics.Rejected.WithLabelValues("pos", "not_a_request").Inc()
		return nil, false
	}
	frame := p.answer(resp, t, h, nil)
	p.sw.metrics.Transactions.WithLabelValues(tx.String(), resp.ResponseCode).Inc()
	p.sw.metrics.Duration.WithLabelValues(tx.String()).Observe(time.Since(start).Seconds())
	return frame, false
}
