package ledger

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// References is the caller's index of the terminal references of the
// requests it executed with Common.ReferenceKeptByCaller: for those the
// ledger writes no reference record ('l r'), and the caller's record of
// the request carries the posting set's id (Result.Reference) instead —
// the switch's duplicate record (docs/journal.md#what-one-consume-writes).
// Every lookup of a reference asks both indexes and takes the newer
// posting set (ids are handed out in order), after checking that the
// posting set the caller named is one of that reference, so a wrong or
// stale id is an unknown original, never another transaction acted on.
type References interface {
	// Reference returns the id of the newest posting set the caller
	// recorded under ref, 0 when none; r is the reader to use.
	Reference(r pebble.Reader, ref TxnRef) (uint64, error)
	// BatchReferences calls fn for every STAN of a terminal batch under
	// which the caller recorded a posting set, with the newest.
	BatchReferences(r pebble.Reader, terminal string, batch uint32, fn func(stan uint32, txid uint64) error) error
}

// refsHolder holds the caller's index (nil until UseReferences).
type refsHolder struct{ p atomic.Pointer[References] }

func (h *refsHolder) get() References {
	if p := h.p.Load(); p != nil {
		return *p
	}
	return nil
}

// UseReferences gives the ledger the caller's reference index. Call it
// before executing requests with ReferenceKeptByCaller: without it their
// originals cannot be found (voids declined "original not found",
// reversals no-ops).
func (l *Ledger) UseReferences(refs References) { l.refs.p.Store(&refs) }

// indexedKind reports whether an approved posting set of kind k is named
// by its request's own reference (all but reversals, which share their
// original's).
func indexedKind(k Kind) bool { return k != KindReversal && k > 0 && k < kindCount }

// callerRef returns what the caller's index names for ref, checked: the
// posting set must exist, be of that very reference and of a kind a
// reference names. ok is false otherwise.
func callerRef(r pebble.Reader, refs References, ref TxnRef, load func(uint64) (*posting, error)) (refValue, bool, error) {
	if refs == nil {
		return refValue{}, false, nil
	}
	id, err := refs.Reference(r, ref)
	if err != nil || id == 0 {
		return refValue{}, false, err
	}
	p, err := load(id)
	if err != nil || p == nil {
		return refValue{}, false, err
	}
	if p.Terminal != ref.Terminal || p.Batch != ref.Batch || p.STAN != ref.STAN || !indexedKind(p.Kind) {
		return refValue{}, false, nil
	}
	return refValue{TxID: p.TxID, Kind: p.Kind, Date: p.Date}, true, nil
}

// resolveRef is the one lookup of a terminal reference: the ledger's
// reference record and the caller's index (callerRef), the newer of the
// two. load reads a posting set (nil when missing).
func resolveRef(r pebble.Reader, refs References, ref TxnRef, load func(uint64) (*posting, error)) (refValue, bool, error) {
	var own refValue
	raw, err := get(r, refKey(ref))
	if err != nil {
		return refValue{}, false, err
	}
	found := raw != nil
	if found {
		if own, err = decodeRef(raw); err != nil {
			return refValue{}, false, fmt.Errorf("reference %s: %w", ref, err)
		}
	}
	theirs, ok, err := callerRef(r, refs, ref, load)
	if err != nil {
		return refValue{}, false, fmt.Errorf("reference %s: caller's index: %w", ref, err)
	}
	if ok && (!found || theirs.TxID > own.TxID) {
		return theirs, true, nil
	}
	return own, found, nil
}

// loadPostingFrom reads posting set id from r, nil when it is missing.
func loadPostingFrom(r pebble.Reader, id uint64) (*posting, error) {
	raw, err := get(r, postKey(id))
	if err != nil || raw == nil {
		return nil, err
	}
	p, err := decodePosting(raw)
	if err != nil {
		return nil, fmt.Errorf("posting %d: %w", id, err)
	}
	return &p, nil
}

// batchRefs returns, by STAN, the posting set each reference of a
// terminal batch names: the ledger's reference records and the caller's
// index, the newer of the two (as resolveRef), checked the same way.
func batchRefs(r pebble.Reader, refs References, terminal string, batch uint32) ([]uint64, error) {
	byStan := map[uint32]uint64{}
	err := scan(r, batchPrefix(terminal, batch), func(k, v []byte) error {
		rv, err := decodeRef(v)
		if err != nil {
			return err
		}
		if rv.TxID != 0 && len(k) >= 4 {
			byStan[binary.BigEndian.Uint32(k[len(k)-4:])] = rv.TxID
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if refs != nil {
		err = refs.BatchReferences(r, terminal, batch, func(stan uint32, id uint64) error {
			if id <= byStan[stan] {
				return nil
			}
			p, err := loadPostingFrom(r, id)
			if err != nil {
				return err
			}
			if p != nil && p.Terminal == terminal && p.Batch == batch && p.STAN == stan && indexedKind(p.Kind) {
				byStan[stan] = id
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("caller's index: %w", err)
		}
	}
	ids := make([]uint64, 0, len(byStan))
	for _, id := range byStan {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// DigitIndex is an index of terminal references keyed as a POS terminal
// spells them: batch and STAN as six decimal digits (fields 60.2 and 11,
// docs/pos-dialect.md). The switch's journal is one (its duplicate
// records, journal.Journal.Reference).
type DigitIndex interface {
	Reference(r pebble.Reader, terminal, batch, stan string) (uint64, error)
	BatchReferences(r pebble.Reader, terminal, batch string, fn func(stan string, txid uint64) error) error
}

// DigitReferences is idx as the ledger's References.
func DigitReferences(idx DigitIndex) References { return digitRefs{idx} }

type digitRefs struct{ idx DigitIndex }

func sixDigits(n uint32) string { return fmt.Sprintf("%06d", n) }

func (d digitRefs) Reference(r pebble.Reader, ref TxnRef) (uint64, error) {
	if ref.Terminal == "" || ref.Batch > maxSixDigits || ref.STAN > maxSixDigits {
		return 0, nil // no terminal spells it
	}
	return d.idx.Reference(r, ref.Terminal, sixDigits(ref.Batch), sixDigits(ref.STAN))
}

func (d digitRefs) BatchReferences(r pebble.Reader, terminal string, batch uint32, fn func(stan uint32, txid uint64) error) error {
	if terminal == "" || batch > maxSixDigits {
		return nil
	}
	return d.idx.BatchReferences(r, terminal, sixDigits(batch), func(stan string, txid uint64) error {
		if len(stan) != 6 {
			return nil // a reversal's record (its MTI and STAN): never a reference
		}
		n, err := strconv.ParseUint(stan, 10, 32)
		if err != nil {
			return nil
		}
		return fn(uint32(n), txid)
	})
}

// OwnReference returns the posting set id the ledger's own reference
// record ('l r') of ref names, 0 when there is none. A caller keeping
// references (References) asks it when pruning its own: a POS original
// written before the caller kept its references has an 'l r', and the
// caller's newer record of the same reference must outlive it
// (docs/journal.md#retention). A record that does not decode is an error
// wrapping ErrCorrupt.
func (l *Ledger) OwnReference(ref TxnRef) (uint64, error) {
	raw, err := get(l.db, refKey(ref))
	if err != nil || raw == nil {
		return 0, err
	}
	v, err := decodeRef(raw)
	if err != nil {
		return 0, fmt.Errorf("ledger: reference %s: %w", ref, err)
	}
	return v.TxID, nil
}
