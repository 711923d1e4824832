package links

import (
	"errors"
	"fmt"
	"time"

	"github.com/cardswitch/cardswitch/hsm"
)

// Config is one outbound gateway link (docs/gateway-links.md).
type Config struct {
	// Name names the link in routes, metrics, the queue and key labels.
	Name string `yaml:"name"`
	// Addresses are the gateway's host:port addresses; each connection
	// tries them in turn.
	Addresses []string `yaml:"addresses"`
	// PoolSize is how many connections the link keeps [1].
	PoolSize int `yaml:"pool_size"`
	// AcquirerID (32), ForwardingID (33) and InstitutionID (100): ours,
	// ours, the gateway's.
	AcquirerID    string `yaml:"acquirer_id"`
	ForwardingID  string `yaml:"forwarding_id"`
	InstitutionID string `yaml:"institution_id"`
	// ConnectTimeout [5s], SignOnTimeout [10s], SendTimeout [10s]: the
	// send timeout must stay below the terminals' own.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	SignOnTimeout  Duration `yaml:"signon_timeout"`
	SendTimeout    Duration `yaml:"send_timeout"`
	// EchoInterval is the idle time after which an echo (301) is sent
	// [60s]; three missed echoes take the connection down.
	EchoInterval Duration `yaml:"echo_interval"`
	// KeyInterval is how often keys are exchanged (101) besides after
	// each sign-on [24h].
	KeyInterval Duration `yaml:"key_interval"`
	// ReconnectWait is the first wait before reconnecting [1s], doubling
	// up to MaxReconnectWait [60s].
	ReconnectWait    Duration `yaml:"reconnect_wait"`
	MaxReconnectWait Duration `yaml:"max_reconnect_wait"`
	// MAC is the MAC algorithm: "x9.19" (ISO/IEC 9797-1 algorithm 3 with
	// a TDES ZAK) or "sm4" (ISO/IEC 9797-1 algorithm 1 over SM4 with an
	// SM4 ZAK; docs/gateway-dialect.md, MAC).
	MAC string `yaml:"mac"`
}

// SAFConfig is the store-and-forward sender's schedule, shared by all
// links.
type SAFConfig struct {
	InitialDelay Duration `yaml:"initial_delay"` // [5s]
	Interval     Duration `yaml:"interval"`      // [10s], doubling
	MaxInterval  Duration `yaml:"max_interval"`  // [5m]
	MaxAttempts  int      `yaml:"max_attempts"`  // [50]
}

// Duration is a time.Duration; the switch's configuration decodes it from
// "30s"-style strings.
type Duration = time.Duration

// Bounds of the configuration.
const (
	MaxLinks    = 32
	maxPoolSize = 16
	maxAddrs    = 8
	maxTimeout  = 5 * time.Minute
)

// WithDefaults returns c with zero values replaced by defaults.
func (c Config) WithDefaults() Config {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.PoolSize == 0 {
		c.PoolSize = 1
	}
	def(&c.ConnectTimeout, 5*time.Second)
	def(&c.SignOnTimeout, 10*time.Second)
	def(&c.SendTimeout, 10*time.Second)
	def(&c.EchoInterval, 60*time.Second)
	def(&c.KeyInterval, 24*time.Hour)
	def(&c.ReconnectWait, time.Second)
	def(&c.MaxReconnectWait, 60*time.Second)
	if c.MAC == "" {
		c.MAC = MACX919
	}
	return c
}

// Validate checks a link's configuration (after WithDefaults).
func (c Config) Validate() error {
	if err := hsm.CheckLinkName(c.Name); err != nil {
		return fmt.Errorf("gateway %q: %w", c.Name, err)
	}
	if c.Name == "local" {
		return fmt.Errorf("gateway %q: the name is the local ledger's", c.Name)
	}
	if len(c.Addresses) == 0 || len(c.Addresses) > maxAddrs {
		return fmt.Errorf("gateway %s: %d addresses, want 1..%d", c.Name, len(c.Addresses), maxAddrs)
	}
	if c.PoolSize < 1 || c.PoolSize > maxPoolSize {
		return fmt.Errorf("gateway %s: pool_size %d, want 1..%d", c.Name, c.PoolSize, maxPoolSize)
	}
	for _, id := range []struct{ name, v string }{{"acquirer_id", c.AcquirerID}, {"forwarding_id", c.ForwardingID}, {"institution_id", c.InstitutionID}} {
		if len(id.v) == 0 || len(id.v) > 11 || !digits(id.v) {
			return fmt.Errorf("gateway %s: %s %q, want 1..11 digits", c.Name, id.name, id.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"connect_timeout", c.ConnectTimeout}, {"signon_timeout", c.SignOnTimeout}, {"send_timeout", c.SendTimeout}} {
		if d.v < 10*time.Millisecond || d.v > maxTimeout {
			return fmt.Errorf("gateway %s: %s %v, want 10ms..%v", c.Name, d.name, d.v, maxTimeout)
		}
	}
	if c.EchoInterval < 100*time.Millisecond || c.EchoInterval > time.Hour {
		return fmt.Errorf("gateway %s: echo_interval %v, want 100ms..1h", c.Name, c.EchoInterval)
	}
	if c.KeyInterval < time.Second || c.KeyInterval > 30*24*time.Hour {
		return fmt.Errorf("gateway %s: key_interval %v, want 1s..720h", c.Name, c.KeyInterval)
	}
	if c.ReconnectWait < 10*time.Millisecond || c.MaxReconnectWait < c.ReconnectWait || c.MaxReconnectWait > time.Hour {
		return fmt.Errorf("gateway %s: reconnect_wait %v / max_reconnect_wait %v, want 10ms <= wait <= max <= 1h", c.Name, c.ReconnectWait, c.MaxReconnectWait)
	}
	if c.MAC != MACX919 && c.MAC != MACSM4 {
		return fmt.Errorf("gateway %s: mac %q: want %q or %q", c.Name, c.MAC, MACX919, MACSM4)
	}
	return nil
}

// MAC algorithms of a link (Config.MAC).
const (
	MACX919 = "x9.19"
	MACSM4  = "sm4"
)

// zakAlg is the algorithm of the link's ZAK: TDES for X9.19, SM4 for the
// SM4 MAC.
func (c Config) zakAlg() hsm.Algorithm {
	if c.MAC == MACSM4 {
		return hsm.SM4
	}
	return hsm.TDES
}

// WithDefaults returns s with zero values replaced by defaults.
func (s SAFConfig) WithDefaults() SAFConfig {
	if s.InitialDelay == 0 {
		s.InitialDelay = 5 * time.Second
	}
	if s.Interval == 0 {
		s.Interval = 10 * time.Second
	}
	if s.MaxInterval == 0 {
		s.MaxInterval = 5 * time.Minute
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 50
	}
	return s
}

// Validate checks the SAF schedule (after WithDefaults).
func (s SAFConfig) Validate() error {
	if s.InitialDelay < 0 || s.InitialDelay > time.Hour {
		return errors.New("saf.initial_delay: want 0..1h")
	}
	if s.Interval < 10*time.Millisecond || s.MaxInterval < s.Interval || s.MaxInterval > 24*time.Hour {
		return fmt.Errorf("saf.interval %v / max_interval %v: want 10ms <= interval <= max_interval <= 24h", s.Interval, s.MaxInterval)
	}
	if s.MaxAttempts < 1 || s.MaxAttempts > 10000 {
		return fmt.Errorf("saf.max_attempts %d: want 1..10000", s.MaxAttempts)
	}
	return nil
}

// backoff is the wait after attempt n (1-based) before the next one:
// Interval doubling up to MaxInterval.
func (s SAFConfig) backoff(n int) time.Duration {
	d := s.Interval
	for i := 1; i < n && d < s.MaxInterval; i++ {
		d *= 2
	}
	return min(d, s.MaxInterval)
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
