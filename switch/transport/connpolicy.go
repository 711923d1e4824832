package transport

import (
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
	cfg  Config
	nets []trustedNet // most specific first

	termMu sync.Mutex
	terms  map[string][]*Session // proved terminal id -> its connections, oldest first

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

func newConnPolicy(cfg Config) *connPolicy {
	p := &connPolicy{cfg: cfg, terms: make(map[string][]*Session), buckets: make(map[netip.Addr]*rateBucket)}
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
func (p *connPolicy) claimTerminal(s *Session, id string) *Session {
	p.termMu.Lock()
	defer p.termMu.Unlock()
	p.dropTerminalLocked(s)
	list := p.terms[id]
	var evict *Session
	if len(list) >= p.cfg.MaxConnectionsPerTerminal {
		evict, list = list[0], list[1:]
		evict.policy.terminal = ""
	}
	p.terms[id] = append(list, s)
	s.policy.terminal = id
	return evict
}

// releaseTerminal forgets s's terminal (the connection ends).
func (p *connPolicy) releaseTerminal(s *Session) {
	p.termMu.Lock()
	p.dropTerminalLocked(s)
	p.termMu.Unlock()
}

func (p *connPolicy) dropTerminalLocked(s *Session) {
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
func (a *Acceptor) readDeadline(s *Session, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if !s.policy.gotValid && s.policy.firstDeadline.Before(t) {
		return s.policy.firstDeadline
	}
	return t
}

// firstFrameExpired counts a connection closed for sending no frame that
// decodes within the first-frame deadline; false when that is not why.
func (a *Acceptor) firstFrameExpired(s *Session) bool {
	if s.policy.gotValid || time.Now().Before(s.policy.firstDeadline) {
		return false
	}
	a.refusal(s.policy.ip, "first_frame_timeout")
	return true
}

// admit applies the policy after the protocol handled a frame: false when
// the connection must close without its answer.
func (a *Acceptor) admit(s *Session) bool {
	defer func() { s.Unauthenticated, s.Undecodable = false, false }()
	if !s.Undecodable {
		s.policy.gotValid = true
	}
	if s.Unauthenticated {
		if !a.pol.allowUnauthenticated(s.policy.ip, time.Now()) {
			a.refusal(s.policy.ip, "unauthenticated_rate_limit")
			return false
		}
		return true
	}
	if s.Terminal != "" && s.Terminal != s.policy.claimed {
		s.policy.claimed = s.Terminal
		if old := a.pol.claimTerminal(s, s.Terminal); old != nil {
			a.refusal(old.policy.ip, "terminal_connection_limit")
			old.policy.evicted.Store(true)
			_ = old.conn.SetReadDeadline(time.Now())
		}
	}
	return true
}

// refusal counts a connection refused or closed under reason and warns at
// most once per refusalLogEvery per listener.
func (a *Acceptor) refusal(ip netip.Addr, reason string) {
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
