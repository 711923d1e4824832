package journal

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// answer commits one answered pair whose duplicate record carries txid
// (0: none), dated date (MMDD) and timed at.
func answer(t *testing.T, db *pebble.DB, j *Journal, term, batch, stan, date string, txid uint64, at time.Time) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	key := DuplicateKey{Terminal: term, Batch: batch, STAN: stan, Date: date}
	rec := ResponseRecord{ResponseCode: "00", Time: at, TxID: txid}
	if _, _, err := j.AppendAnswered(b, entryFor("20250314", term, batch, stan, "", In), entryFor("20250314", term, batch, stan, "", Out), key, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestReference: the ledger's reference of a terminal, batch and STAN is
// the highest transaction id among its duplicate records of every date;
// records without one (a decline, a reversal's MTI + STAN key) and other
// terminals, batches and STANs do not count; a batch's references come
// per STAN, in STAN order.
func TestReference(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	at := time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
	const term, batch = "10000001", "000001"
	answer(t, db, j, term, batch, "000005", "0312", 40, at)
	answer(t, db, j, term, batch, "000005", "1231", 90, at) // an older year's date sorts last: the id decides
	answer(t, db, j, term, batch, "000005", "0314", 0, at)  // declined since
	answer(t, db, j, term, batch, "0400000005", "0314", 0, at)
	answer(t, db, j, term, batch, "000004", "0314", 70, at)
	answer(t, db, j, term, batch, "000006", "0314", 0, at)
	answer(t, db, j, term, "000002", "000005", "0314", 95, at)
	answer(t, db, j, "10000002", batch, "000005", "0314", 96, at)
	answer(t, db, j, "1000000", batch, "000005", "0314", 97, at) // a prefix of the terminal

	for _, tc := range []struct {
		term, batch, stan string
		want              uint64
	}{
		{term, batch, "000005", 90},
		{term, batch, "000004", 70},
		{term, batch, "000006", 0},
		{term, batch, "000007", 0},
		{term, "000002", "000005", 95},
		{"10000002", batch, "000005", 96},
	} {
		if got, err := j.Reference(nil, tc.term, tc.batch, tc.stan); err != nil || got != tc.want {
			t.Errorf("Reference(%s, %s, %s) = %d, %v; want %d", tc.term, tc.batch, tc.stan, got, err, tc.want)
		}
	}
	var got []string
	err := j.BatchReferences(nil, term, batch, func(stan string, txid uint64) error {
		got = append(got, fmt.Sprintf("%s=%d", stan, txid))
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[000004=70 000005=90]" {
		t.Fatalf("BatchReferences: %v %v", got, err)
	}
	stop := errors.New("stop")
	if err := j.BatchReferences(nil, term, batch, func(string, uint64) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
	if _, err := j.Reference(nil, "", batch, "000005"); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("no terminal: %v", err)
	}
	// A snapshot reads what it holds.
	snap := db.NewSnapshot()
	defer snap.Close()
	answer(t, db, j, term, batch, "000005", "0315", 99, at)
	if got, _ := j.Reference(snap, term, batch, "000005"); got != 90 {
		t.Fatalf("through the snapshot: %d, want 90", got)
	}
	if got, _ := j.Reference(nil, term, batch, "000005"); got != 99 {
		t.Fatalf("committed: %d, want 99", got)
	}
}

// TestReferenceBound: one reference's records are read up to a bound.
func TestReferenceBound(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	at := time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
	for i := 0; i <= maxAnsweredDates; i++ {
		answer(t, db, j, "10000001", "000001", "000001", fmt.Sprintf("%08d", i), uint64(i+1), at)
	}
	if _, err := j.Reference(nil, "10000001", "000001", "000001"); err == nil {
		t.Fatalf("%d records of one reference read without error", maxAnsweredDates+1)
	}
}

// TestPruneAnswered: a duplicate record carrying a transaction id lives
// until ReferencesBefore, and past it while KeepReference asks; one
// without lives until Before.
func TestPruneAnswered(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	const term, batch = "10000001", "000001"
	answer(t, db, j, term, batch, "000001", "0301", 0, at)  // declined: response_days
	answer(t, db, j, term, batch, "000002", "0301", 11, at) // approved: the ledger's window
	answer(t, db, j, term, batch, "000003", "0301", 12, at) // a pre-auth with its hold open
	answer(t, db, j, term, batch, "000004", "0310", 13, at.Add(9*24*time.Hour))
	day := 24 * time.Hour
	held := map[uint64]bool{12: true}
	ret := func(now time.Time) ResponseRetention {
		return ResponseRetention{Before: now.Add(-7 * day), ReferencesBefore: now.Add(-32 * day),
			KeepReference: func(tx uint64) (bool, error) { return held[tx], nil }}
	}
	left := func() string {
		var s []string
		for _, stan := range []string{"000001", "000002", "000003", "000004"} {
			if _, found, err := j.GetResponse(DuplicateKey{Terminal: term, Batch: batch, STAN: stan, Date: map[bool]string{true: "0310", false: "0301"}[stan == "000004"]}); err != nil {
				t.Fatal(err)
			} else if found {
				s = append(s, stan)
			}
		}
		return fmt.Sprint(s)
	}
	for _, tc := range []struct {
		now     time.Time
		deleted int
		left    string
	}{
		{at.Add(8 * day), 1, "[000002 000003 000004]"},
		{at.Add(33 * day), 1, "[000003 000004]"},
		{at.Add(50 * day), 1, "[000003]"},
	} {
		st, more, err := j.PruneAnswered(ret(tc.now), 100)
		if err != nil || more || st.Responses != tc.deleted {
			t.Fatalf("prune as of %s: %+v %v %v; want %d deleted", tc.now, st, more, err, tc.deleted)
		}
		if got := left(); got != tc.left {
			t.Fatalf("prune as of %s: left %s, want %s", tc.now, got, tc.left)
		}
	}
	held[12] = false
	if st, _, err := j.PruneAnswered(ret(at.Add(50*day)), 100); err != nil || st.Responses != 1 || left() != "[]" {
		t.Fatalf("once the hold is gone: %+v %v, left %s", st, err, left())
	}
	// Without ReferencesBefore a record with an id goes with Before, as
	// PruneResponses always did.
	answer(t, db, j, term, batch, "000005", "0301", 14, at)
	if st, _, err := j.PruneResponses(at.Add(8*day), 100, nil); err != nil || st.Responses != 1 {
		t.Fatalf("PruneResponses: %+v %v", st, err)
	}
	kerr := errors.New("ledger down")
	answer(t, db, j, term, batch, "000006", "0301", 15, at)
	r := ret(at.Add(50 * day))
	r.KeepReference = func(uint64) (bool, error) { return false, kerr }
	if _, _, err := j.PruneAnswered(r, 100); !errors.Is(err, kerr) {
		t.Fatalf("KeepReference's error: %v", err)
	}
}

// TestReferenceDamagedRecord: a duplicate record that does not decode
// fails the lookup of its own reference only (it may be the newest, so
// that lookup fails closed with a *DamagedRecordError wrapping
// ErrCorrupt); a batch walk skips it and goes on; both report it, with
// the key's fields, to Options.OnDamagedRecord.
func TestReferenceDamagedRecord(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	var got []DamagedRecord
	j := openJournal(t, db, Options{OnDamagedRecord: func(d DamagedRecord) { got = append(got, d) }})
	at := time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
	const term, batch = "10000001", "000001"
	answer(t, db, j, term, batch, "000004", "0314", 70, at)
	answer(t, db, j, term, batch, "000005", "0313", 40, at)
	answer(t, db, j, term, batch, "000005", "0314", 80, at)
	answer(t, db, j, term, batch, "000006", "0314", 90, at)
	bad := DuplicateKey{Terminal: term, Batch: batch, STAN: "000005", Date: "0314"}.appendKeyIn(nil, spaceAnswered)
	if err := db.Set(bad, []byte{2, 0xde, 0xad}, pebble.Sync); err != nil {
		t.Fatal(err)
	}

	var refs []string
	err := j.BatchReferences(nil, term, batch, func(stan string, txid uint64) error {
		refs = append(refs, fmt.Sprintf("%s=%d", stan, txid))
		return nil
	})
	if err != nil || fmt.Sprint(refs) != "[000004=70 000005=40 000006=90]" {
		t.Fatalf("BatchReferences: %v %v", refs, err)
	}
	want := DamagedRecord{Terminal: term, Batch: batch, STAN: "000005", Date: "0314", Lookup: LookupBatch}
	if len(got) != 1 || got[0].Err == nil || !errors.Is(got[0].Err, ErrCorrupt) {
		t.Fatalf("reported %+v, want one %+v", got, want)
	}
	if g := got[0]; g.Terminal != want.Terminal || g.Batch != want.Batch || g.STAN != want.STAN || g.Date != want.Date || g.Lookup != want.Lookup {
		t.Fatalf("reported %+v, want %+v", g, want)
	}

	// Other references of the batch are looked up as before.
	for stan, want := range map[string]uint64{"000004": 70, "000006": 90} {
		if id, err := j.Reference(nil, term, batch, stan); err != nil || id != want {
			t.Errorf("Reference %s = %d, %v; want %d", stan, id, err, want)
		}
	}
	// The damaged record's own reference fails closed.
	got = nil
	id, err := j.Reference(nil, term, batch, "000005")
	var de *DamagedRecordError
	if !errors.As(err, &de) || !errors.Is(err, ErrCorrupt) || id != 0 {
		t.Fatalf("Reference of the damaged record's reference = %d, %v; want a *DamagedRecordError", id, err)
	}
	if de.Record.STAN != "000005" || de.Record.Date != "0314" || len(got) != 1 || got[0].Lookup != LookupReference {
		t.Fatalf("error %+v, reported %+v", de.Record, got)
	}
}

// TestPruneAnsweredKeepsNewer: when an older record of a reference is
// kept (a pre-auth whose hold is still open), every newer record of that
// reference (answered after the STAN came round) is kept too, even past
// its own window: deleting only the newer one would make Reference name
// the old pre-auth again. Once the older one may go, both go.
func TestPruneAnsweredKeepsNewer(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	j := openJournal(t, db, Options{})
	day := 24 * time.Hour
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	const term, batch = "10000001", "000001"
	// One reference: a pre-auth (id 10) on 0301 whose hold stays open,
	// then, with the STAN come round, a consume (id 20) on 0305 and a
	// decline on 0306; and a second reference whose older record goes.
	answer(t, db, j, term, batch, "000007", "0301", 10, at)
	answer(t, db, j, term, batch, "000007", "0305", 20, at.Add(4*day))
	answer(t, db, j, term, batch, "000007", "0306", 0, at.Add(5*day))
	answer(t, db, j, term, batch, "000008", "0301", 11, at)
	answer(t, db, j, term, batch, "000008", "0305", 21, at.Add(4*day))
	held := map[uint64]bool{10: true}
	now := at.Add(60 * day)
	ret := ResponseRetention{Before: now.Add(-7 * day), ReferencesBefore: now.Add(-32 * day),
		KeepReference: func(tx uint64) (bool, error) { return held[tx], nil }}
	ref := func(stan string) uint64 {
		id, err := j.Reference(nil, term, batch, stan)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// The decline and the second reference's two records go; the
	// pre-auth's record stays, and so does the consume's, newer.
	if st, more, err := j.PruneAnswered(ret, 100); err != nil || more || st.Responses != 3 {
		t.Fatalf("prune: %+v %v %v; want 3 deleted", st, more, err)
	}
	if got := ref("000007"); got != 20 {
		t.Fatalf("Reference after the prune = %d, want 20 (the newer consume, not the pre-auth kept for its hold)", got)
	}
	if got := ref("000008"); got != 0 {
		t.Fatalf("second reference = %d, want 0 (both records past their window)", got)
	}
	// A smaller bound, resumed across calls, decides the same.
	held[10] = false
	for {
		_, more, err := j.PruneAnswered(ret, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
	}
	if got := ref("000007"); got != 0 {
		t.Fatalf("once the hold is gone: Reference = %d, want 0", got)
	}
}

// TestPruneAnsweredOlderReference: a reference the caller keeps outside
// the duplicate records (the ledger's own 'l r' of an original written
// before, OlderReference) keeps the newer records of that reference as
// a kept older record does; one naming a newer transaction, or none,
// keeps nothing.
func TestPruneAnsweredOlderReference(t *testing.T) {
	day := 24 * time.Hour
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	now := at.Add(60 * day)
	const term, batch, stan = "10000001", "000001", "000007"
	for _, tc := range []struct {
		own  uint64
		kept bool
	}{{25, true}, {0, false}, {40, false}} {
		db := openDB(t, vfs.NewMem())
		j := openJournal(t, db, Options{})
		answer(t, db, j, term, batch, stan, "0305", 30, at)
		var asked []string
		ret := ResponseRetention{Before: now.Add(-7 * day), ReferencesBefore: now.Add(-32 * day),
			OlderReference: func(tm, b, s string) (uint64, error) {
				asked = append(asked, tm+"/"+b+"/"+s)
				return tc.own, nil
			}}
		if _, _, err := j.PruneAnswered(ret, 100); err != nil {
			t.Fatal(err)
		}
		id, err := j.Reference(nil, term, batch, stan)
		if err != nil || (id == 30) != tc.kept {
			t.Errorf("ledger's own reference %d: Reference = %d, %v; kept %v, want %v", tc.own, id, err, id == 30, tc.kept)
		}
		if fmt.Sprint(asked) != "["+term+"/"+batch+"/"+stan+"]" {
			t.Errorf("OlderReference asked %v", asked)
		}
		db.Close()
	}
}
