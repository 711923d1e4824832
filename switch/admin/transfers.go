package admin

import (
	"net/http"
	"strconv"

	"github.com/cardswitch/cardswitch/switch/transfer"
)

// Transfers is the bank-transfer loads at kiosks (docs/recharge.md).
type Transfers interface {
	List(transfer.Filter) ([]transfer.View, string, error)
}

// TransfersPage is a page of transfer loads; Next is the after of the
// next page ("" at the end).
type TransfersPage struct {
	Transfers []transfer.View `json:"transfers"`
	Next      string          `json:"next"`
}

func (a *API) registerTransfers(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/transfers", a.transfers)
}

// transfers lists transfer loads whose bank leg went out, filtered by
// card, business date and terminal, a page at a time.
func (a *API) transfers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := transfer.Filter{Card: q.Get("card"), BusinessDate: q.Get("date"), Terminal: q.Get("terminal"),
		After: q.Get("after"), Limit: 100}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > transfer.MaxList {
			writeError(w, http.StatusBadRequest, "limit: want 1.."+strconv.Itoa(transfer.MaxList))
			return
		}
		f.Limit = n
	}
	switch {
	case len(f.Card) > 19, len(f.Terminal) > 8, len(f.After) > 40:
		writeError(w, http.StatusBadRequest, "card, terminal or after too long")
		return
	case f.BusinessDate != "" && (len(f.BusinessDate) != 8 || !allDigits(f.BusinessDate)):
		writeError(w, http.StatusBadRequest, "date: want YYYYMMDD")
		return
	}
	list, next, err := a.cfg.Transfers.List(f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if list == nil {
		list = []transfer.View{}
	}
	writeJSON(w, http.StatusOK, TransfersPage{Transfers: list, Next: next})
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
