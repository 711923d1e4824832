package ledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TestRecentReferencesMatchStore: whatever the ledger answers from its
// memory of recent references is what Pebble holds — across reused
// references (a few STANs on three days), the old layout ('l r') and the
// caller's index mixed, voids, reversals and refunds, and a reopen (which
// starts with nothing remembered). Every lookup of every reference is
// checked after every operation.
func TestRecentReferencesMatchStore(t *testing.T) {
	l, db := keptLedger(t)
	rng := rand.New(rand.NewPCG(7, 17))
	refOf := func(stan uint32) TxnRef { return TxnRef{Terminal: "10000001", Batch: 1, STAN: stan} }
	req := func(stan uint32, d BusinessDate) Common {
		c := pos("10000001", canteen, d)
		c.STAN = stan
		return c
	}
	hits := 0
	check := func(step int) {
		t.Helper()
		for s := uint32(1); s <= 6; s++ {
			r := refOf(s)
			disk, found, err := resolveRef(db, testRefs{}, r, func(id uint64) (*posting, error) { return loadPostingFrom(db, id) })
			if err != nil {
				t.Fatal(err)
			}
			mem, ok := l.recent.get(r, true)
			if !ok {
				continue
			}
			hits++
			if !found || mem != disk {
				t.Fatalf("step %d: reference %s: remembered %+v, store %+v (found %v)", step, r, mem, disk, found)
			}
		}
	}
	for step := 0; step < 600; step++ {
		d := day1.AddDays(rng.IntN(3))
		stan := uint32(1 + rng.IntN(6))
		orig := refOf(uint32(1 + rng.IntN(6)))
		run := execKept
		if rng.IntN(4) == 0 {
			run = exec // the old layout: the ledger's own 'l r'
		}
		switch rng.IntN(5) {
		case 0, 1:
			run(t, l, &Consume{Common: req(stan, d), PAN: panStaff, Amount: Fen(1 + rng.IntN(50))})
		case 2:
			// Whatever the original's amount, a void of the wrong one is
			// declined: both outcomes are checked alike.
			run(t, l, &Void{Common: req(stan, d), PAN: panStaff, Amount: Fen(1 + rng.IntN(50)), Original: orig})
		case 3:
			run(t, l, &Reversal{Common: req(orig.STAN, d), PAN: panStaff, Original: orig, OriginalKind: KindConsume})
		case 4:
			if v, ok, err := resolveRef(db, testRefs{}, orig, func(id uint64) (*posting, error) { return loadPostingFrom(db, id) }); err == nil && ok {
				p, err := loadPostingFrom(db, v.TxID)
				if err != nil || p == nil {
					t.Fatalf("posting %d: %v", v.TxID, err)
				}
				c := req(stan, d)
				c.RRNIndexedByCaller = true
				run(t, l, &Refund{Common: c, Amount: 1, OriginalRRN: p.RRN, OriginalDate: p.Date, OriginalRef: orig})
			}
		}
		check(step)
		if step == 300 {
			l2, err := Open(db, Options{})
			if err != nil {
				t.Fatal(err)
			}
			l2.UseReferences(testRefs{})
			l = l2
			if _, ok := l.recent.get(orig, true); ok {
				t.Fatal("a reopened ledger remembers a reference")
			}
		}
	}
	if hits < 100 {
		t.Fatalf("only %d lookups answered from memory: the test checks nothing", hits)
	}
	checkStore(t, db)
}

// TestRecentReferencesBounds: a reference only the caller's index holds
// is not answered without that index (UseReferences); forget, eviction
// and age drop entries.
func TestRecentReferencesBounds(t *testing.T) {
	l, _ := keptLedger(t)
	c := pos("10000001", canteen, day1)
	res := must(t, execKept(t, l, &Consume{Common: c, PAN: panStaff, Amount: 100}))
	if v, ok := l.recent.get(ref(c), true); !ok || v.TxID != res.TxID || v.Kind != KindConsume || v.Date != day1 {
		t.Fatalf("remembered %+v %v, want posting %d", v, ok, res.TxID)
	}
	if _, ok := l.recent.get(ref(c), false); ok {
		t.Fatal("a reference the caller keeps answered without the caller's index")
	}
	o := pos("10000001", canteen, day1)
	must(t, exec(t, l, &Consume{Common: o, PAN: panStaff, Amount: 100})) // 'l r'
	if _, ok := l.recent.get(ref(o), false); !ok {
		t.Fatal("a reference the ledger keeps itself not remembered")
	}
	// A declined request indexes nothing.
	d := pos("10000001", canteen, day1)
	wantDecline(t, execKept(t, l, &Consume{Common: d, PAN: panEmpty, Amount: 100}), DeclineInsufficientFunds)
	if _, ok := l.recent.get(ref(d), true); ok {
		t.Fatal("a declined consume remembered")
	}

	l.ForgetRecentReferences()
	if _, ok := l.recent.get(ref(o), false); ok {
		t.Fatal("remembered after forget")
	}
	// Pruning forgets too.
	must(t, exec(t, l, &Consume{Common: o, PAN: panStaff, Amount: 100}))
	if _, _, err := l.Prune(day1, 10); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.recent.get(ref(o), false); ok {
		t.Fatal("remembered after Prune")
	}

	r := newRecentRefs()
	first := TxnRef{Terminal: "T1", Batch: 1, STAN: 1}
	r.put(first, refValue{TxID: 1}, false)
	// Another terminal's reference whose batch hashes to the same group,
	// with a STAN taking the same slot of it, evicts it.
	var other TxnRef
	for n := 0; ; n++ {
		other = TxnRef{Terminal: fmt.Sprintf("T%d", n), Batch: 1, STAN: 1 + recentRefGroup}
		if other.Terminal != first.Terminal && slotOfMust(t, other) == slotOfMust(t, first) {
			break
		}
		if n > 1_000_000 {
			t.Fatal("no terminal's group is the first's")
		}
	}
	// Within a group a terminal keeps its last recentRefGroup references.
	for s := uint32(2); s <= recentRefGroup; s++ {
		r.put(TxnRef{Terminal: "T1", Batch: 1, STAN: s}, refValue{TxID: 100 + uint64(s)}, false)
	}
	if v, ok := r.get(first, false); !ok || v.TxID != 1 {
		t.Fatalf("one of a terminal's last %d references evicted by the others: %+v %v", recentRefGroup, v, ok)
	}
	if _, ok := r.get(other, false); ok {
		t.Fatal("a reference never put answered")
	}
	r.put(other, refValue{TxID: 2}, false)
	if _, ok := r.get(first, false); ok {
		t.Fatal("a reference evicted from its slot answered")
	}
	if v, ok := r.get(other, false); !ok || v.TxID != 2 {
		t.Fatalf("the newer reference: %+v %v", v, ok)
	}
	r.put(other, refValue{TxID: 3}, false)
	if v, ok := r.get(other, false); !ok || v.TxID != 3 {
		t.Fatalf("a reference used again: %+v %v, want posting 3", v, ok)
	}
	r.slots[slotOfMust(t, other)].at -= int64(recentRefMaxAge + time.Second)
	if _, ok := r.get(other, false); ok {
		t.Fatal("an entry older than recentRefMaxAge answered")
	}
	if _, ok := recentKeyOf(TxnRef{Terminal: "123456789", STAN: 1}); ok {
		t.Fatal("a terminal id longer than the key holds was taken")
	}
}

func recentKeyOfMust(t *testing.T, r TxnRef) recentRefKey {
	t.Helper()
	k, ok := recentKeyOf(r)
	if !ok {
		t.Fatalf("no key for %s", r)
	}
	return k
}

// A commit that fails after its batch became visible (Pebble applies a
// batch before its WAL sync result is known) must not leave the older
// commit's entry answering: Pebble names the newer posting set, so a void
// for the older amount is declined, as a lookup in Pebble declines it.
func TestRecentReferenceDroppedOnFailedCommit(t *testing.T) {
	l, db := keptLedger(t)
	c1 := pos("10000001", canteen, day1)
	must(t, exec(t, l, &Consume{Common: c1, PAN: panStaff, Amount: 100}))
	c2 := c1
	c2.Key += "/again"
	b := db.NewBatch()
	_, err := l.Execute(&Consume{Common: c2, PAN: panStaff, Amount: 30}, b, func(Result) error {
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		return errors.New("WAL sync failed")
	})
	b.Close()
	if err == nil {
		t.Fatal("the failed commit returned no error")
	}
	if mem, ok := l.recent.get(ref(c1), l.refs.get() != nil); ok {
		t.Fatalf("memory still answers posting %d after a failed commit under the same reference", mem.TxID)
	}
	v := pos("10000001", canteen, day1)
	if res := exec(t, l, &Void{Common: v, PAN: panStaff, Amount: 100, Original: ref(c1)}); res.Approved() {
		t.Errorf("void of the older original approved; Pebble names the newer one (amount 30)")
	}
}

func slotOfMust(t *testing.T, r TxnRef) int {
	t.Helper()
	i, _ := slotOf(recentKeyOfMust(t, r))
	return i
}
