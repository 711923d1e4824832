package posim

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/posim/posimtest"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	switching "github.com/cardswitch/cardswitch/switch"
	"github.com/cockroachdb/pebble/v2"
)

// The seeded test card of startSwitch.
const (
	richCard    = "6230159900000000016"
	richOpening = 100_000_000
)

// startSwitch runs a real switch in-process on ephemeral ports with the
// demo data (as switch/acceptor_test.go does) and returns its POS address
// and data directory.
func startSwitch(t *testing.T) (sw *switching.Switch, pos, dataDir string) {
	t.Helper()
	return startSwitchWith(t, nil)
}

// startSwitchWith is startSwitch with a change to the configuration.
func startSwitchWith(t testing.TB, mutate func(*switching.Config)) (sw *switching.Switch, pos, dataDir string) {
	t.Helper()
	return posimtest.StartSwitch(t, func(cfg *switching.Config) {
		// A rich staff card besides the demo ones: no fee, no limits, and
		// enough money that no reversal ever meets an empty purse.
		cfg.Seed.Cards = append(append([]switching.SeedCard(nil), cfg.Seed.Cards...), switching.SeedCard{
			CardSpec: ledger.CardSpec{PAN: richCard, Holder: "posim test", HolderType: ledger.Staff, Cash: richOpening},
			PIN:      "654321",
		})
		if mutate != nil {
			mutate(cfg)
		}
	})
}

func TestRunAgainstSwitch(t *testing.T) {
	_, pos, _ := startSwitch(t)
	terms, err := DemoTerminals(5)
	if err != nil {
		t.Fatal(err)
	}
	for _, rate := range []float64{0, 300} {
		var ack, progress bytes.Buffer
		res, err := Run(context.Background(), Options{
			Addr: pos, Terminals: terms, Duration: 1200 * time.Millisecond, Rate: rate, Mix: MixMixed,
			AckLog: NewAckLog(&ack, NewCardIndex(RunCards(terms, nil))), Progress: &progress, Seed: 7,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 0 || res.Unresolved != 0 || res.Approved == 0 {
			t.Fatalf("rate %g: %s unresolved %d", rate, res.Summary(), res.Unresolved)
		}
		if !strings.HasPrefix(progress.String(), "progress t=1s ") {
			t.Errorf("rate %g: progress %q", rate, progress.String())
		}
		acks, err := ReadAcks(&ack, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		// Every answer is acknowledged, except the consumes of the
		// reversal kind, whose answers the terminal treats as lost.
		if n := uint64(len(acks)); n > res.Approved+res.Declined || n < (res.Approved+res.Declined)*9/10 {
			t.Errorf("rate %g: %d acks for %d answers", rate, n, res.Approved+res.Declined)
		}
		if rate > 0 {
			// Open loop at 300/s for 1.2 s: 360 sends come due, each
			// either made by a terminal or counted missed (every
			// terminal busy, or due at the very end: the pacer's own
			// late ticks and tokens no terminal took are counted when
			// the run ends). How many are missed measures the machine
			// (a loaded CI machine under -race stalls terminals and the
			// pacer past many ticks), not the pacer, so the check is on
			// the sum: more than 400 (360, the reversal kind's second
			// exchanges and rounding) is a pacer running fast or
			// terminals not waiting for it, fewer than 350 sends lost.
			sent := res.Approved + res.Declined
			if sent > 400 || sent+res.Missed > 400 || sent+res.Missed < 350 {
				t.Errorf("fixed rate 300/s for 1.2 s: %d answered, %d missed", sent, res.Missed)
			}
		}
	}
}

// cuttingProxy forwards POS frames both ways but, every nth response,
// closes the connection instead of forwarding it: the switch has
// committed, the terminal never hears. It is what a crash after the
// commit looks like from the terminal.
type cuttingProxy struct {
	ln     net.Listener
	target string
	nth    int64
	seen   atomic.Int64
	cut    atomic.Int64
	wg     sync.WaitGroup
}

func newCuttingProxy(t *testing.T, target string, nth int64) *cuttingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, target: target, nth: nth}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cuttingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(s, c); s.Close() }()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			defer s.Close()
			var lb [2]byte
			for {
				if _, err := io.ReadFull(s, lb[:]); err != nil {
					return
				}
				body := make([]byte, binary.BigEndian.Uint16(lb[:]))
				if _, err := io.ReadFull(s, body); err != nil {
					return
				}
				// Never cut sign-on answers (MTI 0810 after TPDU+header).
				if body[11] != 0x08 && p.seen.Add(1)%p.nth == 0 {
					p.cut.Add(1)
					return
				}
				if _, err := c.Write(append(lb[:], body...)); err != nil {
					return
				}
			}
		}()
	}
}

// TestLostAnswersAreReversed: answers cut on the way back are reversed
// by the terminals, and the ledger's balance and holds are what the ack
// log says, for the mixed profile and for pre-auths with their
// completions and cancels.
func TestLostAnswersAreReversed(t *testing.T) {
	for _, mix := range []Mix{MixMixed, MixPreAuth} {
		t.Run(mix.Name, func(t *testing.T) { lostAnswersAreReversed(t, mix) })
	}
}

func lostAnswersAreReversed(t *testing.T, mix Mix) {
	sw, pos, dataDir := startSwitch(t)
	proxy := newCuttingProxy(t, pos, 9)
	terms, err := DemoTerminals(4)
	if err != nil {
		t.Fatal(err)
	}
	// The rich staff card alone: no fee, no limits, so the ack log
	// explains its balance to the fen.
	for i := range terms {
		terms[i].Cards = []Card{{PAN: richCard, PIN: "654321"}}
	}
	var ack bytes.Buffer
	res, err := Run(context.Background(), Options{
		Addr: proxy.ln.Addr().String(), Terminals: terms, Duration: time.Second, Mix: mix,
		Timeout: 2 * time.Second, AckLog: NewAckLog(&ack, NewCardIndex([]string{richCard})), Seed: 11,
	})
	if err != nil {
		t.Fatal(err)
	}
	ackText := ack.String()
	if strings.Contains(ackText, richCard) || !strings.Contains(ackText, " #1 ") {
		t.Fatalf("the ack log must name the card by its index, not its number:\n%s", ackText)
	}
	if proxy.cut.Load() == 0 || res.Reversals == 0 || res.Reconnects == 0 || res.Unresolved != 0 {
		t.Fatalf("cuts %d reversals %d reconnects %d unresolved %d", proxy.cut.Load(), res.Reversals, res.Reconnects, res.Unresolved)
	}
	acks, err := ReadAcks(&ack, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := ledger.RecommendedPebbleOptions()
	o.ReadOnly = true
	db, err := pebble.Open(dataDir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bad, err := Reconcile(acks, map[string]spec.Amount{richCard: richOpening}, func(pan string) (spec.Amount, spec.Amount, error) {
		v, _, err := ledger.CardByPAN(db, pan)
		return spec.Amount(v.Balances.Cash + v.Balances.Subsidy), spec.Amount(v.Balances.Held), err
	})
	if err != nil || len(bad) > 0 {
		t.Logf("ack log:\n%s", ackText)
		t.Fatalf("after %d cut answers and %d reversals: %v %v", proxy.cut.Load(), res.Reversals, bad, err)
	}
}
