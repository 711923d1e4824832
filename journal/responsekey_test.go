package journal

import (
	"math/rand/v2"
	"testing"
)

// TestPutKeyInSameAsAppendKeyIn: the key putResponse writes in place is
// the one appendKeyIn appends (and GetResponse reads), for valid keys
// of every part length, in both spaces.
func TestPutKeyInSameAsAppendKeyIn(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	str := func(max int) string {
		b := make([]byte, 1+rng.IntN(max))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	for range 20000 {
		k := DuplicateKey{Terminal: str(maxTerminalLen), Batch: str(maxBatchLen), STAN: str(maxSTANLen), Date: str(maxDupDateLen)}
		if err := k.validate(); err != nil {
			t.Fatalf("%+v: %v", k, err)
		}
		for _, space := range [2]byte{spaceAnswered, spaceResponse} {
			want := k.appendKeyIn(nil, space)
			got := make([]byte, k.keyLen())
			k.putKeyIn(got, space)
			if string(got) != string(want) {
				t.Fatalf("%+v space %c: put %x, append %x", k, space, got, want)
			}
		}
	}
}
