package links

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// TestApplyRefusesAndChangesNothing: a reload whose links do not validate,
// that removes a link holding work, or that comes after Close, changes
// nothing: the same link keeps running and takes transactions.
func TestApplyRefusesAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	cur := e.link.Config()
	bad := cur
	bad.Addresses = nil
	other := cur
	other.Name = "bank-b"
	many := make([]Config, MaxLinks+1)
	for i := range many {
		many[i] = cur
		many[i].Name = fmt.Sprintf("bank-%d", i)
	}
	for _, c := range []struct {
		name string
		cfgs []Config
		want string
	}{
		{"no addresses", []Config{bad}, "addresses"},
		{"twice", []Config{cur, cur}, "configured twice"},
		{"too many", many, "at most"},
	} {
		rep, err := e.mgr.Apply(c.cfgs)
		if err == nil || !strings.Contains(err.Error(), c.want) || rep.Changed() {
			t.Errorf("%s: %+v, %v; want an error naming %q", c.name, rep, err, c.want)
		}
	}
	// Unchanged: the same link, nothing restarted.
	rep, err := e.mgr.Apply([]Config{cur})
	if err != nil || rep.Changed() || len(rep.Unchanged) != 1 {
		t.Fatalf("same configuration: %+v, %v", rep, err)
	}
	if l, _ := e.mgr.Link("bank-a"); l != e.link {
		t.Fatal("an unchanged link was replaced")
	}

	// An open request on bank-a: removing it is refused.
	id, stan, _ := e.mgr.recs.NextID("bank-a")
	lr := &journal.LinkRequest{Link: "bank-a", ID: id, STAN: stan, Transmission: spec.FormatTransmissionTime(time.Now()),
		MTI: "0200", ProcCode: "000000", Amount: 900, Card: bankCard, Terminal: tid, Merchant: "898310000000001",
		Batch: "000001", LocalSTAN: "000779", RRN: "000000000779", Acquirer: "12345678", Forwarding: "12345678",
		State: journal.LinkSent, Created: time.Now()}
	b := e.db.NewBatch()
	if err := e.mgr.recs.Put(b, lr); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	rep, err = e.mgr.Apply([]Config{other})
	if !errors.Is(err, ErrLinkBusy) || !strings.Contains(err.Error(), "1 requests sent with no final answer and 0 reversals queued") || rep.Changed() {
		t.Fatalf("removing a link with an open request: %+v, %v", rep, err)
	}
	if _, ok := e.mgr.Link("bank-b"); ok {
		t.Fatal("bank-b added by a refused reload")
	}
	if !e.link.enter() {
		t.Fatal("bank-a turns transactions away after a refused reload")
	}
	e.link.leave()
	if res, err, _ := e.consume(100, "123456"); err != nil || res.ResponseCode != spec.RCApproved {
		t.Fatalf("consume after a refused reload: %+v %v", res, err)
	}

	e.mgr.Close()
	if rep, err := e.mgr.Apply([]Config{cur, other}); err == nil || rep.Changed() {
		t.Fatalf("reload after Close: %+v, %v", rep, err)
	}
}

// TestApplyWaitsForTransactionsUnderWay: restarting a link waits for the
// transaction inside it; meanwhile new ones are turned away.
func TestApplyWaitsForTransactionsUnderWay(t *testing.T) {
	e := newEnv(t)
	if !e.link.enter() { // a transaction under way
		t.Fatal("link turns a transaction away")
	}
	changed := e.link.Config()
	changed.SendTimeout += time.Second
	type result struct {
		rep ReloadReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := e.mgr.Apply([]Config{changed})
		done <- result{rep, err}
	}()
	waitFor(t, "the link retired", func() bool { return e.link.retired.Load() })
	if e.link.enter() {
		t.Fatal("a retiring link admitted a new transaction")
	}
	select {
	case r := <-done:
		t.Fatalf("the restart finished with a transaction still under way: %+v %v", r.rep, r.err)
	default:
	}
	e.link.leave()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the restart did not finish after the transaction left")
	}
	if r.err != nil || len(r.rep.Restarted) != 1 {
		t.Fatalf("restart: %+v %v", r.rep, r.err)
	}
	l, _ := e.mgr.Link("bank-a")
	if l == e.link || l.Config().SendTimeout != changed.SendTimeout {
		t.Fatal("bank-a was not restarted with its new configuration")
	}
	waitFor(t, "the restarted link up", func() bool { return l.State() == StateUp })
}
