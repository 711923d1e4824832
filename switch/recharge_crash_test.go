package switching

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/rechargesim"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
)

// TestRechargeCrashPoints kills switchd with SIGKILL just before and just
// after an outside credit's synced commit. The platform had no answer, so
// it repeats the order after the restart: before the commit the repeat is
// a fresh credit, after it the stored outcome; the card is credited once
// either way.
func TestRechargeCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	for _, point := range []string{"recharge-before-commit", "recharge-after-commit"} {
		t.Run(point, func(t *testing.T) {
			d := newDaemon(t)
			d.start(point)
			c, err := rechargesim.DialISO(d.gateway, demoInst, demoZAK)
			if err != nil {
				t.Fatal(err)
			}
			op := rechargesim.Op{Order: "CRASH-1", Card: cardZhaoMin, Amount: 1234}
			if a, err := c.Credit(op); err == nil {
				t.Fatalf("credit answered (%s) although the daemon was to die", a.RC)
			}
			c.Close()
			d.waitKilled()
			d.start("")
			c, err = rechargesim.DialISO(d.gateway, demoInst, demoZAK)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a, err := c.Credit(op)
			want(t, "repeat after the crash", a, err, "00")
			if got := d.cash(cardZhaoMin); got != "12.34" {
				t.Fatalf("cash %s after the repeat, want 12.34", got)
			}
			a, err = c.Credit(op)
			want(t, "second repeat", a, err, "00")
			if got := d.cash(cardZhaoMin); got != "12.34" {
				t.Fatalf("cash %s after a second repeat, want 12.34", got)
			}
		})
	}
}

// TestRechargeCrash credits and reverses orders from several platform
// connections while switchd is killed with SIGKILL at random moments
// (RECHARGE_CRASH_KILLS times, default 2; make crashtest-recharge runs
// 10). A platform that gets no answer repeats the same order until it
// gets one, as a real one does. At the end every card holds its opening
// balance plus exactly the credits acknowledged 00 less the reversals
// acknowledged, and the ledger is consistent: nothing acknowledged is
// lost, nothing is credited twice.
func TestRechargeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	kills := 2
	if s := os.Getenv("RECHARGE_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			t.Fatalf("RECHARGE_CRASH_KILLS=%q: want 1..100", s)
		}
		kills = n
	}
	d := newDaemon(t)
	d.start("")
	cards := []string{cardZhaoMin, cardStaff}
	opening := map[string]ledger.Fen{}
	for _, pan := range cards {
		v, err := ledger.ParseYuan(d.cash(pan))
		if err != nil {
			t.Fatal(err)
		}
		opening[pan] = v
	}

	var (
		mu       sync.Mutex
		expected = map[string]ledger.Fen{}
		answered int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 4
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var c *rechargesim.ISO
			// do sends op until it is answered (reconnecting while the
			// daemon is down), within a bound.
			do := func(send func(*rechargesim.ISO) (rechargesim.Answer, error)) (rechargesim.Answer, bool) {
				deadline := time.Now().Add(60 * time.Second)
				for time.Now().Before(deadline) {
					if c == nil {
						var err error
						if c, err = rechargesim.DialISO(d.gateway, demoInst, demoZAK); err != nil {
							c = nil
							time.Sleep(50 * time.Millisecond)
							continue
						}
						c.Timeout = 3 * time.Second
					}
					a, err := send(c)
					if err == nil {
						return a, true
					}
					c.Close()
					c = nil
				}
				t.Errorf("client %d: no answer within a minute", w)
				return rechargesim.Answer{}, false
			}
			var approved []rechargesim.Op
			for i := 0; ; i++ {
				select {
				case <-stop:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				if i%5 == 4 && len(approved) > 0 {
					k := rng.IntN(len(approved))
					op := approved[k]
					approved = append(approved[:k], approved[k+1:]...)
					a, ok := do(func(c *rechargesim.ISO) (rechargesim.Answer, error) { return c.Reverse(op) })
					if !ok {
						return
					}
					if a.RC != "00" {
						t.Errorf("reversal of %s: %s", op.Order, a.RC)
						return
					}
					mu.Lock()
					expected[op.Card] -= ledger.Fen(op.Amount)
					answered++
					mu.Unlock()
					continue
				}
				op := rechargesim.Op{Order: fmt.Sprintf("C%d-%06d", w, i), Card: cards[rng.IntN(len(cards))], Amount: 1 + rng.Int64N(50)}
				a, ok := do(func(c *rechargesim.ISO) (rechargesim.Answer, error) { return c.Credit(op) })
				if !ok {
					return
				}
				switch a.RC {
				case "00":
					approved = append(approved, op)
					mu.Lock()
					expected[op.Card] += ledger.Fen(op.Amount)
					answered++
					mu.Unlock()
				case "61":
				default:
					t.Errorf("credit %s: %s", op.Order, a.RC)
					return
				}
			}
		}()
	}
	for k := 1; k <= kills; k++ {
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		d.waitKilled()
		d.start("")
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if answered < kills {
		t.Fatalf("only %d operations answered in %d kills", answered, kills)
	}
	for _, pan := range cards {
		got, err := ledger.ParseYuan(d.cash(pan))
		if err != nil {
			t.Fatal(err)
		}
		if want := opening[pan] + expected[pan]; got != want {
			t.Errorf("card %s: cash %s, want opening %s + acknowledged %s = %s", pan, got, opening[pan], expected[pan], want)
		}
	}
	// The books, read offline once the daemon is gone.
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	db, err := pebble.Open(filepath.Join(d.dir, "data"), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := ledger.Check(db)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger check: %v %v", err, rep.Violations)
	}
	t.Logf("%d kills, %d operations acknowledged, ledger consistent", kills, answered)
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)      {}
func (quietPebble) Errorf(f string, a ...any) { fmt.Printf(f+"\n", a...) }
func (quietPebble) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
