// Package rechargesim plays an outside recharge platform (a school's web
// payment page, a wallet) against the switch: account verification,
// credits by order number, order query and credit reversal, over the
// gateway port (ISO 8583, MACed with the institution's ZAK) or over HTTP
// (signed with HMAC-SHA256). cmd/rechargesim drives it from the command
// line; the end-to-end and crash tests use it directly.
//
// It holds its keys in clear, as the far side of a key exchange does: it
// is a simulator, never part of the switch.
package rechargesim

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/moov-io/iso8583"
)

// Answer is what the switch answered, whichever front end carried it.
type Answer struct {
	MTI      string // ISO answers
	RC       string
	RRN      string
	AuthCode string
	Card     string
	Amount   int64
	// Balances: cash and subsidy purses after a credit (fen); HasBalances
	// tells an answer without field 54 from one with zeros.
	Cash, Subsidy int64
	HasBalances   bool
	Status        string // order query: A, D or R
	StatusRC      string
	Order         string
	// MACOK reports that the ISO answer's MAC verified under the ZAK (false
	// for answers that carry none: 03, A0, 30 before the institution is
	// known). HTTP answers leave it false.
	MACOK bool
	// HTTPStatus is the HTTP status of an HTTP answer.
	HTTPStatus int
	Replayed   bool
}

// Op is an operation with its inputs.
type Op struct {
	Order  string
	Card   string
	Amount int64 // fen; negative leaves field 4 out
	Name   string
	// Repeat sends a reversal as a repeat (0401).
	Repeat bool
}

// ISO is a connection to the gateway port as one institution.
type ISO struct {
	Institution string
	conn        net.Conn
	r           *bufio.Reader
	k1, k2      cipher.Block
	stan        int
	mu          sync.Mutex
	// Now is the clock of field 7 (tests skew it); defaults to time.Now.
	Now func() time.Time
	// BadMAC corrupts the MAC of the requests (tests of A0).
	BadMAC bool
	// Timeout bounds one exchange [10s].
	Timeout time.Duration
}

// DialISO connects to the gateway port at addr as institution inst with
// its clear ZAK (32 hex digits).
func DialISO(addr, inst, zakHex string) (*ISO, error) {
	zak, err := hex.DecodeString(zakHex)
	if err != nil || len(zak) != 16 {
		return nil, errors.New("rechargesim: the ZAK must be 32 hex digits")
	}
	k1, err := blockcipher.New(blockcipher.DES, zak[:8])
	if err != nil {
		return nil, err
	}
	k2, err := blockcipher.New(blockcipher.DES, zak[8:])
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &ISO{Institution: inst, conn: c, r: bufio.NewReader(c), k1: k1, k2: k2, Now: time.Now, Timeout: 10 * time.Second}, nil
}

// Close closes the connection.
func (c *ISO) Close() error { return c.conn.Close() }

// Verify sends an account verification (0100, 330000).
func (c *ISO) Verify(op Op) (Answer, error) { return c.do("0100", "330000", op) }

// Credit sends a credit (0200, 210000).
func (c *ISO) Credit(op Op) (Answer, error) { return c.do("0200", "210000", op) }

// Query sends an order query (0100, 380000).
func (c *ISO) Query(op Op) (Answer, error) { return c.do("0100", "380000", op) }

// Reverse sends a credit reversal (0400, or 0401 with op.Repeat).
func (c *ISO) Reverse(op Op) (Answer, error) {
	mti := "0400"
	if op.Repeat {
		mti = "0401"
	}
	return c.do(mti, "210000", op)
}

// Build builds a request message (exported for tests that tamper with
// one before sending it with SendRaw).
func (c *ISO) Build(mti, proc string, op Op) (*iso8583.Message, error) {
	c.stan = c.stan%999999 + 1
	m := iso8583.NewMessage(spec.Gateway)
	m.MTI(mti)
	set := func(id int, v string) error {
		if v == "" {
			return nil
		}
		return m.Field(id, v)
	}
	var tags []spec.Tag
	if op.Order != "" {
		tags = append(tags, spec.Tag{Name: "ON", Value: op.Order})
	}
	if op.Name != "" {
		tags = append(tags, spec.Tag{Name: "NM", Value: op.Name})
	}
	if len(tags) > 0 {
		tags = append(tags, spec.Tag{Name: "CH", Value: "WEB"})
	}
	f48, err := spec.FormatTagList(tags)
	if err != nil {
		return nil, err
	}
	amount := ""
	if op.Amount >= 0 {
		amount = fmt.Sprintf("%012d", op.Amount)
	}
	for _, f := range []struct {
		id int
		v  string
	}{{2, op.Card}, {3, proc}, {4, amount}, {7, spec.FormatTransmissionTime(c.Now())},
		{11, fmt.Sprintf("%06d", c.stan)}, {32, c.Institution}, {48, f48}, {49, spec.GWCurrencyCNY}} {
		if err := set(f.id, f.v); err != nil {
			return nil, fmt.Errorf("field %d: %w", f.id, err)
		}
	}
	return m, nil
}

// Pack packs m with its MAC (corrupted when BadMAC is set).
func (c *ISO) Pack(m *iso8583.Message) ([]byte, error) {
	if err := m.BinaryField(64, make([]byte, 8)); err != nil {
		return nil, err
	}
	b, err := spec.EncodeGateway(m)
	if err != nil {
		return nil, err
	}
	sum, err := mac.RetailMAC(c.k1, c.k2, b[:len(b)-8], mac.Pad1)
	if err != nil {
		return nil, err
	}
	copy(b[len(b)-8:], sum)
	if c.BadMAC {
		b[len(b)-1] ^= 0x01
	}
	return b, nil
}

func (c *ISO) do(mti, proc string, op Op) (Answer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.Build(mti, proc, op)
	if err != nil {
		return Answer{}, err
	}
	b, err := c.Pack(m)
	if err != nil {
		return Answer{}, err
	}
	return c.exchange(b)
}

// SendRaw sends a packed message body and reads the answer.
func (c *ISO) SendRaw(body []byte) (Answer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exchange(body)
}

func (c *ISO) exchange(body []byte) (Answer, error) {
	frame, err := spec.AppendFrame(nil, body)
	if err != nil {
		return Answer{}, err
	}
	_ = c.conn.SetDeadline(time.Now().Add(c.Timeout))
	if _, err := c.conn.Write(frame); err != nil {
		return Answer{}, err
	}
	var lb [2]byte
	if _, err := io.ReadFull(c.r, lb[:]); err != nil {
		return Answer{}, err
	}
	resp := make([]byte, int(lb[0])<<8|int(lb[1]))
	if _, err := io.ReadFull(c.r, resp); err != nil {
		return Answer{}, err
	}
	return c.decode(resp)
}

func (c *ISO) decode(raw []byte) (Answer, error) {
	m, err := spec.DecodeGateway(raw)
	if err != nil {
		return Answer{}, fmt.Errorf("answer does not decode: %w", err)
	}
	var a Answer
	a.MTI, _ = m.GetMTI()
	a.RC, _ = m.GetString(39)
	a.RRN, _ = m.GetString(37)
	a.AuthCode, _ = m.GetString(38)
	a.Card, _ = m.GetString(2)
	if s, _ := m.GetString(4); s != "" {
		a.Amount, _ = strconv.ParseInt(s, 10, 64)
	}
	if f48, _ := m.GetString(48); f48 != "" {
		tags, err := spec.ParseTagList(f48)
		if err != nil {
			return a, err
		}
		a.Order, _ = spec.TagValue(tags, "ON")
		a.Status, _ = spec.TagValue(tags, "ST")
		a.StatusRC, _ = spec.TagValue(tags, "RC")
	}
	if f54, _ := m.GetString(54); f54 != "" {
		bs, err := spec.ParseBalances(f54)
		if err != nil {
			return a, fmt.Errorf("field 54: %w", err)
		}
		a.HasBalances = true
		for _, b := range bs {
			switch b.AccountType {
			case spec.AccountCashPurse:
				a.Cash = int64(b.Amount)
			case spec.AccountSubsidyPurse:
				a.Subsidy = int64(b.Amount)
			}
		}
	}
	if block, err := spec.GatewayMACBlock(raw); err == nil {
		want, err := mac.RetailMAC(c.k1, c.k2, block, mac.Pad1)
		a.MACOK = err == nil && hmac.Equal(want, raw[len(raw)-8:])
	}
	return a, nil
}

// HTTP is a client of the recharge HTTP front end as one institution.
type HTTP struct {
	Base        string // e.g. http://127.0.0.1:9584
	Institution string
	key         []byte
	Client      *http.Client
	// Now is the clock of X-Timestamp (tests skew it); BadSignature
	// corrupts the signature.
	Now          func() time.Time
	BadSignature bool
}

// NewHTTP returns an HTTP client with the institution's clear HTTP key.
func NewHTTP(base, inst, keyHex string) (*HTTP, error) {
	k, err := hex.DecodeString(keyHex)
	if err != nil || len(k) == 0 {
		return nil, errors.New("rechargesim: the HTTP key must be hex")
	}
	return &HTTP{Base: base, Institution: inst, key: k, Client: &http.Client{Timeout: 10 * time.Second}, Now: time.Now}, nil
}

type httpBody struct {
	Institution string `json:"institution"`
	Order       string `json:"order,omitempty"`
	Card        string `json:"card,omitempty"`
	AmountFen   *int64 `json:"amount_fen,omitempty"`
	Currency    string `json:"currency,omitempty"`
	Name        string `json:"name,omitempty"`
	Channel     string `json:"channel,omitempty"`
}

type httpAnswer struct {
	RC       string `json:"rc"`
	RRN      string `json:"rrn"`
	AuthCode string `json:"auth_code"`
	Balances *struct {
		Cash    int64 `json:"cash_fen"`
		Subsidy int64 `json:"subsidy_fen"`
	} `json:"balances"`
	Status    string `json:"status"`
	StatusRC  string `json:"status_rc"`
	Card      string `json:"card"`
	AmountFen *int64 `json:"amount_fen"`
	Order     string `json:"order"`
	Replayed  bool   `json:"replayed"`
}

// Verify, Credit, Query and Reverse call /recharge/v1/OPERATION.
func (c *HTTP) Verify(op Op) (Answer, error)  { return c.Post("verify", c.body(op)) }
func (c *HTTP) Credit(op Op) (Answer, error)  { return c.Post("credit", c.body(op)) }
func (c *HTTP) Query(op Op) (Answer, error)   { return c.Post("query", c.body(op)) }
func (c *HTTP) Reverse(op Op) (Answer, error) { return c.Post("reverse", c.body(op)) }

func (c *HTTP) body(op Op) []byte {
	b := httpBody{Institution: c.Institution, Order: op.Order, Card: op.Card, Name: op.Name}
	if op.Amount >= 0 && op.Card != "" && op.Name == "" {
		a := op.Amount
		b.AmountFen, b.Currency = &a, spec.GWCurrencyCNY
	}
	out, _ := json.Marshal(b)
	return out
}

// Post signs and posts body to /recharge/v1/op.
func (c *HTTP) Post(op string, body []byte) (Answer, error) {
	ts := strconv.FormatInt(c.Now().Unix(), 10)
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(ts))
	m.Write(body)
	sig := m.Sum(nil)
	if c.BadSignature {
		sig[0] ^= 1
	}
	req, err := http.NewRequest(http.MethodPost, c.Base+"/recharge/v1/"+op, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", hex.EncodeToString(sig))
	resp, err := c.Client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	var h httpAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return Answer{HTTPStatus: resp.StatusCode}, fmt.Errorf("answer (HTTP %d) does not decode: %w", resp.StatusCode, err)
	}
	a := Answer{RC: h.RC, RRN: h.RRN, AuthCode: h.AuthCode, Status: h.Status, StatusRC: h.StatusRC,
		Card: h.Card, Order: h.Order, HTTPStatus: resp.StatusCode, Replayed: h.Replayed}
	if h.AmountFen != nil {
		a.Amount = *h.AmountFen
	}
	if h.Balances != nil {
		a.Cash, a.Subsidy, a.HasBalances = h.Balances.Cash, h.Balances.Subsidy, true
	}
	return a, nil
}
