package spec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"
)

// POSMessage is a POS message as the switch uses it: every field of the
// dialect as a Go value, with fields 4, 60 and 61 parsed. An empty string or
// nil slice means "absent"; field 4 is present when HasAmount is set.
//
// The same type serves requests (DecodePOS) and responses (NewPOSResponse,
// EncodePOS), and the terminal simulator builds requests with it.
type POSMessage struct {
	MTI string

	PAN                string  // 2, n..19
	ProcessingCode     string  // 3, n6
	Amount             Amount  // 4, n12, when HasAmount
	HasAmount          bool    // field 4 present
	STAN               string  // 11, n6
	LocalTime          string  // 12, hhmmss
	LocalDate          string  // 13, MMDD
	Expiry             string  // 14, YYMM
	SettlementDate     string  // 15, MMDD
	EntryMode          string  // 22, n3
	CardSequence       string  // 23, n3
	ConditionCode      string  // 25, n2
	PINCaptureCode     string  // 26, n2
	AcquirerID         string  // 32, n..11
	Track2             string  // 35, z..37 with '=' separator — never log it
	RRN                string  // 37, an12
	AuthCode           string  // 38, an6
	ResponseCode       string  // 39, an2
	TerminalID         string  // 41, ans8
	MerchantID         string  // 42, ans15
	AdditionalResponse string  // 44, an..25
	AdditionalData     string  // 48, n..322 (ParseSettlement for 0500)
	Currency           string  // 49, an3
	PINBlock           []byte  // 52, b64 — never log it
	SecurityControl    string  // 53, n16
	Balances           string  // 54, an..40 (ParseBalances, FormatBalances)
	ICData             []byte  // 55, b..255
	PaymentCode        string  // 57, ans..100
	Reserved60         Field60 // 60
	Original           Field61 // 61
	Reserved62         []byte  // 62, b..512 (working keys in 0810)
	Reserved63         string  // 63, ans..163
	MAC                []byte  // 64, b64

	// Raw is a copy of the decoded message bytes (from the MTI), set by
	// DecodePOS: the MAC block and the journal entry are cut from it.
	Raw []byte

	// wire is where each field of a message DecodePOS returned lies in
	// its bytes; echo is the wire of the request a response was started
	// from (InitResponse), whose packed fields the response copies where
	// it still holds the request's values (posEncoder.echoes). Neither
	// is part of the message's value.
	wire *posWire
	echo *posWire
}

// posWire is where the fields of a decoded message lie: for each field
// cut, in ascending order, its value in joined and where it begins and
// ends in the message.
type posWire struct {
	// joined is the message's bytes followed by the digits of its digit
	// fields, the one string DecodePOS makes: every text and digit value
	// is a substring of it, and its first msgLen bytes are the message as
	// decoded, which nothing can change.
	joined string
	msgLen int
	// present marks the fields (bit 64 − id: the bitmap). canonical
	// says every field's bytes are exactly what appendField packs for
	// the value decoded from them: no pad nibble and no length prefix
	// pad digit other than 0 (which DecodePOS accepts and appendField
	// never writes).
	present   uint64
	canonical bool
	// amount is field 4 as decoded.
	amount Amount
	// echo[id] is 1 + the index in cuts of text or digit field id when
	// its bytes are canonical, else 0: the fields a response may copy.
	echo [128]uint8
	cuts [posMaxFields]posCut
}

// decodedPOS is what DecodePOS allocates: the message and its wire in
// one object.
type decodedPOS struct {
	m POSMessage
	w posWire
}

// cutAt returns the index in w.cuts of field id, false when the field
// is not in the message.
func (w *posWire) cutAt(id int) (int, bool) {
	bit := uint64(1) << (64 - id)
	return bits.OnesCount64(w.present >> (64 - id) >> 1), w.present&bit != 0
}

// start returns where the k-th field cut begins in the message (its
// length prefix): where the one before it ends, the first after the
// bitmap.
func (w *posWire) start(k int) int {
	if k == 0 {
		return minPOSMessage
	}
	return int(w.cuts[(k-1)&(posMaxFields-1)].end)
}

// holds reports whether the value v of field id is the value decoded
// from the message's canonical field: the same bytes of joined, not only
// equal ones (a string never changes, so these are the value as decoded,
// and the field's bytes are what packing v gives). It returns the
// field's index in cuts.
func (w *posWire) holds(id int, v string) (int, bool) {
	k := int(w.echo[id&127]) - 1
	if k < 0 {
		return 0, false
	}
	c := &w.cuts[k&(posMaxFields-1)]
	return k, len(v) == int(c.hi-c.lo) &&
		unsafe.StringData(v) == (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(w.joined)), c.lo))
}

// holdsParts is holds for a digit field packed as its parts joined
// (60, 61): each part not empty lies in joined where the one before it
// ends, and together they are the value decoded.
func (w *posWire) holdsParts(id int, parts *[4]string) (int, bool) {
	k := int(w.echo[id&127]) - 1
	if k < 0 {
		return 0, false
	}
	c := &w.cuts[k&(posMaxFields-1)]
	at := int(c.lo)
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if len(p) > int(c.hi)-at || unsafe.StringData(p) != unsafe.StringData(w.joined[at:]) {
			return 0, false
		}
		at += len(p)
	}
	return k, at == int(c.hi)
}

// posFieldSpecs caches the field specs of POS by number.
var posFieldSpecs = func() (s [posMaxFieldNumber + 1]*field.Spec) {
	for id, f := range POS.Fields {
		s[id] = f.Spec()
	}
	return s
}()

// posFieldOrder lists the data fields of the dialect in ascending order.
var posFieldOrder = func() (ids []int) {
	for id := 2; id <= posMaxFieldNumber; id++ {
		if posFieldSpecs[id] != nil {
			ids = append(ids, id)
		}
	}
	return ids
}()

// posTextFields are the ASCII (an/ans) fields, which must be printable.
var posTextFields = func() (t [posMaxFieldNumber + 1]bool) {
	for id, s := range posFieldSpecs {
		t[id] = id > 1 && s != nil && s.Enc == encoding.ASCII
	}
	return t
}()

// posLayout is how one field of POS is cut and packed, read once from
// its spec so that a message does not ask the spec's interfaces field by
// field: the prefix (varDigits BCD length digits, or fixed at length),
// the codec, and whether the field is text.
type posLayout struct {
	spec      *field.Spec
	length    int
	varDigits int  // a bcdPrefixer's digits; 0 when not one
	fixed     bool // one of the library's fixed prefixers: the length is length
	codec     uint8
	bcd       bcdCodec // codec == layoutBCD
	text      bool     // posTextFields
}

// The codecs of posLayout: the dialect's own BCD codecs, the library's
// ASCII and binary encoders (whose bytes are the value's), or another
// encoder, which goes through its interface.
const (
	layoutOther = iota
	layoutBCD
	layoutASCII
	layoutBinary
)

var posLayouts = func() (t [posMaxFieldNumber + 1]posLayout) {
	for id, s := range posFieldSpecs {
		if s == nil {
			continue
		}
		l := posLayout{spec: s, length: s.Length, text: posTextFields[id]}
		switch p := s.Pref.(type) {
		case bcdPrefixer:
			l.varDigits = p.digits
		default:
			l.fixed = s.Pref == prefix.BCD.Fixed || s.Pref == prefix.ASCII.Fixed || s.Pref == prefix.Binary.Fixed
		}
		switch enc := s.Enc.(type) {
		case bcdCodec:
			l.codec, l.bcd = layoutBCD, enc
		default:
			switch s.Enc {
			case encoding.ASCII:
				l.codec = layoutASCII
			case encoding.Binary:
				l.codec = layoutBinary
			}
		}
		t[id] = l
	}
	return t
}()

// bcdByteValue is the value of a byte of two BCD digits, or -1.
var bcdByteValue = func() (t [256]int16) {
	for b := range 256 {
		hi, lo := b>>4, b&0x0F
		t[b] = int16(hi*10 + lo)
		if hi > 9 || lo > 9 {
			t[b] = -1
		}
	}
	return t
}()

// decodeLength reads field l's length prefix at data: what the spec's
// prefixer's DecodeLength returns, the BCD LL and LLL prefixes without
// a call through the interface.
func (l *posLayout) decodeLength(data []byte) (int, int, error) {
	switch {
	case l.fixed:
		return l.length, 0, nil
	case l.varDigits == 2 && len(data) >= 1:
		if v := int(bcdByteValue[data[0]]); v >= 0 && v <= l.length {
			return v, 1, nil
		}
	case l.varDigits == 3 && len(data) >= 2:
		// The first byte's high nibble is the pad: a digit not counted.
		if v0, v1 := int(bcdByteValue[data[0]]), int(bcdByteValue[data[1]]); v0 >= 0 && v1 >= 0 {
			if v := v0%10*100 + v1; v <= l.length {
				return v, 2, nil
			}
		}
	}
	if l.varDigits > 0 {
		return bcdPrefixer{l.varDigits}.DecodeLength(l.length, data)
	}
	return l.spec.Pref.DecodeLength(l.length, data)
}

// set stores a decoded field value: str for text and digit fields, v
// for binary ones.
func (m *POSMessage) set(id int, str string, v []byte) error {
	var err error
	switch id {
	case 2:
		m.PAN = str
	case 3:
		m.ProcessingCode = str
	case 4:
		m.Amount, err = ParseAmount(str)
		m.HasAmount = err == nil
	case 11:
		m.STAN = str
	case 12:
		m.LocalTime = str
	case 13:
		m.LocalDate = str
	case 14:
		m.Expiry = str
	case 15:
		m.SettlementDate = str
	case 22:
		m.EntryMode = str
	case 23:
		m.CardSequence = str
	case 25:
		m.ConditionCode = str
	case 26:
		m.PINCaptureCode = str
	case 32:
		m.AcquirerID = str
	case 35:
		m.Track2 = str
	case 37:
		m.RRN = str
	case 38:
		m.AuthCode = str
	case 39:
		m.ResponseCode = str
	case 41:
		m.TerminalID = str
	case 42:
		m.MerchantID = str
	case 44:
		m.AdditionalResponse = str
	case 48:
		m.AdditionalData = str
	case 49:
		m.Currency = str
	case 52:
		m.PINBlock = v
	case 53:
		m.SecurityControl = str
	case 54:
		m.Balances = str
	case 55:
		m.ICData = v
	case 57:
		m.PaymentCode = str
	case 60:
		m.Reserved60, err = ParseField60(str)
	case 61:
		m.Original, err = ParseField61(str)
	case 62:
		m.Reserved62 = v
	case 63:
		m.Reserved63 = str
	case 64:
		m.MAC = v
	default:
		err = fmt.Errorf("field %d is not part of the POS dialect", id)
	}
	return err
}

// printable reports whether every byte is printable ASCII (an/ans
// fields), eight bytes at a time: a byte below 0x20 borrows into its top
// bit when 0x20 is taken from it, a byte above 0x7E reaches its top bit
// when 1 is added, and a byte with the top bit already set is caught by
// the same test. A borrow or carry only crosses into the next byte from
// a byte that is itself caught, so the word test is exact
// (TestPrintableSameAsBytewise).
func printable[T string | []byte](b T) bool {
	const (
		ones = 0x0101010101010101
		tops = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := b[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		if ((x-0x20*ones)&^x|(x+ones)|x)&tops != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c > 0x7E {
			return false
		}
	}
	return true
}

// DecodePOS decodes one POS message starting at the MTI (the third value of
// SplitPOS). Every error wraps ErrFormat: the acceptor answers 30. Beyond
// the spec it rejects a secondary bitmap, a bitmap naming fields the dialect
// does not define, non-printable text fields, malformed fields 4, 60 and 61,
// and bytes after the last field.
func DecodePOS(msg []byte) (*POSMessage, error) {
	if len(msg) < minPOSMessage {
		return nil, fmt.Errorf("%w: message of %d bytes, need at least %d", ErrFormat, len(msg), minPOSMessage)
	}
	// Raw is the message's own copy: binary fields are slices of it. The
	// message is copied into a stack buffer and the digits of every
	// digit field (and the MTI) unpacked after it; that buffer becomes
	// one string, of which text and digit fields are substrings, so a
	// field costs no allocation of its own. Raw and the string are one
	// allocation: Raw its first bytes (capacity cut to them, so that
	// appending to Raw never writes over the string), the string the
	// rest, which no slice reaches; with the message and its wire, a
	// message costs two. (Raw allocated with the POSMessage would save
	// one more, but zeroing the larger object cost more than the
	// allocation in a profile of switchd.) The fields are cut in a first
	// pass, from the caller's bytes, and stored in a second, once that
	// string exists; a field that does not cut stops the first pass,
	// and the fields before it are stored first, so the error is the
	// one a field-by-field decoder would return.
	d := new(decodedPOS)
	m, w := &d.m, &d.w
	var (
		joinBuf [posJoinBuf]byte
		ncut    int
		err     error
	)
	cuts := &w.cuts
	buf := append(joinBuf[:0], msg...)
	if c, ok := posFieldSpecs[0].Enc.(bcdCodec); ok {
		buf, _, err = c.decodeInto(buf, msg, 4)
	} else {
		var mti []byte
		if mti, _, err = posFieldSpecs[0].Enc.Decode(msg, 4); err == nil {
			buf = append(buf, mti...)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: MTI: %v", ErrFormat, err)
	}
	bitmap := binary.BigEndian.Uint64(msg[2:10])
	if bitmap&(1<<63) != 0 {
		return nil, fmt.Errorf("%w: bitmap bit 1 (secondary bitmap) is not allowed", ErrFormat)
	}
	off := minPOSMessage
	var cutErr error
	allCanon := true // posWire.canonical
	for bm := bitmap; bm != 0; {
		lz := bits.LeadingZeros64(bm)
		bm &^= 1 << (63 - lz)
		id := lz + 1
		if ncut == len(cuts) { // cannot happen: only dialect fields cut (TestPOSMaxFields)
			cutErr = fmt.Errorf("%w: more than %d fields", ErrFormat, len(cuts))
			break
		}
		c := &cuts[ncut]
		c.id = uint8(id)
		// The fast path: a well-formed field with a fixed or BCD LL/LLL
		// length, BCD digits, printable text. Anything else goes to
		// cutPOSField, which cuts it or names what is wrong
		// (FuzzDecodePOSSameAsFieldByField holds the two to the old
		// decoder).
		l := &posLayouts[id]
		// canon: the field's bytes are what appendField packs for its
		// value (posWire): so far, the length prefix's pad digit, if
		// any, is 0.
		n, at, ok, canon := l.length, off, l.fixed, true
		switch {
		case ok:
		case l.varDigits == 2 && off < len(msg):
			n, at, ok = int(bcdByteValue[msg[off]]), off+1, true
		case l.varDigits == 3 && off+1 < len(msg):
			v0, v1 := int(bcdByteValue[msg[off]]), int(bcdByteValue[msg[off+1]])
			n, at, ok, canon = v0%10*100+v1, off+2, v0 >= 0 && v1 >= 0, v0 < 10
		}
		if ok && n > 0 && n <= l.length {
			switch l.codec {
			case layoutBCD:
				read := (n + 1) / 2
				if n <= posMaxDigits && read <= len(msg)-at && !l.text {
					lo := len(buf)
					if cap(buf)-lo < n {
						buf = slices.Grow(buf, n)
					}
					if l.bcd.pairs(buf[lo:lo+n], msg[at:at+read]) {
						buf, off = buf[:lo+n], at+read
						c.kind, c.lo, c.hi, c.end = cutDigits, int32(lo), int32(lo+n), int32(off)
						if n%2 != 0 {
							// The pad nibble: after the digits when
							// left-aligned, before them when right.
							if l.bcd.left {
								canon = canon && msg[off-1]&0x0F == 0
							} else {
								canon = canon && msg[at]>>4 == 0
							}
						}
						if canon {
							w.echo[id] = uint8(ncut + 1)
						}
						allCanon = allCanon && canon
						ncut++
						continue
					}
				}
			case layoutASCII, layoutBinary:
				if n <= len(msg)-at && (!l.text || printable(msg[at:at+n])) {
					c.kind, c.lo, c.hi = cutBinary, int32(at), int32(at+n)
					if l.codec == layoutASCII {
						c.kind = cutText
					}
					off = at + n
					c.end = int32(off)
					if canon && c.kind == cutText {
						w.echo[id] = uint8(ncut + 1)
					}
					allCanon = allCanon && canon
					ncut++
					continue
				}
			}
		}
		if off, buf, cutErr = cutPOSField(msg, off, c, buf); cutErr != nil {
			break
		}
		allCanon = false
		ncut++
	}
	// Raw, then one string of the message followed by its digits: text
	// fields are substrings of its first part, digit fields of its
	// second.
	all := make([]byte, len(msg)+len(buf))
	copy(all, msg)
	copy(all[len(msg):], buf)
	m.Raw = all[:len(msg):len(msg)]
	msg = m.Raw
	joined := unsafe.String(&all[len(msg)], len(buf))
	m.MTI = joined[len(msg) : len(msg)+4]
	for _, c := range cuts[:ncut] {
		var (
			str string
			v   []byte
		)
		switch c.kind {
		case cutDigits:
			str = joined[c.lo:c.hi]
		case cutText:
			str, v = joined[c.lo:c.hi], msg[c.lo:c.hi:c.hi]
		default:
			v = msg[c.lo:c.hi:c.hi]
		}
		if err := m.set(int(c.id), str, v); err != nil {
			return nil, fmt.Errorf("field %d: %w", c.id, err)
		}
	}
	if cutErr != nil {
		return nil, cutErr
	}
	if off != len(msg) {
		return nil, fmt.Errorf("%w: %d bytes after the last field", ErrFormat, len(msg)-off)
	}
	w.joined, w.msgLen, w.amount, w.present, w.canonical = joined, len(msg), m.Amount, bitmap, allCanon
	if !m.HasAmount {
		w.echo[4] = 0
	}
	m.wire = w
	return m, nil
}

// posCut is one field of a message being decoded, by where its value
// is in the decoder's buffer (the message, then its digits): text (a
// substring of the message's string), binary (a slice of the message)
// or digits.
type posCut struct {
	id   uint8
	kind uint8
	// lo, hi: the value in the decoder's buffer; end: where the field
	// ends in the message (it begins where the one before it ends, the
	// first after the bitmap).
	lo, hi, end int32
}

const (
	cutBinary = iota
	cutText
	cutDigits
)

// posMaxFields bounds the fields of one message: the dialect's data
// fields and 64 (TestPOSMaxFields); posMaxDigits is the longest digit
// field unpacked (48).
const (
	posMaxFields = 32
	posMaxDigits = 512
)

// posWire indexes its cuts with k&(posMaxFields-1), which needs a power
// of two: this fails to compile otherwise.
var _ = [1]struct{}{}[posMaxFields&(posMaxFields-1)]

// posJoinBuf is the stack buffer in which a message and its digits are
// joined before they become one string (a financial request is about
// 100–200 bytes and its digits fewer; a longer message is joined on the
// heap).
const posJoinBuf = 768

// cutPOSField cuts field c.id out of msg at off: its length prefix and
// value, checked against the dialect. Its digits are appended to buf
// (msg's copy and the digits so far). It returns the offset after the
// field and buf, and sets c.end to that offset.
//
// It serves the fields the fast path in DecodePOS does not cut, to say
// what is wrong with them; one it cuts is not marked canonical (a
// response packs it again, RawWithout walks the message).
func cutPOSField(msg []byte, off int, c *posCut, buf []byte) (int, []byte, error) {
	end, buf, err := cutPOSFieldValue(msg, off, c, buf)
	c.end = int32(end)
	return end, buf, err
}

// cutPOSFieldValue is cutPOSField but for c.end.
func cutPOSFieldValue(msg []byte, off int, c *posCut, buf []byte) (int, []byte, error) {
	id := int(c.id)
	l := &posLayouts[id]
	if l.spec == nil {
		return off, buf, fmt.Errorf("%w: field %d is not part of the POS dialect", ErrFormat, id)
	}
	n, read, err := l.decodeLength(msg[off:])
	if err != nil {
		return off, buf, fmt.Errorf("%w: field %d length: %v", ErrFormat, id, err)
	}
	if n == 0 {
		return off, buf, fmt.Errorf("%w: field %d is present but empty", ErrFormat, id)
	}
	at := off + read
	var used int
	switch l.codec {
	case layoutBCD:
		if n > posMaxDigits {
			return off, buf, fmt.Errorf("%w: field %d: %d digits", ErrFormat, id, n)
		}
		lo := len(buf)
		all, u, err := l.bcd.decodeInto(buf, msg[at:], n)
		if err != nil {
			return off, buf, fmt.Errorf("%w: field %d: %v", ErrFormat, id, err)
		}
		buf, used = all, u
		c.kind, c.lo, c.hi = cutDigits, int32(lo), int32(len(all))
		if l.text && !printable(all[lo:]) {
			return off, buf, fmt.Errorf("%w: field %d has non-printable characters", ErrFormat, id)
		}
	case layoutASCII, layoutBinary:
		if n > len(msg)-at {
			return off, buf, fmt.Errorf("%w: field %d: %d bytes, have %d", ErrFormat, id, n, len(msg)-at)
		}
		used = n
		c.kind, c.lo, c.hi = cutBinary, int32(at), int32(at+n)
		if l.codec == layoutASCII {
			c.kind = cutText
		}
		if l.text && !printable(msg[at:at+n]) {
			return off, buf, fmt.Errorf("%w: field %d has non-printable characters", ErrFormat, id)
		}
	default:
		return off, buf, fmt.Errorf("%w: field %d: no decoder", ErrFormat, id)
	}
	return at + used, buf, nil
}

// EncodePOS packs m into a message starting at the MTI, fields in ascending
// order, the bitmap computed from the fields present. When m.MAC is set it
// is packed as field 64; see EncodePOSWithMAC for the MAC flow.
func EncodePOS(m *POSMessage) ([]byte, error) {
	return appendPOS(make([]byte, 0, 256), m)
}

func appendPOS(dst []byte, m *POSMessage) ([]byte, error) {
	if len(m.MTI) != 4 || !isDigits(m.MTI) {
		return nil, fmt.Errorf("encode POS message: MTI %q is not 4 digits", m.MTI)
	}
	if err := m.Reserved60.validate(); err != nil {
		return nil, fmt.Errorf("encode POS %s: %w", m.MTI, err)
	}
	if err := m.Original.validate(); err != nil {
		return nil, fmt.Errorf("encode POS %s: %w", m.MTI, err)
	}
	if m.HasAmount && (m.Amount < 0 || m.Amount > MaxAmount) {
		_, err := m.Amount.N12()
		return nil, fmt.Errorf("encode POS %s field 4: %w", m.MTI, err)
	}
	dst, err := appendField(dst, &posLayouts[0], 0, m.MTI)
	if err != nil {
		return nil, fmt.Errorf("encode POS MTI %q: %w", m.MTI, err)
	}
	bitmapAt := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	// Every field of the dialect in ascending order (TestAppendPOSSameAsRef
	// compares with the packer that walked posFieldOrder): a text or
	// digit field is present when not "", a binary one when not nil.
	e := posEncoder{dst: dst, echo: m.echo}
	e.str(2, m.PAN)
	e.str(3, m.ProcessingCode)
	if m.HasAmount {
		if w := e.echo; w != nil && m.Amount == w.amount && w.echo[4] != 0 {
			// The request's amount (echo[4] is set only where it was
			// decoded).
			e.copyField(int(w.echo[4])-1, 4)
		} else {
			var n12 [12]byte
			e.bin(4, m.Amount.appendN12(n12[:0])) // checked above
		}
	}
	e.str(11, m.STAN)
	e.str(12, m.LocalTime)
	e.str(13, m.LocalDate)
	e.str(14, m.Expiry)
	e.str(15, m.SettlementDate)
	e.str(22, m.EntryMode)
	e.str(23, m.CardSequence)
	e.str(25, m.ConditionCode)
	e.str(26, m.PINCaptureCode)
	e.str(32, m.AcquirerID)
	e.str(35, m.Track2)
	e.str(37, m.RRN)
	e.str(38, m.AuthCode)
	e.str(39, m.ResponseCode)
	e.str(41, m.TerminalID)
	e.str(42, m.MerchantID)
	e.str(44, m.AdditionalResponse)
	e.str(48, m.AdditionalData)
	e.str(49, m.Currency)
	e.bin(52, m.PINBlock)
	e.str(53, m.SecurityControl)
	e.str(54, m.Balances)
	e.bin(55, m.ICData)
	e.str(57, m.PaymentCode)
	var scratch [posMaxScratch]byte
	if f := &m.Reserved60; f.Type != "" || f.Batch != "" || f.NetworkCode != "" || f.Rest != "" {
		if k, ok := e.echoes(60, &[4]string{f.Type, f.Batch, f.NetworkCode, f.Rest}); ok {
			e.copyField(k, 60)
		} else {
			e.bin(60, append(append(append(append(scratch[:0], f.Type...), f.Batch...), f.NetworkCode...), f.Rest...))
		}
	}
	if f := &m.Original; f.Batch != "" || f.STAN != "" || f.Date != "" || f.Rest != "" {
		if k, ok := e.echoes(61, &[4]string{f.Batch, f.STAN, f.Date, f.Rest}); ok {
			e.copyField(k, 61)
		} else {
			e.bin(61, append(append(append(append(scratch[:0], f.Batch...), f.STAN...), f.Date...), f.Rest...))
		}
	}
	e.bin(62, m.Reserved62)
	e.str(63, m.Reserved63)
	e.bin(64, m.MAC)
	e.flush()
	if e.err != nil {
		return nil, fmt.Errorf("encode POS %s field %d: %w", m.MTI, e.id, e.err)
	}
	binary.BigEndian.PutUint64(e.dst[bitmapAt:], e.bitmap)
	return e.dst, nil
}

// posEncoder appends fields to dst and marks them in bitmap until one
// fails (err, field id).
//
// A response started from a decoded request (InitResponse) has the
// request's wire as echo: a field still holding the request's value
// (posWire.holds) is copied from the request's bytes instead of packed
// again, the same bytes (TestEchoSameAsPacked). Fields echoed one after
// the other that lie one after the other in the request too are copied
// together: run is the part of the request's message copied but not yet
// appended.
type posEncoder struct {
	dst    []byte
	bitmap uint64
	id     int
	err    error
	echo   *posWire
	runLo  int
	runHi  int
}

// echoes reports whether field id, packed as its parts joined, is the
// request's (holdsParts), and its index in the request's cuts.
func (e *posEncoder) echoes(id int, parts *[4]string) (int, bool) {
	if e.echo == nil {
		return 0, false
	}
	return e.echo.holdsParts(id, parts)
}

// copyField echoes the request's k-th field (field id).
func (e *posEncoder) copyField(k, id int) {
	if e.err != nil {
		return
	}
	w := e.echo
	if s := w.start(k); s != e.runHi {
		e.flush()
		e.runLo = s
	}
	e.runHi = int(w.cuts[k&(posMaxFields-1)].end)
	e.bitmap |= 1 << (64 - id)
}

// flush appends the run of echoed fields not yet appended.
func (e *posEncoder) flush() {
	if e.runHi > e.runLo {
		e.dst = append(e.dst, e.echo.joined[e.runLo:e.runHi]...)
	}
	e.runLo, e.runHi = 0, 0
}

// str appends text or digit field id when v is not "" (small enough to
// be inlined: an absent field costs a comparison).
func (e *posEncoder) str(id int, v string) {
	if v != "" {
		e.addStr(id, v)
	}
}

func (e *posEncoder) addStr(id int, v string) {
	if e.err != nil {
		return
	}
	if w := e.echo; w != nil {
		if k, ok := w.holds(id, v); ok {
			e.copyField(k, id)
			return
		}
		e.flush()
	}
	e.id = id
	e.dst, e.err = appendField(e.dst, &posLayouts[id], id, v)
	e.bitmap |= 1 << (64 - id)
}

// bin appends binary field id (or a digit field formatted into a
// buffer) when v is not nil.
func (e *posEncoder) bin(id int, v []byte) {
	if v != nil {
		e.addBin(id, v)
	}
}

func (e *posEncoder) addBin(id int, v []byte) {
	if e.err != nil {
		return
	}
	if e.echo != nil {
		e.flush()
	}
	e.id = id
	e.dst, e.err = appendField(e.dst, &posLayouts[id], id, v)
	e.bitmap |= 1 << (64 - id)
}

// posMaxScratch holds field 60 or 61 as formatted for packing.
const posMaxScratch = 64

// appendField appends field id's length prefix and value as its layout
// l says, without the allocations of the library's encoders for the
// codecs the dialect uses (the bytes are the same; TestGolden* pin
// them). A value whose length fits its fixed or BCD LL/LLL prefix is
// packed here; any other goes through appendFieldChecked, which packs it
// or says what is wrong.
func appendField[T string | []byte](dst []byte, l *posLayout, id int, v T) ([]byte, error) {
	if l.text && !printable(v) {
		return nil, errors.New("non-printable characters")
	}
	n := len(v)
	if n > l.length || l.codec == layoutOther {
		return appendFieldChecked(dst, l, v)
	}
	switch {
	case l.fixed && n == l.length:
	case l.varDigits == 2: // n <= l.length <= 99 (TestPOSLayouts)
		dst = append(dst, byte(n/10<<4|n%10))
	case l.varDigits == 3: // n <= l.length <= 999
		dst = append(dst, byte(n/100), byte(n/10%10<<4|n%10))
	default:
		return appendFieldChecked(dst, l, v)
	}
	if l.codec != layoutBCD {
		// ASCII fields are text fields, checked printable above.
		return append(dst, v...), nil
	}
	if l.bcd.track2 {
		return appendBCD(l.bcd, dst, v)
	}
	// appendBCD without the call.
	at, size := len(dst), (n+1)/2
	if cap(dst)-at < size {
		dst = slices.Grow(dst, size)
	}
	if packDigits(dst[at:at+size], v, l.bcd.left) {
		return dst[:at+size], nil
	}
	return appendBCDChecked(l.bcd, dst[:at], v)
}

// appendFieldChecked is appendField through the spec's prefixer and
// encoder, with their errors.
func appendFieldChecked[T string | []byte](dst []byte, l *posLayout, v T) ([]byte, error) {
	switch {
	case l.fixed:
		if len(v) != l.length {
			if _, err := l.spec.Pref.EncodeLength(l.length, len(v)); err != nil {
				return nil, err // the prefixer's own words
			}
		}
	case l.varDigits > 0:
		var err error
		if dst, err = (bcdPrefixer{l.varDigits}).appendLength(dst, l.length, len(v)); err != nil {
			return nil, err
		}
	default:
		pref, err := l.spec.Pref.EncodeLength(l.length, len(v))
		if err != nil {
			return nil, err
		}
		dst = append(dst, pref...)
	}
	switch l.codec {
	case layoutBCD:
		return appendBCD(l.bcd, dst, v)
	case layoutASCII, layoutBinary:
		return append(dst, v...), nil
	default:
		// A copy: v may be the packer's stack scratch, which must not
		// escape through the interface call.
		out, err := l.spec.Enc.Encode(append([]byte(nil), v...))
		if err != nil {
			return nil, err
		}
		return append(dst, out...), nil
	}
}

// MACFunc computes the 8-byte field 64 over a MAC block (docs/pos-dialect.md#mac-field-64); the
// switch passes a closure over the terminal's MAK in hsm. The slice it
// returns becomes the message's MAC field: it must not be reused.
type MACFunc func(block []byte) ([]byte, error)

// macPlaceholder is the field 64 packed before the MAC is known; only
// read.
var macPlaceholder [posMACLen]byte

// EncodePOSWithMAC packs m with field 64: it packs an 8-byte placeholder,
// computes mac over the block before it, and patches the result in. m.MAC
// is set to the computed MAC (the slice mac returned), or nil on error.
func EncodePOSWithMAC(m *POSMessage, mac MACFunc) ([]byte, error) {
	return AppendPOSWithMAC(make([]byte, 0, 256), m, mac)
}

// AppendPOSWithMAC is EncodePOSWithMAC appending the message to dst (the
// MAC over the message only): it returns dst extended, or nil and the
// error. A caller that frames the message packs it after room for the
// frame's head (POSFrameHeadLen, PutPOSFrameHead) instead of copying it
// into a frame after.
func AppendPOSWithMAC(dst []byte, m *POSMessage, mac MACFunc) ([]byte, error) {
	m.MAC = macPlaceholder[:]
	all, err := appendPOS(dst, m)
	m.MAC = nil
	if err != nil {
		return nil, err
	}
	packed := all[len(dst):]
	block, err := MACBlock(packed)
	if err != nil {
		return nil, err
	}
	sum, err := mac(block)
	if err != nil {
		return nil, fmt.Errorf("MAC for POS %s: %w", m.MTI, err)
	}
	if err := PatchMAC(packed, sum); err != nil {
		return nil, err
	}
	m.MAC = sum[:posMACLen:posMACLen]
	return all, nil
}

// MACBlock returns the MAC block of a packed POS message (from the MTI): all
// bytes before the final 8 bytes of field 64. It fails when bit 64 is not
// set. The block aliases packed.
func MACBlock(packed []byte) ([]byte, error) {
	if len(packed) < minPOSMessage+posMACLen {
		return nil, fmt.Errorf("%w: message of %d bytes cannot carry a MAC", ErrFormat, len(packed))
	}
	if packed[9]&0x01 == 0 {
		return nil, fmt.Errorf("%w: bitmap bit 64 (MAC) is not set", ErrFormat)
	}
	return packed[:len(packed)-posMACLen], nil
}

// PatchMAC writes the 8-byte mac over the last 8 bytes of a packed POS
// message whose bit 64 is set.
func PatchMAC(packed, mac []byte) error {
	if len(mac) != posMACLen {
		return fmt.Errorf("MAC of %d bytes, want %d", len(mac), posMACLen)
	}
	if _, err := MACBlock(packed); err != nil {
		return err
	}
	copy(packed[len(packed)-posMACLen:], mac)
	return nil
}

// TxType identifies the message (docs/pos-dialect.md#transaction-identification). For a 0400 it returns
// Reversal and the type being reversed; otherwise original is Unknown.
func (m *POSMessage) TxType() (tx, original TxType) {
	// Identify and IdentifyReversal read no further than 60.3.
	head, n := m.Reserved60.head()
	f60 := string(head[:n])
	tx = Identify(m.MTI, m.ProcessingCode, m.ConditionCode, f60)
	if tx == Reversal {
		original = IdentifyReversal(m.ProcessingCode, m.ConditionCode, f60)
	}
	return tx, original
}

// MaskedPAN returns the card number with all but the first 6 and last 4
// digits replaced by '*', the only form of it that may be logged.
func (m *POSMessage) MaskedPAN() string { return cardno.Mask(m.cardNumber()) }

// cardNumber is field 2, or the digits of track 2 before the separator.
func (m *POSMessage) cardNumber() string {
	if m.PAN != "" {
		return m.PAN
	}
	for i := 0; i < len(m.Track2); i++ {
		if m.Track2[i] == '=' {
			return m.Track2[:i]
		}
	}
	return ""
}

// CardNumber returns field 2, or the PAN from track 2 when field 2 is absent
// (swiped cards often send only track 2).
func (m *POSMessage) CardNumber() string { return m.cardNumber() }

// NewPOSResponse starts the response to req with response code rc: the
// response MTI and the fields a terminal matches and prints, echoed — 2, 3,
// 4, 11, 12, 13, 14, 25, 32, 37, 38, 41, 42, 49, 60, 61. The switch adds
// 15, 37, 38, 44, 54, 62, 63 as the transaction requires, then MACs it with
// EncodePOSWithMAC. Track 2, PIN data and IC data are never echoed.
func NewPOSResponse(req *POSMessage, rc string) *POSMessage {
	m := new(POSMessage)
	m.InitResponse(req, rc)
	return m
}

// InitResponse makes m what NewPOSResponse(req, rc) returns, every other
// field of m cleared: for a caller that keeps its answer in a message it
// already holds rather than in a new one on the heap.
func (m *POSMessage) InitResponse(req *POSMessage, rc string) {
	*m = POSMessage{
		MTI:            ResponseMTI(req.MTI),
		PAN:            req.PAN,
		ProcessingCode: req.ProcessingCode,
		Amount:         req.Amount,
		HasAmount:      req.HasAmount,
		STAN:           req.STAN,
		LocalTime:      req.LocalTime,
		LocalDate:      req.LocalDate,
		Expiry:         req.Expiry,
		ConditionCode:  req.ConditionCode,
		AcquirerID:     req.AcquirerID,
		RRN:            req.RRN,
		AuthCode:       req.AuthCode,
		ResponseCode:   rc,
		TerminalID:     req.TerminalID,
		MerchantID:     req.MerchantID,
		Currency:       req.Currency,
		Reserved60:     req.Reserved60,
		Original:       req.Original,
		echo:           req.wire,
	}
}

// RawWithout returns the message EncodePOS packs for m less the fields
// ids, cut from m.Raw instead of packed again: m must be as DecodePOS
// returned it. It reports false, and the caller packs a copy, when m has
// no Raw or its Raw is not exactly what EncodePOS packs for m — a pad
// nibble or a length prefix's pad digit other than 0, which DecodePOS
// accepts and EncodePOS never writes (TestRawWithoutSameAsEncode). Where
// the decoder's cuts are at hand and Raw is unchanged it cuts with them,
// else it walks Raw's fields again (rawWithoutWalk, the same answer).
func (m *POSMessage) RawWithout(ids ...int) ([]byte, bool) {
	w := m.wire
	// The decoder's cuts serve when every field is canonical and Raw
	// still holds what was decoded (one comparison of a few words).
	if w == nil || !w.canonical || string(m.Raw) != w.joined[:w.msgLen] {
		return m.rawWithoutWalk(ids)
	}
	var drop uint64
	for _, id := range ids {
		if id < 2 || id > posMaxFieldNumber {
			return nil, false
		}
		drop |= 1 << (64 - id)
	}
	msg := w.joined[:w.msgLen]
	out := make([]byte, minPOSMessage, len(msg))
	copy(out, msg[:2])
	binary.BigEndian.PutUint64(out[2:], w.present&^drop)
	run := minPOSMessage
	for bm := w.present & drop; bm != 0; {
		lz := bits.LeadingZeros64(bm)
		bm &^= 1 << (63 - lz)
		k, _ := w.cutAt(lz + 1)
		out = append(out, msg[run:w.start(k)]...)
		run = int(w.cuts[k].end)
	}
	return append(out, msg[run:]...), true
}

// rawWithoutWalk is RawWithout for a message without the decoder's cuts:
// it walks the fields of m.Raw again.
func (m *POSMessage) rawWithoutWalk(ids []int) ([]byte, bool) {
	msg := m.Raw
	if len(msg) < minPOSMessage {
		return nil, false
	}
	var drop uint64
	for _, id := range ids {
		if id < 2 || id > posMaxFieldNumber {
			return nil, false
		}
		drop |= 1 << (64 - id)
	}
	bitmap := binary.BigEndian.Uint64(msg[2:10])
	if bitmap&(1<<63) != 0 {
		return nil, false
	}
	out := make([]byte, minPOSMessage, len(msg))
	copy(out, msg[:2])
	binary.BigEndian.PutUint64(out[2:], bitmap&^drop)
	// The fields kept are copied a run at a time: from run to the
	// first field dropped after it.
	off, run := minPOSMessage, minPOSMessage
	for bm := bitmap; bm != 0; {
		lz := bits.LeadingZeros64(bm)
		bit := uint64(1) << (63 - lz)
		bm &^= bit
		l := &posLayouts[lz+1]
		if l.spec == nil {
			return nil, false
		}
		start, n := off, l.length
		switch {
		case l.fixed:
		case l.varDigits == 2 && off < len(msg):
			n = int(bcdByteValue[msg[off]])
			off++
		case l.varDigits == 3 && off+1 < len(msg) && msg[off]>>4 == 0:
			n = int(bcdByteValue[msg[off]]*100 + bcdByteValue[msg[off+1]])
			off += 2
		default:
			return nil, false
		}
		size := n
		if l.codec == layoutBCD {
			size = (n + 1) / 2
		}
		if n <= 0 || n > l.length || size > len(msg)-off {
			return nil, false
		}
		if l.codec == layoutBCD && n%2 != 0 {
			// The pad nibble EncodePOS writes is 0: before the digits
			// when right-aligned, after them when left-aligned.
			if pad := msg[off] >> 4; !l.bcd.left && pad != 0 {
				return nil, false
			}
			if pad := msg[off+size-1] & 0x0F; l.bcd.left && pad != 0 {
				return nil, false
			}
		}
		off += size
		if drop&bit != 0 {
			out = append(out, msg[run:start]...)
			run = off
		}
	}
	if off != len(msg) {
		return nil, false
	}
	return append(out, msg[run:]...), true
}
