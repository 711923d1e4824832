package recharge

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"
)

// Processing codes of the inbound operations (docs/recharge.md).
const (
	ProcVerify = "330000"
	ProcCredit = "210000"
	ProcQuery  = "380000"
)

// Field 48 tags of the inbound operations.
const (
	TagOrder   = "ON"
	TagName    = "NM"
	TagChannel = "CH"
	TagStatus  = "ST"
	TagRC      = "RC"
)

// Bounds of the tag values (docs/recharge.md).
const (
	MaxOrderLen   = 32
	MaxChannelLen = 8
)

// MaxClockSkew is how far field 7 (or the HTTP timestamp) may be from the
// switch's clock.
const MaxClockSkew = 300 * time.Second

// Transaction type labels (metrics, journal).
const (
	TxVerify   = "recharge_verify"
	TxCredit   = "recharge_credit"
	TxQuery    = "recharge_query"
	TxReversal = "recharge_reversal"
	TxUnknown  = "recharge_unknown"
)

// KeyName is the name under which an institution's zone keys live in the
// HSM (hsm.ZoneKeyLabel(KeyName(id), hsm.ZAK)).
func KeyName(institution string) string { return "inst-" + institution }

// HTTPKeyLabel is the HSM label of an institution's HTTP signing key.
func HTTPKeyLabel(institution string) string { return "recharge/" + institution + "/http" }

// Keys are the HSM operations the front ends need; *hsm.HSM has them.
type Keys interface {
	GenerateZoneMAC(link string, data []byte) ([]byte, error)
	VerifyZoneMAC(link string, data, got []byte, previousToo bool) (bool, error)
	VerifyHMACSHA256(label string, data, got []byte) (bool, error)
}

// Observer receives what the front ends answer, for metrics.
type Observer interface {
	Answered(tx, rc string, d time.Duration)
	Rejected(listener, reason string)
}

// ISO is the front end on the gateway port: gateway-dialect messages
// from configured institutions (docs/recharge.md "ISO 8583").
type ISO struct {
	s       *Service
	keys    Keys
	journal *journal.Journal
	obs     Observer
}

// NewISO builds the gateway-port front end of s.
func NewISO(s *Service, keys Keys, j *journal.Journal, obs Observer) *ISO {
	return &ISO{s: s, keys: keys, journal: j, obs: obs}
}

// echoed are the request fields every answer repeats (docs/recharge.md).
var echoed = []int{2, 3, 4, 7, 11, 32, 37, 41, 42, 49}

// exchange is one inbound request on its way to its answer.
type exchange struct {
	f     *ISO
	peer  string
	req   *iso8583.Message
	raw   []byte
	mti   string
	rmti  string
	tx    string
	inst  string // set once field 32 names a configured institution allowed here
	macOK bool   // the answer may carry a MAC
	order string
	start time.Time
}

// Handle answers one decoded gateway request from peer (raw is its frame
// body). It returns the packed answer, or nil when there is none to give,
// and whether the request proved its sender (a verified MAC): what did
// not is counted and rate limited by the acceptor, not journaled.
func (f *ISO) Handle(peer netip.Addr, peerStr string, req *iso8583.Message, raw []byte, start time.Time) (answer []byte, authenticated bool) {
	answer = f.handle(peer, peerStr, req, raw, start, &authenticated)
	return answer, authenticated
}

func (f *ISO) handle(peer netip.Addr, peerStr string, req *iso8583.Message, raw []byte, start time.Time, authenticated *bool) []byte {
	x := &exchange{f: f, peer: peerStr, req: req, raw: raw, start: start, tx: TxUnknown}
	x.mti, _ = req.GetMTI()
	x.rmti = spec.ResponseMTI(x.mti)
	if x.mti == spec.GWReversalRepeat {
		x.rmti = spec.GWReversalResponse
	}
	if x.rmti == "" {
		return nil
	}
	proc, _ := req.GetString(3)
	switch {
	case x.mti == "0100" && proc == ProcVerify:
		x.tx = TxVerify
	case x.mti == "0100" && proc == ProcQuery:
		x.tx = TxQuery
	case x.mti == spec.GWFinancialRequest && proc == ProcCredit:
		x.tx = TxCredit
	case (x.mti == spec.GWReversalRequest || x.mti == spec.GWReversalRepeat) && proc == ProcCredit:
		x.tx = TxReversal
	}

	// 32: a configured institution whose allow-list holds the source.
	id, _ := req.GetString(32)
	in, ok := f.s.Institution(id)
	if !ok || !in.Allows(peer) {
		return x.plain(spec.RCInvalidMerchant, nil)
	}
	x.inst = id
	// MAC with the institution's ZAK.
	block, err := spec.GatewayMACBlock(raw)
	if err != nil {
		return x.plain(spec.RCMACError, nil)
	}
	ok, err = f.keys.VerifyZoneMAC(KeyName(id), block, raw[len(raw)-8:], false)
	if err != nil {
		f.s.log.Error("inbound MAC not verified", zap.String("institution", id), zap.Error(err))
	}
	if !ok {
		return x.plain(spec.RCMACError, nil)
	}
	x.macOK = true
	*authenticated = true
	// 7 fresh, 49 = 156.
	t7, _ := req.GetString(7)
	skew, err := spec.TransmissionSkew(t7, f.s.now())
	cur, _ := req.GetString(49)
	if err != nil || skew > MaxClockSkew || cur != spec.GWCurrencyCNY {
		return x.plain(spec.RCFormatError, nil)
	}
	if x.tx == TxUnknown {
		return x.plain(spec.RCFunctionNotSupported, nil)
	}
	r, ok := x.request()
	if !ok {
		return x.plain(spec.RCFormatError, nil)
	}
	switch x.tx {
	case TxVerify:
		return x.plain("", f.s.Verify(r).withRC())
	case TxQuery:
		out, err := f.s.Query(r)
		if err != nil {
			f.s.log.Error("order query", zap.Error(err))
			return x.plain(spec.RCSystemMalfunction, nil)
		}
		return x.plain("", &out)
	}
	var packed []byte
	commit := func(b *pebble.Batch, out Outcome) error {
		var err error
		if packed, err = x.pack(out); err != nil {
			return err
		}
		if err := x.journalPair(b, packed, out.RC, out.RRN); err != nil {
			return err
		}
		return b.Commit(pebble.Sync)
	}
	var out Outcome
	if x.tx == TxCredit {
		out, err = f.s.Credit(r, commit)
	} else {
		out, err = f.s.Reverse(r, commit)
	}
	if err != nil {
		f.s.log.Error("inbound "+x.tx, zap.String("institution", id), zap.String("order", r.Order), zap.Error(err))
		return x.plain(spec.RCSystemMalfunction, nil)
	}
	if packed == nil {
		// Answered without a commit (an unknown institution cannot
		// reach here; kept for safety).
		return x.plain("", &out)
	}
	f.obs.Answered(x.tx, out.RC, time.Since(x.start))
	return packed
}

func (o Outcome) withRC() *Outcome { return &o }

// request reads the operation's fields into a Request; false for a
// format error (a missing or malformed field).
func (x *exchange) request() (Request, bool) {
	req := x.req
	r := Request{Institution: x.inst}
	r.PAN, _ = req.GetString(2)
	r.ProcCode, _ = req.GetString(3)
	r.Currency, _ = req.GetString(49)
	if s, err := req.GetString(4); err == nil && s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return r, false
		}
		r.Amount, r.HasAmount = ledger.Fen(v), true
	}
	f48, _ := req.GetString(48)
	tags, err := spec.ParseTagList(f48)
	if err != nil {
		return r, false
	}
	r.Order, _ = spec.TagValue(tags, TagOrder)
	r.Name, _ = spec.TagValue(tags, TagName)
	ch, _ := spec.TagValue(tags, TagChannel)
	if len(r.Order) > MaxOrderLen || len(r.Name) > MaxNameBytes || len(ch) > MaxChannelLen || !printableASCII(r.Order) || !printableASCII(ch) {
		return r, false
	}
	x.order = r.Order
	switch x.tx {
	case TxVerify:
		return r, r.PAN != "" && r.Name != ""
	case TxQuery:
		return r, r.Order != ""
	default:
		return r, r.Order != "" && r.PAN != "" && r.HasAmount
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// plain answers without a commit of its own: rc alone, or the outcome of
// an operation that moves no money. Once the MAC verified, the exchange
// is journaled in a batch that rides the next synced commit.
func (x *exchange) plain(rc string, out *Outcome) []byte {
	if out == nil {
		out = &Outcome{RC: rc}
	}
	packed, err := x.pack(*out)
	if err != nil {
		x.f.s.log.Error("cannot pack gateway answer", zap.String("mti", x.rmti), zap.Error(err))
		return nil
	}
	// What a verified MAC did not prove (03, A0) is counted, not
	// journaled: a flood of it must not fill the journal
	// (docs/operations.md#what-is-journaled).
	if x.macOK {
		b := x.f.s.db.NewBatch()
		defer b.Close()
		if err := x.journalPair(b, packed, out.RC, out.RRN); err == nil {
			err = b.Commit(pebble.NoSync)
		} else {
			x.f.s.log.Error("journal inbound exchange", zap.Error(err))
		}
	}
	switch out.RC {
	case spec.RCInvalidMerchant:
		x.f.obs.Rejected("gateway", "unknown_institution")
	case spec.RCMACError:
		x.f.obs.Rejected("gateway", "mac_error")
	}
	x.f.obs.Answered(x.tx, out.RC, time.Since(x.start))
	return packed
}

// pack builds and packs the answer to x with out, MACed with the
// institution's ZAK when the request's MAC verified.
func (x *exchange) pack(out Outcome) ([]byte, error) {
	resp := iso8583.NewMessage(spec.Gateway)
	resp.MTI(x.rmti)
	for _, id := range echoed {
		if v, err := x.req.GetString(id); err == nil && v != "" {
			if err := resp.Field(id, v); err != nil {
				return nil, err
			}
		}
	}
	set := func(id int, v string) error {
		if v == "" {
			return nil
		}
		return resp.Field(id, v)
	}
	if err := resp.Field(39, out.RC); err != nil {
		return nil, err
	}
	if err := set(37, out.RRN); err != nil {
		return nil, err
	}
	if err := set(38, out.AuthCode); err != nil {
		return nil, err
	}
	var tags []spec.Tag
	if x.order != "" {
		tags = append(tags, spec.Tag{Name: TagOrder, Value: x.order})
	}
	if out.Status != 0 {
		tags = append(tags, spec.Tag{Name: TagStatus, Value: string(out.Status)})
		if out.StatusRC != "" {
			tags = append(tags, spec.Tag{Name: TagRC, Value: out.StatusRC})
		}
		if err := set(2, out.PAN); err != nil {
			return nil, err
		}
		if out.Amount > 0 {
			if err := resp.Field(4, zeroPad(int64(out.Amount), 12)); err != nil {
				return nil, err
			}
		}
	}
	if len(tags) > 0 {
		f48, err := spec.FormatTagList(tags)
		if err != nil {
			return nil, err
		}
		if err := resp.Field(48, f48); err != nil {
			return nil, err
		}
	}
	if out.Balances != nil {
		f54, err := BalancesField(*out.Balances)
		if err != nil {
			return nil, err
		}
		if err := resp.Field(54, f54); err != nil {
			return nil, err
		}
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
	m, err := x.f.keys.GenerateZoneMAC(KeyName(x.inst), block)
	if err != nil {
		return nil, err
	}
	if len(m) != 8 {
		return nil, errors.New("recharge: MAC of other than 8 bytes")
	}
	copy(packed[len(packed)-8:], m)
	return packed, nil
}

func zeroPad(v int64, n int) string {
	s := strconv.FormatInt(v, 10)
	for len(s) < n {
		s = "0" + s
	}
	return s
}

// BalancesField is field 54 of an approved credit: the card's cash and
// subsidy purses (docs/pos-dialect.md layout).
func BalancesField(b ledger.Balances) (string, error) {
	return spec.FormatBalances([]spec.Balance{
		{AccountType: spec.AccountCashPurse, AmountType: spec.AmountTypeAvailable, Currency: spec.CurrencyCNY, Amount: spec.Amount(b.Cash)},
		{AccountType: spec.AccountSubsidyPurse, AmountType: spec.AmountTypeAvailable, Currency: spec.CurrencyCNY, Amount: spec.Amount(b.Subsidy)},
	})
}

// journalPair writes the request and its answer into b. Inbound
// institution messages carry no PIN block, track or IC data; should a
// request hold one anyway, those fields are removed first.
func (x *exchange) journalPair(b *pebble.Batch, packed []byte, rc, rrn string) error {
	if x.f.journal == nil {
		return nil
	}
	now := time.Now()
	date := x.f.s.today().String()
	stan, _ := x.req.GetString(11)
	term, _ := x.req.GetString(41)
	merch, _ := x.req.GetString(42)
	in := &journal.Entry{Direction: journal.In, Listener: "gateway", Peer: x.peer, Terminal: term, Merchant: merch,
		MTI: x.mti, STAN: stan, TxType: x.tx, Time: x.start, BusinessDate: date, Raw: redactedGateway(x.req, x.raw)}
	out := &journal.Entry{Direction: journal.Out, Listener: "gateway", Peer: x.peer, Terminal: term, Merchant: merch,
		MTI: x.rmti, STAN: stan, RRN: rrn, TxType: x.tx, ResponseCode: rc, Time: now, BusinessDate: date, Raw: packed}
	_, _, err := x.f.journal.AppendPair(b, in, out)
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
