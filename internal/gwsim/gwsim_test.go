package gwsim

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
)

func TestParseYuan(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want spec.Amount
		ok   bool
	}{
		{"0", 0, true}, {"12", 1200, true}, {"12.5", 1250, true}, {"12.05", 1205, true}, {" 3.00 ", 300, true},
		{"", 0, false}, {"-1", 0, false}, {"1.234", 0, false}, {"1.", 0, false}, {"abc", 0, false}, {"1e3", 0, false},
		{"12345678901", 0, false},
	} {
		got, err := ParseYuan(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d ok=%t", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseAccounts(t *testing.T) {
	good := `accounts:
  - {card: "6222020000000000018", account: "A1", holder: "Li", pin: "1234", balance: "10.50"}
  - {card: "6222020000000000026", account: "A2", holder: "Wang", pin: "123456", balance: "0"}
`
	list, err := ParseAccounts([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Balance != 1050 || list[1].Number != "A2" {
		t.Fatalf("parsed %+v", list)
	}
	for name, bad := range map[string]string{
		"empty":          "accounts: []\n",
		"unknown field":  "accounts:\n  - {card: \"6222020000000000018\", account: A, pin: \"1234\", balance: \"1\", colour: red}\n",
		"short card":     "accounts:\n  - {card: \"12345\", account: A, pin: \"1234\", balance: \"1\"}\n",
		"bad PIN":        "accounts:\n  - {card: \"6222020000000000018\", account: A, pin: \"12\", balance: \"1\"}\n",
		"bad balance":    "accounts:\n  - {card: \"6222020000000000018\", account: A, pin: \"1234\", balance: \"-1\"}\n",
		"repeated card":  "accounts:\n  - {card: \"6222020000000000018\", account: A, pin: \"1234\", balance: \"1\"}\n  - {card: \"6222020000000000018\", account: B, pin: \"1234\", balance: \"1\"}\n",
		"repeated acct":  "accounts:\n  - {card: \"6222020000000000018\", account: A, pin: \"1234\", balance: \"1\"}\n  - {card: \"6222020000000000026\", account: A, pin: \"1234\", balance: \"1\"}\n",
		"no account no.": "accounts:\n  - {card: \"6222020000000000018\", pin: \"1234\", balance: \"1\"}\n",
	} {
		if _, err := ParseAccounts([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := checkAccounts(DemoAccounts()); err != nil {
		t.Fatalf("demo accounts: %v", err)
	}
}

func TestOptionsBounds(t *testing.T) {
	for name, o := range map[string]Options{
		"not loopback":      {Addr: "0.0.0.0:0"},
		"delay":             {Faults: Faults{Delay: MaxDelay + 1}},
		"negative delay":    {Faults: Faults{Delay: -1}},
		"drop":              {Faults: Faults{DropPercent: 101}},
		"decline 00":        {Faults: Faults{Decline: "00"}},
		"decline length":    {Faults: Faults{Decline: "051"}},
		"reversal decline":  {Faults: Faults{DeclineReversals: "00"}},
		"reversal length":   {Faults: Faults{DeclineReversals: "5"}},
		"disconnect":        {Faults: Faults{DisconnectAfter: -1}},
		"ZMK":               {ZMK: "0123"},
		"ZAK":               {ZAK: "XYZ"},
		"cutover":           {Cutover: "25:00"},
		"institution":       {Institution: "12ab"},
		"max conns":         {MaxConns: MaxConnsLimit + 1},
		"http not loopback": {HTTPAddr: "0.0.0.0:0"},
	} {
		s, err := Start(o)
		if err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBusinessDate(t *testing.T) {
	loc := time.Local
	s := &Sim{}
	for _, tt := range []struct {
		cutover string
		at      time.Time
		want    string
	}{
		{"23:00", time.Date(2026, 12, 4, 22, 59, 59, 0, loc), "20261204"},
		{"23:00", time.Date(2026, 12, 4, 23, 0, 0, 0, loc), "20261205"},
		{"23:00", time.Date(2026, 12, 31, 23, 30, 0, 0, loc), "20270101"},
		{"00:00", time.Date(2026, 12, 4, 23, 59, 0, 0, loc), "20261204"},
	} {
		var err error
		if s.cutover, err = parseCutover(tt.cutover); err != nil {
			t.Fatal(err)
		}
		if got := s.BusinessDate(tt.at); got != tt.want {
			t.Errorf("cutover %s at %s: %s, want %s", tt.cutover, tt.at, got, tt.want)
		}
	}
}

// readRecon parses a daily file into its lines (header and trailer
// checked and removed).
func readRecon(t *testing.T, b []byte) ([]map[string]string, []string) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 || strings.Join(recs[0], ",") != strings.Join(ReconHeader, ",") {
		t.Fatalf("header %v", recs[0])
	}
	trailer := recs[len(recs)-1]
	if trailer[0] != "TOTAL" {
		t.Fatalf("trailer %v", trailer)
	}
	var out []map[string]string
	for _, rec := range recs[1 : len(recs)-1] {
		m := map[string]string{}
		for i, h := range ReconHeader {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out, trailer
}

func TestReconFile(t *testing.T) {
	s := startSim(t, Options{})
	tc := dial(t, s)
	tc.signOn(DemoZMK)
	_, c1 := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 1000, pin: "123456", rrn: "000000000001"})
	tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 2000, pin: "123456", rrn: "000000000002"})
	_, c3 := tc.do(req{mti: "0200", pc: "000000", card: cardWang, amount: 3000, pin: "654321", rrn: "000000000003"})
	tc.do(req{mti: "0200", pc: "000000", card: cardWang, amount: 3000, pin: "000000", rrn: "000000000004"}) // declined: not in the file
	tc.do(req{mti: "0420", pc: "000000", card: cardLi, amount: 1000, original: c1, rrn: "000000000001"})
	tc.do(req{mti: "0220", pc: "200000", card: cardWang, amount: 500, original: c3, rrn: "000000000005"})
	tc.do(req{mti: "0200", pc: "400000", account: acctWang, beneficiary: "6230151000000000012", amount: 4000, rrn: "000000000006"})
	tc.do(req{mti: "0200", pc: "310000", card: cardWang, pin: "654321", rrn: "000000000007"}) // balance: not in the file

	date := s.BusinessDate(time.Now())
	var buf bytes.Buffer
	n, err := s.WriteReconTo(&buf, date, Plant{})
	if err != nil {
		t.Fatal(err)
	}
	lines, trailer := readRecon(t, buf.Bytes())
	if n != 5 || len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", n, buf.String())
	}
	want := []struct{ rrn, op, amount, dir, status string }{
		{"000000000001", "consume", "1000", "D", "R"},
		{"000000000002", "consume", "2000", "D", "A"},
		{"000000000003", "consume", "3000", "D", "A"},
		{"000000000005", "refund", "500", "C", "A"},
		{"000000000006", "transfer_load", "4000", "D", "A"},
	}
	for i, w := range want {
		l := lines[i]
		if l["rrn"] != w.rrn || l["op"] != w.op || l["amount_fen"] != w.amount || l["direction"] != w.dir || l["status"] != w.status {
			t.Errorf("line %d: %v, want %+v", i, l, w)
		}
		if l["business_date"] != date || l["response_code"] != "00" || len(l["serial"]) != 12 || len(l["stan"]) != 6 || len(l["transmission_time"]) != 10 {
			t.Errorf("line %d: %v", i, l)
		}
	}
	if lines[4]["account"] != acctWang || lines[4]["card"] != cardWang || lines[4]["beneficiary"] != "6230151000000000012" {
		t.Errorf("transfer load line %v", lines[4])
	}
	if lines[3]["original"] != c3 {
		t.Errorf("refund's original %q, want %q", lines[3]["original"], c3)
	}
	if strings.Join(trailer, ",") != "TOTAL,5,10500" {
		t.Errorf("trailer %v", trailer)
	}

	// Planted: one left out, one altered, one flipped, one made up.
	path, n, err := s.WriteRecon(date, Plant{Skip: []string{"000000000002"}, Alter: map[string]spec.Amount{"000000000003": 3100},
		Flip: []string{"000000000006"}, Extra: []Extra{{Card: cardZhang, Amount: 777}}})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != ReconFileName(date) || n != 5 {
		t.Fatalf("path %s, %d lines", path, n)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("recon file mode: %v %v", st, err)
	}
	b, _ := os.ReadFile(path)
	lines, trailer = readRecon(t, b)
	byRRN := map[string]map[string]string{}
	for _, l := range lines {
		byRRN[l["rrn"]] = l
	}
	if byRRN["000000000002"] != nil || byRRN["000000000003"]["amount_fen"] != "3100" || byRRN["000000000006"]["status"] != "R" {
		t.Fatalf("plants not applied: %v", lines)
	}
	extra := lines[len(lines)-1]
	if extra["card"] != cardZhang || extra["amount_fen"] != "777" || extra["stan"] != "" {
		t.Fatalf("extra line %v", extra)
	}
	if strings.Join(trailer, ",") != "TOTAL,5,9377" {
		t.Errorf("trailer %v", trailer)
	}
	if _, _, err := s.WriteRecon("2026-13-01", Plant{}); err == nil {
		t.Error("bad date accepted")
	}
	if _, err := s.WriteReconTo(io.Discard, date, Plant{Extra: []Extra{{Card: "1", Amount: 5}}}); err == nil {
		t.Error("bad extra accepted")
	}
}

func TestHTTPSurface(t *testing.T) {
	s := startSim(t, Options{HTTPAddr: "127.0.0.1:0"})
	base := "http://" + s.HTTPAddr()
	tc := dial(t, s)
	tc.signOn(DemoZMK)
	tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 1000, pin: "123456", rrn: "000000000001"})

	get := func(path string) []byte {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	var accts []AccountState
	if err := json.Unmarshal(get("/accounts"), &accts); err != nil || len(accts) != 4 || accts[0].Balance != 999000 || accts[0].Opening != 1_000_000 {
		t.Fatalf("accounts %+v %v", accts, err)
	}
	if st := string(get("/status")); !strings.Contains(st, "9990.00") || !strings.Contains(st, "approved=1") {
		t.Fatalf("status:\n%s", st)
	}
	var entries []Entry
	if err := json.Unmarshal(get("/entries?limit=10"), &entries); err != nil || len(entries) != 1 || entries[0].RRN != "000000000001" {
		t.Fatalf("entries %+v %v", entries, err)
	}
	if err := json.Unmarshal(get("/entries?after="+entries[0].Serial), &entries); err != nil || len(entries) != 0 {
		t.Fatalf("entries after the last: %+v %v", entries, err)
	}

	put := func(body string) int {
		r, _ := http.NewRequest(http.MethodPut, base+"/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(`{"delay_ms": 5, "decline": "51"}`); code != 200 {
		t.Fatalf("PUT /faults: %d", code)
	}
	if f := s.Faults(); f.Delay != 5*time.Millisecond || f.Decline != "51" {
		t.Fatalf("faults %+v", f)
	}
	for _, bad := range []string{`{"drop_percent": 200}`, `{"delay_ms": -1}`, `{"colour": 1}`, `nonsense`} {
		if code := put(bad); code != 400 {
			t.Errorf("PUT /faults %s: %d, want 400", bad, code)
		}
	}
	if a, _ := tc.do(req{mti: "0200", pc: "000000", card: cardLi, amount: 1, pin: "123456"}); a.rc != "51" {
		t.Fatalf("decline set over HTTP: %s", a.rc)
	}

	date := s.BusinessDate(time.Now())
	resp, err := http.Post(base+"/recon?date="+date+"&skip=000000000001&extra="+cardWang+"=100", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ra ReconAnswer
	json.NewDecoder(resp.Body).Decode(&ra)
	resp.Body.Close()
	if resp.StatusCode != 200 || ra.Lines != 1 {
		t.Fatalf("POST /recon: %d %+v", resp.StatusCode, ra)
	}
	b, _ := os.ReadFile(ra.Path)
	lines, _ := readRecon(t, b)
	if len(lines) != 1 || lines[0]["card"] != cardWang {
		t.Fatalf("recon over HTTP: %v", lines)
	}
	resp, _ = http.Post(base+"/recon?date=yesterday", "", nil)
	if resp.StatusCode != 400 {
		t.Fatalf("bad date: %d", resp.StatusCode)
	}
	resp.Body.Close()

	// A CPU profile of the simulator: gzipped protobuf; longer than a
	// minute is refused.
	if p := get("/debug/pprof/profile?seconds=1"); len(p) < 2 || p[0] != 0x1f || p[1] != 0x8b {
		t.Fatalf("CPU profile: %d bytes, not gzip", len(p))
	}
	resp, err = http.Get(base + "/debug/pprof/profile?seconds=61")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("a profile of 61 s: %d, want 400", resp.StatusCode)
	}
}

// FuzzHandle feeds arbitrary bodies to a signed-on connection: whatever
// arrives, the simulator answers or ignores it without panicking, and an
// answer is a decodable gateway message.
func FuzzHandle(f *testing.F) {
	s, err := Start(Options{ZAK: "0123456789ABCDEFFEDCBA9876543210", ZPK: "0123456789ABCDEFFEDCBA9876543210"})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Add([]byte("0800\x82\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x001204135500000001301"))
	f.Add([]byte("0200"))
	f.Add([]byte("0420\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &conn{peer: "fuzz", signedOn: true}
		out := s.handle(c, body)
		if out.frame != nil {
			if _, err := spec.DecodeGateway(out.frame[2:]); err != nil {
				t.Fatalf("answer does not decode: %v", err)
			}
		}
	})
}

func TestShippedAccountsFiles(t *testing.T) {
	list, err := LoadAccounts("../../testdata/gwsim/load-accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 20 || list[0].Balance != 1_000_000_000 {
		t.Fatalf("load accounts: %d, first %+v", len(list), list[0])
	}
	for _, a := range append(list, DemoAccounts()...) {
		if !luhnValid(a.Card) || !strings.HasPrefix(a.Card, "622202") {
			t.Errorf("card %s: not a Luhn-valid card of the demo BIN", a.Card)
		}
	}
}

func luhnValid(pan string) bool {
	sum, double := 0, false
	for i := len(pan) - 1; i >= 0; i-- {
		d := int(pan[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
