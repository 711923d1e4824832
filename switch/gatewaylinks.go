package switching

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/switch/links"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// validateGateways checks the gateways: and saf: sections
// (docs/gateway-links.md).
func (c *Config) validateGateways() error {
	var errs []error
	if len(c.Gateways) > links.MaxLinks {
		errs = append(errs, fmt.Errorf("gateways: %d configured, at most %d", len(c.Gateways), links.MaxLinks))
	}
	seen := map[string]bool{}
	for _, g := range c.Gateways {
		g = g.WithDefaults()
		if err := g.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("gateway %s configured twice", g.Name))
		}
		seen[g.Name] = true
	}
	if err := c.SAF.WithDefaults().Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, z := range c.Seed.ZoneKeys {
		if !seen[z.Link] {
			errs = append(errs, fmt.Errorf("seed.zone_keys: no gateway named %q", z.Link))
		}
	}
	return errors.Join(errs...)
}

// openLinks builds the gateway links (not yet connected) and loads
// seeded ZMKs a link does not have yet.
func (sw *Switch) openLinks() error {
	if err := sw.loadSeedZMKs(sw.cfg); err != nil {
		return err
	}
	var err error
	sw.links, err = links.New(sw.db, sw.hsm, links.Options{Links: sw.cfg.Gateways, SAF: sw.cfg.SAF,
		Logger: sw.log.Named("links"), Registerer: sw.metrics.Registry})
	return err
}

// isLink reports whether name is a gateway link in force: one configured
// at start or added by a reload, and not removed by one since.
func (sw *Switch) isLink(name string) bool {
	if name == "" || sw.links == nil {
		return false
	}
	_, ok := sw.links.Link(name)
	if h := sw.reloadHooks.linkChecked; h != nil {
		h(name)
	}
	return ok
}

// holdLinks holds the link set for a binding (bindGate, shared): a
// reload cannot remove a link between the binding's check that it is in
// force and its commit.
func (sw *Switch) holdLinks() (release func()) {
	sw.bindGate.RLock()
	return sw.bindGate.RUnlock
}

// registry builds the destination registry: the fixed destinations (the
// local ledger, test probes) and the gateway links configured now.
func (sw *Switch) registry() (*txn.Registry, error) {
	return txn.NewRegistry(append(append([]txn.Destination(nil), sw.fixedDests...), sw.links.Destinations()...)...)
}

// destination returns what a route's destination name stands for now.
func (sw *Switch) destination(name string) (txn.Destination, bool) {
	return sw.destinations.Load().Get(name)
}

// loadSeedZMKs loads the ZMKs of cfg's seed.zone_keys that the HSM does
// not hold yet (demo and tests only).
func (sw *Switch) loadSeedZMKs(cfg *Config) error {
	for _, z := range cfg.Seed.ZoneKeys {
		if sw.hsm.HasKey(hsm.ZoneKeyLabel(z.Link, hsm.ZMK)) {
			continue
		}
		clear, err := decodeHexKey(z.ZMK)
		if err == nil && len(clear) != hsm.ZoneKeyLen {
			err = fmt.Errorf("want %d bytes", hsm.ZoneKeyLen)
		}
		if err != nil {
			return fmt.Errorf("seed zone key %s: %w", z.Link, err)
		}
		kcv, err := sw.hsm.ImportZMK(z.Link, clear)
		clearBytes(clear)
		if err != nil {
			return fmt.Errorf("seed zone key %s: %w", z.Link, err)
		}
		sw.log.Warn("gateway ZMK loaded from the configuration in clear (demo and tests only)",
			zap.String("link", z.Link), zap.String("zmk_check", fmt.Sprintf("%X", kcv[:3])))
	}
	return nil
}
