package switching

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/switch/links"
	"github.com/cardswitch/cardswitch/switch/recharge"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ReloadReport says what a reload applied and what it could not.
type ReloadReport struct {
	// Routes is true when the route table now differs from the one the
	// switch started with.
	Routes bool
	// Merchants and Terminals are those of seed the switch did not have
	// and now has.
	Merchants, Terminals []string
	// Links says which gateway links were added, removed, restarted and
	// left as they were.
	Links links.ReloadReport
	// LogLevel is the log level now in force, when the reload set it.
	LogLevel string
	// Applied is false when the reload was refused and changed nothing.
	Applied bool
	// NeedRestart names the changed keys a reload does not apply.
	NeedRestart []string
}

// Reload applies a changed configuration to the running switch without
// touching the connections it keeps (SIGHUP, docs/operations.md
// "Reloading"): the gateway links are added, removed or restarted as the
// new gateways: says, the others keeping their connections
// (docs/gateway-links.md "Reloading links"); the route table is replaced
// whole; merchants and terminals of seed that the switch does not have yet
// are added (existing ones are managed with switchctl and left as they
// are); and log.level takes effect when the switch was given its level
// (SetLogLevel). Other changed keys need a restart: they are named in the
// report and the log, and not applied. A configuration that does not
// validate, whose routes name an unknown destination, or that removes a
// link still holding work or cards bound to it, changes nothing.
func (sw *Switch) Reload(cfg *Config) (ReloadReport, error) {
	var rep ReloadReport
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("config: %w", err)
	}
	linkNames, err := sw.links.Plan(cfg.Gateways)
	if err != nil {
		return rep, fmt.Errorf("gateways: %w", err)
	}
	var names []string
	for _, d := range sw.fixedDests {
		names = append(names, d.Name())
	}
	routes, err := routing.New(routing.Config{Routes: cfg.Routes}, append(names, linkNames...))
	if err != nil {
		return rep, fmt.Errorf("routes: %w", err)
	}
	// A first look at the bindings refuses early, before any link is
	// drained; the check that counts is made again under bindGate as the
	// link set changes (holdRemovalUnbound).
	if err := sw.checkRemovedLinksUnbound(linkNames); err != nil {
		return rep, err
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
	level, err := sw.checkLogLevel(cfg.Log)
	if err != nil {
		return rep, err
	}
	// Links: a new link's seeded ZMK first, so that its first sign-on
	// can exchange keys. A link that may not be removed refuses the whole
	// reload.
	if err := sw.loadSeedZMKs(cfg); err != nil {
		return rep, err
	}
	var errs []error
	rep.Links, err = sw.links.ApplyChecked(cfg.Gateways, sw.holdRemovalUnbound)
	if err != nil {
		if errors.Is(err, ErrLinkBound) {
			return rep, err
		}
		if !rep.Links.Changed() {
			return rep, fmt.Errorf("gateways: %w", err)
		}
		errs = append(errs, fmt.Errorf("gateways: %w", err))
	}
	rep.Applied = true
	if rep.Links.Changed() {
		dests, err := sw.registry()
		if err != nil {
			return rep, fmt.Errorf("destinations: %w", err)
		}
		sw.destinations.Store(dests)
	}
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
	if sw.level != nil {
		sw.level.SetLevel(level)
		rep.LogLevel = level.String()
	}

	rep.NeedRestart = restartKeys(sw.cfg, cfg, sw.level != nil)
	sw.log.Info("configuration reloaded", zap.Bool("routes_replaced", rep.Routes),
		zap.Strings("merchants_added", rep.Merchants), zap.Strings("terminals_added", rep.Terminals),
		zap.Strings("links_added", rep.Links.Added), zap.Strings("links_removed", rep.Links.Removed),
		zap.Strings("links_restarted", rep.Links.Restarted), zap.String("log_level", rep.LogLevel))
	if len(rep.NeedRestart) > 0 {
		sw.log.Warn("configuration keys changed that a reload does not apply; restart to apply them", zap.Strings("keys", rep.NeedRestart))
	}
	return rep, errors.Join(errs...)
}

// ErrLinkBound: a reload would remove a gateway link that cards are
// bound to for bank-transfer loads (docs/gateway-links.md "Reloading
// links").
var ErrLinkBound = errors.New("gateway link has cards bound to it")

// maxBoundNamed is how many bound cards a refused reload names per link.
const maxBoundNamed = 5

// checkRemovedLinksUnbound refuses the removal of a link that cards are
// bound to: their transfer loads would go to a link that no longer
// exists. A binding is the cardholder's agreement, so a reload never
// drops it; the operator unbinds the cards, or keeps the link.
func (sw *Switch) checkRemovedLinksUnbound(keep []string) error {
	if sw.links == nil || sw.recharge == nil {
		return nil
	}
	var removed []string
	for _, n := range sw.links.Names() {
		if !slices.Contains(keep, n) {
			removed = append(removed, n)
		}
	}
	return sw.checkUnbound(removed, keep, false)
}

// holdRemovalUnbound is the reload's links.RemovalCheck: it takes
// bindGate exclusively, so that no binding is between its check of the
// link and its commit, checks that no card is bound to the links
// removed, and holds bindGate until the link set has changed (release).
// A binding to a removed link then either committed before the check,
// which refuses the reload, or finds the link gone.
func (sw *Switch) holdRemovalUnbound(removed, kept []string) (release func(), err error) {
	if h := sw.reloadHooks.removalCheck; h != nil {
		h()
	}
	sw.bindGate.Lock()
	if err := sw.checkUnbound(removed, kept, true); err != nil {
		sw.bindGate.Unlock()
		return nil, err
	}
	return sw.bindGate.Unlock, nil
}

// checkUnbound refuses the removal of links cards are bound to, or that
// a damaged binding record may name (its gateway cannot be read, or is no
// link of kept). A damaged record whose readable gateway is a link of
// kept cannot name a removed one: it does not hold the reload up; when
// count is set (the check that counts, not the early look), each is
// logged, masked, and counted in switch_binding_damaged_records_total.
func (sw *Switch) checkUnbound(removed, kept []string, count bool) error {
	if sw.recharge == nil {
		return nil
	}
	found, err := sw.recharge.svc.BindingsTo(removed, kept, maxBoundNamed)
	if err != nil {
		return fmt.Errorf("gateways: bindings: %w", err)
	}
	if count && found.Skipped > 0 {
		sw.metrics.DamagedBindings.Add(float64(found.Skipped))
		for _, d := range found.SkippedFirst {
			sw.log.Warn("damaged binding record skipped by the reload's check of the links it removes",
				zap.String("card", d.Card), zap.String("gateway", d.Gateway))
		}
		if more := found.Skipped - len(found.SkippedFirst); more > 0 {
			sw.log.Warn("more damaged binding records skipped by the reload's check", zap.Int("count", more))
		}
	}
	var errs []error
	for _, b := range found.Bound {
		what := boundToLink(b, "may name")
		unbind := ""
		if b.Damaged > 0 {
			unbind = ", which removes the damaged records that may name it too"
		}
		errs = append(errs, fmt.Errorf("gateway %s cannot be removed: %s; keep the link, or unbind them first: `switchctl gateways unbind %s`%s",
			b.Gateway, strings.Join(what, " and "), b.Gateway, unbind))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: the gateway links were not changed: %w", ErrLinkBound, errors.Join(errs...))
	}
	return nil
}

// checkBindingsConfigured refuses to start while cards are bound to a
// gateway the configuration does not name — a link removed from the
// file while cards were bound to it (a reload refuses that; the edited
// file stays for the next start): their transfer loads would go to a
// link that does not exist. Unbinding needs a running switch, so the way
// out is to put the link back, start, unbind, then remove it
// (docs/gateway-links.md "Removing a link"). A binding record that does
// not decode carries no transfer load, whatever gateway its bytes name:
// it does not hold the start up (the name it reads may be no link that
// ever was, which no entry put back would match); it is logged, masked,
// and counted in switch_binding_damaged_records_total, for `switchctl
// card unbind` to remove.
func (sw *Switch) checkBindingsConfigured() error {
	if sw.recharge == nil {
		return nil
	}
	var configured []string
	if sw.links != nil {
		configured = sw.links.Names()
	}
	found, err := sw.recharge.svc.BindingsOutside(configured, maxBoundNamed)
	if err != nil {
		return fmt.Errorf("gateway links: bindings: %w", err)
	}
	var errs []error
	logged, unlogged := 0, 0 // damaged records logged one by one, and not
	for _, b := range found {
		if b.Count == 0 {
			// Damaged names are often all different: the first
			// maxBoundNamed records are logged whatever the name, the
			// rest counted in one line.
			sw.metrics.DamagedBindings.Add(float64(b.Damaged))
			for _, card := range b.DamagedCards {
				if logged == maxBoundNamed {
					break
				}
				sw.log.Warn("damaged binding record names a gateway that is not configured: it carries no transfer load; remove it with `switchctl card unbind`",
					zap.String("card", card), zap.String("gateway", b.Gateway))
				logged++
			}
			unlogged += b.Damaged
			continue
		}
		what := boundToLink(b, "name")
		errs = append(errs, fmt.Errorf("gateway %s is no longer configured but %s: put its entry back under gateways: "+
			"and start the switch, unbind them with `switchctl gateways unbind %s`, then remove the entry and reload",
			b.Gateway, strings.Join(what, " and "), b.Gateway))
	}
	if more := unlogged - logged; more > 0 {
		sw.log.Warn("more damaged binding records name a gateway that is not configured", zap.Int("count", more))
	}
	if len(errs) > 0 {
		return fmt.Errorf("gateway links: %w", errors.Join(errs...))
	}
	return nil
}

// boundToLink says what holds a link: the cards bound to it and the
// damaged binding records that name it (naming says how sure that is),
// cards masked as BindingsTo and BindingsOutside give them.
func boundToLink(b recharge.GatewayBindings, naming string) (what []string) {
	if b.Count > 0 {
		what = append(what, fmt.Sprintf("%d cards are bound to it for bank-transfer loads (%s%s)",
			b.Count, strings.Join(b.Cards, ", "), andMore(b.Count, len(b.Cards))))
	}
	if b.Damaged > 0 {
		what = append(what, fmt.Sprintf("%d binding records that do not decode %s it (cards %s%s)",
			b.Damaged, naming, strings.Join(b.DamagedCards, ", "), andMore(b.Damaged, len(b.DamagedCards))))
	}
	return what
}

func andMore(n, named int) string {
	if n > named {
		return fmt.Sprintf(" and %d more", n-named)
	}
	return ""
}

// SetLogLevel gives the switch the level of its logger, so that a reload
// applies log.level (cmd/switchd does; NewLoggerLevel).
func (sw *Switch) SetLogLevel(l zap.AtomicLevel) { sw.level = &l }

// checkLogLevel parses log.level.
func (sw *Switch) checkLogLevel(c LogConfig) (zapcore.Level, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return level, fmt.Errorf("log.level %q: %w", c.Level, err)
	}
	return level, nil
}

// restartKeys names the top-level sections that differ between old and
// new, but those a reload applies (routes, seed, gateways, and log.level
// when levelApplied).
func restartKeys(old, cfg *Config, levelApplied bool) []string {
	var keys []string
	ov, nv := reflect.ValueOf(*old), reflect.ValueOf(*cfg)
	t := ov.Type()
	for i := 0; i < t.NumField(); i++ {
		name := yamlName(t.Field(i))
		if name == "" || name == "routes" || name == "seed" || name == "gateways" {
			continue
		}
		if name == "log" && levelApplied {
			if old.Log.Format != cfg.Log.Format {
				keys = append(keys, "log.format")
			}
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
