package ledger

import (
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// Leg is one account movement of a posting set, as read back for
// reconciliation and settlement.
type Leg struct {
	Account AccountID
	Amount  Fen
}

// PostingView is a read-only copy of one stored posting set and its
// status, for reconciliation and settlement (docs/reconciliation.md). The
// books never change: voids, refunds and reversals are posting sets of
// their own whose Link names the one they undo.
type PostingView struct {
	TxID     uint64
	Kind     Kind
	Date     BusinessDate
	Terminal string
	Merchant string
	Batch    uint32
	STAN     uint32
	RRN      string
	PAN      string
	PAN2     string
	Amount   Fen
	Fee      Fen
	AuthCode string
	Link     uint64
	Legs     []Leg

	// Status of the posting set: which later posting set voided or
	// reversed it (0 = none) and how much of it was refunded.
	VoidedBy   uint64
	ReversedBy uint64
	Refunded   Fen
}

func viewOf(p *posting, s status) PostingView {
	v := PostingView{
		TxID: p.TxID, Kind: p.Kind, Date: p.Date, Terminal: p.Terminal, Merchant: p.Merchant,
		Batch: p.Batch, STAN: p.STAN, RRN: p.RRN, PAN: p.PAN, PAN2: p.PAN2,
		Amount: p.Amount, Fee: p.Fee, AuthCode: p.AuthCode, Link: p.Link,
		VoidedBy: s.VoidedBy, ReversedBy: s.ReversedBy, Refunded: s.Refunded,
	}
	if len(p.Legs) > 0 {
		v.Legs = make([]Leg, len(p.Legs))
		for i, l := range p.Legs {
			v.Legs[i] = Leg(l)
		}
	}
	return v
}

// ScanPostings calls fn, in posting order, for every posting set whose
// business date is in [from, to], with its status as r holds it. Pass a
// snapshot for a consistent read. It reads the period's posting sets
// through the day index (dayindex.go): the ids from the first of the
// period's blocks to the last, besides the posting sets written before
// the index was kept, none of the rest of the book. It is meant for
// settlement and reports, never the transaction path. fn's error stops
// the walk and is returned.
func ScanPostings(r pebble.Reader, from, to BusinessDate, fn func(*PostingView) error) error {
	if !from.Valid() || !to.Valid() || from > to {
		return fmt.Errorf("%w: posting range %d..%d", ErrInvalidRequest, from, to)
	}
	ranges, err := postingRanges(r, from, to)
	if err != nil {
		return err
	}
	slo := []byte{keyPrefix, tagStatus}
	st, err := r.NewIter(&pebble.IterOptions{LowerBound: slo, UpperBound: prefixEnd(slo)})
	if err != nil {
		return err
	}
	defer st.Close()
	for _, rg := range ranges {
		if err := scanRange(r, st, rg, from, to, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanRange(r pebble.Reader, st *pebble.Iterator, rg idSpan, from, to BusinessDate, fn func(*PostingView) error) error {
	hi := prefixEnd([]byte{keyPrefix, tagPost})
	if rg.hi < math.MaxUint64 {
		hi = postKey(rg.hi + 1)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: postKey(rg.lo), UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		// The date sits right after the version, id and kind; decoding
		// only the sets in range would save little, and a damaged set
		// must be reported wherever it is.
		p, err := decodePosting(v)
		if err != nil {
			return fmt.Errorf("posting %x: %w", it.Key(), err)
		}
		if p.Date < from || p.Date > to {
			continue
		}
		var s status
		sk := statusKey(p.TxID)
		if st.SeekGE(sk) && string(st.Key()) == string(sk) {
			sv, err := st.ValueAndErr()
			if err != nil {
				return err
			}
			if s, err = decodeStatus(sv); err != nil {
				return fmt.Errorf("status of posting %d: %w", p.TxID, err)
			}
		} else if err := st.Error(); err != nil {
			return err
		}
		view := viewOf(&p, s)
		if err := fn(&view); err != nil {
			return err
		}
	}
	return it.Error()
}

// PostingByRRN returns the approved posting set the switch recorded under
// retrieval reference number rrn on business date d, through the RRN
// index (a lookup record: see "Retention" in docs/ledger.md for how long
// it is kept). ok is false when there is none.
func PostingByRRN(r pebble.Reader, d BusinessDate, rrn string) (view PostingView, ok bool, err error) {
	if rrn == "" || len(rrn) > maxField {
		return PostingView{}, false, fmt.Errorf("%w: rrn %q", ErrInvalidRequest, rrn)
	}
	raw, err := get(r, rrnKey(d, rrn))
	if err != nil || raw == nil {
		return PostingView{}, false, err
	}
	ref, err := decodeRef(raw)
	if err != nil {
		return PostingView{}, false, fmt.Errorf("rrn %s: %w", rrn, err)
	}
	return PostingByID(r, ref.TxID)
}

// PostingByReference returns the approved posting set that terminal
// reference ref names, through the ledger's reference record or refs,
// the caller's index (nil: none), as a void finds its original (a lookup
// record, kept as "Retention" in docs/ledger.md says). A reference is
// reused when the terminal's batch and STAN come round again: check the
// posting's date and RRN. ok is false when there is none.
func PostingByReference(r pebble.Reader, refs References, ref TxnRef) (view PostingView, ok bool, err error) {
	if ref.Terminal == "" || len(ref.Terminal) > maxTerminalLen || ref.Batch > maxSixDigits || ref.STAN > maxSixDigits {
		return PostingView{}, false, fmt.Errorf("%w: reference %s", ErrInvalidRequest, ref)
	}
	v, ok, err := resolveRef(r, refs, ref, func(id uint64) (*posting, error) { return loadPostingFrom(r, id) })
	if err != nil || !ok {
		return PostingView{}, false, err
	}
	return PostingByID(r, v.TxID)
}

// PostingByID returns one posting set with its status.
func PostingByID(r pebble.Reader, id uint64) (PostingView, bool, error) {
	pv, err := get(r, postKey(id))
	if err != nil || pv == nil {
		return PostingView{}, false, err
	}
	p, err := decodePosting(pv)
	if err != nil {
		return PostingView{}, false, fmt.Errorf("posting %d: %w", id, err)
	}
	var s status
	sv, err := get(r, statusKey(id))
	if err != nil {
		return PostingView{}, false, err
	}
	if sv != nil {
		if s, err = decodeStatus(sv); err != nil {
			return PostingView{}, false, fmt.Errorf("status of posting %d: %w", id, err)
		}
	}
	return viewOf(&p, s), true, nil
}
