package links

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the links' Prometheus series (docs/operations.md,
// "Gateway links"). The link label takes configured names only.
type Metrics struct {
	State     *prometheus.GaugeVec     // link, state: 1 for the current state
	Up        *prometheus.GaugeVec     // link: 1 up, 0 otherwise
	InFlight  *prometheus.GaugeVec     // link
	Latency   *prometheus.HistogramVec // link
	Requests  *prometheus.CounterVec   // link, result: answered, timeout, down
	Late      *prometheus.CounterVec   // link
	BadMAC    *prometheus.CounterVec   // link
	Reconnect *prometheus.CounterVec   // link
	SAFDepth  *prometheus.GaugeVec     // link
	SAFOldest *prometheus.GaugeVec     // link
	SAFDead   *prometheus.GaugeVec     // link
	SAFSends  *prometheus.CounterVec   // link, result: done, retry, dead
}

// States of a link, the values of the state label.
var linkStates = []string{StateUp, StateSigningOn, StateDown}

// NewMetrics creates the series and registers them on r (nil: not
// registered, for tests).
func NewMetrics(r prometheus.Registerer) *Metrics {
	m := &Metrics{
		State: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switch_gateway_link_state",
			Help: "1 for the link's current state (up, signing_on, down), 0 for the others."}, []string{"link", "state"}),
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switch_link_up",
			Help: "1 when the link has a signed-on connection, 0 otherwise."}, []string{"link"}),
		InFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switch_gateway_link_in_flight",
			Help: "Financial requests sent on the link and not yet answered or timed out."}, []string{"link"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switch_gateway_link_latency_seconds",
			Help:    "Time from sending a financial request on the link to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"link"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switch_gateway_link_requests_total",
			Help: "Financial requests for the link, by result: answered, timeout (reversal queued), down (91 before sending)."}, []string{"link", "result"}),
		Late: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switch_gateway_link_late_responses_total",
			Help: "Answers that arrived after their request timed out (the reversal stands)."}, []string{"link"}),
		BadMAC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switch_gateway_link_bad_mac_total",
			Help: "Answers dropped for a missing or wrong MAC (treated as no answer)."}, []string{"link"}),
		Reconnect: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switch_gateway_link_signons_total",
			Help: "Sign-ons attempted on the link's connections, by result."}, []string{"link", "result"}),
		SAFDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switch_saf_depth",
			Help: "Reversals waiting in the link's store-and-forward queue."}, []string{"link"}),
		SAFOldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switch_saf_oldest_age_seconds",
			Help: "Age of the oldest reversal in the link's store-and-forward queue (0 when empty)."}, []string{"link"}),
		SAFDead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switch_saf_dead_letters",
			Help: "Reversals the link's store-and-forward sender gave up on, waiting for an operator."}, []string{"link"}),
		SAFSends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switch_saf_sends_total",
			Help: "Store-and-forward sends, by result: done (00/25), retry, dead (dead-lettered)."}, []string{"link", "result"}),
	}
	if r != nil {
		r.MustRegister(m.State, m.Up, m.InFlight, m.Latency, m.Requests, m.Late, m.BadMAC, m.Reconnect,
			m.SAFDepth, m.SAFOldest, m.SAFDead, m.SAFSends)
	}
	return m
}
