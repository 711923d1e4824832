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
	recordV2    = 2 // idempotency records with a business date
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
