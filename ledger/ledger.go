package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Options configure a Ledger. Zero fields take the defaults in brackets.
type Options struct {
	// MaxPINTries is the count of consecutive wrong PINs that locks a card
	// (the attempt that reaches it is declined "PIN tries exceeded") [3].
	MaxPINTries int
	// VisitorFeeBP is the service fee of visitor cards opened without an
	// explicit rate, in basis points [500 = 5%].
	VisitorFeeBP int32
	// DefaultNoPINLimit applies to cards opened without a no-PIN limit:
	// amounts above it need a verified PIN [5000 = 50.00 yuan].
	DefaultNoPINLimit Fen
	// DefaultMaxBalance applies to cards opened without a maximum balance
	// [1_000_000 = 10000.00 yuan].
	DefaultMaxBalance Fen
	// RefundWindowDays bounds how many business days after a consume it may
	// be refunded [30].
	RefundWindowDays int
	// HoldDays is how long a pre-auth hold lives before it is released [30].
	HoldDays int
	// MaxHoldsPerCard bounds the open holds on one card; one more is
	// declined "exceeds count limit" [8, at most 64].
	MaxHoldsPerCard int
	// MaxCards bounds the cards the ledger holds (every card lives in
	// memory); opening or replacing one more is ErrLimit [10 000 000].
	MaxCards int
	// MaxMerchants bounds the merchants; adding one more is ErrLimit
	// [100 000].
	MaxMerchants int
	// Today, when set, is the business date of admin postings (open,
	// close and replace card): the switch passes its business clock, so
	// that these are dated like every other posting of the day. Nil means
	// the calendar day of the machine's zone.
	Today func() BusinessDate
	// Begin and End, when both set, take the date of admin postings
	// instead of Today and hold it open until the posting is committed
	// (the switch's business clock: a day close waits for an admin
	// posting under way, as for an exchange, so none lands in a day
	// being closed).
	Begin func() BusinessDate
	End   func(BusinessDate)
}

// Bounds of Options beyond which a configuration is refused.
const (
	maxPINTriesOption  = 255  // the try counter is a byte
	maxHoldDays        = 366  // a pre-auth lives at most a year
	maxRefundWindowDay = 3660 // ten years
	maxCardsOption     = 100_000_000
	maxMerchantsOption = 10_000_000
)

// Validate refuses options out of their bounds, naming each: a negative
// count or amount, a fee above 100 %, a hold or refund window longer than
// the bounds above, more holds per card than a card record holds. Zero
// fields are valid and take the defaults.
func (o Options) Validate() error {
	var errs []error
	check := func(name string, v, max int64) {
		if v < 0 || v > max {
			errs = append(errs, fmt.Errorf("%s %d: want 0..%d (0 = default)", name, v, max))
		}
	}
	check("max_pin_tries", int64(o.MaxPINTries), maxPINTriesOption)
	check("visitor_fee_bp", int64(o.VisitorFeeBP), maxFeeBP)
	check("default_no_pin_limit", int64(o.DefaultNoPINLimit), int64(MaxAmount))
	check("default_max_balance", int64(o.DefaultMaxBalance), int64(MaxAmount))
	check("refund_window_days", int64(o.RefundWindowDays), maxRefundWindowDay)
	check("hold_days", int64(o.HoldDays), maxHoldDays)
	check("max_holds_per_card", int64(o.MaxHoldsPerCard), maxHolds)
	check("max_cards", int64(o.MaxCards), maxCardsOption)
	check("max_merchants", int64(o.MaxMerchants), maxMerchantsOption)
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.MaxPINTries <= 0 {
		o.MaxPINTries = 3
	}
	if o.MaxPINTries > 255 {
		o.MaxPINTries = 255
	}
	if o.VisitorFeeBP <= 0 {
		o.VisitorFeeBP = 500
	}
	if o.VisitorFeeBP > maxFeeBP {
		o.VisitorFeeBP = maxFeeBP
	}
	if o.DefaultNoPINLimit <= 0 {
		o.DefaultNoPINLimit = 5000
	}
	if o.DefaultMaxBalance <= 0 {
		o.DefaultMaxBalance = 1_000_000
	}
	if o.RefundWindowDays <= 0 {
		o.RefundWindowDays = 30
	}
	if o.HoldDays <= 0 {
		o.HoldDays = 30
	}
	if o.MaxHoldsPerCard <= 0 {
		o.MaxHoldsPerCard = 8
	}
	if o.MaxCards <= 0 {
		o.MaxCards = 10_000_000
	}
	if o.MaxMerchants <= 0 {
		o.MaxMerchants = 100_000
	}
	if o.MaxHoldsPerCard > maxHolds {
		o.MaxHoldsPerCard = maxHolds
	}
	return o
}

// cardEntry is the in-memory home of one card. mu serialises the
// operations on the card and is held from validation until the commit is
// durable and the new state published; cur is the published state, read
// without the lock.
type cardEntry struct {
	mu  sync.Mutex
	cur atomic.Pointer[card]
	// pan and the card's purse accounts, built once: every operation on
	// the card posts to them (CardCash, CardSubsidy); the digit encoding
	// of pan (knownDigits).
	pan           string
	cash, subsidy AccountID
	panEnc        string
	// contribs is how the card's last purse record written spelled its
	// contributions' accounts (contribCode); guarded by mu.
	contribs *contribCode
}

// newCardEntry is the in-memory home of card c, published.
func newCardEntry(c *card) *cardEntry {
	e := &cardEntry{pan: c.PAN, cash: CardCash(c.PAN), subsidy: CardSubsidy(c.PAN), panEnc: digitsEncoding(c.PAN)}
	e.cur.Store(c)
	return e
}

// Ledger is the card ledger. It is safe for concurrent use.
type Ledger struct {
	db   *pebble.DB
	opts Options

	mu        sync.RWMutex // guards the maps below (not the values)
	cards     map[string]*cardEntry
	merchants map[string]*merchant
	accounts  map[AccountID]*atomic.Int64 // balances of non-card accounts

	tombMu       sync.Mutex
	tombs        map[string]refValue // reversal tombstones by tombKey
	tombsDropped int                 // entries Prune deleted from tombs since it was last copied
	tombsStale   int                 // entries Prune deleted from tombs since tombBits was last built
	// tombBits has the bit of every tombstone in tombs set (and perhaps
	// of some pruned since): a reference whose bit is clear has none, and
	// its lookup (every POS original's) takes neither tombMu nor the map.
	// Set under tombMu; replaced, under tombMu, by one of the tombstones
	// left once Prune has dropped an eighth as many as are left.
	tombBits atomic.Pointer[tombFilter]

	lastTx atomic.Uint64
	days   *dayIndex // where each business date's posting sets lie (dayindex.go)
	keys   keyLocks
	admin  sync.Mutex // serialises admin operations that create cards or merchants

	prune pruneCursor // where the pass of Prune in progress stands
	refs  refsHolder  // the caller's reference index (references.go)
	// recent answers lookups of the references this process indexed
	// (recentrefs.go).
	recent *recentRefs
	// feeIncome is FeeIncome's balance, which every purchase with a
	// service fee changes: published without the map (l.accounts).
	feeIncome *atomic.Int64
}

// Open loads the ledger's state from db: every card, merchant and the
// balances of the non-card accounts (sums of the cards' contributions).
// The database stays the caller's; the ledger never closes it.
func Open(db *pebble.DB, opts Options) (*Ledger, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("ledger options: %w", err)
	}
	l := &Ledger{
		db:        db,
		opts:      opts.withDefaults(),
		cards:     make(map[string]*cardEntry),
		merchants: make(map[string]*merchant),
		accounts:  make(map[AccountID]*atomic.Int64),
		tombs:     make(map[string]refValue),
		recent:    newRecentRefs(),
	}
	l.tombBits.Store(newTombFilter())
	l.keys.init()
	err := scan(db, []byte{keyPrefix, tagCard}, func(k, v []byte) error {
		c, err := loadCard(db, v)
		if err != nil {
			return fmt.Errorf("load card %s: %w", cardno.Mask(string(k[2:])), err)
		}
		l.cards[c.PAN] = newCardEntry(&c)
		for _, ct := range c.Contribs {
			l.account(ct.Account).Add(int64(ct.Amount))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = scan(db, []byte{keyPrefix, tagMerch}, func(k, v []byte) error {
		m, err := decodeMerchant(v)
		if err != nil {
			return fmt.Errorf("load merchant %q: %w", k[2:], err)
		}
		l.prepareMerchant(&m)
		l.merchants[m.ID] = &m
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = scan(db, []byte{keyPrefix, tagTomb}, func(k, v []byte) error {
		rv, err := decodeRef(v)
		if err != nil {
			return fmt.Errorf("load tombstone %x: %w", k, err)
		}
		l.tombs[string(k)] = rv
		l.tombBits.Load().add(k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.feeIncome = l.account(FeeIncome)
	last, err := lastTxID(db)
	if err != nil {
		return nil, err
	}
	l.lastTx.Store(last)
	if l.days, err = openDayIndex(db, last); err != nil {
		return nil, err
	}
	return l, nil
}

func lastTxID(db pebble.Reader) (uint64, error) {
	lo := []byte{keyPrefix, tagPost}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if it.Last() {
		k := it.Key()
		if len(k) != 10 {
			return 0, fmt.Errorf("%w: posting key length %d", ErrCorrupt, len(k))
		}
		return binary.BigEndian.Uint64(k[2:]), it.Error()
	}
	return 0, it.Error()
}

// scan calls fn for every key with the prefix, in order.
func scan(db pebble.Reader, prefix []byte, fn func(k, v []byte) error) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// get returns a copy of the value at key, or nil when absent.
func get(db pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	closer.Close()
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// tomb returns the tombstone of key k (tombKey). The caller holds the
// key lock of k's reference, under which every tombstone of it is put
// (putTomb): when one is there, its bit is set.
func (l *Ledger) tomb(k []byte) (refValue, bool) {
	if !l.tombBits.Load().has(k) {
		return refValue{}, false
	}
	l.tombMu.Lock()
	v, ok := l.tombs[string(k)]
	l.tombMu.Unlock()
	return v, ok
}

// putTomb puts a committed tombstone in memory, under its reference's
// key lock.
func (l *Ledger) putTomb(k []byte, v refValue) {
	l.tombMu.Lock()
	l.tombs[string(k)] = v
	l.tombBits.Load().add(k)
	l.tombMu.Unlock()
}

// tombFilter is a set of bits, one chosen by each tombstone key's hash:
// a key whose bit is clear is not in the set it was built from.
type tombFilter struct {
	seed maphash.Seed
	bits [tombFilterBits / 64]atomic.Uint64
}

// tombFilterBits is a power of two: 8 KiB, so a few thousand tombstones
// leave most references' bits clear.
const tombFilterBits = 1 << 16

func newTombFilter() *tombFilter { return &tombFilter{seed: maphash.MakeSeed()} }

// bit hashes the reference part of k, a tombKey or a refKey (the same
// layout after their first two bytes).
func (f *tombFilter) bit(k []byte) (word int, mask uint64) {
	h := maphash.Bytes(f.seed, k[2:])
	return int(h / 64 % (tombFilterBits / 64)), 1 << (h % 64)
}

func (f *tombFilter) add(k []byte) {
	w, m := f.bit(k)
	f.bits[w].Or(m)
}

func (f *tombFilter) has(k []byte) bool {
	w, m := f.bit(k)
	return f.bits[w].Load()&m != 0
}

func (l *Ledger) account(a AccountID) *atomic.Int64 {
	if v, ok := l.accounts[a]; ok {
		return v
	}
	v := new(atomic.Int64)
	l.accounts[a] = v
	return v
}

// prepareMerchant builds what a merchant keeps beside its record: its
// payable account, that account's balance and the digits of its id.
// l.mu held for writing (or the ledger not yet shared).
func (l *Ledger) prepareMerchant(m *merchant) {
	m.payable = MerchantPayable(m.ID)
	m.bal = l.account(m.payable)
	m.idEnc = digitsEncoding(m.ID)
}

// addBalance publishes a committed change of a non-card account.
func (l *Ledger) addBalance(a AccountID, v Fen) {
	l.mu.RLock()
	acc, ok := l.accounts[a]
	l.mu.RUnlock()
	if !ok {
		l.mu.Lock()
		acc = l.account(a)
		l.mu.Unlock()
	}
	acc.Add(int64(v))
}

func (l *Ledger) entry(pan string) *cardEntry {
	l.mu.RLock()
	e := l.cards[pan]
	l.mu.RUnlock()
	return e
}

// merchantAndCard is merchant(id) and entry(pan) under one read lock
// (a purchase needs both).
func (l *Ledger) merchantAndCard(id, pan string) (*merchant, *cardEntry) {
	l.mu.RLock()
	m, e := l.merchants[id], l.cards[pan]
	l.mu.RUnlock()
	return m, e
}

func (l *Ledger) merchant(id string) *merchant {
	l.mu.RLock()
	m := l.merchants[id]
	l.mu.RUnlock()
	return m
}

// AccountBalance returns the published balance of any account (zero for an
// account that has never been posted to).
func (l *Ledger) AccountBalance(a AccountID) Fen {
	if a.Class() == ClassCard {
		s := string(a)[len("card/"):]
		i := bytes.LastIndexByte([]byte(s), '/')
		if i < 0 {
			return 0
		}
		e := l.entry(s[:i])
		if e == nil {
			return 0
		}
		c := e.cur.Load()
		switch s[i+1:] {
		case "cash":
			return c.Cash
		case "subsidy":
			return c.Subsidy
		}
		return 0
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if v, ok := l.accounts[a]; ok {
		return Fen(v.Load())
	}
	return 0
}

// CardView is a read-only snapshot of a card.
type CardView struct {
	PAN         string
	Holder      string
	HolderType  HolderType
	State       CardState
	LostFrom    CardState // for a lost card: the state it returns to when found
	List        ListFlag
	Balances    Balances
	DailyLimit  Fen
	PerTxnLimit Fen
	NoPINLimit  Fen
	MaxBalance  Fen
	FeeBP       int32
	PINTries    int
	DayDate     BusinessDate
	DaySpent    Fen
	Holds       int
	ReplacedBy  string
	// Owed is what the holder owes the school (docs/ledger.md#receivables);
	// above zero the card is owing and its debits are declined.
	Owed Fen
	// Pending is what outside credits hold for the card until a load
	// terminal claims them (docs/recharge.md#pending-loads).
	Pending Fen
}

func (c *card) view() CardView {
	return CardView{
		PAN: c.PAN, Holder: c.Holder, HolderType: c.HolderType, State: c.State, LostFrom: c.lostFrom(), List: c.List,
		Balances: c.balances(), DailyLimit: c.DailyLimit, PerTxnLimit: c.PerTxnLimit,
		NoPINLimit: c.NoPINLimit, MaxBalance: c.MaxBalance, FeeBP: c.FeeBP,
		PINTries: int(c.PINTries), DayDate: c.DayDate, DaySpent: c.DaySpent,
		Holds: len(c.Holds), ReplacedBy: c.ReplacedBy, Owed: c.owed(), Pending: c.pending(),
	}
}

// Card returns the published state of a card.
func (l *Ledger) Card(pan string) (CardView, bool) {
	e := l.entry(pan)
	if e == nil {
		return CardView{}, false
	}
	return e.cur.Load().view(), true
}

// PINVerificationValue returns the opaque PIN verification value the HSM
// computed when the card's PIN was set, for the switch to verify a PIN
// block against. The ledger only stores it.
func (l *Ledger) PINVerificationValue(pan string) ([]byte, error) {
	e := l.entry(pan)
	if e == nil {
		return nil, fmt.Errorf("PIN verification value of card %s: %w", cardno.Mask(pan), ErrUnknownCard)
	}
	return bytes.Clone(e.cur.Load().PVV), nil
}

// keyLocks are exclusive locks on keys (idempotency keys and terminal
// references), created on demand and dropped when no one holds or waits
// for them, so there is no false sharing between unrelated terminals. A
// key is held by its 64-bit hash: two keys that collide only share a lock,
// which over-serialises and never under-serialises, and the hot path
// allocates nothing.
//
// Each shard holds the locks of its keys in a few fixed slots, searched
// in order under the shard's mutex: the keys held at one time are the
// operations in flight, a slot or two a shard, so a lock is taken and
// given back without hashing into a map or deleting from it. Only when
// every slot of a shard is taken does a key go to the shard's map (which
// keeps a few unused lock objects for the next keys).
type keyLocks struct {
	seed   maphash.Seed
	shards [64]keyShard
}

type keyShard struct {
	mu    sync.Mutex
	slots [keySlots]keyLock
	used  uint8 // bit i: slots[i] holds a key
	m     map[uint64]*keyLock
	free  []*keyLock // at most maxFreeKeyLocks, for the next keys
}

// keySlots is the keys a shard holds without its map (the bits of
// keyShard.used).
const keySlots = 8

// maxFreeKeyLocks bounds the unused lock objects a shard keeps.
const maxFreeKeyLocks = 8

// lockFor returns the lock of hash v — the slot or map entry holding it,
// else a free slot, else a new map entry — and counts the caller in. s.mu
// held. A hash is in one place at most: a slot is taken only after the
// slots and the map were searched for it.
func (s *keyShard) lockFor(v uint64) *keyLock {
	for used := s.used; used != 0; used &= used - 1 {
		e := &s.slots[bits.TrailingZeros8(used)]
		if e.hash == v {
			e.n++
			return e
		}
	}
	if len(s.m) > 0 {
		if e := s.m[v]; e != nil {
			e.n++
			return e
		}
	}
	if s.used != 1<<keySlots-1 {
		i := bits.TrailingZeros8(^s.used)
		s.used |= 1 << i
		e := &s.slots[i]
		e.hash, e.n = v, 1
		return e
	}
	var e *keyLock
	if n := len(s.free); n > 0 {
		e, s.free[n-1] = s.free[n-1], nil
		s.free = s.free[:n-1]
	} else {
		e = &keyLock{slot: -1}
	}
	e.hash, e.n = v, 1
	s.m[v] = e
	return e
}

// release counts a holder or waiter of hash v's lock e out, and frees
// the lock when it was the last (a slot by its count alone, a map entry
// by deleting it). s.mu held.
func (s *keyShard) release(v uint64, e *keyLock) {
	e.n--
	switch {
	case e.n != 0:
	case e.slot >= 0:
		s.used &^= 1 << e.slot
	default:
		delete(s.m, v)
		if len(s.free) < maxFreeKeyLocks {
			s.free = append(s.free, e)
		}
	}
}

type keyLock struct {
	mu   sync.Mutex
	n    int    // holders plus waiters
	hash uint64 // the key's hash, while n > 0
	slot int    // its index in its shard's slots, -1 for a map entry
}

// maxLockedKeys bounds the keys one operation locks: its idempotency key,
// its own reference and the reference of its original.
const maxLockedKeys = 3

// heldKeys are the key locks one operation holds, in locking order.
type heldKeys struct {
	k     *keyLocks
	n     int
	hash  [maxLockedKeys]uint64
	locks [maxLockedKeys]*keyLock
}

func (k *keyLocks) init() {
	k.seed = maphash.MakeSeed()
	for i := range k.shards {
		s := &k.shards[i]
		s.m = make(map[uint64]*keyLock)
		for j := range s.slots {
			s.slots[j].slot = j
		}
	}
}

func (k *keyLocks) hash(key []byte) uint64 { return maphash.Bytes(k.seed, key) }

// lockAll locks the keys in ascending hash order (the fixed order that
// keeps two operations from deadlocking), each once; nil keys are skipped.
func (k *keyLocks) lockAll(keys ...[]byte) heldKeys {
	if len(keys) > maxLockedKeys {
		panic(fmt.Sprintf("ledger: %d keys locked by one operation, at most %d", len(keys), maxLockedKeys))
	}
	h := heldKeys{k: k}
	for _, key := range keys {
		if key == nil {
			continue
		}
		v := k.hash(key)
		i := h.n
		for i > 0 && h.hash[i-1] > v {
			i--
		}
		if i > 0 && h.hash[i-1] == v {
			continue
		}
		copy(h.hash[i+1:h.n+1], h.hash[i:h.n])
		h.hash[i] = v
		h.n++
	}
	for i := 0; i < h.n; i++ {
		s := &k.shards[h.hash[i]%uint64(len(k.shards))]
		s.mu.Lock()
		e := s.lockFor(h.hash[i])
		s.mu.Unlock()
		e.mu.Lock()
		h.locks[i] = e
	}
	return h
}

// tryLock locks key if no one holds or waits for it, without waiting.
// Prune uses it to hold many keys at once: it never waits for a key while
// holding others, so it cannot deadlock with lockAll's fixed order.
func (k *keyLocks) tryLock(key []byte) (heldKeys, bool) {
	h := heldKeys{k: k}
	v := k.hash(key)
	s := &k.shards[v%uint64(len(k.shards))]
	s.mu.Lock()
	e := s.lockFor(v)
	s.mu.Unlock()
	if !e.mu.TryLock() {
		s.mu.Lock()
		s.release(v, e)
		s.mu.Unlock()
		return h, false
	}
	h.hash[0], h.locks[0], h.n = v, e, 1
	return h, true
}

// unlock releases the locks in reverse order.
func (h *heldKeys) unlock() {
	for i := h.n - 1; i >= 0; i-- {
		s := &h.k.shards[h.hash[i]%uint64(len(h.k.shards))]
		e := h.locks[i]
		e.mu.Unlock()
		s.mu.Lock()
		s.release(h.hash[i], e)
		s.mu.Unlock()
	}
	h.n = 0
}
