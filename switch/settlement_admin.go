package switching

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
)

// registerSettlement installs the settlement and report routes
// (docs/reconciliation.md "Settlement", "Reports").
func (sw *Switch) registerSettlement(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/settlement", sw.adminSettlement)
	mux.HandleFunc("GET /api/v1/settlement/rates", sw.adminRates)
	mux.HandleFunc("POST /api/v1/settlement/rates", sw.adminSetRates)
	mux.HandleFunc("GET /api/v1/settlement/refunds", sw.adminRefunds)
	mux.HandleFunc("GET /api/v1/recon/statistics", sw.adminStatistics)
}

// maxSettlementDays bounds one settlement period.
const maxSettlementDays = 366

// period reads ?from= and ?to= (to defaults to from).
func period(r *http.Request) (from, to ledger.BusinessDate, err error) {
	q := r.URL.Query()
	if from, err = parseDate(q.Get("from")); err != nil {
		return 0, 0, errors.New("from: " + err.Error())
	}
	to = from
	if v := q.Get("to"); v != "" {
		if to, err = parseDate(v); err != nil {
			return 0, 0, errors.New("to: " + err.Error())
		}
	}
	if to < from || from.AddDays(maxSettlementDays) < to {
		return 0, 0, errors.New("period: to must be from..from+366 days")
	}
	return from, to, nil
}

// pageArgs reads ?limit= (1..1000, default 100) and ?after=.
func pageArgs(r *http.Request) (limit int, after string, err error) {
	limit = 100
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return 0, "", errors.New("limit: want 1..1000")
		}
	}
	return limit, r.URL.Query().Get("after"), nil
}

func (sw *Switch) adminSettlement(w http.ResponseWriter, r *http.Request) {
	from, to, err := period(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := sw.recon.Settle(from, to, r.URL.Query().Get("merchant"))
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if r.URL.Query().Get("format") == "csv" {
		// The CSV is the whole settlement: a file for the finance office.
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		b := []byte(recon.SettlementCSVHeader + "\n")
		for i := range st.Merchants {
			b = st.Merchants[i].AppendCSV(b)
		}
		b = st.Total.AppendCSV(b)
		_, _ = w.Write(b)
		return
	}
	limit, after, err := pageArgs(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if st.Merchants == nil {
		st.Merchants = []recon.MerchantSettlement{}
	}
	st.Page(after, limit)
	writeJSON(w, http.StatusOK, st)
}

// RatesList answers GET /api/v1/settlement/rates.
type RatesList struct {
	Rates []recon.Rates `json:"rates"`
}

func (sw *Switch) adminRates(w http.ResponseWriter, r *http.Request) {
	list, err := sw.recon.RateHistory(r.URL.Query().Get("merchant"))
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if list == nil {
		list = []recon.Rates{}
	}
	writeJSON(w, http.StatusOK, RatesList{Rates: list})
}

// SetRatesRequest is the body of POST /api/v1/settlement/rates.
type SetRatesRequest struct {
	Merchant     string `json:"merchant"`
	From         string `json:"from"`
	FeeBP        int32  `json:"fee_bp"`
	ManagementBP int32  `json:"management_bp"`
	Operator     string `json:"operator"`
}

func (sw *Switch) adminSetRates(w http.ResponseWriter, r *http.Request) {
	var req SetRatesRequest
	if err := decodeBody(r, &req); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Operator) > 64 {
		writeJSONError(w, http.StatusBadRequest, "operator: at most 64 characters")
		return
	}
	rates := recon.Rates{Merchant: req.Merchant, From: req.From, FeeBP: req.FeeBP, ManagementBP: req.ManagementBP, SetBy: req.Operator}
	if err := sw.recon.SetRates(rates); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	sw.adminRates(w, r)
}

// RefundPage is one page of the refund list.
type RefundPage struct {
	Refunds []recon.RefundItem `json:"refunds"`
	Total   ledger.Fen         `json:"total"`
	// Next is the after= of the next page ("" on the last).
	Next string `json:"next,omitempty"`
}

func (sw *Switch) adminRefunds(w http.ResponseWriter, r *http.Request) {
	from, to, err := period(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, after, err := pageArgs(r)
	start := 0
	if err == nil && after != "" {
		if start, err = strconv.Atoi(after); err != nil || start < 0 {
			err = errors.New("after: the next of the previous page")
		}
	}
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	all, err := sw.recon.RefundList(from, to)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	page := RefundPage{Refunds: []recon.RefundItem{}}
	for i, it := range all {
		page.Total += it.Amount
		if i >= start && len(page.Refunds) < limit {
			it.Card = cardno.Mask(it.Card)
			page.Refunds = append(page.Refunds, it)
		}
	}
	if end := start + len(page.Refunds); end < len(all) {
		page.Next = strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, page)
}

func (sw *Switch) adminStatistics(w http.ResponseWriter, r *http.Request) {
	d, err := parseDate(r.URL.Query().Get("date"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	src := sw.recon.Source
	src.Context = r.Context()
	st, err := src.DayStatistics(d)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}
