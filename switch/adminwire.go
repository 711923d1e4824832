package switching

import (
	"context"
	"io"
	"net/http"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cardswitch/cardswitch/switch/admin"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"go.uber.org/zap"
)

// The admin API (switch/admin) asks the switch through one small
// interface per area; this file hands it the parts that answer them.

// adminAPI is the admin API of this switch, mounted under /api/.
func (sw *Switch) adminAPI() http.Handler {
	return admin.New(admin.Config{
		Token:             sw.cfg.HTTP.adminToken(),
		Log:               sw.log,
		Rejected:          sw.metrics.Rejected,
		PermissionChanges: sw.metrics.PermissionChanges,
		Metrics:           sw.metrics.Registry,
		RecentErrors:      sw.recentErrors,
		PendingRefundDays: sw.cfg.Recharge.PendingRefundDays,
		Status:            switchStatus{sw},
		Connections:       sw.pos,
		Merchants:         sw.ledger,
		Terminals:         terminalDesk{Registry: sw.terminals, register: sw.addTerminal},
		Cards:             sw.ledger,
		Keys:              sw.hsm,
		Journal:           sw.journal,
		Retention:         sw.retention,
		Day:               sw.days,
		Recon:             reconDesk{Book: sw.recon, cfg: sw.cfg.Recon, days: sw.days, log: sw.log},
		Settlement:        sw.recon,
		Links:             sw.links,
		Recharge:          sw.recharge.svc,
		Transfers:         sw.transfer,
	}).Handler()
}

// switchStatus answers GET /api/v1/status.
type switchStatus struct{ sw *Switch }

func (s switchStatus) Status() admin.StatusResponse {
	pos, gw, httpAddr := s.sw.Addrs()
	return admin.StatusResponse{
		POS:          pos,
		Gateway:      gw,
		HTTP:         httpAddr,
		Ready:        s.sw.ready() == nil,
		BusinessDate: s.sw.clock.Today().String(),
		JournalSeq:   s.sw.journal.LastSeq(),
	}
}

// terminalDesk is the terminal registry with the switch's checks on a new
// terminal (its merchant registered, its permitted types known).
type terminalDesk struct {
	*terminals.Registry
	register func(terminals.Spec) error
}

func (d terminalDesk) Register(t terminals.Spec) error { return d.register(t) }

// RunRetention runs the retention job now (POST /api/v1/retention/run).
func (r *retention) RunRetention() (any, error) { return r.run(r.sw.clock.now()) }

// Today is the current business date.
func (b *businessDays) Today() ledger.BusinessDate { return b.sw.clock.Today() }

// DayStatus answers GET /api/v1/day: the last n days.
func (b *businessDays) DayStatus(n int) (any, error) { return b.status(n) }

// CloseDay closes business day d by the operator.
func (b *businessDays) CloseDay(d ledger.BusinessDate, by string) (any, error) {
	return b.close(d, by)
}

// reconDesk is the reconciliation book with the configured counterparty
// layouts, counting imports and resolutions in the business day's metrics.
type reconDesk struct {
	*recon.Book
	cfg  ReconConfig
	days *businessDays
	log  *zap.Logger
}

func (d reconDesk) Export(ctx context.Context, w io.Writer, day ledger.BusinessDate, f recon.Filter) error {
	src := d.Source
	src.Context = ctx
	_, err := src.WriteCSV(w, day, f, nil)
	return err
}

func (d reconDesk) DayStatistics(ctx context.Context, day ledger.BusinessDate) (*recon.Statistics, error) {
	src := d.Source
	src.Context = ctx
	return src.DayStatistics(day)
}

func (d reconDesk) HasLayout(gateway string) bool {
	_, ok := d.cfg.Gateways[gateway]
	return ok
}

func (d reconDesk) Import(ctx context.Context, gw string, day ledger.BusinessDate, file io.Reader) (*recon.Report, error) {
	g := d.cfg.Gateways[gw]
	rep, err := d.Book.Import(ctx, gw, day, &g.Layout, g.AutoResolve, file, func(stage string, n int64) {
		d.log.Info("recon import progress", zap.String("gateway", gw), zap.String("stage", stage), zap.Int64("records", n))
	})
	if err != nil {
		d.days.imports.WithLabelValues("failed").Inc()
		return rep, err
	}
	d.days.imports.WithLabelValues("ok").Inc()
	d.days.found.WithLabelValues(recon.OursOnly).Add(float64(rep.OursOnly.Count))
	d.days.found.WithLabelValues(recon.TheirsOnly).Add(float64(rep.TheirsOnly.Count))
	d.days.found.WithLabelValues(recon.AmountDiffers).Add(float64(rep.AmountDiffers.Count))
	d.days.found.WithLabelValues(recon.StatusDiffers).Add(float64(rep.StatusDiffers.Count))
	for i := 0; i < rep.AutoResolved; i++ {
		d.days.resolutions.WithLabelValues("auto").Inc()
	}
	return rep, nil
}

func (d reconDesk) Resolve(id uint64, action, operator string) (recon.Discrepancy, error) {
	disc, err := d.Book.Resolve(id, action, operator)
	if err == nil {
		d.days.resolutions.WithLabelValues(action).Inc()
	}
	return disc, err
}
