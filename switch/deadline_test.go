package switching

import (
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAnswerBudgetBoundsSlowLink: a gateway link whose own send timeout
// is far longer than the POS answer budget still answers the terminal
// within the budget: the bank answers after 8 s, the budget is 3 s (room
// for a slow fsync before the send on a loaded CI machine), so the
// terminal gets 98 (not the bank's approval, which the link's 20 s send
// timeout alone would have waited for), the link counts a timeout, and
// the reversal it queued gives the bank's money back.
func TestAnswerBudgetBoundsSlowLink(t *testing.T) {
	sw, sim := linkedSwitch(t, func(c *Config) {
		c.POS.AnswerTimeout = Duration(3 * time.Second)
		c.Gateways[0].SendTimeout = 20 * time.Second
	})
	term := signedOn(t, sw, termCanteen, canteen)
	_ = sim.SetFaults(gwsim.Faults{Delay: 8 * time.Second})
	expectRC(t, "bank slower than the answer budget", do(t, term, mustReq(term.Consume(bankCard, 800, bankPIN)), nil), spec.RCNoAnswer)
	if n := testutil.ToFloat64(sw.links.Metrics().Requests.WithLabelValues(demoBank, "timeout")); n != 1 {
		t.Fatalf("%v link timeouts counted, want 1", n)
	}
	_ = sim.SetFaults(gwsim.Faults{})
	waitUntil(t, "reversal delivered", func() bool { return simBalance(t, sim) == bankStart })
}

// TestAnswerTimeoutBounds: pos.answer_timeout is 1s..5m.
func TestAnswerTimeoutBounds(t *testing.T) {
	for _, d := range []time.Duration{0, 999 * time.Millisecond, 5*time.Minute + time.Second} {
		cfg := Defaults()
		cfg.POS.AnswerTimeout = Duration(d)
		if err := cfg.POS.validate(); err == nil {
			t.Errorf("pos.answer_timeout %s accepted", d)
		}
	}
	for _, d := range []time.Duration{time.Second, 30 * time.Second, 5 * time.Minute} {
		cfg := Defaults()
		cfg.POS.AnswerTimeout = Duration(d)
		if err := cfg.POS.validate(); err != nil {
			t.Errorf("pos.answer_timeout %s: %v", d, err)
		}
	}
}

// TestAnswerBudgetBoundsTransferLeg: the bank leg of a transfer load
// waits no longer than the kiosk's answer budget either: the bank answers
// after 8 s, the budget is 3 s, so the kiosk gets 98 and not the bank's
// approval, the card is not credited, and the debit's reversal gives the
// bank's money back.
func TestAnswerBudgetBoundsTransferLeg(t *testing.T) {
	sw, sim := linkedSwitch(t, func(c *Config) {
		c.POS.AnswerTimeout = Duration(3 * time.Second)
		c.Transfer = TransferConfig{MaxLoad: 50000, MaxDailyLoad: 80000}
		c.Gateways[0].SendTimeout = 20 * time.Second
	})
	if _, err := sw.recharge.svc.Bind(cardStaff, demoBank, bankCard, bankAccount, "test"); err != nil {
		t.Fatal(err)
	}
	kiosk := signedOn(t, sw, termKiosk, canteen)
	cash, _ := purses(t, sw, cardStaff)
	_ = sim.SetFaults(gwsim.Faults{Delay: 8 * time.Second})
	req, err := kiosk.TransferLoad(cardStaff, 2000, pinStaff)
	expectRC(t, "bank slower than the answer budget", do(t, kiosk, req, err), spec.RCNoAnswer)
	expectPurses(t, sw, cardStaff, cash, 0)
	_ = sim.SetFaults(gwsim.Faults{})
	waitUntil(t, "the unanswered debit reversed", func() bool { return simBalance(t, sim) == bankStart })
}
