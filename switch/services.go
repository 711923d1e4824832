package switching

import (
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"os"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/local"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// loadLMK reads the local master key from its file or environment
// variable, creating a demo key when the configuration asks for one. The
// LMK file may not live in the data directory, nor be readable by anyone
// but the daemon's user.
func loadLMK(cfg *Config, log *zap.Logger) (hsm.LMK, error) {
	if cfg.LMK.Env != "" {
		return hsm.LoadLMKEnv(cfg.LMK.Env)
	}
	if err := hsm.CheckLMKPath(cfg.LMK.File, cfg.DataDir); err != nil {
		return hsm.LMK{}, fmt.Errorf("LMK: %w", err)
	}
	if cfg.LMK.CreateDemo {
		if _, err := os.Stat(cfg.LMK.File); errors.Is(err, os.ErrNotExist) {
			lmk, err := hsm.CreateDemoLMK(cfg.LMK.File)
			if err != nil {
				return hsm.LMK{}, err
			}
			log.Warn("created a DEMO local master key; never use it for real cards",
				zap.String("file", cfg.LMK.File), zap.String("lmk_check", lmk.CheckValue()))
			return lmk, nil
		}
	}
	return hsm.LoadLMKFile(cfg.LMK.File)
}

// openServices opens the HSM, ledger, journal, routes and terminal
// registry on the shared Pebble instance and seeds a fresh one.
func (sw *Switch) openServices(lmk hsm.LMK, extra []txn.Destination) error {
	var err error
	m := sw.metrics
	// Every POS transaction verifies and makes a MAC: the HSM asks for
	// each operation's and result's counter once.
	sw.hsm, err = hsm.Open(sw.db, lmk, hsm.Options{
		Logger: sw.log.Named("hsm"),
		Counter: func(op, result string) func() {
			return m.HSMOperations.WithLabelValues(op, result).Inc
		},
	})
	if err != nil {
		return fmt.Errorf("open HSM key store: %w", err)
	}
	if _, _, err := sw.hsm.EnsureCampusPVK(); err != nil {
		return fmt.Errorf("campus PVK: %w", err)
	}
	lopts := sw.cfg.Ledger.options()
	// Admin postings (open, close, replace card) carry the business date.
	lopts.Today = func() ledger.BusinessDate { return sw.clock.Today() }
	// and hold it open until committed, like an exchange: a day close
	// waits for them (docs/reconciliation.md).
	lopts.Begin = func() ledger.BusinessDate { return sw.clock.Begin() }
	lopts.End = func(d ledger.BusinessDate) { sw.clock.End(d) }
	sw.ledger, err = ledger.Open(sw.db, lopts)
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	jopts := rrnJournalOptions(sw.db)
	jopts.OnAppend = m.JournalWrites.Inc
	jopts.OnDamagedRecord = sw.damagedRecord
	sw.journal, err = journal.Open(sw.db, jopts)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	// The duplicate records of POS requests are the ledger's reference
	// index for them (docs/journal.md#what-one-consume-writes).
	sw.ledger.UseReferences(ledger.DigitReferences(sw.journal))
	if err := sw.openLinks(); err != nil {
		return fmt.Errorf("gateway links: %w", err)
	}
	sw.fixedDests = append([]txn.Destination{local.New(sw.ledger, sw.hsm, sw.log, local.JournalOriginals(sw.journal))}, extra...)
	dests, err := sw.registry()
	if err != nil {
		return fmt.Errorf("destinations: %w", err)
	}
	sw.destinations.Store(dests)
	routes, err := routing.New(routing.Config{Routes: sw.cfg.Routes}, dests.Names())
	sw.routes.Store(routes)
	if err != nil {
		return fmt.Errorf("route table: %w", err)
	}
	sw.terminals, err = terminals.Open(sw.db)
	if err != nil {
		return fmt.Errorf("terminal registry: %w", err)
	}
	if ids, n := sw.terminals.KiosksWithout(spec.TransferLoad, 20); n > 0 {
		// Kiosks registered before transfer loads existed: their loads
		// are answered 58 until an operator permits them (docs/recharge.md).
		sw.log.Info("kiosks not permitted transfer_load: their transfer loads are answered 58; `switchctl terminal permit TERMINAL --type transfer_load` permits them",
			zap.Int("kiosks", n), zap.Strings("first", ids))
	}
	cutover, err := sw.cfg.BusinessDay.cutoverOf()
	if err != nil {
		return err
	}
	sw.clock, err = openBusinessClock(sw.db, sw.journal, sw.cfg.TimeZone, cutover)
	if err != nil {
		return fmt.Errorf("business clock: %w", err)
	}
	return sw.seed()
}

// seededKey marks a data directory whose seed data was loaded.
var seededKey = []byte("d/seeded")

// seed loads the configured merchants, terminals and cards on the first
// start. Every step is idempotent, so a crash half-way is finished by the
// next start; the marker is written last.
func (sw *Switch) seed() error {
	_, closer, err := sw.db.Get(seededKey)
	if err == nil {
		return closer.Close()
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	s := sw.cfg.Seed
	for _, m := range s.Merchants {
		if err := sw.ledger.AddMerchant(m); err != nil && !errors.Is(err, ledger.ErrMerchantExists) {
			return fmt.Errorf("seed merchant %s: %w", m.ID, err)
		}
	}
	for _, t := range s.Terminals {
		if err := sw.addTerminal(t); err != nil && !errors.Is(err, terminals.ErrExists) {
			return fmt.Errorf("seed terminal %s: %w", t.ID, err)
		}
	}
	for _, c := range s.Cards {
		pvv, err := sw.hsm.PINVerificationValue(c.PAN, c.PIN)
		if err != nil {
			return fmt.Errorf("seed card %s: PIN verification value: %w", cardno.Mask(c.PAN), err)
		}
		if err := sw.ledger.OpenCard(c.CardSpec, []byte(pvv)); err != nil && !errors.Is(err, ledger.ErrCardExists) {
			return fmt.Errorf("seed card %s: %w", cardno.Mask(c.PAN), err)
		}
	}
	if len(s.Merchants)+len(s.Terminals)+len(s.Cards) > 0 {
		sw.log.Info("seed data loaded", zap.Int("merchants", len(s.Merchants)),
			zap.Int("terminals", len(s.Terminals)), zap.Int("cards", len(s.Cards)))
	}
	return sw.db.Set(seededKey, []byte{1}, pebble.Sync)
}

// addTerminal registers a terminal and, when the spec carries one, loads
// its clear TMK into the HSM (demo and tests).
func (sw *Switch) addTerminal(t terminals.Spec) error {
	if err := terminals.ValidIDs(t.ID, t.Merchant); err != nil {
		return err
	}
	if _, ok := sw.ledger.Merchant(t.Merchant); !ok {
		return fmt.Errorf("terminal %s: merchant %s is not registered", t.ID, t.Merchant)
	}
	perm, err := terminals.PermittedSet(t.Permitted, t.MayLoad)
	if err != nil {
		return fmt.Errorf("terminal %s: %w", t.ID, err)
	}
	if t.TMK != "" {
		clear, err := decodeHexKey(t.TMK)
		if err != nil {
			return fmt.Errorf("terminal %s TMK: %w", t.ID, err)
		}
		switch t.TMKAlgorithm {
		case "", "tdes":
			_, err = sw.hsm.LoadClearKey(hsm.TerminalKeyLabel(t.ID, hsm.TMK), hsm.TMK, clear)
		case "sm4":
			_, err = sw.hsm.LoadClearKeyAlg(hsm.TerminalKeyLabel(t.ID, hsm.TMK), hsm.TMK, hsm.SM4, clear)
		default:
			err = fmt.Errorf("tmk_algorithm %q: want tdes or sm4", t.TMKAlgorithm)
		}
		clearBytes(clear)
		if err != nil {
			return fmt.Errorf("terminal %s TMK: %w", t.ID, err)
		}
	}
	if err := terminals.CheckSourceNetwork(t.LegacySignOn, t.SourceNetwork); err != nil {
		return fmt.Errorf("terminal %s: %w", t.ID, err)
	}
	return sw.terminals.Add(&terminals.Terminal{ID: t.ID, Merchant: t.Merchant, MayLoad: t.MayLoad, Permitted: perm,
		LegacySignOn: t.LegacySignOn, SourceNetwork: t.SourceNetwork})
}

// decodeHexKey parses a clear key given in hex (demo and test seeds only).
func decodeHexKey(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("key is not hex")
	}
	switch len(b) {
	case 8, 16, 24, 32:
		return b, nil
	}
	clearBytes(b)
	return nil, fmt.Errorf("key of %d bytes: want 8, 16, 24 or 32", len(b))
}

// clearBytes zeroes key material once it has been handed to the HSM.
func clearBytes(b []byte) { clear(b) }

// damagedRecord reports a duplicate record that does not decode, met by a
// reference lookup (docs/journal.md#damaged-duplicate-records): its key's
// terminal, batch, STAN and date, never its bytes (they hold the response
// as sent). A single reference's lookup fails (its void or reversal is
// declined); a batch walk (settlement totals, the export) skips it.
func (sw *Switch) damagedRecord(d journal.DamagedRecord) {
	sw.metrics.DamagedRecords.WithLabelValues(d.Lookup).Inc()
	sw.log.Warn("damaged duplicate record", zap.String("terminal", d.Terminal), zap.String("batch", d.Batch),
		zap.String("stan", d.STAN), zap.String("date", d.Date), zap.String("lookup", d.Lookup), zap.Error(d.Err))
}
