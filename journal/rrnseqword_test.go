package journal

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// rrnSeqRef is rrnSeq a character at a time, the reference.
func rrnSeqRef(rrn string, d uint32) (seq uint64, ok bool) {
	if len(rrn) != rrnLen || d == 0 {
		return 0, false
	}
	var y int
	var c uint64
	for i := 0; i < rrnLen; i++ {
		ch := rrn[i]
		if ch < '0' || ch > '9' {
			return 0, false
		}
		if i < 3 {
			y = y*10 + int(ch-'0')
		} else {
			c = c*10 + uint64(ch-'0')
		}
	}
	if c == 0 || y != dayOfYear(d) {
		return 0, false
	}
	return dayStart(d) + c, true
}

// TestRRNSeqSameAsReference: rrnSeq, a word at a time, answers as the
// reference does for RRNs of every day of a year, each position set to
// every byte value, and random digits.
func TestRRNSeqSameAsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	check := func(rrn string, d uint32) {
		s, ok := rrnSeq(rrn, d)
		rs, rok := rrnSeqRef(rrn, d)
		if s != rs || ok != rok {
			t.Fatalf("rrnSeq(%q, %d) = %d %v, reference %d %v", rrn, d, s, ok, rs, rok)
		}
	}
	day0 := uint32(20454) // 2026-01-01
	for k := uint32(0); k < 366; k++ {
		d := day0 + k
		y := dayOfYear(d)
		for range 20 {
			b := []byte{byte('0' + y/100), byte('0' + y/10%10), byte('0' + y%10)}
			for range 9 {
				b = append(b, byte('0'+rng.IntN(10)))
			}
			check(string(b), d)
			check(string(b), d+1)
			i, v := rng.IntN(rrnLen), byte(rng.IntN(256))
			b[i] = v
			check(string(b), d)
		}
	}
	base := []byte("338999999999")
	for i := range base {
		for v := range 256 {
			b := append([]byte(nil), base...)
			b[i] = byte(v)
			check(string(b), day0+337)
		}
	}
	for _, s := range []string{"", "33800000000", "3380000000000", "338000000000", "338000000001", "000000000001", "366999999999"} {
		check(s, day0+337)
		check(s, 0)
	}
}

// seqRRNRef is seqRRN a digit at a time, the reference.
func seqRRNRef(seq uint64) string {
	d, c := seqDay(seq), seqCounter(seq)
	if d == 0 || c == 0 || c >= rrnSpan {
		return ""
	}
	var b [rrnLen]byte
	for i := rrnLen - 1; i >= 3; i-- {
		b[i] = byte('0' + c%10)
		c /= 10
	}
	y := dayOfYear(d)
	for i := 2; i >= 0; i-- {
		b[i] = byte('0' + y%10)
		y /= 10
	}
	return string(b[:])
}

// TestSeqRRNSameAsReference: seqRRN, 8 digits in one word, gives the
// reference's RRN for every day of a year, counters of every length and
// at the bounds, random counters; digits8 is strconv's for every value
// below 10^6, the largest, and random ones.
func TestSeqRRNSameAsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	day0 := uint32(20454)
	for k := uint32(0); k < 366; k++ {
		d := day0 + k
		for _, c := range []uint64{0, 1, 9, 10, 99, 100, 9999, 10000, 99999999, 100000000, 100000001, rrnSpan - 1, rrnSpan, rrnSpan + 1, rng.Uint64N(rrnSpan), rng.Uint64N(10000)} {
			seq := dayStart(d) + c
			if got, want := seqRRN(seq), seqRRNRef(seq); got != want {
				t.Fatalf("seqRRN(day %d counter %d) = %q, reference %q", d, c, got, want)
			}
		}
	}
	check := func(v uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], digits8(v))
		if want := fmt.Sprintf("%08d", v); string(b[:]) != want {
			t.Fatalf("digits8(%d) = %q, want %q", v, b[:], want)
		}
	}
	for v := uint64(0); v < 1_000_000; v++ {
		check(v)
	}
	for range 200000 {
		check(rng.Uint64N(100_000_000))
	}
	check(99_999_999)
}
