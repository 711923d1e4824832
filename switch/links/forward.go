package links

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// Request is a terminal's transaction as a link forwards it.
type Request struct {
	Type         spec.TxType
	Card         string
	Amount       int64 // fen
	HasAmount    bool
	Terminal     string
	Merchant     string
	Batch, STAN  uint32
	LocalDate    string // MMDD
	LocalTime    string // hhmmss
	BusinessDate string // YYYYMMDD
	RRN          string
	// Original names what a void, refund or reversal refers to, in the
	// terminal's numbering.
	OriginalBatch, OriginalSTAN uint32
	HasOriginal                 bool
	// OriginalRRN is a refund's original RRN (POS field 37): a refund
	// finds its consume by it, at any terminal of the merchant.
	OriginalRRN string
	// OriginalTerminal is the terminal a completion's or cancel's
	// pre-auth was made at, when not this one ("" = this one).
	OriginalTerminal string
	// AuthCode is the approval code a completion, cancel or completion
	// void names (POS field 38).
	AuthCode string
	// PINBlock is the terminal's encrypted PIN block (nil: none) and
	// PINFormat its ISO 9564 format.
	PINBlock  []byte
	PINFormat hsm.PINFormat
	// ReversalReason is field 39 of a terminal's 0400.
	ReversalReason string
	// Deadline ends the request's answer budget (the terminal's side,
	// pos.answer_timeout): the link waits for the gateway at most until
	// then, however long its send timeout. Zero: no budget but the link's.
	Deadline time.Time
}

// minSendWait is the least a request already journaled as sent waits for
// its answer, however little of its budget is left (a zero send timeout
// would mean none at all).
const minSendWait = time.Millisecond

// within is d cut to what is left of r's answer budget at now; zero or
// less when the budget is spent.
func (r *Request) within(d time.Duration, now time.Time) time.Duration {
	if r.Deadline.IsZero() {
		return d
	}
	return min(d, r.Deadline.Sub(now))
}

// Result is the link's decision.
type Result struct {
	ResponseCode string
	AuthCode     string
	Balances     []spec.Balance
}

// Recorder is the pipeline's record step for one transaction: the link
// adds its writes to Batch and Commit makes them durable together with
// the answer to the terminal.
type Recorder interface {
	Batch() *pebble.Batch
	Commit(Result) error
}

// Rejected is an answer given before anything was journaled or sent: the
// pipeline answers its code and records nothing.
type Rejected struct {
	ResponseCode string
	Err          error
}

func (r *Rejected) Error() string { return fmt.Sprintf("rejected %s: %v", r.ResponseCode, r.Err) }
func (r *Rejected) Unwrap() error { return r.Err }

func reject(rc string, err error) error { return &Rejected{ResponseCode: rc, Err: err} }

// RC91 is the answer when the link is down before sending.
const RC91 = "91"

// Types a link serves.
var forwarded = []spec.TxType{spec.Consume, spec.BalanceInquiry, spec.ConsumeVoid, spec.Refund,
	spec.PreAuth, spec.PreAuthCancel, spec.PreAuthCompletion, spec.CompletionVoid, spec.Reversal}

// gatewayMessage is how a type goes out on a link
// (docs/gateway-dialect.md, "Processing codes"): MTI, processing code,
// condition code (25, "" when not sent), and for the types that name an
// original, the types their original may be.
type gatewayMessage struct {
	mti, proc, cond string
	originals       []spec.TxType
}

var gatewayMessages = map[spec.TxType]gatewayMessage{
	spec.Consume:           {mti: spec.GWFinancialRequest, proc: spec.GWProcConsume},
	spec.BalanceInquiry:    {mti: spec.GWFinancialRequest, proc: spec.GWProcBalanceInquiry},
	spec.ConsumeVoid:       {mti: spec.GWFinancialRequest, proc: spec.GWProcVoid, originals: []spec.TxType{spec.Consume}},
	spec.Refund:            {mti: spec.GWAdviceRequest, proc: spec.GWProcRefund, originals: []spec.TxType{spec.Consume, spec.PreAuthCompletion}},
	spec.PreAuth:           {mti: spec.GWAuthorizationRequest, proc: spec.GWProcPreAuth, cond: spec.GWConditionPreAuth},
	spec.PreAuthCancel:     {mti: spec.GWAuthorizationRequest, proc: spec.GWProcVoid, cond: spec.GWConditionPreAuth, originals: []spec.TxType{spec.PreAuth}},
	spec.PreAuthCompletion: {mti: spec.GWFinancialRequest, proc: spec.GWProcConsume, cond: spec.GWConditionPreAuth, originals: []spec.TxType{spec.PreAuth}},
	spec.CompletionVoid:    {mti: spec.GWFinancialRequest, proc: spec.GWProcVoid, cond: spec.GWConditionPreAuth, originals: []spec.TxType{spec.PreAuthCompletion}},
}

// conditionOf is field 25 of the messages of the type named typ (a
// journaled request's TxType): a reversal repeats its original's.
func conditionOf(typ string) string {
	for t, g := range gatewayMessages {
		if t.String() == typ {
			return g.cond
		}
	}
	return ""
}

// gatewayReason is field 39 of the reversal (0420) of a terminal's 0400
// with reason posReason (docs/gateway-links.md): the gateway dialect
// knows 98 (timeout) and 06 (any other error), so a terminal's A0 (MAC
// error), or no reason at all, is 06.
func gatewayReason(posReason string) string {
	if posReason == spec.ReversalTimeout {
		return spec.ReversalTimeout
	}
	return spec.ReversalOther
}

// Serves reports whether links forward transactions of type t.
func Serves(t spec.TxType) bool { return slices.Contains(forwarded, t) }

func n6(v uint32) string { return fmt.Sprintf("%06d", v) }

// Forward sends the request to the gateway and records its answer
// (docs/gateway-links.md, "Write-ahead"): the outgoing request is
// journaled, synced, before it is sent; the answer, or on no answer the
// reversal queued for store-and-forward, is added to rec's batch and
// committed with the terminal's answer (98 on no answer).
func (l *Link) Forward(req *Request, rec Recorder) (Result, error) {
	if req.Type == spec.Reversal {
		return l.reverse(req, rec)
	}
	if !Serves(req.Type) {
		return Result{}, reject(spec.RCFunctionNotSupported, fmt.Errorf("%s on a gateway link", req.Type))
	}
	c, err := l.connWithin(req.within)
	if err != nil {
		return Result{}, err
	}
	lr := &journal.LinkRequest{Link: l.cfg.Name, Amount: req.Amount, Card: req.Card, Terminal: req.Terminal,
		Merchant: req.Merchant, Batch: n6(req.Batch), LocalSTAN: n6(req.STAN), RRN: req.RRN,
		Acquirer: l.cfg.AcquirerID, Forwarding: l.cfg.ForwardingID, BusinessDate: req.BusinessDate,
		TxType: req.Type.String(), State: journal.LinkSent, Created: l.now().UTC()}
	orig, err := l.original(req)
	if err != nil {
		return Result{}, err
	}
	var follows uint64
	if orig != nil && followedUp(req.Type) {
		// A completion or cancel closes its pre-auth: checked here, not
		// left to the bank (preauth.go).
		if req.Type == spec.PreAuthCompletion || req.Type == spec.PreAuthCancel {
			done, err := l.mgr.closePreAuth(req, orig)
			if err != nil {
				return Result{}, err
			}
			defer done()
		}
		follows = orig.ID
	}
	out, err := l.buildRequest(req, lr, orig)
	if err != nil {
		return Result{}, err
	}
	resp, release, err := l.sendWriteAhead(c, out, lr, follows, req.within)
	if err != nil && !errors.Is(err, ErrNoAnswer) {
		return Result{}, err
	}
	defer release()
	if err != nil {
		l.m.Requests.WithLabelValues(l.cfg.Name, "timeout").Inc()
		l.log.Warn("gateway request unanswered; reversal queued, terminal answered 98", zap.String("stan", lr.STAN),
			zap.String("rrn", lr.RRN), zap.String("pan", cardno.Mask(lr.Card)), zap.Error(err))
		if err := l.queueReversal(rec.Batch(), lr, spec.ReversalTimeout); err != nil {
			return Result{}, err
		}
		res := Result{ResponseCode: spec.RCNoAnswer}
		return res, l.commit(rec, res, lr)
	}
	l.m.Requests.WithLabelValues(l.cfg.Name, "answered").Inc()
	res := answerOf(resp)
	lr.State, lr.ResponseCode, lr.AuthCode = journal.LinkAnswered, res.ResponseCode, res.AuthCode
	if err := l.recs.SetState(rec.Batch(), lr); err != nil {
		return Result{}, err
	}
	return res, l.commit(rec, res, lr)
}

// connWithin returns a signed-on connection for a request whose answer
// budget (within) is not spent; otherwise a Rejected 91 with nothing sent
// (the terminal's transaction counts its 91).
func (l *Link) connWithin(within func(time.Duration, time.Time) time.Duration) (*connection.Connection, error) {
	if within(l.cfg.SendTimeout, time.Now()) <= 0 {
		return nil, reject(RC91, fmt.Errorf("gateway %s: %w", l.cfg.Name, ErrBudgetSpent))
	}
	c, err := l.pool.Get()
	if err != nil {
		l.m.Requests.WithLabelValues(l.cfg.Name, "down").Inc()
		return nil, reject(RC91, fmt.Errorf("gateway %s: %w", l.cfg.Name, ErrDown))
	}
	return c, nil
}

// outgoing is a request on its way out, packed from its fields
// (spec.AppendGatewayMessage); m carries what answer matching reads
// (requestID: the MTI, 11 and 41; matchable).
type outgoing struct {
	m      *iso8583.Message
	mti    string
	fields []spec.GatewayField // ids ascending, no MAC
}

// frame MACs the request and returns its frame.
func (l *Link) frame(out *outgoing) ([]byte, error) { return l.packMAC(out.mti, out.fields) }

// packMAC packs a request from its fields with the MAC (128 when a
// secondary-bitmap field is present, else 64) and returns its frame.
func (l *Link) packMAC(mti string, fields []spec.GatewayField) ([]byte, error) {
	macField := 64
	if n := len(fields); n > 0 && fields[n-1].ID > 64 {
		macField = 128
	}
	var zero [8]byte
	frame, err := spec.AppendGatewayMessage(make([]byte, 2, 320), mti, append(fields, spec.GatewayField{ID: macField, Bytes: zero[:]}))
	if err != nil {
		return nil, err
	}
	packed := frame[2:]
	if len(packed) > spec.MaxFrameLimit {
		return nil, fmt.Errorf("%w: %d bytes", spec.ErrMessageTooLarge, len(packed))
	}
	binary.BigEndian.PutUint16(frame, uint16(len(packed)))
	block, err := spec.GatewayMACBlock(packed)
	if err != nil {
		return nil, err
	}
	mac, err := l.zoneMAC(block)
	if err != nil {
		return nil, err
	}
	copy(packed[len(block):], mac)
	return frame, nil
}

// sendWriteAhead MACs out, makes lr durable (docs/gateway-links.md,
// "Write-ahead") and only then sends it on c, waiting until the request's
// budget (within) runs out, but at least minSendWait. The MAC comes first:
// when it cannot be made nothing is written or sent and the error is a
// Rejected 91 — never a 98 and a reversal for a request the bank never
// saw. After the write, an error wraps ErrNoAnswer (the request may have
// reached the gateway) or is the journal's; release, to be deferred once
// the error is ErrNoAnswer or nil, ends the request's open work.
func (l *Link) sendWriteAhead(c *connection.Connection, out *outgoing, lr *journal.LinkRequest, follows uint64,
	within func(time.Duration, time.Time) time.Duration) (*iso8583.Message, func(), error) {
	frame, err := l.frame(out)
	if err != nil {
		l.m.Requests.WithLabelValues(l.cfg.Name, "down").Inc()
		return nil, nil, reject(RC91, fmt.Errorf("gateway %s: MAC: %w: %v", l.cfg.Name, ErrDown, err))
	}
	b := l.mgr.db.NewBatch()
	err = l.recs.Put(b, lr)
	if err == nil && follows != 0 {
		err = l.recs.PutFollowUp(b, lr.Link, follows, lr.ID)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	b.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("gateway %s: journal request: %w", l.cfg.Name, err)
	}
	done := l.track(lr.ID)
	resp, err := l.sendMACed(c, out.m, frame, max(within(l.cfg.SendTimeout, time.Now()), minSendWait))
	return resp, func() { l.untrack(lr.ID, done) }, err
}

// commit records the answer; when that fails after the gateway approved,
// the approval is reversed (the terminal gets no approval).
func (l *Link) commit(rec Recorder, res Result, lr *journal.LinkRequest) error {
	err := rec.Commit(res)
	if err == nil || lr.State == journal.LinkReversalQueued || res.ResponseCode != spec.RCApproved {
		return err
	}
	b := l.mgr.db.NewBatch()
	defer b.Close()
	if qerr := l.queueReversal(b, lr, spec.ReversalOther); qerr == nil {
		if cerr := b.Commit(pebble.Sync); cerr != nil {
			l.log.Error("reversal after a failed commit not queued; the next start queues it", zap.Error(cerr))
		}
	}
	return err
}

func (l *Link) track(id uint64) chan struct{} {
	ch := make(chan struct{})
	l.inflightMu.Lock()
	l.inflight[id] = ch
	l.inflightMu.Unlock()
	return ch
}

func (l *Link) untrack(id uint64, ch chan struct{}) {
	l.inflightMu.Lock()
	delete(l.inflight, id)
	l.inflightMu.Unlock()
	close(ch)
}

// answerOf maps a gateway answer. Codes outside the switch's table
// become 05; balances come from 54.
func answerOf(resp *iso8583.Message) Result {
	rc, _ := resp.GetString(39)
	if spec.RCDescription(rc) == "" { // not in the switch's table (a map lookup: ResponseCodes sorts a copy)
		rc = spec.RCDoNotHonour
	}
	res := Result{ResponseCode: rc}
	if rc == spec.RCApproved {
		res.AuthCode, _ = resp.GetString(38)
		if f54, _ := resp.GetString(54); f54 != "" {
			if bs, err := spec.ParseBalances(f54); err == nil {
				res.Balances = bs
			}
		}
	}
	return res
}

// refundOriginal finds what a refund refunds: by its original RRN (POS
// field 37), which names it at any terminal; a request journaled before
// the RRN index existed is found by the terminal's field 61 when its RRN
// is the one the refund names. ErrNotFound otherwise — also for a 61
// that names another transaction of this terminal.
func refundOriginal(recs *journal.Links, terminal string, batch, stan uint32, rrn string) (*journal.LinkRequest, error) {
	if rrn == "" {
		return nil, journal.ErrNotFound
	}
	o, err := recs.ByRRN(rrn)
	if !errors.Is(err, journal.ErrNotFound) {
		return o, err
	}
	o, err = recs.ByLocal(terminal, n6(batch), n6(stan))
	if err == nil && o.RRN != rrn {
		return nil, journal.ErrNotFound
	}
	return o, err
}

// original finds, for a type that names one (a void, refund, completion,
// cancel or completion void), the request on this link it names
// (docs/gateway-links.md, "Messages"); nil for the other types.
func (l *Link) original(req *Request) (*journal.LinkRequest, error) {
	g, ok := gatewayMessages[req.Type]
	if !ok {
		return nil, reject(spec.RCFunctionNotSupported, fmt.Errorf("%s on a gateway link", req.Type))
	}
	if g.originals == nil {
		return nil, nil
	}
	if !req.HasOriginal {
		return nil, reject(spec.RCFormatError, errors.New("no original data"))
	}
	var o *journal.LinkRequest
	var err error
	if req.Type == spec.Refund {
		o, err = refundOriginal(l.recs, req.Terminal, req.OriginalBatch, req.OriginalSTAN, req.OriginalRRN)
		if err == nil && o.Merchant != req.Merchant {
			// As at the local ledger: refunded where it was bought.
			return nil, reject(spec.RCInvalidTransaction, errors.New("refund at another merchant than its original"))
		}
	} else {
		at := req.Terminal
		if req.OriginalTerminal != "" && (req.Type == spec.PreAuthCompletion || req.Type == spec.PreAuthCancel) {
			at = req.OriginalTerminal
		}
		o, err = l.recs.ByLocal(at, n6(req.OriginalBatch), n6(req.OriginalSTAN))
		if err == nil && at != req.Terminal && o.Merchant != req.Merchant {
			// As at the local ledger: at the pre-auth's merchant only.
			return nil, reject(spec.RCInvalidTransaction, errors.New("completion or cancel at another merchant than its pre-auth"))
		}
	}
	if errors.Is(err, journal.ErrNotFound) || (err == nil && (o.Link != l.cfg.Name || o.State != journal.LinkAnswered ||
		o.ResponseCode != spec.RCApproved || !slices.ContainsFunc(g.originals, func(t spec.TxType) bool { return t.String() == o.TxType }))) {
		return nil, reject(spec.RCOriginalNotFound, fmt.Errorf("no approved %v on this link", g.originals))
	}
	if err != nil {
		return nil, err
	}
	if o.Card != req.Card {
		// As at the local ledger: an original is followed up for its
		// own card only, at any terminal.
		return nil, reject(spec.RCInvalidTransaction, errors.New("card differs from the original's"))
	}
	// A completion, cancel or completion void names its pre-auth by
	// its approval code too (POS field 38).
	if g.cond == spec.GWConditionPreAuth && req.AuthCode != o.AuthCode {
		return nil, reject(spec.RCOriginalNotFound, errors.New("approval code differs from the original's"))
	}
	return o, nil
}

// buildRequest builds the outgoing message (docs/gateway-links.md,
// "Messages") naming orig (the original found, nil for none) and fills
// lr's link numbering.
func (l *Link) buildRequest(req *Request, lr *journal.LinkRequest, orig *journal.LinkRequest) (*outgoing, error) {
	g, ok := gatewayMessages[req.Type]
	if !ok {
		return nil, reject(spec.RCFunctionNotSupported, fmt.Errorf("%s on a gateway link", req.Type))
	}
	mti, proc := g.mti, g.proc
	if req.Type != spec.BalanceInquiry && !req.HasAmount {
		return nil, reject(spec.RCInvalidAmount, errors.New("no amount"))
	}
	id, stan, err := l.recs.NextID(l.cfg.Name)
	if err != nil {
		return nil, err
	}
	xmit := spec.FormatTransmissionTime(l.now())
	lr.ID, lr.STAN, lr.Transmission, lr.MTI, lr.ProcCode = id, stan, xmit, mti, proc
	// The PIN block first: field 52 comes before 90 and 100.
	var zb []byte
	if req.PINBlock != nil {
		zb, err = l.hsm.TranslatePINToZone(req.Terminal, req.PINFormat, l.cfg.Name, req.PINBlock, req.Card)
		if err != nil {
			if errors.Is(err, hsm.ErrPINBlock) || errors.Is(err, hsm.ErrNotSignedOn) {
				return nil, reject(spec.RCIncorrectPIN, err)
			}
			return nil, reject(spec.RCSystemMalfunction, fmt.Errorf("PIN translation: %w", err))
		}
	}
	// In field order, packed as they are (spec.AppendGatewayMessage): no
	// Message to fill field by field and pack again.
	out := &outgoing{mti: mti, fields: make([]spec.GatewayField, 0, 20)}
	add := func(id int, v string) {
		if v != "" {
			out.fields = append(out.fields, spec.GatewayField{ID: id, Value: v})
		}
	}
	add(2, req.Card)
	add(3, proc)
	if req.HasAmount {
		a, err := spec.Amount(req.Amount).N12()
		if err != nil {
			return nil, reject(spec.RCInvalidAmount, err)
		}
		add(4, a)
	}
	add(7, xmit)
	add(11, stan)
	add(12, req.LocalTime)
	add(13, req.LocalDate)
	add(25, g.cond)
	add(32, l.cfg.AcquirerID)
	add(33, l.cfg.ForwardingID)
	add(37, req.RRN)
	if orig != nil && g.cond != "" {
		add(38, orig.AuthCode)
	}
	add(41, req.Terminal)
	add(42, req.Merchant)
	add(49, spec.GWCurrencyCNY)
	if zb != nil {
		out.fields = append(out.fields, spec.GatewayField{ID: 52, Bytes: zb})
		add(53, "2600000000000000")
	}
	if orig != nil {
		f90, err := spec.OriginalData{MTI: orig.MTI, STAN: orig.STAN, Transmission: orig.Transmission,
			Acquirer: orig.Acquirer, Forwarding: orig.Forwarding}.Format()
		if err != nil {
			return nil, err
		}
		add(90, f90)
	}
	add(100, l.cfg.InstitutionID)
	return out, out.matchable()
}

// matchable gives out the Message answer matching reads (requestID): its
// MTI, 11 and 41.
func (out *outgoing) matchable() error {
	out.m = iso8583.NewMessage(spec.Gateway)
	out.m.MTI(out.mti)
	for _, f := range out.fields {
		if f.ID == 11 || f.ID == 41 {
			if err := out.m.Field(f.ID, f.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// reverse answers a terminal's reversal of a forwarded transaction: its
// reversal (0420) is queued for store-and-forward in the batch of the
// answer, and the terminal gets 00 once that batch is committed. A
// reversal of something never forwarded, declined, or already reversed
// is answered 00 with nothing to do.
func (l *Link) reverse(req *Request, rec Recorder) (Result, error) {
	batch, stan := req.Batch, req.STAN
	if req.HasOriginal {
		batch, stan = req.OriginalBatch, req.OriginalSTAN
	}
	lr, err := l.recs.ByLocal(req.Terminal, n6(batch), n6(stan))
	if err != nil && !errors.Is(err, journal.ErrNotFound) {
		return Result{}, err
	}
	if lr != nil && lr.Link == l.cfg.Name {
		// Still in flight here: wait for its answer or timeout.
		l.inflightMu.Lock()
		ch := l.inflight[lr.ID]
		l.inflightMu.Unlock()
		if ch != nil {
			select {
			case <-ch:
			case <-time.After(max(req.within(l.cfg.SendTimeout+5*time.Second, time.Now()), minSendWait)):
			}
		}
		if lr, err = l.recs.Get(lr.Link, lr.ID); err != nil {
			return Result{}, err
		}
		if lr.State == journal.LinkSent || (lr.State == journal.LinkAnswered && lr.ResponseCode == spec.RCApproved) {
			if err := l.queueReversal(rec.Batch(), lr, gatewayReason(req.ReversalReason)); err != nil {
				return Result{}, err
			}
		}
	}
	res := Result{ResponseCode: spec.RCApproved}
	return res, rec.Commit(res)
}
