package ledger

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// digitsReference is encoder.digits and allDigits as they were written
// one byte at a time, kept as the reference for the word-at-a-time ones.
func digitsReference(dst []byte, s string) []byte {
	all := s != ""
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			all = false
		}
	}
	e := encoder{b: dst}
	if !all {
		e.u(uint64(len(s)) << 1)
		return append(e.b, s...)
	}
	e.u(uint64(len(s))<<1 | 1)
	for i := 0; i < len(s); i += 2 {
		v := (s[i] - '0') << 4
		if i+1 < len(s) {
			v |= s[i+1] - '0'
		}
		e.b = append(e.b, v)
	}
	return e.b
}

// TestDigitsMatchesReference compares the packed encoding with the
// reference on hand-picked strings (every byte value next to the digits,
// in every position of a word) and random ones of every length to 80 (the one-pass packing runs for 8..63),
// appended after existing bytes, and checks that the decoder reads each
// back.
func TestDigitsMatchesReference(t *testing.T) {
	check := func(prefix []byte, s string) {
		t.Helper()
		want := digitsReference(append([]byte(nil), prefix...), s)
		e := encoder{b: append([]byte(nil), prefix...)}
		e.digits(s)
		if !bytes.Equal(e.b, want) {
			t.Fatalf("digits(%q) = % x, want % x", s, e.b, want)
		}
		if len(s) <= maxField {
			d := decoder{b: e.b[len(prefix):]}
			if got := d.digits(); got != s || d.done() != nil {
				t.Fatalf("digits(%q) decodes to %q, %v", s, got, d.err)
			}
		}
	}
	check(nil, "")
	check(nil, "6230151000000000012")
	check([]byte{1, 2, 3}, "898310000000001")
	for n := 1; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := bytes.Repeat([]byte{'7'}, n)
				b[pos] = byte(c)
				check(nil, string(b))
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		b := make([]byte, r.IntN(81))
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
			if r.IntN(50) == 0 {
				b[i] = byte(r.IntN(256))
			}
		}
		check(make([]byte, r.IntN(5)), string(b))
	}
}
