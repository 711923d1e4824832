package admin

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cardswitch/cardswitch/internal/logmask"
	"go.uber.org/zap"
)

// Bounds of the admin API's defences against token guessing and log
// flooding (docs/security.md "Admin API").
const (
	// FailuresPerAddr bad-token requests an address may make in one
	// adminFailWindow; after that every request from it is answered 429,
	// without checking the token or logging, until the window ends.
	FailuresPerAddr = 10
	adminFailWindow = time.Minute
	// adminFailAddrs bounds the addresses tracked; when every entry is in
	// a live window, failures from new addresses share one overflow entry.
	adminFailAddrs = 4096
	// WarnsPerWindow bad-token warnings may be logged per
	// adminFailWindow, whatever the number of addresses; the rest are
	// counted, and the next warning says how many were not logged.
	WarnsPerWindow = 10
	// maxLoggedPath bounds the request path in a log line.
	maxLoggedPath = 48
	// maxProfileSeconds bounds a CPU profile or trace requested through
	// /api/debug/pprof (the HTTP write timeout bounds it too).
	maxProfileSeconds = 60
)

type failWindow struct {
	start time.Time
	n     int
}

// guard counts failed admin authentications per address and bounds the
// warnings about them.
type guard struct {
	mu         sync.Mutex
	addrs      map[netip.Addr]*failWindow
	overflow   failWindow
	warnStart  time.Time
	warns      int
	suppressed int
}

func newGuard() *guard { return &guard{addrs: make(map[netip.Addr]*failWindow)} }

// window returns ip's failure window, current at now. Called with mu held.
func (g *guard) window(ip netip.Addr, now time.Time, create bool) *failWindow {
	w := g.addrs[ip]
	if w == nil {
		if !create {
			return nil
		}
		if len(g.addrs) >= adminFailAddrs {
			for k, v := range g.addrs {
				if now.Sub(v.start) >= adminFailWindow {
					delete(g.addrs, k)
				}
			}
		}
		if len(g.addrs) >= adminFailAddrs {
			w = &g.overflow
		} else {
			w = &failWindow{}
			g.addrs[ip] = w
		}
	}
	if now.Sub(w.start) >= adminFailWindow {
		w.start, w.n = now, 0
	}
	return w
}

// blocked reports whether ip has used up its failures in this window.
func (g *guard) blocked(ip netip.Addr, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.window(ip, now, false)
	if w == nil && len(g.addrs) >= adminFailAddrs {
		w = &g.overflow
		if now.Sub(w.start) >= adminFailWindow {
			w.start, w.n = now, 0
		}
	}
	return w != nil && w.n >= FailuresPerAddr
}

// fail counts a failure of ip and says whether a warning may be logged,
// and how many were not logged since the last one.
func (g *guard) fail(ip netip.Addr, now time.Time) (warn bool, suppressed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.window(ip, now, true).n++
	if now.Sub(g.warnStart) >= adminFailWindow {
		g.warnStart, g.warns = now, 0
	}
	if g.warns >= WarnsPerWindow {
		g.suppressed++
		return false, 0
	}
	g.warns++
	suppressed, g.suppressed = g.suppressed, 0
	return true, suppressed
}

// remoteIP is the address of an HTTP client, IPv4-mapped addresses
// unmapped.
func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

// logPath is a request path fit for a log line: at most maxLoggedPath
// bytes of it, control characters and invalid UTF-8 shown as '?', card
// numbers masked, and how long it really was when cut.
func logPath(path string) string {
	cut := len(path) > maxLoggedPath
	// Masked whole before it is cut, so a cut cannot leave more of a card
	// number than the mask shows.
	p := logmask.String(path)
	if cut {
		p = p[:maxLoggedPath]
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRuneInString(p[i:])
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			b.WriteByte('?')
		} else {
			b.WriteString(p[i : i+size])
		}
		i += size
	}
	out := b.String()
	if cut {
		out += "...(" + strconv.Itoa(len(path)) + " bytes)"
	}
	return out
}

// authFailed answers and accounts a request without the right token.
func (a *API) authFailed(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	a.cfg.Rejected.WithLabelValues("http", "bad_token").Inc()
	if warn, suppressed := a.guard.fail(remoteIP(r), now); warn {
		// Kept short: with the longest address and a cut path the line
		// stays under 300 bytes (docs/security.md).
		a.log.Warn("admin API: bad token", zap.String("remote", remoteIP(r).String()),
			zap.String("method", logPath(r.Method)), zap.String("path", logPath(r.URL.Path)),
			zap.Int("unlogged", suppressed))
	}
	writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
}

// authBlocked refuses, unlogged, a request from an address over its
// failures.
func (a *API) authBlocked(w http.ResponseWriter, r *http.Request) bool {
	if !a.guard.blocked(remoteIP(r), time.Now()) {
		return false
	}
	a.cfg.Rejected.WithLabelValues("http", "auth_rate_limited").Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int(adminFailWindow/time.Second)))
	writeError(w, http.StatusTooManyRequests, "too many failed authentications from this address; try again later")
	return true
}

// boundedProfile refuses a profile or trace longer than maxProfileSeconds.
func boundedProfile(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("seconds"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxProfileSeconds {
				writeError(w, http.StatusBadRequest, "seconds must be 1.."+strconv.Itoa(maxProfileSeconds))
				return
			}
		}
		next(w, r)
	}
}
