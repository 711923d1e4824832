package admin

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/internal/logmask"
	"go.uber.org/zap/zapcore"
)

// StatsSummary is GET /api/v1/stats: the counters the console turns into
// rates (docs/admin-api.md). Counters are cumulative since the daemon
// started; a reader takes two and divides by the time between them.
type StatsSummary struct {
	Time         time.Time `json:"time"`
	BusinessDate string    `json:"business_date"`
	// Transactions answered, approved (rc 00), and by response code.
	Transactions uint64    `json:"transactions"`
	Approved     uint64    `json:"approved"`
	ByRC         []RCCount `json:"by_rc"`
	// Latency is the histogram of switch_transaction_duration_seconds
	// over every type: cumulative bucket counts by upper bound.
	Latency []LatencyBucket `json:"latency"`
	// Connections open per listener, per proved terminal and per source
	// network (/24 for IPv4, /64 for IPv6) of the POS acceptor.
	Connections []ListenerConns `json:"connections"`
	Terminals   []TerminalConns `json:"terminals"`
	Networks    []NetworkConns  `json:"networks"`
	// RecentErrors are the last warnings and errors logged, newest last,
	// card numbers masked.
	RecentErrors []LoggedError `json:"recent_errors"`
}

// RCCount is the number of transactions answered with one response code.
type RCCount struct {
	RC    string `json:"rc"`
	Count uint64 `json:"count"`
}

// LatencyBucket is one cumulative histogram bucket; LE is its upper bound
// in seconds (the last bucket, +Inf, is Count = all).
type LatencyBucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// ListenerConns is the number of open connections of one listener.
type ListenerConns struct {
	Listener string `json:"listener"`
	Open     int    `json:"open"`
}

// TerminalConns is a terminal's open connections and where they come from.
type TerminalConns struct {
	Terminal    string   `json:"terminal"`
	Connections int      `json:"connections"`
	Peers       []string `json:"peers"`
}

// NetworkConns is the number of POS connections from one source network.
type NetworkConns struct {
	Network     string `json:"network"`
	Connections int    `json:"connections"`
}

// LoggedError is one log line at warning level or above.
type LoggedError struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	// Line is the whole JSON log line, masked as the log is.
	Line string `json:"line"`
}

// Bounds of the summary: every list has a ceiling.
const (
	// MaxRecentErrors is how many log lines the console shows.
	MaxRecentErrors   = 50
	maxStatsTerminals = 200
	maxStatsNetworks  = 100
	maxErrorLine      = 2048
)

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	s := StatsSummary{Time: time.Now().UTC(), BusinessDate: a.cfg.Day.Today().String(),
		ByRC: []RCCount{}, Latency: []LatencyBucket{}, Connections: []ListenerConns{},
		Terminals: []TerminalConns{}, Networks: []NetworkConns{}}
	mfs, err := a.cfg.Metrics.Gather()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	byRC := map[string]uint64{}
	buckets := map[float64]uint64{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "switch_transactions_total":
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "rc" {
						byRC[l.GetValue()] += uint64(m.GetCounter().GetValue())
					}
				}
			}
		case "switch_transaction_duration_seconds":
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					buckets[b.GetUpperBound()] += b.GetCumulativeCount()
				}
				buckets[inf] += h.GetSampleCount()
			}
		case "switch_connections":
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "listener" {
						s.Connections = append(s.Connections, ListenerConns{Listener: l.GetValue(), Open: int(m.GetGauge().GetValue())})
					}
				}
			}
		}
	}
	for rc, n := range byRC {
		s.ByRC = append(s.ByRC, RCCount{RC: rc, Count: n})
		s.Transactions += n
		if rc == "00" {
			s.Approved = n
		}
	}
	sort.Slice(s.ByRC, func(i, j int) bool { return s.ByRC[i].RC < s.ByRC[j].RC })
	for le, n := range buckets {
		s.Latency = append(s.Latency, LatencyBucket{LE: le, Count: n})
	}
	sort.Slice(s.Latency, func(i, j int) bool { return s.Latency[i].LE < s.Latency[j].LE })
	if n := len(s.Latency); n > 0 && s.Latency[n-1].LE == inf {
		s.Latency[n-1].LE = 0 // JSON has no infinity: 0 marks the +Inf bucket
	}
	s.Terminals, s.Networks = a.connSnapshot()
	s.RecentErrors = a.cfg.RecentErrors.list()
	writeJSON(w, http.StatusOK, s)
}

var inf = func() float64 { var z float64; return 1 / z }()

// connSnapshot lists the POS acceptor's connections by proved terminal
// and by source network, largest first, bounded.
func (a *API) connSnapshot() ([]TerminalConns, []NetworkConns) {
	ts, ns := a.cfg.Connections.ConnSnapshot(maxStatsTerminals, maxStatsNetworks)
	terms := make([]TerminalConns, 0, len(ts))
	for _, t := range ts {
		tc := TerminalConns{Terminal: t.Terminal, Connections: len(t.Peers), Peers: make([]string, 0, len(t.Peers))}
		for _, ip := range t.Peers {
			tc.Peers = append(tc.Peers, ip.String())
		}
		terms = append(terms, tc)
	}
	nets := make([]NetworkConns, 0, len(ns))
	for _, n := range ns {
		nets = append(nets, NetworkConns{Network: n.Network.String(), Connections: n.Connections})
	}
	return terms, nets
}

// ErrorRing keeps the last n log lines at warning level or above, encoded
// as JSON through the same masking encoder as the log (internal/logmask),
// for the console's summary. Tee its Core into the daemon's logger.
type ErrorRing struct {
	mu    sync.Mutex
	lines []LoggedError
	n     int
}

// NewErrorRing keeps the last MaxRecentErrors lines.
func NewErrorRing() *ErrorRing { return newErrorRing(MaxRecentErrors) }

func newErrorRing(n int) *ErrorRing { return &ErrorRing{n: n} }

// Core is the log core that feeds the ring.
func (r *ErrorRing) Core() zapcore.Core {
	ec := zapcore.EncoderConfig{TimeKey: "ts", LevelKey: "level", MessageKey: "msg", NameKey: "logger",
		EncodeTime: zapcore.ISO8601TimeEncoder, EncodeLevel: zapcore.LowercaseLevelEncoder, EncodeDuration: zapcore.StringDurationEncoder}
	return zapcore.NewCore(logmask.Encoder(zapcore.NewJSONEncoder(ec)), zapcore.AddSync(ringWriter{r}), zapcore.WarnLevel)
}

// ringWriter receives one encoded line per Write.
type ringWriter struct{ r *ErrorRing }

func (w ringWriter) Write(p []byte) (int, error) {
	line := string(p)
	if len(line) > maxErrorLine {
		line = line[:maxErrorLine]
	}
	var head struct {
		TS    string `json:"ts"`
		Level string `json:"level"`
		Msg   string `json:"msg"`
	}
	_ = json.Unmarshal(p, &head)
	t, _ := time.Parse("2006-01-02T15:04:05.000Z0700", head.TS)
	e := LoggedError{Time: t, Level: head.Level, Message: head.Msg, Line: line}
	w.r.mu.Lock()
	w.r.lines = append(w.r.lines, e)
	if len(w.r.lines) > w.r.n {
		w.r.lines = w.r.lines[len(w.r.lines)-w.r.n:]
	}
	w.r.mu.Unlock()
	return len(p), nil
}

func (r *ErrorRing) list() []LoggedError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LoggedError{}, r.lines...)
}
