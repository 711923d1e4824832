package switching

import (
	"net/http"
	"time"

	"github.com/cardswitch/cardswitch/switch/console"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpHandler serves metrics, health, readiness, the admin API
// (switch/admin, behind its token) and the console.
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
	mux.Handle("/api/", sw.adminAPI())
	// The operator console: static files only; its data comes from the
	// admin API with the same token (switch/console).
	mux.Handle("GET /console", console.Handler())
	mux.Handle("GET /console/", console.Handler())
	return mux
}
