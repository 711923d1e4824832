package posclient

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/hsm/terminal"
	"github.com/cardswitch/cardswitch/spec"
)

// Terminal is a simulated UnionPay-style POS terminal: it signs on,
// decrypts its working keys under its own TMK, numbers its messages, MACs
// every financial request, builds PIN blocks under its PIK and checks the
// MAC of every response. Requests are built exactly as docs/pos-dialect.md#transaction-identification lists
// them. It is not safe for concurrent use, like a real terminal.
type Terminal struct {
	ID       string
	Merchant string
	// TMK is the terminal master key in clear: a terminal holds its own.
	TMK []byte
	// Mode is the sign-on mode (60.3): "003" unless set.
	Mode string
	// Operator is field 63 of sign-on and cash-load requests.
	Operator string

	Client *Client
	Keys   *terminal.WorkingKeys
	// Batch is the batch the last sign-on opened (60.2).
	Batch string
	stan  uint32
	now   func() time.Time

	// The local time and date (fields 12 and 13) of the second
	// stampSec (Unix) in stampLoc, formatted once for every request of
	// that second.
	stampSec             int64
	stampLoc             *time.Location
	stampTime, stampDate string

	tpl templates // the packed requests Send patches (template.go)
}

// Errors of a terminal exchange.
var (
	ErrResponseMAC = errors.New("posclient: response MAC does not verify")
	ErrNotSignedOn = errors.New("posclient: terminal has not signed on")
)

// NewTerminal wraps a connection as a terminal.
func NewTerminal(c *Client, id, merchant string, tmk []byte) *Terminal {
	return &Terminal{ID: id, Merchant: merchant, TMK: tmk, Mode: spec.SignOnDoubleDES, Operator: "01", Client: c, now: time.Now}
}

// SetClock sets the clock the terminal stamps its requests with (fields
// 12 and 13); NewTerminal's is time.Now. Tests fix it to make requests
// byte for byte reproducible.
func (t *Terminal) SetClock(now func() time.Time) { t.now, t.stampTime = now, "" }

// NextSTAN returns the next trace number, 000001..999999 then wrapping.
func (t *Terminal) NextSTAN() string {
	t.stan = t.stan%999999 + 1
	var b [6]byte
	for i, n := len(b)-1, t.stan; i >= 0; i, n = i-1, n/10 {
		b[i] = byte('0' + n%10)
	}
	return string(b[:])
}

// localStamp is fields 12 (hhmmss) and 13 (MMDD) of a request made
// now, in the clock's zone. The strings of a second are kept for the
// requests of the same second: a terminal makes thousands a second.
func (t *Terminal) localStamp() (hhmmss, mmdd string) {
	now := t.now()
	if sec, loc := now.Unix(), now.Location(); sec != t.stampSec || loc != t.stampLoc || t.stampTime == "" {
		t.stampSec, t.stampLoc = sec, loc
		t.stampTime, t.stampDate = now.Format("150405"), now.Format("0102")
	}
	return t.stampTime, t.stampDate
}

// SetSTAN sets the last trace number used (a terminal keeps it across
// restarts).
func (t *Terminal) SetSTAN(n uint32) { t.stan = n % 1000000 }

// lastStamps is the last sign-on stamp each terminal id used in this
// process: a simulated terminal created again (a test, a posim run) must
// still sign on with a later stamp than before, as a real terminal that
// keeps its trace number does.
var lastStamps sync.Map // terminal id -> string

// SignOnRequest builds the 0800 with its proof in field 62
// (docs/pos-dialect.md#sign-on-proof): fields 13, 12 and 11 encrypted
// under the TMK. Its stamp is later than any this process used for the
// terminal before (the trace number moves on when the second has not).
func (t *Terminal) SignOnRequest() (*spec.POSMessage, error) {
	now := t.now()
	req := &spec.POSMessage{
		MTI:        spec.MTINetworkSignOn,
		STAN:       t.NextSTAN(),
		LocalTime:  now.Format("150405"),
		LocalDate:  now.Format("0102"),
		TerminalID: t.ID,
		MerchantID: t.Merchant,
		Reserved60: spec.Field60{Type: spec.NetworkManagementType, Batch: "000000", NetworkCode: t.Mode},
		Reserved63: t.Operator,
	}
	stamp, _ := req.SignOnStamp()
	if last, ok := lastStamps.Load(t.ID); ok {
		for i := 0; i < 999999 && stamp <= last.(string); i++ {
			req.STAN = t.NextSTAN()
			stamp, _ = req.SignOnStamp()
		}
	}
	lastStamps.Store(t.ID, stamp)
	c, err := terminal.TMKCipher(t.TMK, t.Mode)
	if err != nil {
		return nil, fmt.Errorf("sign-on proof: TMK: %w", err)
	}
	if req.Reserved62, err = terminal.SignOnProof(c, stamp); err != nil {
		return nil, fmt.Errorf("sign-on proof: %w", err)
	}
	return req, nil
}

// SignOn sends 0800 and installs the working keys of the 0810.
func (t *Terminal) SignOn() (*spec.POSMessage, error) {
	req, err := t.SignOnRequest()
	if err != nil {
		return nil, err
	}
	resp, err := t.Client.Exchange(req, nil)
	if err != nil {
		return nil, err
	}
	if resp.ResponseCode != spec.RCApproved {
		return resp, nil
	}
	keys, err := terminal.ParseField62(t.TMK, t.Mode, resp.Reserved62)
	if err != nil {
		return resp, fmt.Errorf("sign-on working keys: %w", err)
	}
	t.Keys, t.Batch = keys, resp.Reserved60.Batch
	return resp, nil
}

// Do sends a financial request: it fills terminal, merchant and batch,
// MACs it, and verifies the response MAC when the response carries one.
func (t *Terminal) Do(req *spec.POSMessage) (*spec.POSMessage, error) {
	if err := t.Send(req); err != nil {
		return nil, err
	}
	return t.Receive()
}

// Send fills and MACs a request and writes it without waiting. A request
// of the shape of one sent before is packed from that one's bytes
// (template.go): the same bytes.
func (t *Terminal) Send(req *spec.POSMessage) error {
	if t.Keys == nil {
		return ErrNotSignedOn
	}
	req.TerminalID, req.MerchantID = t.ID, t.Merchant
	if req.Reserved60.Batch == "" {
		req.Reserved60.Batch = t.Batch
	}
	frame, err := t.appendPacked(t.Client.frameHead(), req)
	if err != nil {
		return fmt.Errorf("pack %s: %w", req.MTI, err)
	}
	return t.Client.sendFrame(req.MTI, frame)
}

// Receive reads a response and verifies its MAC when it has one.
func (t *Terminal) Receive() (*spec.POSMessage, error) {
	resp, err := t.Client.Receive()
	if err != nil {
		return nil, err
	}
	if resp.MAC != nil && t.Keys != nil {
		block, err := spec.MACBlock(resp.Raw)
		if err != nil {
			return resp, err
		}
		ok, err := t.Keys.VerifyMAC(block, resp.MAC)
		if err != nil || !ok {
			return resp, ErrResponseMAC
		}
	}
	return resp, nil
}

// withPIN adds an encrypted PIN block (format 0, bound to the PAN) and
// field 53; an empty pin leaves the request without one.
func (t *Terminal) withPIN(m *spec.POSMessage, pin string) error {
	if pin == "" {
		m.PINCaptureCode = ""
		return nil
	}
	if t.Keys == nil {
		return ErrNotSignedOn
	}
	block, sc, err := t.Keys.PINBlock(pinblock.Format0, pin, m.PAN)
	if err != nil {
		return err
	}
	if t.Keys.SM4() {
		// 16 bytes: field 62 tag P4, field 52 absent
		// (docs/pos-dialect.md#pin-blocks).
		if m.Reserved62, err = spec.Field62SM4PINBlock(block); err != nil {
			return err
		}
	} else {
		m.PINBlock = block
	}
	m.SecurityControl, m.PINCaptureCode = sc, "12"
	m.EntryMode = "021"
	return nil
}

func (t *Terminal) base(mti, proc, cond, type60 string) *spec.POSMessage {
	m := new(spec.POSMessage)
	t.baseInto(m, mti, proc, cond, type60)
	return m
}

// baseInto makes m what base returns, every other field cleared.
func (t *Terminal) baseInto(m *spec.POSMessage, mti, proc, cond, type60 string) {
	stan := t.NextSTAN()
	hhmmss, mmdd := t.localStamp()
	*m = spec.POSMessage{
		MTI:            mti,
		ProcessingCode: proc,
		STAN:           stan,
		LocalTime:      hhmmss,
		LocalDate:      mmdd,
		EntryMode:      "022",
		ConditionCode:  cond,
		Currency:       spec.CurrencyCNY,
		Reserved60:     spec.Field60{Type: type60, Batch: t.Batch, NetworkCode: "000"},
	}
}

// Balance builds a balance inquiry (0200, 31, 00, 01).
func (t *Terminal) Balance(pan, pin string) (*spec.POSMessage, error) {
	m := t.base(spec.MTIFinancialRequest, "310000", "00", "01")
	m.PAN = pan
	return m, t.withPIN(m, pin)
}

// Consume builds a consume (0200, 00, 00, 22).
func (t *Terminal) Consume(pan string, amount spec.Amount, pin string) (*spec.POSMessage, error) {
	m := new(spec.POSMessage)
	return m, t.ConsumeInto(m, pan, amount, pin)
}

// ConsumeInto is Consume building the request in m, every other field of
// m cleared: for a terminal that keeps its request in a message it holds
// (posim's, one exchange at a time) rather than in a new one on the heap.
func (t *Terminal) ConsumeInto(m *spec.POSMessage, pan string, amount spec.Amount, pin string) error {
	t.baseInto(m, spec.MTIFinancialRequest, "000000", "00", "22")
	m.PAN, m.Amount, m.HasAmount = pan, amount, true
	return t.withPIN(m, pin)
}

// original fills 37 and 61 from the original request and its response.
func original(m, origReq, origResp *spec.POSMessage, withDate bool) {
	m.RRN = origResp.RRN
	m.Original = spec.Field61{Batch: origReq.Reserved60.Batch, STAN: origReq.STAN}
	if withDate {
		m.Original.Date = origReq.LocalDate
	}
}

// Void builds a consume void (0200, 20, 00, 23) of an approved consume.
func (t *Terminal) Void(origReq, origResp *spec.POSMessage, pin string) (*spec.POSMessage, error) {
	m := t.base(spec.MTIFinancialRequest, "200000", "00", "23")
	m.PAN, m.Amount, m.HasAmount = origReq.PAN, origReq.Amount, true
	original(m, origReq, origResp, false)
	return m, t.withPIN(m, pin)
}

// Refund builds a refund (0220, 20, 00, 25) of part of a consume.
func (t *Terminal) Refund(origReq, origResp *spec.POSMessage, amount spec.Amount) *spec.POSMessage {
	m := t.base(spec.MTIFinancialAdvice, "200000", "00", "25")
	m.PAN, m.Amount, m.HasAmount = origReq.PAN, amount, true
	original(m, origReq, origResp, true)
	return m
}

// PreAuth builds a pre-authorization (0100, 03, 06, 10).
func (t *Terminal) PreAuth(pan string, amount spec.Amount, pin string) (*spec.POSMessage, error) {
	m := t.base(spec.MTIAuthorization, "030000", "06", "10")
	m.PAN, m.Amount, m.HasAmount = pan, amount, true
	return m, t.withPIN(m, pin)
}

// Completion builds a pre-auth completion (0200, 00, 06, 20).
func (t *Terminal) Completion(authReq, authResp *spec.POSMessage, amount spec.Amount, pin string) (*spec.POSMessage, error) {
	m := t.base(spec.MTIFinancialRequest, "000000", "06", "20")
	m.PAN, m.Amount, m.HasAmount = authReq.PAN, amount, true
	m.AuthCode = authResp.AuthCode
	original(m, authReq, authResp, true)
	return m, t.withPIN(m, pin)
}

// PreAuthCancel builds a pre-auth cancel (0100, 20, 06, 11).
func (t *Terminal) PreAuthCancel(authReq, authResp *spec.POSMessage, pin string) (*spec.POSMessage, error) {
	m := t.base(spec.MTIAuthorization, "200000", "06", "11")
	m.PAN, m.Amount, m.HasAmount = authReq.PAN, authReq.Amount, true
	m.AuthCode = authResp.AuthCode
	original(m, authReq, authResp, true)
	return m, t.withPIN(m, pin)
}

// CompletionVoid builds a completion void (0200, 20, 06, 21).
func (t *Terminal) CompletionVoid(compReq, compResp *spec.POSMessage, pin string) (*spec.POSMessage, error) {
	m := t.base(spec.MTIFinancialRequest, "200000", "06", "21")
	m.PAN, m.Amount, m.HasAmount = compReq.PAN, compReq.Amount, true
	m.AuthCode = compResp.AuthCode
	original(m, compReq, compResp, false)
	return m, t.withPIN(m, pin)
}

// CashLoad builds a cash load at a kiosk (0200, 63, 91, 46).
func (t *Terminal) CashLoad(pan string, amount spec.Amount) *spec.POSMessage {
	m := t.base(spec.MTIFinancialRequest, "630000", "91", "46")
	m.PAN, m.Amount, m.HasAmount = pan, amount, true
	m.Reserved63 = t.Operator
	return m
}

// PendingClaim builds a pending-load claim at a load terminal (0200, 21,
// 00, 49; no amount): the answer's field 4 is the amount moved to the
// purse (docs/recharge.md#pending-loads).
func (t *Terminal) PendingClaim(pan string) *spec.POSMessage {
	m := t.base(spec.MTIFinancialRequest, "210000", "00", "49")
	m.PAN = pan
	return m
}

// TransferLoad builds a bank-transfer load at a kiosk (0200, 40, 00, 48):
// the card is loaded from its bound bank account; its PIN is required
// (docs/recharge.md, "Bank-transfer loads").
func (t *Terminal) TransferLoad(pan string, amount spec.Amount, pin string) (*spec.POSMessage, error) {
	m := t.base(spec.MTIFinancialRequest, "400000", "00", "48")
	m.PAN, m.Amount, m.HasAmount = pan, amount, true
	return m, t.withPIN(m, pin)
}

// CashLoadVoid builds a cash load void (0200, 17, 00, 51).
func (t *Terminal) CashLoadVoid(origReq, origResp *spec.POSMessage) *spec.POSMessage {
	m := t.base(spec.MTIFinancialRequest, "170000", "00", "51")
	m.PAN, m.Amount, m.HasAmount = origReq.PAN, origReq.Amount, true
	original(m, origReq, origResp, false)
	return m
}

// Reversal builds the 0400 of a request that got no answer: the
// original's 2, 3, 4, 11, 25 and 60, and the reason in 39 (98 timeout).
func (t *Terminal) Reversal(orig *spec.POSMessage, reason string) *spec.POSMessage {
	return &spec.POSMessage{
		MTI:            spec.MTIReversal,
		PAN:            orig.PAN,
		ProcessingCode: orig.ProcessingCode,
		Amount:         orig.Amount,
		HasAmount:      orig.HasAmount,
		STAN:           orig.STAN,
		EntryMode:      orig.EntryMode,
		ConditionCode:  orig.ConditionCode,
		ResponseCode:   reason,
		Currency:       orig.Currency,
		AuthCode:       orig.AuthCode,
		Reserved60:     orig.Reserved60,
		Original:       orig.Original,
	}
}

// Settlement builds a batch settlement (0500, 60.3 = 201) with the
// terminal's domestic totals.
func (t *Terminal) Settlement(totals spec.SettlementTotals) (*spec.POSMessage, error) {
	totals.Flag = spec.SettlementRequested
	f48, err := spec.FormatSettlement(spec.Settlement{Domestic: totals,
		Foreign: spec.SettlementTotals{Flag: spec.SettlementRequested}})
	if err != nil {
		return nil, err
	}
	now := t.now()
	return &spec.POSMessage{
		MTI:            spec.MTIBatchSettlement,
		STAN:           t.NextSTAN(),
		LocalTime:      now.Format("150405"),
		LocalDate:      now.Format("0102"),
		AdditionalData: f48,
		Currency:       spec.CurrencyCNY,
		Reserved60:     spec.Field60{Type: spec.NetworkManagementType, Batch: t.Batch, NetworkCode: spec.NetworkSettlement},
		Reserved63:     t.Operator,
	}, nil
}

// BatchUpload builds one batch upload advice (0320, 60.3 = 201, or 202
// for the last), carrying a transaction's details in field 48 as digits.
func (t *Terminal) BatchUpload(details string, last bool) *spec.POSMessage {
	code := spec.NetworkSettlement
	if last {
		code = spec.NetworkBatchUploadEnd
	}
	return &spec.POSMessage{
		MTI:            spec.MTIBatchUploadAdvice,
		STAN:           t.NextSTAN(),
		AdditionalData: details,
		Reserved60:     spec.Field60{Type: spec.NetworkManagementType, Batch: t.Batch, NetworkCode: code},
	}
}

// SignOff sends 0820 with 60.3 = 002, MACed under the MAK when the
// terminal has signed on (docs/pos-dialect.md#rules).
func (t *Terminal) SignOff() (*spec.POSMessage, error) {
	req := &spec.POSMessage{
		MTI:        spec.MTINetworkManagement,
		STAN:       t.NextSTAN(),
		TerminalID: t.ID,
		MerchantID: t.Merchant,
		Reserved60: spec.Field60{Type: spec.NetworkManagementType, Batch: t.Batch, NetworkCode: spec.NetworkSignOff},
	}
	var mac spec.MACFunc
	if t.Keys != nil {
		mac = func(block []byte) ([]byte, error) {
			m, err := t.Keys.MAC(block)
			return m[:], err
		}
	}
	return t.Client.Exchange(req, mac)
}
