package switching

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/switch/links"
)

// Admin API of gateway links and their store-and-forward queues
// (docs/admin-api.md, docs/gateway-links.md).
func (sw *Switch) registerLinksAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/gateways", sw.adminGateways)
	mux.HandleFunc("POST /api/v1/gateways/{name}/zmk", sw.adminLoadZMK)
	mux.HandleFunc("GET /api/v1/saf", sw.adminSAFList)
	mux.HandleFunc("POST /api/v1/saf/{id}/retry", sw.adminSAFAction(true))
	mux.HandleFunc("POST /api/v1/saf/{id}/drop", sw.adminSAFAction(false))
}

// gatewaysAnswer is GET /api/v1/gateways.
type gatewaysAnswer struct {
	Gateways []links.LinkStatus `json:"gateways"`
}

func (sw *Switch) adminGateways(w http.ResponseWriter, r *http.Request) {
	st, err := sw.links.Status()
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, gatewaysAnswer{Gateways: st})
}

// zmkAnswer is POST /api/v1/gateways/{name}/zmk.
type zmkAnswer struct {
	Gateway  string `json:"gateway"`
	ZMKCheck string `json:"zmk_kcv"`
}

func (sw *Switch) adminLoadZMK(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Components []string `json:"components"`
	}
	if err := decodeBody(r, &req); err != nil {
		sw.adminError(w, r, err)
		return
	}
	if _, ok := sw.links.Link(name); !ok {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no gateway named %q", name))
		return
	}
	comps, err := decodeComponents(req.Components)
	if err != nil {
		sw.adminError(w, r, err)
		return
	}
	defer func() {
		for _, c := range comps {
			clearBytes(c)
		}
	}()
	kcv, err := sw.hsm.ImportZMK(name, comps...)
	if err != nil {
		sw.adminError(w, r, err)
		return
	}
	k := fmt.Sprintf("%X", kcv[:3])
	sw.log.Info("gateway ZMK loaded; the link exchanges keys at its next sign-on", zap.String("link", name), zap.String("zmk_kcv", k))
	writeJSON(w, http.StatusOK, zmkAnswer{Gateway: name, ZMKCheck: k})
}

// safAnswer is GET /api/v1/saf: entries oldest first; Next is the id to
// pass as after= for the next page ("" at the end).
type safAnswer struct {
	Entries []links.SAFEntry `json:"entries"`
	Next    string           `json:"next,omitempty"`
}

// maxSAFAnswer bounds one page of GET /api/v1/saf.
const maxSAFAnswer = journal.DefaultMaxPeek

// adminSAFList lists queued (or, with dead=true, dead-lettered) reversals
// of one gateway (gateway=) or of all: ?gateway=&dead=&limit=&after=.
func (sw *Switch) adminSAFList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := maxSAFAnswer
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxSAFAnswer {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1..%d", maxSAFAnswer))
			return
		}
		limit = n
	}
	var after uint64
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "after: want an entry id")
			return
		}
		after = n
	}
	dead := q.Get("dead") == "true"
	names := sw.links.Names()
	if g := q.Get("gateway"); g != "" {
		if _, ok := sw.links.Link(g); !ok {
			writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no gateway named %q", g))
			return
		}
		names = []string{g}
	}
	ans := safAnswer{Entries: []links.SAFEntry{}}
	for _, n := range names {
		es, err := sw.links.SAFList(n, dead, maxSAFAnswer)
		if err != nil {
			writeJSONError(w, http.StatusInternalServerError, err.Error())
			return
		}
		for _, e := range es {
			if e.ID <= after {
				continue
			}
			if len(ans.Entries) == limit {
				ans.Next = strconv.FormatUint(ans.Entries[limit-1].ID, 10)
				break
			}
			ans.Entries = append(ans.Entries, e)
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

// safActionAnswer is POST /api/v1/saf/{id}/retry|drop.
type safActionAnswer struct {
	Gateway string `json:"gateway"`
	ID      uint64 `json:"id"`
	Action  string `json:"action"`
	NewID   uint64 `json:"new_id,omitempty"`
}

// adminSAFAction retries (requeues) or drops a dead letter: ?gateway=
// names its link when more than one is configured.
func (sw *Switch) adminSAFAction(retry bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "id: want a dead letter's id")
			return
		}
		names := sw.links.Names()
		if g := r.URL.Query().Get("gateway"); g != "" {
			names = []string{g}
		}
		for _, n := range names {
			ans := safActionAnswer{Gateway: n, ID: id, Action: "drop"}
			if retry {
				ans.Action = "retry"
				ans.NewID, err = sw.links.SAFRetry(n, id)
			} else {
				err = sw.links.SAFDrop(n, id)
			}
			if err == nil {
				writeJSON(w, http.StatusOK, ans)
				return
			}
			if !errors.Is(err, journal.ErrNotFound) {
				status := http.StatusInternalServerError
				if errors.Is(err, links.ErrUnknownLink) {
					status = http.StatusNotFound
				}
				writeJSONError(w, status, err.Error())
				return
			}
		}
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no dead letter %d", id))
	}
}
