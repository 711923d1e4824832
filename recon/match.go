package recon

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
)

// Discrepancy classes (docs/reconciliation.md "Classes").
const (
	Matched       = "matched"
	OursOnly      = "ours-only"
	TheirsOnly    = "theirs-only"
	AmountDiffers = "amount-differs"
	StatusDiffers = "status-differs"
)

// ClassTotals counts the records of one class and sums their amounts
// (ours, or theirs when we have none).
type ClassTotals struct {
	Count  int64      `json:"count"`
	Amount ledger.Fen `json:"amount"`
}

// Report is the outcome of matching one counterparty file.
type Report struct {
	Gateway       string      `json:"gateway"`
	Date          string      `json:"business_date"`
	OurRows       int64       `json:"our_rows"`
	TheirRecords  int64       `json:"their_records"`
	Matched       ClassTotals `json:"matched"`
	OursOnly      ClassTotals `json:"ours_only"`
	TheirsOnly    ClassTotals `json:"theirs_only"`
	AmountDiffers ClassTotals `json:"amount_differs"`
	StatusDiffers ClassTotals `json:"status_differs"`
	// Discrepancies are the ids of this import's discrepancy records.
	Discrepancies []uint64 `json:"discrepancies"`
	AutoResolved  int      `json:"auto_resolved"`
	// AutoHeld counts discrepancies a rule would have resolved but its
	// amount bounds left open for an operator.
	AutoHeld int `json:"auto_held"`
}

func (r *Report) class(c string) *ClassTotals {
	switch c {
	case Matched:
		return &r.Matched
	case OursOnly:
		return &r.OursOnly
	case TheirsOnly:
		return &r.TheirsOnly
	case AmountDiffers:
		return &r.AmountDiffers
	default:
		return &r.StatusDiffers
	}
}

// Found is one record that did not match cleanly, before it is stored.
type Found struct {
	Class  string
	Key    string // the match key that paired it, or the best key it has
	Ours   *Row   // nil for theirs-only
	Theirs *Record
}

// ourRec is what the matcher keeps of each of our rows: 24 bytes, so a
// day of 5 million rows fits in ~120 MB with its key tables.
type ourRec struct {
	seq      uint64
	amount   ledger.Fen
	approved bool
	matched  bool
}

// keyHash is the 64-bit hash a match key is kept as; a collision would
// pair two records with different keys, at odds of about n²/2⁶⁵.
func keyHash(kind byte, parts ...string) uint64 {
	h := fnv.New64a()
	h.Write([]byte{kind})
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// Match reads the counterparty's file for gateway gw and business date
// date through layout, pairs each record with our row by the first key
// both sides have (order number; link STAN + transmission time; RRN) and
// calls found for every record that is not matched cleanly, with a final
// pass for our approved rows the file does not have. Only our rows of
// institution gw take part. Memory is a few dozen bytes per row of ours.
func (s Source) Match(ctx context.Context, gw string, date ledger.BusinessDate, layout *Layout, theirs io.Reader,
	found func(*Found) error, progress func(stage string, n int64)) (*Report, error) {
	rep := &Report{Gateway: gw, Date: date.String()}
	rd, err := newReader(layout, theirs)
	if err != nil {
		return nil, err
	}
	var ours []ourRec
	byOrder := map[uint64]uint32{}
	byLink := map[uint64]uint32{}
	byRRN := map[uint64]uint32{}
	// byLocal finds the row a reversal reverses: the terminal's batch
	// and STAN, which a reversal repeats.
	byLocal := map[uint64]uint32{}
	scan := s
	scan.Context = ctx
	err = scan.ScanDay(date, func(r *Row) error {
		if r.Institution != gw {
			return nil
		}
		if len(ours) == 1<<32-1 {
			return errors.New("recon: too many rows")
		}
		// A reversal repeats its original's processing code, and is
		// matched on the original's type as well as its numbering
		// (docs/pos-dialect.md#rules): one claiming another type
		// reverses nothing.
		local := keyHash('t', r.Terminal, r.Batch, r.STAN, procType(r.ProcessingCode))
		switch r.TxType {
		case spec.Reversal.String():
			// Not a record of its own: the original no longer stands.
			if i, ok := byLocal[local]; ok && r.Approved() {
				ours[i].approved = false
			}
			return nil
		case txOutsideReversal:
			// An outside credit reversed: found by its order number.
			if i, ok := byOrder[keyHash('o', r.OrderNo)]; ok && r.Approved() && r.OrderNo != "" {
				ours[i].approved = false
			}
			return nil
		}
		i := uint32(len(ours))
		if r.Terminal != "" {
			byLocal[local] = i
		}
		ours = append(ours, ourRec{seq: r.seq, amount: r.Amount, approved: r.Approved()})
		// The first row with a key keeps it.
		put := func(m map[uint64]uint32, k uint64) {
			if _, dup := m[k]; !dup {
				m[k] = i
			}
		}
		if r.OrderNo != "" {
			put(byOrder, keyHash('o', r.OrderNo))
		}
		if r.LinkSTAN != "" && r.LinkTime != "" {
			put(byLink, keyHash('l', r.LinkSTAN, r.LinkTime))
		}
		if r.RRN != "" {
			put(byRRN, keyHash('r', r.RRN))
		}
		rep.OurRows++
		if progress != nil && rep.OurRows%progressEvery == 0 {
			progress("ours", rep.OurRows)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var rec Record
	for {
		if err := rd.next(&rec); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		rep.TheirRecords++
		if progress != nil && rep.TheirRecords%progressEvery == 0 {
			if ctx != nil && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			progress("theirs", rep.TheirRecords)
		}
		idx, key, ok := uint32(0), "", false
		if rec.OrderNo != "" {
			idx, ok = byOrder[keyHash('o', rec.OrderNo)]
			key = "order_no:" + rec.OrderNo
		}
		if !ok && rec.LinkSTAN != "" && rec.TxTime != "" {
			idx, ok = byLink[keyHash('l', rec.LinkSTAN, rec.TxTime)]
			if !ok && key == "" {
				key = "link:" + rec.LinkSTAN + "/" + rec.TxTime
			}
			if ok {
				key = "link:" + rec.LinkSTAN + "/" + rec.TxTime
			}
		}
		if !ok && rec.RRN != "" {
			idx, ok = byRRN[keyHash('r', rec.RRN)]
			if !ok && key == "" {
				key = "rrn:" + rec.RRN
			}
			if ok {
				key = "rrn:" + rec.RRN
			}
		}
		if key == "" {
			key = fmt.Sprintf("line:%d", rec.Line)
		}
		r := rec
		if !ok || ours[idx].matched {
			// Nothing of ours, or ours already paired (they list it twice).
			if rec.Success {
				if err := s.report(rep, found, &Found{Class: TheirsOnly, Key: key, Theirs: &r}, rec.Amount); err != nil {
					return nil, err
				}
			}
			continue
		}
		o := &ours[idx]
		o.matched = true
		class := Matched
		switch {
		case o.approved != rec.Success:
			class = StatusDiffers
		case o.approved && o.amount != rec.Amount:
			class = AmountDiffers
		}
		if class == Matched {
			rep.Matched.Count++
			rep.Matched.Amount += o.amount
			continue
		}
		row, err := s.rowAt(date, o.seq)
		if err != nil {
			return nil, err
		}
		if err := s.report(rep, found, &Found{Class: class, Key: key, Ours: row, Theirs: &r}, o.amount); err != nil {
			return nil, err
		}
	}
	for i := range ours {
		o := &ours[i]
		if o.matched || !o.approved {
			continue
		}
		row, err := s.rowAt(date, o.seq)
		if err != nil {
			return nil, err
		}
		if err := s.report(rep, found, &Found{Class: OursOnly, Key: bestKey(row), Ours: row}, o.amount); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func bestKey(r *Row) string {
	switch {
	case r.OrderNo != "":
		return "order_no:" + r.OrderNo
	case r.LinkSTAN != "" && r.LinkTime != "":
		return "link:" + r.LinkSTAN + "/" + r.LinkTime
	default:
		return "rrn:" + r.RRN
	}
}

func (s Source) report(rep *Report, found func(*Found) error, f *Found, amount ledger.Fen) error {
	t := rep.class(f.Class)
	t.Count++
	t.Amount += amount
	if found == nil {
		return nil
	}
	return found(f)
}

// rowAt rebuilds the export row of the pair whose request is at seq.
func (s Source) rowAt(date ledger.BusinessDate, seq uint64) (*Row, error) {
	req, err := s.Journal.Get(seq)
	if err != nil {
		return nil, err
	}
	resp, err := s.Journal.Get(seq + 1)
	if err != nil {
		return nil, err
	}
	if req.Direction != journal.In || resp.Direction != journal.Out {
		return nil, fmt.Errorf("recon: journal %d is not a request/response pair", seq)
	}
	return s.row(date, req, resp, s.loc())
}

// procType is the part of a processing code that names the transaction
// type (its first two digits).
func procType(pc string) string {
	if len(pc) < 2 {
		return pc
	}
	return pc[:2]
}
