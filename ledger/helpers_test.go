package ledger

import (
	"fmt"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"gopkg.in/yaml.v3"
)

// Demo card numbers (README.md#demo-data).
const (
	panStudent = "6230151000000000012"
	panStaff   = "6230151000000000020"
	panVisitor = "6230151000000000038"
	panLost    = "6230151000000000046"
	panFrozen  = "6230151000000000053"
	panEmpty   = "6230151000000000061"

	canteen = "898310000000001"
	market  = "898310000000002"
	cafe    = "898320000000001"

	day1 BusinessDate = 20250301
)

type demoConfig struct {
	Merchants []MerchantSpec `yaml:"merchants"`
	Cards     []CardSpec     `yaml:"cards"`
}

func loadDemo(t testing.TB) demoConfig {
	t.Helper()
	raw, err := os.ReadFile("testdata/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg demoConfig
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func memDB(t testing.TB) *pebble.DB {
	t.Helper()
	o := RecommendedPebbleOptions()
	o.FS = vfs.NewMem()
	o.MemTableSize = 4 << 20
	o.Logger = quietLogger{}
	db, err := pebble.Open("", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// seeded returns a ledger on a fresh in-memory store with the demo data.
func seeded(t testing.TB, opts Options) (*Ledger, *pebble.DB) {
	t.Helper()
	db := memDB(t)
	l, err := Open(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadDemo(t)
	for _, m := range cfg.Merchants {
		if err := l.AddMerchant(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cfg.Cards {
		if err := l.OpenCard(c, []byte("pvv-"+c.PAN[len(c.PAN)-4:])); err != nil {
			t.Fatal(err)
		}
	}
	return l, db
}

// exec runs req with a commit that commits the batch with sync, as the
// switch does.
func exec(t testing.TB, l *Ledger, req Request) Result {
	t.Helper()
	b := l.db.NewBatch()
	defer b.Close()
	res, err := l.Execute(req, b, func(Result) error { return b.Commit(pebble.Sync) })
	if err != nil {
		t.Fatalf("%s: %v", req.Kind(), err)
	}
	return res
}

var stanSeq uint32

// pos fills a Common for terminal term at merchant m with a fresh STAN.
// must fails the test unless r is an approval, and returns it.
func must(t testing.TB, r Result) Result {
	t.Helper()
	if !r.Approved() {
		t.Fatalf("%s: %s", r.Kind, r.Decline)
	}
	return r
}

func pos(term, m string, d BusinessDate) Common {
	stanSeq++
	return Common{
		Key:      fmt.Sprintf("%s|1|%06d|%d", term, stanSeq, d),
		Date:     d,
		Terminal: term,
		Merchant: m,
		Batch:    1,
		STAN:     stanSeq,
		RRN:      fmt.Sprintf("%012d", stanSeq),
	}
}

func ref(c Common) TxnRef { return TxnRef{Terminal: c.Terminal, Batch: c.Batch, STAN: c.STAN} }

func mustCard(t testing.TB, l *Ledger, pan string) CardView {
	t.Helper()
	v, ok := l.Card(pan)
	if !ok {
		t.Fatalf("card %s missing", pan)
	}
	return v
}

// checkStore runs Check and fails the test on any violation.
func checkStore(t testing.TB, db *pebble.DB) Report {
	t.Helper()
	r, err := Check(db)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("check: %v", r.Violations)
	}
	return r
}

func wantDecline(t testing.TB, res Result, want Decline) {
	t.Helper()
	if res.Decline != want {
		t.Fatalf("%s: got %q, want %q", res.Kind, res.Decline, want)
	}
}

// quietLogger keeps Pebble's informational lines out of test output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Errorf(f string, a ...any) { fmt.Printf(f+"\n", a...) }
func (quietLogger) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
