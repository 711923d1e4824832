package gwsim

import (
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"
)

// outcome is what serve does with one request.
type outcome struct {
	frame           []byte
	drop            bool
	delay           time.Duration
	disconnectAfter int
}

// Response codes the simulator answers beyond spec's table.
const (
	rcNotAvailable = "91" // not signed on / sign-on refused
)

// Field 70 network management codes (docs/gateway-dialect.md).
const (
	nmSignOn      = spec.GWNetworkSignOn
	nmSignOff     = spec.GWNetworkSignOff
	nmKeyExchange = spec.GWNetworkKeyExchange
	nmEcho        = spec.GWNetworkEcho
)

// echoFinancial are echoed from a financial request into its answer.
var echoFinancial = []int{2, 3, 4, 7, 11, 32, 33, 37, 41, 42, 48, 49}

// echoNetwork are echoed from a network management request.
var echoNetwork = []int{7, 11, 32, 33, 41, 70, 100}

// answerMTI maps a request MTI to its answer: 0421 is answered 0430 and
// 0401 0410 (ISO 8583:1987 has no 0431 or 0411).
func answerMTI(mti string) string {
	switch mti {
	case "0421":
		return "0430"
	case "0401":
		return "0410"
	}
	return spec.ResponseMTI(mti)
}

// handle processes one request body and returns the answer to send.
func (s *Sim) handle(c *conn, body []byte) outcome {
	s.mu.Lock()
	s.stats.Messages++
	f := s.faults
	s.mu.Unlock()
	out := outcome{disconnectAfter: f.DisconnectAfter}
	m, err := spec.DecodeGateway(body)
	if err != nil {
		s.mu.Lock()
		s.stats.FormatErrors++
		s.mu.Unlock()
		s.log.Info("gwsim undecodable message", zap.String("peer", c.peer), zap.Error(err))
		out.frame = s.formatError(body)
		return out
	}
	mti, _ := m.GetMTI()
	if mti[2]%2 == 1 {
		s.log.Info("gwsim ignores an answer it did not ask for", zap.String("peer", c.peer), zap.String("mti", mti))
		return out
	}
	if mti == "0800" {
		out.frame = s.networkManagement(c, m, f)
		return out
	}
	resp, mac := s.financial(c, m, mti, body, f)
	if resp == nil {
		return out
	}
	frame, err := s.pack(resp, mac)
	if err != nil {
		s.log.Error("gwsim cannot pack an answer", zap.String("mti", mti), zap.Error(err))
		return out
	}
	out.frame = frame
	out.delay = f.Delay
	if f.DropPercent > 0 {
		s.mu.Lock()
		out.drop = s.rng.IntN(100) < f.DropPercent
		if out.drop {
			s.stats.Dropped++
		}
		s.mu.Unlock()
	}
	return out
}

// formatError answers an undecodable request 30, without MAC, when its
// MTI is a readable request MTI.
func (s *Sim) formatError(body []byte) []byte {
	if len(body) < 4 {
		return nil
	}
	rmti := answerMTI(string(body[:4]))
	if rmti == "" {
		return nil
	}
	resp := iso8583.NewMessage(spec.Gateway)
	resp.MTI(rmti)
	if err := resp.Field(39, spec.RCFormatError); err != nil {
		return nil
	}
	frame, err := s.pack(resp, nil)
	if err != nil {
		return nil
	}
	return frame
}

func newAnswer(req *iso8583.Message, mti string, echo []int) *iso8583.Message {
	resp := iso8583.NewMessage(spec.Gateway)
	resp.MTI(mti)
	for _, id := range echo {
		if v, err := req.GetString(id); err == nil && v != "" {
			_ = resp.Field(id, v) // the value decoded under the same spec
		}
	}
	return resp
}

// pack packs resp into a frame, MACed under zak when zak is not nil: the
// MAC goes in 128 when the secondary bitmap is present, else in 64.
func (s *Sim) pack(resp *iso8583.Message, zak *zoneKey) ([]byte, error) {
	if zak != nil {
		id := 64
		for f := range resp.GetFields() {
			if f > 64 {
				id = 128
			}
		}
		if err := resp.BinaryField(id, make([]byte, 8)); err != nil {
			return nil, err
		}
	}
	packed, err := spec.EncodeGateway(resp)
	if err != nil {
		return nil, err
	}
	if zak != nil {
		block, err := spec.GatewayMACBlock(packed)
		if err != nil {
			return nil, err
		}
		sum, err := zak.mac(block)
		if err != nil {
			return nil, err
		}
		copy(packed[len(packed)-8:], sum)
	}
	return spec.AppendFrame(make([]byte, 0, len(packed)+2), packed)
}

// networkManagement answers 0800: sign-on, sign-off, key exchange, echo.
// Network management carries no MAC.
func (s *Sim) networkManagement(c *conn, m *iso8583.Message, f Faults) []byte {
	code, _ := m.GetString(70)
	resp := newAnswer(m, "0810", echoNetwork)
	rc := spec.RCApproved
	s.mu.Lock()
	switch code {
	case nmSignOn:
		if f.RefuseSignOn {
			rc = rcNotAvailable
		} else {
			c.signedOn = true
			s.stats.SignOns++
		}
	case nmSignOff:
		c.signedOn = false
		s.stats.SignOffs++
	case nmEcho:
	case nmKeyExchange:
		if !c.signedOn {
			rc = rcNotAvailable
			break
		}
		tags, err := s.exchangeKeys()
		if err != nil {
			s.log.Error("gwsim key exchange failed", zap.Error(err))
			rc = spec.RCSystemMalfunction
			break
		}
		if err := resp.Field(48, tags); err != nil {
			rc = spec.RCSystemMalfunction
		}
		s.stats.KeyExchanges++
	default:
		rc = spec.RCFunctionNotSupported
	}
	s.mu.Unlock()
	s.log.Info("gwsim network management", zap.String("peer", c.peer), zap.String("code", code), zap.String("rc", rc))
	if err := resp.Field(39, rc); err != nil {
		return nil
	}
	frame, err := s.pack(resp, nil)
	if err != nil {
		s.log.Error("gwsim cannot pack 0810", zap.Error(err))
		return nil
	}
	return frame
}

// exchangeKeys makes a fresh ZPK and ZAK, keeps the old ones for the
// grace period, and returns field 48 of the 0810: tags PK and AK (each key
// under the ZMK, 32 hex) and PC and AC (their check values, 6 hex).
// Called with s.mu held.
func (s *Sim) exchangeKeys() (string, error) {
	zpk, err := randomZoneKey()
	if err != nil {
		return "", err
	}
	zak, err := randomZoneKeyAlg(s.opts.MAC)
	if err != nil {
		return "", err
	}
	pk, err := zpk.wrapUnder(s.zmk)
	if err != nil {
		return "", err
	}
	ak, err := zak.wrapUnder(s.zmk)
	if err != nil {
		return "", err
	}
	tags, err := spec.FormatTagList([]spec.Tag{{Name: "PK", Value: pk}, {Name: "PC", Value: zpk.checkValue()},
		{Name: "AK", Value: ak}, {Name: "AC", Value: zak.checkValue()}})
	if err != nil {
		return "", err
	}
	s.keys.replace(zpk, zak, s.now())
	return tags, nil
}

// financial checks and processes a financial request and returns its
// answer and the ZAK to MAC it with (nil: no MAC).
func (s *Sim) financial(c *conn, m *iso8583.Message, mti string, raw []byte, f Faults) (*iso8583.Message, *zoneKey) {
	rmti := answerMTI(mti)
	resp := newAnswer(m, rmti, echoFinancial)
	answer := func(rc string, zak *zoneKey) (*iso8583.Message, *zoneKey) {
		if err := resp.Field(39, rc); err != nil {
			return nil, nil
		}
		return resp, zak
	}
	s.mu.Lock()
	signedOn := c.signedOn
	now := s.now()
	s.mu.Unlock()
	if !signedOn {
		s.log.Info("gwsim financial message before sign-on", zap.String("peer", c.peer), zap.String("mti", mti))
		return answer(rcNotAvailable, nil)
	}
	zak := s.verifyMAC(raw, now)
	if zak == nil {
		s.mu.Lock()
		s.stats.MACErrors++
		s.mu.Unlock()
		s.log.Info("gwsim bad or missing MAC", zap.String("peer", c.peer), zap.String("mti", mti))
		return answer(spec.RCMACError, nil)
	}
	req := readRequest(m, mti)
	if cur, _ := m.GetString(49); cur != spec.GWCurrencyCNY {
		return answer(spec.RCFormatError, zak)
	}
	if !s.fresh(req.transmission, now) {
		s.log.Info("gwsim field 7 missing or stale", zap.String("field7", req.transmission))
		return answer(spec.RCFormatError, zak)
	}
	if s.opts.Institution != "" {
		if inst, _ := m.GetString(100); inst != s.opts.Institution {
			return answer(spec.RCInvalidMerchant, zak)
		}
	}
	res := s.process(req, now, f)
	for id, v := range res.fields {
		if err := resp.Field(id, v); err != nil {
			s.log.Error("gwsim cannot set answer field", zap.Int("field", id), zap.Error(err))
			return answer(spec.RCSystemMalfunction, zak)
		}
	}
	s.log.Info("gwsim financial", zap.String("mti", mti), zap.String("processing_code", req.processing),
		zap.String("card", cardno.Mask(req.card)), zap.Int64("amount_fen", int64(req.amount)),
		zap.String("stan", req.stan), zap.String("rc", res.rc))
	return answer(res.rc, zak)
}

// verifyMAC checks the request's MAC under the current ZAK (and the
// previous one during the grace period) and returns the key that matched,
// or nil.
func (s *Sim) verifyMAC(raw []byte, now time.Time) *zoneKey {
	block, err := spec.GatewayMACBlock(raw)
	if err != nil {
		return nil
	}
	got := raw[len(raw)-8:]
	s.mu.Lock()
	keys := s.keys.macKeys(now, s.opts.KeyGrace)
	s.mu.Unlock()
	for _, k := range keys {
		sum, err := k.mac(block)
		if err == nil && macEqual(sum, got) {
			return k
		}
	}
	return nil
}

// fresh reports whether field 7 (MMDDhhmmss, UTC) is within the clock
// window of now.
func (s *Sim) fresh(f7 string, now time.Time) bool {
	d, err := spec.TransmissionSkew(f7, now)
	return err == nil && d <= s.opts.ClockWindow
}

// request is the part of a financial request the bank acts on.
type request struct {
	mti, processing, card, account, beneficiary string
	amount                                      spec.Amount
	amountOK                                    bool
	stan, transmission, acquirer, forwarding    string
	rrn, terminal, merchant, original, field53  string
	condition, authCode, reason                 string // 25, 38, 39
	pinBlock                                    []byte
}

func readRequest(m *iso8583.Message, mti string) request {
	get := func(id int) string { v, _ := m.GetString(id); return strings.TrimSpace(v) }
	r := request{mti: mti, processing: get(3), card: get(2), account: get(102), beneficiary: get(103),
		stan: get(11), transmission: get(7), acquirer: get(32), forwarding: get(33), rrn: get(37),
		terminal: get(41), merchant: get(42), original: get(90), field53: get(53),
		condition: get(25), authCode: get(38), reason: get(39)}
	if a, err := spec.ParseAmount(get(4)); err == nil {
		r.amount, r.amountOK = a, true
	}
	if b, err := m.GetBytes(52); err == nil && len(b) == 8 {
		r.pinBlock = b
	}
	return r
}
