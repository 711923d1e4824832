package switching

import (
	"errors"
	"fmt"
	"time"

	"github.com/cardswitch/cardswitch/switch/pos"
)

// SignOnConfig bounds failed sign-ons.
type SignOnConfig struct {
	// MaxFailuresPerTerminal is how many failed sign-ons one terminal id
	// may see per Window; beyond it, its sign-ons are answered A0 without
	// being checked until the window ends [10].
	MaxFailuresPerTerminal int `yaml:"max_failures_per_terminal"`
	// MaxFailuresPerAddress is the same per source IP address [30].
	MaxFailuresPerAddress int `yaml:"max_failures_per_address"`
	// Window is the period the failures are counted over [1m].
	Window Duration `yaml:"window"`
}

func defaultSignOnConfig() SignOnConfig {
	return SignOnConfig{MaxFailuresPerTerminal: 10, MaxFailuresPerAddress: 30, Window: Duration(time.Minute)}
}

func (c SignOnConfig) validate() error {
	var errs []error
	if c.MaxFailuresPerTerminal < 1 || c.MaxFailuresPerTerminal > 10000 {
		errs = append(errs, fmt.Errorf("signon.max_failures_per_terminal %d: want 1..10000", c.MaxFailuresPerTerminal))
	}
	if c.MaxFailuresPerAddress < 1 || c.MaxFailuresPerAddress > 100000 {
		errs = append(errs, fmt.Errorf("signon.max_failures_per_address %d: want 1..100000", c.MaxFailuresPerAddress))
	}
	if d := time.Duration(c.Window); d < time.Second || d > 24*time.Hour {
		errs = append(errs, fmt.Errorf("signon.window %s: want 1s..24h", d))
	}
	return errors.Join(errs...)
}

// limits is the POS protocol's form of c.
func (c SignOnConfig) limits() pos.SignOnLimits {
	return pos.SignOnLimits{MaxFailuresPerTerminal: c.MaxFailuresPerTerminal,
		MaxFailuresPerAddress: c.MaxFailuresPerAddress, Window: time.Duration(c.Window)}
}
