package txn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/spec"
)

func TestCheck(t *testing.T) {
	orig := Original{Present: true, Batch: 1, STAN: 2, Date: 20260105, RRN: "005123456789"}
	tests := []struct {
		name string
		t    Transaction
		want string
	}{
		{"balance inquiry needs no amount", Transaction{Type: spec.BalanceInquiry}, ""},
		{"consume without amount", Transaction{Type: spec.Consume}, spec.RCInvalidAmount},
		{"consume", Transaction{Type: spec.Consume, HasAmount: true}, ""},
		{"reversal without amount", Transaction{Type: spec.Reversal, Original: orig}, spec.RCInvalidAmount},
		{"void without original", Transaction{Type: spec.ConsumeVoid, HasAmount: true}, spec.RCFormatError},
		{"void", Transaction{Type: spec.ConsumeVoid, HasAmount: true, Original: orig}, ""},
		{"cash load void without original", Transaction{Type: spec.CashLoadVoid, HasAmount: true}, spec.RCFormatError},
		{"refund", Transaction{Type: spec.Refund, HasAmount: true, Original: orig}, ""},
		{"refund without original date", Transaction{Type: spec.Refund, HasAmount: true,
			Original: Original{Present: true, RRN: "005123456789"}}, spec.RCFormatError},
		{"refund without original RRN", Transaction{Type: spec.Refund, HasAmount: true,
			Original: Original{Present: true, Date: 20260105}}, spec.RCFormatError},
		{"completion without auth code", Transaction{Type: spec.PreAuthCompletion, HasAmount: true, Original: orig}, spec.RCFormatError},
		{"completion", Transaction{Type: spec.PreAuthCompletion, HasAmount: true, Original: orig, AuthCode: "123456"}, ""},
		{"cancel without original", Transaction{Type: spec.PreAuthCancel, HasAmount: true, AuthCode: "123456"}, spec.RCFormatError},
		{"completion void", Transaction{Type: spec.CompletionVoid, HasAmount: true, Original: orig, AuthCode: "1"}, ""},
	}
	for _, tt := range tests {
		if got := tt.t.Check(); got != tt.want {
			t.Errorf("%s: Check() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestResponseCodeOf(t *testing.T) {
	cause := errors.New("link down")
	rej := Reject(spec.RCNoAnswer, cause)
	if got := ResponseCodeOf(rej); got != spec.RCNoAnswer {
		t.Fatalf("Rejection: %q", got)
	}
	if got := ResponseCodeOf(fmt.Errorf("wrapped: %w", rej)); got != spec.RCNoAnswer {
		t.Fatalf("wrapped Rejection: %q", got)
	}
	if !errors.Is(rej, cause) || !strings.Contains(rej.Error(), "link down") || !strings.Contains(rej.Error(), "98") {
		t.Fatalf("Rejection %q does not carry its cause", rej)
	}
	if got := ResponseCodeOf(cause); got != spec.RCSystemMalfunction {
		t.Fatalf("plain error: %q, want 96", got)
	}
	if got := ResponseCodeOf(ErrNotRecorded); got != spec.RCSystemMalfunction {
		t.Fatalf("ErrNotRecorded: %q, want 96", got)
	}
	if got := ResponseCodeOf(&Rejection{}); got != spec.RCSystemMalfunction {
		t.Fatalf("Rejection without a code: %q, want 96", got)
	}
}

type named string

func (n named) Name() string { return string(n) }
func (n named) Execute(context.Context, *Transaction, Record) (Outcome, error) {
	return Outcome{}, errors.New("not used")
}

func TestRegistry(t *testing.T) {
	r, err := NewRegistry(named("local"), named("bank"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); len(got) != 2 || got[0] != "local" || got[1] != "bank" {
		t.Fatalf("Names() = %v", got)
	}
	if d, ok := r.Get("bank"); !ok || d.Name() != "bank" {
		t.Fatalf("Get(bank) = %v, %v", d, ok)
	}
	if _, ok := r.Get("mars"); ok {
		t.Fatal("Get(mars) found something")
	}
	for _, bad := range [][]Destination{{named("a"), named("a")}, {named("")}, {nil}} {
		if _, err := NewRegistry(bad...); err == nil {
			t.Errorf("NewRegistry(%v) accepted", bad)
		}
	}
}

// TestPINBlockNeverPrints: a PIN block reaching a format verb or a log
// shows no bytes of the block.
func TestPINBlockNeverPrints(t *testing.T) {
	p := &PINBlock{Terminal: "10000001", Block: []byte{0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4}, SecurityControl: "2600000000000000"}
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v", p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p),
		fmt.Sprintf("%+v", Transaction{PIN: p})} {
		if strings.Contains(strings.ToLower(s), "dead") || strings.Contains(s, "222 173") {
			t.Errorf("PIN block printed: %s", s)
		}
	}
}

func TestOutcomeApproved(t *testing.T) {
	if !(Outcome{ResponseCode: spec.RCApproved}).Approved() || (Outcome{ResponseCode: spec.RCInsufficientFunds}).Approved() ||
		(Outcome{}).Approved() {
		t.Fatal("Approved() wrong")
	}
}
