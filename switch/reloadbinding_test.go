package switching

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/admin"
	"github.com/cardswitch/cardswitch/switch/links"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestBindingToReloadedLink: a card can be bound (admin API) to a gateway
// link a reload added, without a restart, and its kiosk's transfer loads
// then go to that link's bank; a reload removing the link while a card
// is bound to it is refused, naming the card, until the link's bindings
// are removed (DELETE /api/v1/gateways/{name}/bindings); once a reload
// has removed the link, no card can be bound to it
// (docs/gateway-links.md "Reloading links").
func TestBindingToReloadedLink(t *testing.T) {
	sw, simA := linkedSwitch(t, func(c *Config) {
		c.Transfer = TransferConfig{MaxLoad: 50000, MaxDailyLoad: 80000}
		c.Gateways[0].SendTimeout = 3 * time.Second
	})
	simB, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simB.Close() })
	_, _, addr := sw.Addrs()
	const bankB = "bank-b"
	bind := func(card, gateway string) (int, []byte) {
		return adminDo(t, "POST", "http://"+addr+"/api/v1/cards/"+card+"/binding",
			`{"gateway":"`+gateway+`","bank_card":"`+bankCard+`","account":"`+bankAccount+`","operator":"alice"}`)
	}
	if code, b := bind(cardStaff, bankB); code != http.StatusBadRequest || !strings.Contains(string(b), "not a gateway link") {
		t.Fatalf("binding to a link not configured: %d %s", code, b)
	}

	linkA := sw.cfg.Gateways[0]
	linkB := links.Config{Name: bankB, Addresses: []string{simB.Addr()},
		AcquirerID: "48020000", ForwardingID: "48020000", InstitutionID: gwsim.DemoInstitution,
		SendTimeout: 3 * time.Second, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}
	withLinks := func(ls ...links.Config) *Config {
		cfg := *sw.cfg
		cfg.Gateways = ls
		cfg.Seed.ZoneKeys = nil
		for _, l := range ls {
			cfg.Seed.ZoneKeys = append(cfg.Seed.ZoneKeys, SeedZoneKey{Link: l.Name, ZMK: gwsim.DemoZMK})
		}
		return &cfg
	}
	rep, err := sw.Reload(withLinks(linkA, linkB))
	if err != nil || !slices.Equal(rep.Links.Added, []string{bankB}) {
		t.Fatalf("reload adding bank B: %+v, %v", rep, err)
	}
	waitUntil(t, "bank B up", func() bool { l, ok := sw.links.Link(bankB); return ok && l.State() == links.StateUp })

	// Bound to bank B with no restart; the load's bank leg goes there.
	if code, b := bind(cardStaff, bankB); code != http.StatusCreated {
		t.Fatalf("binding to the reloaded link: %d %s", code, b)
	}
	kiosk := signedOn(t, sw, termKiosk, canteen)
	cash, _ := purses(t, sw, cardStaff)
	req, err := kiosk.TransferLoad(cardStaff, 2500, pinStaff)
	expectRC(t, "transfer load over the reloaded link", do(t, kiosk, req, err), spec.RCApproved)
	expectPurses(t, sw, cardStaff, cash+2500, 0)
	if b, _ := simB.Balance(bankCard); b != bankStart-2500 {
		t.Fatalf("bank B balance %v, want %v", b, bankStart-2500)
	}
	if got := simBalance(t, simA); got != bankStart {
		t.Fatalf("bank A balance %v: the leg went to the wrong bank", got)
	}

	// A reload removing it while a card is bound to it is refused, naming
	// the card (masked): its transfer loads would go to a link that no
	// longer exists. Nothing changes.
	rep, err = sw.Reload(withLinks(linkA))
	if !errors.Is(err, ErrLinkBound) || !strings.Contains(err.Error(), "gateway bank-b cannot be removed: 1 cards are bound") ||
		!strings.Contains(err.Error(), "623015*********0020") || rep.Applied || rep.Links.Changed() {
		t.Fatalf("reload removing a link cards are bound to: %+v, %v", rep, err)
	}
	if _, ok := sw.links.Link(bankB); !ok {
		t.Fatal("bank B removed by a refused reload")
	}
	// switchctl gateways unbind bank-b: the card's binding goes (another
	// call finds nothing more); then the reload removes the link.
	for i, want := range []admin.UnbindGatewayResponse{{Gateway: bankB, Unbound: 1}, {Gateway: bankB}} {
		code, b := adminDo(t, "DELETE", "http://"+addr+"/api/v1/gateways/"+bankB+"/bindings?operator=alice", "")
		var got admin.UnbindGatewayResponse
		if err := json.Unmarshal(b, &got); code != http.StatusOK || err != nil || got != want {
			t.Fatalf("unbind bank B, call %d: %d %s", i, code, b)
		}
	}
	if code, b := adminDo(t, "GET", "http://"+addr+"/api/v1/cards/"+cardStaff+"/binding", ""); code != http.StatusNotFound {
		t.Fatalf("binding after unbinding the gateway: %d %s", code, b)
	}

	// Removed by a reload (it holds no work, no card is bound to it): no
	// new binding to it.
	if _, err := sw.Reload(withLinks(linkA)); err != nil {
		t.Fatal(err)
	}
	if _, ok := sw.links.Link(bankB); ok {
		t.Fatal("bank B still configured")
	}
	if code, b := bind(cardStudent, bankB); code != http.StatusBadRequest || !strings.Contains(string(b), "not a gateway link") {
		t.Fatalf("binding to a removed link: %d %s", code, b)
	}
	if code, b := bind(cardStudent, demoBank); code != http.StatusCreated {
		t.Fatalf("binding to the link kept: %d %s", code, b)
	}
}

// TestReloadBindRace: a card being bound to a link while a reload
// removes that link. The binding has found the link in force and is
// held there (hook) before its commit; the reload then checks the
// bindings and swaps the link set. Before the binding commits the
// reload must not have removed the link: it waits for the binding,
// sees it, and is refused — never a card bound to a link no longer
// configured (docs/gateway-links.md "Reloading links").
func TestReloadBindRace(t *testing.T) {
	sw, _ := linkedSwitch(t, func(c *Config) { c.Gateways[0].SendTimeout = 3 * time.Second })
	simB, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simB.Close() })
	const bankB = "bank-b"
	linkA := sw.cfg.Gateways[0]
	linkB := links.Config{Name: bankB, Addresses: []string{simB.Addr()},
		AcquirerID: "48020000", ForwardingID: "48020000", InstitutionID: gwsim.DemoInstitution,
		SendTimeout: 3 * time.Second, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}
	withLinks := func(ls ...links.Config) *Config {
		cfg := *sw.cfg
		cfg.Gateways = ls
		cfg.Seed.ZoneKeys = nil
		for _, l := range ls {
			cfg.Seed.ZoneKeys = append(cfg.Seed.ZoneKeys, SeedZoneKey{Link: l.Name, ZMK: gwsim.DemoZMK})
		}
		return &cfg
	}
	if _, err := sw.Reload(withLinks(linkA, linkB)); err != nil {
		t.Fatal(err)
	}

	checked, resume := make(chan struct{}), make(chan struct{})
	sw.reloadHooks.linkChecked = func(name string) {
		if name == bankB {
			close(checked)
			<-resume
		}
	}
	atGate := make(chan struct{})
	sw.reloadHooks.removalCheck = func() { close(atGate) }

	type bindResult struct {
		err error
	}
	bound := make(chan bindResult, 1)
	go func() {
		_, err := sw.recharge.svc.Bind(cardStaff, bankB, bankCard, bankAccount, "alice")
		bound <- bindResult{err}
	}()
	select {
	case <-checked:
	case <-time.After(30 * time.Second):
		t.Fatal("the binding never checked its link")
	}
	type reloadResult struct {
		rep ReloadReport
		err error
	}
	reloaded := make(chan reloadResult, 1)
	go func() {
		rep, err := sw.Reload(withLinks(linkA))
		reloaded <- reloadResult{rep, err}
	}()
	// The reload either reaches its check of the bindings (and waits
	// there for the binding), or — the race — finishes at once.
	var early *reloadResult
	select {
	case <-atGate:
	case r := <-reloaded:
		early = &r
	case <-time.After(30 * time.Second):
		t.Fatal("the reload neither finished nor reached its check of the bindings")
	}
	close(resume)
	b := <-bound
	r := early
	if r == nil {
		select {
		case rr := <-reloaded:
			r = &rr
		case <-time.After(30 * time.Second):
			t.Fatal("the reload did not finish once the binding committed")
		}
	}
	_, stillLinked := sw.links.Link(bankB)
	view, isBound, berr := sw.recharge.svc.Binding(cardStaff)
	if berr != nil {
		t.Fatal(berr)
	}
	if isBound && view.Gateway == bankB && !stillLinked {
		t.Fatalf("card bound to %s, which the reload removed (reload %+v, %v; bind %v)", bankB, r.rep, r.err, b.err)
	}
	// With the binding held before its commit, the reload waits for it
	// and is refused, naming the card.
	if b.err != nil || !errors.Is(r.err, ErrLinkBound) || r.rep.Applied || !stillLinked ||
		!strings.Contains(r.err.Error(), "623015*********0020") {
		t.Fatalf("bind %v; reload %+v, %v; %s configured %v", b.err, r.rep, r.err, bankB, stillLinked)
	}
}

// TestReloadDamagedBinding: a binding record that does not decode holds
// up a reload removing a link only when it may name that link. One whose
// readable gateway is a link kept is skipped, logged masked and counted
// (switch_binding_damaged_records_total); one whose gateway cannot be
// read refuses the reload, naming its card (masked), until `switchctl
// gateways unbind` of the link removes it (docs/gateway-links.md
// "Reloading links").
func TestReloadDamagedBinding(t *testing.T) {
	sw, _ := linkedSwitch(t, func(c *Config) { c.Gateways[0].SendTimeout = 3 * time.Second })
	_, _, addr := sw.Addrs()
	simB, err := gwsim.Start(gwsim.Options{Institution: gwsim.DemoInstitution})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simB.Close() })
	const bankB = "bank-b"
	linkA := sw.cfg.Gateways[0]
	linkB := links.Config{Name: bankB, Addresses: []string{simB.Addr()},
		AcquirerID: "48020000", ForwardingID: "48020000", InstitutionID: gwsim.DemoInstitution,
		SendTimeout: 3 * time.Second, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}
	withLinks := func(ls ...links.Config) *Config {
		cfg := *sw.cfg
		cfg.Gateways = ls
		cfg.Seed.ZoneKeys = nil
		for _, l := range ls {
			cfg.Seed.ZoneKeys = append(cfg.Seed.ZoneKeys, SeedZoneKey{Link: l.Name, ZMK: gwsim.DemoZMK})
		}
		return &cfg
	}
	damage := func(pan, raw string) {
		if err := sw.db.Set(append([]byte{'r', 'b'}, pan...), []byte(raw), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	skipped := func() float64 { return testutil.ToFloat64(sw.metrics.DamagedBindings) }

	// A damaged record naming the link kept: the reload removing bank B
	// goes on, and counts it.
	if _, err := sw.Reload(withLinks(linkA, linkB)); err != nil {
		t.Fatal(err)
	}
	damage(cardStaff, `{"gateway":"`+demoBank+`","bank_card":"c2Vh`)
	if rep, err := sw.Reload(withLinks(linkA)); err != nil || !slices.Equal(rep.Links.Removed, []string{bankB}) {
		t.Fatalf("reload removing bank B past a damaged binding to the link kept: %+v, %v", rep, err)
	}
	if got := skipped(); got != 1 {
		t.Fatalf("switch_binding_damaged_records_total = %v, want 1", got)
	}

	// A damaged record whose gateway cannot be read may name bank B: the
	// reload is refused, naming it, and nothing is counted.
	if _, err := sw.Reload(withLinks(linkA, linkB)); err != nil {
		t.Fatal(err)
	}
	damage(cardStudent, "\x00\xff\x13")
	rep, err := sw.Reload(withLinks(linkA))
	if !errors.Is(err, ErrLinkBound) || rep.Applied ||
		!strings.Contains(err.Error(), "gateway bank-b cannot be removed: 1 binding records that do not decode may name it (cards 623015*********0012)") ||
		!strings.Contains(err.Error(), "`switchctl gateways unbind bank-b`, which removes the damaged records") {
		t.Fatalf("reload removing bank B with a damaged binding that may name it: %+v, %v", rep, err)
	}
	if _, ok := sw.links.Link(bankB); !ok {
		t.Fatal("bank B removed by a refused reload")
	}
	// switchctl gateways unbind bank-b removes it (not the one naming the
	// link kept); the reload then goes on.
	code, b := adminDo(t, "DELETE", "http://"+addr+"/api/v1/gateways/"+bankB+"/bindings?operator=alice", "")
	var got admin.UnbindGatewayResponse
	if err := json.Unmarshal(b, &got); code != http.StatusOK || err != nil || got != (admin.UnbindGatewayResponse{Gateway: bankB, Unbound: 1}) {
		t.Fatalf("unbind bank B: %d %s", code, b)
	}
	if rep, err := sw.Reload(withLinks(linkA)); err != nil || !slices.Equal(rep.Links.Removed, []string{bankB}) {
		t.Fatalf("reload removing bank B once unbound: %+v, %v", rep, err)
	}
	if got := skipped(); got != 2 {
		t.Fatalf("switch_binding_damaged_records_total = %v, want 2 (the record naming the link kept, at each reload)", got)
	}
}

// TestRestartWithoutBoundLink: a link removed from the configuration
// file while cards are bound to it (a reload refuses that, but the edited
// file stays) refuses the next start, naming the link and the cards
// (masked) and the way out: put the link back, start, unbind, then
// remove it — which then starts (docs/gateway-links.md "Removing a
// link").
func TestRestartWithoutBoundLink(t *testing.T) {
	sw, _ := linkedSwitch(t)
	_, _, addr := sw.Addrs()
	if code, b := adminDo(t, "POST", "http://"+addr+"/api/v1/cards/"+cardStaff+"/binding",
		`{"gateway":"`+demoBank+`","bank_card":"`+bankCard+`","account":"`+bankAccount+`","operator":"alice"}`); code != http.StatusCreated {
		t.Fatalf("bind: %d %s", code, b)
	}
	withLink := *sw.cfg
	without := withLink
	without.Gateways, without.Seed.ZoneKeys = nil, nil
	without.Routes = routesTo(sw, demoBank, "local").Routes
	stop := func(s *Switch) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	start := func(cfg Config) (*Switch, error) {
		t.Helper()
		s, err := New(&cfg, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			_ = s.Shutdown(context.Background())
			return nil, err
		}
		return s, nil
	}
	stop(sw)

	_, err := start(without)
	if err == nil || !strings.Contains(err.Error(), "gateway "+demoBank+" is no longer configured but 1 cards are bound to it for bank-transfer loads (623015*********0020)") ||
		!strings.Contains(err.Error(), "put its entry back under gateways:") ||
		!strings.Contains(err.Error(), "`switchctl gateways unbind "+demoBank+"`") || strings.Contains(err.Error(), cardStaff) {
		t.Fatalf("start without the bound link: %v", err)
	}

	// The way out: the link back, start, unbind, then remove it.
	back, err := start(withLink)
	if err != nil {
		t.Fatal(err)
	}
	_, _, addr = back.Addrs()
	if code, b := adminDo(t, "DELETE", "http://"+addr+"/api/v1/gateways/"+demoBank+"/bindings?operator=alice", ""); code != http.StatusOK {
		t.Fatalf("unbind: %d %s", code, b)
	}
	stop(back)
	last, err := start(without)
	if err != nil {
		t.Fatalf("start without the link once unbound: %v", err)
	}
	stop(last)
}

// TestCardUnbindDamagedRecord: `switchctl card unbind CARD` (DELETE
// /api/v1/cards/{pan}/binding) removes the card's damaged binding record
// — which GET cannot read — answering the card masked and the gateway
// its bytes name; the card is then not bound.
func TestCardUnbindDamagedRecord(t *testing.T) {
	sw := testSwitch(t)
	_, _, addr := sw.Addrs()
	if err := sw.db.Set(append([]byte{'r', 'b'}, cardStaff...), []byte(`{"gateway":"old-bank","bank_card":"c2Vh`), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/api/v1/cards/" + cardStaff + "/binding"
	code, b := adminDo(t, "DELETE", url+"?operator=alice", "")
	var v struct{ Card, Gateway string }
	if err := json.Unmarshal(b, &v); code != http.StatusOK || err != nil || v.Card != "623015*********0020" || v.Gateway != "old-bank" ||
		strings.Contains(string(b), cardStaff) {
		t.Fatalf("unbind of a damaged binding: %d %s", code, b)
	}
	if code, b := adminDo(t, "GET", url, ""); code != http.StatusNotFound {
		t.Fatalf("binding after the unbind: %d %s", code, b)
	}
}

// TestStartWithDamagedBindingToUnknownLink: binding records that do not
// decode and whose bytes name a gateway that is not configured (a damaged
// name, or a link removed since) do not refuse the start — they carry no
// transfer load — but are counted in switch_binding_damaged_records_total
// and the first five logged, cards masked, whatever the gateway read;
// `card unbind` removes one (docs/gateway-links.md "Removing a link").
func TestStartWithDamagedBindingToUnknownLink(t *testing.T) {
	sw := testSwitch(t)
	cfg := *sw.cfg
	damaged := []string{cardStaff}
	for i := range 7 {
		damaged = append(damaged, fmt.Sprintf("62301510000009%05d", i))
	}
	for i, pan := range damaged {
		rec := fmt.Sprintf(`{"gateway":"old-bank-%d","bank_card":"c2Vh`, i)
		if err := sw.db.Set(append([]byte{'r', 'b'}, pan...), []byte(rec), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	again, err := New(&cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = again.Shutdown(ctx)
	})
	if err := again.Start(); err != nil {
		t.Fatalf("start with damaged binding records naming no configured link: %v", err)
	}
	if got := testutil.ToFloat64(again.metrics.DamagedBindings); got != float64(len(damaged)) {
		t.Fatalf("switch_binding_damaged_records_total = %v, want %d", got, len(damaged))
	}
	named := logs.FilterMessageSnippet("damaged binding record names a gateway that is not configured").All()
	more := logs.FilterMessage("more damaged binding records name a gateway that is not configured").All()
	if len(named) != maxBoundNamed || len(more) != 1 || more[0].ContextMap()["count"] != int64(len(damaged)-maxBoundNamed) {
		t.Fatalf("log: %d records named (want %d), %d 'more' lines %v (want one, count %d)",
			len(named), maxBoundNamed, len(more), more, len(damaged)-maxBoundNamed)
	}
	for _, e := range logs.All() {
		for _, pan := range damaged {
			if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), pan) {
				t.Fatalf("log line holds a clear card number: %s %v", e.Message, e.ContextMap())
			}
		}
	}
	_, _, addr := again.Addrs()
	if code, b := adminDo(t, "DELETE", "http://"+addr+"/api/v1/cards/"+cardStaff+"/binding?operator=alice", ""); code != http.StatusOK {
		t.Fatalf("unbind of the damaged record: %d %s", code, b)
	}
}
