package switching

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/cardswitch/cardswitch/switch/recharge"
)

// institutionJSON is an institution in the admin API (no keys).
type institutionJSON struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Allow             []string `json:"allow"`
	MaxCreditFen      int64    `json:"max_credit_fen"`
	MaxDailyCreditFen int64    `json:"max_daily_credit_fen"`
}

type institutionsJSON struct {
	Institutions []institutionJSON `json:"institutions"`
}

type ordersJSON struct {
	Orders []recharge.OrderView `json:"orders"`
	// Next is the after= of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// registerRechargeAdmin installs the recharge part of the admin API
// (docs/admin-api.md, docs/recharge.md).
func (sw *Switch) registerRechargeAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/recharge/institutions", sw.adminInstitutions)
	mux.HandleFunc("GET /api/v1/recharge/institutions/{id}/orders", sw.adminOrders)
	mux.HandleFunc("GET /api/v1/recharge/institutions/{id}/orders/{order}", sw.adminOrder)
	mux.HandleFunc("GET /api/v1/recharge/pending", sw.adminPending)
	mux.HandleFunc("GET /api/v1/cards/{pan}/binding", sw.adminGetBinding)
	mux.HandleFunc("POST /api/v1/cards/{pan}/binding", sw.adminBind)
	mux.HandleFunc("DELETE /api/v1/cards/{pan}/binding", sw.adminUnbind)
}

// bindRequest is the body of POST /api/v1/cards/{pan}/binding.
type bindRequest struct {
	Gateway  string `json:"gateway"`
	BankCard string `json:"bank_card"`
	Account  string `json:"account"`
	Operator string `json:"operator"`
}

func (sw *Switch) bindingError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, recharge.ErrBadBinding):
		writeJSONError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, recharge.ErrNotBound), errors.Is(err, recharge.ErrUnknownCard):
		writeJSONError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, recharge.ErrBound):
		writeJSONError(w, http.StatusConflict, err.Error())
	default:
		sw.adminError(w, r, err)
	}
}

func (sw *Switch) adminGetBinding(w http.ResponseWriter, r *http.Request) {
	v, ok, err := sw.recharge.svc.Binding(r.PathValue("pan"))
	switch {
	case err != nil:
		sw.adminError(w, r, err)
	case !ok:
		writeJSONError(w, http.StatusNotFound, "card is not bound")
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

func (sw *Switch) adminBind(w http.ResponseWriter, r *http.Request) {
	var req bindRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "body: want {gateway, bank_card, account, operator}")
		return
	}
	v, err := sw.recharge.svc.Bind(r.PathValue("pan"), req.Gateway, req.BankCard, req.Account, req.Operator)
	req = bindRequest{}
	if err != nil {
		sw.bindingError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (sw *Switch) adminUnbind(w http.ResponseWriter, r *http.Request) {
	v, err := sw.recharge.svc.Unbind(r.PathValue("pan"), r.URL.Query().Get("operator"))
	if err != nil {
		sw.bindingError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

type pendingJSON struct {
	OlderThanDays int                      `json:"older_than_days"`
	Credits       []recharge.PendingCredit `json:"credits"`
	TotalFen      int64                    `json:"total_fen"`
	Truncated     bool                     `json:"truncated,omitempty"`
}

// adminPending lists unclaimed pending credits older than older_than_days
// (default recharge.pending_refund_days), for refund.
func (sw *Switch) adminPending(w http.ResponseWriter, r *http.Request) {
	days := sw.cfg.Recharge.PendingRefundDays
	if days == 0 {
		days = 30
	}
	if s := r.URL.Query().Get("older_than_days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 3660 {
			writeJSONError(w, http.StatusBadRequest, "older_than_days: want 0..3660")
			return
		}
		days = n
	}
	list, truncated, err := sw.recharge.svc.PendingOlderThan(days)
	if err != nil {
		sw.adminError(w, r, err)
		return
	}
	out := pendingJSON{OlderThanDays: days, Credits: list, Truncated: truncated}
	for _, c := range list {
		out.TotalFen += c.PendingFen
	}
	writeJSON(w, http.StatusOK, out)
}

func (sw *Switch) adminInstitutions(w http.ResponseWriter, r *http.Request) {
	out := institutionsJSON{Institutions: []institutionJSON{}}
	for _, in := range sw.recharge.svc.Institutions() {
		j := institutionJSON{ID: in.ID, Name: in.Name, MaxCreditFen: int64(in.MaxCredit), MaxDailyCreditFen: int64(in.MaxDailyCredit)}
		for _, p := range in.Allow {
			j.Allow = append(j.Allow, p.String())
		}
		out.Institutions = append(out.Institutions, j)
	}
	writeJSON(w, http.StatusOK, out)
}

func (sw *Switch) adminOrders(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := sw.recharge.svc.Institution(id); !ok {
		writeJSONError(w, http.StatusNotFound, "no such institution")
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > recharge.MaxOrdersPage {
			writeJSONError(w, http.StatusBadRequest, "limit: want 1.."+strconv.Itoa(recharge.MaxOrdersPage))
			return
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	if len(after) > recharge.MaxOrderLen {
		writeJSONError(w, http.StatusBadRequest, "after: an order number is at most 32 characters")
		return
	}
	orders, err := sw.recharge.svc.Orders(id, after, limit)
	if err != nil {
		sw.adminError(w, r, err)
		return
	}
	out := ordersJSON{Orders: orders}
	if len(orders) == limit {
		out.Next = orders[len(orders)-1].Order
	}
	writeJSON(w, http.StatusOK, out)
}

func (sw *Switch) adminOrder(w http.ResponseWriter, r *http.Request) {
	v, ok, err := sw.recharge.svc.Order(r.PathValue("id"), r.PathValue("order"))
	switch {
	case err != nil:
		sw.adminError(w, r, err)
	case !ok:
		writeJSONError(w, http.StatusNotFound, "no such order")
	default:
		writeJSON(w, http.StatusOK, v)
	}
}
