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
	bs, err := f.s.BindingsTo([]string{"bank-c", "bank-a", "bank-b"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(bs); got != "[{bank-a 2 [623015*********0012]} {bank-b 1 [623015*********0053]}]" {
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
	if bs, err := f.s.BindingsTo([]string{"bank-a", "bank-b"}, 5); err != nil || fmt.Sprint(bs) != "[{bank-b 1 [623015*********0053]}]" {
		t.Fatalf("after unbinding bank-a: %v %v", bs, err)
	}
}
