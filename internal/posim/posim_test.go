package posim

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
)

func TestHistogramQuantiles(t *testing.T) {
	// 1..1000 ms, one each: the q-quantile is q·1000 ms within the bucket
	// precision (1/64 relative).
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}} {
		got := h.Quantile(c.q)
		if math.Abs(got-c.want)/c.want > 1.0/64 {
			t.Errorf("q%.3f = %.3f ms, want %.0f ms ±1.6%%", c.q, got, c.want)
		}
	}
	// Below 128 µs buckets are exact.
	var small Histogram
	for _, us := range []int{5, 7, 7, 100} {
		small.Record(time.Duration(us) * time.Microsecond)
	}
	if got := small.Quantile(0.5); got != 0.007 {
		t.Errorf("p50 of 5,7,7,100 µs = %v ms, want 0.007", got)
	}
	if got := small.Quantile(1); got != 0.1 {
		t.Errorf("max = %v ms, want 0.1", got)
	}
	var empty Histogram
	if empty.Quantile(0.99) != 0 {
		t.Error("empty histogram has a quantile")
	}
	var merged Histogram
	merged.Merge(&h)
	merged.Merge(&small)
	if merged.Count() != 1004 {
		t.Errorf("merged count %d", merged.Count())
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value falls in a bucket whose middle is within 1/64 of it,
	// and bucket indexes never decrease as values grow.
	last := 0
	for _, us := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 4095, 4096, 1 << 20, 60_000_000} {
		b := bucketOf(us)
		if b < last || b >= histBuckets {
			t.Fatalf("bucket of %d µs = %d (previous %d)", us, b, last)
		}
		last = b
		if mid := bucketValue(b); us >= histExact && math.Abs(mid-float64(us))/float64(us) > 1.0/64 {
			t.Errorf("%d µs in bucket %d with middle %.1f", us, b, mid)
		}
	}
}

func TestMixProportions(t *testing.T) {
	for _, c := range []struct {
		mix  Mix
		want map[Kind]int
	}{
		{MixConsume, map[Kind]int{KindConsume: 100}},
		{MixBalance, map[Kind]int{KindBalance: 100}},
		// The mixed profile: consume 80%, balance 10%, void 4%,
		// refund 2%, reversal 2%, cash load 2%.
		{MixMixed, map[Kind]int{KindConsume: 80, KindBalance: 10, KindVoid: 4, KindRefund: 2, KindReversal: 2, KindCashLoad: 2}},
		{MixPreAuth, map[Kind]int{KindConsume: 40, KindPreAuth: 30, KindCompletion: 20, KindPreAuthCancel: 10}},
	} {
		got := map[Kind]int{}
		for r := 0; r < 100; r++ {
			got[c.mix.Pick(r)]++
		}
		for k := Kind(0); k < numKinds; k++ {
			if got[k] != c.want[k] {
				t.Errorf("%s: %s %d%%, want %d%%", c.mix.Name, k, got[k], c.want[k])
			}
		}
	}
	if _, err := ParseMix("everything"); err == nil {
		t.Error("unknown mix accepted")
	}
	if m, err := ParseMix("balance"); err != nil || m.Name != "balance" {
		t.Errorf("balance mix: %v %v", m.Name, err)
	}
}

func TestSimWalksMixExactly(t *testing.T) {
	// A terminal's draws follow a shuffled cycle: 200 draws give exactly
	// twice the weights.
	s := newSim(TerminalSpec{ID: "t"}, &runner{opts: &Options{Mix: MixMixed}}, 42)
	got := map[Kind]int{}
	for i := 0; i < 200; i++ {
		got[s.nextKind()]++
	}
	for k, w := range MixMixed.Weights {
		if got[Kind(k)] != 2*w {
			t.Errorf("%s: %d of 200, want %d", Kind(k), got[Kind(k)], 2*w)
		}
	}
}

func TestPacer(t *testing.T) {
	// 2,000 per second: 2 per ms. Late or irregular ticks catch up from
	// elapsed time, never drift.
	p := NewPacer(2000)
	steps := []struct {
		at   time.Duration
		want int64
	}{
		{0, 0}, {time.Millisecond, 2}, {1500 * time.Microsecond, 1}, {1500 * time.Microsecond, 0},
		{5 * time.Millisecond, 7}, {4 * time.Millisecond, 0}, {time.Second, 1990},
	}
	for _, s := range steps {
		if got := p.Due(s.at); got != s.want {
			t.Fatalf("due at %s = %d, want %d", s.at, got, s.want)
		}
	}
	if p.Issued() != 2000 {
		t.Fatalf("issued %d after 1 s at 2000/s", p.Issued())
	}
	// A fractional rate: 0.5/s issues one every 2 s.
	q := NewPacer(0.5)
	if q.Due(1999*time.Millisecond) != 0 || q.Due(2*time.Second) != 1 {
		t.Fatal("0.5/s pacing")
	}
}

// TestPaceCountsEveryDueSend: every send due before the pacing ends is
// issued or counted missed, also when the pacer itself runs late (here:
// it starts after its whole second has passed, as a goroutine stalled on
// a loaded machine would).
func TestPaceCountsEveryDueSend(t *testing.T) {
	start := time.Now().Add(-time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(time.Second))
	defer cancel()
	tokens := make(chan struct{}, 3)
	var missed atomic.Uint64
	Pace(ctx, start, 300, tokens, &missed)
	if n := uint64(len(tokens)) + missed.Load(); n != 300 {
		t.Fatalf("%d tokens and %d missed for 1 s at 300/s, want 300 in all", len(tokens), missed.Load())
	}
	// Cancelled before its deadline: only what came due until then.
	start = time.Now().Add(-500 * time.Millisecond)
	ctx, cancel = context.WithDeadline(context.Background(), start.Add(time.Hour))
	cancel()
	missed.Store(0)
	Pace(ctx, start, 100, make(chan struct{}), &missed)
	paced := time.Since(start)
	if m := missed.Load(); m < 50 || float64(m) > 100*paced.Seconds() {
		t.Fatalf("%d missed for %s at 100/s", m, paced)
	}
}

func TestAckLogRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	const staff, student = "6230151000000000020", "6230151000000000012"
	idx := NewCardIndex([]string{staff, student, staff})
	l := NewAckLog(&buf, idx)
	acks := []Ack{
		{"10000001", "000001", "000002", "consume", staff, 1500, "00"},
		{"10000001", "000001", "000003", "balance_inquiry", staff, 0, "00"},
		{"90000001", "000004", "000010", "reversal", student, 999, "00"},
		{"90000001", "000004", "000011", "consume", "6230151000000000038", 1, "00"}, // not in the index
	}
	for _, a := range acks {
		l.Write(a)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Sorted: student (…012) is #1, staff (…020) #2; no card number.
	want := "10000001 000001 000002 consume #2 1500 00\n" +
		"10000001 000001 000003 balance_inquiry #2 0 00\n" +
		"90000001 000004 000010 reversal #1 999 00\n" +
		"90000001 000004 000011 consume #0 1 00\n"
	if buf.String() != want {
		t.Fatalf("ack log\n%s\nwant\n%s", buf.String(), want)
	}
	back, err := ReadAcks(strings.NewReader(buf.String()), 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range []string{"#2", "#2", "#1", "#0"} {
		if back[i].Card != ref {
			t.Errorf("line %d: card %q, want %q", i+1, back[i].Card, ref)
		}
	}
	if p, ok := idx.PAN("#1"); !ok || p != student {
		t.Errorf("#1 names %q %v", p, ok)
	}
	for _, r := range []string{"#0", "#3", "1", "#", "#x"} {
		if _, ok := idx.PAN(r); ok {
			t.Errorf("%q names a card", r)
		}
	}
	for _, bad := range []string{
		"10000001 000001 000002 consume #2 1500",
		"10000001 000001 000002 consume #2 -5 00",
		"10000001 000001 2 consume #2 5 00",
		"10000001 000001 000002 consume #2 9999999999999 00",
		"10000001 000001 000002 consume 6230151000000000020 1500 00", // a card number
		strings.Repeat("x", 300),
	} {
		_, err := ParseAck(bad)
		if !errors.Is(err, ErrBadAckLine) {
			t.Errorf("ParseAck(%.40q): %v, want ErrBadAckLine", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "6230151") {
			t.Errorf("error repeats the card number: %v", err)
		}
	}
	if _, err := ReadAcks(strings.NewReader(want), 2); err == nil {
		t.Error("line bound not applied")
	}
}

func TestDeltas(t *testing.T) {
	const a, b = "#1", "#2"
	acks := []Ack{
		{"T1", "000001", "000001", "consume", a, 1000, "00"},
		{"T1", "000001", "000002", "consume", a, 500, "51"}, // declined: no effect
		{"T1", "000001", "000003", "consume_void", a, 1000, "00"},
		{"T1", "000001", "000004", "consume", b, 700, "00"},
		{"T1", "000001", "000005", "refund", b, 200, "00"},
		{"T1", "000001", "000006", "cash_load", b, 5000, "00"},
		{"T1", "000001", "000007", "reversal", b, 300, "00"}, // original never answered: nothing
		{"T2", "000001", "000001", "consume", b, 100, "00"},
		{"T2", "000001", "000001", "reversal", b, 100, "00"}, // undoes the acknowledged consume
		{"T2", "000001", "000002", "balance_inquiry", b, 0, "00"},
	}
	d, err := Deltas(acks)
	if err != nil {
		t.Fatal(err)
	}
	if d[a] != 0 || d[b] != -700+200+5000 {
		t.Fatalf("deltas %v, want %s 0 and %s %d", d, a, b, -700+200+5000)
	}
	if _, err := Deltas([]Ack{{"T", "1", "000001", "completion_void", a, 1, "00"}, {"T", "1", "000002", "pending_claim", a, 1, "00"}}); err == nil {
		t.Error("unmodelled type accepted")
	}
	dup := []Ack{acks[0], acks[0]}
	if _, err := Deltas(dup); err == nil {
		t.Error("the same STAN approved twice accepted")
	}
}

func TestReconcile(t *testing.T) {
	const a, b = "6230150000010000018", "6230150000010000026"
	opening := map[string]spec.Amount{a: 10000, b: 10000}
	acks := []Ack{{"T1", "000001", "000001", "consume", "#1", 1000, "00"}} // #1 = a, sorted
	ledgerState := map[string]spec.Amount{a: 9000, b: 10000}
	bal := func(p string) (spec.Amount, spec.Amount, error) { return ledgerState[p], 0, nil }
	if bad, err := Reconcile(acks, opening, bal); err != nil || len(bad) != 0 {
		t.Fatalf("consistent ledger: %v %v", bad, err)
	}
	// A phantom (an unacknowledged debit that survived) and a lost ack.
	ledgerState[b] = 9900
	ledgerState[a] = 10000
	bad, err := Reconcile(acks, opening, bal)
	if err != nil || len(bad) != 2 {
		t.Fatalf("two discrepancies expected, got %q %v", bad, err)
	}
	if !strings.Contains(bad[0], cardno.Mask(a)) || strings.Contains(bad[0], a) {
		t.Errorf("discrepancy must name the card masked: %q", bad[0])
	}
	// A reference outside the cards file.
	bad, _ = Reconcile([]Ack{{"T1", "000001", "000001", "consume", "#3", 1, "00"}}, opening, bal)
	if len(bad) == 0 || !strings.Contains(bad[0], "#3") {
		t.Errorf("unknown reference: %q", bad)
	}
}

func TestParseLedgerCard(t *testing.T) {
	out := "card        623015******0018\nholder      posim (staff)\nstate       active, list none, PIN tries 0\n" +
		"cash        999990.00\nsubsidy     0.50\nheld        0.00 (0 holds)\navailable   999990.50\n"
	total, held, err := parseLedgerCard(out)
	if err != nil || total != 99999050 || held != 0 {
		t.Fatalf("total %d held %d err %v", total, held, err)
	}
	if _, _, err := parseLedgerCard("card x\n"); err == nil {
		t.Error("output without balances accepted")
	}
}

func TestIdentities(t *testing.T) {
	// Luhn: the worked example of ISO/IEC 7812-1 Annex B as commonly
	// cited, 7992739871 → check digit 3.
	if d := luhnCheck("7992739871"); d != 3 {
		t.Fatalf("Luhn check of 7992739871 = %d, want 3", d)
	}
	// The demo cards of README.md#demo-data carry Luhn check digits.
	for _, pan := range []string{"6230151000000000012", "6230151000000000020", "6230151000000000038"} {
		if d := luhnCheck(pan[:18]); int(pan[18]-'0') != d {
			t.Errorf("demo card %s: check digit %d", pan, d)
		}
	}
	if got := CardPAN("623015", 42, 7); len(got) != 19 || got[:18] != "623015000042000007" {
		t.Fatalf("CardPAN = %s", got)
	}
	if got := TerminalID(123456, 42); got != "64560042" {
		t.Fatalf("TerminalID = %s", got)
	}
	// KCV of the demo TMK, checked with `switchctl hsm kcv --alg tdes`
	// (08D7B4FB629D0885): the first 3 bytes.
	tmk, _ := hex.DecodeString(DemoTMK)
	if got := KCV(tmk); got != "08D7B4" {
		t.Fatalf("KCV = %s, want 08D7B4", got)
	}
	for _, c := range []struct {
		f    spec.Amount
		want string
	}{{0, "0.00"}, {5, "0.05"}, {123450, "1234.50"}, {-250, "-2.50"}} {
		if got := Yuan(c.f); got != c.want {
			t.Errorf("Yuan(%d) = %s, want %s", c.f, got, c.want)
		}
	}
}

func TestSummaryFormat(t *testing.T) {
	r := &Result{Elapsed: 2 * time.Second, Approved: 3000, Declined: 1000, Errors: 2}
	r.Latency.Record(100 * time.Microsecond) // below 128 µs buckets are exact
	want := "summary tps=2000.0 approved=3000 declined=1000 errors=2 p50_ms=0.100 p99_ms=0.100 p999_ms=0.100"
	if got := r.Summary(); got != want {
		t.Fatalf("summary\n%s\nwant\n%s", got, want)
	}
}

func TestOptionsBounds(t *testing.T) {
	terms, err := DemoTerminals(5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DemoTerminals(6); !errors.Is(err, ErrOptions) {
		t.Fatal("6 demo terminals accepted")
	}
	for _, o := range []Options{
		{Terminals: terms, Duration: time.Second},
		{Addr: "x:1", Duration: time.Second},
		{Addr: "x:1", Terminals: terms},
		{Addr: "x:1", Terminals: terms, Duration: time.Second, Rate: -1},
		{Addr: "x:1", Terminals: []TerminalSpec{{ID: "1"}}, Duration: time.Second},
		{Addr: "x:1", Terminals: terms, Duration: time.Second, Timeout: -time.Second},
		{Addr: "x:1", Terminals: terms, Duration: time.Second, Drain: 2 * MaxWait},
		{Addr: "x:1", Terminals: terms, Duration: time.Second, ReconnectFor: 2 * MaxWait},
	} {
		if err := o.check(); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v accepted", o)
		}
	}
	ok := Options{Addr: "x:1", Terminals: terms, Duration: time.Second}
	if err := ok.check(); err != nil || ok.Timeout != 10*time.Second {
		t.Fatalf("defaults: %v, timeout %s", err, ok.Timeout)
	}
}

func TestKCVMatches(t *testing.T) {
	for _, c := range []struct {
		got  string
		want bool
	}{{"4C985A", true}, {"4c985a", true}, {"346339383561", true}, {"4C985B", false}, {"", false}, {"zz", false}} {
		if kcvMatches(c.got, "4C985A") != c.want {
			t.Errorf("kcvMatches(%q) = %v", c.got, !c.want)
		}
	}
}

func TestParseStatTicks(t *testing.T) {
	// proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...; a comm with a space and a
	// parenthesis must not shift the fields.
	stat := "4242 (switch d) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 269 0 0 20 0 9 0 100 0 0"
	if got, err := parseStatTicks(stat); err != nil || got != 1000 {
		t.Fatalf("ticks %d %v, want 731+269", got, err)
	}
	if _, err := parseStatTicks("4242 (x) S 1"); err == nil {
		t.Fatal("short stat accepted")
	}
}

// FuzzParseAck: any line either parses into an ack that formats back to
// the same fields, or is rejected with ErrBadAckLine; never a panic.
func FuzzParseAck(f *testing.F) {
	f.Add("10000001 000001 000002 consume #12 1500 00")
	f.Add("T 1 000001 reversal #1 0 A0")
	f.Add("10000001 000001 000002 consume 6230151000000000020 1500 00")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		a, err := ParseAck(line)
		if err != nil {
			if !errors.Is(err, ErrBadAckLine) {
				t.Fatalf("error %v is not ErrBadAckLine", err)
			}
			return
		}
		b, err := ParseAck(a.String())
		if err != nil || b != a {
			t.Fatalf("%q → %+v → %q → %+v, %v", line, a, a.String(), b, err)
		}
	})
}

// TestHolds: what a card has held is its approved pre-auths less those
// reversed, completed or cancelled (a completion or cancel reversed holds
// again); completions debit, pre-auths and cancels move no balance.
func TestHolds(t *testing.T) {
	const a, b = "#1", "#2"
	acks := []Ack{
		{"T1", "000001", "000001", "pre_auth", a, 1000, "00"},            // completed below
		{"T1", "000001", "000002", "pre_auth", a, 300, "00"},             // stands
		{"T1", "000001", "000003", "pre_auth", a, 9999, "51"},            // declined: nothing
		{"T1", "000001", "000004", "pre_auth_completion", a, 1000, "00"}, // releases 1000, debits it
		{"T1", "000001", "000005", "pre_auth", b, 400, "00"},             // cancelled below
		{"T1", "000001", "000006", "pre_auth_cancel", b, 400, "00"},
		{"T1", "000001", "000007", "pre_auth", b, 250, "00"},
		{"T1", "000001", "000008", "pre_auth_completion", b, 250, "00"},
		{"T1", "000001", "000008", "reversal", b, 250, "00"}, // the completion undone: 250 held again
		{"T2", "000001", "000001", "pre_auth", b, 70, "00"},
		{"T2", "000001", "000001", "reversal", b, 70, "00"}, // the pre-auth undone
		{"T2", "000001", "000002", "consume", b, 10, "00"},
	}
	h, err := Holds(acks)
	if err != nil {
		t.Fatal(err)
	}
	if h[a] != 300 || h[b] != 250 {
		t.Fatalf("holds %v, want %s 300 and %s 250", h, a, b)
	}
	d, err := Deltas(acks)
	if err != nil {
		t.Fatal(err)
	}
	if d[a] != -1000 || d[b] != -10 {
		t.Fatalf("deltas %v, want %s -1000 and %s -10", d, a, b)
	}
}

// TestCPUMeter: the meter reads both the server's and posim's own CPU
// time (here one process stands in for both), and -1 for a server it
// cannot read.
func TestCPUMeter(t *testing.T) {
	m := StartCPU(os.Getpid())
	deadline := time.Now().Add(20 * time.Second)
	sum := 0
	for {
		server, self := m.Stop()
		if server > 0 && self > 0 {
			break
		}
		if server < 0 || self < 0 {
			t.Fatalf("server %d ticks, self %d: unreadable", server, self)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU tick counted in 20 s of work (server %d, self %d)", server, self)
		}
		for i := range 1_000_000 {
			sum += i
		}
	}
	_ = sum
	if server, self := StartCPU(0).Stop(); server != -1 || self < 0 {
		t.Errorf("without a server PID: server %d, self %d; want -1 and a count", server, self)
	}
	gone := StartCPU(1 << 30) // above the kernel's PID limit: no such process
	if server, _ := gone.Stop(); server != -1 {
		t.Errorf("an unreadable server: %d ticks, want -1", server)
	}
}
