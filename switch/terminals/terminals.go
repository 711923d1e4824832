// Package terminals is the terminal registry: each POS terminal's
// merchant, permissions, sign-on state, batch and key generation, held in
// memory as immutable snapshots and persisted under the key prefix 't'
// (docs/architecture.md), plus each terminal's trace-number watermark.
package terminals

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cardswitch/cardswitch/internal/ident"
	"github.com/cardswitch/cardswitch/internal/inflight"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
)

// Spec registers a terminal: its merchant, what it may do, and (in
// demo and test configurations only) its TMK in clear.
type Spec struct {
	ID       string `yaml:"id" json:"id"`
	Merchant string `yaml:"merchant" json:"merchant"`
	// MayLoad marks a recharge kiosk: only these may cash-load cards.
	MayLoad bool `yaml:"may_load" json:"may_load"`
	// Permitted lists transaction type labels the terminal may send;
	// empty means every POS purchase type (and cash load when MayLoad).
	Permitted []string `yaml:"permitted" json:"permitted,omitempty"`
	// TMK is the terminal master key in clear hex: demo and tests only.
	TMK string `yaml:"tmk" json:"-"`
	// TMKAlgorithm is "tdes" (the default) or "sm4" (sign-on mode 006).
	TMKAlgorithm string `yaml:"tmk_algorithm" json:"-"`
	// LegacySignOn lets a terminal that cannot compute the sign-on proof
	// sign on without it, only from SourceNetwork
	// (docs/pos-dialect.md#sign-on-proof).
	LegacySignOn bool `yaml:"legacy_signon" json:"legacy_signon,omitempty"`
	// SourceNetwork is the CIDR a legacy terminal signs on from.
	SourceNetwork string `yaml:"source_network" json:"source_network,omitempty"`
}

// Terminal is a registered terminal's state as the switch holds it.
// Values are immutable snapshots: a change stores a new one.
type Terminal struct {
	ID       string `json:"id"`
	Merchant string `json:"merchant"`
	MayLoad  bool   `json:"may_load"`
	Disabled bool   `json:"disabled"`
	// Permitted is a bit set over spec.TxType.
	Permitted uint64 `json:"permitted"`
	// SignedOn is set by a successful sign-on and cleared by sign-off.
	SignedOn bool `json:"signed_on"`
	// Batch is the batch opened by the last sign-on (60.2).
	Batch uint32 `json:"batch"`
	// KeyMode is the sign-on mode of the current working keys.
	KeyMode string `json:"key_mode,omitempty"`
	// KeyGeneration counts sign-ons: a stored response MACed under an
	// older generation is MACed again before a replay.
	KeyGeneration uint32 `json:"key_generation"`
	// LegacySignOn and SourceNetwork: see Spec.
	LegacySignOn  bool   `json:"legacy_signon,omitempty"`
	SourceNetwork string `json:"source_network,omitempty"`
	// LastSignOn is the stamp of the last sign-on accepted with a proof,
	// YYYYMMDDhhmmssSTAN: a later sign-on must carry a later one.
	LastSignOn string `json:"last_signon,omitempty"`
}

// Permits reports whether the terminal may send tx.
func (t *Terminal) Permits(tx spec.TxType) bool { return t.Permitted&(1<<uint(tx)) != 0 }

// defaultPermitted is every purchase-side type a campus POS sends.
var defaultPermitted = []spec.TxType{
	spec.BalanceInquiry, spec.Consume, spec.ConsumeVoid, spec.Refund,
	spec.PreAuth, spec.PreAuthCancel, spec.PreAuthCompletion, spec.CompletionVoid,
	spec.Reversal, spec.BatchSettlement, spec.BatchUpload,
}

// PermittedSet is the permission bit set of a terminal from the type
// labels of its Spec (empty: every purchase type, and cash loads for a
// kiosk).
func PermittedSet(labels []string, mayLoad bool) (uint64, error) {
	var set uint64
	if len(labels) == 0 {
		for _, t := range defaultPermitted {
			set |= 1 << uint(t)
		}
		if mayLoad {
			set |= 1<<uint(spec.CashLoad) | 1<<uint(spec.CashLoadVoid) | 1<<uint(spec.PendingClaim) | 1<<uint(spec.TransferLoad)
		}
		return set, nil
	}
	byName := map[string]spec.TxType{}
	for _, t := range spec.TxTypes() {
		if !t.FromInstitution() { // no terminal sends an institution's request
			byName[t.String()] = t
		}
	}
	for _, l := range labels {
		t, ok := byName[l]
		if !ok {
			return 0, fmt.Errorf("unknown transaction type %q", l)
		}
		set |= 1 << uint(t)
	}
	return set, nil
}

// kioskTypes are the types only a kiosk (MayLoad) may send: the ledger
// answers them 58 from any other terminal.
var kioskTypes = []spec.TxType{spec.CashLoad, spec.CashLoadVoid, spec.PendingClaim, spec.TransferLoad}

// ChangePermitted permits (or, with permit false, forbids) the types
// labels name, on top of what the terminal already has: how an operator
// gives a kiosk registered before a type existed that type
// (`switchctl terminal permit`, docs/switchctl.md). A kiosk's type is
// refused for a terminal without MayLoad, an institution's type for
// every terminal.
func (t *Terminal) ChangePermitted(labels []string, permit bool) error {
	if len(labels) == 0 {
		return errors.New("no transaction type given")
	}
	set, err := PermittedSet(labels, false)
	if err != nil {
		return err
	}
	if !permit {
		t.Permitted &^= set
		return nil
	}
	if !t.MayLoad {
		for _, k := range kioskTypes {
			if set&(1<<uint(k)) != 0 {
				return fmt.Errorf("%s is a kiosk's type and terminal %s is not registered with may_load", k, t.ID)
			}
		}
	}
	t.Permitted |= set
	return nil
}

// Errors of the terminal registry.
var (
	ErrExists  = errors.New("terminal already registered")
	ErrUnknown = errors.New("terminal not registered")
	// ErrInvalid is a terminal whose id or merchant id is not letters and
	// digits of the right length.
	ErrInvalid = errors.New("invalid terminal")
)

// MaxTerminals bounds the registry (and so its memory).
const MaxTerminals = 1_000_000

// Registry is the terminal registry: every terminal in memory, each as an
// atomically replaced snapshot, persisted under prefix 't' with sync.
// Changes to one terminal are serialised by its own mutex; a POS terminal
// has one message in flight, so there is no contention to speak of.
type Registry struct {
	db *pebble.DB
	mu sync.RWMutex
	m  map[string]*terminalEntry
}

type terminalEntry struct {
	mu  sync.Mutex // serialises updates
	cur atomic.Pointer[Terminal]

	trace traceWatermark
}

// traceWatermark is the highest trace number (field 11) the switch has
// answered, or is answering, in one batch of one terminal. A terminal
// numbers its messages upwards, so a request above the watermark cannot
// be a retransmission: the switch skips the duplicate lookup and tells the
// ledger it may skip its idempotency lookup, the two point reads every
// transaction would otherwise make. After a start the watermark is read
// once from the stored responses of the batch; anything at or below it
// (a retransmission, a reversal, a wrapped trace number) takes the careful
// path. Requests with one trace number never overlap: each waits until no
// other with that number is in flight (see ClaimNewSTAN).
//
// A reversal repeats its original's trace number, so it is never above
// the watermark; its duplicate record is named by its MTI and trace number
// (docs/pos-dialect.md), and reversals have a watermark of their own,
// reversals: a reversal above it cannot be a retransmission of one.
type traceWatermark struct {
	mu        sync.Mutex
	cond      sync.Cond
	batch     uint32
	loaded    bool
	max       uint32
	reversals uint32                  // the highest trace number reversed
	inflight  inflight.Counts[uint32] // claims not yet released, by trace number
}

func terminalKey(id string) []byte { return append([]byte{'t', '/'}, id...) }

// Open loads the registry from db.
func Open(db *pebble.DB) (*Registry, error) {
	r := &Registry{db: db, m: map[string]*terminalEntry{}}
	iter, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("t/"), UpperBound: []byte("t0")})
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		var t Terminal
		if err := json.Unmarshal(iter.Value(), &t); err != nil {
			return nil, fmt.Errorf("terminal record %q: %w", iter.Key(), err)
		}
		e := &terminalEntry{}
		e.cur.Store(&t)
		r.m[t.ID] = e
	}
	return r, iter.Error()
}

// KiosksWithout lists the kiosks (MayLoad) not permitted tx, by id: at
// most limit of them, and how many there are in all.
func (r *Registry) KiosksWithout(tx spec.TxType, limit int) ([]string, int) {
	var ids []string
	n := 0
	for _, t := range r.List() {
		if t.MayLoad && !t.Permits(tx) {
			if n++; len(ids) < limit {
				ids = append(ids, t.ID)
			}
		}
	}
	return ids, n
}

// Get returns the terminal's current state, nil when it is not
// registered.
func (r *Registry) Get(id string) *Terminal {
	r.mu.RLock()
	e := r.m[id]
	r.mu.RUnlock()
	if e == nil {
		return nil
	}
	return e.cur.Load()
}

// List returns every terminal, by id.
func (r *Registry) List() []*Terminal {
	r.mu.RLock()
	out := make([]*Terminal, 0, len(r.m))
	for _, e := range r.m {
		out = append(out, e.cur.Load())
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// OfMerchant returns the ids of the merchant's terminals other than
// except, by id, at most max of them.
func (r *Registry) OfMerchant(merchant, except string, max int) []string {
	r.mu.RLock()
	var out []string
	for id, e := range r.m {
		if id != except && e.cur.Load().Merchant == merchant {
			out = append(out, id)
		}
	}
	r.mu.RUnlock()
	sort.Strings(out)
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// ValidIDs checks a terminal id and its merchant id. Field 41 is ans8 and
// field 42 ans15; the ids also name HSM keys (term/ID/TMK) and storage
// keys, so only letters and digits, checked before any key is loaded.
func ValidIDs(id, merchant string) error {
	if err := ident.ID("terminal id", id, 8, 8); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := ident.ID("merchant id", merchant, 15, 15); err != nil {
		return fmt.Errorf("%w: terminal %s: %v", ErrInvalid, id, err)
	}
	return nil
}

// Add registers a terminal, durably.
func (r *Registry) Add(t *Terminal) error {
	if err := ValidIDs(t.ID, t.Merchant); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[t.ID]; ok {
		return fmt.Errorf("%w: %s", ErrExists, t.ID)
	}
	if len(r.m) >= MaxTerminals {
		return fmt.Errorf("terminal registry full (%d)", MaxTerminals)
	}
	if err := r.persist(t); err != nil {
		return err
	}
	e := &terminalEntry{}
	e.cur.Store(t)
	r.m[t.ID] = e
	return nil
}

// Update applies f to a copy of the terminal's state and stores it
// durably before publishing it.
func (r *Registry) Update(id string, f func(t *Terminal) error) (*Terminal, error) {
	r.mu.RLock()
	e := r.m[id]
	r.mu.RUnlock()
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknown, id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	next := *e.cur.Load()
	if err := f(&next); err != nil {
		return nil, err
	}
	if err := r.persist(&next); err != nil {
		return nil, err
	}
	e.cur.Store(&next)
	return &next, nil
}

func (r *Registry) persist(t *Terminal) error {
	v, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := r.db.Set(terminalKey(t.ID), v, pebble.Sync); err != nil {
		return fmt.Errorf("store terminal %s: %w", t.ID, err)
	}
	return nil
}

// ClaimNewSTAN reports whether stan, in batch, is above everything the
// terminal has sent before (fresh: the request cannot be a retransmission
// and needs no duplicate lookup), raising the watermark if so. For a
// reversal (which repeats its original's stan) fresh means above every
// reversal the terminal has sent in the batch: no reversal's record can
// hold it.
//
// Every request, fresh or not, holds its STAN in flight until the release
// it is given is called, after its commit returned (or failed); another
// request with the same STAN waits here until then. That keeps a copy
// from reading the first one's stored answer before it is durable (Pebble
// makes a batch visible before its WAL sync ends) and from being taken as
// fresh after a reload of the watermark from what is committed. load
// reads the highest stored trace numbers of the batch, of every request
// and of the reversals, when the watermark is not known.
func (r *Registry) ClaimNewSTAN(id string, batch, stan uint32, reversal bool, load func(id string, batch uint32) (max, reversals uint32, err error)) (fresh bool, claim STANClaim, err error) {
	r.mu.RLock()
	e := r.m[id]
	r.mu.RUnlock()
	if e == nil {
		return false, STANClaim{}, nil
	}
	w := &e.trace
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cond.L == nil {
		w.cond.L = &w.mu
	}
	copyOfInFlight := false
	for {
		if !w.loaded || w.batch != batch {
			stored, reversed, err := load(id, batch)
			if err != nil {
				return false, STANClaim{}, err
			}
			w.batch, w.loaded, w.max, w.reversals = batch, true, stored, reversed
		}
		if w.inflight.Count(stan) == 0 {
			break
		}
		// Another request with this STAN is in flight: this one is a copy
		// or a reversal, never fresh, whatever a reload of the watermark
		// (from what is committed) says. The batch may change while we
		// wait: look at it again after.
		copyOfInFlight = true
		w.cond.Wait()
	}
	if reversal {
		fresh = !copyOfInFlight && stan > w.reversals
		w.reversals = max(w.reversals, stan)
	} else {
		fresh = !copyOfInFlight && stan > w.max
	}
	w.max = max(w.max, stan)
	w.inflight.Add(stan)
	return fresh, STANClaim{w: w, stan: stan}, nil
}

// STANClaim is a request's hold on its STAN (ClaimNewSTAN): a value, not
// a closure, so that claiming costs no allocation per request. The zero
// STANClaim holds nothing.
type STANClaim struct {
	w    *traceWatermark
	stan uint32
}

// Release ends the claim; call it once, after the request's commit
// returned (or failed).
func (c STANClaim) Release() {
	w := c.w
	if w == nil {
		return
	}
	w.mu.Lock()
	w.inflight.Done(c.stan)
	w.cond.Broadcast()
	w.mu.Unlock()
}

// CheckSourceNetwork validates a terminal's legacy sign-on settings: a
// legacy terminal needs its source network, as a CIDR prefix
// (docs/pos-dialect.md#sign-on-proof).
func CheckSourceNetwork(legacy bool, network string) error {
	if network == "" {
		if legacy {
			return errors.New("legacy_signon needs source_network (a CIDR such as 10.1.2.0/24)")
		}
		return nil
	}
	if _, err := netip.ParsePrefix(network); err != nil {
		return fmt.Errorf("source_network %q: want a CIDR such as 10.1.2.0/24", network)
	}
	return nil
}
