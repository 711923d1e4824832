// Package gwsim is a bank (or wallet operator) on the far side of a gateway
// link, for tests and demos: it listens for the switch's outbound link,
// speaks the gateway dialect (docs/gateway-dialect.md), answers sign-on,
// sign-off, echo and key exchange, verifies PINs under its ZPK and MACs
// under its ZAK, keeps its own account holders' balances, and records
// everything it approved or reversed — the bank's side of the books that
// tests and reconciliation compare against (docs/gwsim.md).
//
// Faults are injected on request: answers delayed, dropped, declined, the
// connection closed after N messages, sign-on refused.
package gwsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// Faults are the injected misbehaviours. They apply to financial answers
// (0210, 0230, 0430, 0410) except RefuseSignOn and DisconnectAfter.
type Faults struct {
	// Delay holds every financial answer back this long after the
	// request was processed (the bank was slow; the money has moved).
	Delay time.Duration `json:"delay_ms"`
	// DropPercent of financial answers are never sent, though the
	// request was processed (0..100).
	DropPercent int `json:"drop_percent"`
	// Decline answers every consume, balance inquiry, void, refund and
	// transfer-load leg with this response code and does nothing.
	// Reversals are still honoured. "" declines nothing.
	Decline string `json:"decline"`
	// DeclineReversals answers every reversal (0420/0421, 0400/0401)
	// with this response code and does nothing: the original stands (a
	// bank refusing the reversal; the switch dead-letters it). "" honours
	// them.
	DeclineReversals string `json:"decline_reversals"`
	// DisconnectAfter closes each connection after it has carried this
	// many messages (requests read; the last one is answered first).
	// 0 never disconnects.
	DisconnectAfter int `json:"disconnect_after"`
	// RefuseSignOn answers sign-on (0800, 70 = 001) with 91.
	RefuseSignOn bool `json:"refuse_signon"`
}

// Bounds on faults and options.
const (
	MaxDelay           = 5 * time.Minute
	MaxDisconnectAfter = 1_000_000_000
	MaxConnsLimit      = 1024
	defaultMaxConns    = 16
	defaultKeyGrace    = 10 * time.Second
	defaultClockWindow = 300 * time.Second
	maxFrame           = 8192
	idleTimeout        = 10 * time.Minute
	writeTimeout       = 10 * time.Second
)

// Check reports whether the faults are within bounds.
func (f Faults) Check() error {
	switch {
	case f.Delay < 0 || f.Delay > MaxDelay:
		return fmt.Errorf("delay %s out of range (0..%s)", f.Delay, MaxDelay)
	case f.DropPercent < 0 || f.DropPercent > 100:
		return fmt.Errorf("drop %d%% out of range (0..100)", f.DropPercent)
	case f.Decline != "" && (len(f.Decline) != 2 || !printableASCII(f.Decline) || f.Decline == spec.RCApproved):
		return fmt.Errorf("decline code %q: want two characters other than 00", f.Decline)
	case f.DeclineReversals != "" && (len(f.DeclineReversals) != 2 || !printableASCII(f.DeclineReversals) || f.DeclineReversals == spec.RCApproved):
		return fmt.Errorf("reversal decline code %q: want two characters other than 00", f.DeclineReversals)
	case f.DisconnectAfter < 0 || f.DisconnectAfter > MaxDisconnectAfter:
		return fmt.Errorf("disconnect-after %d out of range (0..%d)", f.DisconnectAfter, MaxDisconnectAfter)
	}
	return nil
}

// Options configure a simulator. Zero values take the defaults noted.
type Options struct {
	// Addr is the link listener, a loopback HOST:PORT. Default
	// 127.0.0.1:0 (an ephemeral port; see Sim.Addr).
	Addr string
	// HTTPAddr, when set, serves the status surface (docs/gwsim.md) on a
	// loopback HOST:PORT.
	HTTPAddr string
	// Accounts are the bank's account holders. Default DemoAccounts.
	Accounts []Account
	// ZMK is the zone master key in clear, 32 hex. Default DemoZMK.
	ZMK string
	// ZPK and ZAK are the working keys in use before the first key
	// exchange, 32 hex each (for links configured with fixed keys).
	// Default: fresh random keys, which reach the switch only through a
	// key exchange.
	ZPK, ZAK string
	// MAC is the link's MAC algorithm: MACX919 (the default; a TDES ZAK)
	// or MACSM4 (an SM4 ZAK; docs/gateway-dialect.md, MAC).
	MAC string
	// Institution, when set, is the only acceptable field 100 of
	// financial requests (others are answered 03).
	Institution string
	// Faults injected from the start (SetFaults changes them).
	Faults Faults
	// KeyGrace is how long after a key exchange the previous ZPK and ZAK
	// are still accepted. Default 10 s.
	KeyGrace time.Duration
	// ClockWindow bounds how far field 7 may be from the simulator's
	// clock (30 otherwise). Default 300 s.
	ClockWindow time.Duration
	// Cutover is the time of day ("HH:MM", local) at which the bank's
	// business day changes, for its reconciliation file. Default 23:00.
	Cutover string
	// ReconDir is where WriteRecon and the HTTP surface put daily files.
	// Default the working directory.
	ReconDir string
	// MaxConns bounds concurrent link connections. Default 16.
	MaxConns int
	// Seed makes dropped answers reproducible (0 picks one at random).
	Seed uint64
	// Logger receives connection and decision logs (card numbers
	// masked). Default none.
	Logger *zap.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Sim is a running simulator.
type Sim struct {
	opts     Options
	log      *zap.Logger
	now      func() time.Time
	cutover  time.Duration
	ln       net.Listener
	httpLn   net.Listener
	httpSrv  *http.Server
	done     chan struct{}
	wg       sync.WaitGroup
	closeErr error
	once     sync.Once

	mu         sync.Mutex
	accounts   []*account
	byCard     map[string]*account
	byNumber   map[string]*account
	zmk        *zoneKey
	keys       keySet
	faults     Faults
	rng        *rand.Rand
	entries    []*Entry
	byKey      map[string]*Entry // request key (MTI+11+7+32+33) -> entry
	tombstones map[string]time.Time
	serial     int64
	conns      map[net.Conn]*conn
	stats      Stats
}

type account struct {
	Account
	opening spec.Amount
	held    spec.Amount // standing pre-auth holds
}

// Stats count what the simulator saw.
type Stats struct {
	Connections   int64 `json:"connections"`
	Messages      int64 `json:"messages"`
	SignOns       int64 `json:"sign_ons"`
	SignOffs      int64 `json:"sign_offs"`
	KeyExchanges  int64 `json:"key_exchanges"`
	FormatErrors  int64 `json:"format_errors"`
	MACErrors     int64 `json:"mac_errors"`
	Dropped       int64 `json:"dropped"`
	Disconnects   int64 `json:"disconnects"`
	Approved      int64 `json:"approved"`
	Declined      int64 `json:"declined"`
	Reversed      int64 `json:"reversed"`
	ReversalsSeen int64 `json:"reversals_seen"`
}

// ErrOptions: the options are out of bounds.
var ErrOptions = errors.New("gwsim: bad options")

// Start checks the options, opens the listeners and serves until Close.
func Start(o Options) (*Sim, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Accounts == nil {
		o.Accounts = DemoAccounts()
	}
	if o.ZMK == "" {
		o.ZMK = DemoZMK
	}
	if o.MAC == "" {
		o.MAC = MACX919
	}
	if o.KeyGrace == 0 {
		o.KeyGrace = defaultKeyGrace
	}
	if o.ClockWindow == 0 {
		o.ClockWindow = defaultClockWindow
	}
	if o.Cutover == "" {
		o.Cutover = "23:00"
	}
	if o.ReconDir == "" {
		o.ReconDir = "."
	}
	if o.MaxConns == 0 {
		o.MaxConns = defaultMaxConns
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	s := &Sim{opts: o, log: o.Logger, now: o.Now, done: make(chan struct{}),
		byCard: map[string]*account{}, byNumber: map[string]*account{},
		byKey: map[string]*Entry{}, tombstones: map[string]time.Time{},
		conns: map[net.Conn]*conn{}, faults: o.Faults,
		rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))}
	if err := s.configure(); err != nil {
		return nil, err
	}
	if err := checkLoopback(o.Addr); err != nil {
		return nil, fmt.Errorf("%w: link address: %v", ErrOptions, err)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("gwsim: listen %s: %w", o.Addr, err)
	}
	s.ln = ln
	if o.HTTPAddr != "" {
		if err := s.startHTTP(); err != nil {
			ln.Close()
			return nil, err
		}
	}
	s.wg.Add(1)
	go s.accept()
	s.log.Info("gwsim listening", zap.String("addr", ln.Addr().String()), zap.Int("accounts", len(s.accounts)))
	return s, nil
}

func (s *Sim) configure() error {
	o := s.opts
	if err := checkAccounts(o.Accounts); err != nil {
		return fmt.Errorf("%w: %v", ErrOptions, err)
	}
	if err := o.Faults.Check(); err != nil {
		return fmt.Errorf("%w: %v", ErrOptions, err)
	}
	if o.KeyGrace < 0 || o.KeyGrace > time.Hour {
		return fmt.Errorf("%w: key grace %s (0..1h)", ErrOptions, o.KeyGrace)
	}
	if o.ClockWindow < 0 || o.ClockWindow > 24*time.Hour {
		return fmt.Errorf("%w: clock window %s (0..24h)", ErrOptions, o.ClockWindow)
	}
	if o.MaxConns < 0 || o.MaxConns > MaxConnsLimit {
		return fmt.Errorf("%w: max connections %d (1..%d)", ErrOptions, o.MaxConns, MaxConnsLimit)
	}
	if o.Institution != "" && (len(o.Institution) > 11 || !digits(o.Institution)) {
		return fmt.Errorf("%w: institution id %q: want 1..11 digits", ErrOptions, o.Institution)
	}
	cut, err := parseCutover(o.Cutover)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOptions, err)
	}
	s.cutover = cut
	if o.MAC != MACX919 && o.MAC != MACSM4 {
		return fmt.Errorf("%w: MAC %q: want %q or %q", ErrOptions, o.MAC, MACX919, MACSM4)
	}
	if s.zmk, err = parseZoneKey(o.ZMK); err != nil {
		return fmt.Errorf("%w: ZMK: %v", ErrOptions, err)
	}
	for _, p := range []struct {
		hex string
		dst **zoneKey
		nm  string
		alg string
	}{{o.ZPK, &s.keys.zpk, "ZPK", MACX919}, {o.ZAK, &s.keys.zak, "ZAK", o.MAC}} {
		if p.hex == "" {
			*p.dst, err = randomZoneKeyAlg(p.alg)
		} else {
			*p.dst, err = parseZoneKeyAlg(p.hex, p.alg)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrOptions, p.nm, err)
		}
	}
	for _, a := range o.Accounts {
		acc := &account{Account: a, opening: a.Balance}
		s.accounts = append(s.accounts, acc)
		s.byCard[a.Card] = acc
		s.byNumber[a.Number] = acc
	}
	return nil
}

// checkLoopback refuses listen addresses other than loopback: the
// simulator holds keys in clear and has no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", host)
	}
	return nil
}

func parseCutover(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh > 23 || mm > 59 || hh < 0 || mm < 0 {
		return 0, fmt.Errorf("cutover %q: want HH:MM", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// BusinessDate is the bank's business day of time t, YYYYMMDD (the
// switch's form): the calendar date in local time, moved to the next day
// from the cutover on (a cutover of 00:00 keeps the calendar date).
func (s *Sim) BusinessDate(t time.Time) string {
	t = t.Local()
	mid := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	if s.cutover > 0 && t.Sub(mid) >= s.cutover {
		mid = mid.AddDate(0, 0, 1)
	}
	return mid.Format("20060102")
}

// Addr is the link listener's address (HOST:PORT).
func (s *Sim) Addr() string { return s.ln.Addr().String() }

// HTTPAddr is the status surface's address, or "" when it is off.
func (s *Sim) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Close stops the listeners, closes every connection and waits for the
// connection goroutines. Answers still delayed are not sent.
func (s *Sim) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.closeErr = s.ln.Close()
		if s.httpSrv != nil {
			if err := s.httpSrv.Close(); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s.closeErr
}

// Faults returns the faults in force.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// SetFaults changes the injected faults; they apply to messages read from
// now on.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	s.log.Info("gwsim faults changed", zap.Duration("delay", f.Delay), zap.Int("drop_percent", f.DropPercent),
		zap.String("decline", f.Decline), zap.Int("disconnect_after", f.DisconnectAfter), zap.Bool("refuse_signon", f.RefuseSignOn))
	return nil
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// AccountState is an account holder's current standing.
type AccountState struct {
	Card    string      `json:"card"`
	Number  string      `json:"account"`
	Holder  string      `json:"holder"`
	Opening spec.Amount `json:"opening_fen"`
	Balance spec.Amount `json:"balance_fen"`
	// Held is what standing pre-auths hold of the balance.
	Held spec.Amount `json:"held_fen"`
}

// Accounts returns every account holder with the opening and current
// balance, in configuration order.
func (s *Sim) Accounts() []AccountState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AccountState, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, AccountState{Card: a.Card, Number: a.Number, Holder: a.Holder, Opening: a.opening, Balance: a.Balance, Held: a.held})
	}
	return out
}

// Balance returns the current balance of the account holder with this
// card number.
func (s *Sim) Balance(card string) (spec.Amount, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byCard[card]
	if !ok {
		return 0, false
	}
	return a.Balance, true
}

// Entries returns a copy of the record of every financial request
// processed, in order.
func (s *Sim) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, len(s.entries))
	for i, e := range s.entries {
		out[i] = *e
	}
	return out
}

// WorkingKeys returns the current ZPK and ZAK in clear hex (the bank's own
// keys; tests use them to build what the switch would send).
func (s *Sim) WorkingKeys() (zpk, zak string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%X", s.keys.zpk.clear), fmt.Sprintf("%X", s.keys.zak.clear)
}

// sortedCards is used by the status dump.
func (s *Sim) sortedAccounts() []AccountState {
	a := s.Accounts()
	sort.SliceStable(a, func(i, j int) bool { return a[i].Card < a[j].Card })
	return a
}

// Verify checks the bank's books: every holder's balance equals the
// opening balance plus the balance effects of the approved entries, its
// holds equal both the entries' hold effects and its standing pre-auths,
// and no original was reversed by two reversals. Tests call it after a
// run.
func (s *Sim) Verify() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	moved := make(map[string]spec.Amount, len(s.accounts))
	held := map[string]spec.Amount{}      // by the entries' hold effects
	openHolds := map[string]spec.Amount{} // by the standing pre-auths
	reversedBy := map[string]int{}
	for _, e := range s.entries {
		if e.RC != spec.RCApproved {
			if e.Delta != 0 || e.Hold != 0 {
				return fmt.Errorf("entry %s declined %s but moved %d fen (hold %d)", e.Serial, e.RC, e.Delta, e.Hold)
			}
			continue
		}
		moved[e.Card] += e.Delta
		held[e.Card] += e.Hold
		if e.HoldOpen {
			openHolds[e.Card] += e.Amount
		}
		if e.Op == OpReversal && (e.Delta != 0 || e.Hold != 0) {
			reversedBy[e.Original]++
		}
	}
	for orig, n := range reversedBy {
		if n > 1 {
			return fmt.Errorf("original %s reversed %d times", orig, n)
		}
	}
	for _, a := range s.accounts {
		if want := a.opening + moved[a.Card]; a.Balance != want {
			return fmt.Errorf("account %s: balance %s, opening %s plus entries %s", a.Number, a.Balance, a.opening, want)
		}
		if a.held != held[a.Card] || a.held != openHolds[a.Card] || a.held < 0 {
			return fmt.Errorf("account %s: held %s, entries' holds %s, standing pre-auths %s", a.Number, a.held, held[a.Card], openHolds[a.Card])
		}
	}
	return nil
}
