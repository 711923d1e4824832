package posclient

import (
	"bytes"
	"fmt"

	"github.com/cardswitch/cardswitch/spec"
)

// A terminal sends the same few requests over and over: a consume of
// one of its cards, with or without a PIN, differs from the one before
// only in its amount (field 4), trace number (11) and local time and
// date (12, 13). Packing each field by field again is most of what a
// request costs the terminal besides its MAC, so the terminal keeps the
// packed bytes of the last few shapes of request it sent (templates) and
// makes a request of a known shape by copying its template's bytes and
// writing those four fields' digits over the template's: the bytes
// spec.EncodePOSWithMAC packs, MACed the same way.
//
// A template is learnt from a request packed in full, and only when the
// four fields prove to be where it patches them: the request is packed a
// second time with every digit of the four fields changed, the two
// packings must differ in one run of exactly the four fields' bytes
// (and the MAC), and the first one patched with the second one's digits
// must be the second one. So the patch never depends on knowing the
// layout of the fields before the four; TestTemplateSameAsEncode holds
// the templates to a full packing over random requests.

// templateSlots is how many shapes of request a terminal keeps: posim's
// terminals present two cards each (and the bank cards with them), with
// and without a PIN.
const templateSlots = 8

// The sizes of the patched fields, packed BCD: 4 n12, 11 n6, 12 n6, 13 n4.
const (
	amountBytes = 6
	stampBytes  = 3 + 3 + 2 // 11, 12, 13
	macLen      = 8
)

// requestTemplate is one shape of request and its packed bytes.
type requestTemplate struct {
	msg    spec.POSMessage // the request it was learnt from
	packed []byte          // its packing, MAC and all
	at     int             // offset of field 4 (or of 11 without an amount)
}

// templates are a terminal's request templates, the one used last
// first: the one learnt last replaces the one unused longest.
type templates struct {
	slot [templateSlots]*requestTemplate
	hits uint64 // requests packed from a template
}

// toFront moves slot i to the front, the slots before it one down.
func (ts *templates) toFront(i int) {
	tpl := ts.slot[i]
	copy(ts.slot[1:i+1], ts.slot[:i])
	ts.slot[0] = tpl
}

// appendPacked packs and MACs req as spec.AppendPOSWithMAC does (req.MAC
// set to the MAC), appending it to dst: from a template when one fits,
// else in full (learning a template from it).
func (t *Terminal) appendPacked(dst []byte, req *spec.POSMessage) ([]byte, error) {
	if stampable(req) {
		for i, tpl := range t.tpl.slot {
			if tpl != nil && sameShape(&tpl.msg, req) {
				t.tpl.toFront(i)
				return t.fromTemplate(dst, tpl, req)
			}
		}
	}
	out, err := spec.AppendPOSWithMAC(dst, req, t.macFunc)
	if err != nil {
		return nil, err
	}
	if stampable(req) {
		t.learn(req, out[len(dst):])
	}
	return out, nil
}

func (t *Terminal) macFunc(block []byte) ([]byte, error) {
	m, err := t.Keys.MAC(block)
	return m[:], err
}

// fromTemplate appends req packed from tpl (sameShape and stampable) to
// dst.
func (t *Terminal) fromTemplate(dst []byte, tpl *requestTemplate, req *spec.POSMessage) ([]byte, error) {
	out := append(dst, tpl.packed...)
	msg := out[len(dst):]
	t.tpl.hits++
	req.MAC = nil
	patchStamp(msg[tpl.at:], req)
	sum, err := t.macFunc(msg[:len(msg)-macLen])
	if err != nil {
		return nil, fmt.Errorf("MAC for POS %s: %w", req.MTI, err) // as spec.EncodePOSWithMAC says it
	}
	copy(msg[len(msg)-macLen:], sum)
	req.MAC = sum[:macLen:macLen]
	return out, nil
}

// stampable reports whether fields 4, 11, 12 and 13 of m are what a
// template can patch: 11, 12 and 13 present with their fixed number of
// digits, field 4 (when present) an amount that fits n12, and a field
// 64 to MAC.
func stampable(m *spec.POSMessage) bool {
	return len(m.STAN) == 6 && len(m.LocalTime) == 6 && len(m.LocalDate) == 4 &&
		digits(m.STAN) && digits(m.LocalTime) && digits(m.LocalDate) &&
		(!m.HasAmount || m.Amount >= 0 && m.Amount <= spec.MaxAmount)
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// patchStamp writes the BCD of fields 4 (when present), 11, 12 and 13 of
// m at dst.
func patchStamp(dst []byte, m *spec.POSMessage) {
	if m.HasAmount {
		v := int64(m.Amount)
		for i := amountBytes - 1; i >= 0; i-- {
			lo := v % 10
			v /= 10
			dst[i] = byte(v%10<<4 | lo)
			v /= 10
		}
		dst = dst[amountBytes:]
	}
	for _, s := range [...]string{m.STAN, m.LocalTime, m.LocalDate} {
		for i := 0; i < len(s); i += 2 {
			dst[i/2] = (s[i]-'0')<<4 | (s[i+1] - '0')
		}
		dst = dst[len(s)/2:]
	}
}

// learn keeps req's packing as a template when the four fields prove to
// be where patchStamp writes them (see the comment at the top).
func (t *Terminal) learn(req *spec.POSMessage, packed []byte) {
	other := *req
	other.MAC = nil
	other.Amount = spec.Amount(shiftDigits(int64(req.Amount)))
	other.STAN, other.LocalTime, other.LocalDate = shift(req.STAN), shift(req.LocalTime), shift(req.LocalDate)
	packed2, err := spec.EncodePOSWithMAC(&other, t.macFunc)
	if err != nil || len(packed2) != len(packed) {
		return
	}
	n := stampBytes
	if req.HasAmount {
		n += amountBytes
	}
	body, body2 := packed[:len(packed)-macLen], packed2[:len(packed2)-macLen]
	at := 0
	for at < len(body) && body[at] == body2[at] {
		at++
	}
	if at+n > len(body) || !bytes.Equal(body[at+n:], body2[at+n:]) {
		return
	}
	for i := at; i < at+n; i++ {
		if body[i]>>4 == body2[i]>>4 || body[i]&0x0F == body2[i]&0x0F {
			return // a digit did not change: not a field's BCD
		}
	}
	check := append([]byte(nil), body...)
	patchStamp(check[at:], &other)
	if !bytes.Equal(check, body2) {
		return
	}
	tpl := &requestTemplate{msg: *req, packed: append([]byte(nil), packed...), at: at}
	tpl.msg.MAC, tpl.msg.Raw = nil, nil
	// The template's own copies: a caller that rewrites a buffer of its
	// request in place before the next one must not find the next one
	// the same shape as this (sameShape would compare the buffer with
	// itself and send these bytes).
	tpl.msg.PINBlock, tpl.msg.ICData, tpl.msg.Reserved62 = bytes.Clone(req.PINBlock), bytes.Clone(req.ICData), bytes.Clone(req.Reserved62)
	t.tpl.slot[templateSlots-1] = tpl
	t.tpl.toFront(templateSlots - 1)
}

// shift changes every digit of s (d -> d+5 mod 10).
func shift(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = '0' + (c-'0'+5)%10
	}
	return string(b)
}

// shiftDigits is shift on the 12 digits of an amount.
func shiftDigits(v int64) int64 {
	var out, mul int64 = 0, 1
	for i := 0; i < 12; i++ {
		out += (v%10 + 5) % 10 * mul
		v /= 10
		mul *= 10
	}
	return out
}

// sameShape reports whether a and b pack alike but for fields 4 (its
// value; its presence must agree), 11, 12, 13 and 64: every other field
// of the message equal. TestSameShapeSeesEveryField fails when a field
// is added to spec.POSMessage and not here.
//
// What tells a terminal's shapes apart (the card, whether a PIN was
// entered) is compared first.
func sameShape(a, b *spec.POSMessage) bool {
	return a.MTI == b.MTI && a.PAN == b.PAN && a.ProcessingCode == b.ProcessingCode &&
		a.HasAmount == b.HasAmount && a.EntryMode == b.EntryMode && a.PINCaptureCode == b.PINCaptureCode &&
		a.TerminalID == b.TerminalID && a.MerchantID == b.MerchantID &&
		a.Reserved60 == b.Reserved60 && a.Original == b.Original && a.ConditionCode == b.ConditionCode &&
		bytes.Equal(a.PINBlock, b.PINBlock) && (a.PINBlock == nil) == (b.PINBlock == nil) &&
		a.SecurityControl == b.SecurityControl && a.Currency == b.Currency &&
		a.Expiry == b.Expiry && a.SettlementDate == b.SettlementDate && a.CardSequence == b.CardSequence &&
		a.AcquirerID == b.AcquirerID && a.Track2 == b.Track2 && a.RRN == b.RRN && a.AuthCode == b.AuthCode &&
		a.ResponseCode == b.ResponseCode && a.AdditionalResponse == b.AdditionalResponse &&
		a.AdditionalData == b.AdditionalData && a.Balances == b.Balances &&
		bytes.Equal(a.ICData, b.ICData) && (a.ICData == nil) == (b.ICData == nil) &&
		a.PaymentCode == b.PaymentCode &&
		bytes.Equal(a.Reserved62, b.Reserved62) && (a.Reserved62 == nil) == (b.Reserved62 == nil) &&
		a.Reserved63 == b.Reserved63
}
