package spec

import (
	"fmt"
	"unicode/utf8"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"
)

// Gateway is the ISO 8583:1987 dialect of bank and third-party gateway links
// (docs/gateway-dialect.md): ASCII MTI and fields, ASCII LL/LLL length prefixes, a binary
// primary bitmap with an optional binary secondary bitmap, and binary
// fields 52, 64, 96 and 128. Frames carry a 2-byte big-endian binary length
// and no TPDU (ReadFrame, AppendFrame). Formats are those of the 1987
// standard's data element table; digit strings are String fields so that
// leading zeros survive.
var Gateway = newGatewaySpec()

// gatewayNumeric lists the n fields, which DecodeGateway checks for digits
// (the ASCII encoder only checks for 7-bit characters).
var gatewayNumeric = map[int]bool{}

// Gateway field bounds beyond the fixed lengths.
const (
	gatewayMaxLLL      = 999
	gatewayPrivateMax  = 999
	gatewayBitmapBytes = 8
)

func newGatewaySpec() *iso8583.MessageSpec {
	str := func(length int, pref prefix.Prefixer, desc string) field.Field {
		return field.NewString(&field.Spec{Length: length, Description: desc, Enc: encoding.ASCII, Pref: pref})
	}
	n := func(id, length int, desc string) field.Field {
		gatewayNumeric[id] = true
		return str(length, prefix.ASCII.Fixed, desc)
	}
	nVar := func(id, length int, pref prefix.Prefixer, desc string) field.Field {
		gatewayNumeric[id] = true
		return str(length, pref, desc)
	}
	an := func(length int, desc string) field.Field { return str(length, prefix.ASCII.Fixed, desc) }
	b := func(length int, desc string) field.Field {
		return field.NewBinary(&field.Spec{Length: length, Description: desc, Enc: encoding.Binary, Pref: prefix.Binary.Fixed})
	}
	bVar := func(length int, desc string) field.Field {
		return field.NewBinary(&field.Spec{Length: length, Description: desc, Enc: encoding.Binary, Pref: prefix.ASCII.LLL})
	}
	return &iso8583.MessageSpec{
		Name: "cardswitch gateway (ISO 8583:1987 ASCII)",
		Fields: map[int]field.Field{
			0: n(0, 4, "Message Type Indicator"),
			1: field.NewBitmap(&field.Spec{Length: gatewayBitmapBytes, Description: "Bitmap",
				Enc: encoding.Binary, Pref: prefix.Binary.Fixed}),
			2:  nVar(2, 19, prefix.ASCII.LL, "Primary account number"),
			3:  n(3, 6, "Processing code"),
			4:  n(4, 12, "Amount, transaction"),
			7:  n(7, 10, "Transmission date and time MMDDhhmmss"),
			11: n(11, 6, "System trace audit number"),
			12: n(12, 6, "Local transaction time hhmmss"),
			13: n(13, 4, "Local transaction date MMDD"),
			14: n(14, 4, "Expiration date YYMM"),
			15: n(15, 4, "Settlement date MMDD"),
			18: n(18, 4, "Merchant type"),
			22: n(22, 3, "POS entry mode"),
			25: n(25, 2, "POS condition code"),
			32: nVar(32, 11, prefix.ASCII.LL, "Acquiring institution id"),
			33: nVar(33, 11, prefix.ASCII.LL, "Forwarding institution id"),
			35: str(37, prefix.ASCII.LL, "Track 2 data"),
			37: an(12, "Retrieval reference number"),
			38: an(6, "Authorization id response"),
			39: an(2, "Response code"),
			41: an(8, "Card acceptor terminal id"),
			42: an(15, "Card acceptor id code"),
			43: an(40, "Card acceptor name/location"),
			// 48 counts bytes and may hold UTF-8: binary encoding keeps
			// bytes >= 0x80, DecodeGateway checks it is valid UTF-8.
			48: field.NewString(&field.Spec{Length: gatewayPrivateMax, Description: "Additional data - private",
				Enc: encoding.Binary, Pref: prefix.ASCII.LLL}),
			49:  an(3, "Currency code, transaction"),
			52:  b(8, "PIN data"),
			53:  n(53, 16, "Security related control information"),
			54:  str(120, prefix.ASCII.LLL, "Additional amounts"),
			55:  bVar(gatewayMaxLLL, "ICC data"),
			60:  str(gatewayPrivateMax, prefix.ASCII.LLL, "Reserved national"),
			61:  str(gatewayPrivateMax, prefix.ASCII.LLL, "Reserved national"),
			62:  str(gatewayPrivateMax, prefix.ASCII.LLL, "Reserved private"),
			63:  str(gatewayPrivateMax, prefix.ASCII.LLL, "Reserved private"),
			64:  b(8, "Message authentication code"),
			70:  n(70, 3, "Network management information code"),
			90:  n(90, 42, "Original data elements"),
			95:  an(42, "Replacement amounts"),
			96:  b(8, "Message security code"),
			100: nVar(100, 11, prefix.ASCII.LL, "Receiving institution id"),
			102: str(28, prefix.ASCII.LL, "Account identification 1"),
			103: str(28, prefix.ASCII.LL, "Account identification 2"),
			128: b(8, "Message authentication code (secondary)"),
		},
	}
}

// DecodeGateway decodes one gateway message (the frame body). Beyond the
// library's Unpack it rejects bytes after the last field, fields the
// dialect does not define, a third bitmap, and non-digits in n fields.
// Errors wrap ErrFormat.
func DecodeGateway(msg []byte) (*iso8583.Message, error) {
	used, err := gatewayLength(msg)
	if err != nil {
		return nil, err
	}
	if used != len(msg) {
		return nil, fmt.Errorf("%w: %d bytes after the last field", ErrFormat, len(msg)-used)
	}
	m := iso8583.NewMessage(Gateway)
	if err := m.Unpack(msg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return m, nil
}

// DecodeGatewayFields decodes a gateway message with the checks of
// DecodeGateway, but keeps of its fields only the MTI and those of ids:
// the returned Message holds no others. For the links' financial
// answers, of which the switch reads a handful of fields
// (switch/links), it spares building every field the library's Unpack
// builds.
func DecodeGatewayFields(msg []byte, ids ...int) (*iso8583.Message, error) {
	type kept struct {
		id int
		v  []byte
	}
	var buf [16]kept
	found := buf[:0]
	used, err := walkGateway(msg, func(id int, v []byte) {
		for _, want := range ids {
			if id == want {
				found = append(found, kept{id, v})
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if used != len(msg) {
		return nil, fmt.Errorf("%w: %d bytes after the last field", ErrFormat, len(msg)-used)
	}
	m := iso8583.NewMessage(Gateway)
	m.MTI(string(msg[:4]))
	for _, f := range found {
		if _, bin := Gateway.Fields[f.id].(*field.Binary); bin {
			err = m.BinaryField(f.id, append([]byte(nil), f.v...))
		} else {
			err = m.Field(f.id, string(f.v))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: field %d: %v", ErrFormat, f.id, err)
		}
	}
	return m, nil
}

// gatewayLength walks the message with the spec's codecs and returns the
// number of bytes its fields use, validating as it goes.
func gatewayLength(msg []byte) (int, error) { return walkGateway(msg, nil) }

// walkGateway is gatewayLength, calling fn (when not nil) with each
// field's id and value (aliasing msg) as it goes.
func walkGateway(msg []byte, fn func(id int, v []byte)) (int, error) {
	if len(msg) < 4+gatewayBitmapBytes {
		return 0, fmt.Errorf("%w: message of %d bytes", ErrFormat, len(msg))
	}
	if !isDigits(string(msg[:4])) {
		return 0, fmt.Errorf("%w: MTI %q", ErrFormat, msg[:4])
	}
	bitmap := msg[4 : 4+gatewayBitmapBytes]
	off := 4 + gatewayBitmapBytes
	maxField := 64
	if bitmap[0]&0x80 != 0 {
		if len(msg) < off+gatewayBitmapBytes {
			return 0, fmt.Errorf("%w: secondary bitmap missing", ErrFormat)
		}
		bitmap = msg[4 : 4+2*gatewayBitmapBytes]
		off += gatewayBitmapBytes
		maxField = 128
		if bitmap[gatewayBitmapBytes]&0x80 != 0 {
			return 0, fmt.Errorf("%w: tertiary bitmap is not supported", ErrFormat)
		}
	}
	for id := 2; id <= maxField; id++ {
		if bitmap[(id-1)/8]&(0x80>>((id-1)%8)) == 0 {
			continue
		}
		f, ok := Gateway.Fields[id]
		if !ok {
			return 0, fmt.Errorf("%w: field %d is not part of the gateway dialect", ErrFormat, id)
		}
		s := f.Spec()
		n, read, err := s.Pref.DecodeLength(s.Length, msg[off:])
		if err != nil {
			return 0, fmt.Errorf("%w: field %d length: %v", ErrFormat, id, err)
		}
		v, used, err := decodeInPlace(s.Enc, msg[off+read:], n)
		if err != nil {
			return 0, fmt.Errorf("%w: field %d: %v", ErrFormat, id, err)
		}
		if gatewayNumeric[id] && !isDigits(string(v)) {
			return 0, fmt.Errorf("%w: field %d is not numeric", ErrFormat, id)
		}
		if id == 48 && !utf8.Valid(v) {
			return 0, fmt.Errorf("%w: field 48 is not UTF-8", ErrFormat)
		}
		if id == 35 && !isTrack2(v) {
			return 0, fmt.Errorf("%w: field 35 has characters other than digits and '='", ErrFormat)
		}
		if fn != nil {
			fn(id, v)
		}
		off += read + used
	}
	return off, nil
}

// decodeInPlace is enc.Decode(data, n) without the copy for the
// dialect's encoders (ASCII, binary): the value aliases data, and is
// only looked at. The checks are the encoders' own.
func decodeInPlace(enc encoding.Encoder, data []byte, n int) ([]byte, int, error) {
	if enc != encoding.ASCII && enc != encoding.Binary {
		return enc.Decode(data, n)
	}
	if n < 0 || n > len(data) {
		return nil, 0, fmt.Errorf("length %d, %d bytes left", n, len(data))
	}
	v := data[:n]
	if enc == encoding.ASCII {
		for _, c := range v {
			if c > 127 {
				return nil, 0, fmt.Errorf("byte %#x is not ASCII", c)
			}
		}
	}
	return v, n, nil
}

// EncodeGateway packs a gateway message into a frame body.
func EncodeGateway(m *iso8583.Message) ([]byte, error) {
	b, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack gateway message: %w", err)
	}
	return b, nil
}

// AppendGatewayFrame packs m and appends the frame (2-byte length + body)
// to dst.
func AppendGatewayFrame(dst []byte, m *iso8583.Message) ([]byte, error) {
	b, err := EncodeGateway(m)
	if err != nil {
		return dst, err
	}
	return AppendFrame(dst, b)
}

// isTrack2 reports whether b is track 2 equivalent data: digits and the
// '=' separator.
func isTrack2(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && c != '=' {
			return false
		}
	}
	return true
}

// GatewayMACBlock returns the MAC block of a packed gateway message: every
// byte before the MAC, which is the last field — 128 when the secondary
// bitmap is present, else 64. It fails when that field's bit is not set.
// The block aliases packed.
func GatewayMACBlock(packed []byte) ([]byte, error) {
	if len(packed) < 4+gatewayBitmapBytes+8 {
		return nil, fmt.Errorf("%w: message of %d bytes cannot carry a MAC", ErrFormat, len(packed))
	}
	if packed[4]&0x80 != 0 {
		if len(packed) < 4+2*gatewayBitmapBytes+8 || packed[4+15]&0x01 == 0 {
			return nil, fmt.Errorf("%w: bitmap bit 128 (MAC) is not set", ErrFormat)
		}
	} else if packed[4+7]&0x01 == 0 {
		return nil, fmt.Errorf("%w: bitmap bit 64 (MAC) is not set", ErrFormat)
	}
	return packed[:len(packed)-8], nil
}
