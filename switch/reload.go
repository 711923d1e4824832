package switching

import (
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"go.uber.org/zap"
)

// ReloadReport says what a reload applied and what it could not.
type ReloadReport struct {
	// Routes is true when the route table now differs from the one the
	// switch started with.
	Routes bool
	// Merchants and Terminals are those of seed the switch did not have
	// and now has.
	Merchants, Terminals []string
	// NeedRestart names the changed keys a reload does not apply.
	NeedRestart []string
}

// Reload applies a changed configuration to the running switch without
// touching its connections (SIGHUP, docs/operations.md "Reloading"): the
// route table is replaced whole, and merchants and terminals of seed that
// the switch does not have yet are added (existing ones are managed with
// switchctl and left as they are). Other changed keys need a restart:
// they are named in the report and the log, and not applied. A
// configuration that does not validate, or whose routes name an unknown
// destination, changes nothing.
func (sw *Switch) Reload(cfg *Config) (ReloadReport, error) {
	var rep ReloadReport
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("config: %w", err)
	}
	routes, err := routing.New(routing.Config{Routes: cfg.Routes}, sw.destinations.Names())
	if err != nil {
		return rep, fmt.Errorf("routes: %w", err)
	}
	// Check the new seed entries before adding any.
	var newMerchants []ledger.MerchantSpec
	known := map[string]bool{}
	for _, m := range cfg.Seed.Merchants {
		if _, ok := sw.ledger.Merchant(m.ID); !ok {
			newMerchants = append(newMerchants, m)
		}
		known[m.ID] = true
	}
	var newTerminals []terminals.Spec
	for _, t := range cfg.Seed.Terminals {
		if sw.terminals.Get(t.ID) != nil {
			continue
		}
		if _, ok := sw.ledger.Merchant(t.Merchant); !ok && !known[t.Merchant] {
			return rep, fmt.Errorf("seed.terminals %s: merchant %s is neither registered nor in seed.merchants", t.ID, t.Merchant)
		}
		if err := terminals.ValidIDs(t.ID, t.Merchant); err != nil {
			return rep, fmt.Errorf("seed.terminals %s: %w", t.ID, err)
		}
		newTerminals = append(newTerminals, t)
	}
	var errs []error
	for _, m := range newMerchants {
		if err := sw.ledger.AddMerchant(m); err != nil && !errors.Is(err, ledger.ErrMerchantExists) {
			errs = append(errs, fmt.Errorf("seed.merchants %s: %w", m.ID, err))
			continue
		}
		rep.Merchants = append(rep.Merchants, m.ID)
	}
	for _, t := range newTerminals {
		if err := sw.addTerminal(t); err != nil && !errors.Is(err, terminals.ErrExists) {
			errs = append(errs, fmt.Errorf("seed.terminals %s: %w", t.ID, err))
			continue
		}
		rep.Terminals = append(rep.Terminals, t.ID)
	}
	sw.routes.Store(routes)
	rep.Routes = !reflect.DeepEqual(cfg.Routes, sw.cfg.Routes) // differs from the start's

	rep.NeedRestart = restartKeys(sw.cfg, cfg)
	sw.log.Info("configuration reloaded", zap.Bool("routes_replaced", rep.Routes),
		zap.Strings("merchants_added", rep.Merchants), zap.Strings("terminals_added", rep.Terminals))
	if len(rep.NeedRestart) > 0 {
		sw.log.Warn("configuration keys changed that a reload does not apply; restart to apply them", zap.Strings("keys", rep.NeedRestart))
	}
	return rep, errors.Join(errs...)
}

// restartKeys names the top-level sections that differ between old and
// new, but those a reload applies (routes, seed).
func restartKeys(old, cfg *Config) []string {
	var keys []string
	ov, nv := reflect.ValueOf(*old), reflect.ValueOf(*cfg)
	t := ov.Type()
	for i := 0; i < t.NumField(); i++ {
		name := yamlName(t.Field(i))
		if name == "" || name == "routes" || name == "seed" {
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	return keys
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("yaml")
	name, _, _ := cutComma(tag)
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func cutComma(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
