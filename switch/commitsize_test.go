package switching

import (
	"encoding/binary"
	"fmt"
	"github.com/cardswitch/cardswitch/recon"
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
// the keys are counted exactly, the bytes bounded. The bound is the worst
// case, not the usual size: besides names and amounts, how well the
// journal pair packs depends on the MAC, the times and the peer's port
// (the same consume measured 385 bytes in 139 runs of 150, and up to 399).
const (
	consumeCommitKeys     = 4
	consumeCommitMaxBytes = 420
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

// TestPOSRefundAndFeeThroughTheJournal: the ledger writes no RRN index
// for POS requests (docs/journal.md#what-one-consume-writes); a refund
// still finds its original through the journal's RRN index, and the day's
// export still shows the consume's fee, through the terminal's reference.
func TestPOSRefundAndFeeThroughTheJournal(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(cardVisitor, 1000, "")
	bought := do(t, term, buy, err)
	expectRC(t, "visitor consume", bought, spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000-1050, 0)

	it, err := sw.db.NewIter(&pebble.IterOptions{LowerBound: []byte("ln"), UpperBound: []byte("lo")})
	if err != nil {
		t.Fatal(err)
	}
	if it.First() {
		t.Errorf("ledger RRN index key %q written for a POS consume", it.Key())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}

	expectRC(t, "refund 5.00", do(t, term, term.Refund(buy, bought, 500), nil), spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000-1050+525, 0)
	expectRC(t, "refund above what is left", do(t, term, term.Refund(buy, bought, 501), nil), spec.RCAmountDiffers)

	// The consume's RRN names its pair's journal sequence: no RRN index
	// key for it; the refunds' requests, which name it, have one each
	// (docs/journal.md#sequences). The operator's lookup (switchctl
	// journal show --rrn, with and without the date) finds all three.
	var consumeSeq uint64
	if es, err := sw.journal.ByRRN(bought.RRN, sw.clock.Today().String(), 10); err != nil || len(es) != 6 {
		t.Fatalf("journal by the consume's RRN: %d entries, %v; want the consume and two refunds", len(es), err)
	} else {
		consumeSeq = es[0].Seq
	}
	p := append([]byte{'j', 'r', byte(len(bought.RRN))}, bought.RRN...)
	it, err = sw.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: append(p, 0xff)})
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for ok := it.First(); ok; ok = it.Next() {
		if keys++; binary.BigEndian.Uint64(it.Key()[len(it.Key())-8:]) == consumeSeq {
			t.Errorf("RRN index key for the consume at %d", consumeSeq)
		}
	}
	if err := it.Close(); err != nil || keys != 2 {
		t.Fatalf("%d RRN index keys for the consume's RRN (%v), want the two refunds'", keys, err)
	}
	_, _, admin := sw.Addrs()
	for _, q := range []string{"", "&date=" + sw.clock.Today().String()} {
		var got []struct {
			Seq       uint64
			Direction string
			RRN       string
		}
		adminGet(t, admin, "/api/v1/journal?rrn="+bought.RRN+q, &got)
		if len(got) != 6 || got[0].Seq != consumeSeq || got[1].RRN != bought.RRN || got[2].RRN != bought.RRN {
			t.Fatalf("GET /api/v1/journal?rrn=%s%s: %+v", bought.RRN, q, got)
		}
	}

	var fees []string
	src := recon.Source{Journal: sw.journal, Books: sw.db}
	if err := src.ScanDay(sw.clock.Today(), func(r *recon.Row) error {
		fees = append(fees, fmt.Sprintf("%s/%s:%d:%d", r.TxType, r.ResponseCode, r.Amount, r.Fee))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fees, " "); !strings.HasPrefix(got, "consume/00:1000:50 refund/00:500:") {
		t.Fatalf("export rows %q, want the consume with its fee 50 and the refund", got)
	}
}
