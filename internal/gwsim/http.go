package gwsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// The status surface (docs/gwsim.md): loopback only, for tests and people.
//
//	GET  /status                  text: counters, faults, balances
//	GET  /accounts                JSON: every holder's opening, balance and holds
//	GET  /entries?after=S&limit=N JSON: the record, after serial S
//	GET  /faults, PUT /faults     JSON: the injected faults
//	POST /recon?date=D&skip=RRN&alter=RRN=FEN&flip=RRN&extra=CARD=FEN
//	                              writes the daily file, answers its path

const (
	maxHTTPBody     = 64 << 10
	defaultPageSize = 1000
	maxPageSize     = 100_000
)

// FaultsJSON is the wire form of Faults (delay in milliseconds).
type FaultsJSON struct {
	DelayMS          int64  `json:"delay_ms"`
	DropPercent      int    `json:"drop_percent"`
	Decline          string `json:"decline"`
	DeclineReversals string `json:"decline_reversals"`
	DisconnectAfter  int    `json:"disconnect_after"`
	RefuseSignOn     bool   `json:"refuse_signon"`
}

func faultsJSON(f Faults) FaultsJSON {
	return FaultsJSON{DelayMS: f.Delay.Milliseconds(), DropPercent: f.DropPercent, Decline: f.Decline,
		DeclineReversals: f.DeclineReversals, DisconnectAfter: f.DisconnectAfter, RefuseSignOn: f.RefuseSignOn}
}

// ReconAnswer is the answer to POST /recon.
type ReconAnswer struct {
	Path  string `json:"path"`
	Lines int    `json:"lines"`
}

func (s *Sim) startHTTP() error {
	if err := checkLoopback(s.opts.HTTPAddr); err != nil {
		return fmt.Errorf("%w: status address: %v", ErrOptions, err)
	}
	ln, err := net.Listen("tcp", s.opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("gwsim: listen %s: %w", s.opts.HTTPAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		s.WriteStatus(w)
	})
	mux.HandleFunc("GET /accounts", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Accounts()) })
	mux.HandleFunc("GET /entries", s.httpEntries)
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, faultsJSON(s.Faults())) })
	mux.HandleFunc("PUT /faults", s.httpSetFaults)
	mux.HandleFunc("POST /recon", s.httpRecon)
	// CPU profiles and goroutine dumps of the simulator, for profiling it
	// next to switchd under load (docs/gwsim.md, "Status surface").
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", boundedProfile)
	s.httpLn = ln
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("gwsim status server stopped", zap.Error(err))
		}
	}()
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	http.Error(w, err.Error(), code)
}

func (s *Sim) httpEntries(w http.ResponseWriter, r *http.Request) {
	limit := defaultPageSize
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want 1..%d", v, maxPageSize))
			return
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	all := s.Entries()
	page := make([]Entry, 0, min(limit, len(all)))
	for _, e := range all {
		if e.Serial <= after {
			continue
		}
		if len(page) == limit {
			break
		}
		page = append(page, e)
	}
	writeJSON(w, page)
}

func (s *Sim) httpSetFaults(w http.ResponseWriter, r *http.Request) {
	var fj FaultsJSON
	dec := json.NewDecoder(io.LimitReader(r.Body, maxHTTPBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fj); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("faults: %w", err))
		return
	}
	if fj.DelayMS < 0 || fj.DelayMS > MaxDelay.Milliseconds() {
		httpError(w, http.StatusBadRequest, fmt.Errorf("delay_ms %d out of range (0..%d)", fj.DelayMS, MaxDelay.Milliseconds()))
		return
	}
	f := Faults{Delay: time.Duration(fj.DelayMS) * time.Millisecond, DropPercent: fj.DropPercent, Decline: fj.Decline,
		DeclineReversals: fj.DeclineReversals, DisconnectAfter: fj.DisconnectAfter, RefuseSignOn: fj.RefuseSignOn}
	if err := s.SetFaults(f); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, faultsJSON(f))
}

func (s *Sim) httpRecon(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	date := q.Get("date")
	if date == "" {
		date = s.BusinessDate(s.now())
	}
	p := Plant{Skip: q["skip"], Flip: q["flip"], Alter: map[string]spec.Amount{}}
	for _, v := range q["alter"] {
		k, a, err := ParsePlantAmount(v)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("alter: %w", err))
			return
		}
		p.Alter[k] = a
	}
	for _, v := range q["extra"] {
		k, a, err := ParsePlantAmount(v)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("extra: %w", err))
			return
		}
		p.Extra = append(p.Extra, Extra{Card: k, Amount: a})
	}
	path, n, err := s.WriteRecon(date, p)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, ReconAnswer{Path: path, Lines: n})
}

// WriteStatus prints counters, faults and balances as text.
func (s *Sim) WriteStatus(w io.Writer) {
	st := s.Stats()
	f := s.Faults()
	fmt.Fprintf(w, "gwsim %s  connections=%d messages=%d sign_ons=%d key_exchanges=%d approved=%d declined=%d reversed=%d mac_errors=%d format_errors=%d dropped=%d\n",
		s.Addr(), st.Connections, st.Messages, st.SignOns, st.KeyExchanges, st.Approved, st.Declined, st.Reversed,
		st.MACErrors, st.FormatErrors, st.Dropped)
	fmt.Fprintf(w, "faults: delay=%s drop=%d%% decline=%q decline_reversals=%q disconnect_after=%d refuse_signon=%t\n",
		f.Delay, f.DropPercent, f.Decline, f.DeclineReversals, f.DisconnectAfter, f.RefuseSignOn)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CARD\tACCOUNT\tHOLDER\tOPENING\tBALANCE\tHELD")
	for _, a := range s.sortedAccounts() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Card, a.Number, a.Holder, a.Opening, a.Balance, a.Held)
	}
	tw.Flush()
}

// maxProfileSeconds bounds GET /debug/pprof/profile?seconds=N.
const maxProfileSeconds = 60

// boundedProfile serves a CPU profile of at most maxProfileSeconds (the
// default, without seconds, is pprof's 30).
func boundedProfile(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("seconds"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > maxProfileSeconds {
			http.Error(w, fmt.Sprintf("seconds must be 1..%d", maxProfileSeconds), http.StatusBadRequest)
			return
		}
	}
	pprof.Profile(w, r)
}
