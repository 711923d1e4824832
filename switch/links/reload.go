package links

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.uber.org/zap"
)

// ErrRetired: the link is being removed or restarted by a reload, or is no
// longer configured; nothing was sent.
var ErrRetired = errors.New("link is being reloaded or is no longer configured")

// ErrLinkBusy: a reload would remove a link that still holds work
// (requests sent with no final answer, or reversals queued), or could not
// wait for the transactions under way on a link it removes or restarts.
var ErrLinkBusy = errors.New("gateway link still holds work")

// drainMargin is added to a link's send timeout to bound the wait for the
// transactions under way on it: a terminal's reversal may wait one send
// timeout (plus its journal writes) for its original.
const drainMargin = 10 * time.Second

// enter admits a transaction into the link; false when a reload is
// removing or restarting it. A transaction admitted is waited for by
// retire.
func (l *Link) enter() bool {
	l.users.Add(1)
	if l.retired.Load() {
		l.users.Add(-1)
		return false
	}
	return true
}

func (l *Link) leave() { l.users.Add(-1) }

// retire turns new transactions away and waits (until deadline) for
// those under way; false when some are still under way at the deadline.
func (l *Link) retire(deadline time.Time) bool {
	l.retired.Store(true)
	for l.users.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// ReloadReport says what a reload did to the links.
type ReloadReport struct {
	Added, Removed, Restarted, Unchanged []string
}

// Changed reports whether any link was added, removed or restarted.
func (r ReloadReport) Changed() bool {
	return len(r.Added)+len(r.Removed)+len(r.Restarted) > 0
}

// Plan validates a new set of links without changing anything and returns
// the names they leave configured, in order (the route table is checked
// against them before Apply).
func (m *Manager) Plan(cfgs []Config) ([]string, error) {
	_, names, err := validateAll(cfgs)
	return names, err
}

func validateAll(cfgs []Config) (map[string]Config, []string, error) {
	if len(cfgs) > MaxLinks {
		return nil, nil, fmt.Errorf("links: %d gateways configured, at most %d", len(cfgs), MaxLinks)
	}
	want := make(map[string]Config, len(cfgs))
	var names []string
	for _, c := range cfgs {
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			return nil, nil, err
		}
		if _, dup := want[c.Name]; dup {
			return nil, nil, fmt.Errorf("gateway %s configured twice", c.Name)
		}
		want[c.Name] = c
		names = append(names, c.Name)
	}
	return want, names, nil
}

// Apply makes the configured links those of cfgs while the switch runs
// (SIGHUP; docs/gateway-links.md "Reloading links"): a new link is
// started, a link whose configuration changed is restarted (its
// transactions under way finish first; its queue carries over), a link no
// longer named is stopped, and the others keep their connections. A link
// may be removed only when it holds no work — no request sent without a
// final answer and no reversal queued — the rule the switch applies at
// start; otherwise, or when a configuration does not validate, Apply
// changes nothing and says why.
func (m *Manager) Apply(cfgs []Config) (ReloadReport, error) {
	return m.ApplyChecked(cfgs, nil)
}

// RemovalCheck is called by ApplyChecked, when a reload removes links,
// after the links going have drained and just before the link set
// changes, with the links removed and those configured after the
// reload. An error refuses the reload (nothing changes); otherwise
// release is called once the link set has changed: whatever it holds
// (a lock of the caller's) spans the check and the change.
type RemovalCheck func(removed, kept []string) (release func(), err error)

// ApplyChecked is Apply with check, when not nil, called on the links
// the reload removes (RemovalCheck).
func (m *Manager) ApplyChecked(cfgs []Config, check RemovalCheck) (ReloadReport, error) {
	var rep ReloadReport
	want, order, err := validateAll(cfgs)
	if err != nil {
		return rep, err
	}
	m.reloading.Lock()
	defer m.reloading.Unlock()
	m.mu.RLock()
	closed, connected := m.closed, m.connected
	cur := make(map[string]*Link, len(m.links))
	for n, l := range m.links {
		cur[n] = l
	}
	oldOrder := append([]string(nil), m.order...)
	m.mu.RUnlock()
	if closed {
		return rep, errors.New("links: stopped")
	}
	var retiring []*Link
	for _, n := range oldOrder {
		c, keep := want[n]
		switch {
		case !keep:
			rep.Removed = append(rep.Removed, n)
			retiring = append(retiring, cur[n])
		case !reflect.DeepEqual(c, cur[n].cfg):
			rep.Restarted = append(rep.Restarted, n)
			retiring = append(retiring, cur[n])
		default:
			rep.Unchanged = append(rep.Unchanged, n)
		}
	}
	for _, n := range order {
		if _, ok := cur[n]; !ok {
			rep.Added = append(rep.Added, n)
		}
	}
	if !rep.Changed() {
		return rep, nil
	}

	// Turn new transactions away from the links going, and wait for the
	// ones under way: after that nothing can add work to them.
	undo := func() {
		for _, l := range retiring {
			l.retired.Store(false)
		}
	}
	var busy []error
	for _, l := range retiring {
		if !l.retire(time.Now().Add(l.cfg.SendTimeout + drainMargin)) {
			busy = append(busy, fmt.Errorf("gateway %s: %d transactions still under way after %v", l.Name(), l.users.Load(), l.cfg.SendTimeout+drainMargin))
		}
	}
	for _, n := range rep.Removed {
		if err := m.holdsNoWork(n); err != nil {
			busy = append(busy, err)
		}
	}
	if len(busy) > 0 {
		undo()
		return ReloadReport{}, fmt.Errorf("%w: the gateway links were not changed: %w", ErrLinkBusy, errors.Join(busy...))
	}
	release := func() {}
	if check != nil && len(rep.Removed) > 0 {
		r, err := check(rep.Removed, order)
		if err != nil {
			undo()
			return ReloadReport{}, err
		}
		release = r
	}

	// Swap: the map holds the new links before the old ones close, so a
	// transaction finds either a retired link (91) or the new one.
	fresh := make(map[string]*Link)
	for _, n := range append(append([]string(nil), rep.Restarted...), rep.Added...) {
		l := newLink(want[n], m.hsm, m.recs, m.log, m.m, m.now)
		l.mgr = m
		fresh[n] = l
	}
	m.mu.Lock()
	for _, n := range rep.Removed {
		delete(m.links, n)
	}
	for n, l := range fresh {
		m.links[n] = l
	}
	m.order = order
	m.mu.Unlock()
	release()

	for _, l := range retiring {
		l.close() // signs off; its sender stops (a queue carries over to the new link)
	}
	for _, n := range rep.Removed {
		m.m.forget(n)
	}
	var errs []error
	for _, n := range append(append([]string(nil), rep.Restarted...), rep.Added...) {
		l := fresh[n]
		if err := m.recoverLink(l); err != nil {
			errs = append(errs, err)
		}
		if connected {
			if err := l.run(); err != nil {
				errs = append(errs, fmt.Errorf("gateway %s: start: %w", n, err))
			}
		}
	}
	m.log.Info("gateway links reloaded", zap.Strings("added", rep.Added), zap.Strings("removed", rep.Removed),
		zap.Strings("restarted", rep.Restarted), zap.Strings("unchanged", rep.Unchanged))
	return rep, errors.Join(errs...)
}

// holdsNoWork reports, as an error naming both counts and what to do,
// whether the journal holds requests sent with no final answer or
// reversals queued for the link.
func (m *Manager) holdsNoWork(name string) error {
	n, q, err := m.work(name)
	if err != nil {
		return err
	}
	if n == 0 && q == 0 {
		return nil
	}
	return fmt.Errorf("gateway %s cannot be removed: its journal holds %d requests sent with no final answer "+
		"and %d reversals queued for store-and-forward; move its BINs off in routes:, reload, and remove it once "+
		"`switchctl saf list --gateway %s` shows its queue empty", name, n, q, name)
}

// forget deletes a removed link's series, so that no dashboard or alert
// shows a link that is no longer configured as down.
func (m *Metrics) forget(link string) {
	if m == nil {
		return
	}
	l := map[string]string{"link": link}
	m.State.DeletePartialMatch(l)
	m.Up.DeletePartialMatch(l)
	m.InFlight.DeletePartialMatch(l)
	m.Latency.DeletePartialMatch(l)
	m.Requests.DeletePartialMatch(l)
	m.Late.DeletePartialMatch(l)
	m.BadMAC.DeletePartialMatch(l)
	m.Reconnect.DeletePartialMatch(l)
	m.SAFDepth.DeletePartialMatch(l)
	m.SAFOldest.DeletePartialMatch(l)
	m.SAFDead.DeletePartialMatch(l)
	m.SAFSends.DeletePartialMatch(l)
}
