package recharge

import (
	"errors"
	"fmt"
	"testing"
)

// clearSealer seals nothing: the tests of what is bound where need no
// HSM.
type clearSealer struct{}

func (clearSealer) SealData(_ string, p, _ []byte) ([]byte, error) { return p, nil }
func (clearSealer) OpenData(_ string, s, _ []byte) ([]byte, error) { return s, nil }

// TestBindingsOfAGateway: BindingsTo counts and names (masked) the cards
// bound to each gateway asked; UnbindGateway removes those of one
// gateway, at most max a call, and leaves the others' alone.
func TestBindingsOfAGateway(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) {
		o.Sealer = clearSealer{}
		o.IsGateway = func(string) bool { return true }
	})
	for pan, gw := range map[string]string{panStudent: "bank-a", panEmpty: "bank-a", panFrozen: "bank-b"} {
		if _, err := f.s.Bind(pan, gw, "6222020000000000018", "ACC-1", "alice"); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := f.s.BindingsTo([]string{"bank-c", "bank-a", "bank-b"}, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(bs); got != "{[{bank-a 2 [623015*********0012] 0 []} {bank-b 1 [623015*********0053] 0 []}] 0 []}" {
		t.Fatalf("bindings to the gateways: %s", got)
	}
	for _, bad := range []struct{ gw, op string }{{"", "bob"}, {"bank-a", ""}} {
		if _, _, err := f.s.UnbindGateway(bad.gw, bad.op, 1); !errors.Is(err, ErrBadBinding) {
			t.Errorf("UnbindGateway(%q, %q): %v", bad.gw, bad.op, err)
		}
	}
	if _, _, err := f.s.UnbindGateway("bank-a", "bob", MaxUnbindGateway+1); !errors.Is(err, ErrBadBinding) {
		t.Errorf("a bound above the limit: %v", err)
	}
	if n, more, err := f.s.UnbindGateway("bank-a", "bob", 1); err != nil || n != 1 || !more {
		t.Fatalf("first call: %d %v %v", n, more, err)
	}
	if n, more, err := f.s.UnbindGateway("bank-a", "bob", 1); err != nil || n != 1 || more {
		t.Fatalf("second call: %d %v %v", n, more, err)
	}
	if n, more, err := f.s.UnbindGateway("bank-a", "bob", 1); err != nil || n != 0 || more {
		t.Fatalf("third call: %d %v %v", n, more, err)
	}
	if bs, err := f.s.BindingsTo([]string{"bank-a", "bank-b"}, nil, 5); err != nil || fmt.Sprint(bs.Bound) != "[{bank-b 1 [623015*********0053] 0 []}]" {
		t.Fatalf("after unbinding bank-a: %v %v", bs, err)
	}
}

// TestDamagedBindings: a binding record that does not decode holds a
// reload up only when it may name a link the reload removes — its
// readable gateway is that link, or none can be read, or it is no link
// kept (a damaged name) — and is then reported under each link it may
// name; one whose readable gateway is a link kept is skipped and
// counted. UnbindGateway removes the damaged records that may name its
// gateway, and leaves those naming another link in force.
func TestDamagedBindings(t *testing.T) {
	const (
		intactA   = "6230150000000000011"
		damagedA  = "6230150000000000022"
		damagedK  = "6230150000000000033" // names bank-k, kept
		garbage   = "6230150000000000044"
		damagedX  = "6230150000000000055" // names bank-x, configured nowhere
		noGateway = "6230150000000000066"
		// bank-k-old, a '"' over its second '-': "bank-k" followed by
		// no JSON token boundary is no readable name, not bank-k.
		quoteOver = "6230150000000000077"
	)
	records := map[string]string{
		intactA:   `{"gateway":"bank-a","bank_card":"MTIz","account":"MTIz","masked_card":"622202*********0018"}`,
		damagedA:  `{"gateway":"bank-a","bank_card":"MTIz","acc`,
		damagedK:  `{"gateway": "bank-k","bank_card":"MT`,
		garbage:   "\x00\xff\x13",
		damagedX:  `{"gateway":"bank-x","bank_card":tru`,
		noGateway: `{}`,
		quoteOver: `{"gateway":"bank-k"old","bank_card":"MTIz"}`,
	}
	for _, tc := range []struct {
		name          string
		removed, keep []string
		want          string
	}{
		{"remove bank-a", []string{"bank-a"}, []string{"bank-k"},
			"{[{bank-a 1 [623015*********0011] 5 [623015*********0022 623015*********0044 623015*********0055 623015*********0066 623015*********0077]}] 1 [{623015*********0033 bank-k}]}"},
		{"remove bank-k", []string{"bank-k"}, []string{"bank-a"},
			"{[{bank-k 0 [] 5 [623015*********0033 623015*********0044 623015*********0055 623015*********0066 623015*********0077]}] 1 [{623015*********0022 bank-a}]}"},
		{"remove bank-z, keep both", []string{"bank-z"}, []string{"bank-a", "bank-k"},
			"{[{bank-z 0 [] 4 [623015*********0044 623015*********0055 623015*********0066 623015*********0077]}] 2 [{623015*********0022 bank-a} {623015*********0033 bank-k}]}"},
		{"remove both", []string{"bank-a", "bank-k"}, nil,
			"{[{bank-a 1 [623015*********0011] 5 [623015*********0022 623015*********0044 623015*********0055 623015*********0066 623015*********0077]} " +
				"{bank-k 0 [] 5 [623015*********0033 623015*********0044 623015*********0055 623015*********0066 623015*********0077]}] 0 []}"},
		{"remove nothing", nil, []string{"bank-a", "bank-k"}, "{[] 0 []}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, func(o *Options) {
				o.Sealer = clearSealer{}
				o.IsGateway = func(g string) bool { return g == "bank-a" || g == "bank-k" }
			})
			for pan, raw := range records {
				if err := f.db.Set(bindingKey(pan), []byte(raw), nil); err != nil {
					t.Fatal(err)
				}
			}
			got, err := f.s.BindingsTo(tc.removed, tc.keep, 5)
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(got); s != tc.want {
				t.Fatalf("BindingsTo(%v, keep %v):\n got %s\nwant %s", tc.removed, tc.keep, s, tc.want)
			}
		})
	}

	f := newFixtureWith(t, func(o *Options) {
		o.Sealer = clearSealer{}
		o.IsGateway = func(g string) bool { return g == "bank-a" || g == "bank-k" }
	})
	for pan, raw := range records {
		if err := f.db.Set(bindingKey(pan), []byte(raw), nil); err != nil {
			t.Fatal(err)
		}
	}
	// At start (BindingsOutside): the gateways not configured that
	// bindings, or damaged records' readable names, name; a damaged
	// record with no readable name names none.
	for _, tc := range []struct {
		configured []string
		want       string
	}{
		{[]string{"bank-a"}, "[{bank-k 0 [] 1 [623015*********0033]} {bank-x 0 [] 1 [623015*********0055]}]"},
		{[]string{"bank-a", "bank-k"}, "[{bank-x 0 [] 1 [623015*********0055]}]"},
		{nil, "[{bank-a 1 [623015*********0011] 1 [623015*********0022]} {bank-k 0 [] 1 [623015*********0033]} {bank-x 0 [] 1 [623015*********0055]}]"},
	} {
		got, err := f.s.BindingsOutside(tc.configured, 5)
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Fatalf("BindingsOutside(%v):\n got %v, %v\nwant %s", tc.configured, got, err, tc.want)
		}
	}
	if n, more, err := f.s.UnbindGateway("bank-a", "bob", MaxUnbindGateway); err != nil || n != 6 || more {
		t.Fatalf("unbind bank-a: %d %v %v", n, more, err)
	}
	got, err := f.s.BindingsTo([]string{"bank-k"}, nil, 5)
	if err != nil || fmt.Sprint(got) != "{[{bank-k 0 [] 1 [623015*********0033]}] 0 []}" {
		t.Fatalf("left after unbinding bank-a: %v, %v", got, err)
	}
}
