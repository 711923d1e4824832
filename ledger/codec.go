package ledger

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
)

// The ledger's records are encoded in a small hand-written binary format:
// unsigned and signed varints, and length-prefixed byte strings. It is
// faster than JSON on the hot path and every decoder below is bounded and
// fuzzed: a stored record is input like any other.

// Bounds on decoded records.
const (
	maxField    = 256  // any one string or byte field
	maxLegs     = 16   // postings in one operation
	maxHolds    = 64   // holds on one card (the operating limit is Options.MaxHoldsPerCard)
	maxContribs = 4096 // counterparty accounts one card has touched
	recordV1    = 1
	recordV2    = 2 // idempotency records with a business date; postings and cards with tagged accounts; purse records with packed digits
	recordV3    = 3 // postings with packed digits, day-numbered dates and fields implied by others; purse records with shared merchant id prefixes
	recordV4    = 4 // postings with leg amounts named by their relation to the amount and fee
)

type encoder struct{ b []byte }

func (e *encoder) u(v uint64)          { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i(v int64)           { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) fen(v Fen)           { e.i(int64(v)) }
func (e *encoder) byte1(v uint8)       { e.b = append(e.b, v) }
func (e *encoder) str(s string)        { e.u(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(s []byte)      { e.u(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) date(d BusinessDate) { e.u(uint64(d)) }
func (e *encoder) boolean(v bool) {
	if v {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
}

// decoder reads what encoder wrote; the first error sticks and every later
// read returns zero values, so record decoders check err once at the end.
// Varints must be minimal, so that one value has one encoding.
type decoder struct {
	b       []byte
	err     error
	scratch [binary.MaxVarintLen64]byte
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
}

func (d *decoder) u() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != len(binary.AppendUvarint(d.scratch[:0], v)) {
		d.fail("bad or non-minimal uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || n != len(binary.AppendVarint(d.scratch[:0], v)) {
		d.fail("bad or non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// fen reads an amount and bounds it: no stored amount, balance or
// contribution may exceed the sum of many MaxAmounts.
func (d *decoder) fen() Fen {
	v := d.i()
	if v > 1<<60 || v < -(1<<60) {
		d.fail("amount out of range")
		return 0
	}
	return Fen(v)
}

func (d *decoder) byte1() uint8 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("short record")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) boolean() bool {
	v := d.byte1()
	if v > 1 {
		d.fail("bad bool")
	}
	return v == 1
}

func (d *decoder) raw() []byte {
	n := d.u()
	if d.err != nil {
		return nil
	}
	if n > maxField || n > uint64(len(d.b)) {
		d.fail("field too long")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.raw()) }

func (d *decoder) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) date() BusinessDate {
	v := d.u()
	if v > 99991231 {
		d.fail("bad date")
		return 0
	}
	return BusinessDate(v)
}

func (d *decoder) count(max int, what string) int {
	n := d.u()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) || n > uint64(len(d.b)) { // each item takes at least one byte
		d.fail("too many " + what)
		return 0
	}
	return int(n)
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// Version 3 postings and version 2 purse records store digit strings
// (card numbers, terminal and merchant ids, RRNs, auth codes) packed two
// digits a byte, and dates as day numbers. Each value still has one
// encoding: the decoders refuse a longer form of what a shorter one says.

// digits writes s as a uvarint len<<1|packed and then, packed (every
// byte of a non-empty s a decimal digit), the digits two a byte, high
// nibble first, a last odd digit's low nibble 0; else the bytes.
//
// Every posting set and purse record carries a few of them (card number,
// terminal, merchant, RRN), so digits are checked and packed 8 at a time
// (digits8) into room grown once.
func (e *encoder) digits(s string) {
	n := len(s)
	if n < 8 || n >= 64 {
		e.digitsShort(s)
		return
	}
	// Checked and packed in one pass, 8 digits a word (the pairs left
	// over packed again with the 8 before them, overlapping), the
	// packed form taken back for the bytes when one is not a digit.
	start, k := len(e.b), (n+1)/2
	if cap(e.b)-start < 1+k {
		e.b = slices.Grow(e.b, 1+k)
	}
	e.b = e.b[:start+1+k]
	e.b[start] = byte(n<<1 | 1) // the uvarint of a length below 64 is one byte
	out := e.b[start+1:]
	pairs := n &^ 1 // the digits that fill whole bytes
	var bad uint64
	i := 0
	for ; i+8 <= pairs; i += 8 {
		x := digits8(s[i:])
		bad |= notDigits8(x)
		binary.LittleEndian.PutUint32(out[i/2:], pack8(x-0x3030303030303030))
	}
	if i < pairs {
		x := digits8(s[pairs-8:])
		bad |= notDigits8(x)
		binary.LittleEndian.PutUint32(out[pairs/2-4:], pack8(x-0x3030303030303030))
	}
	if pairs < n {
		c := s[pairs]
		if c < '0' || c > '9' {
			bad = 1
		}
		out[pairs/2] = (c - '0') << 4
	}
	if bad != 0 {
		e.b = e.b[:start]
		e.u(uint64(n) << 1)
		e.b = append(e.b, s...)
	}
}

// digitsEncoding returns digits' encoding of s.
func digitsEncoding(s string) string {
	e := encoder{b: make([]byte, 0, 1+len(s))}
	e.digits(s)
	return string(e.b)
}

// digitsShort is digits for strings of under 8 or 64 and more bytes.
func (e *encoder) digitsShort(s string) {
	if !allDigits(s) {
		e.u(uint64(len(s)) << 1)
		e.b = append(e.b, s...)
		return
	}
	e.u(uint64(len(s))<<1 | 1)
	for i := 0; i < len(s); i += 2 {
		v := (s[i] - '0') << 4
		if i+1 < len(s) {
			v |= s[i+1] - '0'
		}
		e.b = append(e.b, v)
	}
}

// notDigits8 has the top bit of each byte of x set that is not a decimal
// digit, and perhaps of bytes above it (never when all are digits): b is
// a digit when b-'0' does not borrow, b+0x46 does not reach 0x80 and b is
// below 0x80, and the first byte that is not sets its own top bit
// whatever borrow or carry comes in from below.
func notDigits8(x uint64) uint64 {
	return ((x - 0x3030303030303030) | (x + 0x4646464646464646) | x) & 0x8080808080808080
}

// digits8 loads the first 8 bytes of s as a little-endian word.
func digits8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// pack8 packs 8 digit values (0..9, one a byte, the first lowest) two a
// byte, the first of each pair in the high nibble, into 4 bytes (the first
// pair lowest).
func pack8(v uint64) uint32 {
	v = (v&0x00FF00FF00FF00FF)<<4 | (v>>8)&0x00FF00FF00FF00FF // each 16-bit lane: first<<4 | second
	v = (v | v>>8) & 0x0000FFFF0000FFFF
	v = (v | v>>16) & 0x00000000FFFFFFFF
	return uint32(v)
}

// allDigits reports whether s is non-empty and all decimal digits.
func allDigits(s string) bool {
	if len(s) < 8 {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return s != ""
	}
	// The last word is the last 8 bytes, overlapping the one before.
	var bad uint64
	for i := 0; i+8 <= len(s); i += 8 {
		bad |= notDigits8(digits8(s[i:]))
	}
	return bad|notDigits8(digits8(s[len(s)-8:])) == 0
}

func (d *decoder) digits() string {
	h := d.u()
	n := h >> 1
	if d.err != nil {
		return ""
	}
	if n > maxField {
		d.fail("field too long")
		return ""
	}
	if h&1 == 0 {
		if n > uint64(len(d.b)) {
			d.fail("field too long")
			return ""
		}
		s := string(d.b[:n])
		d.b = d.b[n:]
		if allDigits(s) {
			d.fail("digits not packed")
		}
		return s
	}
	k := (n + 1) / 2
	if n == 0 || k > uint64(len(d.b)) {
		d.fail("bad packed digits")
		return ""
	}
	var buf [maxField]byte
	for i := uint64(0); i < n; i++ {
		v := d.b[i/2] >> 4
		if i%2 == 1 {
			v = d.b[i/2] & 15
		}
		if v > 9 {
			d.fail("bad packed digit")
			return ""
		}
		buf[i] = '0' + v
	}
	if n%2 == 1 && d.b[k-1]&15 != 0 {
		d.fail("bad packed digits padding")
		return ""
	}
	d.b = d.b[k:]
	return string(buf[:n])
}

// A day (version 3 postings, version 2 purse records) is a uvarint: 0 for
// no date; 1 + the days since 2000-01-01 for a valid date (two bytes
// until 2044); dayRaw + the number YYYYMMDD for anything else.
const dayRaw = 1 << 22 // past 9999-12-31's day

var (
	day2000     = BusinessDate(20000101).time()
	day2000Days = BusinessDate(20000101).days()
)

func (e *encoder) day(d BusinessDate) {
	if d == 0 {
		e.u(0)
		return
	}
	// Nearly every record carries the business date of today: the last
	// valid date encoded and its number are kept.
	if c := lastDay.Load(); c>>32 == uint64(d) {
		e.u(c & (1<<32 - 1))
		return
	}
	if !d.Valid() {
		e.u(dayRaw + uint64(d))
		return
	}
	v := uint64(1 + d.days() - day2000Days)
	lastDay.Store(uint64(d)<<32 | v)
	e.u(v)
}

// lastDay is the last valid date day encoded (high 32 bits) and its day
// number (low 32 bits: below dayRaw); 0 before the first.
var lastDay atomic.Uint64

func (d *decoder) day() BusinessDate {
	v := d.u()
	switch {
	case d.err != nil || v == 0:
		return 0
	case v < dayRaw:
		b := DateOf(day2000.AddDate(0, 0, int(v-1)))
		if !b.Valid() {
			d.fail("bad date")
			return 0
		}
		return b
	}
	b := BusinessDate(v - dayRaw)
	if v-dayRaw > 99991231 || b == 0 || b.Valid() {
		d.fail("bad date")
		return 0
	}
	return b
}

func (d *decoder) version() {
	if v := d.byte1(); d.err == nil && v != recordV1 {
		d.fail(fmt.Sprintf("unknown record version %d", v))
	}
}

// Accounts in version 2 records are one tag byte, followed by what the
// tag does not imply: the purses of the record's own card and the
// merchant of the posting cost one byte, where version 1 spelled out
// "card/6230151000000000012/subsidy" (docs/ledger.md#key-layout-prefix-l).
// Every account has one encoding: the decoder refuses a longer form of an
// account a shorter tag names.
const (
	acctOther       = 0 // the account id as a string
	acctOwnCash     = 1 // card/PAN/cash of the record's card
	acctOwnSubsidy  = 2 // card/PAN/subsidy of the record's card
	acctOwnMerchant = 3 // merchant/ID of the posting's merchant
	acctMerchant    = 4 // merchant/ + the ID as a string
	acctSystem      = 5 // 5 + i: wellKnown[i]
)

// wellKnown are the system accounts with a tag of their own; new ones go
// at the end (a tag, once written, names its account for ever).
var wellKnown = [...]AccountID{FeeIncome, CashLoadClearing, SubsidyFunding, OpeningFunds, RefundPayable, CardReceivable, PendingLoads}

// accountTag returns the tag of a and the string stored after it ("" when
// the tag says everything). pan and merchant are the record's own card
// and merchant ("" where the record has none).
//
// The first byte says which of the classes the account can be (card/,
// merchant/, system/): each record's accounts are tagged on every write.
func accountTag(a AccountID, pan, merchant string) (uint8, string) {
	s := string(a)
	if s == "" {
		return acctOther, s
	}
	switch s[0] {
	case 'c':
		if pan != "" && len(s) > len("card/")+len(pan) && s[:len("card/")] == "card/" && s[len("card/"):len("card/")+len(pan)] == pan {
			switch s[len("card/")+len(pan):] {
			case "/cash":
				return acctOwnCash, ""
			case "/subsidy":
				return acctOwnSubsidy, ""
			}
		}
	case 'm':
		if id, ok := cutPrefix(s, "merchant/"); ok {
			if merchant != "" && id == merchant {
				return acctOwnMerchant, ""
			}
			return acctMerchant, id
		}
	case 's':
		for i, w := range wellKnown {
			if a == w {
				return acctSystem + uint8(i), ""
			}
		}
	}
	return acctOther, s
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// account writes a tagged account; packed (version 3 postings, version
// 2 purse records) writes a merchant's id as digits.
func (e *encoder) account(a AccountID, pan, merchant string, packed bool) {
	tag, rest := accountTag(a, pan, merchant)
	e.accountAs(tag, rest, packed)
}

// accountAs writes an account whose tag and rest accountTag returned.
func (e *encoder) accountAs(tag uint8, rest string, packed bool) {
	e.byte1(tag)
	switch {
	case tag == acctMerchant && packed:
		e.digits(rest)
	case tag == acctOther || tag == acctMerchant:
		e.str(rest)
	}
}

func (d *decoder) account(pan, merchant string, packed bool) AccountID {
	return d.accountTagged(d.byte1(), pan, merchant, packed)
}

// accountTagged reads the rest of an account whose tag was read.
func (d *decoder) accountTagged(tag uint8, pan, merchant string, packed bool) AccountID {
	if d.err != nil {
		return ""
	}
	var a AccountID
	switch {
	case tag == acctOther:
		a = AccountID(d.str())
	case tag == acctOwnCash && pan != "":
		a = CardCash(pan)
	case tag == acctOwnSubsidy && pan != "":
		a = CardSubsidy(pan)
	case tag == acctOwnMerchant && merchant != "":
		a = MerchantPayable(merchant)
	case tag == acctMerchant && packed:
		a = MerchantPayable(d.digits())
	case tag == acctMerchant:
		a = MerchantPayable(d.str())
	case tag >= acctSystem && int(tag-acctSystem) < len(wellKnown):
		a = wellKnown[tag-acctSystem]
	default:
		d.fail(fmt.Sprintf("bad account tag %d", tag))
		return ""
	}
	if d.err == nil {
		if t, _ := accountTag(a, pan, merchant); t != tag {
			d.fail("account not in its shortest form")
		}
	}
	return a
}
