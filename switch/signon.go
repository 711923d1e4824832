package switching

import (
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/spec"
)

// Authenticated sign-on (docs/pos-dialect.md#sign-on-proof): an 0800
// rotates a terminal's keys and opens a batch only when field 62 proves
// that the sender holds the terminal's TMK, and its stamp (fields 13 ‖ 12
// ‖ 11) is later than the last one accepted. Failures are answered A0,
// counted in switch_signon_rejected_total{reason}, and limited per
// terminal and per source address; the terminal's keys and batch stay as
// they were.

// SignOnConfig bounds failed sign-ons.
type SignOnConfig struct {
	// MaxFailuresPerTerminal is how many failed sign-ons one terminal id
	// may see per Window; beyond it, its sign-ons are answered A0 without
	// being checked until the window ends [10].
	MaxFailuresPerTerminal int `yaml:"max_failures_per_terminal"`
	// MaxFailuresPerAddress is the same per source IP address [30].
	MaxFailuresPerAddress int `yaml:"max_failures_per_address"`
	// Window is the period the failures are counted over [1m].
	Window Duration `yaml:"window"`
}

func defaultSignOnConfig() SignOnConfig {
	return SignOnConfig{MaxFailuresPerTerminal: 10, MaxFailuresPerAddress: 30, Window: Duration(time.Minute)}
}

func (c SignOnConfig) validate() error {
	var errs []error
	if c.MaxFailuresPerTerminal < 1 || c.MaxFailuresPerTerminal > 10000 {
		errs = append(errs, fmt.Errorf("signon.max_failures_per_terminal %d: want 1..10000", c.MaxFailuresPerTerminal))
	}
	if c.MaxFailuresPerAddress < 1 || c.MaxFailuresPerAddress > 100000 {
		errs = append(errs, fmt.Errorf("signon.max_failures_per_address %d: want 1..100000", c.MaxFailuresPerAddress))
	}
	if d := time.Duration(c.Window); d < time.Second || d > 24*time.Hour {
		errs = append(errs, fmt.Errorf("signon.window %s: want 1s..24h", d))
	}
	return errors.Join(errs...)
}

// Reasons a sign-on is refused (label values of
// switch_signon_rejected_total).
const (
	signOnMissingProof = "missing_proof"
	signOnBadProof     = "bad_proof"
	signOnReplay       = "replay"
	signOnRateLimited  = "rate_limited"
	signOnNotLegacyNet = "legacy_network"
	// signOffMAC: an 0820 sign-off of a signed-on terminal without a
	// valid MAC.
	signOffMAC = "signoff_mac"
)

var signOnRejectReasons = []string{signOnMissingProof, signOnBadProof, signOnReplay, signOnRateLimited, signOnNotLegacyNet, signOffMAC}

// errSignOnReplay is returned inside the terminal update when the stamp
// is not later than the last accepted one.
var errSignOnReplay = errors.New("sign-on stamp not later than the last accepted")

// maxLimiterKeys bounds each failure table: a flood of distinct terminal
// ids or addresses resets the table rather than growing it.
const maxLimiterKeys = 100_000

// failureLimiter counts failures per key in fixed windows.
type failureLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	m      map[string]*failureWindow
}

type failureWindow struct {
	start time.Time
	n     int
}

func newFailureLimiter(max int, window time.Duration) *failureLimiter {
	return &failureLimiter{max: max, window: window, m: map[string]*failureWindow{}}
}

// blocked reports whether key has used up its failures in the current
// window.
func (l *failureLimiter) blocked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	return w != nil && now.Sub(w.start) < l.window && w.n >= l.max
}

// fail counts one failure of key.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	if w == nil || now.Sub(w.start) >= l.window {
		if w == nil && len(l.m) >= maxLimiterKeys {
			for k, v := range l.m {
				if now.Sub(v.start) >= l.window {
					delete(l.m, k)
				}
			}
			if len(l.m) >= maxLimiterKeys {
				l.m = map[string]*failureWindow{}
			}
		}
		w = &failureWindow{start: now}
		l.m[key] = w
	}
	w.n++
}

// signOnGuard holds the failure limits of sign-on.
type signOnGuard struct {
	byTerminal, byAddress *failureLimiter
}

func newSignOnGuard(c SignOnConfig) *signOnGuard {
	return &signOnGuard{
		byTerminal: newFailureLimiter(c.MaxFailuresPerTerminal, time.Duration(c.Window)),
		byAddress:  newFailureLimiter(c.MaxFailuresPerAddress, time.Duration(c.Window)),
	}
}

// peerAddr is the IP address of a session's remote end.
func peerAddr(peer string) netip.Addr {
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// fullStamp turns the terminal's stamp (MMDD hhmmss STAN) into a
// comparable YYYYMMDDhhmmssSTAN: the year is the one that puts MMDD
// nearest the switch's own date (within half a year either way), so a
// sign-on on 1 January follows one on 31 December. A terminal clock more
// than half a year off would be read in the wrong year; an operator
// loading the terminal's TMK again clears the last stamp
// (docs/pos-dialect.md#sign-on-proof). ok is false for an impossible
// date or time.
func fullStamp(stamp string, now time.Time) (string, bool) {
	if len(stamp) != 16 {
		return "", false
	}
	var mm, dd, h, mi, s int
	if _, err := fmt.Sscanf(stamp[:10], "%2d%2d%2d%2d%2d", &mm, &dd, &h, &mi, &s); err != nil {
		return "", false
	}
	if h > 23 || mi > 59 || s > 59 {
		return "", false
	}
	best, bestDist := 0, time.Duration(1<<62)
	for _, y := range []int{now.Year() - 1, now.Year(), now.Year() + 1} {
		t := time.Date(y, time.Month(mm), dd, h, mi, s, 0, now.Location())
		if t.Month() != time.Month(mm) || t.Day() != dd {
			continue // 29 February of a common year
		}
		d := t.Sub(now)
		if d < 0 {
			d = -d
		}
		if d < bestDist {
			best, bestDist = y, d
		}
	}
	if best == 0 {
		return "", false
	}
	return fmt.Sprintf("%04d", best) + stamp, true
}

// authenticateSignOn checks an 0800 before anything changes: the failure
// limits, then the proof (or a legacy terminal's source network). It
// returns the stamp to compare and store (empty for a legacy sign-on
// without proof), or the reason for refusing. The replay rule is applied
// by the caller, under the terminal's lock.
func (p *posProtocol) authenticateSignOn(x *exchange, t *terminals.Terminal) (stamp, reason string) {
	sw := p.sw
	now := time.Now()
	addr := peerAddr(x.s.Peer)
	addrKey := addr.String()
	if sw.signOnGuard.byTerminal.blocked(t.ID, now) || sw.signOnGuard.byAddress.blocked(addrKey, now) {
		return "", signOnRateLimited
	}
	if len(x.req.Reserved62) == 0 && t.LegacySignOn {
		if pfx, err := netip.ParsePrefix(t.SourceNetwork); err == nil && addr.IsValid() && pfx.Contains(addr) {
			return "", ""
		}
		return "", signOnNotLegacyNet
	}
	if len(x.req.Reserved62) == 0 {
		return "", signOnMissingProof
	}
	short, ok := x.req.SignOnStamp()
	if !ok || len(x.req.Reserved62) != spec.SignOnProofLen {
		return "", signOnBadProof
	}
	full, ok := fullStamp(short, sw.clock.now().In(sw.clock.loc))
	if !ok {
		return "", signOnBadProof
	}
	good, err := sw.hsm.VerifySignOnProof(t.ID, short, x.req.Reserved62)
	if err != nil {
		sw.log.Warn("sign-on proof not verifiable", zap.String("terminal", t.ID), zap.Error(err))
		return "", signOnBadProof
	}
	if !good {
		return "", signOnBadProof
	}
	return full, ""
}

// refuseSignOn answers A0, counts the refusal and its failure.
func (p *posProtocol) refuseSignOn(x *exchange, t *terminals.Terminal, reason string) *spec.POSMessage {
	sw := p.sw
	sw.metrics.SignOnRejected.WithLabelValues(reason).Inc()
	if reason != signOnRateLimited {
		now := time.Now()
		sw.signOnGuard.byTerminal.fail(t.ID, now)
		sw.signOnGuard.byAddress.fail(peerAddr(x.s.Peer).String(), now)
		sw.log.Warn("sign-on refused", zap.String("terminal", t.ID), zap.String("reason", reason),
			zap.String("peer", x.s.Peer))
	}
	return x.answer(spec.RCMACError)
}
