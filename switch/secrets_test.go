package switching

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestNoSecretsLeave runs PIN transactions with track 2 and a sign-on at
// debug level, then searches the journal, every log entry and the admin
// API for the PIN blocks, track data, working-key field and TMK, and for
// card numbers in clear where they must be masked.
func TestNoSecretsLeave(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	sw := testSwitchLog(t, zap.New(core))
	term := signedOn(t, sw, termCanteen, canteen)
	_, _, httpAddr := sw.Addrs()

	var secrets [][]byte
	tmk, _ := hex.DecodeString(demoTMK)
	secrets = append(secrets, tmk, []byte(demoTMK), []byte(strings.ToLower(demoTMK)))

	// The sign-on response's field 62 (keys under the TMK).
	pos, _, _ := sw.Addrs()
	resp, err := term.SignOn()
	if err != nil || len(resp.Reserved62) == 0 {
		t.Fatalf("sign-on: %v", err)
	}
	secrets = append(secrets, resp.Reserved62, []byte(hex.EncodeToString(resp.Reserved62)), []byte(strings.ToUpper(hex.EncodeToString(resp.Reserved62))))

	for _, pin := range []string{pinStudent, "999999"} {
		req, err := term.Consume(cardStudent, 6000, pin)
		if err != nil {
			t.Fatal(err)
		}
		req.Track2 = cardStudent + "=30121010000000000"
		out := do(t, term, req, nil)
		if out.ResponseCode != spec.RCApproved && out.ResponseCode != spec.RCIncorrectPIN {
			t.Fatalf("rc %s", out.ResponseCode)
		}
		// The track as packed (BCD, D separator) and as text.
		secrets = append(secrets, req.PINBlock, []byte(hex.EncodeToString(req.PINBlock)),
			[]byte(strings.ToUpper(hex.EncodeToString(req.PINBlock))), []byte(req.Track2))
		t2 := strings.ReplaceAll(req.Track2, "=", "D")
		if b, err := hex.DecodeString(t2[:len(t2)/2*2]); err == nil {
			secrets = append(secrets, b)
		}
	}

	// A consume with one byte too many does not decode: its PIN block,
	// track 2 and card number are in a frame the journal must not keep.
	bad, err := term.Consume(cardStudent, 100, pinStudent)
	if err != nil {
		t.Fatal(err)
	}
	bad.Track2 = cardStudent + "=30121010000000000"
	packed, err := spec.EncodePOS(bad)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, bad.PINBlock)
	frame := spec.AppendPOSFrame(nil, posclient.DefaultTPDU, posclient.DefaultHeader, append(packed, 0x00))
	answer, err := roundTrip(t, dial(t, pos), frame)
	if err != nil {
		t.Fatal(err)
	}
	if rc := responseCode(t, answer); rc != spec.RCFormatError {
		t.Fatalf("undecodable consume: rc %s", rc)
	}
	cardBCD, _ := hex.DecodeString(cardStudent[:16])

	// A batch upload whose records (field 48, digits) hold a card number:
	// the admin API's journal must not show them.
	upload := do(t, term, term.BatchUpload("01000123"+cardStudent+"0000000001000", false), nil)
	if upload.ResponseCode != spec.RCApproved {
		t.Fatalf("batch upload: rc %s", upload.ResponseCode)
	}

	// Refused admin requests on card routes, with and without the token:
	// the log names the path, never the card number in it.
	const unknownCard = "6230151999999999999"
	for _, token := range []string{"test-token", "wrong"} {
		req, _ := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/cards/"+unknownCard+"/freeze", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode < 400 {
			t.Fatalf("freeze of an unknown card, token %q: %d", token, r.StatusCode)
		}
	}

	check := func(where string, b []byte) {
		t.Helper()
		for _, s := range secrets {
			if len(s) >= 8 && bytes.Contains(b, s) {
				t.Fatalf("%s holds a secret (%d bytes)", where, len(s))
			}
		}
	}

	// Journal: every entry of the terminal's batch.
	entries, err := sw.journal.ByTerminalBatch(term.ID, term.Batch, 1000)
	if err != nil || len(entries) < 4 {
		t.Fatalf("journal: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		check("journal entry", e.Raw)
	}
	signOns, _ := sw.journal.ByTerminalBatch(term.ID, "000000", 1000)
	for _, e := range signOns {
		check("journal sign-on entry", e.Raw)
	}
	var undecodable int
	err = sw.journal.ByBusinessDay(sw.clock.Today().String(), func(e *journal.Entry) bool {
		check("journal entry of the day", e.Raw)
		if e.Flags&journal.FlagUndecodable != 0 {
			undecodable++
			if bytes.Contains(e.Raw, []byte(cardStudent)) || bytes.Contains(e.Raw, cardBCD) {
				t.Fatal("journal keeps the card number of an undecodable frame")
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if undecodable != 0 {
		t.Fatal("an undecodable frame was journaled: frames that prove nothing are counted, not journaled")
	}

	// Logs, at debug level.
	var all bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(buf.Bytes())
	}
	if all.Len() == 0 {
		t.Fatal("no log entries at debug level: the test would prove nothing")
	}
	check("log", all.Bytes())
	for _, pan := range []string{cardStudent, unknownCard} {
		if bytes.Contains(all.Bytes(), []byte(pan)) {
			t.Fatalf("log holds card number %s in clear", cardno.Mask(pan))
		}
	}
	if !bytes.Contains(all.Bytes(), []byte(cardno.Mask(unknownCard))) {
		t.Fatal("the refused card requests were not logged: the check would be vacuous")
	}

	// Admin API: the card and the journal.
	for _, path := range []string{"/api/v1/cards/" + cardStudent, "/api/v1/journal?terminal=" + term.ID + "&batch=" + term.Batch} {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
		req.Header.Set("Authorization", "Bearer test-token")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || !json.Valid(body) {
			t.Fatalf("%s: %d %s", path, r.StatusCode, body)
		}
		check("admin API "+path, body)
		if bytes.Contains(body, []byte(cardStudent)) {
			t.Fatalf("admin API %s shows a card number in clear", path)
		}
		if !bytes.Contains(body, []byte(cardno.Mask(cardStudent))) {
			t.Fatalf("admin API %s does not show the masked card: the check would be vacuous", path)
		}
	}
}

func TestAdminAPIToken(t *testing.T) {
	sw := testSwitch(t)
	_, _, httpAddr := sw.Addrs()
	for _, c := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"test-token", http.StatusOK}} {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+"/api/v1/status", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Fatalf("status with token %q: %d, want %d", c.token, r.StatusCode, c.want)
		}
		req, _ = http.NewRequest("GET", "http://"+httpAddr+"/api/debug/pprof/goroutine?debug=1", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		r, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Fatalf("pprof with token %q: %d, want %d", c.token, r.StatusCode, c.want)
		}
		if c.want == http.StatusOK && !bytes.Contains(body, []byte("goroutine profile")) {
			t.Fatalf("pprof answered %q", body[:min(len(body), 80)])
		}
	}
}

func TestMetricsNames(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Consume(cardStaff, 100, "")
	do(t, term, req, err)
	_, _, httpAddr := sw.Addrs()
	r, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{
		`switch_messages_total{direction="in",listener="pos",mti="0200"} 1`,
		`switch_transactions_total{rc="00",type="consume"} 1`,
		`switch_transaction_duration_seconds_bucket{type="consume",le=`,
		`switch_connections{listener="pos"} 1`,
		`switch_journal_entries_total`,
		`switch_hsm_operations_total{op="mac_verify",result="ok"}`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
