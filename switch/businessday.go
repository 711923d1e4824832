package switching

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/admin"
	"path/filepath"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// BusinessDayConfig sets the business day (docs/reconciliation.md).
type BusinessDayConfig struct {
	// Cutover is the local time of day ("HH:MM") at which the next
	// business day starts and the previous one is closed and exported
	// ["23:00"]; "00:00" follows the calendar.
	Cutover string `yaml:"cutover"`
	// ReconDir is where closed days' export files are written, one
	// directory per business date [recon/ beside the data directory].
	ReconDir string `yaml:"recon_dir"`
}

// cutoverOf parses "HH:MM".
func (c BusinessDayConfig) cutoverOf() (time.Duration, error) {
	t, err := time.Parse("15:04", c.Cutover)
	if err != nil || len(c.Cutover) != 5 {
		return 0, fmt.Errorf("business_day.cutover %q: want HH:MM", c.Cutover)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func (c BusinessDayConfig) validate() error {
	_, err := c.cutoverOf()
	return err
}

// reconDir is the export directory.
func (cfg *Config) reconDir() string {
	if cfg.BusinessDay.ReconDir != "" {
		return cfg.BusinessDay.ReconDir
	}
	return filepath.Join(filepath.Dir(filepath.Clean(cfg.DataDir)), "recon")
}

// Keys of the business day records (prefix 'd', the switch's own).
var closedMarkKey = []byte("d/closed")

func dayKey(d ledger.BusinessDate) []byte { return fmt.Appendf([]byte("d/day/"), "%08d", uint32(d)) }

func readClosedMark(db *pebble.DB) (ledger.BusinessDate, error) {
	v, closer, err := db.Get(closedMarkKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read closed-day mark: %w", err)
	}
	defer closer.Close()
	var d uint32
	if _, err := fmt.Sscanf(string(v), "%08d", &d); err != nil || !ledger.BusinessDate(d).Valid() {
		return 0, fmt.Errorf("closed-day mark %q is damaged", v)
	}
	return ledger.BusinessDate(d), nil
}

// DayRecord is what the switch keeps about one closed business day.
type DayRecord struct {
	Date     string      `json:"business_date"`
	State    string      `json:"state"` // open or closed
	ClosedAt time.Time   `json:"closed_at,omitzero"`
	ClosedBy string      `json:"closed_by,omitempty"`
	Export   ExportState `json:"export"`
}

// ExportState is where a closed day's export stands.
type ExportState struct {
	State    string           `json:"state"` // none, running, done, failed
	Dir      string           `json:"dir,omitempty"`
	Rows     int64            `json:"rows"`
	Files    []recon.FileInfo `json:"files,omitempty"`
	Error    string           `json:"error,omitempty"`
	Finished time.Time        `json:"finished,omitzero"`
}

// DayStatus answers `switchctl day status`.
type DayStatus struct {
	BusinessDate string      `json:"business_date"`
	Cutover      string      `json:"cutover"`
	LastClosed   string      `json:"last_closed,omitempty"`
	InFlight     int         `json:"in_flight"`
	Days         []DayRecord `json:"days"`
}

// Export states.
const (
	exportRunning = "running"
	exportDone    = "done"
	exportFailed  = "failed"
)

// errDayNotOpen: closing a day that has not begun.
var errDayNotOpen = admin.ErrDayNotOpen

// closeDrainTimeout bounds how long a close waits for the exchanges still
// under way on the day.
const closeDrainTimeout = 30 * time.Second

// businessDays closes days and exports them.
type businessDays struct {
	sw  *Switch
	dir string

	mu      sync.Mutex // serialises closes and record updates
	exports sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
	stop    chan struct{}
	done    chan struct{}
	running bool // the loop was started (Start may fail before)

	closedTotal prometheus.Counter
	exportRuns  *prometheus.CounterVec // result
	lastClosed  prometheus.Gauge
	imports     *prometheus.CounterVec // result
	found       *prometheus.CounterVec // class
	resolutions *prometheus.CounterVec // action
}

func newBusinessDays(sw *Switch) *businessDays {
	ctx, cancel := context.WithCancel(context.Background())
	b := &businessDays{sw: sw, dir: sw.cfg.reconDir(), ctx: ctx, cancel: cancel,
		stop: make(chan struct{}), done: make(chan struct{}),
		closedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switch_business_days_closed_total",
			Help: "Business days closed (at cutover or by the operator).",
		}),
		exportRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switch_recon_exports_total",
			Help: "Exports of closed business days by result (ok, failed).",
		}, []string{"result"}),
		lastClosed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switch_business_day_last_closed",
			Help: "The last closed business date as the number YYYYMMDD.",
		}),
	}
	b.imports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switch_recon_imports_total",
		Help: "Imports of counterparty files by result (ok, failed).",
	}, []string{"result"})
	b.found = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switch_recon_discrepancies_total",
		Help: "Records imports classified as discrepancies, by class.",
	}, []string{"class"})
	b.resolutions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switch_recon_resolutions_total",
		Help: "Discrepancies resolved, by action (credit, refund, accept; auto for those resolved at import by a rule).",
	}, []string{"action"})
	for _, r := range []string{"ok", "failed"} {
		b.exportRuns.WithLabelValues(r)
		b.imports.WithLabelValues(r)
	}
	for _, c := range []string{recon.OursOnly, recon.TheirsOnly, recon.AmountDiffers, recon.StatusDiffers} {
		b.found.WithLabelValues(c)
	}
	for _, a := range []string{recon.ActionCredit, recon.ActionRefund, recon.ActionAccept, "auto"} {
		b.resolutions.WithLabelValues(a)
	}
	sw.metrics.Registry.MustRegister(b.closedTotal, b.exportRuns, b.lastClosed, b.imports, b.found, b.resolutions)
	return b
}

func (b *businessDays) record(d ledger.BusinessDate) (DayRecord, bool, error) {
	v, closer, err := b.sw.db.Get(dayKey(d))
	if errors.Is(err, pebble.ErrNotFound) {
		return DayRecord{Date: d.String(), State: "open", Export: ExportState{State: "none"}}, false, nil
	}
	if err != nil {
		return DayRecord{}, false, err
	}
	defer closer.Close()
	var r DayRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return DayRecord{}, false, fmt.Errorf("day record %s is damaged: %w", d, err)
	}
	return r, true, nil
}

func (b *businessDays) put(batch *pebble.Batch, r DayRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	d := ledger.BusinessDate(0)
	fmt.Sscanf(r.Date, "%08d", (*uint32)(&d))
	return batch.Set(dayKey(d), v, nil)
}

// start initialises the closed mark on a fresh data directory (yesterday:
// days before the switch existed are not closed one by one), finishes
// exports a stop interrupted, and starts the cutover loop.
func (b *businessDays) start() error {
	if err := b.initMark(); err != nil {
		return err
	}
	c := b.sw.clock
	// Exports left running or failed by an earlier run are done again:
	// an export only replaces whole files, so a rerun is safe.
	last := ledger.BusinessDate(c.closed.Load())
	for d, i := last, 0; i < 7; d, i = d.AddDays(-1), i+1 {
		r, ok, err := b.record(d)
		if err != nil {
			return err
		}
		if ok && r.Export.State != exportDone {
			b.exportAsync(d)
		}
	}
	b.running = true
	go b.loop()
	return nil
}

// initMark sets the closed mark of a fresh data directory to yesterday.
func (b *businessDays) initMark() error {
	c := b.sw.clock
	if c.closed.Load() == 0 {
		y := c.Today().AddDays(-1)
		if err := b.sw.db.Set(closedMarkKey, []byte(y.String()), pebble.Sync); err != nil {
			return fmt.Errorf("business day: %w", err)
		}
		c.closed.Store(uint32(y))
	}
	b.lastClosed.Set(float64(c.closed.Load()))
	return nil
}

// loop closes each day whose cutover has passed.
func (b *businessDays) loop() {
	defer close(b.done)
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		b.closeDue()
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

// closeDue closes, in order, every day before the one the clock shows.
func (b *businessDays) closeDue() {
	c := b.sw.clock
	now := c.dateOf(c.now())
	for {
		next := ledger.BusinessDate(c.closed.Load()).AddDays(1)
		if next >= now {
			return
		}
		if _, err := b.close(next, "cutover"); err != nil {
			b.sw.log.Error("business day close at cutover", zap.String("business_date", next.String()), zap.Error(err))
			return
		}
	}
}

// close closes business day d (and none after it): new exchanges get the
// next day at once, the close waits for those still under way on d, marks
// the day closed and starts its export.
func (b *businessDays) close(d ledger.BusinessDate, by string) (DayRecord, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.sw.clock
	if !d.Valid() {
		return DayRecord{}, ledger.ErrBadDate
	}
	if d > c.Today() {
		return DayRecord{}, fmt.Errorf("%w: %s (today is %s)", errDayNotOpen, d, c.Today())
	}
	last := ledger.BusinessDate(c.closed.Load())
	if d <= last {
		r, _, err := b.record(d)
		return r, err
	}
	if d != last.AddDays(1) {
		return DayRecord{}, fmt.Errorf("close %s: day %s is still open: close days in order", d, last.AddDays(1))
	}
	// From here Begin hands out d+1 or later.
	c.dayMu.Lock()
	c.closed.Store(uint32(d))
	c.dayMu.Unlock()
	deadline := time.Now().Add(closeDrainTimeout)
	for c.busy(d) > 0 {
		if time.Now().After(deadline) {
			b.sw.log.Warn("business day close: exchanges still under way", zap.String("business_date", d.String()), zap.Int("in_flight", c.busy(d)))
			break
		}
		time.Sleep(time.Millisecond)
	}
	r := DayRecord{Date: d.String(), State: "closed", ClosedAt: time.Now().UTC(), ClosedBy: by,
		Export: ExportState{State: exportRunning, Dir: filepath.Join(b.dir, d.String())}}
	batch := b.sw.db.NewBatch()
	defer batch.Close()
	if err := batch.Set(closedMarkKey, []byte(d.String()), nil); err != nil {
		return DayRecord{}, err
	}
	if err := b.put(batch, r); err != nil {
		return DayRecord{}, err
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return DayRecord{}, fmt.Errorf("close %s: %w", d, err)
	}
	b.closedTotal.Inc()
	b.lastClosed.Set(float64(d))
	b.sw.log.Info("business day closed", zap.String("business_date", d.String()), zap.String("by", by))
	b.exportAsync(d)
	return r, nil
}

// exportAsync writes the export files of a closed day in the background.
func (b *businessDays) exportAsync(d ledger.BusinessDate) {
	b.exports.Add(1)
	go func() {
		defer b.exports.Done()
		b.export(d)
	}()
}

// export writes the day's files and records the outcome.
func (b *businessDays) export(d ledger.BusinessDate) {
	start := time.Now()
	src := b.sw.recon.Source
	src.Context = b.ctx
	res, err := src.ExportDay(b.dir, d, func(n int64) {
		b.sw.log.Info("export progress", zap.String("business_date", d.String()), zap.Int64("rows", n))
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	r, _, rerr := b.record(d)
	if rerr != nil {
		b.sw.log.Error("export: day record", zap.Error(rerr))
		return
	}
	r.Export.Finished = time.Now().UTC()
	if err != nil {
		r.Export.State, r.Export.Error = exportFailed, err.Error()
		b.exportRuns.WithLabelValues("failed").Inc()
		b.sw.log.Error("business day export failed", zap.String("business_date", d.String()), zap.Error(err))
	} else {
		r.Export = ExportState{State: exportDone, Dir: res.Dir, Rows: res.Rows, Files: res.Files, Finished: r.Export.Finished}
		b.exportRuns.WithLabelValues("ok").Inc()
		b.sw.log.Info("business day exported", zap.String("business_date", d.String()),
			zap.Int64("rows", res.Rows), zap.Int("files", len(res.Files)), zap.Duration("took", time.Since(start)))
	}
	batch := b.sw.db.NewBatch()
	defer batch.Close()
	if err := b.put(batch, r); err == nil {
		err = batch.Commit(pebble.Sync)
		if err != nil {
			b.sw.log.Error("export: store day record", zap.Error(err))
		}
	}
}

// status lists the last n days.
func (b *businessDays) status(n int) (DayStatus, error) {
	c := b.sw.clock
	st := DayStatus{BusinessDate: c.Today().String(), Cutover: b.sw.cfg.BusinessDay.Cutover, InFlight: c.busy(c.Today())}
	if last := ledger.BusinessDate(c.closed.Load()); last != 0 {
		st.LastClosed = last.String()
	}
	for d, i := c.Today(), 0; i < n; d, i = d.AddDays(-1), i+1 {
		r, _, err := b.record(d)
		if err != nil {
			return st, err
		}
		st.Days = append(st.Days, r)
	}
	return st, nil
}

// shutdown stops the loop and interrupts running exports; they run again
// at the next start.
func (b *businessDays) shutdown() {
	close(b.stop)
	if b.running {
		<-b.done
	}
	b.cancel()
	b.exports.Wait()
}
