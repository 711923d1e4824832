// Package linktest is a small gateway peer for tests of outbound links: it
// speaks the gateway dialect on a loopback port, signs on, issues zone
// keys, checks MACs and PINs with its own HSM, keeps card balances and
// reverses what 0420/0421 name — with faults to inject. It is not a
// simulator for people (that is cmd/gwsim).
package linktest

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/moov-io/iso8583"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/spec"
)

// Peer is a test gateway.
type Peer struct {
	Addr string
	HSM  *hsm.HSM
	link string
	ln   net.Listener

	mu       sync.Mutex
	balances map[string]int64  // card -> fen
	pvv      map[string]string // card -> PIN verification value
	debits   map[string]int64  // "stan/xmit/acq" of an approved debit -> amount
	reversed map[string]int    // original key -> times reversed
	MTIs     []string          // every request MTI received, in order
	conns    []net.Conn

	// Faults.
	Drop          atomic.Int32 // drop the next N financial answers (0200/0220)
	DropReversals atomic.Int32 // drop the next N reversal answers
	ReversalRC    atomic.Value // string: answer reversals with this code instead of 00
	DeclineRC     atomic.Value // string: decline financial requests with this code
	BadMAC        atomic.Bool  // corrupt the MAC of financial answers
	RefuseSignOn  atomic.Bool
	DropEchoes    atomic.Bool  // leave echo tests (0800 301) unanswered
	EchoDelay     atomic.Int64 // answer echo tests this many nanoseconds late (reading goes on meanwhile)
	PINChecked    atomic.Int32 // PINs verified OK
	MACFailures   atomic.Int32 // requests whose MAC did not verify
}

// Start starts a peer for link name with the given clear ZMK on a
// loopback port.
func Start(t testing.TB, link string, zmk []byte) *Peer {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	lmk, err := hsm.NewRandomLMK()
	if err != nil {
		t.Fatal(err)
	}
	h, err := hsm.Open(db, lmk, hsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.EnsureCampusPVK(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ImportZMK(link, zmk); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{Addr: ln.Addr().String(), HSM: h, link: link, ln: ln, balances: map[string]int64{},
		pvv: map[string]string{}, debits: map[string]int64{}, reversed: map[string]int{}}
	p.ReversalRC.Store("")
	p.DeclineRC.Store("")
	go p.accept()
	t.Cleanup(func() { p.Close(); db.Close() })
	return p
}

// AddCard gives the peer a card with a balance and PIN.
func (p *Peer) AddCard(t testing.TB, card string, fen int64, pin string) {
	v, err := p.HSM.PINVerificationValue(card, pin)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.balances[card], p.pvv[card] = fen, v
	p.mu.Unlock()
}

// Balance returns a card's balance.
func (p *Peer) Balance(card string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.balances[card]
}

// Reversals returns how many times each original was reversed.
func (p *Peer) Reversals() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.reversed {
		out[k] = v
	}
	return out
}

// Requests returns the request MTIs received.
func (p *Peer) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.MTIs...)
}

// Close stops listening and closes every connection.
func (p *Peer) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

// Disconnect closes current connections but keeps listening.
func (p *Peer) Disconnect() {
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

func (p *Peer) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		go p.serve(c)
	}
}

func (p *Peer) serve(c net.Conn) {
	defer c.Close()
	var wmu sync.Mutex
	for {
		body, err := spec.ReadFrame(c, nil, 8192)
		if err != nil {
			return
		}
		m, err := spec.DecodeGateway(body)
		if err != nil {
			return
		}
		resp := p.handle(m, body)
		if resp == nil {
			continue
		}
		frame, err := spec.AppendGatewayFrame(nil, resp)
		if err != nil {
			return
		}
		if d := time.Duration(p.EchoDelay.Load()); d > 0 && get(m, 70) == spec.GWNetworkEcho {
			go func() {
				time.Sleep(d)
				wmu.Lock()
				_, _ = c.Write(frame)
				wmu.Unlock()
			}()
			continue
		}
		wmu.Lock()
		_, err = c.Write(frame)
		wmu.Unlock()
		if err != nil {
			return
		}
	}
}

func get(m *iso8583.Message, id int) string { v, _ := m.GetString(id); return v }

func (p *Peer) handle(m *iso8583.Message, raw []byte) *iso8583.Message {
	mti := get(m, 0)
	p.mu.Lock()
	p.MTIs = append(p.MTIs, mti)
	p.mu.Unlock()
	resp := iso8583.NewMessage(spec.Gateway)
	rmti := mti[:2] + string(mti[2]+1) + mti[3:]
	if mti == spec.GWReversalRepeat {
		rmti = spec.GWReversalResponse
	}
	if mti == spec.GWReversalAdviceRepeat {
		rmti = spec.GWReversalAdviceAnswer
	}
	_ = resp.Field(0, rmti)
	for _, id := range []int{2, 3, 4, 7, 11, 32, 33, 37, 41, 42, 49, 70} {
		if v := get(m, id); v != "" {
			_ = resp.Field(id, v)
		}
	}
	if mti == spec.GWNetworkRequest {
		rc := spec.RCApproved
		switch get(m, 70) {
		case spec.GWNetworkSignOn:
			if p.RefuseSignOn.Load() {
				rc = "91"
			}
		case spec.GWNetworkEcho:
			if p.DropEchoes.Load() {
				return nil
			}
		case spec.GWNetworkKeyExchange:
			k, err := p.HSM.IssueZoneKeys(p.link)
			if err != nil {
				rc = spec.RCSystemMalfunction
				break
			}
			f48, _ := spec.FormatTagList([]spec.Tag{{Name: "PK", Value: k.ZPK}, {Name: "PC", Value: k.ZPKCheck},
				{Name: "AK", Value: k.ZAK}, {Name: "AC", Value: k.ZAKCheck}})
			_ = resp.Field(48, f48)
		}
		_ = resp.Field(39, rc)
		return resp
	}
	// Financial: MAC first.
	block, err := spec.GatewayMACBlock(raw)
	ok := false
	if err == nil {
		ok, _ = p.HSM.VerifyZoneMAC(p.link, block, raw[len(block):], true)
	}
	if !ok {
		p.MACFailures.Add(1)
		_ = resp.Field(39, spec.RCMACError)
		return resp
	}
	rc := p.financial(m, mti)
	if (mti == spec.GWFinancialRequest || mti == spec.GWAdviceRequest) && p.Drop.Load() > 0 {
		p.Drop.Add(-1)
		return nil
	}
	if (mti == spec.GWReversalAdvice || mti == spec.GWReversalAdviceRepeat) && p.DropReversals.Load() > 0 {
		p.DropReversals.Add(-1)
		return nil
	}
	_ = resp.Field(39, rc)
	if rc == spec.RCApproved && mti == spec.GWFinancialRequest {
		_ = resp.Field(38, "A"+get(m, 11)[1:])
	}
	if err := p.mac(resp); err != nil {
		return nil
	}
	return resp
}

func (p *Peer) mac(resp *iso8583.Message) error {
	field := 64
	for id := range resp.GetFields() {
		if id > 64 && id != 128 {
			field = 128
		}
	}
	_ = resp.BinaryField(field, make([]byte, 8))
	packed, err := resp.Pack()
	if err != nil {
		return err
	}
	block, _ := spec.GatewayMACBlock(packed)
	mac, err := p.HSM.GenerateZoneMAC(p.link, block)
	if err != nil {
		return err
	}
	if p.BadMAC.Load() {
		mac[0] ^= 0xff
	}
	return resp.BinaryField(field, mac)
}

// Key names an original by its link numbering: STAN/transmission/acquirer.
func Key(stan, xmit, acq string) string { return stan + "/" + xmit + "/" + acq }

func (p *Peer) financial(m *iso8583.Message, mti string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	card := get(m, 2)
	switch mti {
	case spec.GWReversalAdvice, spec.GWReversalAdviceRepeat:
		if rc := p.ReversalRC.Load().(string); rc != "" {
			return rc
		}
		o, err := spec.ParseOriginalData(get(m, 90))
		if err != nil {
			return spec.RCFormatError
		}
		k := Key(o.STAN, o.Transmission, trimZeros(o.Acquirer))
		amt, ok := p.debits[k]
		if !ok {
			if p.reversed[k] > 0 {
				return spec.RCApproved // a repeat of a reversal already done
			}
			return spec.RCOriginalNotFound
		}
		delete(p.debits, k)
		p.balances[card] += amt
		p.reversed[k]++
		return spec.RCApproved
	case spec.GWFinancialRequest:
		if rc := p.DeclineRC.Load().(string); rc != "" {
			return rc
		}
		bal, known := p.balances[card]
		if !known {
			return spec.RCInvalidCard
		}
		if pb, _ := m.GetBytes(52); pb != nil {
			ok, err := p.HSM.VerifyZonePIN(p.link, pb, card, p.pvv[card])
			if err != nil || !ok {
				return spec.RCIncorrectPIN
			}
			p.PINChecked.Add(1)
		}
		if get(m, 3) != spec.GWProcConsume {
			return spec.RCApproved
		}
		a, err := spec.ParseAmount(get(m, 4))
		if err != nil {
			return spec.RCFormatError
		}
		if int64(a) > bal {
			return spec.RCInsufficientFunds
		}
		p.balances[card] -= int64(a)
		p.debits[Key(get(m, 11), get(m, 7), get(m, 32))] = int64(a)
		return spec.RCApproved
	}
	return spec.RCFunctionNotSupported
}

func trimZeros(s string) string {
	b := bytes.TrimLeft([]byte(s), "0")
	if len(b) == 0 {
		return "0"
	}
	return string(b)
}

// quiet keeps Pebble's informational lines out of test output.
type quiet struct{}

func (quiet) Infof(string, ...any)           {}
func (quiet) Errorf(string, ...any)          {}
func (quiet) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
