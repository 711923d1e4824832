package pos

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

// SignOnLimits bounds failed sign-ons: per terminal id and per source
// IP address, counted over Window; beyond either limit, sign-ons are
// answered A0 without being checked until the window ends.
type SignOnLimits struct {
	MaxFailuresPerTerminal int
	MaxFailuresPerAddress  int
	Window                 time.Duration
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

// SignOnRejectReasons are the label values of
// switch_signon_rejected_total.
var SignOnRejectReasons = []string{signOnMissingProof, signOnBadProof, signOnReplay, signOnRateLimited, signOnNotLegacyNet, signOffMAC}

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

func newSignOnGuard(c SignOnLimits) *signOnGuard {
	return &signOnGuard{
		byTerminal: newFailureLimiter(c.MaxFailuresPerTerminal, c.Window),
		byAddress:  newFailureLimiter(c.MaxFailuresPerAddress, c.Window),
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
func (p *Protocol) authenticateSignOn(x *exchange, t *terminals.Terminal) (stamp, reason string) {
	now := time.Now()
	addr := peerAddr(x.s.Peer)
	addrKey := addr.String()
	if p.signOnGuard.byTerminal.blocked(t.ID, now) || p.signOnGuard.byAddress.blocked(addrKey, now) {
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
	full, ok := fullStamp(short, p.clock.LocalNow())
	if !ok {
		return "", signOnBadProof
	}
	good, err := p.hsm.VerifySignOnProof(t.ID, short, x.req.Reserved62)
	if err != nil {
		p.log.Warn("sign-on proof not verifiable", zap.String("terminal", t.ID), zap.Error(err))
		return "", signOnBadProof
	}
	if !good {
		return "", signOnBadProof
	}
	return full, ""
}

// refuseSignOn answers A0, counts the refusal and its failure.
func (p *Protocol) refuseSignOn(x *exchange, t *terminals.Terminal, reason string) *spec.POSMessage {
	p.metrics.SignOnRejected.WithLabelValues(reason).Inc()
	if reason != signOnRateLimited {
		now := time.Now()
		p.signOnGuard.byTerminal.fail(t.ID, now)
		p.signOnGuard.byAddress.fail(peerAddr(x.s.Peer).String(), now)
		p.log.Warn("sign-on refused", zap.String("terminal", t.ID), zap.String("reason", reason),
			zap.String("peer", x.s.Peer))
	}
	return x.answer(spec.RCMACError)
}
