package switching

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/switch/console"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxAdminBody bounds an admin API request body.
const maxAdminBody = 64 << 10

// ownBodyBound are the admin routes whose body is an uploaded file that
// the handler bounds itself (recon import: maxImportFile); the admin
// bound would cut any real day's file.
var ownBodyBound = map[string]bool{"/api/v1/recon/import": true}

// httpHandler serves metrics, health, readiness and the admin API.
func (sw *Switch) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(sw.metrics.Registry, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := sw.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	admin := http.NewServeMux()
	sw.registerAdmin(admin)
	mux.Handle("/api/", sw.requireToken(admin))
	// The operator console: static files only; its data comes from the
	// admin API with the same token (switch/console).
	mux.Handle("GET /console", console.Handler())
	mux.Handle("GET /console/", console.Handler())
	return mux
}

// requireToken guards the admin API with the configured bearer token. No
// token configured means no admin access at all, never open access.
func (sw *Switch) requireToken(next http.Handler) http.Handler {
	want := []byte(sw.cfg.HTTP.adminToken())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if len(want) == 0 {
			writeJSONError(w, http.StatusForbidden, "admin API disabled: no admin token configured")
			return
		}
		if sw.authBlocked(w, r) {
			return
		}
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			sw.authFailed(w, r) // adminguard.go: bounded, rate-limited
			return
		}
		if !ownBodyBound[r.URL.Path] {
			r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}
