package switching

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/rechargesim"
	"github.com/cardswitch/cardswitch/ledger"
)

// The demo institution (docs/recharge.md).
const (
	demoInst    = "10001"
	demoZAK     = "0123456789ABCDEFFEDCBA9876543210"
	demoHTTPKey = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
	cardLiLei   = "6230151000000000012"
	cardZhaoMin = "6230151000000000061" // holder 赵敏
)

func dialInst(t *testing.T, sw *Switch, inst string) *rechargesim.ISO {
	t.Helper()
	_, gw, _ := sw.Addrs()
	c, err := rechargesim.DialISO(gw, inst, demoZAK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type rechargeClient interface {
	Verify(rechargesim.Op) (rechargesim.Answer, error)
	Credit(rechargesim.Op) (rechargesim.Answer, error)
	Query(rechargesim.Op) (rechargesim.Answer, error)
	Reverse(rechargesim.Op) (rechargesim.Answer, error)
}

func want(t *testing.T, what string, a rechargesim.Answer, err error, rc string) rechargesim.Answer {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if a.RC != rc {
		t.Fatalf("%s: rc %q, want %q (%+v)", what, a.RC, rc, a)
	}
	return a
}

func cashOf(t *testing.T, sw *Switch, pan string) ledger.Fen {
	t.Helper()
	c, ok := sw.ledger.Card(pan)
	if !ok {
		t.Fatalf("no card %s", pan)
	}
	return c.Balances.Cash
}

// exercise runs every operation and decline of the service through one
// front end; prefix keeps the orders of two runs apart.
func exercise(t *testing.T, sw *Switch, c rechargeClient, prefix string, iso bool) {
	t.Helper()
	macOK := func(what string, a rechargesim.Answer) {
		t.Helper()
		if iso && !a.MACOK {
			t.Fatalf("%s: answer MAC does not verify", what)
		}
	}
	// Verification: match (ASCII case, U+3000 and runs of white space
	// forgiven), name differs 05, unknown 14, lost or frozen 62.
	a, err := c.Verify(rechargesim.Op{Card: cardLiLei, Name: "li\u3000LEI ", Amount: -1})
	macOK("verify", want(t, "verify Li Lei", a, err, "00"))
	a, err = c.Verify(rechargesim.Op{Card: cardZhaoMin, Name: " 赵敏", Amount: -1})
	want(t, "verify 赵敏", a, err, "00")
	a, err = c.Verify(rechargesim.Op{Card: cardZhaoMin, Name: "赵 敏", Amount: -1})
	want(t, "verify mismatch", a, err, "05")
	a, err = c.Verify(rechargesim.Op{Card: "6230151000000009999", Name: "x", Amount: -1})
	want(t, "verify unknown card", a, err, "14")
	a, err = c.Verify(rechargesim.Op{Card: cardLost, Name: "Han Meimei", Amount: -1})
	want(t, "verify lost card", a, err, "62")

	// Credit, its replay, the same order with other content, the limits.
	before := cashOf(t, sw, cardZhaoMin)
	o1 := prefix + "-0001"
	first, err := c.Credit(rechargesim.Op{Order: o1, Card: cardZhaoMin, Amount: 5000})
	want(t, "credit", first, err, "00")
	macOK("credit", first)
	if !first.HasBalances || first.Cash != int64(before)+5000 || first.RRN == "" || first.AuthCode == "" {
		t.Fatalf("credit answer %+v (cash before %d)", first, before)
	}
	again, err := c.Credit(rechargesim.Op{Order: o1, Card: cardZhaoMin, Amount: 5000})
	want(t, "repeated credit", again, err, "00")
	if again.RRN != first.RRN || again.AuthCode != first.AuthCode || again.Cash != first.Cash {
		t.Fatalf("repeat %+v, first %+v", again, first)
	}
	macOK("repeated credit", again)
	if got := cashOf(t, sw, cardZhaoMin); got != before+5000 {
		t.Fatalf("cash %s after a repeat, want %s", got, before+5000)
	}
	a, err = c.Credit(rechargesim.Op{Order: o1, Card: cardZhaoMin, Amount: 5001})
	want(t, "duplicate order other amount", a, err, "94")
	a, err = c.Credit(rechargesim.Op{Order: prefix + "-0002", Card: cardZhaoMin, Amount: 100001})
	want(t, "over max_credit", a, err, "61")
	a, err = c.Credit(rechargesim.Op{Order: prefix + "-0003", Card: cardFrozen, Amount: 100})
	want(t, "frozen card", a, err, "62")
	a, err = c.Credit(rechargesim.Op{Order: prefix + "-0004", Card: "6230151000000009999", Amount: 100})
	want(t, "unknown card", a, err, "14")

	// Query: approved, declined with its code, unknown 25.
	a, err = c.Query(rechargesim.Op{Order: o1, Amount: -1})
	want(t, "query", a, err, "00")
	if a.Status != "A" || a.Card != cardZhaoMin || a.Amount != 5000 || a.RRN != first.RRN || a.AuthCode != first.AuthCode {
		t.Fatalf("query %+v", a)
	}
	a, err = c.Query(rechargesim.Op{Order: prefix + "-0002", Amount: -1})
	if want(t, "query declined", a, err, "00"); a.Status != "D" || a.StatusRC != "61" {
		t.Fatalf("query of a declined order %+v", a)
	}
	a, err = c.Query(rechargesim.Op{Order: prefix + "-nope", Amount: -1})
	want(t, "query unknown", a, err, "25")

	// Reversal: other amount 64, then 00, a repeat 00, the order then 12.
	a, err = c.Reverse(rechargesim.Op{Order: o1, Card: cardZhaoMin, Amount: 4999})
	want(t, "reversal other amount", a, err, "64")
	a, err = c.Reverse(rechargesim.Op{Order: o1, Card: cardZhaoMin, Amount: 5000})
	want(t, "reversal", a, err, "00")
	macOK("reversal", a)
	a, err = c.Reverse(rechargesim.Op{Order: o1, Card: cardZhaoMin, Amount: 5000, Repeat: true})
	want(t, "repeated reversal", a, err, "00")
	if iso && a.MTI != "0410" {
		t.Fatalf("a 0401 is answered %s, want 0410", a.MTI)
	}
	if got := cashOf(t, sw, cardZhaoMin); got != before {
		t.Fatalf("cash %s after reversal, want %s", got, before)
	}
	a, err = c.Credit(rechargesim.Op{Order: o1, Card: cardZhaoMin, Amount: 5000})
	want(t, "credit of a reversed order", a, err, "12")
	// A reversal before its credit.
	a, err = c.Reverse(rechargesim.Op{Order: prefix + "-0009", Card: cardZhaoMin, Amount: 700})
	want(t, "reversal of an unknown order", a, err, "00")
	a, err = c.Credit(rechargesim.Op{Order: prefix + "-0009", Card: cardZhaoMin, Amount: 700})
	want(t, "late credit", a, err, "12")
	a, err = c.Query(rechargesim.Op{Order: prefix + "-0009", Amount: -1})
	if want(t, "query reversal-only", a, err, "00"); a.Status != "R" || a.Amount != 700 || a.Card != cardZhaoMin {
		t.Fatalf("query of a reversal-only order %+v", a)
	}
	if got := cashOf(t, sw, cardZhaoMin); got != before {
		t.Fatalf("cash %s, want %s", got, before)
	}
}

func TestRechargeISO(t *testing.T) {
	sw := testSwitch(t)
	c := dialInst(t, sw, demoInst)
	exercise(t, sw, c, "ISO", true)

	// The same order number from another front end is the same order.
	h, err := rechargesim.NewHTTP("http://"+sw.RechargeAddr(), demoInst, demoHTTPKey)
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.Credit(rechargesim.Op{Order: "ISO-0001", Card: cardZhaoMin, Amount: 5000})
	want(t, "HTTP credit of an order reversed over ISO", a, err, "12")

	// Bad MAC: A0 without a MAC, nothing done.
	c.BadMAC = true
	before := cashOf(t, sw, cardZhaoMin)
	seq := sw.journal.LastSeq()
	a, err = c.Credit(rechargesim.Op{Order: "ISO-bad-mac", Card: cardZhaoMin, Amount: 100})
	if want(t, "bad MAC", a, err, "A0"); a.MACOK {
		t.Fatal("an A0 answer carries a MAC")
	}
	c.BadMAC = false
	if got := sw.journal.LastSeq(); got != seq {
		t.Fatalf("an A0 exchange was journaled (sequence %d -> %d)", seq, got)
	}
	a, err = c.Query(rechargesim.Op{Order: "ISO-bad-mac", Amount: -1})
	want(t, "query after a bad MAC", a, err, "25")
	// Field 7 more than 300 s off: 30.
	c.Now = func() time.Time { return time.Now().Add(-301 * time.Second) }
	a, err = c.Credit(rechargesim.Op{Order: "ISO-stale", Card: cardZhaoMin, Amount: 100})
	want(t, "stale field 7", a, err, "30")
	c.Now = time.Now
	if got := cashOf(t, sw, cardZhaoMin); got != before {
		t.Fatalf("cash moved on refused requests: %s, want %s", got, before)
	}
	// Unknown institution: 03 without a MAC.
	u := dialInst(t, sw, "99999")
	a, err = u.Credit(rechargesim.Op{Order: "X-1", Card: cardZhaoMin, Amount: 100})
	if want(t, "unknown institution", a, err, "03"); a.MACOK {
		t.Fatal("an 03 answer carries a MAC")
	}
	// A MACed request of an operation the institutions do not have: 40.
	m, err := c.Build("0200", "000000", rechargesim.Op{Order: "ISO-x", Card: cardZhaoMin, Amount: 100})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	a, err = c.SendRaw(raw)
	if want(t, "unsupported operation", a, err, "40"); !a.MACOK {
		t.Fatal("a 40 to an institution is not MACed")
	}
	if got := metricValue(t, sw, "switch_transactions_total", map[string]string{"type": "recharge_credit", "rc": "00"}); got < 1 {
		t.Fatalf("switch_transactions_total{type=recharge_credit,rc=00} = %v", got)
	}
	if got := metricValue(t, sw, "switch_rejected_total", map[string]string{"listener": "gateway", "reason": "mac_error"}); got != 1 {
		t.Fatalf("mac_error rejections %v", got)
	}
	// The operator sees the orders, card numbers masked.
	_, _, admin := sw.Addrs()
	var order struct {
		State, Card, RC, RRN string
		AmountFen            int64 `json:"amount_fen"`
	}
	adminGet(t, admin, "/api/v1/recharge/institutions/10001/orders/ISO-0001", &order)
	if order.State != "reversed" || order.Card != "623015*********0061" || order.AmountFen != 5000 {
		t.Fatalf("admin order %+v", order)
	}
	var list struct {
		Orders []struct{ Order string }
		Next   string
	}
	adminGet(t, admin, "/api/v1/recharge/institutions/10001/orders?limit=2", &list)
	if len(list.Orders) != 2 || list.Next != list.Orders[1].Order {
		t.Fatalf("admin orders page %+v", list)
	}
	prev := list.Next
	adminGet(t, admin, "/api/v1/recharge/institutions/10001/orders?limit=2&after="+prev, &list)
	if len(list.Orders) == 0 || list.Orders[0].Order <= prev {
		t.Fatalf("second page %+v", list)
	}
	checkLedger(t, sw)
}

func adminGet(t *testing.T, admin, path string, into any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+admin+path, nil)
	req.Header.Set("Authorization", "Bearer test-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}

func checkLedger(t *testing.T, sw *Switch) {
	t.Helper()
	rep, err := ledger.Check(sw.db)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger check: %v %v", err, rep.Violations)
	}
}

func TestRechargeHTTP(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.Recharge.Rate, c.Recharge.Burst = 1000, 1000 })
	base := "http://" + sw.RechargeAddr()
	h, err := rechargesim.NewHTTP(base, demoInst, demoHTTPKey)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, sw, h, "WEB", false)

	// Bad signature: A0, HTTP 401.
	h.BadSignature = true
	a, err := h.Credit(rechargesim.Op{Order: "WEB-bad", Card: cardZhaoMin, Amount: 100})
	if want(t, "bad signature", a, err, "A0"); a.HTTPStatus != http.StatusUnauthorized {
		t.Fatalf("bad signature: HTTP %d", a.HTTPStatus)
	}
	h.BadSignature = false
	// Stale timestamp: 30, HTTP 400.
	h.Now = func() time.Time { return time.Now().Add(301 * time.Second) }
	a, err = h.Credit(rechargesim.Op{Order: "WEB-stale", Card: cardZhaoMin, Amount: 100})
	if want(t, "stale timestamp", a, err, "30"); a.HTTPStatus != http.StatusBadRequest {
		t.Fatalf("stale timestamp: HTTP %d", a.HTTPStatus)
	}
	h.Now = time.Now
	// Unknown institution: 03, HTTP 403.
	u, _ := rechargesim.NewHTTP(base, "99999", demoHTTPKey)
	a, err = u.Credit(rechargesim.Op{Order: "X-1", Card: cardZhaoMin, Amount: 100})
	if want(t, "unknown institution", a, err, "03"); a.HTTPStatus != http.StatusForbidden {
		t.Fatalf("unknown institution: HTTP %d", a.HTTPStatus)
	}
	// A body over the bound: 413.
	resp, err := http.Post(base+"/recharge/v1/credit", "application/json", bytes.NewReader(bytes.Repeat([]byte{' '}, 9000)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: HTTP %d", resp.StatusCode)
	}
	// Unknown fields or trailing data: 30.
	a, err = h.Post("credit", []byte(`{"institution":"10001","order":"W","card":"6230151000000000061","amount_fen":1,"currency":"156","extra":1}`))
	want(t, "unknown JSON field", a, err, "30")
	// The admin port does not serve recharge.
	_, _, admin := sw.Addrs()
	resp, err = http.Post("http://"+admin+"/recharge/v1/credit", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("admin port answers /recharge/v1/: HTTP %d", resp.StatusCode)
	}
	checkLedger(t, sw)
}

func TestRechargeHTTPRateLimit(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.Recharge.Rate, c.Recharge.Burst = 1, 3 })
	h, err := rechargesim.NewHTTP("http://"+sw.RechargeAddr(), demoInst, demoHTTPKey)
	if err != nil {
		t.Fatal(err)
	}
	limited := 0
	for range 10 {
		a, err := h.Query(rechargesim.Op{Order: "none", Amount: -1})
		if err != nil {
			t.Fatal(err)
		}
		if a.HTTPStatus == http.StatusTooManyRequests {
			limited++
		}
	}
	// A burst of 3 at 1 a second: most of 10 quick requests are refused.
	if limited < 5 {
		t.Fatalf("%d of 10 requests rate limited", limited)
	}
}

// A source address on no institution's allow-list is refused at connect,
// on the gateway port and on the HTTP listener, and counted.
func TestRechargeAddressNotAllowed(t *testing.T) {
	sw := testSwitch(t, func(c *Config) { c.Institutions[0].Allow = []string{"10.9.9.0/24"} })
	_, gw, _ := sw.Addrs()
	for _, addr := range []string{gw, sw.RechargeAddr()} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write([]byte("POST / HTTP/1.1\r\n\r\n"))
		if n, err := conn.Read(make([]byte, 16)); err == nil || n != 0 {
			t.Fatalf("%s: connection served (%d bytes, %v)", addr, n, err)
		}
		conn.Close()
	}
	// Counted before the close, so counted by now.
	for _, l := range []string{"gateway", "recharge_http"} {
		if n := metricValue(t, sw, "switch_rejected_total", map[string]string{"listener": l, "reason": "address_not_allowed"}); n != 1 {
			t.Fatalf("%s address_not_allowed counted %v times, want 1", l, n)
		}
	}
}

// Requests that prove nothing (a bad MAC) are rate limited per address
// like the POS port's: a flood closes the connection, and none of it is
// journaled.
func TestRechargeUnauthenticatedFlood(t *testing.T) {
	sw := testSwitch(t)
	c := dialInst(t, sw, demoInst)
	c.BadMAC = true
	seq := sw.journal.LastSeq()
	closed := false
	for i := range 400 {
		if _, err := c.Query(rechargesim.Op{Order: "X", Amount: -1}); err != nil {
			closed = i > 0
			break
		}
	}
	if !closed {
		t.Fatal("400 requests with a bad MAC served on one connection")
	}
	if got := sw.journal.LastSeq(); got != seq {
		t.Fatalf("the flood was journaled (%d -> %d)", seq, got)
	}
	if metricValue(t, sw, "switch_rejected_total", map[string]string{"listener": "gateway", "reason": "unauthenticated_rate_limit"}) < 1 {
		t.Fatal("rate limit not counted")
	}
}
