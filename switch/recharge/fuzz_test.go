package recharge

import (
	"testing"
	"unicode/utf8"
)

// A stored order record that decodes encodes back to the same bytes; no
// input panics.
func FuzzDecodeOrder(f *testing.F) {
	rec := orderRecord{State: StateApproved, PAN: panEmpty, ProcCode: "210000", Amount: 5000, Currency: "156",
		RC: "00", RRN: "338000000001", AuthCode: "000001", TxID: 7, Date: today}
	f.Add(rec.encode())
	f.Add([]byte{recordV1, 'T'})
	f.Add([]byte{recordV2, 'A', 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeOrder(b)
		if err != nil {
			return
		}
		if again, err := decodeOrder(r.encode()); err != nil || again != r {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}

// Name normalization is idempotent and keeps UTF-8 valid.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"Li Lei", "\u3000赵敏 ", "Jose\u0301", "a\tb\u00a0c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4*MaxNameBytes {
			return
		}
		n := NormalizeName(s)
		if utf8.ValidString(s) && !utf8.ValidString(n) {
			t.Fatalf("%q normalized to invalid UTF-8 %q", s, n)
		}
		if NormalizeName(n) != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, NormalizeName(n))
		}
		if !NamesMatch(s, n) {
			t.Fatalf("%q does not match its own normal form", s)
		}
	})
}
