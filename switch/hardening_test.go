package switching

import (
	"bytes"
	"encoding/json"
	"github.com/cardswitch/cardswitch/switch/admin"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// End-to-end tests of the defences in docs/security.md: each reproduces an
// attack or fault against the real daemon and shows it fails safely.

// logSink collects the daemon's encoded log lines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}
func (s *logSink) Sync() error { return nil }
func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// realLogger is the daemon's own logger (NewLogger's encoder, masking
// included) writing into a sink.
func realLogger(t *testing.T, level string) (*zap.Logger, *logSink) {
	t.Helper()
	sink := &logSink{}
	log, _, err := newLoggerTo(LogConfig{Format: "json", Level: level}, sink)
	if err != nil {
		t.Fatal(err)
	}
	return log, sink
}

func refusals(t *testing.T, sw *Switch, listener, reason string) float64 {
	t.Helper()
	return metricValue(t, sw, "switch_rejected_total", map[string]string{"listener": listener, "reason": reason})
}

func httpDo(t *testing.T, sw *Switch, method, path, token string) (int, []byte) {
	t.Helper()
	_, _, httpAddr := sw.Addrs()
	req, err := http.NewRequest(method, "http://"+httpAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

// TestEchoFloodLeavesJournalUnchanged: a flood of echo tests, frames that do
// not decode and requests of unknown terminals writes nothing to the
// journal; past the per-address budget the connection is closed; a real
// terminal keeps working.
func TestEchoFloodLeavesJournalUnchanged(t *testing.T) {
	sw := testSwitch(t)
	pos, _, _ := sw.Addrs()
	term := signedOn(t, sw, termCanteen, canteen)
	before := sw.journal.LastSeq()

	echo := unhex(t, echoRequest)
	unknown := bytes.Replace(append([]byte(nil), echo...), []byte("10000001"), []byte("99999999"), 1)
	garbage := undecodableFrame(t)
	c := dial(t, pos)
	const n = 1000 // within the demo's budget for this machine
	for i := 0; i < n; i++ {
		frame := echo
		switch i % 3 {
		case 1:
			frame = unknown
		case 2:
			frame = garbage
		}
		if _, err := roundTrip(t, c, frame); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if after := sw.journal.LastSeq(); after != before {
		t.Fatalf("the flood wrote %d journal entries", after-before)
	}
	if got := metricValue(t, sw, "switch_transactions_total", map[string]string{"type": spec.EchoTest.String(), "rc": "00"}); got < n/3 {
		t.Fatalf("echo tests counted: %v", got)
	}
	// The real terminal's transaction is journaled as ever.
	req, err := term.Consume(cardStaff, 100, "")
	expectRC(t, "consume after the flood", do(t, term, req, err), spec.RCApproved)
	if sw.journal.LastSeq() != before+2 {
		t.Fatalf("journal moved from %d to %d, want a request and a response", before, sw.journal.LastSeq())
	}
}

func TestUnauthenticatedRateLimit(t *testing.T) {
	sw := testSwitch(t, func(c *Config) {
		c.POS.UnauthenticatedPerSecond = 5
		c.POS.TrustedNetworks = nil
	})
	pos, _, _ := sw.Addrs()
	term := signedOn(t, sw, termCanteen, canteen)
	c := dial(t, pos)
	echo := unhex(t, echoRequest)
	var answered int
	for answered = 0; answered < 1000; answered++ {
		if _, err := roundTrip(t, c, echo); err != nil {
			break
		}
	}
	// A burst of 2 seconds' worth (10), plus what refilled meanwhile (5 a
	// second; a slow machine takes longer over the loop).
	if answered < 10 || answered >= 1000 {
		t.Fatalf("%d echo tests answered before the close, want about 10", answered)
	}
	if refusals(t, sw, "pos", "unauthenticated_rate_limit") < 1 {
		t.Fatal("not counted")
	}
	// Messages that prove their terminal are not limited.
	for i := 0; i < 20; i++ {
		req, err := term.Balance(cardStaff, pinStaff)
		expectRC(t, "balance", do(t, term, req, err), spec.RCApproved)
	}
}

// TestNATTerminalsConnect: 500 terminals behind one address (this
// machine, a trusted network of the demo configuration) are all served.
func TestNATTerminalsConnect(t *testing.T) {
	sw := testSwitch(t)
	pos, _, _ := sw.Addrs()
	echo, want := unhex(t, echoRequest), unhex(t, echoResponse)
	conns := make([]net.Conn, 0, 500)
	for i := 0; i < 500; i++ {
		conns = append(conns, dial(t, pos))
	}
	for i, c := range conns {
		got, err := roundTrip(t, c, echo)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("terminal %d of 500: %X %v", i, got, err)
		}
	}
	if r := refusals(t, sw, "pos", "peer_connection_limit"); r != 0 {
		t.Fatalf("%v refused", r)
	}
}

func TestFirstFrameDeadline(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.POS.FirstFrameTimeout = Duration(300 * time.Millisecond) })
	pos, _, _ := sw.Addrs()
	silent := dial(t, pos)
	// Garbage that never decodes does not keep a connection either: it
	// is sent until the switch has closed the connection (a write fails),
	// so that only the first-frame deadline can have closed it, however
	// slow the machine. Bounded: at most 600 frames.
	noisy := dial(t, pos)
	garbage := undecodableFrame(t)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range 600 {
			if _, err := noisy.Write(garbage); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	// Both closes are bounded by expectClosed's read deadline, well
	// above the 300 ms; what closed them is in the counter, counted
	// before the close.
	expectClosed(t, silent)
	expectClosed(t, noisy)
	if got := refusals(t, sw, "pos", "first_frame_timeout"); got != 2 {
		t.Fatalf("first_frame_timeout counted %v times, want 2", got)
	}
	// A terminal that sent a valid frame may then sit idle.
	c := dial(t, pos)
	if _, err := roundTrip(t, c, unhex(t, echoRequest)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := roundTrip(t, c, unhex(t, echoRequest)); err != nil {
		t.Fatalf("idle after a valid frame: %v", err)
	}
}

// TestTerminalConnectionLimit: a terminal's newest connection displaces
// its oldest beyond the limit; nobody without its keys can take its slots.
func TestTerminalConnectionLimit(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.POS.MaxConnectionsPerTerminal = 1 })
	pos, _, _ := sw.Addrs()
	// Someone without the keys names the terminal on many connections.
	for i := 0; i < 3; i++ {
		if _, err := roundTrip(t, dial(t, pos), unhex(t, echoRequest)); err != nil {
			t.Fatal(err)
		}
	}
	first := signedOn(t, sw, termCanteen, canteen)
	if got := refusals(t, sw, "pos", "terminal_connection_limit"); got != 0 {
		t.Fatalf("echo tests took the terminal's slot: %v", got)
	}
	second := signedOn(t, sw, termCanteen, canteen)
	if _, err := first.Balance(cardStaff, pinStaff); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Do(must(first.Balance(cardStaff, pinStaff))); err == nil {
		t.Fatal("the displaced connection still answers")
	}
	if got := refusals(t, sw, "pos", "terminal_connection_limit"); got != 1 {
		t.Fatalf("terminal_connection_limit %v, want 1", got)
	}
	req, err := second.Balance(cardStaff, pinStaff)
	expectRC(t, "newest connection", do(t, second, req, err), spec.RCApproved)
}

// undecodableFrame is an echo test whose fields stop short of what its
// bitmap announces, framed whole: answered 30, the connection kept.
func undecodableFrame(t *testing.T) []byte {
	f := append([]byte(nil), unhex(t, echoRequest)...)
	f = f[:len(f)-10]
	f[0], f[1] = 0, byte(len(f)-2)
	return f
}

func must(m *spec.POSMessage, err error) *spec.POSMessage {
	if err != nil {
		panic(err)
	}
	return m
}

// TestAdminBadTokenLogs: a 16 KB path with a bad token logs a line under
// 300 bytes; warnings and the failing address are rate limited; pprof
// durations are bounded.
func TestAdminBadTokenLogs(t *testing.T) {
	log, sink := realLogger(t, "info")
	sw := testSwitchLog(t, log)
	long := "/api/v1/cards/6230151000000000012%0A" + strings.Repeat("A%00%1B[31m", 16<<10/11)
	for i := 0; i < 30; i++ {
		status, _ := httpDo(t, sw, "GET", long, "wrong-token")
		want := http.StatusUnauthorized
		if i >= admin.FailuresPerAddr {
			want = http.StatusTooManyRequests
		}
		if status != want {
			t.Fatalf("request %d: %d, want %d", i, status, want)
		}
	}
	var warns int
	for _, line := range strings.Split(strings.TrimSpace(sink.String()), "\n") {
		if !strings.Contains(line, "admin API: bad token") {
			continue
		}
		warns++
		if len(line) >= 300 {
			t.Fatalf("a log line of %d bytes: %.400s", len(line), line)
		}
		if !json.Valid([]byte(line)) || strings.Contains(line, "6230151000000000012") || strings.Contains(line, "\\u001b") || strings.Contains(line, "\\u0000") {
			t.Fatalf("log line: %.400s", line)
		}
	}
	if warns == 0 || warns > admin.WarnsPerWindow {
		t.Fatalf("%d warnings, want 1..%d", warns, admin.WarnsPerWindow)
	}
	if refusals(t, sw, "http", "bad_token") != admin.FailuresPerAddr || refusals(t, sw, "http", "auth_rate_limited") != 30-admin.FailuresPerAddr {
		t.Fatalf("bad_token %v, auth_rate_limited %v", refusals(t, sw, "http", "bad_token"), refusals(t, sw, "http", "auth_rate_limited"))
	}
}

func TestPprofDurationBounded(t *testing.T) {
	sw := testSwitch(t)
	for _, q := range []string{"profile?seconds=61", "profile?seconds=100000", "profile?seconds=-1", "trace?seconds=3600", "profile?seconds=x"} {
		if status, body := httpDo(t, sw, "GET", "/api/debug/pprof/"+q, "test-token"); status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", q, status, body)
		}
	}
}

// longDigitRun finds what must never reach a log or the journal: 13 or
// more digits in a row, a card number's length.
var longDigitRun = regexp.MustCompile(`[0-9]{13,}`)

// TestHostileLogInputs feeds card numbers with trailing whitespace,
// newlines and dashes, and cards that match no route, through the admin
// API, the POS port and the log at debug level: no 13-19 digit run
// reaches the log, and the unrouted card is not in the journal.
func TestHostileLogInputs(t *testing.T) {
	log, sink := realLogger(t, "debug")
	sw := testSwitchLog(t, log)
	pos, _, _ := sw.Addrs()
	const pan = "6230151000000000012"
	const unrouted = "4111111111111111111"
	for _, path := range []string{
		"/api/v1/cards/" + pan + "%20", "/api/v1/cards/" + pan + "%0A", "/api/v1/cards/" + pan + "-",
		"/api/v1/cards/-" + pan, "/api/v1/cards/" + pan + "%09/freeze", "/api/v1/cards/" + unrouted,
		"/api/v1/journal?rrn=" + pan, "/api/v1/terminals/" + pan + "%0D%0A",
	} {
		for _, tok := range []string{"test-token", "wrong"} {
			httpDo(t, sw, "GET", path, tok)
			httpDo(t, sw, "POST", path, tok)
		}
	}
	// POS: an unrouted card, and a frame that does not decode with a
	// card number in it.
	term := signedOn(t, sw, termCanteen, canteen)
	before := sw.journal.LastSeq()
	req, err := term.Consume(unrouted, 100, "")
	expectRC(t, "unrouted card", do(t, term, req, err), spec.RCInvalidCard)
	bad, _ := term.Consume(pan, 100, "")
	packed, _ := spec.EncodePOS(bad)
	roundTrip(t, dial(t, pos), spec.AppendPOSFrame(nil, [5]byte{0x60, 0, 3, 0, 0}, [6]byte{0x60, 0x31, 0, 0x31, 0x30, 0x30}, append(packed, 0)))

	out := sink.String()
	if !strings.Contains(out, "623015*********0012") {
		t.Fatalf("the card requests were not logged: the check would be vacuous\n%.3000s", out)
	}
	if m := longDigitRun.FindString(out); m != "" {
		i := strings.Index(out, m)
		t.Fatalf("%q reached the log: ...%.300s", m, out[max(0, i-200):])
	}
	var journaled int
	if err := sw.journal.ByBusinessDay(sw.clock.Today().String(), func(e *journal.Entry) bool {
		if journal.SeqCounter(e.Seq) <= before {
			return true
		}
		journaled++
		if bytes.Contains(e.Raw, []byte(unrouted)) || bytes.Contains(e.Raw, []byte{0x41, 0x11, 0x11, 0x11, 0x11, 0x11}) {
			t.Errorf("journal entry %d keeps the unrouted card number: %X", e.Seq, e.Raw)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if journaled != 2 {
		t.Fatalf("%d journal entries for the unrouted card, want its request and response", journaled)
	}
	_ = journal.In
}

// TestFrozenLostFoundThroughAPI: an operator's freeze survives the card
// being reported lost and found.
func TestFrozenLostFoundThroughAPI(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	for _, action := range []string{"freeze", "lost", "found"} {
		status, body := httpDo(t, sw, "POST", "/api/v1/cards/"+cardStaff+"/"+action, "test-token")
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", action, status, body)
		}
		if action == "lost" && !strings.Contains(string(body), `"lost_from": "frozen"`) {
			t.Fatalf("lost card: %s, want lost_from frozen", body)
		}
	}
	req, err := term.Consume(cardStaff, 100, "")
	expectRC(t, "consume after freeze, lost, found", do(t, term, req, err), spec.RCFrozenCard)
	if status, _ := httpDo(t, sw, "POST", "/api/v1/cards/"+cardStaff+"/unfreeze", "test-token"); status != http.StatusOK {
		t.Fatal("unfreeze")
	}
	req, err = term.Consume(cardStaff, 100, "")
	expectRC(t, "consume after unfreeze", do(t, term, req, err), spec.RCApproved)
}

// TestAdminInputValidation: control characters, path separators and
// over-long values in merchant ids and names, terminal ids and card holder
// names are refused at the API with an error that says what is wrong, and
// nothing is stored (no merchant, no terminal, no key in the HSM).
func TestAdminInputValidation(t *testing.T) {
	sw := testSwitch(t)
	long := strings.Repeat("x", 65)
	cases := []struct {
		path string
		body map[string]any
		want string
	}{
		{"/api/v1/merchants", map[string]any{"id": "89831/000000009", "name": "x"}, "merchant id may hold only letters and digits: '/' at position 6"},
		{"/api/v1/merchants", map[string]any{"id": "898310000000009", "name": "Evil\nINFO forged line"}, "merchant name holds a control character (U+000A)"},
		{"/api/v1/merchants", map[string]any{"id": "898310000000009", "name": "..\\..\\x"}, "path separator"},
		{"/api/v1/merchants", map[string]any{"id": "898310000000009", "name": long}, "merchant name is 65 bytes, at most 64"},
		{"/api/v1/merchants", map[string]any{"id": "8983100000000091", "name": "x"}, "merchant id must be 1..15 characters"},
		{"/api/v1/terminals", map[string]any{"id": "1000/009", "merchant": canteen, "tmk_components": []string{demoTMK}}, "terminal id may hold only letters and digits: '/' at position 5"},
		{"/api/v1/terminals", map[string]any{"id": "1000009\n", "merchant": canteen, "tmk_components": []string{demoTMK}}, "U+000A at position 8"},
		{"/api/v1/terminals", map[string]any{"id": "100000099", "merchant": canteen}, "terminal id must be 8 characters, got 9"},
		{"/api/v1/cards", map[string]any{"pan": "6230151000000000079", "holder": "a\x1b[31mred", "holder_type": "student", "pin": "123456"}, "holder name holds a control character (U+001B)"},
		{"/api/v1/cards", map[string]any{"pan": "6230151000000000079", "holder": "bidi\u202eevil", "holder_type": "student", "pin": "123456"}, "U+202E"},
		{"/api/v1/cards", map[string]any{"pan": "6230151000000000079", "holder": long, "holder_type": "student", "pin": "123456"}, "holder name is 65 bytes"},
	}
	for _, tc := range cases {
		status, body := adminCall(t, sw, "POST", tc.path, tc.body)
		if status != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Errorf("POST %s %v: %d %s, want 400 mentioning %q", tc.path, tc.body, status, body, tc.want)
		}
	}
	if len(sw.ledger.Merchants()) != 3 || len(sw.terminals.List()) != 5 {
		t.Fatalf("refused requests stored something: %d merchants, %d terminals", len(sw.ledger.Merchants()), len(sw.terminals.List()))
	}
	if _, ok := sw.ledger.Card("6230151000000000079"); ok {
		t.Fatal("a refused card was opened")
	}
	// Well-formed values, a Chinese name among them, are accepted.
	if status, body := adminCall(t, sw, "POST", "/api/v1/merchants", map[string]any{"id": "898310000000009", "name": "第二食堂"}); status != http.StatusCreated {
		t.Fatalf("a good merchant: %d %s", status, body)
	}
}
