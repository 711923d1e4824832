package spec

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"reflect"
	"testing"

	"github.com/moov-io/iso8583/encoding"
)

// decodePOSFieldByField is the field-by-field decoder DecodePOS replaced
// (one string per digit field): the reference its answers, errors
// included, must equal.
func decodePOSFieldByField(msg []byte) (*POSMessage, error) {
	if len(msg) < minPOSMessage {
		return nil, fmt.Errorf("%w: message of %d bytes, need at least %d", ErrFormat, len(msg), minPOSMessage)
	}
	// Raw is the message's own copy: binary fields are slices of it and
	// text fields substrings of one string of it, so a field costs no
	// allocation of its own (digit fields one, for their digits).
	m := &POSMessage{Raw: append([]byte(nil), msg...)}
	msg = m.Raw
	text := string(msg)
	var digits [posMaxDigits]byte
	var mti []byte
	var err error
	if c, ok := posFieldSpecs[0].Enc.(bcdCodec); ok {
		mti, _, err = c.decodeIntoRef(digits[:0], msg, 4)
	} else {
		mti, _, err = posFieldSpecs[0].Enc.Decode(msg, 4)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: MTI: %v", ErrFormat, err)
	}
	m.MTI = string(mti)
	bitmap := binary.BigEndian.Uint64(msg[2:10])
	if bitmap&(1<<63) != 0 {
		return nil, fmt.Errorf("%w: bitmap bit 1 (secondary bitmap) is not allowed", ErrFormat)
	}
	off := minPOSMessage
	for bm := bitmap; bm != 0; {
		lz := bits.LeadingZeros64(bm)
		bm &^= 1 << (63 - lz)
		id := lz + 1
		s := posFieldSpecs[id]
		if s == nil {
			return nil, fmt.Errorf("%w: field %d is not part of the POS dialect", ErrFormat, id)
		}
		n, read, err := s.Pref.DecodeLength(s.Length, msg[off:])
		if err != nil {
			return nil, fmt.Errorf("%w: field %d length: %v", ErrFormat, id, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: field %d is present but empty", ErrFormat, id)
		}
		at := off + read
		var (
			str  string
			v    []byte
			used int
		)
		switch enc := s.Enc.(type) {
		case bcdCodec:
			if n > len(digits) {
				return nil, fmt.Errorf("%w: field %d: %d digits", ErrFormat, id, n)
			}
			if v, used, err = enc.decodeIntoRef(digits[:0], msg[at:], n); err != nil {
				return nil, fmt.Errorf("%w: field %d: %v", ErrFormat, id, err)
			}
			str = string(v)
		default:
			if s.Enc != encoding.ASCII && s.Enc != encoding.Binary {
				return nil, fmt.Errorf("%w: field %d: no decoder", ErrFormat, id)
			}
			if n > len(msg)-at {
				return nil, fmt.Errorf("%w: field %d: %d bytes, have %d", ErrFormat, id, n, len(msg)-at)
			}
			used = n
			v = msg[at : at+n : at+n]
			if s.Enc == encoding.ASCII {
				str = text[at : at+n]
			}
		}
		if posTextFields[id] && !printable(v) {
			return nil, fmt.Errorf("%w: field %d has non-printable characters", ErrFormat, id)
		}
		if err := m.set(id, str, v); err != nil {
			return nil, fmt.Errorf("field %d: %w", id, err)
		}
		off = at + used
	}
	if off != len(msg) {
		return nil, fmt.Errorf("%w: %d bytes after the last field", ErrFormat, len(msg)-off)
	}
	return m, nil
}

// withoutWire returns a copy of m without what a decoded message or a
// response keeps beside its value (the wire and echo of posEncoder), to
// compare values; nil for nil.
func withoutWire(m *POSMessage) *POSMessage {
	if m == nil {
		return nil
	}
	c := *m
	c.wire, c.echo = nil, nil
	return &c
}

// FuzzDecodePOSSameAsFieldByField checks DecodePOS against the reference
// decoder: the same message or the same error for every input.
func FuzzDecodePOSSameAsFieldByField(f *testing.F) {
	for _, g := range goldenPOS {
		f.Add(goldenMsg(f, g.file))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, gerr := DecodePOS(msg)
		want, werr := decodePOSFieldByField(msg)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("error %v, reference %v", gerr, werr)
		}
		if !reflect.DeepEqual(withoutWire(got), want) {
			t.Fatalf("decoded %+v, reference %+v", got, want)
		}
	})
}

func TestDecodePOSSameAsFieldByField(t *testing.T) {
	for _, g := range goldenPOS {
		msg := goldenMsg(t, g.file)
		// The whole message and every cut of it, to reach the errors.
		for n := 0; n <= len(msg); n++ {
			got, gerr := DecodePOS(msg[:n])
			want, werr := decodePOSFieldByField(msg[:n])
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(withoutWire(got), want) {
				t.Fatalf("%s[:%d]: %+v, %v; reference %+v, %v", g.file, n, got, gerr, want, werr)
			}
		}
	}
}

// TestPOSMaxFields checks that the decoder's field table holds every
// field the dialect defines.
func TestPOSMaxFields(t *testing.T) {
	if len(posFieldOrder) > posMaxFields {
		t.Fatalf("the dialect has %d data fields, the decoder holds %d", len(posFieldOrder), posMaxFields)
	}
}

// TestDecodePOSLongDigits decodes a message whose digits outgrow the
// decoder's stack buffer (field 48 at its longest).
func TestDecodePOSLongDigits(t *testing.T) {
	long := make([]byte, 322)
	for i := range long {
		long[i] = '0' + byte(i%10)
	}
	m := &POSMessage{MTI: "0500", ProcessingCode: "000000", STAN: "000001", TerminalID: "12345678",
		MerchantID: "123456789012345", AdditionalData: string(long), Reserved60: Field60{Type: "00", Batch: "000001", NetworkCode: "201"}}
	msg, err := EncodePOS(m)
	if err != nil {
		t.Fatal(err)
	}
	got, gerr := DecodePOS(msg)
	want, werr := decodePOSFieldByField(msg)
	if gerr != nil || werr != nil || !reflect.DeepEqual(withoutWire(got), want) || got.AdditionalData != string(long) {
		t.Fatalf("decoded %+v, %v; reference %+v, %v", got, gerr, want, werr)
	}
}

// TestPOSLayouts checks that every field of the dialect is cut and
// packed without the spec's interfaces: a fixed or BCD length prefix
// and a codec posLayout knows.
func TestPOSLayouts(t *testing.T) {
	for id, l := range posLayouts {
		if l.spec == nil || id == 1 { // the bitmap is read by DecodePOS itself
			continue
		}
		if (l.varDigits == 0) == !l.fixed || l.codec == layoutOther {
			t.Errorf("field %d: layout %+v", id, l)
		}
		// appendField writes LL and LLL prefixes itself, for lengths
		// up to the field's bound.
		if l.varDigits != 0 && (l.varDigits != 2 && l.varDigits != 3 || l.length >= pow10[l.varDigits]) {
			t.Errorf("field %d: %d-digit prefix, bound %d", id, l.varDigits, l.length)
		}
	}
}
