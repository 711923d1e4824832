package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/switch/links"
	"go.uber.org/zap"
)

// Gateway links and their store-and-forward queues (docs/admin-api.md,
// docs/gateway-links.md).
func (a *API) registerLinks(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/gateways", a.gateways)
	mux.HandleFunc("POST /api/v1/gateways/{name}/zmk", a.loadZMK)
	mux.HandleFunc("GET /api/v1/saf", a.safList)
	mux.HandleFunc("POST /api/v1/saf/{id}/retry", a.safAction(true))
	mux.HandleFunc("POST /api/v1/saf/{id}/drop", a.safAction(false))
}

func (a *API) gateways(w http.ResponseWriter, r *http.Request) {
	st, err := a.cfg.Links.Status()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, GatewaysResponse{Gateways: st})
}

func (a *API) loadZMK(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Components []string `json:"components"`
	}
	if err := decodeBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if _, ok := a.cfg.Links.Link(name); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no gateway named %q", name))
		return
	}
	comps, err := decodeComponents(req.Components)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer clearComponents(comps)
	kcv, err := a.cfg.Keys.ImportZMK(name, comps...)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	k := fmt.Sprintf("%X", kcv[:3])
	a.log.Info("gateway ZMK loaded; the link exchanges keys at its next sign-on", zap.String("link", name), zap.String("zmk_kcv", k))
	writeJSON(w, http.StatusOK, ZMKResponse{Gateway: name, ZMKCheck: k})
}

// maxSAFAnswer bounds one page of GET /api/v1/saf.
const maxSAFAnswer = journal.DefaultMaxPeek

// safList lists queued (or, with dead=true, dead-lettered) reversals of
// one gateway (gateway=) or of all: ?gateway=&dead=&limit=&after=.
func (a *API) safList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := maxSAFAnswer
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxSAFAnswer {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1..%d", maxSAFAnswer))
			return
		}
		limit = n
	}
	var after uint64
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "after: want an entry id")
			return
		}
		after = n
	}
	dead := q.Get("dead") == "true"
	names := a.cfg.Links.Names()
	if g := q.Get("gateway"); g != "" {
		if _, ok := a.cfg.Links.Link(g); !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no gateway named %q", g))
			return
		}
		names = []string{g}
	}
	ans := SAFPage{Entries: []links.SAFEntry{}}
	for _, n := range names {
		es, err := a.cfg.Links.SAFList(n, dead, maxSAFAnswer)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
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

// safAction retries (requeues) or drops a dead letter: ?gateway= names
// its link when more than one is configured.
func (a *API) safAction(retry bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "id: want a dead letter's id")
			return
		}
		names := a.cfg.Links.Names()
		if g := r.URL.Query().Get("gateway"); g != "" {
			names = []string{g}
		}
		for _, n := range names {
			ans := SAFActionResponse{Gateway: n, ID: id, Action: "drop"}
			if retry {
				ans.Action = "retry"
				ans.NewID, err = a.cfg.Links.SAFRetry(n, id)
			} else {
				err = a.cfg.Links.SAFDrop(n, id)
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
				writeError(w, status, err.Error())
				return
			}
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no dead letter %d", id))
	}
}
