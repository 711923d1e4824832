// Package routing decides which destination serves a transaction: the
// card ledger the switch hosts, or (in later waves) a named gateway link.
//
// A route table is built once from configuration and then read without
// locks or allocations on every transaction. Rules match on the card
// number (BIN prefixes or ranges of prefixes), the transaction type label
// and the merchant id. When several rules match, the most specific wins,
// in this order of precedence:
//
//  1. a rule naming the merchant beats a merchant wildcard;
//  2. then a rule naming the transaction type beats a type wildcard;
//  3. then the longer card-number prefix beats the shorter ("*" is a prefix
//     of length zero).
//
// Two rules that could both match one transaction at the same specificity
// are a configuration error, so every lookup has exactly one answer.
package routing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors of Route.
var (
	// ErrNoRoute means no rule covers the card: the switch answers 14.
	ErrNoRoute = errors.New("routing: no route for card")
	// ErrInvalidPAN means the card number is not 1 to 19 digits (ISO/IEC
	// 7812-1): the switch answers 14 as well.
	ErrInvalidPAN = errors.New("routing: card number is not 1-19 digits")
)

// Wildcard matches any card, type or merchant.
const Wildcard = "*"

// Bounds on the configuration.
const (
	// MaxRules bounds the rules of one table.
	MaxRules = 1024
	// MaxMatchers bounds the expanded size of the table: the sum over rules
	// of merchants × types × (bins + ranges).
	MaxMatchers = 100_000
	// MaxPANDigits is the longest card number (ISO/IEC 7812-1).
	MaxPANDigits    = 19
	maxNameLen      = 64
	maxTypeLen      = 32
	maxMerchantLen  = 32
	maxListEntries  = 10_000
	maxDestinations = 10_000
)

// Config is the route table as written in the switch's YAML, for example:
//
//	routes:
//	  - name: campus
//	    bins: ["623015"]
//	    types: ["*"]
//	    merchants: ["*"]
//	    destination: local
type Config struct {
	Routes []Rule `yaml:"routes"`
}

// Rule is one route. A transaction matches it when its card matches one of
// BINs or Ranges, its type one of Types, and its merchant one of Merchants.
// Types and Merchants must be given; write "*" to match any.
type Rule struct {
	// Name identifies the rule in errors and in Match results.
	Name string `yaml:"name"`
	// BINs are card-number prefixes of 1 to 19 digits, or "*" for any card.
	BINs []string `yaml:"bins"`
	// Ranges are inclusive ranges of card-number prefixes.
	Ranges []Range `yaml:"ranges"`
	// Types are transaction type labels ("consume", "cash_load", ...) or
	// "*".
	Types []string `yaml:"types"`
	// Merchants are merchant ids (field 42) or "*".
	Merchants []string `yaml:"merchants"`
	// Destination names one of the destinations given to New: the switch
	// registers the local ledger as "local" and each gateway link under
	// its name.
	Destination string `yaml:"destination"`
}

// Range matches cards whose first len(Low) digits, read as a number, lie
// in [Low, High]. Low and High have the same number of digits, 1 to 19.
// Range{Low: "6230150", High: "6230154"} covers five 7-digit prefixes.
type Range struct {
	Low  string `yaml:"low"`
	High string `yaml:"high"`
}

// Match is the outcome of a lookup: the name of the destination and the
// rule that chose it (for logs and the journal). The table knows
// destinations only by name; the switch holds what each name stands for.
type Match struct {
	Rule        string
	Destination string
}

// selector is a (merchant, type) pair; "" stands for the wildcard.
type selector struct {
	merchant, txType string
}

// span is one range of prefixes of one length.
type span struct {
	low, high uint64
	match     Match
}

// cardPrefix is a rule's card matcher: the prefixes of length digits in
// [low, high]; digits 0 is the wildcard.
type cardPrefix struct {
	digits    int
	low, high uint64
}

// level holds the spans of one prefix length, sorted by low and
// non-overlapping.
type level struct {
	digits int
	spans  []span
}

// Table is a validated route table. It is immutable and safe for
// concurrent use.
type Table struct {
	// bySelector holds, per (merchant, type) pair, the levels sorted by
	// prefix length, longest first.
	bySelector map[selector][]level
	// anyMerchant and anyType say whether some rule names a merchant or a
	// type, so lookups skip selectors that cannot exist.
	anyMerchant, anyType bool
}

// New validates cfg and builds its table. destinations are the names
// rules may use; a rule naming any other is a configuration error.
func New(cfg Config, destinations []string) (*Table, error) {
	known, err := checkBounds(cfg, destinations)
	if err != nil {
		return nil, err
	}
	atoms, err := expand(cfg.Routes, known)
	if err != nil {
		return nil, err
	}
	t := group(atoms)
	if err := t.checkOverlaps(); err != nil {
		return nil, err
	}
	return t, nil
}

// atom is one matcher of the expanded table: a (merchant, type) selector
// and one span of card-number prefixes of one length.
type atom struct {
	sel    selector
	digits int
	span   span
}

// checkBounds checks the sizes of the configuration and returns the set
// of destination names.
func checkBounds(cfg Config, destinations []string) (map[string]bool, error) {
	if len(cfg.Routes) == 0 {
		return nil, errors.New("routing: no routes configured")
	}
	if len(cfg.Routes) > MaxRules {
		return nil, fmt.Errorf("routing: %d routes: limit %d", len(cfg.Routes), MaxRules)
	}
	if len(destinations) > maxDestinations {
		return nil, fmt.Errorf("routing: %d destinations: limit %d", len(destinations), maxDestinations)
	}
	known := make(map[string]bool, len(destinations))
	for _, name := range destinations {
		if name == "" {
			return nil, errors.New("routing: empty destination name")
		}
		known[name] = true
	}
	return known, nil
}

// expand validates each rule and expands it into atoms: one per merchant
// × type × card prefix or range, bounded by MaxMatchers in all.
func expand(rules []Rule, known map[string]bool) ([]atom, error) {
	var atoms []atom
	names := map[string]bool{}
	for i, r := range rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("routing: route %d (%q): %w", i+1, r.Name, err)
		}
		if names[r.Name] {
			return nil, fmt.Errorf("routing: route name %q used twice", r.Name)
		}
		names[r.Name] = true
		if !known[r.Destination] {
			return nil, fmt.Errorf("routing: route %q: unknown destination %q", r.Name, r.Destination)
		}
		n := (len(r.BINs) + len(r.Ranges)) * len(r.Types) * len(r.Merchants)
		if len(atoms)+n > MaxMatchers {
			return nil, fmt.Errorf("routing: route %q: table would exceed %d matchers", r.Name, MaxMatchers)
		}
		m := Match{Rule: r.Name, Destination: r.Destination}
		prefixes := r.prefixes()
		for _, mer := range r.Merchants {
			for _, typ := range r.Types {
				sel := selector{merchant: wild(mer), txType: wild(typ)}
				for _, p := range prefixes {
					atoms = append(atoms, atom{sel, p.digits, span{p.low, p.high, m}})
				}
			}
		}
	}
	return atoms, nil
}

// prefixes is a validated rule's card matchers: its BINs as one-prefix
// ranges ("*" as the zero-length prefix), then its ranges.
func (r *Rule) prefixes() []cardPrefix {
	var out []cardPrefix
	for _, b := range r.BINs {
		if b == Wildcard {
			out = append(out, cardPrefix{})
			continue
		}
		v, _ := parseDigits(b) // validated
		out = append(out, cardPrefix{len(b), v, v})
	}
	for _, rg := range r.Ranges {
		lo, _ := parseDigits(rg.Low)
		hi, _ := parseDigits(rg.High)
		out = append(out, cardPrefix{len(rg.Low), lo, hi})
	}
	return out
}

// group builds the table from atoms: by selector, then by prefix length
// (longest first), each level's spans sorted by their low end.
func group(atoms []atom) *Table {
	t := &Table{bySelector: map[selector][]level{}}
	for _, a := range atoms {
		lv := t.bySelector[a.sel]
		i := slices.IndexFunc(lv, func(l level) bool { return l.digits == a.digits })
		if i < 0 {
			lv = append(lv, level{digits: a.digits})
			i = len(lv) - 1
		}
		lv[i].spans = append(lv[i].spans, a.span)
		t.bySelector[a.sel] = lv
		t.anyMerchant = t.anyMerchant || a.sel.merchant != ""
		t.anyType = t.anyType || a.sel.txType != ""
	}
	for _, lv := range t.bySelector {
		slices.SortFunc(lv, func(a, b level) int { return b.digits - a.digits })
		for _, l := range lv {
			slices.SortFunc(l.spans, func(a, b span) int {
				switch {
				case a.low < b.low:
					return -1
				case a.low > b.low:
					return 1
				}
				return 0
			})
		}
	}
	return t
}

// checkOverlaps refuses two rules that could both match one transaction
// at the same specificity: overlapping spans in one level.
func (t *Table) checkOverlaps() error {
	for sel, lv := range t.bySelector {
		for _, l := range lv {
			for i := 1; i < len(l.spans); i++ {
				if prev, cur := l.spans[i-1], l.spans[i]; cur.low <= prev.high {
					return fmt.Errorf("routing: routes %q and %q overlap for merchant %s, type %s, %d-digit prefixes %s and %s",
						prev.match.Rule, cur.match.Rule, unwild(sel.merchant), unwild(sel.txType), l.digits,
						spanString(prev, l.digits), spanString(cur, l.digits))
				}
			}
		}
	}
	return nil
}

func wild(s string) string {
	if s == Wildcard {
		return ""
	}
	return s
}

func unwild(s string) string {
	if s == "" {
		return Wildcard
	}
	return s
}

func spanString(s span, digits int) string {
	if digits == 0 {
		return Wildcard
	}
	if s.low == s.high {
		return fmt.Sprintf("%0*d", digits, s.low)
	}
	return fmt.Sprintf("%0*d-%0*d", digits, s.low, digits, s.high)
}

func (r *Rule) validate() error {
	if r.Name == "" || len(r.Name) > maxNameLen {
		return fmt.Errorf("name must be 1..%d bytes", maxNameLen)
	}
	if r.Destination == "" {
		return errors.New("no destination")
	}
	if len(r.BINs)+len(r.Ranges) == 0 {
		return errors.New(`no bins or ranges (write bins: ["*"] for any card)`)
	}
	if len(r.Types) == 0 {
		return errors.New(`no types (write types: ["*"] for any)`)
	}
	if len(r.Merchants) == 0 {
		return errors.New(`no merchants (write merchants: ["*"] for any)`)
	}
	for _, l := range []struct {
		what string
		n    int
	}{{"bins", len(r.BINs)}, {"ranges", len(r.Ranges)}, {"types", len(r.Types)}, {"merchants", len(r.Merchants)}} {
		if l.n > maxListEntries {
			return fmt.Errorf("%d %s: limit %d", l.n, l.what, maxListEntries)
		}
	}
	for _, b := range r.BINs {
		if b == Wildcard {
			continue
		}
		if _, ok := parseDigits(b); !ok {
			return fmt.Errorf("bin %q: want 1..%d digits or %q", b, MaxPANDigits, Wildcard)
		}
	}
	for _, rg := range r.Ranges {
		lo, ok1 := parseDigits(rg.Low)
		hi, ok2 := parseDigits(rg.High)
		if !ok1 || !ok2 || len(rg.Low) != len(rg.High) {
			return fmt.Errorf("range %q-%q: want two prefixes of the same length, 1..%d digits", rg.Low, rg.High, MaxPANDigits)
		}
		if lo > hi {
			return fmt.Errorf("range %q-%q: low above high", rg.Low, rg.High)
		}
	}
	for _, typ := range r.Types {
		if typ != Wildcard && !validLabel(typ) {
			return fmt.Errorf("type %q: want 1..%d of a-z, 0-9, _ or %q", typ, maxTypeLen, Wildcard)
		}
	}
	for _, m := range r.Merchants {
		if m != Wildcard && !validMerchant(m) {
			return fmt.Errorf("merchant %q: want 1..%d printable characters without spaces or '*', or %q", m, maxMerchantLen, Wildcard)
		}
	}
	return nil
}

// parseDigits reads 1..19 ASCII digits as a number (19 digits always fit
// in a uint64).
func parseDigits(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > MaxPANDigits {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

func validLabel(s string) bool {
	if len(s) == 0 || len(s) > maxTypeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validMerchant(s string) bool {
	if len(s) == 0 || len(s) > maxMerchantLen || strings.Contains(s, Wildcard) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Route returns the name of the destination for a card number, transaction
// type label and merchant id, or ErrNoRoute / ErrInvalidPAN. It does not
// allocate.
func (t *Table) Route(pan, txType, merchant string) (string, error) {
	m, err := t.Match(pan, txType, merchant)
	return m.Destination, err
}

// Match is Route returning the rule that matched as well.
func (t *Table) Match(pan, txType, merchant string) (Match, error) {
	if len(pan) == 0 || len(pan) > MaxPANDigits {
		return Match{}, ErrInvalidPAN
	}
	// prefix[d] is the number formed by the first d digits.
	var prefix [MaxPANDigits + 1]uint64
	for i := 0; i < len(pan); i++ {
		c := pan[i]
		if c < '0' || c > '9' {
			return Match{}, ErrInvalidPAN
		}
		prefix[i+1] = prefix[i]*10 + uint64(c-'0')
	}
	// Precedence order: merchant before type before prefix length. An empty
	// merchant or type given by the caller matches only wildcards.
	if t.anyMerchant && merchant != "" {
		if t.anyType && txType != "" {
			if m, ok := t.lookup(selector{merchant, txType}, len(pan), &prefix); ok {
				return m, nil
			}
		}
		if m, ok := t.lookup(selector{merchant, ""}, len(pan), &prefix); ok {
			return m, nil
		}
	}
	if t.anyType && txType != "" {
		if m, ok := t.lookup(selector{"", txType}, len(pan), &prefix); ok {
			return m, nil
		}
	}
	if m, ok := t.lookup(selector{"", ""}, len(pan), &prefix); ok {
		return m, nil
	}
	return Match{}, ErrNoRoute
}

func (t *Table) lookup(sel selector, panLen int, prefix *[MaxPANDigits + 1]uint64) (Match, bool) {
	levels, ok := t.bySelector[sel]
	if !ok {
		return Match{}, false
	}
	for _, l := range levels {
		if l.digits > panLen {
			continue
		}
		v := prefix[l.digits]
		// The last span starting at or below v is the only candidate.
		lo, hi := 0, len(l.spans)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if l.spans[mid].low <= v {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo > 0 && v <= l.spans[lo-1].high {
			return l.spans[lo-1].match, true
		}
	}
	return Match{}, false
}
