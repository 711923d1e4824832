package switching

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"gopkg.in/yaml.v3"
)

// The demo configuration people read in testdata/demo must be the one the
// binary embeds.
func TestDemoConfigMatchesTestdata(t *testing.T) {
	b, err := os.ReadFile("../testdata/demo/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, demoConfig) {
		t.Fatal("testdata/demo/config.yaml differs from switch/demo.yaml: copy one over the other")
	}
}

func TestDemoConfigContract(t *testing.T) {
	c, err := DemoConfig()
	if err != nil {
		t.Fatal(err)
	}
	// docs/operations.md: the demo's addresses, data directory and token.
	checks := []struct{ name, got, want string }{
		{"data_dir", c.DataDir, "./data"},
		{"pos", c.POS.Addr, "127.0.0.1:8583"},
		{"gateway", c.Gateway.Addr, "127.0.0.1:8584"},
		{"http", c.HTTP.Addr, "127.0.0.1:9583"},
		{"token", c.HTTP.adminToken(), "demo-admin-token"},
		{"log", c.Log.Format, "console"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if !c.Demo || !c.LMK.CreateDemo {
		t.Error("demo configuration must create its demo LMK")
	}
	if c.POS.MaxFrame != 2048 {
		t.Errorf("POS max frame %d, want the contract default 2048", c.POS.MaxFrame)
	}
}

func TestParseConfigRejects(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", "data_dir: x\nlmk: {file: k}\nbogus: 1\n", "bogus"},
		{"no lmk", "data_dir: x\n", "lmk"},
		{"both lmk", "lmk: {file: k, env: E}\n", "exactly one"},
		{"frame too big", "lmk: {file: k}\npos: {max_frame: 1000000}\n", "pos.max_frame"},
		{"zero conns", "lmk: {file: k}\ngateway: {max_connections: 0}\n", "gateway.max_connections"},
		{"zero per-peer conns", "lmk: {file: k}\npos: {max_connections_per_peer: 0}\n", "pos.max_connections_per_peer 0: want 1..5000"},
		{"negative per-peer conns", "lmk: {file: k}\ngateway: {max_connections_per_peer: -1}\n", "gateway.max_connections_per_peer -1: want 1..256"},
		{"per-peer over max conns", "lmk: {file: k}\npos: {max_connections: 100, max_connections_per_peer: 101}\n", "pos.max_connections_per_peer 101: want 1..100"},
		{"per-peer over default max conns", "lmk: {file: k}\ngateway: {max_connections_per_peer: 257}\n", "gateway.max_connections_per_peer 257: want 1..256"},
		{"named per-peer not lowered", "lmk: {file: k}\npos: {max_connections: 10, max_connections_per_peer: 64}\n", "pos.max_connections_per_peer 64: want 1..10"},
		{"bad duration", "lmk: {file: k}\npos: {idle_timeout: soon}\n", "soon"},
		{"negative timeout", "lmk: {file: k}\npos: {write_timeout: -1s}\n", "write_timeout"},
		{"bad log", "lmk: {file: k}\nlog: {format: xml}\n", "log.format"},
		{"negative hold days", "lmk: {file: k}\nledger: {hold_days: -1}\n", "ledger.hold_days -1"},
		{"hold beyond a year", "lmk: {file: k}\nledger: {hold_days: 100000}\n", "hold_days 100000"},
		{"fee above 100 %", "lmk: {file: k}\nledger: {visitor_fee_bp: 20000}\n", "visitor_fee_bp"},
		{"too many holds", "lmk: {file: k}\nledger: {max_holds_per_card: 65}\n", "max_holds_per_card"},
		{"responses kept one day", "lmk: {file: k}\nretention: {response_days: 1}\n", "retention.response_days 1: want 2..3660"},
		{"negative journal days", "lmk: {file: k}\nretention: {journal_days: -1}\n", "retention.journal_days -1"},
		{"journal shorter than responses", "lmk: {file: k}\nretention: {journal_days: 5, response_days: 7}\n", "want 0 or at least response_days (7)"},
		{"journal shorter than ledger lookups", "lmk: {file: k}\nretention: {journal_days: 30, ledger_lookup_days: 40}\n", "ledger_lookup_days (40)"},
		{"negative lookup days", "lmk: {file: k}\nretention: {ledger_lookup_days: -3}\n", "retention.ledger_lookup_days -3"},
		{"retention every second", "lmk: {file: k}\nretention: {interval: 1s}\n", "retention.interval 1s: want 1m0s..24h0m0s"},
		{"retention batch too small", "lmk: {file: k}\nretention: {batch_size: 10}\n", "retention.batch_size 10: want 100..100000"},
		{"retention batch too big", "lmk: {file: k}\nretention: {batch_size: 1000000}\n", "retention.batch_size 1000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseConfigOverDefaults(t *testing.T) {
	c, err := ParseConfig([]byte("lmk: {env: LMK}\npos: {addr: '127.0.0.1:0', idle_timeout: 30s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.POS.Addr != "127.0.0.1:0" || time.Duration(c.POS.IdleTimeout) != 30*time.Second {
		t.Fatalf("pos = %+v", c.POS)
	}
	if c.POS.MaxConnections != Defaults().POS.MaxConnections {
		t.Fatal("unset limits must keep their defaults")
	}
}

func TestPerPeerConnectionsConfig(t *testing.T) {
	cases := []struct {
		name      string
		yaml      string
		pos, gate int
	}{
		{"defaults", "", 64, 64},
		{"named", "pos: {max_connections_per_peer: 5000}\ngateway: {max_connections_per_peer: 1}\n", 5000, 1},
		// A file from before the key existed that lowers max_connections
		// below the default keeps starting: the default follows it down.
		{"default follows a lower max_connections", "pos: {max_connections: 10}\ngateway: {max_connections: 32}\n", 10, 32},
		{"default kept under a higher max_connections", "pos: {max_connections: 100}\n", 64, 64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte("lmk: {file: k}\n" + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if c.POS.MaxConnectionsPerPeer != tc.pos || c.Gateway.MaxConnectionsPerPeer != tc.gate {
				t.Fatalf("per-peer pos %d, gateway %d; want %d, %d", c.POS.MaxConnectionsPerPeer, c.Gateway.MaxConnectionsPerPeer, tc.pos, tc.gate)
			}
		})
	}

	// A configuration built in code, as New receives it, is held to the
	// same bounds.
	for _, v := range []int{0, -1, 5001} {
		c := Defaults()
		c.LMK.File = "k"
		c.POS.MaxConnectionsPerPeer = v
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "pos.max_connections_per_peer") {
			t.Errorf("per-peer %d: err = %v, want one naming pos.max_connections_per_peer", v, err)
		}
	}
}

func TestTimeZoneConfig(t *testing.T) {
	if _, err := ParseConfig([]byte("lmk: {file: k}\ntime_zone: Asia/Shanghai\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig([]byte("lmk: {file: k}\ntime_zone: Mars/Olympus\n")); err == nil {
		t.Fatal("unknown zone accepted")
	}
}

// TestLedgerDemoFixtureMatchesSeed keeps ledger/testdata/demo.yaml (the
// ledger's own tests seed it; the ledger cannot import this package) in
// step with the embedded demo seed: same merchants, and the same cards
// with the same money, limits, state and fee. Holder names may differ.
func TestLedgerDemoFixtureMatchesSeed(t *testing.T) {
	raw, err := os.ReadFile("../ledger/testdata/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Merchants []ledger.MerchantSpec `yaml:"merchants"`
		Cards     []ledger.CardSpec     `yaml:"cards"`
	}
	if err := yaml.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	demo, err := DemoConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fixture.Merchants, demo.Seed.Merchants) {
		t.Errorf("merchants:\nledger fixture %+v\nembedded seed  %+v", fixture.Merchants, demo.Seed.Merchants)
	}
	// money is what must agree, with the configuration's defaults applied.
	type money struct {
		PAN                                         string
		Type                                        ledger.HolderType
		State                                       ledger.CardState
		List                                        ledger.ListFlag
		Cash, Subsidy, Daily, PerTxn, NoPIN, MaxBal ledger.Fen
		FeeBP                                       int32
	}
	opts := demo.Ledger.options()
	view := func(c ledger.CardSpec) money {
		m := money{PAN: c.PAN, Type: c.HolderType, State: c.State, List: c.List, Cash: c.Cash, Subsidy: c.Subsidy,
			Daily: c.DailyLimit, PerTxn: c.PerTxnLimit, NoPIN: opts.DefaultNoPINLimit, MaxBal: opts.DefaultMaxBalance, FeeBP: -1}
		if c.NoPINLimit != nil {
			m.NoPIN = *c.NoPINLimit
		}
		if c.MaxBalance != nil {
			m.MaxBal = *c.MaxBalance
		}
		if c.FeeRateBP != nil {
			m.FeeBP = *c.FeeRateBP
		}
		return m
	}
	var got, want []money
	for _, c := range fixture.Cards {
		got = append(got, view(c))
	}
	for _, c := range demo.Seed.Cards {
		want = append(want, view(c.CardSpec))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cards:\nledger fixture %+v\nembedded seed  %+v", got, want)
	}
}
