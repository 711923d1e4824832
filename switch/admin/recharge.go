package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/cardswitch/cardswitch/switch/recharge"
	"go.uber.org/zap"
)

// Recharge: outside institutions, their orders, card bindings and pending
// credits (docs/admin-api.md, docs/recharge.md).
func (a *API) registerRecharge(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/recharge/institutions", a.institutions)
	mux.HandleFunc("GET /api/v1/recharge/institutions/{id}/orders", a.orders)
	mux.HandleFunc("GET /api/v1/recharge/institutions/{id}/orders/{order}", a.order)
	mux.HandleFunc("GET /api/v1/recharge/pending", a.pending)
	mux.HandleFunc("GET /api/v1/cards/{pan}/binding", a.getBinding)
	mux.HandleFunc("POST /api/v1/cards/{pan}/binding", a.bind)
	mux.HandleFunc("DELETE /api/v1/cards/{pan}/binding", a.unbind)
	mux.HandleFunc("DELETE /api/v1/gateways/{name}/bindings", a.unbindGateway)
}

func (a *API) bindingError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, recharge.ErrBadBinding):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, recharge.ErrNotBound), errors.Is(err, recharge.ErrUnknownCard):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, recharge.ErrBound):
		writeError(w, http.StatusConflict, err.Error())
	default:
		a.fail(w, r, err)
	}
}

func (a *API) getBinding(w http.ResponseWriter, r *http.Request) {
	v, ok, err := a.cfg.Recharge.Binding(r.PathValue("pan"))
	switch {
	case err != nil:
		a.fail(w, r, err)
	case !ok:
		writeError(w, http.StatusNotFound, "card is not bound")
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

func (a *API) bind(w http.ResponseWriter, r *http.Request) {
	var req BindRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body: want {gateway, bank_card, account, operator}")
		return
	}
	v, err := a.cfg.Recharge.Bind(r.PathValue("pan"), req.Gateway, req.BankCard, req.Account, req.Operator)
	req = BindRequest{}
	if err != nil {
		a.bindingError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) unbind(w http.ResponseWriter, r *http.Request) {
	v, err := a.cfg.Recharge.Unbind(r.PathValue("pan"), r.URL.Query().Get("operator"))
	if err != nil {
		a.bindingError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// unbindGateway removes the bindings of the cards bound to a gateway,
// at most recharge.MaxUnbindGateway a call (more: call again).
func (a *API) unbindGateway(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n, more, err := a.cfg.Recharge.UnbindGateway(name, r.URL.Query().Get("operator"), recharge.MaxUnbindGateway)
	if err != nil && n > 0 {
		// Batches committed before the error stay unbound: the answer
		// says how many, and calling again carries on with the rest.
		a.log.Error("gateway unbind failed part way", zap.String("gateway", name), zap.Int("unbound", n), zap.Error(err))
		writeJSON(w, http.StatusInternalServerError, UnbindGatewayError{Error: err.Error(), Gateway: name, Unbound: n})
		return
	}
	if err != nil {
		a.bindingError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, UnbindGatewayResponse{Gateway: name, Unbound: n, More: more})
}

// pending lists unclaimed pending credits older than older_than_days
// (default recharge.pending_refund_days), for refund.
func (a *API) pending(w http.ResponseWriter, r *http.Request) {
	days := a.cfg.PendingRefundDays
	if days == 0 {
		days = 30
	}
	if s := r.URL.Query().Get("older_than_days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 3660 {
			writeError(w, http.StatusBadRequest, "older_than_days: want 0..3660")
			return
		}
		days = n
	}
	list, truncated, err := a.cfg.Recharge.PendingOlderThan(days)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := PendingResponse{OlderThanDays: days, Credits: list, Truncated: truncated}
	for _, c := range list {
		out.TotalFen += c.PendingFen
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) institutions(w http.ResponseWriter, r *http.Request) {
	out := InstitutionsResponse{Institutions: []InstitutionResponse{}}
	for _, in := range a.cfg.Recharge.Institutions() {
		j := InstitutionResponse{ID: in.ID, Name: in.Name, MaxCreditFen: int64(in.MaxCredit), MaxDailyCreditFen: int64(in.MaxDailyCredit)}
		for _, p := range in.Allow {
			j.Allow = append(j.Allow, p.String())
		}
		out.Institutions = append(out.Institutions, j)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) orders(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := a.cfg.Recharge.Institution(id); !ok {
		writeError(w, http.StatusNotFound, "no such institution")
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > recharge.MaxOrdersPage {
			writeError(w, http.StatusBadRequest, "limit: want 1.."+strconv.Itoa(recharge.MaxOrdersPage))
			return
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	if len(after) > recharge.MaxOrderLen {
		writeError(w, http.StatusBadRequest, "after: an order number is at most 32 characters")
		return
	}
	orders, err := a.cfg.Recharge.Orders(id, after, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := OrdersPage{Orders: orders}
	if len(orders) == limit {
		out.Next = orders[len(orders)-1].Order
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) order(w http.ResponseWriter, r *http.Request) {
	v, ok, err := a.cfg.Recharge.Order(r.PathValue("id"), r.PathValue("order"))
	switch {
	case err != nil:
		a.fail(w, r, err)
	case !ok:
		writeError(w, http.StatusNotFound, "no such order")
	default:
		writeJSON(w, http.StatusOK, v)
	}
}
