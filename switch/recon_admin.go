package switching

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
)

// registerRecon installs the business day, reconciliation and settlement
// routes of the admin API (docs/reconciliation.md).
func (sw *Switch) registerRecon(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/day", sw.adminDayStatus)
	mux.HandleFunc("POST /api/v1/day/close", sw.adminDayClose)
	mux.HandleFunc("GET /api/v1/recon/export", sw.adminReconExport)
	sw.registerReconImport(mux)
	sw.registerSettlement(mux)
}

// maxDaysListed bounds `day status`.
const maxDaysListed = 366

func (sw *Switch) adminDayStatus(w http.ResponseWriter, r *http.Request) {
	n := 7
	if v := r.URL.Query().Get("days"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 || k > maxDaysListed {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("days %q: want 1..%d", v, maxDaysListed))
			return
		}
		n = k
	}
	st, err := sw.days.status(n)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// DayCloseRequest is the body of POST /api/v1/day/close: the date to
// close (default: the current business day) and who closes it.
type DayCloseRequest struct {
	Date     string `json:"date"`
	Operator string `json:"operator"`
}

func (sw *Switch) adminDayClose(w http.ResponseWriter, r *http.Request) {
	var req DayCloseRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	d := sw.clock.Today()
	if req.Date != "" {
		var err error
		if d, err = parseDate(req.Date); err != nil {
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if len(req.Operator) > 64 {
		writeJSONError(w, http.StatusBadRequest, "operator: at most 64 characters")
		return
	}
	by := "operator"
	if req.Operator != "" {
		by = "operator " + req.Operator
	}
	rec, err := sw.days.close(d, by)
	switch {
	case errors.Is(err, errDayNotOpen), errors.Is(err, ledger.ErrBadDate):
		writeJSONError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeJSONError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

// exportWriteTimeout bounds one streamed export over the admin API.
const exportWriteTimeout = 10 * time.Minute

// adminReconExport streams one day's export as CSV: every row, or one
// gateway's (?gateway=) or one merchant's (?merchant=).
func (sw *Switch) adminReconExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := parseDate(q.Get("date"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := recon.Filter{Institution: q.Get("gateway"), Merchant: q.Get("merchant")}
	if f.Institution != "" && f.Merchant != "" {
		writeJSONError(w, http.StatusBadRequest, "give gateway or merchant, not both")
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	src := sw.recon.Source
	src.Context = r.Context()
	if _, err := src.WriteCSV(w, d, f, nil); err != nil {
		// Headers are gone; the truncated body lacks its trailer line,
		// which is how a reader tells.
		sw.log.Warn("export over the admin API failed")
	}
}
