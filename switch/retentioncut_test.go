package switching

import (
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
)

// TestStartOf: a business day starts where dateOf moves on to it, in the
// clock's zone and with its cutover, across changes of daylight saving
// time.
func TestStartOf(t *testing.T) {
	for _, zone := range []string{"Asia/Shanghai", "America/New_York", "Europe/Berlin", "UTC"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, cutover := range []string{"00:00", "23:00", "21:30", "01:30", "02:30"} {
			cut, err := BusinessDayConfig{Cutover: cutover}.cutoverOf()
			if err != nil {
				t.Fatal(err)
			}
			c := &businessClock{loc: loc, cutover: cut}
			for _, d := range []ledger.BusinessDate{20260307, 20260308, 20260309, 20260328, 20260329, 20260330,
				20261024, 20261025, 20261026, 20261031, 20261101, 20261102, 20261204, 20270101} {
				s := c.startOf(d)
				if got := c.spanOf(s).date; got != d {
					t.Errorf("%s cutover %s: start of %d is %s, on %d", zone, cutover, d, s, got)
				}
				if got := c.spanOf(s.Add(-time.Nanosecond)).date; got != d.AddDays(-1) {
					t.Errorf("%s cutover %s: just before the start of %d (%s): %d", zone, cutover, d, s, got)
				}
			}
		}
	}
}

// TestRetentionReferenceCutBusinessDays: a duplicate record naming a
// posting set is kept until the start of business day today − lookup
// window − 1, counted in business days as the ledger counts its own
// window, not (window + 1) × 24 clock hours back: a request answered
// after a day closed early is timed before its business day starts,
// and its record stays as long as the ledger's window keeps that day.
func TestRetentionReferenceCutBusinessDays(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.BusinessDay.Cutover = "23:00" })
	lookup := sw.retention.lookupDays
	loc := sw.clock.loc
	// Day D closed early at 20:00: a request at 20:30 is of business day
	// D+1 (D's cutover is 23:00).
	answered := time.Date(2026, 10, 1, 20, 30, 0, 0, loc)
	key := journal.DuplicateKey{Terminal: "99999999", Batch: "000001", STAN: "000001", Date: "1001"}
	b := sw.db.NewBatch()
	if err := sw.journal.PutResponse(b, key, journal.ResponseRecord{ResponseCode: "00", Time: answered, TxID: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	kept := func(now time.Time) bool {
		t.Helper()
		if rep, err := sw.retention.run(now); err != nil || !rep.Complete {
			t.Fatalf("retention run as of %s: %v %+v", now, err, rep)
		}
		_, found, err := sw.journal.GetResponse(key)
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	// Business day D+1+lookup, 22:00 (before its cutover): the ledger's
	// window still starts at D+1, so the record of D+1 stays (lookup+1
	// clock days back would be D 22:00, after it was answered).
	d1 := ledger.BusinessDate(20261002)
	now := time.Date(2026, 10, 2+lookup, 22, 0, 0, 0, loc)
	if got := sw.clock.dateOf(now); got != d1.AddDays(lookup) {
		t.Fatalf("test clock: %s is business day %d, want %d", now, got, d1.AddDays(lookup))
	}
	if !kept(now) {
		t.Fatalf("as of %s (business day %d, lookup window %d days): the record of business day %d pruned inside the window", now, sw.clock.dateOf(now), lookup, d1)
	}
	// A business day later the window has left D+1 and the day before
	// it: the record goes.
	if kept(now.Add(24 * time.Hour)) {
		t.Fatalf("as of %s: the record kept past the window and its day more", now.Add(24*time.Hour))
	}
}

// TestRetentionOlderReference: the journal's retention asks the ledger's
// own reference record ('l r') of a POS original written before the
// switch kept references in its duplicate records, so a newer duplicate
// record of that reference outlives it (docs/journal.md#retention).
func TestRetentionOlderReference(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen2, canteen)
	req, _ := oldLayoutConsume(t, sw, term, cardStaff, 1000, oldRRN(sw, 1))
	ref, key := posRef(t, term, req)
	p, ok, err := ledger.PostingByReference(sw.db, nil, ref)
	if err != nil || !ok {
		t.Fatalf("old-layout original's 'l r': %v %v", ok, err)
	}
	if got, err := sw.retention.olderReference(key.Terminal, key.Batch, key.STAN); err != nil || got != p.TxID {
		t.Fatalf("olderReference(%s/%s/%s) = %d, %v; want %d", key.Terminal, key.Batch, key.STAN, got, err, p.TxID)
	}
	for _, k := range [][3]string{{key.Terminal, key.Batch, "000999"}, {key.Terminal, key.Batch, "0400" + key.STAN}} {
		if got, err := sw.retention.olderReference(k[0], k[1], k[2]); err != nil || got != 0 {
			t.Fatalf("olderReference(%v) = %d, %v; want 0", k, got, err)
		}
	}
}
