package spec

import (
	"fmt"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"
)

// POS is the UnionPay-style POS dialect of docs/pos-dialect.md, framing and fields: BCD MTI, one
// 8-byte binary bitmap (bit 1 set is a format error), BCD numerics with BCD
// length prefixes counting digits for n/z fields and bytes for the others.
// It uses the fast BCD codecs; the bytes are those of the library's own
// BCD encoders.
//
// Every digit string is a String field: Numeric fields would drop leading
// zeros from STANs and processing codes.
var POS = newPOSSpec("cardswitch POS (UnionPay-style)", posCodecs{
	bcd: FastBCD, lbcd: FastLBCD, track2: Track2BCD, pref: FastBCDPrefix,
})

// posCodecs lets the benchmarks build the same dialect with the library's
// BCD encoders. Production code only uses POS.
type posCodecs struct {
	bcd, lbcd, track2 encoding.Encoder
	pref              prefix.Prefixers
}

// Field bounds of the POS dialect (docs/pos-dialect.md). Field 54 is
// an..40: one balance entry is 20 characters, repeated per purse, so the
// field holds up to MaxBalances entries.
const (
	MaxBalances       = 2
	balanceEntryLen   = 20
	posField54MaxLen  = MaxBalances * balanceEntryLen
	posField48MaxLen  = 322
	posField55MaxLen  = 255
	posField62MaxLen  = 512
	posField63MaxLen  = 163
	posField60MaxLen  = 17
	posField61MaxLen  = 29
	posField57MaxLen  = 100
	posField44MaxLen  = 25
	posTrack2MaxLen   = 37
	posCardNumberMax  = 19
	posAcquirerIDMax  = 11
	posMACLen         = 8
	posPINBlockLen    = 8
	posPrimaryBitmap  = 8
	posMaxFieldNumber = 64
)

// primaryBitmapOnly is the binary bitmap encoder of the POS dialect. It
// refuses a bitmap whose bit 1 is set: POS terminals never send a secondary
// bitmap, and accepting one would shift every following field.
type primaryBitmapOnly struct{}

func (primaryBitmapOnly) Encode(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		return nil, fmt.Errorf("%w: bitmap bit 1 (secondary bitmap) is not allowed", ErrFormat)
	}
	return append([]byte(nil), b...), nil
}

func (primaryBitmapOnly) Decode(b []byte, length int) ([]byte, int, error) {
	if length < 0 || len(b) < length {
		return nil, 0, fmt.Errorf("%w: bitmap needs %d bytes, have %d", ErrFormat, length, len(b))
	}
	if length > 0 && b[0]&0x80 != 0 {
		return nil, 0, fmt.Errorf("%w: bitmap bit 1 (secondary bitmap) is not allowed", ErrFormat)
	}
	return append([]byte(nil), b[:length]...), length, nil
}

func newPOSSpec(name string, c posCodecs) *iso8583.MessageSpec {
	// n fixed: right-aligned BCD (even lengths are the same either way).
	n := func(length int, desc string) field.Field {
		return field.NewString(&field.Spec{Length: length, Description: desc, Enc: c.bcd, Pref: c.pref.Fixed})
	}
	// n fixed, left-aligned.
	nLeft := func(length int, desc string) field.Field {
		return field.NewString(&field.Spec{Length: length, Description: desc, Enc: c.lbcd, Pref: c.pref.Fixed})
	}
	// n variable, left-aligned, prefix counts digits.
	nVar := func(length int, pref prefix.Prefixer, desc string) field.Field {
		return field.NewString(&field.Spec{Length: length, Description: desc, Enc: c.lbcd, Pref: pref})
	}
	an := func(length int, desc string) field.Field {
		return field.NewString(&field.Spec{Length: length, Description: desc, Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed})
	}
	// ASCII variable, BCD prefix counts bytes.
	anVar := func(length int, pref prefix.Prefixer, desc string) field.Field {
		return field.NewString(&field.Spec{Length: length, Description: desc, Enc: encoding.ASCII, Pref: pref})
	}
	b := func(length int, desc string) field.Field {
		return field.NewBinary(&field.Spec{Length: length, Description: desc, Enc: encoding.Binary, Pref: prefix.Binary.Fixed})
	}
	bVar := func(length int, pref prefix.Prefixer, desc string) field.Field {
		return field.NewBinary(&field.Spec{Length: length, Description: desc, Enc: encoding.Binary, Pref: pref})
	}
	return &iso8583.MessageSpec{
		Name: name,
		Fields: map[int]field.Field{
			0: n(4, "Message Type Indicator"),
			1: field.NewBitmap(&field.Spec{
				Length: posPrimaryBitmap, Description: "Primary bitmap",
				Enc: primaryBitmapOnly{}, Pref: prefix.Binary.Fixed, DisableAutoExpand: true,
			}),
			2:  nVar(posCardNumberMax, c.pref.LL, "Primary account number"),
			3:  n(6, "Processing code"),
			4:  n(12, "Amount, transaction (fen)"),
			11: n(6, "System trace audit number"),
			12: n(6, "Local transaction time hhmmss"),
			13: n(4, "Local transaction date MMDD"),
			14: n(4, "Expiration date YYMM"),
			15: n(4, "Settlement date MMDD"),
			22: nLeft(3, "POS entry mode"),
			23: n(3, "Card sequence number"),
			25: n(2, "POS condition code"),
			26: n(2, "POS PIN capture code"),
			32: nVar(posAcquirerIDMax, c.pref.LL, "Acquiring institution id"),
			35: field.NewString(&field.Spec{Length: posTrack2MaxLen, Description: "Track 2 data", Enc: c.track2, Pref: c.pref.LL}),
			37: an(12, "Retrieval reference number"),
			38: an(6, "Authorization code"),
			39: an(2, "Response code"),
			41: an(8, "Card acceptor terminal id"),
			42: an(15, "Card acceptor id (merchant)"),
			44: anVar(posField44MaxLen, c.pref.LL, "Additional response data"),
			48: nVar(posField48MaxLen, c.pref.LLL, "Additional data (settlement totals)"),
			49: an(3, "Currency code"),
			52: b(posPINBlockLen, "PIN block"),
			53: n(16, "Security related control information"),
			54: anVar(posField54MaxLen, c.pref.LLL, "Balance amounts"),
			55: bVar(posField55MaxLen, c.pref.LLL, "IC card data"),
			57: anVar(posField57MaxLen, c.pref.LLL, "Payment code (QR)"),
			60: nVar(posField60MaxLen, c.pref.LLL, "Reserved: type, batch, network code"),
			61: nVar(posField61MaxLen, c.pref.LLL, "Original data: batch, STAN, date"),
			62: bVar(posField62MaxLen, c.pref.LLL, "Reserved (working keys)"),
			63: anVar(posField63MaxLen, c.pref.LLL, "Reserved (operator / card organisation)"),
			64: b(posMACLen, "Message authentication code"),
		},
	}
}
