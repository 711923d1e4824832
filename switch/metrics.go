package switching

import (
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/switch/pos"
	"github.com/cardswitch/cardswitch/switch/transport"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the switch's Prometheus series. Names and labels are a
// contract (docs/operations.md#metrics): dashboards and alerts are built on them.
//
// Label values come only from closed sets (known MTIs, transaction types,
// response codes): a terminal sending garbage must not be able to create
// series without bound.
type Metrics struct {
	Registry *prometheus.Registry

	Messages      *prometheus.CounterVec   // listener, direction, mti
	Transactions  *prometheus.CounterVec   // type, rc
	Duration      *prometheus.HistogramVec // type
	Connections   *prometheus.GaugeVec     // listener
	JournalWrites prometheus.Counter
	HSMOperations *prometheus.CounterVec // op, result
	Rejected      *prometheus.CounterVec // listener, reason
	// SignOnRejected counts sign-ons answered A0, by reason
	// (docs/pos-dialect.md#sign-on-proof).
	SignOnRejected *prometheus.CounterVec // reason
	// PermissionChanges counts switchctl terminal permit and forbid
	// changes applied (docs/operations.md "Metrics").
	PermissionChanges *prometheus.CounterVec // action

	// DamagedRecords counts duplicate records that do not decode, met by
	// reference lookups (docs/journal.md#damaged-duplicate-records).
	DamagedRecords *prometheus.CounterVec // lookup
	// DamagedBindings counts card binding records that do not decode,
	// skipped by a reload's check of the links it removes
	// (docs/gateway-links.md "Reloading links").
	DamagedBindings prometheus.Counter

	RetentionDeleted     *prometheus.CounterVec // keyspace
	RetentionRuns        *prometheus.CounterVec // result
	RetentionLastSuccess prometheus.Gauge
}

// retentionKeyspaces are the values of the keyspace label of
// switch_retention_deleted_total, all present from the start so that a
// rate() works before the first deletion.
var retentionKeyspaces = []string{"journal_entries", "responses",
	"ledger_idempotency", "ledger_references", "ledger_rrns", "ledger_tombstones", "link_requests", "transfer_records"}

// rejectReasons are the values of the reason label of
// switch_rejected_total (docs/operations.md "Metrics").
var rejectReasons = []string{"connection_limit", "peer_connection_limit",
	"frame_too_large", "frame_too_short", "short_read", "undecodable", "not_a_request",
	// the connection policy (switch/transport)
	"first_frame_timeout", "terminal_connection_limit", "unauthenticated_rate_limit"}

// httpRejectReasons are the reasons of switch_rejected_total{listener="http"}:
// admin API requests with a bad or missing token, and those refused
// unchecked from an address over its failures (switch/admin).
var httpRejectReasons = []string{"bad_token", "auth_rate_limited"}

// NewMetrics registers every series on a fresh registry, with the Go and
// process collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switch_messages_total",
			Help: "ISO 8583 messages read and written, by listener, direction (in/out) and MTI.",
		}, []string{"listener", "direction", "mti"}),
		Transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switch_transactions_total",
			Help: "Transactions answered, by transaction type and response code.",
		}, []string{"type", "rc"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switch_transaction_duration_seconds",
			Help: "Time from frame read to response written, by transaction type.",
			// 100 µs .. ~3.3 s: a synced commit is ~150 µs here.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"type"}),
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switch_connections",
			Help: "Open connections, by listener.",
		}, []string{"listener"}),
		JournalWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switch_journal_entries_total",
			Help: "Journal entries written.",
		}),
		HSMOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switch_hsm_operations_total",
			Help: "HSM operations, by operation and result.",
		}, []string{"op", "result"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switch_rejected_total",
			Help: "Connections closed or frames refused before processing, by listener and reason.",
		}, []string{"listener", "reason"}),
		RetentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switch_retention_deleted_total",
			Help: "Records deleted by the retention job, by keyspace.",
		}, []string{"keyspace"}),
		RetentionRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switch_retention_runs_total",
			Help: "Retention runs, by result (ok, error).",
		}, []string{"result"}),
		RetentionLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switch_retention_last_success_timestamp_seconds",
			Help: "When the last retention run ended without error (Unix time); 0 before the first.",
		}),
	}
	m.SignOnRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switch_signon_rejected_total",
		Help: "Sign-ons refused with A0, by reason (missing_proof, bad_proof, replay, rate_limited, legacy_network).",
	}, []string{"reason"})
	for _, reason := range pos.SignOnRejectReasons {
		m.SignOnRejected.WithLabelValues(reason)
	}
	r.MustRegister(m.SignOnRejected)
	m.PermissionChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switch_terminal_permission_changes_total",
		Help: "Changes of the transaction types a terminal may do (switchctl terminal permit|forbid) applied, by action (permit, forbid).",
	}, []string{"action"})
	for _, a := range []string{"permit", "forbid"} {
		m.PermissionChanges.WithLabelValues(a)
	}
	r.MustRegister(m.PermissionChanges)
	m.DamagedRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switch_journal_damaged_records_total",
		Help: "Duplicate records that do not decode met by reference lookups, by lookup (reference: that reference's lookup failed; batch: skipped by a batch walk).",
	}, []string{"lookup"})
	for _, l := range []string{journal.LookupReference, journal.LookupBatch} {
		m.DamagedRecords.WithLabelValues(l)
	}
	r.MustRegister(m.DamagedRecords)
	m.DamagedBindings = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switch_binding_damaged_records_total",
		Help: "Card binding records that do not decode, skipped by a check of the gateway links: a reload's of the links it removes (their readable gateway is a link kept), or the start's (their readable gateway is no link configured).",
	})
	r.MustRegister(m.DamagedBindings)
	for _, k := range retentionKeyspaces {
		m.RetentionDeleted.WithLabelValues(k)
	}
	for _, res := range []string{"ok", "error"} {
		m.RetentionRuns.WithLabelValues(res)
	}
	// Every listener and reason from the start, so that an alert or a
	// rate() sees 0 rather than no series before the first refusal.
	for _, l := range []string{"pos", "gateway"} {
		for _, reason := range rejectReasons {
			m.Rejected.WithLabelValues(l, reason)
		}
	}
	for _, reason := range httpRejectReasons {
		m.Rejected.WithLabelValues("http", reason)
	}
	r.MustRegister(m.Messages, m.Transactions, m.Duration, m.Connections,
		m.JournalWrites, m.HSMOperations, m.Rejected,
		m.RetentionDeleted, m.RetentionRuns, m.RetentionLastSuccess,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// transport is the acceptors' part of the metrics.
func (m *Metrics) transport() transport.Metrics {
	return transport.Metrics{Connections: m.Connections, Rejected: m.Rejected}
}
