package switching

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The connection policy of an acceptor (docs/operations.md "Connection
// policy", docs/security.md): a global limit (the acceptor's slots), a
// per-address limit with allowances for trusted networks (sites whose
// terminals share a NAT address), a first-frame deadline, a per-terminal
// limit once a terminal has proved itself, and a per-address rate of
// messages that prove nothing.

// maxRateBuckets bounds the addresses whose unauthenticated message rate
// is tracked; full (idle) buckets are dropped first, and when every entry
// is in use new addresses share one bucket.
const maxRateBuckets = 65536

type trustedNet struct {
	prefix netip.Prefix
	allow  int
}

type rateBucket struct {
	tokens float64
	last   time.Time
}

type connPolicy struct {
	cfg  ListenerConfig
	nets []trustedNet // most specific first

	termMu sync.Mutex
	terms  map[string][]*session // proved terminal id -> its connections, oldest first

	rateMu   sync.Mutex
	buckets  map[netip.Addr]*rateBucket
	overflow rateBucket
}

// connState is one connection's policy state, owned by its goroutine but
// for evicted, which another connection of the same terminal may set.
type connState struct {
	ip            netip.Addr
	firstDeadline time.Time
	gotValid      bool   // a frame decoded
	claimed       string // the proved terminal this connection claimed (its own goroutine's copy)
	terminal      string // the terminal counted for this connection, under connPolicy.termMu
	evicted       atomic.Bool
}

func (l ListenerConfig) validatePolicy(name string) error {
	var errs []error
	if len(l.TrustedNetworks) > 1000 {
		errs = append(errs, fmt.Errorf("%s.trusted_networks: %d networks, want at most 1000", name, len(l.TrustedNetworks)))
	}
	for cidr, n := range l.TrustedNetworks {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			errs = append(errs, fmt.Errorf("%s.trusted_networks: %q is not a network in CIDR notation (e.g. 10.0.0.0/8)", name, truncateForError(cidr)))
			continue
		}
		if n < 1 || n > maxConnectionsLimit {
			errs = append(errs, fmt.Errorf("%s.trusted_networks %s: %d connections, want 1..%d", name, truncateForError(cidr), n, maxConnectionsLimit))
		}
	}
	if l.FirstFrameTimeout <= 0 || time.Duration(l.FirstFrameTimeout) > time.Hour {
		errs = append(errs, fmt.Errorf("%s.first_frame_timeout %s: want > 0 and <= 1h", name, time.Duration(l.FirstFrameTimeout)))
	}
	if l.MaxConnectionsPerTerminal < 1 || l.MaxConnectionsPerTerminal > 64 {
		errs = append(errs, fmt.Errorf("%s.max_connections_per_terminal %d: want 1..64", name, l.MaxConnectionsPerTerminal))
	}
	if l.UnauthenticatedPerSecond < 1 || l.UnauthenticatedPerSecond > 100000 {
		errs = append(errs, fmt.Errorf("%s.unauthenticated_per_second %d: want 1..100000", name, l.UnauthenticatedPerSecond))
	}
	return errors.Join(errs...)
}

func newConnPolicy(cfg ListenerConfig) *connPolicy {
	p := &connPolicy{cfg: cfg, terms: make(map[string][]*session), buckets: make(map[netip.Addr]*rateBucket)}
	for cidr, n := range cfg.TrustedNetworks {
		if pfx, err := netip.ParsePrefix(cidr); err == nil { // validated at start
			p.nets = append(p.nets, trustedNet{pfx.Masked(), n})
		}
	}
	sort.Slice(p.nets, func(i, j int) bool { return p.nets[i].prefix.Bits() > p.nets[j].prefix.Bits() })
	return p
}

// peerLimit is the connections ip may hold at once: its trusted
// network's allowance when that is higher than MaxConnectionsPerPeer.
func (p *connPolicy) peerLimit(ip netip.Addr) int {
	for _, n := range p.nets {
		if n.prefix.Contains(ip) {
			return max(n.allow, p.cfg.MaxConnectionsPerPeer)
		}
	}
	return p.cfg.MaxConnectionsPerPeer
}

// allowUnauthenticated takes one message from ip's budget of messages
// that prove nothing.
func (p *connPolicy) allowUnauthenticated(ip netip.Addr, now time.Time) bool {
	rate := float64(p.cfg.UnauthenticatedPerSecond)
	if lim := p.peerLimit(ip); lim > p.cfg.MaxConnectionsPerPeer {
		rate *= float64(lim) / float64(p.cfg.MaxConnectionsPerPeer)
	}
	burst := 2 * rate
	p.rateMu.Lock()
	defer p.rateMu.Unlock()
	b := p.buckets[ip]
	if b == nil {
		if len(p.buckets) >= maxRateBuckets {
			for k, v := range p.buckets {
				if v.tokens+now.Sub(v.last).Seconds()*rate >= burst {
					delete(p.buckets, k)
				}
			}
		}
		if len(p.buckets) >= maxRateBuckets {
			b = &p.overflow
		} else {
			b = &rateBucket{tokens: burst, last: now}
			p.buckets[ip] = b
		}
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// claimTerminal counts s for terminal id and returns the connection it
// displaces, if the terminal already held its maximum.
func (p *connPolicy) claimTerminal(s *session, id string) *session {
	p.termMu.Lock()
	defer p.termMu.Unlock()
	p.dropTerminalLocked(s)
	list := p.terms[id]
	var evict *session
	if len(list) >= p.cfg.MaxConnectionsPerTerminal {
		evict, list = list[0], list[1:]
		evict.policy.terminal = ""
	}
	p.terms[id] = append(list, s)
	s.policy.terminal = id
	return evict
}

// releaseTerminal forgets s's terminal (the connection ends).
func (p *connPolicy) releaseTerminal(s *session) {
	p.termMu.Lock()
	p.dropTerminalLocked(s)
	p.termMu.Unlock()
}

func (p *connPolicy) dropTerminalLocked(s *session) {
	id := s.policy.terminal
	if id == "" {
		return
	}
	list := p.terms[id]
	for i, o := range list {
		if o == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.terms, id)
	} else {
		p.terms[id] = list
	}
	s.policy.terminal = ""
}

// readDeadline is the deadline of the next read of s: d from now, but no
// later than the first-frame deadline while no frame has decoded.
func (a *acceptor) readDeadline(s *session, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if !s.policy.gotValid && s.policy.firstDeadline.Before(t) {
		return s.policy.firstDeadline
	}
	return t
}

// firstFrameExpired counts a connection closed for sending no frame that
// decodes within the first-frame deadline; false when that is not why.
func (a *acceptor) firstFrameExpired(s *session) bool {
	if s.policy.gotValid || time.Now().Before(s.policy.firstDeadline) {
		return false
	}
	a.refusal(s.policy.ip, "first_frame_timeout")
	return true
}

// admit applies the policy after the protocol handled a frame: false when
// the connection must close without its answer.
func (a *acceptor) admit(s *session) bool {
	defer func() { s.unauthenticated, s.undecodable = false, false }()
	if !s.undecodable {
		s.policy.gotValid = true
	}
	if s.unauthenticated {
		if !a.pol.allowUnauthenticated(s.policy.ip, time.Now()) {
			a.refusal(s.policy.ip, "unauthenticated_rate_limit")
			return false
		}
		return true
	}
	if s.terminal != "" && s.terminal != s.policy.claimed {
		s.policy.claimed = s.terminal
		if old := a.pol.claimTerminal(s, s.terminal); old != nil {
			a.refusal(old.policy.ip, "terminal_connection_limit")
			old.policy.evicted.Store(true)
			_ = old.conn.SetReadDeadline(time.Now())
		}
	}
	return true
}

// refusal counts a connection refused or closed under reason and warns at
// most once per refusalLogEvery per listener.
func (a *acceptor) refusal(ip netip.Addr, reason string) {
	a.metrics.Rejected.WithLabelValues(a.name, reason).Inc()
	now := time.Now().UnixNano()
	last := a.lastRefusalLog.Load()
	if last != 0 && now-last < int64(refusalLogEvery) || !a.lastRefusalLog.CompareAndSwap(last, now) {
		return
	}
	a.log.Warn("connection refused or closed by the connection policy (further ones this minute are only counted in switch_rejected_total)",
		zap.String("reason", reason), zap.Stringer("peer", ip),
		zap.Int("max_connections", a.cfg.MaxConnections), zap.Int("peer_limit", a.pol.peerLimit(ip)),
		zap.Int("max_connections_per_terminal", a.cfg.MaxConnectionsPerTerminal),
		zap.Int("unauthenticated_per_second", a.cfg.UnauthenticatedPerSecond))
}
