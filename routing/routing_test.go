package routing

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	local   = "local"
	bank    = "bank"
	wallet  = "wallet"
	special = "special"
)

var dests = []string{local, bank, wallet, special}

// testConfig exercises every precedence step. It is also the example in
// docs/routing.md.
const testConfig = `
routes:
  - name: campus
    bins: ["623015"]
    types: ["*"]
    merchants: ["*"]
    destination: local
  - name: campus-staff-range
    ranges: [{low: "62301520", high: "62301529"}]
    types: ["*"]
    merchants: ["*"]
    destination: wallet
  - name: bank-cards-load
    bins: ["62"]
    types: [cash_load]
    merchants: ["*"]
    destination: bank
  - name: partner-cafe
    bins: ["*"]
    types: ["*"]
    merchants: ["898320000000001"]
    destination: special
  - name: partner-cafe-refunds
    bins: ["623015"]
    types: [refund]
    merchants: ["898320000000001"]
    destination: bank
`

func parseConfig(t testing.TB, s string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func testTable(t testing.TB) *Table {
	t.Helper()
	tab, err := New(parseConfig(t, testConfig), dests)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestRoutePrecedence(t *testing.T) {
	tab := testTable(t)
	const canteen, cafe = "898310000000001", "898320000000001"
	tests := []struct {
		name               string
		pan, typ, merchant string
		wantRule           string
		wantDest           string
		wantErr            error
	}{
		{"campus card consume", "6230151000000000012", "consume", canteen, "campus", local, nil},
		{"longer range beats shorter bin", "6230152000000000001", "consume", canteen, "campus-staff-range", wallet, nil},
		{"range upper edge", "6230152999999999999", "consume", canteen, "campus-staff-range", wallet, nil},
		{"just above range", "6230153000000000001", "consume", canteen, "campus", local, nil},
		{"type beats longer prefix", "6230151000000000012", "cash_load", canteen, "bank-cards-load", bank, nil},
		{"typed rule, other card in its bin", "6299990000000000", "cash_load", canteen, "bank-cards-load", bank, nil},
		{"typed rule does not match other types", "6299990000000000", "consume", canteen, "", "", ErrNoRoute},
		{"merchant beats type and prefix", "6230151000000000012", "cash_load", cafe, "partner-cafe", special, nil},
		{"merchant wildcard card", "4111111111111111", "consume", cafe, "partner-cafe", special, nil},
		{"merchant + type beats merchant", "6230151000000000012", "refund", cafe, "partner-cafe-refunds", bank, nil},
		{"merchant + type, card outside", "4111111111111111", "refund", cafe, "partner-cafe", special, nil},
		{"no merchant given matches wildcards only", "6230151000000000012", "consume", "", "campus", local, nil},
		{"card outside every range", "4111111111111111", "consume", canteen, "", "", ErrNoRoute},
		{"pan shorter than every prefix", "62301", "consume", canteen, "", "", ErrNoRoute},
		{"pan exactly the bin", "623015", "consume", canteen, "campus", local, nil},
		{"empty pan", "", "consume", canteen, "", "", ErrInvalidPAN},
		{"pan with a letter", "62301510000000000X2", "consume", canteen, "", "", ErrInvalidPAN},
		{"pan too long", "62301510000000000120", "consume", canteen, "", "", ErrInvalidPAN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tab.Match(tt.pan, tt.typ, tt.merchant)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if m.Rule != tt.wantRule || m.Destination != tt.wantDest {
				t.Fatalf("matched %q -> %v, want %q -> %v", m.Rule, m.Destination, tt.wantRule, tt.wantDest)
			}
			d, err := tab.Route(tt.pan, tt.typ, tt.merchant)
			if d != tt.wantDest || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Route = %v, %v", d, err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	rule := func(name string, change func(r *Rule)) Rule {
		r := Rule{Name: name, BINs: []string{"623015"}, Types: []string{"*"}, Merchants: []string{"*"}, Destination: "local"}
		if change != nil {
			change(&r)
		}
		return r
	}
	many := make([]Rule, MaxRules+1)
	for i := range many {
		many[i] = rule(fmt.Sprint(i), func(r *Rule) { r.BINs = []string{fmt.Sprintf("%06d", i)} })
	}
	tests := []struct {
		name  string
		rules []Rule
		want  string
	}{
		{"no routes", nil, "no routes"},
		{"too many routes", many, "limit"},
		{"no name", []Rule{rule("", nil)}, "name"},
		{"duplicate name", []Rule{rule("a", nil), rule("a", func(r *Rule) { r.BINs = []string{"9"} })}, "used twice"},
		{"unknown destination", []Rule{rule("a", func(r *Rule) { r.Destination = "mars" })}, "unknown destination"},
		{"no destination", []Rule{rule("a", func(r *Rule) { r.Destination = "" })}, "no destination"},
		{"no cards", []Rule{rule("a", func(r *Rule) { r.BINs = nil })}, "no bins"},
		{"no types", []Rule{rule("a", func(r *Rule) { r.Types = nil })}, "no types"},
		{"no merchants", []Rule{rule("a", func(r *Rule) { r.Merchants = nil })}, "no merchants"},
		{"bin with letter", []Rule{rule("a", func(r *Rule) { r.BINs = []string{"62A015"} })}, "bin"},
		{"bin too long", []Rule{rule("a", func(r *Rule) { r.BINs = []string{strings.Repeat("6", 20)} })}, "bin"},
		{"empty bin", []Rule{rule("a", func(r *Rule) { r.BINs = []string{""} })}, "bin"},
		{"range lengths differ", []Rule{rule("a", func(r *Rule) { r.Ranges = []Range{{"6230", "62301"}} })}, "range"},
		{"range reversed", []Rule{rule("a", func(r *Rule) { r.Ranges = []Range{{"6239", "6230"}} })}, "low above high"},
		{"bad type label", []Rule{rule("a", func(r *Rule) { r.Types = []string{"Consume"} })}, "type"},
		{"bad merchant", []Rule{rule("a", func(r *Rule) { r.Merchants = []string{"8983 1"} })}, "merchant"},
		{"merchant with star", []Rule{rule("a", func(r *Rule) { r.Merchants = []string{"8983*"} })}, "merchant"},
		{"same bin twice", []Rule{rule("a", nil), rule("b", nil)}, "overlap"},
		{"same bin twice in one rule", []Rule{rule("a", func(r *Rule) { r.BINs = []string{"623015", "623015"} })}, "overlap"},
		{"bin inside range of same length", []Rule{
			rule("a", nil), rule("b", func(r *Rule) { r.BINs = nil; r.Ranges = []Range{{"623010", "623019"}} }),
		}, "overlap"},
		{"ranges touching", []Rule{
			rule("a", func(r *Rule) { r.BINs = nil; r.Ranges = []Range{{"6200", "6250"}} }),
			rule("b", func(r *Rule) { r.BINs = nil; r.Ranges = []Range{{"6250", "6299"}} }),
		}, "overlap"},
		{"two catch-alls", []Rule{
			rule("a", func(r *Rule) { r.BINs = []string{"*"} }), rule("b", func(r *Rule) { r.BINs = []string{"*"} }),
		}, "overlap"},
		{"same merchant and type", []Rule{
			rule("a", func(r *Rule) { r.Merchants = []string{"M1"}; r.Types = []string{"consume", "refund"} }),
			rule("b", func(r *Rule) { r.Merchants = []string{"M2", "M1"}; r.Types = []string{"refund"} }),
		}, "overlap"},
		{"matcher bound", []Rule{rule("a", func(r *Rule) {
			r.BINs = make([]string, 0, 1000)
			for i := 0; i < 1000; i++ {
				r.BINs = append(r.BINs, fmt.Sprintf("%04d", i))
			}
			r.Merchants = make([]string, 0, 101)
			for i := 0; i < 101; i++ {
				r.Merchants = append(r.Merchants, fmt.Sprintf("M%d", i))
			}
		})}, "exceed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Routes: tt.rules}, dests)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{Routes: []Rule{rule("a", nil)}}, []string{"local", ""}); err == nil {
		t.Fatal("empty destination name accepted")
	}
}

// TestNewAcceptsDisjoint: the same prefixes at different specificities, or
// adjacent ranges, are not overlaps.
func TestNewAcceptsDisjoint(t *testing.T) {
	cfg := Config{Routes: []Rule{
		{Name: "a", Ranges: []Range{{"6200", "6249"}}, Types: []string{"*"}, Merchants: []string{"*"}, Destination: "local"},
		{Name: "b", Ranges: []Range{{"6250", "6299"}}, Types: []string{"*"}, Merchants: []string{"*"}, Destination: "bank"},
		{Name: "c", BINs: []string{"6250"}, Types: []string{"consume"}, Merchants: []string{"*"}, Destination: "wallet"},
		{Name: "d", BINs: []string{"6250"}, Types: []string{"*"}, Merchants: []string{"M1"}, Destination: "wallet"},
		{Name: "e", BINs: []string{"62500"}, Types: []string{"*"}, Merchants: []string{"*"}, Destination: "special"},
	}}
	tab, err := New(cfg, dests)
	if err != nil {
		t.Fatal(err)
	}
	for pan, want := range map[string]string{"6249999": "a", "6250099": "e", "6250999": "b", "6251000": "b", "6299": "b", "6300": ""} {
		m, _ := tab.Match(pan, "refund", "M2")
		if m.Rule != want {
			t.Errorf("%s: rule %q, want %q", pan, m.Rule, want)
		}
	}
}

// TestYAMLRejectsUnknownKeys: the switch decodes with KnownFields, so a
// misspelt key in a route is an error, not a silently ignored matcher.
func TestYAMLRejectsUnknownKeys(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("routes:\n  - name: a\n    bin: [\"6\"]\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil {
		t.Fatal("misspelt key accepted")
	}
}

func TestRouteDoesNotAllocate(t *testing.T) {
	tab := testTable(t)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := tab.Route("6230152000000000001", "refund", "898320000000001"); err != nil {
			t.Fatal(err)
		}
		if _, err := tab.Route("4111111111111111", "consume", "898310000000001"); !errors.Is(err, ErrNoRoute) {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Route allocates %.1f times per call", allocs)
	}
}

func BenchmarkRoute(b *testing.B) {
	tab := testTable(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := tab.Route("6230151000000000012", "consume", "898310000000001"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouteLargeTable routes through 1000 rules of 6-digit BINs.
func BenchmarkRouteLargeTable(b *testing.B) {
	var cfg Config
	for i := 0; i < 1000; i++ {
		cfg.Routes = append(cfg.Routes, Rule{
			Name: fmt.Sprint(i), BINs: []string{fmt.Sprintf("62%04d", i*7)},
			Types: []string{"*"}, Merchants: []string{"*"}, Destination: "local",
		})
	}
	tab, err := New(cfg, dests)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := tab.Route("6203500000000000012", "consume", "898310000000001"); err != nil {
			b.Fatal(err)
		}
	}
}

// reference is the obvious linear implementation of the precedence rules,
// against which FuzzRoute checks the table.
func reference(cfg Config, pan, typ, merchant string) (string, error) {
	if len(pan) == 0 || len(pan) > MaxPANDigits {
		return "", ErrInvalidPAN
	}
	if _, ok := parseDigits(pan); !ok {
		return "", ErrInvalidPAN
	}
	best, bestScore := "", -1
	for _, r := range cfg.Routes {
		for _, m := range r.Merchants {
			if m != Wildcard && m != merchant {
				continue
			}
			for _, ty := range r.Types {
				if ty != Wildcard && ty != typ {
					continue
				}
				match := func(digits int, lo, hi string) {
					if digits > len(pan) || pan[:digits] < lo || pan[:digits] > hi {
						return
					}
					score := digits
					if ty != Wildcard {
						score += 100
					}
					if m != Wildcard {
						score += 1000
					}
					if score > bestScore {
						best, bestScore = r.Name, score
					}
				}
				for _, bin := range r.BINs {
					if bin == Wildcard {
						match(0, "", "")
					} else {
						match(len(bin), bin, bin)
					}
				}
				for _, rg := range r.Ranges {
					match(len(rg.Low), rg.Low, rg.High)
				}
			}
		}
	}
	if bestScore < 0 {
		return "", ErrNoRoute
	}
	return best, nil
}

// FuzzRoute checks the table against the reference implementation for
// arbitrary card numbers, types and merchants.
func FuzzRoute(f *testing.F) {
	cfg := parseConfig(f, testConfig)
	tab, err := New(cfg, dests)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("6230151000000000012", "consume", "898310000000001")
	f.Add("6230152000000000001", "refund", "898320000000001")
	f.Add("62", "cash_load", "")
	f.Add("4111", "*", "*")
	f.Fuzz(func(t *testing.T, pan, typ, merchant string) {
		m, err := tab.Match(pan, typ, merchant)
		want, wantErr := reference(cfg, pan, typ, merchant)
		if !errors.Is(err, wantErr) || m.Rule != want {
			t.Fatalf("Match(%q, %q, %q) = %q, %v; reference %q, %v", pan, typ, merchant, m.Rule, err, want, wantErr)
		}
	})
}

// FuzzNew feeds arbitrary prefixes and ranges to New: it must never panic,
// and a table it accepts must route each BIN to the most specific rule the
// reference picks.
func FuzzNew(f *testing.F) {
	f.Add("623015", "62301520", "62301529", "consume", "6230152")
	f.Add("*", "0", "9", "*", "5")
	f.Add("9999999999999999999", "0000000000000000000", "9999999999999999999", "refund", "9999999999999999999")
	f.Fuzz(func(t *testing.T, bin, low, high, typ, pan string) {
		cfg := Config{Routes: []Rule{
			{Name: "bin", BINs: []string{bin}, Types: []string{"*"}, Merchants: []string{"*"}, Destination: "local"},
			{Name: "range", Ranges: []Range{{low, high}}, Types: []string{typ}, Merchants: []string{"*"}, Destination: "bank"},
		}}
		tab, err := New(cfg, dests)
		if err != nil {
			return
		}
		for _, p := range []string{pan, bin, low, high} {
			m, err := tab.Match(p, typ, "M")
			want, wantErr := reference(cfg, p, typ, "M")
			if !errors.Is(err, wantErr) || m.Rule != want {
				t.Fatalf("Match(%q) = %q, %v; reference %q, %v", p, m.Rule, err, want, wantErr)
			}
		}
	})
}

// TestDocExampleIsTested keeps docs/routing.md's example equal to the
// configuration these tests run.
func TestDocExampleIsTested(t *testing.T) {
	doc, err := os.ReadFile("../docs/routing.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte(strings.TrimPrefix(testConfig, "\n"))) {
		t.Fatal("docs/routing.md does not contain testConfig verbatim")
	}
}
