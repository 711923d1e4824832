package spec

import (
	"fmt"

	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"
)

// GatewayField is one field of a gateway message for
// AppendGatewayMessage: Value for the dialect's string fields, Bytes for
// its binary ones (52, 55, 64, 96, 128).
type GatewayField struct {
	ID    int
	Value string
	Bytes []byte
}

// AppendGatewayMessage appends to dst the gateway message of MTI mti and
// fields — ids ascending, each once, 2..128 — exactly as the library's
// Message.Pack packs the same fields (TestAppendGatewayMessage compares
// the two), with the same checks of each field's length and encoding, but
// without building a Message: no field objects, no map, no second walk.
// The links build every request they forward this way
// (docs/gateway-dialect.md). A field that does not fit the dialect is an
// error wrapping ErrFormat, naming it.
func AppendGatewayMessage(dst []byte, mti string, fields []GatewayField) ([]byte, error) {
	if len(mti) != 4 || !isDigits(mti) {
		return dst, fmt.Errorf("%w: MTI %q", ErrFormat, mti)
	}
	var bitmap [2 * gatewayBitmapBytes]byte
	size, last := gatewayBitmapBytes, 1
	for _, f := range fields {
		if f.ID <= last || f.ID > 128 {
			return dst, fmt.Errorf("%w: field %d out of order or out of range", ErrFormat, f.ID)
		}
		last = f.ID
		if f.ID > 64 {
			size = 2 * gatewayBitmapBytes
		}
		bitmap[(f.ID-1)/8] |= 0x80 >> ((f.ID - 1) % 8)
	}
	if size > gatewayBitmapBytes {
		bitmap[0] |= 0x80
	}
	dst = append(dst, mti...)
	dst = append(dst, bitmap[:size]...)
	for _, f := range fields {
		var err error
		if dst, err = appendGatewayField(dst, f); err != nil {
			return dst, fmt.Errorf("%w: field %d: %v", ErrFormat, f.ID, err)
		}
	}
	return dst, nil
}

// appendGatewayField packs one field as its spec's default packer does:
// the length prefix, then the encoded value. The prefixers and encoders
// of the dialect are done here; any other goes through the library.
func appendGatewayField(dst []byte, f GatewayField) ([]byte, error) {
	fd, ok := Gateway.Fields[f.ID]
	if !ok {
		return dst, fmt.Errorf("not part of the gateway dialect")
	}
	var v []byte
	var s string
	binary := false
	switch fd.(type) {
	case *field.Binary:
		v, binary = f.Bytes, true
	case *field.String:
		s = f.Value
	default:
		return dst, fmt.Errorf("field type %T", fd)
	}
	n := len(s)
	if binary {
		n = len(v)
	}
	spec := fd.Spec()
	switch spec.Pref {
	case prefix.ASCII.Fixed, prefix.Binary.Fixed:
		if n != spec.Length {
			return dst, fmt.Errorf("length %d, want %d", n, spec.Length)
		}
	case prefix.ASCII.LL, prefix.ASCII.LLL:
		digits := 2
		if spec.Pref == prefix.ASCII.LLL {
			digits = 3
		}
		if n > spec.Length {
			return dst, fmt.Errorf("length %d, at most %d", n, spec.Length)
		}
		if digits == 3 {
			dst = append(dst, byte('0'+n/100))
		}
		dst = append(dst, byte('0'+n/10%10), byte('0'+n%10))
	default:
		p, err := spec.Pref.EncodeLength(spec.Length, n)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p...)
	}
	switch {
	case spec.Enc == encoding.ASCII && binary:
		for _, c := range v {
			if c > 127 {
				return dst, fmt.Errorf("byte %#x is not ASCII", c)
			}
		}
		return append(dst, v...), nil
	case spec.Enc == encoding.ASCII:
		for i := 0; i < len(s); i++ {
			if s[i] > 127 {
				return dst, fmt.Errorf("byte %#x is not ASCII", s[i])
			}
		}
		return append(dst, s...), nil
	case spec.Enc == encoding.Binary && binary:
		return append(dst, v...), nil
	case spec.Enc == encoding.Binary:
		return append(dst, s...), nil
	}
	in := v
	if !binary {
		in = []byte(s)
	}
	e, err := spec.Enc.Encode(in)
	if err != nil {
		return dst, err
	}
	return append(dst, e...), nil
}
