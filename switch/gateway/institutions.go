package gateway

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/recharge"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"
)

// InstitutionKeys are the HSM operations on the institutions' zone keys
// (*hsm.HSM has them).
type InstitutionKeys interface {
	GenerateZoneMAC(link string, data []byte) ([]byte, error)
	VerifyZoneMAC(link string, data, got []byte, previousToo bool) (bool, error)
}

// InstitutionOptions are what the institutions' front end needs.
type InstitutionOptions struct {
	// Institution returns the configured institution with an ID
	// (recharge.Service has it).
	Institution func(id string) (*recharge.Institution, bool)
	// Destination decides the requests (recharge.Service).
	Destination txn.Destination
	Keys        InstitutionKeys
	// DB gives each request its batch; Journal records the exchanges
	// (nil: none).
	DB      *pebble.DB
	Journal *journal.Journal
	// Today is the business date the journal files an exchange under.
	Today func() ledger.BusinessDate
	Log   *zap.Logger
	// Now is the clock field 7 is checked against (defaults to time.Now).
	Now func() time.Time
}

// Institutions is the gateway port's front end for outside institutions
// (docs/recharge.md "ISO 8583"), an Inbound: it checks the institution
// and its source address, the MAC under its ZAK and the message's
// freshness, maps the request into a txn.Transaction (txn.go), has the
// destination execute it and maps the outcome back into the answer.
type Institutions struct {
	o       InstitutionOptions
	metrics Metrics
}

// NewInstitutions builds the front end; it counts into m.
func NewInstitutions(o InstitutionOptions, m Metrics) *Institutions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return &Institutions{o: o, metrics: m}
}

// inbound is one institution's request on its way to its answer.
type inbound struct {
	f     *Institutions
	peer  string
	req   *iso8583.Message
	raw   []byte
	mti   string
	rmti  string
	tx    txn.Type
	inst  string // set once field 32 names a configured institution allowed here
	macOK bool   // the answer may carry a MAC
	order string
	start time.Time
}

// Handle answers one decoded gateway request from peer (raw is its frame
// body): the packed answer, or nil when there is none to give, and
// whether the request proved its sender (a verified MAC). What did not is
// counted and rate limited by the acceptor, not journaled.
func (f *Institutions) Handle(peer netip.Addr, peerStr string, req *iso8583.Message, raw []byte, start time.Time) ([]byte, bool) {
	x := &inbound{f: f, peer: peerStr, req: req, raw: raw, start: start}
	x.mti, _ = req.GetMTI()
	x.rmti = spec.ResponseMTI(x.mti)
	if x.mti == spec.GWReversalRepeat {
		x.rmti = spec.GWReversalResponse
	}
	if x.rmti == "" {
		return nil, false
	}
	proc, _ := req.GetString(3)
	x.tx = inboundType(x.mti, proc)

	// 32: a configured institution whose allow-list holds the source.
	id, _ := req.GetString(32)
	in, ok := f.o.Institution(id)
	if !ok || !in.Allows(peer) {
		return x.plain(spec.RCInvalidMerchant), false
	}
	x.inst = id
	// MAC with the institution's ZAK.
	block, err := spec.GatewayMACBlock(raw)
	if err != nil {
		return x.plain(spec.RCMACError), false
	}
	ok, err = f.o.Keys.VerifyZoneMAC(recharge.KeyName(id), block, raw[len(raw)-8:], false)
	if err != nil {
		f.o.Log.Error("inbound MAC not verified", zap.String("institution", id), zap.Error(err))
	}
	if !ok {
		return x.plain(spec.RCMACError), false
	}
	x.macOK = true
	// 7 fresh, 49 = 156.
	t7, _ := req.GetString(7)
	skew, err := spec.TransmissionSkew(t7, f.o.Now())
	cur, _ := req.GetString(49)
	if err != nil || skew > recharge.MaxClockSkew || cur != spec.GWCurrencyCNY {
		return x.plain(spec.RCFormatError), true
	}
	if x.tx == spec.Unknown {
		return x.plain(spec.RCFunctionNotSupported), true
	}
	t, ok := inboundTransaction(x.tx, id, req)
	x.order = t.Order
	if !ok {
		return x.plain(spec.RCFormatError), true
	}
	t.Peer = peerStr
	return x.execute(t), true
}

// execute has the destination decide t and answers from its outcome, or
// from its error's response code.
func (x *inbound) execute(t *txn.Transaction) []byte {
	rec := &inboundRecord{x: x}
	defer rec.close()
	out, err := x.f.o.Destination.Execute(context.Background(), t, rec)
	if err != nil {
		x.f.o.Log.Error("inbound "+typeLabel(x.tx), zap.String("institution", x.inst), zap.String("order", t.Order), zap.Error(err))
		return x.plain(txn.ResponseCodeOf(err))
	}
	if !rec.committed {
		x.f.o.Log.Error("inbound "+typeLabel(x.tx), zap.Error(txn.ErrNotRecorded))
		return x.plain(spec.RCSystemMalfunction)
	}
	if rec.packed == nil {
		return nil // the answer could not be packed (logged)
	}
	x.answered(out.ResponseCode)
	return rec.packed
}

// decides reports whether the request moves money: its answer is
// committed synced with what the destination wrote; a verification or
// query is journaled in a batch that rides the next synced commit.
func (x *inbound) decides() bool {
	return x.tx == spec.RechargeCredit || x.tx == spec.RechargeReversal
}

// inboundRecord is the record step of one institution's request, a
// txn.Record.
type inboundRecord struct {
	x         *inbound
	b         *pebble.Batch
	packed    []byte
	committed bool
}

func (r *inboundRecord) Batch() *pebble.Batch {
	if r.b == nil {
		r.b = r.x.f.o.DB.NewBatch()
	}
	return r.b
}

// Commit packs and MACs the answer from o, journals the exchange into the
// batch and commits it: synced for a credit or reversal, unsynced (and
// an error only logged) for a request that moves no money.
func (r *inboundRecord) Commit(o txn.Outcome) error {
	if r.committed {
		return errors.New("gateway: outcome recorded twice")
	}
	x := r.x
	packed, err := x.pack(o)
	if !x.decides() {
		r.committed = true
		if err != nil {
			x.f.o.Log.Error("cannot pack gateway answer", zap.String("mti", x.rmti), zap.Error(err))
			return nil
		}
		r.packed = packed
		if err := x.journalPair(r.Batch(), packed, o.ResponseCode, o.RRN); err == nil {
			_ = r.b.Commit(pebble.NoSync)
		} else {
			x.f.o.Log.Error("journal inbound exchange", zap.Error(err))
		}
		return nil
	}
	if err != nil {
		return err
	}
	if err := x.journalPair(r.Batch(), packed, o.ResponseCode, o.RRN); err != nil {
		return err
	}
	if err := r.b.Commit(pebble.Sync); err != nil {
		return err
	}
	r.packed, r.committed = packed, true
	return nil
}

func (r *inboundRecord) close() {
	if r.b != nil {
		_ = r.b.Close()
	}
}

// plain answers rc without the destination. Once the MAC verified, the
// exchange is journaled in a batch that rides the next synced commit.
func (x *inbound) plain(rc string) []byte {
	packed, err := x.pack(txn.Outcome{ResponseCode: rc})
	if err != nil {
		x.f.o.Log.Error("cannot pack gateway answer", zap.String("mti", x.rmti), zap.Error(err))
		return nil
	}
	// What a verified MAC did not prove (03, A0) is counted, not
	// journaled: a flood of it must not fill the journal
	// (docs/operations.md#what-is-journaled).
	if x.macOK {
		b := x.f.o.DB.NewBatch()
		defer b.Close()
		if err := x.journalPair(b, packed, rc, ""); err == nil {
			_ = b.Commit(pebble.NoSync)
		} else {
			x.f.o.Log.Error("journal inbound exchange", zap.Error(err))
		}
	}
	switch rc {
	case spec.RCInvalidMerchant:
		x.f.metrics.Rejected.WithLabelValues("gateway", "unknown_institution").Inc()
	case spec.RCMACError:
		x.f.metrics.Rejected.WithLabelValues("gateway", "mac_error").Inc()
	}
	x.answered(rc)
	return packed
}

func (x *inbound) answered(rc string) {
	label := typeLabel(x.tx)
	x.f.metrics.Transactions.WithLabelValues(label, rc).Inc()
	x.f.metrics.Duration.WithLabelValues(label).Observe(time.Since(x.start).Seconds())
}

// pack builds and packs the answer to x with o (txn.go), MACed with the
// institution's ZAK when the request's MAC verified.
func (x *inbound) pack(o txn.Outcome) ([]byte, error) {
	resp := iso8583.NewMessage(spec.Gateway)
	resp.MTI(x.rmti)
	if err := inboundAnswer(resp, x.req, x.order, o); err != nil {
		return nil, err
	}
	if !x.macOK {
		return spec.EncodeGateway(resp)
	}
	if err := resp.BinaryField(64, make([]byte, 8)); err != nil {
		return nil, err
	}
	packed, err := spec.EncodeGateway(resp)
	if err != nil {
		return nil, err
	}
	block, err := spec.GatewayMACBlock(packed)
	if err != nil {
		return nil, err
	}
	m, err := x.f.o.Keys.GenerateZoneMAC(recharge.KeyName(x.inst), block)
	if err != nil {
		return nil, err
	}
	if len(m) != 8 {
		return nil, errors.New("gateway: MAC of other than 8 bytes")
	}
	copy(packed[len(packed)-8:], m)
	return packed, nil
}

// journalPair writes the request and its answer into b. Institutions'
// messages carry no PIN block, track or IC data; should a request hold
// one anyway, those fields are removed first.
func (x *inbound) journalPair(b *pebble.Batch, packed []byte, rc, rrn string) error {
	j := x.f.o.Journal
	if j == nil {
		return nil
	}
	now := time.Now()
	date := x.f.o.Today().String()
	stan, _ := x.req.GetString(11)
	term, _ := x.req.GetString(41)
	merch, _ := x.req.GetString(42)
	label := typeLabel(x.tx)
	in := &journal.Entry{Direction: journal.In, Listener: "gateway", Peer: x.peer, Terminal: term, Merchant: merch,
		MTI: x.mti, STAN: stan, TxType: label, Time: x.start, BusinessDate: date, Raw: redactedGateway(x.req, x.raw)}
	out := &journal.Entry{Direction: journal.Out, Listener: "gateway", Peer: x.peer, Terminal: term, Merchant: merch,
		MTI: x.rmti, STAN: stan, RRN: rrn, TxType: label, ResponseCode: rc, Time: now, BusinessDate: date, Raw: packed}
	_, _, err := j.AppendPair(b, in, out)
	return err
}

// redactedGateway returns raw, or the message packed again without
// fields 35, 52 and 55 when it holds any of them.
func redactedGateway(m *iso8583.Message, raw []byte) []byte {
	if m.GetField(35) == nil && m.GetField(52) == nil && m.GetField(55) == nil {
		return raw
	}
	c, err := m.Clone()
	if err != nil {
		return nil
	}
	for _, id := range []int{35, 52, 55} {
		c.UnsetField(id)
	}
	b, err := c.Pack()
	if err != nil {
		return nil
	}
	return b
}
