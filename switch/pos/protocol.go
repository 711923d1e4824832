package pos

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/internal/labelcache"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"github.com/cardswitch/cardswitch/switch/transport"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Protocol speaks the POS dialect (docs/pos-dialect.md) on the POS
// acceptor: a transport.Protocol. It asks its collaborators through the
// small interfaces of Options and holds nothing of the switch around it.
type Protocol struct {
	receipts      receiptCache
	db            Batches
	journal       Journal
	terminals     Terminals
	hsm           HSM
	ledger        Ledger
	clock         Clock
	routes        Routes
	dests         Destinations
	originals     Originals
	localPreAuths LocalPreAuths
	answerTimeout time.Duration
	signOnGuard   *signOnGuard
	metrics       Metrics
	counters      counters
	loadSTANs     func(id string, batch uint32) (uint32, uint32, error) // storedSTANMax
	log           *zap.Logger
}

// counters are the children of Metrics the flow counts into on every
// message, looked up once per label set (internal/labelcache) under keys
// that hash fast: the MTI as sent (labelled spec.MTILabel), the
// transaction type, and the type with a 2-character response code as one
// number.
type counters struct {
	in, out      *labelcache.Cache[string, prometheus.Counter]
	transactions *labelcache.Cache[uint32, prometheus.Counter]       // txKey
	otherRC      *labelcache.Cache[[2]string, prometheus.Counter]    // type, rc: a response code not of 2 characters
	duration     *labelcache.Cache[spec.TxType, prometheus.Observer] // type
}

func newCounters(m Metrics) counters {
	return counters{
		in: labelcache.New(func(mti string) prometheus.Counter {
			return m.Messages.WithLabelValues("pos", "in", spec.MTILabel(mti))
		}),
		out: labelcache.New(func(mti string) prometheus.Counter {
			return m.Messages.WithLabelValues("pos", "out", spec.MTILabel(mti))
		}),
		transactions: labelcache.New(func(k uint32) prometheus.Counter {
			return m.Transactions.WithLabelValues(spec.TxType(k>>16).String(), string([]byte{byte(k >> 8), byte(k)}))
		}),
		otherRC: labelcache.New(func(k [2]string) prometheus.Counter {
			return m.Transactions.WithLabelValues(k[0], k[1])
		}),
		duration: labelcache.New(func(tx spec.TxType) prometheus.Observer { return m.Duration.WithLabelValues(tx.String()) }),
	}
}

// transaction is the counter of transactions of type tx answered rc.
func (c *counters) transaction(tx spec.TxType, rc string) prometheus.Counter {
	if len(rc) != 2 {
		return c.otherRC.Get([2]string{tx.String(), rc})
	}
	return c.transactions.Get(uint32(tx)<<16 | uint32(rc[0])<<8 | uint32(rc[1]))
}

// Batches makes the Pebble batches the record step writes and commits
// (*pebble.DB).
type Batches interface {
	NewBatch(opts ...pebble.BatchOption) *pebble.Batch
}

// Journal is the message journal and its stored answers for duplicates
// (*journal.Journal).
type Journal interface {
	AppendPairAt(b *pebble.Batch, r *journal.Reservation, req, resp *journal.Entry) (reqSeq, respSeq uint64, err error)
	AppendAnsweredAt(b *pebble.Batch, r *journal.Reservation, req, resp *journal.Entry, key journal.DuplicateKey, rec journal.ResponseRecord) (reqSeq, respSeq uint64, err error)
	GetResponse(key journal.DuplicateKey) (rec journal.ResponseRecord, found bool, err error)
	ResponseSTANs(terminal, batch string, fn func(stan string) bool) error
	Get(seq uint64) (*journal.Entry, error)
}

// Terminals is the terminal registry (*terminals.Registry).
type Terminals interface {
	Get(id string) *terminals.Terminal
	Update(id string, f func(t *terminals.Terminal) error) (*terminals.Terminal, error)
	ClaimNewSTAN(id string, batch, stan uint32, reversal bool, load func(id string, batch uint32) (max, reversals uint32, err error)) (fresh bool, claim terminals.STANClaim, err error)
}

// HSM checks and makes terminals' MACs and hands out their working keys
// (*hsm.HSM).
type HSM interface {
	VerifyTerminalMAC(terminalID string, data, got []byte) (ok bool, err error)
	GenerateTerminalMAC(terminalID string, data []byte) (out []byte, err error)
	VerifySignOnProof(terminalID, stamp string, proof []byte) (ok bool, err error)
	SignOn(terminalID, mode string) (field62 []byte, err error)
}

// Ledger is what the flow reads of the card ledger itself: a batch's
// totals for settlement and a merchant's name for the answer
// (*ledger.Ledger).
type Ledger interface {
	BatchTotals(terminal string, batch uint32) (ledger.Totals, error)
	Merchant(id string) (ledger.MerchantInfo, bool)
}

// Clock is the business clock: the business date an exchange runs in
// (held open from Begin to End), the RRNs of a date with the journal
// sequences they name (docs/journal.md#sequences), and the switch's local
// time.
type Clock interface {
	Begin() ledger.BusinessDate
	End(d ledger.BusinessDate)
	ReserveRRN(d ledger.BusinessDate, r *journal.Reservation) (string, error)
	LocalNow() time.Time
}

// Routes names the destination that serves a card, transaction type and
// merchant (the routing table in force).
type Routes interface {
	Route(pan, txType, merchant string) (string, error)
}

// Destinations is the destination registry in force.
type Destinations interface {
	// Destination returns what a route's destination name stands for.
	Destination(name string) (txn.Destination, bool)
	// Pinned returns the destination a transaction goes to whatever the
	// routes and its original say (a bank-transfer load and what
	// follows one), if any.
	Pinned(t *txn.Transaction) (txn.Destination, bool)
	// IsLink reports whether a destination name is a gateway link.
	IsLink(name string) bool
}

// Originals says on which gateway link an original was forwarded (the
// links' journal, *links.Manager).
type Originals interface {
	ForwardedOn(terminal string, batch, stan uint32) (link string, found bool, err error)
	RefundedOn(terminal string, batch, stan uint32, rrn string) (link string, found bool, err error)
}

// PreAuths finds, at the merchant's other terminals, the pre-auth a
// completion or cancel names when its own terminal forwarded none under
// that batch and STAN (*links.Manager). Optional: without it a
// completion or cancel of a forwarded pre-auth comes from the pre-auth's
// terminal.
type PreAuths interface {
	PreAuthAt(terminals []string, batch, stan uint32, card, authCode string) (terminal, link string, found bool, err error)
}

// MerchantTerminals lists a merchant's terminals (*terminals.Registry);
// optional, like PreAuths.
type MerchantTerminals interface {
	OfMerchant(merchant, except string, max int) []string
}

// LocalPreAuths tells whether the local ledger holds, under a terminal's
// batch and STAN, a pre-auth of the card: a completion or cancel naming
// one goes to the ledger, and the merchant's other terminals are not
// looked up for a forwarded one. Optional: without it they are.
type LocalPreAuths interface {
	LocalPreAuth(terminal string, batch, stan uint32, card string) (bool, error)
}

// maxPreAuthTerminals bounds the other terminals a completion's pre-auth
// is looked for at.
const maxPreAuthTerminals = 256

// Metrics are the counters the POS flow moves (docs/operations.md).
type Metrics struct {
	Messages       *prometheus.CounterVec   // listener, direction, mti
	Transactions   *prometheus.CounterVec   // type, rc
	Duration       *prometheus.HistogramVec // type
	Rejected       *prometheus.CounterVec   // listener, reason
	SignOnRejected *prometheus.CounterVec   // reason
}

// Options are what the POS protocol is built from. Originals may be nil
// (no gateway links: every follow-up goes where its route says); every
// other field is required.
type Options struct {
	DB           Batches
	Journal      Journal
	Terminals    Terminals
	HSM          HSM
	Ledger       Ledger
	Clock        Clock
	Routes       Routes
	Destinations Destinations
	Originals    Originals
	// LocalPreAuths is optional (LocalPreAuths).
	LocalPreAuths LocalPreAuths
	// AnswerTimeout is the answer budget of one request, from its
	// frame's arrival (pos.answer_timeout, docs/operations.md).
	AnswerTimeout time.Duration
	SignOn        SignOnLimits
	Metrics       Metrics
	Log           *zap.Logger
}

// Validate reports a missing collaborator or a limit out of range.
func (o Options) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		ok   bool
	}{{"DB", o.DB != nil}, {"Journal", o.Journal != nil}, {"Terminals", o.Terminals != nil}, {"HSM", o.HSM != nil},
		{"Ledger", o.Ledger != nil}, {"Clock", o.Clock != nil}, {"Routes", o.Routes != nil},
		{"Destinations", o.Destinations != nil}, {"Log", o.Log != nil},
		{"Metrics", o.Metrics.Messages != nil && o.Metrics.Transactions != nil && o.Metrics.Duration != nil &&
			o.Metrics.Rejected != nil && o.Metrics.SignOnRejected != nil}} {
		if !f.ok {
			errs = append(errs, fmt.Errorf("pos: no %s", f.name))
		}
	}
	if o.AnswerTimeout <= 0 {
		errs = append(errs, fmt.Errorf("pos: answer timeout %s: want > 0", o.AnswerTimeout))
	}
	if o.SignOn.MaxFailuresPerTerminal < 1 || o.SignOn.MaxFailuresPerAddress < 1 || o.SignOn.Window <= 0 {
		errs = append(errs, fmt.Errorf("pos: sign-on limits %+v: want positive", o.SignOn))
	}
	return errors.Join(errs...)
}

// New builds the POS protocol.
func New(o Options) (*Protocol, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	p := &Protocol{db: o.DB, journal: o.Journal, terminals: o.Terminals, hsm: o.HSM, ledger: o.Ledger,
		clock: o.Clock, routes: o.Routes, dests: o.Destinations, originals: o.Originals,
		localPreAuths: o.LocalPreAuths,
		answerTimeout: o.AnswerTimeout, signOnGuard: newSignOnGuard(o.SignOn), metrics: o.Metrics,
		counters: newCounters(o.Metrics), log: o.Log}
	p.loadSTANs = p.storedSTANMax
	return p, nil
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
func (p *Protocol) FormatError(s *transport.Session, head []byte) []byte {
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
// decode is here; process (flow.go) runs the steps from authenticate
// to record, every path of it ending in the record step, which seals
// (packs and MACs) the answer; reply frames and counts it.
func (p *Protocol) Handle(s *transport.Session, body []byte) ([]byte, bool) {
	x, early, closeAfter := p.decode(s, body)
	if x == nil {
		return early, closeAfter
	}
	defer p.clock.End(x.date)
	rec := p.newRecord(x)
	defer rec.close()
	p.process(x, rec)
	return p.reply(x, rec), false
}

// decode splits and decodes a frame into an exchange. A frame that does
// not decode is journaled and answered 30 here (x nil); a response MTI
// sent as a request is not answered at all.
func (p *Protocol) decode(s *transport.Session, body []byte) (x *exchange, early []byte, closeAfter bool) {
	start := time.Now()
	t, h, msg, err := spec.SplitPOS(body)
	if err != nil {
		p.metrics.Rejected.WithLabelValues("pos", "frame_too_short").Inc()
		s.Unauthenticated, s.Undecodable = true, true
		return nil, p.FormatError(s, body), true
	}
	req, err := spec.DecodePOS(msg)
	if err != nil {
		_, _, mti, _ := headMTI(body)
		p.counters.in.Get(mti).Inc()
		p.metrics.Rejected.WithLabelValues("pos", "undecodable").Inc()
		p.log.Debug("undecodable POS message", zap.String("peer", s.Peer), zap.String("mti", mti), zap.Error(err))
		// Counted, not journaled (docs/security.md): nothing anyone sends
		// without a terminal's keys may grow the disk.
		s.Unauthenticated, s.Undecodable = true, true
		// The frame was read whole, so the stream is still in step:
		// answer 30 and keep the connection.
		return nil, p.FormatError(s, body), false
	}
	p.counters.in.Get(req.MTI).Inc()
	s.Terminal = req.TerminalID
	if spec.ResponseMTI(req.MTI) == "" {
		// A response MTI sent as a request: nothing to answer with.
		p.metrics.Rejected.WithLabelValues("pos", "not_a_request").Inc()
		s.Unauthenticated = true
		return nil, nil, false
	}
	tx, orig := req.TxType()
	return &exchange{s: s, req: req, tx: tx, orig: orig, tpdu: t, hdr: h, start: start, date: p.clock.Begin()}, nil, false
}

// seal is the one function that packs a POS answer: with field 64 under
// the terminal's MAK once the request has been authenticated (x.macTerm set),
// without one before (97, 03, 77, A0, network management, format errors),
// since no key both sides trust is known then. It returns the bytes to
// send; with an error, those bytes are a fallback (the answer without a
// MAC when the HSM failed, a bare 96 when the answer would not pack), fit
// to send but not to record as a decision.
//
// An answer with a MAC is packed into the connection's response buffer
// after room for the frame's head, where reply frames it in place
// (frame): the bytes returned are the end of that buffer, valid until
// the next answer of the connection is sealed.
func (p *Protocol) seal(x *exchange, resp *spec.POSMessage) ([]byte, error) {
	var err error
	if id := x.macTerm; id != "" {
		var framed []byte
		mac := func(block []byte) ([]byte, error) { return p.hsm.GenerateTerminalMAC(id, block) }
		room := make([]byte, spec.POSFrameHeadLen, 256)
		if s := x.s; s != nil && cap(s.Out) >= spec.POSFrameHeadLen {
			room = s.Out[:spec.POSFrameHeadLen]
		}
		if framed, err = spec.AppendPOSWithMAC(room, resp, mac); err == nil {
			if x.s != nil {
				x.s.Out = framed
			}
			return framed[spec.POSFrameHeadLen:], nil
		}
		p.log.Error("cannot MAC response", zap.String("mti", resp.MTI), zap.Error(err))
	}
	resp.MAC = nil
	packed, perr := spec.EncodePOS(resp)
	if perr == nil {
		return packed, err
	}
	// Only our own answer can fail to pack here: a bug, not an input
	// problem. Answer 96 without the fields that failed.
	p.log.Error("cannot pack response", zap.String("mti", resp.MTI), zap.Error(perr))
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
// echoed (with the processing requirement x.hdr carries), into buf; in
// place when seal packed them in buf after room for the head.
func (p *Protocol) frame(x *exchange, resp *spec.POSMessage, packed, buf []byte) []byte {
	p.counters.out.Get(resp.MTI).Inc()
	if n := spec.POSFrameHeadLen + len(packed); len(packed) > 0 && cap(buf) >= n && &buf[:n][spec.POSFrameHeadLen] == &packed[0] {
		f := buf[:n]
		spec.PutPOSFrameHead(f, x.tpdu.Reply(), x.hdr)
		return f
	}
	if buf == nil {
		buf = make([]byte, 0, spec.POSFrameLen(len(packed)))
	}
	return spec.AppendPOSFrame(buf, x.tpdu.Reply(), x.hdr, packed)
}

// reply is the last step: the recorded answer framed for the terminal,
// counted and timed.
func (p *Protocol) reply(x *exchange, rec *record) []byte {
	if rec.sealed == nil {
		return nil
	}
	s, resp := x.s, rec.resp
	frame := p.frame(x, resp, rec.sealed, s.Out[:0])
	s.Out = frame
	label := x.tx.String()
	p.counters.transaction(x.tx, resp.ResponseCode).Inc()
	// One line per transaction with the field set of docs/operations.md
	// "Logs": approvals at debug, everything else at info.
	level := zap.InfoLevel
	if resp.ResponseCode == spec.RCApproved {
		level = zap.DebugLevel
	}
	x.written = written{p: p, hist: p.counters.duration.Get(x.tx), ce: p.log.Check(level, "transaction"),
		resp: resp, label: label}
	s.Written = x
	return frame
}

// written is what an exchange's Written needs once the answer is out.
type written struct {
	p     *Protocol
	hist  prometheus.Observer
	ce    *zapcore.CheckedEntry
	resp  *spec.POSMessage
	label string
}

// Written ends the exchange once its answer has been written
// (transport.WriteObserver): its latency observed, its log line written.
func (x *exchange) Written() {
	w := &x.written
	d := time.Since(x.start)
	w.hist.Observe(d.Seconds())
	if w.ce != nil {
		w.ce.Write(transactionFields(x, w.resp, w.label, d, w.p.dests.IsLink(x.dest))...)
	}
}

// transactionFields is the stable field set of a transaction's log line
// (docs/operations.md "Logs"): terminal, merchant, card (masked), rrn,
// stan, rc, latency_ms, and link when a gateway link served it.
func transactionFields(x *exchange, resp *spec.POSMessage, label string, d time.Duration, link bool) []zap.Field {
	f := make([]zap.Field, 0, 10)
	f = append(f, zap.String("terminal", x.req.TerminalID), zap.String("merchant", x.req.MerchantID),
		zap.String("type", label), cardField(x.req.CardNumber()), zap.Int64("amount", int64(x.req.Amount)),
		zap.String("rrn", resp.RRN), zap.String("stan", x.req.STAN), zap.String("rc", resp.ResponseCode),
		zap.Float64("latency_ms", float64(d.Microseconds())/1000))
	if link {
		f = append(f, zap.String("link", x.dest))
	}
	return f
}

// cardField is a zap field with a masked card number: the only form of a
// card number a log line may hold.
func cardField(pan string) zap.Field { return zap.String("card", cardno.Mask(pan)) }
