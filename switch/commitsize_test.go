package switching

import (
	"fmt"
	"github.com/cardswitch/cardswitch/switch/pos"
	"strings"
	"sync"
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"
)

type committedKey struct {
	key   []byte
	value int
}

// commitKeys records the keys of each deciding batch by transaction type.
func commitKeys(t *testing.T) func(spec.TxType) [][]committedKey {
	var mu sync.Mutex
	got := map[spec.TxType][][]committedKey{}
	stop := pos.ObserveCommits(func(tx spec.TxType, b *pebble.Batch) {
		var keys []committedKey
		r := batchrepr.Read(b.Repr())
		for {
			_, k, v, ok, err := r.Next()
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				break
			}
			keys = append(keys, committedKey{append([]byte(nil), k...), len(v)})
		}
		mu.Lock()
		got[tx] = append(got[tx], keys)
		mu.Unlock()
	})
	t.Cleanup(stop)
	return func(tx spec.TxType) [][]committedKey {
		mu.Lock()
		defer mu.Unlock()
		return got[tx]
	}
}

func describeKeys(keys []committedKey) (string, int) {
	var sb strings.Builder
	total := 0
	for _, k := range keys {
		total += len(k.key) + k.value
		fmt.Fprintf(&sb, "  %q key %d value %d\n", k.key, len(k.key), k.value)
	}
	return sb.String(), total
}

// What one approved consume commits (docs/journal.md#what-one-consume-writes):
// the keys are counted exactly, the bytes bounded (names and amounts vary).
const (
	consumeCommitKeys     = 7
	consumeCommitMaxBytes = 740
)

// TestConsumeCommitSize counts the keys and bytes of the one synced batch
// an approved consume commits.
func TestConsumeCommitSize(t *testing.T) {
	sw := testSwitch(t)
	seen := commitKeys(t)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Consume(cardStudent, 3000, "")
	expectRC(t, "consume", do(t, term, req, err), spec.RCApproved)
	commits := seen(spec.Consume)
	if len(commits) != 1 {
		t.Fatalf("%d consume commits", len(commits))
	}
	s, total := describeKeys(commits[0])
	t.Logf("one consume: %d keys, %d bytes (keys + values)\n%s", len(commits[0]), total, s)
	if len(commits[0]) != consumeCommitKeys || total > consumeCommitMaxBytes {
		t.Errorf("one consume commits %d keys, %d bytes; want %d keys, at most %d bytes", len(commits[0]), total, consumeCommitKeys, consumeCommitMaxBytes)
	}
}
