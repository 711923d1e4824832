package switching

import (
	"encoding/hex"
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
// is a request MTI of this dialect (ISO 8583:1987, version digit 0);
// otherwise nothing: a head that reads as MTI 8107 is garbage that
// happened to be BCD, and answering it would only feed a confused peer.
func (p *posProtocol) formatError(s *session, head []byte) []byte {
	t, h, mti, ok := headMTI(head)
	if !ok || mti[0] != '0' || spec.ResponseMTI(mti) == "" {
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
		s.unauthenticated, s.undecodable = true, true
		return p.formatError(s, body), true
	}
	req, err := spec.DecodePOS(msg)
	if err != nil {
		_, _, mti, _ := headMTI(body)
		p.sw.metrics.Messages.WithLabelValues("pos", "in", mtiLabel(mti)).Inc()
		p.sw.metrics.Rejected.WithLabelValues("pos", "undecodable").Inc()
		p.sw.log.Debug("undecodable POS message", zap.String("peer", s.peer), zap.String("mti", mti), zap.Error(err))
		// Counted, not journaled (docs/security.md): nothing anyone sends
		// without a terminal's keys may grow the disk.
		s.unauthenticated, s.undecodable = true, true
		// The frame was read whole, so the stream is still in step:
		// answer 30 and keep the connection.
		return p.formatError(s, body), false
	}
	p.sw.metrics.Messages.WithLabelValues("pos", "in", mtiLabel(req.MTI)).Inc()
	s.terminal = req.TerminalID
	tx, orig := req.TxType()
	x := &exchange{s: s, req: req, tx: tx, orig: orig, tpdu: t, hdr: h, start: start, date: p.sw.clock.Begin()}
	defer p.sw.clock.End(x.date)
	if spec.ResponseMTI(req.MTI) == "" {
		// A response MTI sent as a request: nothing to answer with.
		p.sw.metrics.Rejected.WithLabelValues("pos", "not_a_request").Inc()
		s.unauthenticated = true
		return nil, false
	}

	r := p.process(x)
	packed, err := p.packReply(x, r)
	if err != nil {
		p.sw.log.Error("cannot pack response", zap.String("mti", r.resp.MTI), zap.Error(err))
		return nil, true
	}
	if !x.committed(r) {
		if x.journaled(r) {
			p.journalAlone(x, r.resp, packed)
		} else {
			s.unauthenticated = true
		}
	}
	hdr := h
	if r.signOnAgain {
		hdr = h.WithProcessingRequirement(spec.ProcessingSignOn)
	}
	p.sw.metrics.Messages.WithLabelValues("pos", "out", mtiLabel(r.resp.MTI)).Inc()
	frame := spec.AppendPOSFrame(s.out[:0], t.Reply(), hdr, packed)
	s.out = frame
	label := tx.String()
	p.sw.metrics.Transactions.WithLabelValues(label, r.resp.ResponseCode).Inc()
	hist := p.sw.metrics.Duration.WithLabelValues(label)
	s.written = func() { hist.Observe(time.Since(start).Seconds()) }
	if ce := p.sw.log.Check(zap.DebugLevel, "transaction"); ce != nil {
		ce.Write(zap.String("terminal", req.TerminalID), zap.String("type", label),
			panField(req.CardNumber()), zap.Int64("amount", int64(req.Amount)),
			zap.String("rc", r.resp.ResponseCode), zap.String("rrn", r.resp.RRN))
	}
	return frame, false
}
