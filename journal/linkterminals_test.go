package journal

import (
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestLinkTerminals: ByLocal of a terminal that never forwarded anything
// is answered ErrNotFound without a read; one Links instance's mappings
// are found through every other instance on the database, and after a
// restart through the terminals read back from the mappings; a damaged
// mapping key makes every terminal read.
func TestLinkTerminals(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	a, _ := OpenLinks(db)
	b, _ := OpenLinks(db) // the reconciliation's instance beside the links'
	put := func(l *Links, id uint64, terminal, stan string) {
		t.Helper()
		r := &LinkRequest{Link: "bank-a", ID: id, STAN: STANOf(id), MTI: "0200", ProcCode: "000000", Amount: 100,
			Card: "6217001234567890123", Terminal: terminal, Merchant: "898310000000001", Batch: "000001",
			LocalSTAN: stan, BusinessDate: "20260315", TxType: "consume", State: LinkSent,
			Created: time.Date(2026, 3, 15, 6, 30, 5, 0, time.UTC)}
		bt := db.NewBatch()
		defer bt.Close()
		if err := l.Put(bt, r); err != nil {
			t.Fatal(err)
		}
		if err := bt.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	found := func(l *Links, terminal, stan string) bool {
		t.Helper()
		_, err := l.ByLocal(terminal, "000001", stan)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	if found(b, "10000001", "000001") {
		t.Fatal("found in an empty store")
	}
	put(a, 1, "10000001", "000001")
	if !found(b, "10000001", "000001") || !found(a, "10000001", "000001") {
		t.Fatal("a mapping written through one instance is not found through both")
	}
	if found(b, "10000001", "000002") || found(b, "10000002", "000001") {
		t.Fatal("found an original never forwarded")
	}
	put(b, 2, "10000003", "000007")
	if !found(a, "10000003", "000007") {
		t.Fatal("a new terminal's mapping written through the other instance not found")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart: the terminals are read back from the mappings.
	db = openDB(t, fs)
	c, _ := OpenLinks(db)
	if !found(c, "10000001", "000001") || !found(c, "10000003", "000007") || found(c, "10000002", "000001") {
		t.Fatal("after a restart the terminals of the mappings are not read back")
	}
	if got := len(c.terminals.m); got != 2 {
		t.Fatalf("%d terminals read back, want 2", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A damaged mapping key: no terminal is ruled out.
	db = openDB(t, fs)
	if err := db.Set([]byte{prefixJournal, spaceLinkMap, 9, '1'}, nil, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	d, _ := OpenLinks(db)
	if !d.terminals.mayHave(db, "10000002") {
		t.Fatal("a damaged mapping key ruled a terminal out")
	}
	if !found(d, "10000001", "000001") {
		t.Fatal("a mapping not found beside a damaged key")
	}
}
