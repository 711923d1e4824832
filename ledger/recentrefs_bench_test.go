package ledger

import (
	"fmt"
	"testing"
)

// BenchmarkRecentRefsPut is the put every approved consume makes: 100
// terminals in turn, each numbering its requests upwards.
func BenchmarkRecentRefsPut(b *testing.B) {
	r := newRecentRefs()
	terms := make([]string, 100)
	for i := range terms {
		terms[i] = fmt.Sprintf("7700%04d", i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.put(TxnRef{Terminal: terms[i%len(terms)], Batch: 1, STAN: uint32(i/len(terms)) % 999999},
			refValue{TxID: uint64(i + 1), Kind: KindConsume, Date: day1}, true)
	}
}
