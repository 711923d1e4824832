package spec

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/prefix"
)

// Hand-checked vectors: docs/pos-dialect.md#fields "left" pads an odd length with a trailing
// 0 nibble, "right" with a leading 0 nibble.
func TestBCDVectors(t *testing.T) {
	tests := []struct {
		name  string
		enc   encoding.Encoder
		in    string
		bytes string // hex
	}{
		{"right even", FastBCD, "000001", "000001"},
		{"right odd", FastBCD, "123", "0123"},
		{"right one", FastBCD, "7", "07"},
		{"right empty", FastBCD, "", ""},
		{"left odd", FastLBCD, "123", "1230"},
		{"left card 19", FastLBCD, "6230151000000000012", "62301510000000000120"},
		{"left even", FastLBCD, "0200", "0200"},
		{"track2 separator", Track2BCD, "6230151000000000012=3012", "6230151000000000012D3012"},
		{"track2 odd", Track2BCD, "62=1", "62D1"},
		{"track2 odd pad", Track2BCD, "623=1", "623D10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := mustHex(t, tc.bytes)
			got, err := tc.enc.Encode([]byte(tc.in))
			if err != nil {
				t.Fatalf("Encode(%q): %v", tc.in, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode(%q) = %X, want %X", tc.in, got, want)
			}
			dec, n, err := tc.enc.Decode(append(want, 0xEE), len(tc.in))
			if err != nil || n != len(want) || string(dec) != tc.in {
				t.Fatalf("Decode = %q, %d, %v; want %q, %d", dec, n, err, tc.in, len(want))
			}
		})
	}
}

func TestBCDRejects(t *testing.T) {
	encodeBad := []struct {
		enc encoding.Encoder
		in  string
	}{
		{FastBCD, "12a4"}, {FastBCD, "="}, {FastLBCD, "1 2"}, {FastLBCD, "12D"},
		{Track2BCD, "12D3"}, {Track2BCD, "12?3"},
	}
	for _, tc := range encodeBad {
		if _, err := tc.enc.Encode([]byte(tc.in)); !errors.Is(err, ErrBadBCD) {
			t.Errorf("Encode(%q) err = %v, want ErrBadBCD", tc.in, err)
		}
	}
	decodeBad := []struct {
		name string
		enc  encoding.Encoder
		in   string
		n    int
	}{
		{"short", FastBCD, "12", 3},
		{"nibble A", FastBCD, "1A", 2},
		{"right pad F", FastBCD, "F1", 1},
		{"left pad A", FastLBCD, "1A", 1},
		{"D outside track2", FastLBCD, "1D", 2},
		{"track2 nibble E", Track2BCD, "1E", 2},
		{"negative", FastBCD, "12", -1},
	}
	for _, tc := range decodeBad {
		if _, _, err := tc.enc.Decode(mustHex(t, tc.in), tc.n); !errors.Is(err, ErrBadBCD) {
			t.Errorf("%s: Decode err = %v, want ErrBadBCD", tc.name, err)
		}
	}
	// A left-aligned odd field may end with an F pad, as terminals send for
	// card numbers; the library accepts it too.
	if got, _, err := FastLBCD.Decode(mustHex(t, "123F"), 3); err != nil || string(got) != "123" {
		t.Errorf("LBCD with F pad = %q, %v", got, err)
	}
}

func randDigits(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return b
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// The fast codecs must give the library's bytes for every digit string and
// the library's digits for every valid encoding.
func TestFastBCDMatchesLibrary(t *testing.T) {
	pairs := []struct {
		name       string
		fast, slow encoding.Encoder
	}{
		{"BCD", FastBCD, encoding.BCD},
		{"LBCD", FastLBCD, encoding.LBCD},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			for i := 0; i < 5000; i++ {
				in := randDigits(r, r.IntN(40))
				want, err1 := p.slow.Encode(append([]byte(nil), in...))
				got, err2 := p.fast.Encode(in)
				if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
					t.Fatalf("Encode(%s): fast %X %v, library %X %v", in, got, err2, want, err1)
				}
				d1, n1, err1 := p.slow.Decode(want, len(in))
				d2, n2, err2 := p.fast.Decode(want, len(in))
				if err1 != nil || err2 != nil || n1 != n2 || !bytes.Equal(d1, d2) || string(d2) != string(in) {
					t.Fatalf("Decode(%X): fast %q %d %v, library %q %d %v", want, d2, n2, err2, d1, n1, err1)
				}
			}
			// Random bytes: wherever the library yields digits, we yield the
			// same; wherever we succeed, the library agrees.
			for i := 0; i < 20000; i++ {
				src := make([]byte, r.IntN(6))
				for j := range src {
					src[j] = byte(r.IntN(256))
				}
				n := r.IntN(2*len(src) + 2)
				d1, n1, err1 := p.slow.Decode(src, n)
				d2, n2, err2 := p.fast.Decode(src, n)
				libOK := err1 == nil && allDigits(d1)
				if libOK != (err2 == nil) {
					t.Fatalf("Decode(%X, %d): fast %q %v, library %q %v", src, n, d2, err2, d1, err1)
				}
				if libOK && (n1 != n2 || !bytes.Equal(d1, d2)) {
					t.Fatalf("Decode(%X, %d): fast %q/%d, library %q/%d", src, n, d2, n2, d1, n1)
				}
			}
		})
	}
}

func TestFastBCDPrefixMatchesLibrary(t *testing.T) {
	pairs := []struct {
		name       string
		fast, slow prefix.Prefixer
		max        int
	}{
		{"L", FastBCDPrefix.L, prefix.BCD.L, 9},
		{"LL", FastBCDPrefix.LL, prefix.BCD.LL, 99},
		{"LLL", FastBCDPrefix.LLL, prefix.BCD.LLL, 999},
		{"LLLL", FastBCDPrefix.LLLL, prefix.BCD.LLLL, 9999},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			if p.fast.Inspect() != p.slow.Inspect() {
				t.Errorf("Inspect %q vs %q", p.fast.Inspect(), p.slow.Inspect())
			}
			for n := 0; n <= p.max+1; n++ {
				want, err1 := p.slow.EncodeLength(p.max+1, n)
				got, err2 := p.fast.EncodeLength(p.max+1, n)
				if (err1 == nil) != (err2 == nil) || !bytes.Equal(got, want) {
					t.Fatalf("EncodeLength(%d): fast %X %v, library %X %v", n, got, err2, want, err1)
				}
				if err1 != nil {
					continue
				}
				for _, max := range []int{n, n - 1} {
					l1, r1, e1 := p.slow.DecodeLength(max, want)
					l2, r2, e2 := p.fast.DecodeLength(max, want)
					if (e1 == nil) != (e2 == nil) || l1 != l2 || r1 != r2 {
						t.Fatalf("DecodeLength(%d, %X): fast %d %d %v, library %d %d %v", max, want, l2, r2, e2, l1, r1, e1)
					}
				}
			}
			// Every 1- and 2-byte prefix decodes the same way.
			for v := 0; v < 65536; v++ {
				src := []byte{byte(v >> 8), byte(v)}
				l1, r1, e1 := p.slow.DecodeLength(10000, src)
				l2, r2, e2 := p.fast.DecodeLength(10000, src)
				if (e1 == nil) != (e2 == nil) || l1 != l2 || r1 != r2 {
					t.Fatalf("DecodeLength(%X): fast %d %d %v, library %d %d %v", src, l2, r2, e2, l1, r1, e1)
				}
			}
		})
	}
	if _, err := FastBCDPrefix.LL.EncodeLength(200, 100); err == nil {
		t.Fatal("LL accepted a 3-digit length")
	}
	if _, _, err := FastBCDPrefix.LLL.DecodeLength(999, []byte{0x01}); err == nil {
		t.Fatal("LLL decoded from 1 byte")
	}
}

func FuzzBCD(f *testing.F) {
	f.Add([]byte{0x12, 0x3F}, 3, uint8(0))
	f.Add([]byte{0x62, 0xD1}, 4, uint8(2))
	f.Fuzz(func(t *testing.T, src []byte, n int, which uint8) {
		if n < 0 || n > 4*len(src)+4 {
			return
		}
		enc := []encoding.Encoder{FastBCD, FastLBCD, Track2BCD}[int(which)%3]
		d, read, err := enc.Decode(src, n)
		if err != nil {
			return
		}
		if len(d) != n || read != (n+1)/2 {
			t.Fatalf("decoded %d chars / %d bytes for length %d", len(d), read, n)
		}
		re, err := enc.Encode(d)
		if err != nil {
			t.Fatalf("re-encode %q: %v", d, err)
		}
		d2, _, err := enc.Decode(re, n)
		if err != nil || !bytes.Equal(d, d2) {
			t.Fatalf("decode→encode→decode: %q → %X → %q %v", d, re, d2, err)
		}
	})
}

func FuzzBCDPrefix(f *testing.F) {
	f.Add([]byte{0x01, 0x23}, uint8(3))
	f.Fuzz(func(t *testing.T, src []byte, digits uint8) {
		p := bcdPrefixer{int(digits%6) + 1}
		l, n, err := p.DecodeLength(1000000, src)
		if err != nil {
			return
		}
		re, err := p.EncodeLength(1000000, l)
		if err != nil || len(re) != n {
			t.Fatalf("re-encode %d: %X %v", l, re, err)
		}
		if l2, _, _ := p.DecodeLength(1000000, re); l2 != l {
			t.Fatalf("length %d re-decoded as %d", l, l2)
		}
	})
}

func BenchmarkBCDEncodeDecode(b *testing.B) {
	in := []byte("6230151000000000012")
	for _, c := range []struct {
		name string
		enc  encoding.Encoder
	}{{"fast-lbcd", FastLBCD}, {"library-lbcd", encoding.LBCD}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, _ := c.enc.Encode(in)
				if _, _, err := c.enc.Decode(p, len(in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
