package switching

import (
	"errors"
	"testing"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDamagedDuplicateRecord: one duplicate record that does not decode
// (docs/journal.md#damaged-duplicate-records) fails only the lookups of
// its own reference (its void is declined: it may name the newest
// transaction); the batch's settlement totals skip it and are answered,
// the day's export goes on without its fee, and each is counted in
// switch_journal_damaged_records_total.
func TestDamagedDuplicateRecord(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen2, canteen)

	a, err := term.Consume(cardStaff, 1000, "")
	aResp := do(t, term, a, err)
	expectRC(t, "consume A", aResp, spec.RCApproved)
	b, err := term.Consume(cardStaff, 700, "")
	bResp := do(t, term, b, err)
	expectRC(t, "consume B", bResp, spec.RCApproved)
	expectKeptReference(t, sw, term, b)
	refA, keyA := posRef(t, term, a)
	if keyA.Date == "" {
		keyA.Date = sw.clock.Today().String()
	}
	if _, found, err := sw.journal.GetResponse(keyA); err != nil || !found {
		t.Fatalf("A's duplicate record: found %v, %v", found, err)
	}
	// Damage A's record: the switch's duplicate record of key A ('j o').
	k := append([]byte{'j', 'o'}, lenStr(keyA.Terminal)...)
	k = append(k, lenStr(keyA.Batch)...)
	k = append(k, lenStr(keyA.STAN)...)
	k = append(k, lenStr(keyA.Date)...)
	if err := sw.db.Set(k, []byte{2, 0xde, 0xad, 0xbe, 0xef}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sw.journal.GetResponse(keyA); !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("the damaged record reads %v; want ErrCorrupt (the test damaged the wrong key)", err)
	}
	// The ledger remembers the references this process committed and
	// would void A from memory; a record is found damaged when it is
	// read, as after a restart, which starts with nothing remembered.
	sw.ledger.ForgetRecentReferences()
	damaged := func(lookup string) float64 {
		return testutil.ToFloat64(sw.metrics.DamagedRecords.WithLabelValues(lookup))
	}

	// The batch's totals: B, A skipped.
	if got, err := sw.ledger.BatchTotals(termCanteen2, refA.Batch); err != nil || got != (ledger.Totals{DebitCount: 1, DebitAmount: 700}) {
		t.Fatalf("batch totals %+v, %v; want B's debit only", got, err)
	}
	if damaged(journal.LookupBatch) < 1 {
		t.Fatalf("batch walk: switch_journal_damaged_records_total{lookup=batch} = %v", damaged(journal.LookupBatch))
	}
	req, err := term.Settlement(spec.SettlementTotals{DebitCount: 1, DebitAmount: 700})
	resp := do(t, term, req, err)
	expectRC(t, "settlement", resp, spec.RCApproved)

	// B's reference is found; A's fails closed.
	if _, ok, err := ledger.PostingByReference(sw.db, ledger.DigitReferences(sw.journal), refA); ok || !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("A's reference: found %v, %v; want ErrCorrupt", ok, err)
	}
	if damaged(journal.LookupReference) < 1 {
		t.Fatalf("switch_journal_damaged_records_total{lookup=reference} = %v", damaged(journal.LookupReference))
	}
	voidA, err := term.Void(a, aResp, "")
	expectRC(t, "void A (its record damaged)", do(t, term, voidA, err), spec.RCSystemMalfunction)
	void, err := term.Void(b, bResp, "")
	expectRC(t, "void B", do(t, term, void, err), spec.RCApproved)

	// The day's export: every row, B with its fee, A without.
	var rows int
	src := recon.Source{Journal: sw.journal, Books: sw.db}
	if err := src.ScanDay(sw.clock.Today(), func(r *recon.Row) error {
		rows++
		return nil
	}); err != nil {
		t.Fatalf("export of the day: %v", err)
	}
	if rows != 4 {
		t.Fatalf("export: %d rows, want 4 (A, B, A's declined void, B's void)", rows)
	}
}

func lenStr(s string) []byte { return append([]byte{byte(len(s))}, s...) }
