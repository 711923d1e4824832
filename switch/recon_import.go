package switching

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/recon"
	"go.uber.org/zap"
)

func (sw *Switch) registerReconImport(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/recon/import", sw.adminReconImport)
	mux.HandleFunc("GET /api/v1/recon/report", sw.adminReconReport)
	mux.HandleFunc("GET /api/v1/recon/discrepancies", sw.adminReconDiscrepancies)
	mux.HandleFunc("GET /api/v1/recon/discrepancies/{id}", sw.adminReconDiscrepancy)
	mux.HandleFunc("POST /api/v1/recon/discrepancies/{id}/resolve", sw.adminReconResolve)
}

// ReconConfig is the recon section of the configuration.
type ReconConfig struct {
	// Gateways maps a gateway or institution name (as in the export's
	// institution column) to how its daily file is read and which of its
	// discrepancies resolve themselves.
	Gateways map[string]ReconGateway `yaml:"gateways"`
}

// ReconGateway is one counterparty's import settings.
type ReconGateway struct {
	Layout      recon.Layout    `yaml:"layout"`
	AutoResolve recon.AutoRules `yaml:"auto_resolve"`
}

func (c ReconConfig) validate() error {
	var errs []error
	for name, g := range c.Gateways {
		if err := g.Layout.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("recon.gateways.%s.layout: %w", name, err))
		}
		if err := g.AutoResolve.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("recon.gateways.%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// maxImportFile bounds an uploaded counterparty file.
const maxImportFile = 2 << 30

// adminReconImport matches the uploaded file (the body) of ?gateway= for
// ?date= and answers the report.
func (sw *Switch) adminReconImport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	gw := q.Get("gateway")
	g, ok := sw.cfg.Recon.Gateways[gw]
	if !ok {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("gateway %q has no layout in recon.gateways", gw))
		return
	}
	d, err := parseDate(q.Get("date"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	_ = rc.SetReadDeadline(time.Now().Add(exportWriteTimeout))
	body := http.MaxBytesReader(w, r.Body, maxImportFile)
	rep, err := sw.recon.Import(r.Context(), gw, d, &g.Layout, g.AutoResolve, body, func(stage string, n int64) {
		sw.log.Info("recon import progress", zap.String("gateway", gw), zap.String("stage", stage), zap.Int64("records", n))
	})
	if err != nil {
		sw.days.imports.WithLabelValues("failed").Inc()
	} else {
		sw.days.imports.WithLabelValues("ok").Inc()
		sw.days.found.WithLabelValues(recon.OursOnly).Add(float64(rep.OursOnly.Count))
		sw.days.found.WithLabelValues(recon.TheirsOnly).Add(float64(rep.TheirsOnly.Count))
		sw.days.found.WithLabelValues(recon.AmountDiffers).Add(float64(rep.AmountDiffers.Count))
		sw.days.found.WithLabelValues(recon.StatusDiffers).Add(float64(rep.StatusDiffers.Count))
		for i := 0; i < rep.AutoResolved; i++ {
			sw.days.resolutions.WithLabelValues("auto").Inc()
		}
	}
	switch {
	case errors.Is(err, recon.ErrBusy):
		writeJSONError(w, http.StatusConflict, err.Error())
	case errors.Is(err, recon.ErrLayout), errors.Is(err, recon.ErrTooManyDiscrep):
		writeJSONError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeJSONError(w, http.StatusInternalServerError, err.Error())
	default:
		sw.log.Info("recon import", zap.String("gateway", gw), zap.String("business_date", d.String()),
			zap.Int64("matched", rep.Matched.Count), zap.Int("discrepancies", len(rep.Discrepancies)))
		writeJSON(w, http.StatusOK, rep)
	}
}

// adminReconReport answers the stored report of the last import, as JSON
// or (?format=csv) as CSV: class,count,amount_fen.
func (sw *Switch) adminReconReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := parseDate(q.Get("date"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	rep, ok, err := sw.recon.ImportReport(q.Get("gateway"), d)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !ok {
		writeJSONError(w, http.StatusNotFound, "no import of that gateway and day")
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

// DiscrepancyPage is one page of discrepancies.
type DiscrepancyPage struct {
	Discrepancies []recon.Discrepancy `json:"discrepancies"`
	// Next is the after= of the next page; 0 when this is the last.
	Next uint64 `json:"next,omitempty"`
}

func (sw *Switch) adminReconDiscrepancies(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, after := 100, uint64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeJSONError(w, http.StatusBadRequest, "limit: want 1..1000")
			return
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "after: want a discrepancy id")
			return
		}
		after = n
	}
	f := recon.DiscrepancyFilter{Gateway: q.Get("gateway"), Date: q.Get("date"), Class: q.Get("class"), State: q.Get("state")}
	list, more, err := sw.recon.Discrepancies(f, after, limit)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
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

func (sw *Switch) adminReconDiscrepancy(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "discrepancy id")
		return
	}
	d, err := sw.recon.Get(id)
	if errors.Is(err, recon.ErrNotFound) {
		writeJSONError(w, http.StatusNotFound, err.Error())
		return
	} else if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, d.Masked())
}

// ResolveRequest is the body of POST /api/v1/recon/discrepancies/{id}/resolve.
type ResolveRequest struct {
	Action   string `json:"action"`
	Operator string `json:"operator"`
}

func (sw *Switch) adminReconResolve(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "discrepancy id")
		return
	}
	var req ResolveRequest
	if err := decodeBody(r, &req); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := sw.recon.Resolve(id, req.Action, req.Operator)
	switch {
	case errors.Is(err, recon.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, recon.ErrResolved):
		writeJSONError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeJSONError(w, http.StatusBadRequest, err.Error())
	default:
		sw.days.resolutions.WithLabelValues(req.Action).Inc()
		sw.log.Info("discrepancy resolved", zap.Uint64("id", id), zap.String("action", req.Action), zap.String("operator", req.Operator))
		writeJSON(w, http.StatusOK, d.Masked())
	}
}
