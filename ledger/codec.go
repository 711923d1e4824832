package ledger

import (
	"encoding/binary"
	"fmt"
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
	recordV2    = 2 // idempotency records with a business date; postings and cards with tagged accounts
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
func accountTag(a AccountID, pan, merchant string) (uint8, string) {
	s := string(a)
	if pan != "" && len(s) > len("card/")+len(pan) && s[:len("card/")] == "card/" && s[len("card/"):len("card/")+len(pan)] == pan {
		switch s[len("card/")+len(pan):] {
		case "/cash":
			return acctOwnCash, ""
		case "/subsidy":
			return acctOwnSubsidy, ""
		}
	}
	if id, ok := cutPrefix(s, "merchant/"); ok {
		if merchant != "" && id == merchant {
			return acctOwnMerchant, ""
		}
		return acctMerchant, id
	}
	for i, w := range wellKnown {
		if a == w {
			return acctSystem + uint8(i), ""
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

func (e *encoder) account(a AccountID, pan, merchant string) {
	tag, rest := accountTag(a, pan, merchant)
	e.byte1(tag)
	if tag == acctOther || tag == acctMerchant {
		e.str(rest)
	}
}

func (d *decoder) account(pan, merchant string) AccountID {
	tag := d.byte1()
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
