package switching

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zone names work on machines without a zone database

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/routing"
	"gopkg.in/yaml.v3"

	"github.com/cardswitch/cardswitch/switch/links"
	"github.com/cardswitch/cardswitch/switch/transport"
)

// demoConfig is the configuration switchd runs with when it is given none.
// It is embedded so that the demo starts from any directory; the same bytes
// are kept in testdata/demo/config.yaml for people to read (a test keeps the
// two identical).
//
//go:embed demo.yaml
var demoConfig []byte

// DemoConfig returns the embedded demo configuration, parsed.
func DemoConfig() (*Config, error) {
	return ParseConfig(demoConfig)
}

// IsolatedDemoConfig is the demo configuration moved out of everyone's
// way, for tests and scratch runs: data and LMK under dir, every listener
// on an ephemeral loopback port, and the demo gateway links pointed where
// nothing answers (127.0.0.1:1), since their demo address may be a running
// demo's gwsim that a scratch switch must not sign on to. A listener or
// link added to the demo configuration is moved here, once.
func IsolatedDemoConfig(dir string) (*Config, error) {
	cfg, err := DemoConfig()
	if err != nil {
		return nil, err
	}
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.LMK = LMKConfig{File: filepath.Join(dir, "lmk.key"), CreateDemo: true}
	cfg.POS.Addr, cfg.Gateway.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Recharge.HTTPAddr = "127.0.0.1:0"
	for i := range cfg.Gateways {
		cfg.Gateways[i].Addresses = []string{"127.0.0.1:1"}
	}
	return cfg, nil
}

// DemoConfigYAML returns the raw embedded demo configuration.
func DemoConfigYAML() []byte { return append([]byte(nil), demoConfig...) }

// Config is the whole switchd configuration. Every limit the daemon applies
// to an external input is here, with a default from Defaults.
type Config struct {
	// DataDir holds the Pebble instance. It is created if missing.
	DataDir string `yaml:"data_dir"`
	// Demo marks the demo configuration: it creates a demo LMK beside the
	// data directory and seeds demo data on first start, and says so in the
	// log.
	Demo bool `yaml:"demo"`

	LMK     LMKConfig      `yaml:"lmk"`
	POS     POSConfig      `yaml:"pos"`
	Gateway ListenerConfig `yaml:"gateway"`
	HTTP    HTTPConfig     `yaml:"http"`
	Log     LogConfig      `yaml:"log"`
	Runtime RuntimeConfig  `yaml:"runtime"`
	Ledger  LedgerConfig   `yaml:"ledger"`
	// Retention says how long the switch keeps what it no longer needs to
	// answer or reconcile (docs/operations.md "Retention").
	Retention RetentionConfig `yaml:"retention"`
	// BusinessDay sets the cutover and where closed days are exported
	// (docs/reconciliation.md).
	BusinessDay BusinessDayConfig `yaml:"business_day"`
	// Recon holds each counterparty's file layout for import and match.
	Recon ReconConfig `yaml:"recon"`
	// TimeZone names the IANA zone of the business day (the daily limit,
	// the same-day rule of voids, the settlement date in field 15), e.g.
	// "Asia/Shanghai". Empty means the machine's local zone.
	TimeZone string `yaml:"time_zone"`
	// Routes is the route table (docs/routing.md): each rule names a
	// destination registered with the switch ("local", the card ledger,
	// and any gateway link by its name).
	Routes []routing.Rule `yaml:"routes"`
	// Gateways are the outbound gateway links (docs/gateway-links.md);
	// routes name them as destinations. SAF is their store-and-forward
	// sender's schedule.
	Gateways []links.Config  `yaml:"gateways"`
	SAF      links.SAFConfig `yaml:"saf"`
	// Seed is loaded once, on the first start with an empty data
	// directory: merchants, terminals (with their TMKs) and cards.
	Seed Seed `yaml:"seed"`
	// SignOn bounds failed sign-ons (docs/pos-dialect.md#sign-on-proof).
	SignOn SignOnConfig `yaml:"signon"`
	// Institutions send money in on the gateway port and the recharge
	// HTTP listener; Recharge configures that listener (docs/recharge.md).
	Institutions []InstitutionConfig `yaml:"institutions"`
	Recharge     RechargeConfig      `yaml:"recharge"`
	// Transfer bounds bank-transfer loads at kiosks (docs/recharge.md).
	Transfer TransferConfig `yaml:"transfer"`
}

// LedgerConfig are the card ledger's business parameters.
type LedgerConfig struct {
	MaxPINTries       int        `yaml:"max_pin_tries"`
	VisitorFeeBP      int32      `yaml:"visitor_fee_bp"`
	DefaultNoPINLimit ledger.Fen `yaml:"default_no_pin_limit"`
	DefaultMaxBalance ledger.Fen `yaml:"default_max_balance"`
	RefundWindowDays  int        `yaml:"refund_window_days"`
	HoldDays          int        `yaml:"hold_days"`
	MaxHoldsPerCard   int        `yaml:"max_holds_per_card"`
	// MaxCards and MaxMerchants bound the ledger (docs/ledger.md) [10 000 000, 100 000].
	MaxCards     int `yaml:"max_cards"`
	MaxMerchants int `yaml:"max_merchants"`
}

func (c LedgerConfig) options() ledger.Options {
	return ledger.Options{
		MaxPINTries:       c.MaxPINTries,
		VisitorFeeBP:      c.VisitorFeeBP,
		DefaultNoPINLimit: c.DefaultNoPINLimit,
		DefaultMaxBalance: c.DefaultMaxBalance,
		RefundWindowDays:  c.RefundWindowDays,
		HoldDays:          c.HoldDays,
		MaxHoldsPerCard:   c.MaxHoldsPerCard,
		MaxCards:          c.MaxCards,
		MaxMerchants:      c.MaxMerchants,
	}
}

// RetentionConfig bounds the data the switch keeps. The books (postings,
// cards, merchants) and the store-and-forward queue are never pruned.
type RetentionConfig struct {
	// JournalDays is how many business days of journal entries are kept
	// for reconciliation and audit; 0 keeps them forever (the default: the
	// journal is the audit trail, and deleting it must be a decision).
	// When set it must cover ResponseDays and LedgerLookupDays, whose
	// records point into the journal or answer for it.
	JournalDays int `yaml:"journal_days"`
	// ResponseDays is how long a stored response answers a retransmitted
	// request (duplicate detection, docs/pos-dialect.md#rules) [7].
	ResponseDays int `yaml:"response_days"`
	// LedgerLookupDays is how many business days the ledger keeps its
	// idempotency records, reference and RRN indexes and reversal
	// tombstones; 0 means the ledger's minimum, which covers the refund
	// window and pre-auth lifetime (docs/ledger.md "Retention"). A value
	// below that minimum is refused at start.
	LedgerLookupDays int `yaml:"ledger_lookup_days"`
	// Interval is how often the retention job looks for work [1h]. Its
	// first run starts a minute after the switch (or sooner, when the
	// interval is shorter).
	Interval Duration `yaml:"interval"`
	// BatchSize bounds the records one deletion batch removes, so the job
	// never holds a large batch in memory nor stalls the commit pipeline
	// [10000].
	BatchSize int `yaml:"batch_size"`
}

// Bounds of the retention settings.
const (
	maxRetentionDays      = 3660 // ten years
	minResponseDays       = 2    // a retransmission across midnight still finds its answer
	minRetentionInterval  = time.Minute
	maxRetentionInterval  = 24 * time.Hour
	minRetentionBatchSize = 100
	maxRetentionBatchSize = 100_000
)

func (r RetentionConfig) validate() error {
	var errs []error
	if r.JournalDays < 0 || r.JournalDays > maxRetentionDays {
		errs = append(errs, fmt.Errorf("retention.journal_days %d: want 0 (keep forever)..%d", r.JournalDays, maxRetentionDays))
	}
	if r.ResponseDays < minResponseDays || r.ResponseDays > maxRetentionDays {
		errs = append(errs, fmt.Errorf("retention.response_days %d: want %d..%d", r.ResponseDays, minResponseDays, maxRetentionDays))
	}
	if r.LedgerLookupDays < 0 || r.LedgerLookupDays > maxRetentionDays {
		errs = append(errs, fmt.Errorf("retention.ledger_lookup_days %d: want 0 (the ledger's minimum)..%d", r.LedgerLookupDays, maxRetentionDays))
	}
	if r.JournalDays > 0 && (r.JournalDays < r.ResponseDays || r.JournalDays < r.LedgerLookupDays) {
		errs = append(errs, fmt.Errorf("retention.journal_days %d: want 0 or at least response_days (%d) and ledger_lookup_days (%d): stored responses are replayed from the journal",
			r.JournalDays, r.ResponseDays, r.LedgerLookupDays))
	}
	if d := time.Duration(r.Interval); d < minRetentionInterval || d > maxRetentionInterval {
		errs = append(errs, fmt.Errorf("retention.interval %s: want %s..%s", d, minRetentionInterval, maxRetentionInterval))
	}
	if r.BatchSize < minRetentionBatchSize || r.BatchSize > maxRetentionBatchSize {
		errs = append(errs, fmt.Errorf("retention.batch_size %d: want %d..%d", r.BatchSize, minRetentionBatchSize, maxRetentionBatchSize))
	}
	return errors.Join(errs...)
}

// Seed is the data loaded on first start.
type Seed struct {
	Merchants []ledger.MerchantSpec `yaml:"merchants"`
	Terminals []terminals.Spec      `yaml:"terminals"`
	Cards     []SeedCard            `yaml:"cards"`
	// ZoneKeys are gateway links' ZMKs in clear (demo and tests only; a
	// real deployment loads them from components, docs/gateway-links.md).
	// Each is loaded at start when its link has no ZMK yet.
	ZoneKeys []SeedZoneKey `yaml:"zone_keys"`
}

// SeedZoneKey is a link's ZMK in clear, 32 hex.
type SeedZoneKey struct {
	Link string `yaml:"link"`
	ZMK  string `yaml:"zmk"`
}

// SeedCard is a card with its PIN in clear. Only demo and test
// configurations carry PINs: the HSM turns each into the card's PIN
// verification value at seeding, and the clear PIN goes no further.
type SeedCard struct {
	ledger.CardSpec `yaml:",inline"`
	PIN             string `yaml:"pin"`
}

// LMKConfig says where the local master key comes from. Exactly one of File
// and Env is set. The LMK never lives in the data directory: a copy of the
// data directory alone must not expose the keys stored in it.
type LMKConfig struct {
	File string `yaml:"file"`
	Env  string `yaml:"env"`
	// CreateDemo creates File with a random key (mode 0600) when it does
	// not exist. Only the demo configuration sets it.
	CreateDemo bool `yaml:"create_demo"`
}

// POSConfig is the POS acceptor: its listener bounds and how long the
// switch may take to answer one request.
type POSConfig struct {
	ListenerConfig `yaml:",inline"`
	// AnswerTimeout is the answer budget of one POS request, from its
	// frame's arrival: a destination (a gateway link) gets what is left
	// of it as its context's deadline, so that no destination holds a
	// terminal longer than this, whatever its own timeouts
	// (docs/operations.md). Keep it below the terminals' own timeout.
	AnswerTimeout Duration `yaml:"answer_timeout"`
}

// Bounds of pos.answer_timeout.
const (
	minAnswerTimeout = time.Second
	maxAnswerTimeout = 5 * time.Minute
)

func (p POSConfig) validate() error {
	errs := []error{p.ListenerConfig.validate("pos")}
	if d := time.Duration(p.AnswerTimeout); d < minAnswerTimeout || d > maxAnswerTimeout {
		errs = append(errs, fmt.Errorf("pos.answer_timeout %s: want %s..%s", d, minAnswerTimeout, maxAnswerTimeout))
	}
	return errors.Join(errs...)
}

// ListenerConfig bounds one TCP acceptor.
type ListenerConfig struct {
	Addr string `yaml:"addr"`
	// MaxConnections is the number of connections served at once; further
	// connections are accepted and closed at once, so the backlog never
	// fills with connections nobody will serve.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerPeer is the number of connections one remote IP
	// address may hold at once (1..MaxConnections), so that one host cannot
	// take every slot; its further connections are accepted and closed at
	// once, like those over MaxConnections.
	MaxConnectionsPerPeer int `yaml:"max_connections_per_peer"`
	// TrustedNetworks gives networks their own per-address connection
	// allowance, CIDR to connections (e.g. "10.0.0.0/8": 2000): a building
	// of terminals behind one NAT address counts as one address. The most
	// specific network that holds an address applies; an address in none
	// gets MaxConnectionsPerPeer. An allowance only raises the limit (1..100000); max_connections still caps the total.
	TrustedNetworks map[string]int `yaml:"trusted_networks"`
	// FirstFrameTimeout is how long a new connection has to send its first
	// frame that decodes; a connection that has not is closed and counted
	// (first_frame_timeout), so idle or garbage connections cannot hold
	// slots for the whole idle timeout.
	FirstFrameTimeout Duration `yaml:"first_frame_timeout"`
	// MaxConnectionsPerTerminal is how many connections one terminal id
	// may hold at once, counted once a frame on the connection has proved
	// the terminal (a verified MAC or an approved sign-on). A further
	// connection closes the terminal's oldest one (the terminal
	// reconnected; its old connection is likely dead behind a NAT).
	MaxConnectionsPerTerminal int `yaml:"max_connections_per_terminal"`
	// UnauthenticatedPerSecond bounds the messages per second one address
	// may send that prove nothing (echo tests, frames that do not decode,
	// requests refused before their MAC was checked), with bursts of twice
	// that; a trusted network's address gets it times its allowance over
	// MaxConnectionsPerPeer. Over it, the connection is closed unanswered.
	UnauthenticatedPerSecond int `yaml:"unauthenticated_per_second"`
	// MaxFrame is the largest frame body (bytes after the 2-byte length).
	MaxFrame int `yaml:"max_frame"`
	// IdleTimeout is how long a connection may wait between frames.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// FrameTimeout is how long the rest of a frame may take once its
	// length has arrived: a slow or stalled sender is cut off.
	FrameTimeout Duration `yaml:"frame_timeout"`
	// WriteTimeout bounds writing one response.
	WriteTimeout Duration `yaml:"write_timeout"`
}

// transport is the acceptor's view of l.
func (l ListenerConfig) transport() transport.Config {
	return transport.Config{
		Addr:                      l.Addr,
		MaxConnections:            l.MaxConnections,
		MaxConnectionsPerPeer:     l.MaxConnectionsPerPeer,
		TrustedNetworks:           l.TrustedNetworks,
		FirstFrameTimeout:         time.Duration(l.FirstFrameTimeout),
		MaxConnectionsPerTerminal: l.MaxConnectionsPerTerminal,
		UnauthenticatedPerSecond:  l.UnauthenticatedPerSecond,
		MaxFrame:                  l.MaxFrame,
		IdleTimeout:               time.Duration(l.IdleTimeout),
		FrameTimeout:              time.Duration(l.FrameTimeout),
		WriteTimeout:              time.Duration(l.WriteTimeout),
	}
}

// HTTPConfig is the metrics, health and admin endpoint.
type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// AdminToken is the bearer token of the admin API; AdminTokenEnv names
	// an environment variable holding it instead. With neither, the admin
	// API answers 403 to everything.
	AdminToken    string `yaml:"admin_token"`
	AdminTokenEnv string `yaml:"admin_token_env"`
}

// RuntimeConfig tunes the Go runtime of switchd.
type RuntimeConfig struct {
	// GCPercent is GOGC: how far the heap may grow past the live heap
	// before the next collection. The switch's live heap is small (cards,
	// terminals, keys) and every message allocates a little, so at the
	// default of 100 it collects dozens of times a second under load; 400
	// costs a few MiB more and about 14 % less CPU per transaction
	// (docs/BENCHMARKS.md). The GOGC environment variable wins when set.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimitMiB is a soft memory limit (GOMEMLIMIT) that makes the
	// collector work harder as the heap nears it; 0 means none. The
	// GOMEMLIMIT environment variable wins when set.
	MemoryLimitMiB int64 `yaml:"memory_limit_mib"`
	// HeapFloorMiB keeps the collector's heap target at least this large
	// (0: off): with a live heap of a few MiB, GCPercent alone collects at
	// the runtime's floor of 4 MiB × GCPercent/100 (16 MiB at 400), many
	// times a second under load. The switch raises its GOGC while the
	// live heap is small and gives it back as the heap grows, so the
	// target is never above the larger of this floor and GCPercent's
	// (heapfloor.go, docs/operations.md). Off when the GOGC environment
	// variable is set.
	HeapFloorMiB int64 `yaml:"heap_floor_mib"`
}

// ApplyRuntime sets the collector's pace and the soft memory limit of the
// process from c, unless the environment already did, and starts the
// heap floor (HeapFloorMiB) for the life of the process.
func ApplyRuntime(c RuntimeConfig) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(c.GCPercent)
		if c.HeapFloorMiB > 0 {
			startHeapFloor(c.GCPercent, uint64(c.HeapFloorMiB)<<20, nil)
		}
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && c.MemoryLimitMiB > 0 {
		debug.SetMemoryLimit(c.MemoryLimitMiB << 20)
	}
}

// LogConfig selects the log encoding ("json" or "console") and level.
type LogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// Duration is a time.Duration written in YAML as "30s", "5m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: duration %q: want a number and a unit, e.g. 30s, 5m, 1h", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Limits the configuration may not exceed: they keep a typo from turning a
// bound into no bound.
const (
	maxFrameLimit       = 64 << 10
	minFrameLimit       = 64
	maxConnectionsLimit = 100000
)

// Defaults returns a configuration with every limit set; parsed files are
// laid over it.
func Defaults() Config {
	l := ListenerConfig{
		MaxConnections:            5000,
		MaxConnectionsPerPeer:     64,
		FirstFrameTimeout:         Duration(10 * time.Second),
		MaxConnectionsPerTerminal: 4,
		UnauthenticatedPerSecond:  50,
		MaxFrame:                  2048,
		IdleTimeout:               Duration(5 * time.Minute),
		FrameTimeout:              Duration(10 * time.Second),
		WriteTimeout:              Duration(5 * time.Second),
	}
	pos, gw := l, l
	pos.Addr = "127.0.0.1:8583"
	gw.Addr = "127.0.0.1:8584"
	gw.MaxConnections = 256
	gw.MaxConnectionsPerPeer = 64
	gw.MaxFrame = 8192
	// Institutions may open their link and send nothing until their first
	// transaction: on the gateway port the first frame has the idle
	// timeout (docs/operations.md).
	gw.FirstFrameTimeout = gw.IdleTimeout
	return Config{
		DataDir: "./data",
		POS:     POSConfig{ListenerConfig: pos, AnswerTimeout: Duration(30 * time.Second)},
		Gateway: gw,
		HTTP:    HTTPConfig{Addr: "127.0.0.1:9583"},
		Runtime: RuntimeConfig{GCPercent: 400, HeapFloorMiB: 64},
		Retention: RetentionConfig{
			ResponseDays: 7,
			Interval:     Duration(time.Hour),
			BatchSize:    10_000,
		},
		Log:         LogConfig{Format: "json", Level: "info"},
		BusinessDay: BusinessDayConfig{Cutover: "23:00"},
		SignOn:      defaultSignOnConfig(),
	}
}

// LoadConfig reads and validates a YAML configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses YAML over Defaults and validates the result. Unknown
// keys are errors: a misspelt limit must not silently fall back to a
// default.
func ParseConfig(b []byte) (*Config, error) {
	c := Defaults()
	// Keys first, by their YAML path (ledger.max_pin_trys: did you mean
	// max_pin_tries?), then the decoder's type errors given the path of
	// their line.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	lines, err := checkKeys(&doc, reflect.TypeFor[Config]())
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, withPaths(err, lines)
	}
	if err := defaultPerPeer(b, &c); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// defaultPerPeer lowers the default max_connections_per_peer of a listener
// to its max_connections when the file sets max_connections below that
// default and does not name max_connections_per_peer: a configuration
// written before the per-peer limit existed keeps starting. A value the
// file does name is validated as written.
func defaultPerPeer(b []byte, c *Config) error {
	type named struct {
		PerPeer *int `yaml:"max_connections_per_peer"`
	}
	var set struct {
		POS     named `yaml:"pos"`
		Gateway named `yaml:"gateway"`
	}
	if err := yaml.Unmarshal(b, &set); err != nil {
		return err
	}
	for _, l := range []struct {
		cfg *ListenerConfig
		set bool
	}{{&c.POS.ListenerConfig, set.POS.PerPeer != nil}, {&c.Gateway, set.Gateway.PerPeer != nil}} {
		if !l.set && l.cfg.MaxConnections >= 1 && l.cfg.MaxConnectionsPerPeer > l.cfg.MaxConnections {
			l.cfg.MaxConnectionsPerPeer = l.cfg.MaxConnections
		}
	}
	return nil
}

// Validate checks every bound.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if (c.LMK.File == "") == (c.LMK.Env == "") {
		errs = append(errs, errors.New("lmk: set exactly one of file and env"))
	}
	if c.LMK.CreateDemo && c.LMK.File == "" {
		errs = append(errs, errors.New("lmk: create_demo needs file"))
	}
	errs = append(errs, c.POS.validate(), c.Gateway.validate("gateway"))
	if err := validAddr(c.HTTP.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr: %w", err))
	}
	errs = append(errs, c.HTTP.validateToken(c.Demo))
	if err := c.Ledger.options().Validate(); err != nil {
		// The ledger names its options by their keys: give them their
		// path in this file.
		for _, line := range strings.Split(err.Error(), "\n") {
			errs = append(errs, errors.New("ledger."+line))
		}
	}
	if err := validateRecharge(c.Institutions, c.Recharge); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Transfer.validate())
	if err := c.Retention.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.BusinessDay.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.SignOn.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Recon.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateGateways())
	if c.Runtime.GCPercent < 50 || c.Runtime.GCPercent > 2000 {
		errs = append(errs, fmt.Errorf("runtime.gc_percent %d: want 50..2000", c.Runtime.GCPercent))
	}
	if c.Runtime.MemoryLimitMiB < 0 || c.Runtime.MemoryLimitMiB > 1<<20 {
		errs = append(errs, fmt.Errorf("runtime.memory_limit_mib %d: want 0..%d", c.Runtime.MemoryLimitMiB, 1<<20))
	}
	if c.Runtime.HeapFloorMiB < 0 || c.Runtime.HeapFloorMiB > 1<<16 {
		errs = append(errs, fmt.Errorf("runtime.heap_floor_mib %d: want 0..%d", c.Runtime.HeapFloorMiB, 1<<16))
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("time_zone %q: %w", c.TimeZone, err))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: want json or console", c.Log.Format))
	}
	return errors.Join(errs...)
}

func (l ListenerConfig) validatePolicy(name string) error {
	var errs []error
	if len(l.TrustedNetworks) > 1000 {
		errs = append(errs, fmt.Errorf("%s.trusted_networks: %d networks, want at most 1000", name, len(l.TrustedNetworks)))
	}
	for cidr, n := range l.TrustedNetworks {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			errs = append(errs, fmt.Errorf("%s.trusted_networks: %q is not a network in CIDR notation (e.g. 10.0.0.0/8)", name, truncateForError(cidr)))
			continue
		}
		if n < 1 || n > maxConnectionsLimit {
			errs = append(errs, fmt.Errorf("%s.trusted_networks %s: %d connections, want 1..%d", name, truncateForError(cidr), n, maxConnectionsLimit))
		}
	}
	if l.FirstFrameTimeout <= 0 || time.Duration(l.FirstFrameTimeout) > time.Hour {
		errs = append(errs, fmt.Errorf("%s.first_frame_timeout %s: want > 0 and <= 1h", name, time.Duration(l.FirstFrameTimeout)))
	}
	if l.MaxConnectionsPerTerminal < 1 || l.MaxConnectionsPerTerminal > 64 {
		errs = append(errs, fmt.Errorf("%s.max_connections_per_terminal %d: want 1..64", name, l.MaxConnectionsPerTerminal))
	}
	if l.UnauthenticatedPerSecond < 1 || l.UnauthenticatedPerSecond > 100000 {
		errs = append(errs, fmt.Errorf("%s.unauthenticated_per_second %d: want 1..100000", name, l.UnauthenticatedPerSecond))
	}
	return errors.Join(errs...)
}

func (l ListenerConfig) validate(name string) error {
	var errs []error
	if err := validAddr(l.Addr); err != nil {
		errs = append(errs, fmt.Errorf("%s.addr: %w", name, err))
	}
	if l.MaxConnections < 1 || l.MaxConnections > maxConnectionsLimit {
		errs = append(errs, fmt.Errorf("%s.max_connections %d: want 1..%d", name, l.MaxConnections, maxConnectionsLimit))
	}
	// Over max_connections only when that is valid itself: one error for
	// one mistake.
	if l.MaxConnectionsPerPeer < 1 || (l.MaxConnections >= 1 && l.MaxConnectionsPerPeer > l.MaxConnections) {
		errs = append(errs, fmt.Errorf("%s.max_connections_per_peer %d: want 1..%d (max_connections)", name, l.MaxConnectionsPerPeer, l.MaxConnections))
	}
	errs = append(errs, l.validatePolicy(name))
	if l.MaxFrame < minFrameLimit || l.MaxFrame > maxFrameLimit {
		errs = append(errs, fmt.Errorf("%s.max_frame %d: want %d..%d", name, l.MaxFrame, minFrameLimit, maxFrameLimit))
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"idle_timeout", l.IdleTimeout}, {"frame_timeout", l.FrameTimeout}, {"write_timeout", l.WriteTimeout}} {
		if d.v <= 0 || time.Duration(d.v) > 24*time.Hour {
			errs = append(errs, fmt.Errorf("%s.%s %s: want > 0 and <= 24h", name, d.name, time.Duration(d.v)))
		}
	}
	return errors.Join(errs...)
}

// validAddr checks a listen address as net.Listen will read it, so that a
// mistyped one stops the daemon before it creates any key material or its
// data directory: host:port, the host empty, "localhost" or an IP literal,
// the port 0..65535.
func validAddr(addr string) error {
	if addr == "" {
		return errors.New("empty")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", truncateForError(addr))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be 0..65535", truncateForError(addr))
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: host must be an IP address or localhost", truncateForError(addr))
	}
	return nil
}

func truncateForError(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// MinAdminTokenLen is the shortest admin token the daemon accepts: 32
// characters. Only the demo configuration (demo: true) with its HTTP
// listener on a loopback address may use a shorter one (the contract's
// public demo token), and the daemon warns at every start that it does.
const MinAdminTokenLen = 32

// validateToken applies the admin token rules (docs/security.md): at most
// one source; a named environment variable must be set; a token shorter
// than MinAdminTokenLen only in the demo on loopback.
func (h HTTPConfig) validateToken(demo bool) error {
	if h.AdminToken != "" && h.AdminTokenEnv != "" {
		return errors.New("http: set one of admin_token and admin_token_env, not both")
	}
	if h.AdminTokenEnv != "" && os.Getenv(h.AdminTokenEnv) == "" {
		return fmt.Errorf("http.admin_token_env: environment variable %s is not set (the admin API would be disabled)", h.AdminTokenEnv)
	}
	tok := h.adminToken()
	if tok == "" || len(tok) >= MinAdminTokenLen {
		return nil
	}
	if demo && h.loopback() {
		return nil
	}
	return fmt.Errorf("http: admin token is %d characters, want at least %d (only the demo configuration on a loopback address may use a shorter one)", len(tok), MinAdminTokenLen)
}

// shortDemoToken says the demo's short admin token is in use, for the
// start-up warning.
func (h HTTPConfig) shortDemoToken() bool {
	tok := h.adminToken()
	return tok != "" && len(tok) < MinAdminTokenLen
}

// loopback reports whether the HTTP listener is on a loopback address.
func (h HTTPConfig) loopback() bool {
	host, _, err := net.SplitHostPort(h.Addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminToken resolves the admin bearer token.
func (h HTTPConfig) adminToken() string {
	if h.AdminTokenEnv != "" {
		return os.Getenv(h.AdminTokenEnv)
	}
	return h.AdminToken
}
