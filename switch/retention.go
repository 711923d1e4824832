package switching

import (
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/admin"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"go.uber.org/zap"
)

// retentionPause separates two deletion batches of one run, so a large
// backlog (the first run after an upgrade, or after retention was
// switched on) is worked off in small steps between transactions instead
// of one long burst. It is a pause, not a batching timer: nothing waits
// for it but the job.
const retentionPause = 20 * time.Millisecond

// maxRetentionBatches bounds one run: a backlog larger than this many
// batches is finished by the next runs.
const maxRetentionBatches = 10_000

// errRetentionBusy answers a run asked for while one is going on.
var errRetentionBusy = admin.ErrRetentionBusy

// RetentionReport is what one retention run deleted, and where it cut.
type RetentionReport struct {
	BusinessDate string `json:"business_date"`
	// JournalBefore is the first business day whose journal entries are
	// kept; empty when the journal is kept forever.
	JournalBefore string `json:"journal_before,omitempty"`
	// ResponsesBefore: stored responses answered before it are deleted.
	ResponsesBefore time.Time `json:"responses_before"`
	// LedgerBefore is the first business day whose ledger lookup records
	// are kept.
	LedgerBefore string `json:"ledger_before"`

	JournalEntries    int `json:"journal_entries"`
	Responses         int `json:"responses"`
	LedgerIdempotency int `json:"ledger_idempotency"`
	LedgerReferences  int `json:"ledger_references"`
	LedgerRRNs        int `json:"ledger_rrns"`
	LedgerTombstones  int `json:"ledger_tombstones"`
	// LinkRequests are gateway link requests with a final state older
	// than the ledger's lookup window (docs/gateway-links.md).
	LinkRequests int `json:"link_requests"`
	// TransferRecords are bank-transfer load records and day totals of
	// days before LedgerBefore (docs/recharge.md).
	TransferRecords int `json:"transfer_records"`

	// Complete is false when the run stopped before the backlog was gone
	// (shutdown, an error, or the per-run bound); the next run goes on.
	Complete bool   `json:"complete"`
	Error    string `json:"error,omitempty"`
}

// retention is the job that deletes what the switch no longer needs:
// journal days past JournalDays, stored responses past ResponseDays, the
// ledger's lookup records past LedgerLookupDays. One run at a time; runs
// come from its ticker or from the admin API.
type retention struct {
	sw         *Switch
	cfg        RetentionConfig
	lookupDays int // LedgerLookupDays resolved against the ledger's minimum

	running  sync.Mutex
	launched atomic.Bool // start ran: shutdown waits for the loop
	stop     chan struct{}
	done     chan struct{}
}

// newRetention resolves the ledger's lookup window and refuses one below
// the ledger's minimum: a record pruned too early would let a refund or a
// reversal inside its window find nothing.
func newRetention(sw *Switch, cfg RetentionConfig) (*retention, error) {
	min := sw.ledger.MinLookupRetentionDays()
	days := cfg.LedgerLookupDays
	if days == 0 {
		days = min
	}
	if days < min {
		return nil, fmt.Errorf("retention.ledger_lookup_days %d: below the ledger's minimum of %d days (refund window and pre-auth lifetime)", days, min)
	}
	if cfg.JournalDays > 0 && cfg.JournalDays < days {
		return nil, fmt.Errorf("retention.journal_days %d: want 0 or at least the ledger lookup window of %d days", cfg.JournalDays, days)
	}
	return &retention{sw: sw, cfg: cfg, lookupDays: days, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// start launches the loop; Start calls it once its listeners are bound.
func (r *retention) start() {
	r.launched.Store(true)
	go r.loop()
}

// loop runs the job every Interval until shutdown.
func (r *retention) loop() {
	defer close(r.done)
	first := min(time.Duration(r.cfg.Interval), time.Minute)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if _, err := r.run(r.sw.clock.now()); err != nil && !errors.Is(err, errRetentionBusy) {
			r.sw.log.Error("retention run failed; the next run retries", zap.Error(err))
		}
		t.Reset(time.Duration(r.cfg.Interval))
	}
}

// shutdown stops the loop and waits for a run in progress to end its
// current batch.
func (r *retention) shutdown() {
	close(r.stop)
	if r.launched.Load() { // a Start that failed never launched it
		<-r.done
	}
	r.running.Lock() // an admin-started run
	r.running.Unlock()
}

func (r *retention) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// run is one retention pass as of now: the ledger's lookup records, the
// journal's old days, the stored responses, each in batches of at most
// BatchSize.
func (r *retention) run(now time.Time) (RetentionReport, error) {
	if !r.running.TryLock() {
		return RetentionReport{}, errRetentionBusy
	}
	defer r.running.Unlock()
	sw, m := r.sw, r.sw.metrics
	start := time.Now()
	today := sw.clock.dateOf(now)
	rep := RetentionReport{
		BusinessDate:    today.String(),
		LedgerBefore:    today.AddDays(-r.lookupDays).String(),
		ResponsesBefore: now.Add(-time.Duration(r.cfg.ResponseDays) * 24 * time.Hour).UTC().Truncate(time.Second),
	}
	if r.cfg.JournalDays > 0 {
		rep.JournalBefore = today.AddDays(-r.cfg.JournalDays).String()
	}
	batches := 0
	// step runs one kind of deletion until it reports nothing more.
	step := func(name string, prune func() (more bool, err error)) error {
		for {
			if r.stopped() || batches >= maxRetentionBatches {
				return nil
			}
			batches++
			more, err := prune()
			if err != nil {
				return fmt.Errorf("prune %s: %w", name, err)
			}
			if !more {
				return nil
			}
			time.Sleep(retentionPause)
		}
	}
	ledgerBefore := today.AddDays(-r.lookupDays)
	err := step("ledger lookup records", func() (bool, error) {
		st, more, err := sw.ledger.Prune(ledgerBefore, r.cfg.BatchSize)
		rep.LedgerIdempotency += st.Idempotency
		rep.LedgerReferences += st.References
		rep.LedgerRRNs += st.RRNs
		rep.LedgerTombstones += st.Tombstones
		countPruned(m, st)
		return more, err
	})
	if err == nil {
		linkCut := now.Add(-time.Duration(r.lookupDays) * 24 * time.Hour)
		err = step("gateway link requests", func() (bool, error) {
			n, more, err := sw.links.PruneRequests(linkCut, r.cfg.BatchSize)
			rep.LinkRequests += n
			m.RetentionDeleted.WithLabelValues("link_requests").Add(float64(n))
			return more, err
		})
	}
	if err == nil && sw.transfer != nil {
		err = step("transfer records", func() (bool, error) {
			n, more, err := sw.transfer.Prune(ledgerBefore, r.cfg.BatchSize)
			rep.TransferRecords += n
			m.RetentionDeleted.WithLabelValues("transfer_records").Add(float64(n))
			return more, err
		})
	}
	if err == nil && rep.JournalBefore != "" {
		err = step("journal days", func() (bool, error) {
			st, more, err := sw.journal.PruneDays(rep.JournalBefore, r.cfg.BatchSize)
			rep.JournalEntries += st.Entries
			m.RetentionDeleted.WithLabelValues("journal_entries").Add(float64(st.Entries))
			return more, err
		})
	}
	if err == nil {
		// A duplicate record carrying the ledger's transaction id is the
		// reference index of a POS request (docs/journal.md): it lives the
		// ledger's lookup window, counted in business days as the ledger
		// counts it — from the start of business day today − window − 1
		// in the clock's zone and cutover, a day more as the record is
		// timed by the clock, not dated by the business day (after a day
		// closed early, its next day's requests are timed before that
		// day's start) — and past it while the ledger would keep its own
		// reference (a pre-auth's open hold).
		ret := journal.ResponseRetention{
			Before:           rep.ResponsesBefore,
			ReferencesBefore: sw.clock.startOf(today.AddDays(-r.lookupDays - 1)).UTC(),
			Keep:             r.openBatch,
			KeepReference:    func(tx uint64) (bool, error) { return sw.ledger.ReferenceNeeded(tx, ledgerBefore) },
			OlderReference:   r.olderReference,
		}
		// The duplicate records are the ledger's reference index of POS
		// requests: the ledger answers none of them from memory while
		// they may go.
		sw.ledger.ForgetRecentReferences()
		err = step("stored responses", func() (bool, error) {
			st, more, err := sw.journal.PruneAnswered(ret, r.cfg.BatchSize)
			rep.Responses += st.Responses
			m.RetentionDeleted.WithLabelValues("responses").Add(float64(st.Responses))
			return more, err
		})
	}
	rep.Complete = err == nil && !r.stopped() && batches < maxRetentionBatches
	fields := []zap.Field{
		zap.String("business_date", rep.BusinessDate),
		zap.String("ledger_before", rep.LedgerBefore),
		zap.String("journal_before", rep.JournalBefore),
		zap.Time("responses_before", rep.ResponsesBefore),
		zap.Int("journal_entries", rep.JournalEntries),
		zap.Int("responses", rep.Responses),
		zap.Int("ledger_idempotency", rep.LedgerIdempotency),
		zap.Int("ledger_references", rep.LedgerReferences),
		zap.Int("ledger_rrns", rep.LedgerRRNs),
		zap.Int("ledger_tombstones", rep.LedgerTombstones),
		zap.Int("link_requests", rep.LinkRequests),
		zap.Int("transfer_records", rep.TransferRecords),
		zap.Bool("complete", rep.Complete),
		zap.Duration("took", time.Since(start)),
	}
	if err != nil {
		rep.Error = err.Error()
		m.RetentionRuns.WithLabelValues("error").Inc()
		sw.log.Error("retention run", append(fields, zap.Error(err))...)
		return rep, err
	}
	m.RetentionRuns.WithLabelValues("ok").Inc()
	m.RetentionLastSuccess.SetToCurrentTime()
	sw.log.Info("retention run", fields...)
	return rep, nil
}

func countPruned(m *Metrics, st ledger.PruneStats) {
	m.RetentionDeleted.WithLabelValues("ledger_idempotency").Add(float64(st.Idempotency))
	m.RetentionDeleted.WithLabelValues("ledger_references").Add(float64(st.References))
	m.RetentionDeleted.WithLabelValues("ledger_rrns").Add(float64(st.RRNs))
	m.RetentionDeleted.WithLabelValues("ledger_tombstones").Add(float64(st.Tombstones))
}

// openBatch reports whether batch is the current batch of terminal: its
// stored responses are kept whatever their age, because the terminal's
// trace watermark is rebuilt from them after a restart, and one missing
// its old trace numbers could take a very late retransmission for a new
// request (and let the ledger skip its idempotency read).
func (r *retention) openBatch(terminal, batch string) bool {
	t := r.sw.terminals.Get(terminal)
	return t != nil && batchString(t.Batch) == batch
}

// batchString is a batch number as field 60.2 carries it.
func batchString(b uint32) string { return fmt.Sprintf("%06d", b) }

// olderReference is the ledger's own reference record ('l r') of a POS
// terminal reference, as the journal's retention asks it: an original
// written before the switch kept POS references in its duplicate records
// has one (kept by the ledger while a pre-auth's hold is open), and a
// newer duplicate record of that reference must outlive it, or the
// reference would name the old original again (docs/journal.md#retention).
// One that does not decode keeps the records (1: older than every id).
func (r *retention) olderReference(terminal, batch, stan string) (uint64, error) {
	b, err1 := strconv.ParseUint(batch, 10, 32)
	s, err2 := strconv.ParseUint(stan, 10, 32)
	if err1 != nil || err2 != nil || len(batch) != 6 || len(stan) != 6 {
		return 0, nil // not a terminal reference (a reversal's MTI + STAN)
	}
	id, err := r.sw.ledger.OwnReference(ledger.TxnRef{Terminal: terminal, Batch: uint32(b), STAN: uint32(s)})
	if errors.Is(err, ledger.ErrCorrupt) {
		return 1, nil
	}
	return id, err
}
