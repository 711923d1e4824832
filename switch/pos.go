package switching

import (
	"github.com/cardswitch/cardswitch/switch/transport"

	"encoding/hex"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// posProtocol speaks the POS dialect (docs/pos-dialect.md) on the POS acceptor.
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

// FormatError answers 30 to a frame whose head is readable and whose MTI
// is a request MTI of this dialect (ISO 8583:1987, version digit 0);
// otherwise nothing: a head that reads as MTI 8107 is garbage that
// happened to be BCD, and answering it would only feed a confused peer.
// Nothing authenticated the frame, so the answer carries no MAC.
func (p *posProtocol) FormatError(s *transport.Session, head []byte) []byte {
	t, h, mti, ok := headMTI(head)
	if !ok || mti[0] != '0' || spec.ResponseMTI(mti) == "" {
		return nil
	}
	x := &exchange{s: s, req: &spec.POSMessage{MTI: mti}, tpdu: t, hdr: h}
	resp := x.answer(spec.RCFormatError)
	packed, _ := p.seal(x, resp)
	if packed == nil {
		return nil
	}
	return p.frame(x, resp, packed, nil)
}

// Handle runs one POS frame through the flow, top to bottom:
//
//	decode → authenticate (MAC) → identify & dedupe → route →
//	destination executes → record → reply
//
// decode is here; process (pipeline.go) runs the steps from authenticate
// to record, every path of it ending in the record step, which seals
// (packs and MACs) the answer; reply frames and counts it.
func (p *posProtocol) Handle(s *transport.Session, body []byte) ([]byte, bool) {
	x, early, closeAfter := p.decode(s, body)
	if x == nil {
		return early, closeAfter
	}
	defer p.sw.clock.End(x.date)
	rec := p.newRecord(x)
	defer rec.close()
	p.process(x, rec)
	return p.reply(x, rec), false
}

// decode splits and decodes a frame into an exchange. A frame that does
// not decode is journaled and answered 30 here (x nil); a response MTI
// sent as a request is not answered at all.
func (p *posProtocol) decode(s *transport.Session, body []byte) (x *exchange, early []byte, closeAfter bool) {
	start := time.Now()
	t, h, msg, err := spec.SplitPOS(body)
	if err != nil {
		p.sw.metrics.Rejected.WithLabelValues("pos", "frame_too_short").Inc()
		s.Unauthenticated, s.Undecodable = true, true
		return nil, p.FormatError(s, body), true
	}
	req, err := spec.DecodePOS(msg)
	if err != nil {
		_, _, mti, _ := headMTI(body)
		p.sw.metrics.Messages.WithLabelValues("pos", "in", spec.MTILabel(mti)).Inc()
		p.sw.metrics.Rejected.WithLabelValues("pos", "undecodable").Inc()
		p.sw.log.Debug("undecodable POS message", zap.String("peer", s.Peer), zap.String("mti", mti), zap.Error(err))
		// Counted, not journaled (docs/security.md): nothing anyone sends
		// without a terminal's keys may grow the disk.
		s.Unauthenticated, s.Undecodable = true, true
		// The frame was read whole, so the stream is still in step:
		// answer 30 and keep the connection.
		return nil, p.FormatError(s, body), false
	}
	p.sw.metrics.Messages.WithLabelValues("pos", "in", spec.MTILabel(req.MTI)).Inc()
	s.Terminal = req.TerminalID
	if spec.ResponseMTI(req.MTI) == "" {
		// A response MTI sent as a request: nothing to answer with.
		p.sw.metrics.Rejected.WithLabelValues("pos", "not_a_request").Inc()
		s.Unauthenticated = true
		return nil, nil, false
	}
	tx, orig := req.TxType()
	return &exchange{s: s, req: req, tx: tx, orig: orig, tpdu: t, hdr: h, start: start, date: p.sw.clock.Begin()}, nil, false
}

// seal is the one function that packs a POS answer: with field 64 under
// the terminal's MAK once the request has been authenticated (x.mac set),
// without one before (97, 03, 77, A0, network management, format errors),
// since no key both sides trust is known then. It returns the bytes to
// send; with an error, those bytes are a fallback (the answer without a
// MAC when the HSM failed, a bare 96 when the answer would not pack), fit
// to send but not to record as a decision.
func (p *posProtocol) seal(x *exchange, resp *spec.POSMessage) ([]byte, error) {
	var err error
	if x.mac != nil {
		var packed []byte
		if packed, err = spec.EncodePOSWithMAC(resp, x.mac); err == nil {
			return packed, nil
		}
		p.sw.log.Error("cannot MAC response", zap.String("mti", resp.MTI), zap.Error(err))
	}
	resp.MAC = nil
	packed, perr := spec.EncodePOS(resp)
	if perr == nil {
		return packed, err
	}
	// Only our own answer can fail to pack here: a bug, not an input
	// problem. Answer 96 without the fields that failed.
	p.sw.log.Error("cannot pack response", zap.String("mti", resp.MTI), zap.Error(perr))
	packed, err = spec.EncodePOS(&spec.POSMessage{
		MTI: resp.MTI, ResponseCode: spec.RCSystemMalfunction,
		TerminalID: resp.TerminalID, MerchantID: resp.MerchantID, STAN: resp.STAN,
	})
	if err != nil {
		return nil, err
	}
	return packed, perr
}

// frame wraps sealed answer bytes for the wire, TPDU swapped and header
// echoed (with the processing requirement x.hdr carries), into buf.
func (p *posProtocol) frame(x *exchange, resp *spec.POSMessage, packed, buf []byte) []byte {
	p.sw.metrics.Messages.WithLabelValues("pos", "out", spec.MTILabel(resp.MTI)).Inc()
	if buf == nil {
		buf = make([]byte, 0, spec.POSFrameLen(len(packed)))
	}
	return spec.AppendPOSFrame(buf, x.tpdu.Reply(), x.hdr, packed)
}

// reply is the last step: the recorded answer framed for the terminal,
// counted and timed.
func (p *posProtocol) reply(x *exchange, rec *record) []byte {
	if rec.sealed == nil {
		return nil
	}
	s, resp := x.s, rec.resp
	frame := p.frame(x, resp, rec.sealed, s.Out[:0])
	s.Out = frame
	label := x.tx.String()
	p.sw.metrics.Transactions.WithLabelValues(label, resp.ResponseCode).Inc()
	hist := p.sw.metrics.Duration.WithLabelValues(label)
	start := x.start
	// One line per transaction with the field set of docs/operations.md
	// "Logs": approvals at debug, everything else at info.
	level := zap.InfoLevel
	if resp.ResponseCode == spec.RCApproved {
		level = zap.DebugLevel
	}
	ce := p.sw.log.Check(level, "transaction")
	s.Written = func() {
		d := time.Since(start)
		hist.Observe(d.Seconds())
		if ce != nil {
			ce.Write(transactionFields(x, resp, label, d, p.sw.isLink(x.dest))...)
		}
	}
	return frame
}

// transactionFields is the stable field set of a transaction's log line
// (docs/operations.md "Logs"): terminal, merchant, card (masked), rrn,
// stan, rc, latency_ms, and link when a gateway link served it.
func transactionFields(x *exchange, resp *spec.POSMessage, label string, d time.Duration, link bool) []zap.Field {
	f := make([]zap.Field, 0, 10)
	f = append(f, zap.String("terminal", x.req.TerminalID), zap.String("merchant", x.req.MerchantID),
		zap.String("type", label), panField(x.req.CardNumber()), zap.Int64("amount", int64(x.req.Amount)),
		zap.String("rrn", resp.RRN), zap.String("stan", x.req.STAN), zap.String("rc", resp.ResponseCode),
		zap.Float64("latency_ms", float64(d.Microseconds())/1000))
	if link {
		f = append(f, zap.String("link", x.dest))
	}
	return f
}

// isLink reports whether a destination name is a gateway link.
func (sw *Switch) isLink(name string) bool {
	if name == "" || sw.links == nil {
		return false
	}
	_, ok := sw.links.Link(name)
	return ok
}
