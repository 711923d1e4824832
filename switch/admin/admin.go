// Package admin is the switch's admin HTTP API (docs/admin-api.md): the
// routes under /api/, behind the bearer token, each answering a typed
// JSON struct (types.go). It knows the switch only through the small
// interfaces below, one per area, which the switch implements or passes
// in; it holds no switch.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cardswitch/cardswitch/switch/links"
	"github.com/cardswitch/cardswitch/switch/recharge"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"github.com/cardswitch/cardswitch/switch/transport"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Status is the daemon as a whole: its listeners and readiness.
type Status interface {
	Status() StatusResponse
}

// Merchants is the merchant register (the ledger's).
type Merchants interface {
	Merchants() []ledger.MerchantInfo
	Merchant(id string) (ledger.MerchantInfo, bool)
	AddMerchant(spec ledger.MerchantSpec) error
}

// Terminals is the terminal registry; Register validates a new terminal
// against its merchant and adds it.
type Terminals interface {
	List() []*terminals.Terminal
	Get(id string) *terminals.Terminal
	Update(id string, f func(t *terminals.Terminal) error) (*terminals.Terminal, error)
	Register(t terminals.Spec) error
}

// Cards is the card side of the ledger.
type Cards interface {
	Card(pan string) (ledger.CardView, bool)
	OpenCard(spec ledger.CardSpec, pvv []byte) error
	Freeze(pan string) error
	Unfreeze(pan string) error
	ReportLost(pan string) error
	CancelLoss(pan string) error
	CloseCard(pan string) error
	Receivables(after string, limit int) (list []ledger.Receivable, total ledger.Fen, more bool)
}

// Keys is what the API asks of the HSM: loading key components and a new
// card's PIN verification value. No key ever comes back.
type Keys interface {
	ImportTMK(terminalID string, components ...[]byte) ([]byte, error)
	ImportZMK(link string, components ...[]byte) ([]byte, error)
	PINVerificationValue(pan, pin string) (string, error)
}

// Journal is the message journal's lookups.
type Journal interface {
	ByRRN(rrn, date string, limit int) ([]*journal.Entry, error)
	ByTerminalBatch(terminal, batch string, limit int) ([]*journal.Entry, error)
}

// Retention runs the retention job now. Its report is the job's own
// typed report; ErrRetentionBusy while a run is going on.
type Retention interface {
	RunRetention() (report any, err error)
}

// Day is the business day: its status and its close. Status and Close
// answer the switch's own typed day records; Close fails with
// ErrDayNotOpen or ledger.ErrBadDate for a date it cannot close (400),
// any other error is a conflict (409).
type Day interface {
	Today() ledger.BusinessDate
	DayStatus(days int) (status any, err error)
	CloseDay(d ledger.BusinessDate, by string) (record any, err error)
}

// Recon is reconciliation: the day's export and statistics, counterparty
// file imports and the discrepancies they find.
type Recon interface {
	Export(ctx context.Context, w io.Writer, d ledger.BusinessDate, f recon.Filter) error
	DayStatistics(ctx context.Context, d ledger.BusinessDate) (*recon.Statistics, error)
	// HasLayout reports whether gateway's file layout is configured.
	HasLayout(gateway string) bool
	Import(ctx context.Context, gateway string, d ledger.BusinessDate, file io.Reader) (*recon.Report, error)
	ImportReport(gateway string, d ledger.BusinessDate) (*recon.Report, bool, error)
	Discrepancies(f recon.DiscrepancyFilter, after uint64, limit int) ([]recon.Discrepancy, bool, error)
	Get(id uint64) (recon.Discrepancy, error)
	Resolve(id uint64, action, operator string) (recon.Discrepancy, error)
}

// Settlement is merchant settlement, its rates and the refund list.
type Settlement interface {
	Settle(from, to ledger.BusinessDate, merchant string) (*recon.Settlement, error)
	RateHistory(merchant string) ([]recon.Rates, error)
	SetRates(r recon.Rates) error
	RefundList(from, to ledger.BusinessDate) ([]recon.RefundItem, error)
}

// Links is the outbound gateway links and their store-and-forward queues.
type Links interface {
	Status() ([]links.LinkStatus, error)
	Link(name string) (*links.Link, bool)
	Names() []string
	SAFList(link string, dead bool, limit int) ([]links.SAFEntry, error)
	SAFRetry(link string, id uint64) (uint64, error)
	SAFDrop(link string, id uint64) error
}

// Recharge is the outside institutions, their orders, card bindings and
// pending credits.
type Recharge interface {
	Institutions() []recharge.Institution
	Institution(id string) (*recharge.Institution, bool)
	Orders(inst, after string, limit int) ([]recharge.OrderView, error)
	Order(inst, order string) (recharge.OrderView, bool, error)
	PendingOlderThan(days int) (list []recharge.PendingCredit, truncated bool, err error)
	Binding(pan string) (recharge.BindingView, bool, error)
	Bind(pan, gateway, bankCard, account, operator string) (recharge.BindingView, error)
	Unbind(pan, operator string) (recharge.BindingView, error)
	UnbindGateway(gateway, operator string, max int) (unbound int, more bool, err error)
}

// Connections is the POS acceptor's view of its open connections.
type Connections interface {
	ConnSnapshot(maxTerminals, maxNetworks int) ([]transport.TerminalConns, []transport.NetworkConns)
}

// Config is what the API serves. Every field is required.
type Config struct {
	// Token is the bearer token; empty disables the API (403), never
	// opens it.
	Token string
	Log   *zap.Logger
	// Rejected counts refused requests by listener and reason
	// (switch_rejected_total); the API counts under listener "http".
	Rejected *prometheus.CounterVec
	// PermissionChanges counts applied terminal permit and forbid
	// changes by action (switch_terminal_permission_changes_total).
	PermissionChanges *prometheus.CounterVec
	// Metrics is the registry the console's summary is read from.
	Metrics      prometheus.Gatherer
	RecentErrors *ErrorRing
	// PendingRefundDays is the default age of GET /api/v1/recharge/pending.
	PendingRefundDays int

	Status      Status
	Connections Connections
	Merchants   Merchants
	Terminals   Terminals
	Cards       Cards
	Keys        Keys
	Journal     Journal
	Retention   Retention
	Day         Day
	Recon       Recon
	Settlement  Settlement
	Links       Links
	Recharge    Recharge
	Transfers   Transfers
}

// API is the admin API of one daemon.
type API struct {
	cfg   Config
	log   *zap.Logger
	guard *guard
}

// New builds the API.
func New(cfg Config) *API {
	return &API{cfg: cfg, log: cfg.Log, guard: newGuard()}
}

// MaxBody bounds an admin API request body.
const MaxBody = 64 << 10

// ownBodyBound are the routes whose body is an uploaded file that the
// handler bounds itself (recon import: maxImportFile); the admin bound
// would cut any real day's file.
var ownBodyBound = map[string]bool{"/api/v1/recon/import": true}

// Handler serves the API under /api/, behind the bearer token. Every
// answer is JSON; card numbers are masked and no key, PIN, PIN block, PIN
// verification value or track data is ever returned.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.register(mux)
	return a.requireToken(mux)
}

func (a *API) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/status", a.status)
	mux.HandleFunc("GET /api/v1/stats", a.stats)
	mux.HandleFunc("GET /api/v1/merchants", a.listMerchants)
	mux.HandleFunc("GET /api/v1/merchants/{id}", a.getMerchant)
	mux.HandleFunc("POST /api/v1/merchants", a.addMerchant)
	mux.HandleFunc("GET /api/v1/terminals", a.listTerminals)
	mux.HandleFunc("GET /api/v1/terminals/{id}", a.getTerminal)
	mux.HandleFunc("POST /api/v1/terminals", a.addTerminal)
	mux.HandleFunc("POST /api/v1/terminals/{id}/tmk", a.loadTMK)
	mux.HandleFunc("POST /api/v1/terminals/{id}/disable", a.setTerminalDisabled(true))
	mux.HandleFunc("POST /api/v1/terminals/{id}/enable", a.setTerminalDisabled(false))
	mux.HandleFunc("POST /api/v1/terminals/{id}/permit", a.changePermitted(true))
	mux.HandleFunc("POST /api/v1/terminals/{id}/forbid", a.changePermitted(false))
	a.registerCards(mux)
	mux.HandleFunc("GET /api/v1/journal", a.journal)
	mux.HandleFunc("POST /api/v1/retention/run", a.retentionRun)
	a.registerRecon(mux)
	a.registerLinks(mux)
	a.registerRecharge(mux)
	a.registerTransfers(mux)

	// Go's profiler, behind the same token: CPU, heap, goroutines, mutex
	// and block profiles of the running daemon (go tool pprof with
	// -http or a saved file). CPU profiles and traces take at most
	// maxProfileSeconds, and the HTTP write timeout bounds them too: ask
	// for seconds=20 at most.
	prof := http.NewServeMux()
	prof.HandleFunc("/debug/pprof/", pprof.Index)
	prof.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	prof.HandleFunc("/debug/pprof/profile", boundedProfile(pprof.Profile))
	prof.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	prof.HandleFunc("/debug/pprof/trace", boundedProfile(pprof.Trace))
	mux.Handle("GET /api/debug/pprof/", http.StripPrefix("/api", prof))
}

// requireToken guards the API with the configured bearer token. No token
// configured means no admin access at all, never open access.
func (a *API) requireToken(next http.Handler) http.Handler {
	want := []byte(a.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if len(want) == 0 {
			writeError(w, http.StatusForbidden, "admin API disabled: no admin token configured")
			return
		}
		if a.authBlocked(w, r) {
			return
		}
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			a.authFailed(w, r) // guard.go: bounded, rate-limited
			return
		}
		if !ownBodyBound[r.URL.Path] {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.cfg.Status.Status())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

// decodeBody reads a JSON body, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// fail answers an error with the status its kind calls for.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, terminals.ErrUnknown), errors.Is(err, ledger.ErrUnknownCard):
		status = http.StatusNotFound
	case errors.Is(err, terminals.ErrExists), errors.Is(err, ledger.ErrCardExists),
		errors.Is(err, ledger.ErrMerchantExists), errors.Is(err, ledger.ErrCardState),
		errors.Is(err, ledger.ErrLimit):
		status = http.StatusConflict
	case errors.Is(err, hsm.ErrKCVMismatch):
		status = http.StatusBadRequest
	}
	a.log.Info("admin API request refused", zap.String("path", logPath(r.URL.Path)), zap.Int("status", status), zap.Error(err))
	writeError(w, status, err.Error())
}
