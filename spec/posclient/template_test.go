package posclient

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/terminal"
	"github.com/cardswitch/cardswitch/spec"
)

// signedOnTerminal is a terminal with mode 003 working keys installed
// (field 62 built here under a test TMK), no connection.
func signedOnTerminal(t *testing.T) *Terminal {
	t.Helper()
	tmk := bytes.Repeat([]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}, 2)
	tb, err := blockcipher.New(blockcipher.TDES, tmk)
	if err != nil {
		t.Fatal(err)
	}
	pik, mak := bytes.Repeat([]byte{0x13, 0x57}, 8), bytes.Repeat([]byte{0x24}, 8)
	enc, _ := blockcipher.EncryptECB(tb, pik)
	cv, _ := blockcipher.CheckBlock(blockcipher.TDES, pik)
	f62 := append(append([]byte(nil), enc...), cv[:4]...)
	enc, _ = blockcipher.EncryptECB(tb, mak)
	cv, _ = blockcipher.CheckBlock(blockcipher.DES, mak)
	f62 = append(append(append(f62, enc...), make([]byte, 8)...), cv[:4]...)
	keys, err := terminal.ParseField62(tmk, spec.SignOnDoubleDES, f62)
	if err != nil {
		t.Fatal(err)
	}
	term := NewTerminal(nil, "10000001", "898310000000001", tmk)
	term.Keys, term.Batch = keys, "000001"
	return term
}

// TestTemplateSameAsEncode holds the requests packed from templates to
// spec.EncodePOSWithMAC over random requests of every builder: random
// cards, PINs, amounts (0 and the largest included), trace numbers,
// clocks and batches, so that shapes repeat, change and crowd each other
// out of the templates.
func TestTemplateSameAsEncode(t *testing.T) {
	term := signedOnTerminal(t)
	rng := rand.New(rand.NewPCG(5, 6))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	term.SetClock(func() time.Time { return now })
	pans := []string{"6230151000000000020", "6230151000000000038", "6222020000000018", "62301510000000012"}
	amounts := []spec.Amount{0, 1, 99, 1500, 123456789012, spec.MaxAmount}
	orig := &spec.POSMessage{PAN: pans[0], Amount: 1500, STAN: "000042", LocalDate: "0314",
		Reserved60: spec.Field60{Batch: "000001"}}
	origResp := &spec.POSMessage{RRN: "000000000042", AuthCode: "123456"}
	for i := 0; i < 20000; i++ {
		now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		if rng.IntN(50) == 0 {
			term.SetSTAN(uint32(rng.IntN(1000000)))
		}
		if rng.IntN(500) == 0 {
			term.Batch = []string{"000001", "000002"}[rng.IntN(2)]
		}
		pan, amt := pans[rng.IntN(len(pans))], amounts[rng.IntN(len(amounts))]
		if rng.IntN(2) == 0 {
			amt = spec.Amount(rng.Int64N(int64(spec.MaxAmount) + 1))
		}
		pin := ""
		if rng.IntN(3) == 0 {
			pin = "654321"
		}
		var (
			req *spec.POSMessage
			err error
		)
		switch rng.IntN(8) {
		case 0, 1, 2:
			req, err = term.Consume(pan, amt, pin)
		case 3:
			req, err = term.Balance(pan, pin)
		case 4:
			req, err = term.PreAuth(pan, amt, pin)
		case 5:
			req = term.CashLoad(pan, amt)
		case 6:
			req = term.Refund(orig, origResp, amt)
		default:
			req, err = term.Void(orig, origResp, pin)
			if rng.IntN(4) == 0 {
				req = term.Reversal(req, spec.ReversalTimeout)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		req.TerminalID, req.MerchantID = term.ID, term.Merchant
		if req.Reserved60.Batch == "" {
			req.Reserved60.Batch = term.Batch
		}
		ref := *req
		want, err := spec.EncodePOSWithMAC(&ref, term.macFunc)
		if err != nil {
			t.Fatal(err)
		}
		prefix := bytes.Repeat([]byte{0xA5}, rng.IntN(20)) // a frame's head, or none
		got, err := term.appendPacked(prefix, req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:len(prefix)], bytes.Repeat([]byte{0xA5}, len(prefix))) {
			t.Fatalf("request %d: the bytes before the message changed", i)
		}
		if got = got[len(prefix):]; !bytes.Equal(got, want) || !bytes.Equal(req.MAC, ref.MAC) {
			t.Fatalf("request %d (%s %s):\n got %X\nwant %X", i, req.MTI, req.ProcessingCode, got, want)
		}
	}
	if term.tpl.hits < 1000 {
		t.Fatalf("%d of 20000 requests packed from a template", term.tpl.hits)
	}
}

// TestTemplatesHoldPosimShapes: a terminal presenting two cards, with and
// without a PIN, packs all its consumes from templates but the first of
// each shape.
func TestTemplatesHoldPosimShapes(t *testing.T) {
	term := signedOnTerminal(t)
	for i := 0; i < 1000; i++ {
		pin := ""
		if i%10 == 3 || i%10 == 4 {
			pin = "123456"
		}
		req, err := term.Consume([]string{"6230151000000000020", "6230151000000000038"}[i%2], spec.Amount(100+i), pin)
		if err != nil {
			t.Fatal(err)
		}
		req.TerminalID, req.MerchantID, req.Reserved60.Batch = term.ID, term.Merchant, term.Batch
		if _, err := term.appendPacked(nil, req); err != nil {
			t.Fatal(err)
		}
	}
	if term.tpl.hits != 1000-4 {
		t.Fatalf("%d of 1000 consumes packed from a template, want 996", term.tpl.hits)
	}
}

// TestSameShapeSeesEveryField: changing any field of a request but 4's
// value, 11, 12, 13, 64 and Raw makes it another shape; those do not.
// An exported field added to spec.POSMessage and not compared fails
// here (the unexported ones are not part of the message's value).
func TestSameShapeSeesEveryField(t *testing.T) {
	var base spec.POSMessage
	fill(reflect.ValueOf(&base).Elem())
	patched := map[string]bool{"Amount": true, "STAN": true, "LocalTime": true, "LocalDate": true, "MAC": true, "Raw": true}
	typ := reflect.TypeOf(base)
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if !f.IsExported() {
			continue // not part of the message's value (spec.POSMessage)
		}
		changes := []func(reflect.Value){func(v reflect.Value) { change(v) }}
		if f.Type.Kind() == reflect.Slice {
			changes = append(changes, func(v reflect.Value) { v.Set(reflect.Zero(v.Type())) }, // nil
				func(v reflect.Value) { v.SetBytes([]byte{}) }) // empty, not nil
		}
		if f.Type.Kind() == reflect.Struct {
			changes = changes[:0]
			for j := 0; j < f.Type.NumField(); j++ {
				changes = append(changes, func(v reflect.Value) { change(v.Field(j)) })
			}
		}
		for k, ch := range changes {
			m := base
			ch(reflect.ValueOf(&m).Elem().Field(i))
			if same := sameShape(&base, &m); same != patched[f.Name] {
				t.Errorf("field %s (change %d): sameShape %v", f.Name, k, same)
			}
		}
	}
}

func fill(v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.Struct:
			fill(f)
		case reflect.String:
			f.SetString("12")
		case reflect.Slice:
			f.SetBytes([]byte{1, 2})
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int64:
			f.SetInt(12)
		default:
			panic("fill: field kind " + f.Kind().String())
		}
	}
}

func change(f reflect.Value) {
	switch f.Kind() {
	case reflect.String:
		f.SetString(f.String() + "3")
	case reflect.Slice:
		f.SetBytes(append(bytes.Clone(f.Bytes()), 3))
	case reflect.Bool:
		f.SetBool(!f.Bool())
	case reflect.Int64:
		f.SetInt(f.Int() + 1)
	default:
		panic("change: field kind " + f.Kind().String())
	}
}

// TestTemplatesMostRecentFirst: the templates are kept most recently used
// first; a new shape replaces the one unused longest.
func TestTemplatesMostRecentFirst(t *testing.T) {
	term := signedOnTerminal(t)
	send := func(amountless bool, i int) {
		t.Helper()
		pan := fmt.Sprintf("62301510000000%05d", i)
		var req *spec.POSMessage
		if amountless {
			req, _ = term.Balance(pan, "")
		} else {
			req, _ = term.Consume(pan, 100, "")
		}
		req.TerminalID, req.MerchantID, req.Reserved60.Batch = term.ID, term.Merchant, term.Batch
		if _, err := term.appendPacked(nil, req); err != nil {
			t.Fatal(err)
		}
	}
	order := func() (pans []string) {
		for _, tpl := range term.tpl.slot {
			if tpl != nil {
				pans = append(pans, tpl.msg.PAN[14:])
			}
		}
		return pans
	}
	for i := 0; i < templateSlots+2; i++ {
		send(false, i)
	}
	if got, want := fmt.Sprint(order()), "[00009 00008 00007 00006 00005 00004 00003 00002]"; got != want {
		t.Fatalf("templates %s, want %s", got, want)
	}
	send(false, 4)
	if got, want := fmt.Sprint(order()), "[00004 00009 00008 00007 00006 00005 00003 00002]"; got != want || term.tpl.hits != 1 {
		t.Fatalf("after a hit: templates %s (%d hits), want %s", got, term.tpl.hits, want)
	}
	send(true, 4) // another shape: the same card, no amount
	if got, want := fmt.Sprint(order()), "[00004 00004 00009 00008 00007 00006 00005 00003]"; got != want {
		t.Fatalf("after a new shape: templates %s, want %s", got, want)
	}
}

// TestConsumeIntoSameAsConsume: a consume built into a message that held
// another request is the consume Consume builds.
func TestConsumeIntoSameAsConsume(t *testing.T) {
	term := signedOnTerminal(t)
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	term.SetClock(func() time.Time { return now })
	var m spec.POSMessage
	fill(reflect.ValueOf(&m).Elem()) // every field set
	for i, pin := range []string{"", "654321", ""} {
		term.SetSTAN(uint32(41 + i))
		want, err := term.Consume("6230151000000000020", spec.Amount(1500+i), pin)
		if err != nil {
			t.Fatal(err)
		}
		term.SetSTAN(uint32(41 + i))
		if err := term.ConsumeInto(&m, "6230151000000000020", spec.Amount(1500+i), pin); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&m, want) {
			t.Fatalf("consume %d: %+v, want %+v", i, m, *want)
		}
	}
}

// TestTemplateKeepsItsOwnBytes: a request whose IC data, PIN block or
// field 62 buffer the caller rewrites in place after it was sent is
// packed with the new bytes, not from the template the first one left.
func TestTemplateKeepsItsOwnBytes(t *testing.T) {
	for _, field := range []string{"ICData", "PINBlock", "Reserved62"} {
		t.Run(field, func(t *testing.T) {
			term := signedOnTerminal(t)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			term.SetClock(func() time.Time { return now })
			buf := []byte{0x9F, 0x26, 0x01, 0x11, 0x00, 0x00, 0x00, 0x00}
			for i, b := range []byte{0x11, 0x22, 0x33} {
				now = now.Add(time.Second)
				buf[3] = b
				req, err := term.Consume("6230151000000000020", 100, "")
				if err != nil {
					t.Fatal(err)
				}
				req.TerminalID, req.MerchantID, req.Reserved60.Batch = term.ID, term.Merchant, term.Batch
				reflect.ValueOf(req).Elem().FieldByName(field).SetBytes(buf) // the caller's one buffer
				ref := *req
				ref.ICData, ref.PINBlock, ref.Reserved62 = bytes.Clone(req.ICData), bytes.Clone(req.PINBlock), bytes.Clone(req.Reserved62)
				want, err := spec.EncodePOSWithMAC(&ref, term.macFunc)
				if err != nil {
					t.Fatal(err)
				}
				got, err := term.appendPacked(nil, req)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("request %d with %s byte %02X:\n got %X\nwant %X", i, field, b, got, want)
				}
			}
		})
	}
}
