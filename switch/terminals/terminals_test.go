package terminals

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
)

// claim runs ClaimNewSTAN in a goroutine and reports its answer, so a
// test can see whether it is waiting.
func claim(r *Registry, batch, stan uint32, load func() (uint32, error)) <-chan claimed {
	ch := make(chan claimed, 1)
	go func() {
		fresh, c, err := r.ClaimNewSTAN("10000001", batch, stan, false, plain(load))
		ch <- claimed{fresh, c.Release, err}
	}()
	return ch
}

// plain is a load of a batch without reversals.
func plain(load func() (uint32, error)) func(string, uint32) (uint32, uint32, error) {
	return func(string, uint32) (uint32, uint32, error) {
		m, err := load()
		return m, 0, err
	}
}

type claimed struct {
	fresh   bool
	release func()
	err     error
}

func waiting(t *testing.T, ch <-chan claimed, what string) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("%s did not wait for the request in flight (fresh %v)", what, c.fresh)
	case <-time.After(50 * time.Millisecond):
	}
}

func answered(t *testing.T, ch <-chan claimed, what string) claimed {
	t.Helper()
	select {
	case c := <-ch:
		if c.err != nil {
			t.Fatalf("%s: %v", what, c.err)
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waits", what)
	}
	return claimed{}
}

func TestTraceWatermark(t *testing.T) {
	r := &Registry{m: map[string]*terminalEntry{"10000001": {}}}
	var committed atomic.Uint32 // the highest STAN of batch 1 in storage
	load := func() (uint32, error) { return committed.Load(), nil }

	// A new STAN is fresh; its copy waits until the first is committed,
	// then takes the careful path.
	first := answered(t, claim(r, 1, 5, load), "first 5")
	if !first.fresh {
		t.Fatal("STAN 5 above an empty batch is not fresh")
	}
	copy5 := claim(r, 1, 5, load)
	waiting(t, copy5, "copy of 5")
	committed.Store(5)
	first.release()
	if c := answered(t, copy5, "copy of 5"); c.fresh {
		t.Fatal("a retransmission was taken as fresh")
	} else {
		// A third copy waits for the second, careful one too: it must not
		// read the second's answer before that is durable.
		third := claim(r, 1, 5, load)
		waiting(t, third, "third copy of 5")
		c.release()
		answered(t, third, "third copy of 5").release()
	}

	// A sign-on moves the terminal to batch 2 while STAN 7 of batch 1 is
	// in flight and not committed; a copy of 7 in batch 1 reloads the
	// watermark from storage (5), but still waits, and is not fresh after.
	seven := answered(t, claim(r, 1, 7, load), "7")
	answered(t, claim(r, 2, 1, func() (uint32, error) { return 0, nil }), "batch 2").release()
	copy7 := claim(r, 1, 7, load)
	waiting(t, copy7, "copy of 7 after a batch change")
	committed.Store(7)
	seven.release()
	if c := answered(t, copy7, "copy of 7"); c.fresh {
		t.Fatal("a copy of an in-flight request was taken as fresh after a reload")
	} else {
		c.release()
	}

	// An unknown terminal is never fresh.
	if fresh, c, err := r.ClaimNewSTAN("99999999", 1, 1, false, plain(load)); fresh || err != nil {
		t.Fatalf("unknown terminal: fresh %v, %v", fresh, err)
	} else {
		c.Release()
	}
}

// TestReversalWatermark: a reversal repeats its original's STAN, so it
// is never above the watermark of requests; it is fresh when above every
// reversal of the batch (stored or claimed), never when at or below one,
// nor while a request with its STAN is in flight. A reversal raises the
// requests' watermark too: a late original of it is not fresh.
func TestReversalWatermark(t *testing.T) {
	r := &Registry{m: map[string]*terminalEntry{"10000001": {}}}
	loads := 0
	load := func(string, uint32) (uint32, uint32, error) { loads++; return 20, 8, nil } // stored: STANs to 20, reversals to 8
	rev := func(stan uint32) bool {
		t.Helper()
		fresh, c, err := r.ClaimNewSTAN("10000001", 1, stan, true, load)
		if err != nil {
			t.Fatal(err)
		}
		c.Release()
		return fresh
	}
	req := func(stan uint32) bool {
		t.Helper()
		fresh, c, err := r.ClaimNewSTAN("10000001", 1, stan, false, load)
		if err != nil {
			t.Fatal(err)
		}
		c.Release()
		return fresh
	}
	if rev(8) || rev(5) {
		t.Fatal("a reversal at or below the stored reversals' watermark was fresh")
	}
	if !rev(12) {
		t.Fatal("a reversal of STAN 12 above every stored reversal (8) was not fresh")
	}
	if rev(12) {
		t.Fatal("a retransmitted reversal was fresh")
	}
	if !rev(25) || req(25) || req(21) {
		t.Fatal("after a reversal of 25 (its original never seen): want it fresh, a late original and 21 not")
	}
	if !req(26) {
		t.Fatal("a new request above everything was not fresh")
	}
	if loads != 1 {
		t.Fatalf("the batch's stored trace numbers read %d times, want once", loads)
	}
	// A reversal of a request in flight waits for it and is not fresh.
	orig, origClaim, err := r.ClaimNewSTAN("10000001", 1, 30, false, load)
	if err != nil || !orig {
		t.Fatalf("request 30: fresh %v, %v", orig, err)
	}
	ch := make(chan bool, 1)
	go func() {
		fresh, c, err := r.ClaimNewSTAN("10000001", 1, 30, true, load)
		if err == nil {
			c.Release()
		}
		ch <- fresh
	}()
	select {
	case <-ch:
		t.Fatal("the reversal of a request in flight did not wait for it")
	case <-time.After(50 * time.Millisecond):
	}
	origClaim.Release()
	select {
	case fresh := <-ch:
		if fresh {
			t.Fatal("the reversal of a request in flight was fresh")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reversal still waits")
	}
}

func TestPermittedSetRefusesInstitutionTypes(t *testing.T) {
	if _, err := PermittedSet([]string{"consume", "recharge_credit"}, false); err == nil {
		t.Fatal("a terminal was permitted an outside institution's credit")
	}
	set, err := PermittedSet([]string{"consume", "transfer_load"}, false)
	if err != nil || set != 1<<uint(spec.Consume)|1<<uint(spec.TransferLoad) {
		t.Fatalf("set %b, %v", set, err)
	}
	all, _ := PermittedSet(nil, true)
	for _, tx := range spec.TxTypes() {
		if tx.FromInstitution() && all&(1<<uint(tx)) != 0 {
			t.Fatalf("the default set of a kiosk holds %v", tx)
		}
	}
}

// TestChangePermitted: a kiosk registered before transfer loads existed
// (its defaults then: the purchase types and the cash-load types) is given
// transfer_load and keeps the rest; forbidding takes one type away; a
// kiosk's type is refused for a terminal that is not a kiosk, an unknown
// or institution type for every terminal, and nothing changes then.
func TestChangePermitted(t *testing.T) {
	kioskDefaults, err := PermittedSet(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	before := kioskDefaults &^ (1 << uint(spec.TransferLoad))
	kiosk := &Terminal{ID: "90000001", MayLoad: true, Permitted: before}
	if kiosk.Permits(spec.TransferLoad) {
		t.Fatal("the old kiosk already permits transfer_load")
	}
	if err := kiosk.ChangePermitted([]string{"transfer_load"}, true); err != nil {
		t.Fatal(err)
	}
	if kiosk.Permitted != kioskDefaults {
		t.Fatalf("permitted %b, want a kiosk's defaults %b", kiosk.Permitted, kioskDefaults)
	}
	if err := kiosk.ChangePermitted([]string{"refund", "pre_auth"}, false); err != nil {
		t.Fatal(err)
	}
	if kiosk.Permits(spec.Refund) || kiosk.Permits(spec.PreAuth) || !kiosk.Permits(spec.TransferLoad) || !kiosk.Permits(spec.Consume) {
		t.Fatalf("after forbidding refund and pre_auth: %b", kiosk.Permitted)
	}

	pos := &Terminal{ID: "10000001", Permitted: before &^ (1<<uint(spec.CashLoad) | 1<<uint(spec.CashLoadVoid) | 1<<uint(spec.PendingClaim))}
	was := pos.Permitted
	for _, c := range []struct {
		labels []string
		want   string
	}{
		{[]string{"consume", "transfer_load"}, "transfer_load is a kiosk's type and terminal 10000001 is not registered with may_load"},
		{[]string{"cash_load"}, "cash_load is a kiosk's type"},
		{[]string{"recharge_credit"}, `unknown transaction type "recharge_credit"`},
		{[]string{"nope"}, `unknown transaction type "nope"`},
		{nil, "no transaction type given"},
	} {
		err := pos.ChangePermitted(c.labels, true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("permit %v: %v, want %q", c.labels, err, c.want)
		}
		if pos.Permitted != was {
			t.Fatalf("permit %v changed the set to %b", c.labels, pos.Permitted)
		}
	}
	// A terminal that is not a kiosk may drop a type it does not have.
	if err := pos.ChangePermitted([]string{"transfer_load"}, false); err != nil || pos.Permitted != was {
		t.Fatalf("forbid transfer_load: %v %b", err, pos.Permitted)
	}
}
