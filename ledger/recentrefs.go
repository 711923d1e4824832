package ledger

import (
	"sync"
	"time"
)

// recentRefs remembers, for the terminal references of the posting sets
// this process approved and indexed, the newest posting set of each: what
// a lookup of that reference (resolveRef) would read back from Pebble — the
// ledger's reference record or the caller's duplicate record, the newer of
// the two. A void or reversal names a transaction of minutes or seconds
// before, so its lookup is usually answered here, without the range read
// of the caller's records (one per date) and the miss of the ledger's own.
//
// It holds only what is sure:
//   - posting set ids are handed out in order and every one indexed under
//     a reference is committed under that reference's key lock, so the
//     newest one this process wrote is newer than any on disk, and the
//     entry is replaced, under the same lock, by each newer one;
//   - an entry is put only after the commit returned nil (publish);
//   - declines and reversals index nothing, so they change nothing;
//   - retention deletes reference records only past the lookup window
//     (days), while an entry lives at most recentRefMaxAge, and every
//     prune of references forgets them all anyway (forget).
//
// A miss (never written by this process, evicted, too old) is read from
// Pebble as before. Bounded: a table of recentRefSlots entries in groups
// of recentRefGroup; a terminal's batch hashes to a group and its STANs
// take the group's slots in turn, so a terminal's last recentRefGroup
// references are kept (unless another terminal's batch shares the group)
// and each put touches the lines its terminal's last put touched: no
// allocation, and a line likely in cache.
type recentRefs struct {
	epoch time.Time // ages are measured on the monotonic clock from here
	locks [recentRefLocks]sync.Mutex
	slots []recentRef
}

const (
	recentRefSlots = 1 << 15 // a power of two
	recentRefGroup = 64      // slots per group, a power of two
	recentRefLocks = 64      // group g is guarded by locks[g % recentRefLocks]
	// recentRefMaxAge bounds how long an entry answers: far below any
	// retention cut of reference records (whole days).
	recentRefMaxAge = 10 * time.Minute
)

type recentRefKey struct {
	term        [maxTerminalLen]byte
	termLen     uint8 // 0: the slot is empty
	batch, stan uint32
}

type recentRef struct {
	k        recentRefKey
	byCaller bool // the caller's index holds it (Common.ReferenceKeptByCaller)
	v        refValue
	at       int64 // nanoseconds since epoch
}

func newRecentRefs() *recentRefs {
	return &recentRefs{epoch: time.Now(), slots: make([]recentRef, recentRefSlots)}
}

func recentKeyOf(ref TxnRef) (recentRefKey, bool) {
	var k recentRefKey
	if ref.Terminal == "" || len(ref.Terminal) > maxTerminalLen {
		return k, false
	}
	copy(k.term[:], ref.Terminal)
	k.termLen = uint8(len(ref.Terminal))
	k.batch, k.stan = ref.Batch, ref.STAN
	return k, true
}

// slotOf returns the index of k's slot and of its lock: the group of
// its terminal and batch, the slot of its STAN in the group.
func slotOf(k recentRefKey) (slot, lock int) {
	h := uint64(k.batch)
	for _, c := range k.term[:k.termLen] {
		h = (h ^ uint64(c)) * 0x100000001b3
	}
	h ^= h >> 29
	g := int(h & (recentRefSlots/recentRefGroup - 1))
	return g*recentRefGroup + int(k.stan%recentRefGroup), g % recentRefLocks
}

// put records v as the newest posting set of ref, committed.
func (r *recentRefs) put(ref TxnRef, v refValue, byCaller bool) {
	k, ok := recentKeyOf(ref)
	if !ok || (byCaller && (ref.Batch > maxSixDigits || ref.STAN > maxSixDigits || !indexedKind(v.Kind))) {
		// The caller's digit index (DigitReferences) cannot hold it, or
		// a lookup through it would not take it (callerRef).
		return
	}
	e := recentRef{k: k, byCaller: byCaller, v: v, at: int64(time.Since(r.epoch))}
	i, l := slotOf(k)
	mu := &r.locks[l]
	mu.Lock()
	r.slots[i] = e
	mu.Unlock()
}

// drop empties ref's slot if it holds ref: an operation under ref whose
// commit failed may still have reached Pebble (a failed WAL sync returns
// after the batch was applied), so the entry put by an older commit of ref
// may no longer name the newest posting set; lookups of ref read Pebble.
func (r *recentRefs) drop(ref TxnRef) {
	k, ok := recentKeyOf(ref)
	if !ok {
		return
	}
	i, l := slotOf(k)
	mu := &r.locks[l]
	mu.Lock()
	if r.slots[i].k == k {
		r.slots[i] = recentRef{}
	}
	mu.Unlock()
}

// get returns the newest posting set of ref this process committed, ok
// false when it does not know it. callerIndex says whether the caller's
// index is in use: without it, a reference only the caller kept cannot be
// found (UseReferences), and none is answered here either.
func (r *recentRefs) get(ref TxnRef, callerIndex bool) (refValue, bool) {
	k, ok := recentKeyOf(ref)
	if !ok {
		return refValue{}, false
	}
	i, l := slotOf(k)
	mu := &r.locks[l]
	mu.Lock()
	e := r.slots[i]
	mu.Unlock()
	if e.k != k || (e.byCaller && !callerIndex) || time.Duration(int64(time.Since(r.epoch))-e.at) > recentRefMaxAge {
		return refValue{}, false
	}
	return e.v, true
}

// forget empties every slot: called before references are pruned.
func (r *recentRefs) forget() {
	for g := 0; g < recentRefSlots/recentRefGroup; g++ {
		mu := &r.locks[g%recentRefLocks]
		mu.Lock()
		clear(r.slots[g*recentRefGroup : (g+1)*recentRefGroup])
		mu.Unlock()
	}
}

// ForgetRecentReferences makes every later lookup of a terminal reference
// read Pebble: the caller calls it before it prunes the reference records
// it keeps for the ledger (References), as Prune does for the ledger's own.
func (l *Ledger) ForgetRecentReferences() { l.recent.forget() }
