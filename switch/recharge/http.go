package recharge

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// DefaultMaxBody bounds an HTTP request body.
const DefaultMaxBody = 8 << 10

// HTTPRequest is the JSON body of every /recharge/v1/ request; the fields
// an operation does not use are left out.
type HTTPRequest struct {
	Institution string `json:"institution"`
	Order       string `json:"order,omitempty"`
	Card        string `json:"card,omitempty"`
	AmountFen   *int64 `json:"amount_fen,omitempty"`
	Currency    string `json:"currency,omitempty"`
	Name        string `json:"name,omitempty"`
	Channel     string `json:"channel,omitempty"`
}

// HTTPBalances are the card's purses after an approved credit, in fen.
type HTTPBalances struct {
	CashFen    int64 `json:"cash_fen"`
	SubsidyFen int64 `json:"subsidy_fen"`
}

// HTTPResponse is the JSON answer. RC is the response code of the
// response-code table (docs/recharge.md), the same as the ISO 8583 front
// end answers.
type HTTPResponse struct {
	RC          string        `json:"rc"`
	Message     string        `json:"message"`
	Order       string        `json:"order,omitempty"`
	RRN         string        `json:"rrn,omitempty"`
	AuthCode    string        `json:"auth_code,omitempty"`
	Balances    *HTTPBalances `json:"balances,omitempty"`
	Status      string        `json:"status,omitempty"`
	StatusRC    string        `json:"status_rc,omitempty"`
	Card        string        `json:"card,omitempty"`
	AmountFen   *int64        `json:"amount_fen,omitempty"`
	Replayed    bool          `json:"replayed,omitempty"`
	Institution string        `json:"institution,omitempty"`
}

// HTTPOptions configure the HTTP front end.
type HTTPOptions struct {
	MaxBody int // bytes [DefaultMaxBody]
	// Rate is each institution's requests per second, Burst the requests
	// it may make at once [20 and 40].
	Rate  int
	Burst int
}

// HTTP is the HTTP/JSON front end (docs/recharge.md "HTTP"). Requests are
// signed: X-Timestamp (Unix seconds, within MaxClockSkew) and X-Signature,
// hex HMAC-SHA256 of the timestamp followed by the body, under the
// institution's HTTP key, computed and checked inside the HSM.
type HTTP struct {
	s       *Service
	keys    Keys
	journal *journal.Journal
	obs     Observer
	opts    HTTPOptions

	mu      sync.Mutex
	buckets map[string]*bucket
}

// NewHTTP builds the HTTP front end of s.
func NewHTTP(s *Service, keys Keys, j *journal.Journal, obs Observer, o HTTPOptions) *HTTP {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Rate <= 0 {
		o.Rate = 20
	}
	if o.Burst <= 0 {
		o.Burst = 2 * o.Rate
	}
	return &HTTP{s: s, keys: keys, journal: j, obs: obs, opts: o, buckets: map[string]*bucket{}}
}

// Handler serves POST /recharge/v1/{verify,credit,query,reverse}.
func (h *HTTP) Handler() http.Handler {
	mux := http.NewServeMux()
	for op, tx := range map[string]string{"verify": TxVerify, "credit": TxCredit, "query": TxQuery, "reverse": TxReversal} {
		mux.HandleFunc("POST /recharge/v1/"+op, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, tx) })
	}
	return mux
}

// Listener wraps ln so that connections from addresses on no
// institution's allow-list are closed at once, and counted.
func (h *HTTP) Listener(ln net.Listener) net.Listener { return &allowListener{Listener: ln, h: h} }

type allowListener struct {
	net.Listener
	h *HTTP
}

func (l *allowListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ip, ok := remoteIP(c.RemoteAddr().String()); ok && l.h.s.AllowedAnywhere(ip) {
			return c, nil
		}
		l.h.obs.Rejected("recharge_http", "address_not_allowed")
		_ = c.Close()
	}
}

func remoteIP(addr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// httpStatus is the HTTP status of an answer: business answers are 200
// whatever their code; what stopped a request before its operation has
// its own status.
func httpStatus(rc string) int {
	switch rc {
	case spec.RCFormatError:
		return http.StatusBadRequest
	case spec.RCMACError:
		return http.StatusUnauthorized
	case spec.RCInvalidMerchant:
		return http.StatusForbidden
	case spec.RCSystemMalfunction:
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

func (h *HTTP) serve(w http.ResponseWriter, r *http.Request, tx string) {
	start := time.Now()
	x := &httpExchange{h: h, tx: tx, start: start, peer: r.RemoteAddr}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.opts.MaxBody)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.obs.Rejected("recharge_http", "body_too_large")
			x.answerStatus(w, http.StatusRequestEntityTooLarge, Outcome{RC: spec.RCFormatError})
			return
		}
		x.answer(w, Outcome{RC: spec.RCFormatError})
		return
	}
	x.body = body
	var req HTTPRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		x.answer(w, Outcome{RC: spec.RCFormatError})
		return
	}
	x.req = req
	// Institution and source address (03), signature (A0), timestamp (30).
	in, ok := h.s.Institution(req.Institution)
	ip, ipOK := remoteIP(r.RemoteAddr)
	if !ok || !ipOK || !in.Allows(ip) {
		h.obs.Rejected("recharge_http", "unknown_institution")
		x.answer(w, Outcome{RC: spec.RCInvalidMerchant})
		return
	}
	x.inst = in.ID
	ts := r.Header.Get("X-Timestamp")
	sig, err := hex.DecodeString(r.Header.Get("X-Signature"))
	if err != nil || len(sig) != 32 || len(ts) == 0 || len(ts) > 20 {
		h.obs.Rejected("recharge_http", "bad_signature")
		x.answer(w, Outcome{RC: spec.RCMACError})
		return
	}
	signed := make([]byte, 0, len(ts)+len(body))
	signed = append(append(signed, ts...), body...)
	good, err := h.keys.VerifyHMACSHA256(HTTPKeyLabel(in.ID), signed, sig)
	if err != nil {
		h.s.log.Error("HTTP signature not verified", zap.String("institution", in.ID), zap.Error(err))
	}
	if !good {
		h.obs.Rejected("recharge_http", "bad_signature")
		x.answer(w, Outcome{RC: spec.RCMACError})
		return
	}
	x.authed = true
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || absDuration(h.s.now().Sub(time.Unix(secs, 0))) > MaxClockSkew {
		x.answer(w, Outcome{RC: spec.RCFormatError})
		return
	}
	if !h.allow(in.ID) {
		h.obs.Rejected("recharge_http", "rate_limited")
		w.Header().Set("Retry-After", "1")
		x.answerStatus(w, http.StatusTooManyRequests, Outcome{RC: spec.RCExceedsCountLimit})
		return
	}
	op, ok := x.request()
	if !ok {
		x.answer(w, Outcome{RC: spec.RCFormatError})
		return
	}
	switch tx {
	case TxVerify:
		x.plain(w, h.s.Verify(op))
		return
	case TxQuery:
		out, err := h.s.Query(op)
		if err != nil {
			h.s.log.Error("order query", zap.Error(err))
			out = Outcome{RC: spec.RCSystemMalfunction}
		}
		x.plain(w, out)
		return
	}
	var answer []byte
	commit := func(b *pebble.Batch, out Outcome) error {
		answer = x.encode(out)
		if err := x.journalPair(b, answer, out); err != nil {
			return err
		}
		return b.Commit(pebble.Sync)
	}
	var out Outcome
	if tx == TxCredit {
		out, err = h.s.Credit(op, commit)
	} else {
		out, err = h.s.Reverse(op, commit)
	}
	if err != nil {
		h.s.log.Error("HTTP "+tx, zap.String("institution", in.ID), zap.String("order", op.Order), zap.Error(err))
		x.plain(w, Outcome{RC: spec.RCSystemMalfunction})
		return
	}
	h.obs.Answered(tx, out.RC, time.Since(start))
	x.write(w, httpStatus(out.RC), answer)
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

type httpExchange struct {
	h      *HTTP
	tx     string
	start  time.Time
	peer   string
	body   []byte
	req    HTTPRequest
	inst   string
	authed bool // the signature verified
}

// request turns the JSON body into a Request; false for a format error.
// The credit's processing code and currency are those of the ISO 8583
// credit, so one order is one order whichever front end carries it.
func (x *httpExchange) request() (Request, bool) {
	q := x.req
	r := Request{Institution: x.inst, Order: q.Order, PAN: q.Card, Currency: q.Currency, Name: q.Name, ProcCode: ProcCredit}
	if q.AmountFen != nil {
		r.Amount, r.HasAmount = ledger.Fen(*q.AmountFen), true
		if *q.AmountFen < 0 || *q.AmountFen > int64(ledger.MaxAmount) {
			return r, false
		}
	}
	if len(q.Order) > MaxOrderLen || !printableASCII(q.Order) || len(q.Name) > MaxNameBytes ||
		len(q.Channel) > MaxChannelLen || !printableASCII(q.Channel) || len(q.Card) > 19 || !digits(q.Card) {
		return r, false
	}
	switch x.tx {
	case TxVerify:
		return r, r.PAN != "" && r.Name != ""
	case TxQuery:
		return r, r.Order != ""
	}
	return r, r.Order != "" && r.PAN != "" && r.HasAmount && r.Currency == spec.GWCurrencyCNY
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (x *httpExchange) encode(out Outcome) []byte {
	resp := HTTPResponse{RC: out.RC, Message: spec.RCDescription(out.RC), Order: x.req.Order, RRN: out.RRN,
		AuthCode: out.AuthCode, Replayed: out.Replayed, Institution: x.inst}
	if out.Balances != nil {
		resp.Balances = &HTTPBalances{CashFen: int64(out.Balances.Cash), SubsidyFen: int64(out.Balances.Subsidy)}
	}
	if out.Status != 0 {
		resp.Status, resp.StatusRC, resp.Card = string(out.Status), out.StatusRC, out.PAN
		a := int64(out.Amount)
		resp.AmountFen = &a
	}
	b, _ := json.Marshal(resp)
	return b
}

// answer answers without an operation (a request refused before it).
func (x *httpExchange) answer(w http.ResponseWriter, out Outcome) {
	x.answerStatus(w, httpStatus(out.RC), out)
}

func (x *httpExchange) answerStatus(w http.ResponseWriter, status int, out Outcome) {
	b := x.encode(out)
	if x.authed {
		// Only what a valid signature proved is journaled; refusals
		// before it are counted (docs/operations.md#what-is-journaled).
		x.journalAlone(b, out)
	}
	x.h.obs.Answered(x.tx, out.RC, time.Since(x.start))
	x.write(w, status, b)
}

// plain answers an operation that moves no money.
func (x *httpExchange) plain(w http.ResponseWriter, out Outcome) { x.answer(w, out) }

func (x *httpExchange) write(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (x *httpExchange) journalAlone(answer []byte, out Outcome) {
	b := x.h.s.db.NewBatch()
	defer b.Close()
	err := x.journalPair(b, answer, out)
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		x.h.s.log.Error("journal HTTP exchange", zap.Error(err))
	}
}

// httpMTI names an HTTP operation in the journal by the MTI of its ISO
// 8583 twin, so that both front ends' entries read alike.
var httpMTI = map[string][2]string{
	TxVerify: {"0100", "0110"}, TxQuery: {"0100", "0110"}, TxCredit: {"0200", "0210"}, TxReversal: {"0400", "0410"},
}

func (x *httpExchange) journalPair(b *pebble.Batch, answer []byte, out Outcome) error {
	if x.h.journal == nil {
		return nil
	}
	peer := x.peer
	if len(peer) > 64 {
		peer = peer[:64]
	}
	date := x.h.s.today().String()
	mti := httpMTI[x.tx]
	body := x.body
	if len(body) > journal.MaxRawLen {
		body = body[:journal.MaxRawLen]
	}
	in := &journal.Entry{Direction: journal.In, Listener: "recharge_http", Peer: peer, MTI: mti[0],
		TxType: x.tx, Time: x.start, BusinessDate: date, Raw: body}
	o := &journal.Entry{Direction: journal.Out, Listener: "recharge_http", Peer: peer, MTI: mti[1], RRN: out.RRN,
		TxType: x.tx, ResponseCode: out.RC, Time: time.Now(), BusinessDate: date, Raw: answer}
	_, _, err := x.h.journal.AppendPair(b, in, o)
	return err
}

// bucket is a token bucket: Rate tokens a second up to Burst.
type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes a token from the institution's bucket.
func (h *HTTP) allow(inst string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	b := h.buckets[inst]
	if b == nil {
		b = &bucket{tokens: float64(h.opts.Burst), last: now}
		h.buckets[inst] = b // one per configured institution: bounded
	}
	b.tokens = min(float64(h.opts.Burst), b.tokens+now.Sub(b.last).Seconds()*float64(h.opts.Rate))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
