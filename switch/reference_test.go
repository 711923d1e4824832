package switching

import (
	"strconv"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
	"github.com/cockroachdb/pebble/v2"
)

// posRef is the ledger's reference of a POS request and its duplicate key.
func posRef(t *testing.T, term *posclient.Terminal, req *spec.POSMessage) (ledger.TxnRef, journal.DuplicateKey) {
	t.Helper()
	if req.TerminalID == "" { // filled in when sent
		req.TerminalID, req.MerchantID = term.ID, term.Merchant
	}
	batch, err1 := strconv.ParseUint(req.Reserved60.Batch, 10, 32)
	stan, err2 := strconv.ParseUint(req.STAN, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("batch %q stan %q", req.Reserved60.Batch, req.STAN)
	}
	return ledger.TxnRef{Terminal: req.TerminalID, Batch: uint32(batch), STAN: uint32(stan)},
		journal.DuplicateKey{Terminal: req.TerminalID, Batch: req.Reserved60.Batch, STAN: req.STAN, Date: req.LocalDate}
}

// expectKeptReference checks that an approved POS request left no ledger
// reference record and that its duplicate record names its posting set.
func expectKeptReference(t *testing.T, sw *Switch, term *posclient.Terminal, req *spec.POSMessage) uint64 {
	t.Helper()
	ref, key := posRef(t, term, req)
	rec, found, err := sw.journal.GetResponse(key)
	if err != nil || !found || rec.TxID == 0 {
		t.Fatalf("%s: duplicate record found %v, %v, txid %d", ref, found, err, rec.TxID)
	}
	if _, ok, err := ledger.PostingByReference(sw.db, nil, ref); ok || err != nil {
		t.Fatalf("%s: the ledger kept a reference record ('l r') for a POS request (%v)", ref, err)
	}
	p, ok, err := ledger.PostingByReference(sw.db, ledger.DigitReferences(sw.journal), ref)
	if err != nil || !ok || p.TxID != rec.TxID {
		t.Fatalf("%s: through the duplicate record: posting %d %v %v, want %d", ref, p.TxID, ok, err, rec.TxID)
	}
	return rec.TxID
}

// TestPOSReferenceInDuplicateRecord: every approved POS money request's
// reference is its duplicate record (docs/journal.md#what-one-consume-writes);
// void, repeated void, reversal (also before its original), refund,
// completion, completion void, cancel and the batch's settlement totals
// all find their originals through it.
func TestPOSReferenceInDuplicateRecord(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen2, canteen)
	cash, _ := purses(t, sw, cardStaff)

	// Consume and void; a second void of it is refused.
	a, err := term.Consume(cardStaff, 1000, "")
	aResp := do(t, term, a, err)
	expectRC(t, "consume A", aResp, spec.RCApproved)
	expectKeptReference(t, sw, term, a)
	void, err := term.Void(a, aResp, "")
	expectRC(t, "void A", do(t, term, void, err), spec.RCApproved)
	expectKeptReference(t, sw, term, void)
	void2, err := term.Void(a, aResp, "")
	expectRC(t, "second void A", do(t, term, void2, err), spec.RCInvalidTransaction)
	expectPurses(t, sw, cardStaff, cash, 0)

	// Reversal undoes a consume exactly, once.
	b, err := term.Consume(cardStaff, 700, "")
	expectRC(t, "consume B", do(t, term, b, err), spec.RCApproved)
	expectRC(t, "reversal B", do(t, term, term.Reversal(b, spec.ReversalTimeout), nil), spec.RCApproved)
	expectRC(t, "repeated reversal B", do(t, term, term.Reversal(b, spec.ReversalTimeout), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash, 0)
	_, revKey := posRef(t, term, term.Reversal(b, spec.ReversalTimeout))
	revKey.STAN = spec.MTIReversal + revKey.STAN
	if revKey.Date == "" { // no field 13: the business date (pos duplicateKey)
		revKey.Date = sw.clock.Today().String()
	}
	if rec, found, err := sw.journal.GetResponse(revKey); err != nil || !found || rec.TxID != 0 {
		t.Fatalf("reversal's duplicate record: found %v, %v, txid %d; want one naming no reference", found, err, rec.TxID)
	}

	// A reversal before its original: the original is then refused.
	c, err := term.Consume(cardStaff, 300, "")
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "reversal before C", do(t, term, term.Reversal(c, spec.ReversalTimeout), nil), spec.RCApproved)
	expectRC(t, "C after its reversal", do(t, term, c, nil), spec.RCInvalidTransaction)
	expectPurses(t, sw, cardStaff, cash, 0)

	// Refund of part of a consume.
	d, err := term.Consume(cardStaff, 2000, "")
	dResp := do(t, term, d, err)
	expectRC(t, "consume D", dResp, spec.RCApproved)
	expectRC(t, "refund 5.00 of D", do(t, term, term.Refund(d, dResp, 500), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash-1500, 0)

	// Pre-auth, completion, completion void, cancel.
	p, err := term.PreAuth(cardStaff, 5000, pinStaff)
	pResp := do(t, term, p, err)
	expectRC(t, "pre-auth", pResp, spec.RCApproved)
	expectKeptReference(t, sw, term, p)
	comp, err := term.Completion(p, pResp, 3000, pinStaff)
	compResp := do(t, term, comp, err)
	expectRC(t, "completion", compResp, spec.RCApproved)
	expectKeptReference(t, sw, term, comp)
	cv, err := term.CompletionVoid(comp, compResp, pinStaff)
	expectRC(t, "completion void", do(t, term, cv, err), spec.RCApproved)
	cancel, err := term.PreAuthCancel(p, pResp, pinStaff)
	expectRC(t, "cancel", do(t, term, cancel, err), spec.RCApproved)
	if v, _ := sw.ledger.Card(cardStaff); v.Balances.Held != 0 || v.Balances.Cash != cash-1500 {
		t.Fatalf("after cancel: %+v", v.Balances)
	}

	// The batch: debits A (voided), D, the completion (voided); credits
	// the void, the refund, the completion void. B is reversed, C never
	// took effect; pre-auth and cancel move no money.
	want := spec.SettlementTotals{DebitCount: 3, DebitAmount: 6000, CreditCount: 3, CreditAmount: 4500}
	got, err := sw.ledger.BatchTotals(termCanteen2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got != (ledger.Totals{DebitCount: 3, DebitAmount: 6000, CreditCount: 3, CreditAmount: 4500}) {
		t.Fatalf("batch totals %+v", got)
	}
	for _, tc := range []struct {
		totals spec.SettlementTotals
		flag   byte
	}{
		{want, spec.SettlementBalanced},
		{spec.SettlementTotals{DebitCount: 2, DebitAmount: 3000, CreditCount: 1, CreditAmount: 1000}, spec.SettlementUnbalanced},
	} {
		req, err := term.Settlement(tc.totals)
		resp := do(t, term, req, err)
		expectRC(t, "settlement", resp, spec.RCApproved)
		st, err := spec.ParseSettlement(resp.AdditionalData)
		if err != nil {
			t.Fatal(err)
		}
		if st.Domestic.Flag != tc.flag {
			t.Fatalf("settlement of %+v: flag %c, want %c", tc.totals, st.Domestic.Flag, tc.flag)
		}
	}
	if r, err := ledger.Check(sw.db); err != nil || !r.OK() {
		t.Fatalf("ledger check: %v %v", err, r.Violations)
	}
}

// oldLayoutConsume commits a consume as a switch did before duplicate
// records named the ledger's transaction: the ledger's reference record
// ('l r') and a duplicate record without a transaction id, with its
// journal pair. It returns the request (never sent) and an answer to
// build follow-ups from.
func oldLayoutConsume(t *testing.T, sw *Switch, term *posclient.Terminal, pan string, amount spec.Amount, rrn string) (*spec.POSMessage, *spec.POSMessage) {
	t.Helper()
	req, err := term.Consume(pan, amount, "")
	if err != nil {
		t.Fatal(err)
	}
	ref, key := posRef(t, term, req)
	date := sw.clock.Today()
	c := ledger.Common{Key: key.Terminal + "/" + key.Batch + "/" + key.STAN + "/" + key.Date, Date: date,
		Terminal: ref.Terminal, Merchant: req.MerchantID, Batch: ref.Batch, STAN: ref.STAN, RRN: rrn,
		Deduplicated: true, RRNIndexedByCaller: true}
	b := sw.db.NewBatch()
	defer b.Close()
	now := time.Now()
	res, err := sw.ledger.Execute(&ledger.Consume{Common: c, PAN: pan, Amount: ledger.Fen(amount)}, b, func(r ledger.Result) error {
		in := &journal.Entry{Direction: journal.In, Listener: "pos", Terminal: ref.Terminal, Merchant: req.MerchantID,
			MTI: req.MTI, STAN: req.STAN, Batch: req.Reserved60.Batch, TxType: spec.Consume.String(),
			Time: now, BusinessDate: date.String()}
		out := *in
		out.Direction, out.MTI, out.RRN, out.ResponseCode = journal.Out, "0210", rrn, spec.RCApproved
		if _, _, err := sw.journal.AppendAnswered(b, in, &out, key, journal.ResponseRecord{ResponseCode: spec.RCApproved, Time: now}); err != nil {
			return err
		}
		return b.Commit(pebble.Sync)
	})
	if err != nil || !res.Approved() || res.Reference != 0 {
		t.Fatalf("old-layout consume: %+v %v", res, err)
	}
	if _, ok, err := ledger.PostingByReference(sw.db, nil, ref); !ok || err != nil {
		t.Fatalf("old-layout consume left no 'l r': %v", err)
	}
	if rec, found, err := sw.journal.GetResponse(key); err != nil || !found || rec.TxID != 0 {
		t.Fatalf("old-layout duplicate record: found %v, %v, txid %d", found, err, rec.TxID)
	}
	return req, &spec.POSMessage{RRN: rrn, AuthCode: res.AuthCode}
}

// oldRRN is an RRN as the switch issued them before they named journal
// sequences: the business day's day of the year and a counter far above
// any this test's journal reaches. A refund reads its original's business
// date from such an RRN; with any other RRN it falls back to field 61's
// MMDD, the terminal's calendar day, which from the cutover (23:00 in the
// demo) to midnight is the day before the business day.
func oldRRN(sw *Switch, n uint64) string {
	d := sw.clock.Today()
	yday := time.Date(int(d/10000), time.Month(d/100%100), int(d%100), 0, 0, 0, 0, time.UTC).YearDay()
	return formatRRN(yday, 900_000_000+n)
}

// TestPOSReferenceOldLayout: originals committed before duplicate records
// carried the ledger's transaction ('l r', no id in the record) are still
// voided, reversed and refunded, and counted in their batch's totals.
func TestPOSReferenceOldLayout(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen2, canteen)
	cash, _ := purses(t, sw, cardStaff)

	a, aResp := oldLayoutConsume(t, sw, term, cardStaff, 1000, oldRRN(sw, 1))
	expectPurses(t, sw, cardStaff, cash-1000, 0)
	void, err := term.Void(a, aResp, "")
	expectRC(t, "void of an old-layout consume", do(t, term, void, err), spec.RCApproved)
	void2, err := term.Void(a, aResp, "")
	expectRC(t, "second void", do(t, term, void2, err), spec.RCInvalidTransaction)
	expectPurses(t, sw, cardStaff, cash, 0)

	b, _ := oldLayoutConsume(t, sw, term, cardStaff, 700, oldRRN(sw, 2))
	expectRC(t, "reversal of an old-layout consume", do(t, term, term.Reversal(b, spec.ReversalTimeout), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash, 0)

	d, dResp := oldLayoutConsume(t, sw, term, cardStaff, 2000, oldRRN(sw, 3))
	expectRC(t, "refund of an old-layout consume", do(t, term, term.Refund(d, dResp, 500), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash-1500, 0)

	// Debits A (voided) and D; credits the void and the refund; B reversed.
	got, err := sw.ledger.BatchTotals(termCanteen2, 1)
	if err != nil || got != (ledger.Totals{DebitCount: 2, DebitAmount: 3000, CreditCount: 2, CreditAmount: 1500}) {
		t.Fatalf("batch totals %+v %v", got, err)
	}
	if r, err := ledger.Check(sw.db); err != nil || !r.OK() {
		t.Fatalf("ledger check: %v %v", err, r.Violations)
	}
}
