package recharge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// syncCountFS counts the syncs of Pebble's write-ahead log: one a
// synced commit (or a group of concurrent ones).
type syncCountFS struct {
	vfs.FS
	walSyncs *atomic.Int64
}

func (fs syncCountFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return syncCountFile{File: f, n: fs.walSyncs}, nil
}

func (fs syncCountFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs syncCountFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

type syncCountFile struct {
	vfs.File
	n *atomic.Int64
}

func (f syncCountFile) Sync() error                  { f.n.Add(1); return f.File.Sync() }
func (f syncCountFile) SyncData() error              { f.n.Add(1); return f.File.SyncData() }
func (f syncCountFile) SyncTo(o int64) (bool, error) { f.n.Add(1); return f.File.SyncTo(o) }

// openUnbindStore opens a recharge service with a journal on fs.
func openUnbindStore(t *testing.T, fs vfs.FS) (*Service, *journal.Journal, *pebble.DB) {
	t.Helper()
	o := ledger.RecommendedPebbleOptions()
	o.FS = fs
	o.Logger = quiet{}
	db, err := pebble.Open("", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	j, err := journal.Open(db, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{DB: db, Journal: j, Sealer: clearSealer{},
		Today: func() ledger.BusinessDate { return today }})
	if err != nil {
		t.Fatal(err)
	}
	return s, j, db
}

// TestUnbindGatewayLarge: `switchctl gateways unbind` of 2,500 cards
// (three calls of at most MaxUnbindGateway) unbinds every card of the
// gateway and no other, in a bounded number of synced commits — not one
// a card, which took a call of 1,000 cards past switchctl's timeout. A
// crash after some of its commits (the synced state of the disk then)
// leaves each card either bound as before or unbound with its
// card_unbind journal pair, never one without the other; and since a
// crash copy taken between commits cannot see a delete and its journal
// pair split into two commits, every batch is checked before its commit
// to hold both for each of its cards.
func TestUnbindGatewayLarge(t *testing.T) {
	const cards, gw, other = 2500, "old-bank", "other-bank"
	mem := vfs.NewCrashableMem()
	var syncs atomic.Int64
	s, _, db := openUnbindStore(t, syncCountFS{FS: mem, walSyncs: &syncs})

	pan := func(i int) string { return fmt.Sprintf("623015000000000%04d", i) } // distinct when masked
	rec := func(i int, gateway string) []byte {
		raw, _ := json.Marshal(bindingRecord{Gateway: gateway, BankCard: []byte("6222020000000000018"),
			Account: []byte(fmt.Sprintf("ACC-%d", i)), Masked: "622202*********0018", MaskedAc: "**-1", Operator: "alice"})
		return raw
	}
	b := db.NewBatch()
	for i := 0; i < cards+3; i++ {
		g := gw
		if i >= cards {
			g = other
		}
		if err := b.Set(bindingKey(pan(i)), rec(i, g), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}

	// The crash: the disk as synced after the second commit of the first
	// call, some unsynced data kept at random.
	var commits, unboundAtCrash int
	var crashed *vfs.MemFS
	s.afterUnbindBatch = func(n int) {
		commits++
		if crashed == nil {
			unboundAtCrash += n
		}
		if commits == 2 {
			crashed = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(1, 2))})
		}
	}

	// Each batch holds, for every card it unbinds, the binding's delete
	// and the card's journal pair (one pair's keys, counted on a batch
	// of its own): never one without the other, which a crash between
	// two commits would split.
	ref := db.NewBatch()
	if err := s.addBindingChange(ref, pan(0), "card_unbind", "bob", BindingView{Card: "623015*********0000"},
		func(*pebble.Batch) error { return nil }); err != nil {
		t.Fatal(err)
	}
	perPair := int(ref.Count())
	ref.Close()
	if perPair == 0 {
		t.Fatal("a journal pair adds no key")
	}
	batches := 0
	s.beforeUnbindCommit = func(b *pebble.Batch, pans []string) {
		batches++
		deleted := map[string]bool{}
		var journalOps int
		r := b.Reader()
		for {
			kind, k, _, ok, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if kind == pebble.InternalKeyKindDelete && bytes.HasPrefix(k, []byte{keyPrefix, tagBinding}) {
				deleted[string(k[2:])] = true
				continue
			}
			journalOps++
		}
		if len(deleted) != len(pans) || journalOps != len(pans)*perPair {
			t.Fatalf("batch %d of %d cards: %d binding deletes and %d journal keys, want %d and %d",
				batches, len(pans), len(deleted), journalOps, len(pans), len(pans)*perPair)
		}
		for _, p := range pans {
			if !deleted[p] {
				t.Fatalf("batch %d: card %s unbound without its binding's delete", batches, cardno.Mask(p))
			}
		}
	}

	before := syncs.Load()
	total, calls := 0, 0
	for more := true; more; calls++ {
		if calls == 5 {
			t.Fatalf("still more to unbind after %d calls (%d unbound)", calls, total)
		}
		var n int
		var err error
		n, more, err = s.UnbindGateway(gw, "bob", MaxUnbindGateway)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != cards || calls != 3 {
		t.Fatalf("unbound %d cards in %d calls; want %d in 3", total, calls, cards)
	}
	if batches != cards/unbindPerCommit {
		t.Fatalf("%d batches checked, want %d", batches, cards/unbindPerCommit)
	}
	// One synced commit per card would be 2,500 syncs.
	if n := syncs.Load() - before; n > cards/10 {
		t.Fatalf("%d write-ahead log syncs to unbind %d cards: want bounded batches", n, cards)
	}
	if bs, err := s.BindingsTo([]string{gw, other}, nil, 1); err != nil || fmt.Sprint(bs.Bound) != "[{other-bank 3 [623015*********2500] 0 []}]" {
		t.Fatalf("bindings after the unbind: %v, %v", bs, err)
	}

	// After the crash: each card bound as before, or unbound with its
	// pair in the journal.
	if crashed == nil || unboundAtCrash == 0 || unboundAtCrash >= cards {
		t.Fatalf("the crash was taken after %d of %d cards", unboundAtCrash, cards)
	}
	s2, j2, db2 := openUnbindStore(t, crashed)
	journaled := map[string]int{}
	err := j2.ByBusinessDay(today.String(), func(e *journal.Entry) bool {
		if e.TxType == "card_unbind" && e.Direction == journal.In {
			var v BindingView
			if err := json.Unmarshal(e.Raw, &v); err != nil || v.Gateway != gw || v.Operator != "alice" {
				t.Errorf("journaled unbinding %s: %+v, %v", e.Raw, v, err)
			}
			journaled[v.Card]++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	unbound := 0
	for i := 0; i < cards+3; i++ {
		raw, err := get(db2, bindingKey(pan(i)))
		if err != nil {
			t.Fatal(err)
		}
		masked := cardno.Mask(pan(i))
		switch {
		case raw == nil && journaled[masked] == 1:
			unbound++
		case raw != nil && bytes.Equal(raw, rec(i, map[bool]string{true: other, false: gw}[i >= cards])) && journaled[masked] == 0:
		default:
			t.Fatalf("card %s after the crash: binding %q, %d unbindings journaled", masked, raw, journaled[masked])
		}
	}
	if unbound != unboundAtCrash {
		t.Fatalf("%d cards unbound after the crash; %d were committed before it", unbound, unboundAtCrash)
	}
	// The call repeated after the restart finishes the job.
	for more := true; more; {
		var err error
		if _, more, err = s2.UnbindGateway(gw, "bob", MaxUnbindGateway); err != nil {
			t.Fatal(err)
		}
	}
	if bs, err := s2.BindingsTo([]string{gw}, nil, 1); err != nil || len(bs.Bound) != 0 {
		t.Fatalf("bindings after the repeated unbind: %v, %v", bs, err)
	}
}

// TestUnbindDamagedRecord: `switchctl card unbind CARD` removes a card's
// damaged binding record (one that does not decode), journaled as a
// card_unbind with the card masked and the gateway its bytes still name,
// like the gateway unbind's removal; the card is then not bound.
func TestUnbindDamagedRecord(t *testing.T) {
	s, j, db := openUnbindStore(t, vfs.NewMem())
	const pan, unreadable = "6230150000000000022", "6230150000000000033"
	for p, raw := range map[string]string{
		pan:        `{"gateway":"bank-a","bank_card":"MTIz","acc`,
		unreadable: "\x00\xff\x13",
	} {
		if err := db.Set(bindingKey(p), []byte(raw), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := s.Binding(pan); ok || err == nil {
		t.Fatalf("a damaged binding reads %v, %v", ok, err)
	}
	for p, gw := range map[string]string{pan: "bank-a", unreadable: ""} {
		v, err := s.Unbind(p, "bob")
		if err != nil || v.Card != cardno.Mask(p) || v.Gateway != gw {
			t.Fatalf("unbind of the damaged record of %s: %+v, %v", cardno.Mask(p), v, err)
		}
		if raw, err := get(db, bindingKey(p)); raw != nil || err != nil {
			t.Fatalf("binding of %s after the unbind: %q, %v", cardno.Mask(p), raw, err)
		}
		if _, err := s.Unbind(p, "bob"); !errors.Is(err, ErrNotBound) {
			t.Fatalf("second unbind of %s: %v", cardno.Mask(p), err)
		}
	}
	journaled := map[string]string{}
	err := j.ByBusinessDay(today.String(), func(e *journal.Entry) bool {
		if e.TxType == "card_unbind" && e.Direction == journal.In {
			var v BindingView
			if err := json.Unmarshal(e.Raw, &v); err != nil || e.Peer != "operator:bob" {
				t.Errorf("journaled unbinding %s by %s: %v", e.Raw, e.Peer, err)
			}
			journaled[v.Card] = v.Gateway
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{cardno.Mask(pan): "bank-a", cardno.Mask(unreadable): ""}; fmt.Sprint(journaled) != fmt.Sprint(want) {
		t.Fatalf("journaled unbindings %v, want %v", journaled, want)
	}
}
