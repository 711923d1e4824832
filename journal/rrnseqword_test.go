package journal

import (
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
