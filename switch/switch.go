// Package switching assembles the cardswitch daemon: it opens storage and
// the HSM, builds the route table and the destinations, hands the POS and
// gateway acceptors (switch/transport) their protocols — the POS flow here,
// switch/gateway for the gateway port — and the admin API (switch/admin)
// its parts, and serves metrics and health (docs/architecture.md).
//
// The folder is switch/; the package cannot be named switch (a keyword).
package switching

import (
	"context"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/switch/admin"
	"github.com/cardswitch/cardswitch/switch/links"
	"github.com/cardswitch/cardswitch/switch/transfer"
	"github.com/cardswitch/cardswitch/switch/transport"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Switch is one running switchd.
type Switch struct {
	cfg     *Config
	log     *zap.Logger
	metrics *Metrics

	db      *pebble.DB
	hsm     *hsm.HSM
	ledger  *ledger.Ledger
	journal *journal.Journal
	// routes is swapped whole by a reload (reload.go).
	routes atomic.Pointer[routing.Table]
	// destinations holds what each route's destination name stands for;
	// a reload that adds or removes a gateway link swaps it (reload.go),
	// rebuilt from fixedDests (the local ledger and test probes) and the
	// links.
	destinations atomic.Pointer[txn.Registry]
	fixedDests   []txn.Destination
	terminals    *terminals.Registry
	clock        *businessClock
	retention    *retention
	days         *businessDays
	recon        *recon.Book
	// links are the outbound gateway links (switch/links).
	links    *links.Manager
	recharge *rechargeFront
	// bindGate keeps the set of gateway links and the cards' bindings to
	// them consistent: a binding holds it shared from its check that its
	// link is in force until its commit; a reload that removes links
	// holds it exclusively from its check that no card is bound to them
	// until the link set has changed (reload.go).
	bindGate sync.RWMutex
	// reloadHooks are called, when set, by tests: linkChecked after a
	// binding found its link in force, removalCheck before a reload takes
	// bindGate to check the links it removes.
	reloadHooks struct {
		linkChecked  func(name string)
		removalCheck func()
	}
	// transfer serves bank-transfer loads at kiosks (switch/transfer).
	transfer *transfer.Service

	pos     *transport.Acceptor
	gateway *transport.Acceptor
	httpLn  net.Listener
	httpSrv *http.Server

	// recentErrors keeps the last warnings and errors logged, masked, for
	// the console (switch/admin).
	recentErrors *admin.ErrorRing

	// level is the logger's level, applied by a reload (SetLogLevel).
	level *zap.AtomicLevel

	started atomic.Bool
	stopped atomic.Bool
}

// New opens storage and builds the switch; Start makes it listen.
func New(cfg *Config, log *zap.Logger) (*Switch, error) {
	return newSwitch(cfg, log, nil)
}

// newSwitch is New with destinations registered besides the local ledger
// (tests plug probes into the seam with it).
func newSwitch(cfg *Config, log *zap.Logger, extra []txn.Destination) (*Switch, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	ring := admin.NewErrorRing()
	log = log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, ring.Core()) }))
	sw := &Switch{cfg: cfg, log: log, metrics: NewMetrics(), recentErrors: ring}
	if cfg.HTTP.shortDemoToken() {
		log.Warn("DEMO ADMIN TOKEN: the admin API accepts a short, public token; allowed only in the demo configuration on a loopback address, never in production (docs/security.md)",
			zap.Int("token_length", len(cfg.HTTP.adminToken())), zap.Int("minimum", MinAdminTokenLen))
	}
	// A busy port names its key before anything is created or seeded.
	if err := CheckListeners(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lmk, err := loadLMK(cfg, log)
	if err != nil {
		return nil, err
	}
	defer lmk.Zero()
	db, err := pebble.Open(cfg.DataDir, pebbleOptions(log))
	if err != nil {
		return nil, describeOpenError(cfg.DataDir, err)
	}
	sw.db = db
	sw.metrics.Registry.MustRegister(newStorageCollector(db, cfg.DataDir))
	if err := sw.openServices(lmk, extra); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := sw.openRecharge(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := sw.openTransfer(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if sw.retention, err = newRetention(sw, cfg.Retention); err != nil {
		_ = db.Close()
		return nil, err
	}
	sw.days = newBusinessDays(sw)
	linkRecs, err := journal.OpenLinks(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	sw.recon = &recon.Book{DB: sw.db, Journal: sw.journal, Ledger: sw.ledger, Today: sw.clock.Today, Begin: sw.clock.Begin, End: sw.clock.End,
		Source: recon.Source{Journal: sw.journal, Books: sw.db, Location: sw.clock.loc, Links: linkRecs}}
	posProto, err := sw.posProtocol()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	sw.pos = transport.New("pos", cfg.POS.transport(), posProto, log, sw.metrics.transport())
	sw.gateway = transport.New("gateway", cfg.Gateway.transport(), sw.gatewayProtocol(), log, sw.metrics.transport())
	sw.gateway.SetSourceAllowed(sw.admitGateway)
	return sw, nil
}

// Start binds the POS, gateway and HTTP listeners and starts serving.
func (sw *Switch) Start() error {
	if !sw.started.CompareAndSwap(false, true) {
		return errors.New("switch already started")
	}
	// Reversals of requests a crash left unanswered are queued before
	// any new traffic; the links connect once the acceptors listen.
	// Cards bound to a link no longer configured refuse the start first.
	if err := sw.checkBindingsConfigured(); err != nil {
		return err
	}
	if err := sw.links.Recover(); err != nil {
		return fmt.Errorf("gateway links: %w", err)
	}
	if err := sw.pos.Listen(); err != nil {
		return listenError("pos.addr", sw.cfg.POS.Addr, err)
	}
	if err := sw.gateway.Listen(); err != nil {
		_ = sw.pos.Close()
		return listenError("gateway.addr", sw.cfg.Gateway.Addr, err)
	}
	ln, err := net.Listen("tcp", sw.cfg.HTTP.Addr)
	if err != nil {
		_ = sw.pos.Close()
		_ = sw.gateway.Close()
		return listenError("http.addr", sw.cfg.HTTP.Addr, err)
	}
	sw.httpLn = ln
	if err := sw.startRecharge(); err != nil {
		_ = sw.pos.Close()
		_ = sw.gateway.Close()
		_ = ln.Close()
		return err
	}
	sw.httpSrv = &http.Server{
		Handler:           sw.httpHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	if err := sw.links.Connect(); err != nil {
		_ = sw.pos.Close()
		_ = sw.gateway.Close()
		_ = ln.Close()
		return fmt.Errorf("gateway links: %w", err)
	}
	go sw.pos.Serve()
	go sw.gateway.Serve()
	sw.retention.start()
	if err := sw.days.start(); err != nil {
		sw.log.Error("business day", zap.Error(err))
	}
	go func() {
		if err := sw.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			sw.log.Error("HTTP server stopped", zap.Error(err))
		}
	}()
	sw.log.Info("switch listening",
		zap.String("pos", sw.pos.Addr()),
		zap.String("gateway", sw.gateway.Addr()),
		zap.String("http", ln.Addr().String()),
		zap.String("data_dir", sw.cfg.DataDir))
	return nil
}

// Addrs returns the bound POS, gateway and HTTP addresses.
func (sw *Switch) Addrs() (pos, gateway, httpAddr string) {
	return sw.pos.Addr(), sw.gateway.Addr(), sw.httpLn.Addr().String()
}

// ready reports whether storage is open and the acceptors are listening.
func (sw *Switch) ready() error {
	if sw.stopped.Load() {
		return errors.New("shutting down")
	}
	if !sw.started.Load() || !sw.pos.Listening() || !sw.gateway.Listening() {
		return errors.New("acceptors not listening")
	}
	_, closer, err := sw.db.Get([]byte{'d', 0})
	if err == nil {
		_ = closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// Shutdown stops accepting, lets in-flight messages finish (until ctx
// ends), stops HTTP, and closes storage. It is safe to call once.
func (sw *Switch) Shutdown(ctx context.Context) error {
	if !sw.stopped.CompareAndSwap(false, true) {
		return errors.New("switch already stopped")
	}
	var errs []error
	if sw.started.Load() {
		errs = append(errs, sw.pos.Shutdown(ctx), sw.gateway.Shutdown(ctx))
		if sw.httpSrv != nil {
			errs = append(errs, sw.httpSrv.Shutdown(ctx))
		}
		errs = append(errs, sw.stopRecharge(ctx))
		// After HTTP: no admin request can start a run any more.
		sw.retention.shutdown()
		sw.days.shutdown()
		sw.links.Close()
	}
	if err := sw.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close storage: %w", err))
	}
	sw.log.Info("switch stopped")
	return errors.Join(errs...)
}
