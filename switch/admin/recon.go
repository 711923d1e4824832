package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"go.uber.org/zap"
)

// The business day, reconciliation and settlement (docs/reconciliation.md).
func (a *API) registerRecon(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/day", a.dayStatus)
	mux.HandleFunc("POST /api/v1/day/close", a.dayClose)
	mux.HandleFunc("GET /api/v1/recon/export", a.reconExport)
	mux.HandleFunc("POST /api/v1/recon/import", a.reconImport)
	mux.HandleFunc("GET /api/v1/recon/report", a.reconReport)
	mux.HandleFunc("GET /api/v1/recon/discrepancies", a.reconDiscrepancies)
	mux.HandleFunc("GET /api/v1/recon/discrepancies/{id}", a.reconDiscrepancy)
	mux.HandleFunc("POST /api/v1/recon/discrepancies/{id}/resolve", a.reconResolve)
	mux.HandleFunc("GET /api/v1/settlement", a.settlement)
	mux.HandleFunc("GET /api/v1/settlement/rates", a.rates)
	mux.HandleFunc("POST /api/v1/settlement/rates", a.setRates)
	mux.HandleFunc("GET /api/v1/settlement/refunds", a.refunds)
	mux.HandleFunc("GET /api/v1/recon/statistics", a.statistics)
}

// parseDate reads YYYYMMDD or YYYY-MM-DD.
func parseDate(s string) (ledger.BusinessDate, error) {
	s = strings.ReplaceAll(s, "-", "")
	var d uint32
	if len(s) != 8 {
		return 0, fmt.Errorf("date %q: want YYYYMMDD", s)
	}
	if _, err := fmt.Sscanf(s, "%08d", &d); err != nil || !ledger.BusinessDate(d).Valid() {
		return 0, fmt.Errorf("date %q: want YYYYMMDD", s)
	}
	return ledger.BusinessDate(d), nil
}

// maxDaysListed bounds `day status`.
const maxDaysListed = 366

func (a *API) dayStatus(w http.ResponseWriter, r *http.Request) {
	n := 7
	if v := r.URL.Query().Get("days"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 || k > maxDaysListed {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("days %q: want 1..%d", v, maxDaysListed))
			return
		}
		n = k
	}
	st, err := a.cfg.Day.DayStatus(n)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// ErrDayNotOpen: closing a day that has not begun (400).
var ErrDayNotOpen = errors.New("business day has not begun")

func (a *API) dayClose(w http.ResponseWriter, r *http.Request) {
	var req DayCloseRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	d := a.cfg.Day.Today()
	if req.Date != "" {
		var err error
		if d, err = parseDate(req.Date); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if len(req.Operator) > 64 {
		writeError(w, http.StatusBadRequest, "operator: at most 64 characters")
		return
	}
	by := "operator"
	if req.Operator != "" {
		by = "operator " + req.Operator
	}
	rec, err := a.cfg.Day.CloseDay(d, by)
	switch {
	case errors.Is(err, ErrDayNotOpen), errors.Is(err, ledger.ErrBadDate):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

// exportWriteTimeout bounds one streamed export or import over the API.
const exportWriteTimeout = 10 * time.Minute

// reconExport streams one day's export as CSV: every row, or one
// gateway's (?gateway=) or one merchant's (?merchant=).
func (a *API) reconExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := parseDate(q.Get("date"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := recon.Filter{Institution: q.Get("gateway"), Merchant: q.Get("merchant")}
	if f.Institution != "" && f.Merchant != "" {
		writeError(w, http.StatusBadRequest, "give gateway or merchant, not both")
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	if err := a.cfg.Recon.Export(r.Context(), w, d, f); err != nil {
		// Headers are gone; the truncated body lacks its trailer line,
		// which is how a reader tells.
		a.log.Warn("export over the admin API failed")
	}
}

// maxImportFile bounds an uploaded counterparty file.
const maxImportFile = 2 << 30

// reconImport matches the uploaded file (the body) of ?gateway= for
// ?date= and answers the report.
func (a *API) reconImport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	gw := q.Get("gateway")
	if !a.cfg.Recon.HasLayout(gw) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("gateway %q has no layout in recon.gateways", gw))
		return
	}
	d, err := parseDate(q.Get("date"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	_ = rc.SetReadDeadline(time.Now().Add(exportWriteTimeout))
	body := http.MaxBytesReader(w, r.Body, maxImportFile)
	rep, err := a.cfg.Recon.Import(r.Context(), gw, d, body)
	switch {
	case errors.Is(err, recon.ErrBusy):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, recon.ErrLayout), errors.Is(err, recon.ErrTooManyDiscrep):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		a.log.Info("recon import", zap.String("gateway", gw), zap.String("business_date", d.String()),
			zap.Int64("matched", rep.Matched.Count), zap.Int("discrepancies", len(rep.Discrepancies)))
		writeJSON(w, http.StatusOK, rep)
	}
}

// reconReport answers the stored report of the last import, as JSON or
// (?format=csv) as CSV: class,count,amount_fen.
func (a *API) reconReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := parseDate(q.Get("date"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rep, ok, err := a.cfg.Recon.ImportReport(q.Get("gateway"), d)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "no import of that gateway and day")
		return
	}
	if q.Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		fmt.Fprintln(w, "class,count,amount_fen")
		for _, c := range []struct {
			n string
			t recon.ClassTotals
		}{{recon.Matched, rep.Matched}, {recon.OursOnly, rep.OursOnly}, {recon.TheirsOnly, rep.TheirsOnly},
			{recon.AmountDiffers, rep.AmountDiffers}, {recon.StatusDiffers, rep.StatusDiffers}} {
			fmt.Fprintf(w, "%s,%d,%d\n", c.n, c.t.Count, int64(c.t.Amount))
		}
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (a *API) reconDiscrepancies(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, after := 100, uint64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: want 1..1000")
			return
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "after: want a discrepancy id")
			return
		}
		after = n
	}
	f := recon.DiscrepancyFilter{Gateway: q.Get("gateway"), Date: q.Get("date"), Class: q.Get("class"), State: q.Get("state")}
	list, more, err := a.cfg.Recon.Discrepancies(f, after, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	page := DiscrepancyPage{Discrepancies: make([]recon.Discrepancy, 0, len(list))}
	for _, d := range list {
		page.Discrepancies = append(page.Discrepancies, d.Masked())
	}
	if more && len(list) > 0 {
		page.Next = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *API) reconDiscrepancy(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "discrepancy id")
		return
	}
	d, err := a.cfg.Recon.Get(id)
	if errors.Is(err, recon.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	} else if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, d.Masked())
}

func (a *API) reconResolve(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "discrepancy id")
		return
	}
	var req ResolveRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := a.cfg.Recon.Resolve(id, req.Action, req.Operator)
	switch {
	case errors.Is(err, recon.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, recon.ErrResolved):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		a.log.Info("discrepancy resolved", zap.Uint64("id", id), zap.String("action", req.Action), zap.String("operator", req.Operator))
		writeJSON(w, http.StatusOK, d.Masked())
	}
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

func (a *API) settlement(w http.ResponseWriter, r *http.Request) {
	from, to, err := period(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := a.cfg.Settlement.Settle(from, to, r.URL.Query().Get("merchant"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
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
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if st.Merchants == nil {
		st.Merchants = []recon.MerchantSettlement{}
	}
	st.Page(after, limit)
	writeJSON(w, http.StatusOK, st)
}

func (a *API) rates(w http.ResponseWriter, r *http.Request) {
	list, err := a.cfg.Settlement.RateHistory(r.URL.Query().Get("merchant"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if list == nil {
		list = []recon.Rates{}
	}
	writeJSON(w, http.StatusOK, RatesList{Rates: list})
}

func (a *API) setRates(w http.ResponseWriter, r *http.Request) {
	var req SetRatesRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Operator) > 64 {
		writeError(w, http.StatusBadRequest, "operator: at most 64 characters")
		return
	}
	rates := recon.Rates{Merchant: req.Merchant, From: req.From, FeeBP: req.FeeBP, ManagementBP: req.ManagementBP, SetBy: req.Operator}
	if err := a.cfg.Settlement.SetRates(rates); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.rates(w, r)
}

func (a *API) refunds(w http.ResponseWriter, r *http.Request) {
	from, to, err := period(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
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
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	all, err := a.cfg.Settlement.RefundList(from, to)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
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

func (a *API) statistics(w http.ResponseWriter, r *http.Request) {
	d, err := parseDate(r.URL.Query().Get("date"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := a.cfg.Recon.DayStatistics(r.Context(), d)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}
