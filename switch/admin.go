package switching

import (
	"net/http"
)

// registerAdmin installs the admin API (under /api/, behind the bearer
// token). Every endpoint answers JSON; card numbers are masked and no key,
// PIN block or track data is ever returned.
func (sw *Switch) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		pos, gw, httpAddr := sw.Addrs()
		writeJSON(w, http.StatusOK, map[string]any{
			"pos":     pos,
			"gateway": gw,
			"http":    httpAddr,
			"ready":   sw.ready() == nil,
		})
	})
}
