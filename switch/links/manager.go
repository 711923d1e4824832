package links

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// Manager owns every configured link, the link records and the
// store-and-forward queue.
type Manager struct {
	db    *pebble.DB
	hsm   *hsm.HSM
	recs  *journal.Links
	queue *journal.Queue
	saf   SAFConfig
	log   *zap.Logger
	m     *Metrics
	now   func() time.Time
	// mu guards links, order and the flags: a reload (reload.go) changes
	// them while transactions look links up.
	mu        sync.RWMutex
	links     map[string]*Link
	order     []string
	connected bool // Connect ran: links added by a reload start at once
	closed    bool // Close ran: a reload changes nothing
	// reloading serialises reloads.
	reloading sync.Mutex
	// closing holds the pre-auths a completion or cancel is being
	// forwarded for, from its checks until its answer is recorded
	// (preauth.go): a second one meanwhile is declined.
	closingMu sync.Mutex
	closing   map[closingKey]struct{}
}

// Options configure a Manager.
type Options struct {
	Links  []Config
	SAF    SAFConfig
	Logger *zap.Logger
	// Registerer receives the links' metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// New validates the configuration and builds the links; Start connects
// them.
func New(db *pebble.DB, h *hsm.HSM, opts Options) (*Manager, error) {
	if db == nil || h == nil {
		return nil, errors.New("links: nil db or hsm")
	}
	if len(opts.Links) > MaxLinks {
		return nil, fmt.Errorf("links: %d gateways configured, at most %d", len(opts.Links), MaxLinks)
	}
	saf := opts.SAF.WithDefaults()
	if err := saf.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	recs, err := journal.OpenLinks(db)
	if err != nil {
		return nil, err
	}
	q, err := journal.OpenQueue(db, journal.QueueOptions{MaxAttempts: saf.MaxAttempts, Now: now})
	if err != nil {
		return nil, err
	}
	mgr := &Manager{db: db, hsm: h, recs: recs, queue: q, saf: saf, log: log, m: NewMetrics(opts.Registerer),
		now: now, links: map[string]*Link{}, closing: map[closingKey]struct{}{}}
	for _, c := range opts.Links {
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if _, dup := mgr.links[c.Name]; dup {
			return nil, fmt.Errorf("gateway %s configured twice", c.Name)
		}
		l := newLink(c, h, recs, log, mgr.m, now)
		l.mgr = mgr
		mgr.links[c.Name] = l
		mgr.order = append(mgr.order, c.Name)
	}
	return mgr, nil
}

// PruneRequests deletes link requests with a final state created before
// cut (at most max per call; see journal.Links.PruneLinkRequests). The
// retention job calls it with the ledger's lookup window, which covers
// the refund window: a void or refund still finds its original.
func (m *Manager) PruneRequests(cut time.Time, max int) (int, bool, error) {
	return m.recs.PruneLinkRequests(cut, max)
}

// Metrics returns the links' series.
func (m *Manager) Metrics() *Metrics { return m.m }

// Names lists the links in configuration order.
func (m *Manager) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]string(nil), m.order...)
}

// Link returns the named link.
func (m *Manager) Link(name string) (*Link, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l, ok := m.links[name]
	return l, ok
}

// all returns the links in configuration order.
func (m *Manager) all() []*Link {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Link, 0, len(m.order))
	for _, n := range m.order {
		out = append(out, m.links[n])
	}
	return out
}

// ForwardedOn looks up the link a terminal's transaction (its batch and
// STAN) was forwarded on, configured or not: found is false when the
// links' journal holds no request for it (it was never forwarded). A
// reversal goes there whatever the routes say now.
func (m *Manager) ForwardedOn(terminal string, batch, stan uint32) (link string, found bool, err error) {
	lr, err := m.recs.ByLocal(terminal, n6(batch), n6(stan))
	if errors.Is(err, journal.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return lr.Link, true, nil
}

// PreAuthAt looks among terminals (other terminals of a completion's or
// cancel's merchant, at most MaxPreAuthTerminals of them) for the
// pre-auth the completion or cancel names: the terminal's batch and STAN,
// approved on a link, for card, with approval code authCode. It returns
// the terminal and link of the first found; found is false when none is.
func (m *Manager) PreAuthAt(terminals []string, batch, stan uint32, card, authCode string) (terminal, link string, found bool, err error) {
	if len(terminals) > MaxPreAuthTerminals {
		terminals = terminals[:MaxPreAuthTerminals]
	}
	for _, t := range terminals {
		lr, err := m.recs.ByLocal(t, n6(batch), n6(stan))
		if errors.Is(err, journal.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", "", false, err
		}
		if lr.TxType == spec.PreAuth.String() && lr.State == journal.LinkAnswered && lr.ResponseCode == spec.RCApproved &&
			lr.Card == card && lr.AuthCode == authCode {
			return t, lr.Link, true, nil
		}
	}
	return "", "", false, nil
}

// MaxPreAuthTerminals bounds the terminals PreAuthAt looks at: a
// completion at a merchant with more terminals finds its pre-auth among
// the first this many (by id) besides its own.
const MaxPreAuthTerminals = 256

// RefundedOn looks up the link the original of a refund was forwarded
// on (by its RRN, see refundOriginal), configured or not: found is false
// when the links' journal holds none.
func (m *Manager) RefundedOn(terminal string, batch, stan uint32, rrn string) (link string, found bool, err error) {
	lr, err := refundOriginal(m.recs, terminal, batch, stan, rrn)
	if errors.Is(err, journal.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return lr.Link, true, nil
}

// Start first queues a reversal for every request sent before a restart
// that has no final answer (write-ahead recovery), then connects the links
// and starts their store-and-forward senders.
func (m *Manager) Start() error {
	if err := m.Recover(); err != nil {
		return err
	}
	return m.Connect()
}

// Recover queues a reversal for every request sent before a restart that
// has no final answer. Run it before any new traffic.
func (m *Manager) Recover() error {
	if err := m.checkRemoved(); err != nil {
		return err
	}
	for _, l := range m.all() {
		if err := m.recoverLink(l); err != nil {
			return err
		}
	}
	return nil
}

// recoverLink queues a reversal for each request of l sent with no final
// answer, and logs how many.
func (m *Manager) recoverLink(l *Link) error {
	n, err := m.recover(l)
	if err != nil {
		return fmt.Errorf("gateway %s: recovery: %w", l.Name(), err)
	}
	if n > 0 {
		m.log.Warn("reversals queued for requests left unanswered by the last run", zap.String("link", l.Name()), zap.Int("count", n))
	}
	return nil
}

// Connect opens the links' pools and starts their store-and-forward
// senders.
func (m *Manager) Connect() error {
	m.reloading.Lock()
	defer m.reloading.Unlock()
	for _, l := range m.all() {
		if err := l.run(); err != nil {
			m.closeAll()
			return err
		}
	}
	m.mu.Lock()
	m.connected = true
	m.mu.Unlock()
	return nil
}

// run connects the link and starts its store-and-forward sender.
func (l *Link) run() error {
	if err := l.start(); err != nil {
		return err
	}
	l.wg.Add(1)
	go l.safLoop()
	return nil
}

// Close signs off and closes every link and stops the senders; a reload
// after it changes nothing.
func (m *Manager) Close() {
	m.reloading.Lock()
	defer m.reloading.Unlock()
	m.closeAll()
}

func (m *Manager) closeAll() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	for _, l := range m.all() {
		l.close()
		// The queue is on disk, each entry synced when queued: say what
		// the next start resumes with.
		if q, d, _, err := m.queue.Stats(l.Name(), statsLimit); err == nil && q+d > 0 {
			m.log.Info("gateway link stopped; its store-and-forward queue resumes at the next start",
				zap.String("link", l.Name()), zap.Int("queued", q), zap.Int("dead_letters", d))
		}
	}
}

// checkRemoved refuses to start while the journal holds work for a link
// the configuration no longer names: requests sent with no final answer
// (their reversals are queued at start only for configured links) or
// reversals queued for store-and-forward (sent only by a configured
// link's sender). Starting anyway would strand them silently and the
// banks would keep the cardholders' money (docs/gateway-links.md,
// "Removing a link").
func (m *Manager) checkRemoved() error {
	open, err := m.recs.OpenLinkNames()
	if err != nil {
		return fmt.Errorf("gateway links: open requests: %w", err)
	}
	queued, err := m.queue.QueuedDestinations()
	if err != nil {
		return fmt.Errorf("gateway links: store-and-forward queue: %w", err)
	}
	seen := map[string]bool{}
	var errs []error
	for _, name := range append(open, queued...) {
		if _, ok := m.Link(name); ok || seen[name] {
			continue
		}
		seen[name] = true
		n, q, err := m.work(name)
		if err != nil {
			return err
		}
		errs = append(errs, fmt.Errorf("gateway %s is no longer configured but its journal holds %d requests sent with no final answer "+
			"and %d reversals queued for store-and-forward: put its entry back under gateways: and start the switch, "+
			"which reverses them at the bank; remove it once `switchctl saf list --gateway %s` shows its queue empty", name, n, q, name))
	}
	return errors.Join(errs...)
}

// work counts a link's requests sent with no final answer and its
// reversals queued for store-and-forward.
func (m *Manager) work(name string) (open, queued int, err error) {
	if err := m.recs.Open(name, func(*journal.LinkRequest) bool { open++; return true }); err != nil {
		return 0, 0, fmt.Errorf("gateway %s: open requests: %w", name, err)
	}
	queued, _, _, err = m.queue.Stats(name, statsLimit)
	if err != nil {
		return 0, 0, fmt.Errorf("gateway %s: store-and-forward queue: %w", name, err)
	}
	return open, queued, nil
}

// recover queues the reversal of each open request, one synced batch per
// request.
func (m *Manager) recover(l *Link) (int, error) {
	var open []*journal.LinkRequest
	if err := m.recs.Open(l.Name(), func(r *journal.LinkRequest) bool { open = append(open, r); return true }); err != nil {
		return 0, err
	}
	for _, r := range open {
		b := m.db.NewBatch()
		if err := l.queueReversal(b, r, "98"); err != nil {
			b.Close()
			return 0, err
		}
		err := b.Commit(pebble.Sync)
		b.Close()
		if err != nil {
			return 0, err
		}
	}
	return len(open), nil
}

// LinkStatus is one link as operators see it.
type LinkStatus struct {
	Name           string    `json:"name"`
	State          string    `json:"state"`
	LastError      string    `json:"last_error,omitempty"`
	Addresses      []string  `json:"addresses"`
	Connections    int       `json:"connections"`
	PoolSize       int       `json:"pool_size"`
	InstitutionID  string    `json:"institution_id"`
	MAC            string    `json:"mac"` // x9.19 or sm4
	ZPKCheck       string    `json:"zpk_check"`
	ZAKCheck       string    `json:"zak_check"`
	ZMKLoaded      bool      `json:"zmk_loaded"`
	LastKeyChange  time.Time `json:"last_key_exchange,omitzero"`
	SAFQueued      int       `json:"saf_queued"`
	SAFDead        int       `json:"saf_dead"`
	SAFOldestSince time.Time `json:"saf_oldest,omitzero"`
}

// Status reports every link.
func (m *Manager) Status() ([]LinkStatus, error) {
	all := m.all()
	out := make([]LinkStatus, 0, len(all))
	for _, l := range all {
		name := l.Name()
		q, d, oldest, err := m.queue.Stats(name, statsLimit)
		if err != nil {
			return nil, err
		}
		s := LinkStatus{Name: name, State: l.State(), LastError: l.LastError(), Addresses: l.cfg.Addresses, Connections: l.Connections(),
			PoolSize: l.cfg.PoolSize, InstitutionID: l.cfg.InstitutionID, MAC: l.cfg.MAC,
			ZPKCheck: m.hsm.ZoneKeyCheck(name, hsm.ZPK), ZAKCheck: m.hsm.ZoneKeyCheck(name, hsm.ZAK),
			ZMKLoaded: m.hsm.HasKey(hsm.ZoneKeyLabel(name, hsm.ZMK)),
			SAFQueued: q, SAFDead: d, SAFOldestSince: oldest}
		if ns := l.lastKeys.Load(); ns != 0 {
			s.LastKeyChange = time.Unix(0, ns).UTC()
		}
		out = append(out, s)
	}
	return out, nil
}

// statsLimit bounds the counting of queue entries for status and metrics.
const statsLimit = 1_000_000
