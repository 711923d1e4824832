package switching

import (
	"errors"
	"fmt"

	"github.com/cardswitch/cardswitch/recon"
)

// ReconConfig is the recon section of the configuration.
type ReconConfig struct {
	// Gateways maps a gateway or institution name (as in the export's
	// institution column) to how its daily file is read and which of its
	// discrepancies resolve themselves.
	Gateways map[string]ReconGateway `yaml:"gateways"`
}

// ReconGateway is one counterparty's import settings.
type ReconGateway struct {
	Layout      recon.Layout    `yaml:"layout"`
	AutoResolve recon.AutoRules `yaml:"auto_resolve"`
}

func (c ReconConfig) validate() error {
	var errs []error
	for name, g := range c.Gateways {
		if err := g.Layout.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("recon.gateways.%s.layout: %w", name, err))
		}
		if err := g.AutoResolve.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("recon.gateways.%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
