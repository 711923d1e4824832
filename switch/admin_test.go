package switching

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

func adminCall(t *testing.T, sw *Switch, method, path string, body any) (int, []byte) {
	t.Helper()
	_, _, httpAddr := sw.Addrs()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+httpAddr+path, rd)
	req.Header.Set("Authorization", "Bearer test-token")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	out, _ := io.ReadAll(r.Body)
	return r.StatusCode, out
}

// TestAdminProvisioning provisions a merchant, a terminal with a TMK from
// two components and a card through the admin API, then transacts with
// them as a POS holding the XOR of the components would.
func TestAdminProvisioning(t *testing.T) {
	sw := testSwitch(t)
	mustStatus := func(want int, method, path string, body any) []byte {
		t.Helper()
		got, out := adminCall(t, sw, method, path, body)
		if got != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, got, out, want)
		}
		return out
	}
	mustStatus(201, "POST", "/api/v1/merchants", map[string]any{"id": "898310000000009", "name": "Library Cafe", "on_campus": true})
	mustStatus(409, "POST", "/api/v1/merchants", map[string]any{"id": "898310000000009", "name": "again"})
	if out := mustStatus(200, "GET", "/api/v1/merchants", nil); !bytes.Contains(out, []byte("Library Cafe")) || !bytes.Contains(out, []byte("Partner Cafe")) {
		t.Fatalf("merchants: %s", out)
	}

	c1 := "0123456789ABCDEF0123456789ABCDEF"
	c2 := "FEDCBA9876543210FEDCBA9876543210"
	out := mustStatus(201, "POST", "/api/v1/terminals", map[string]any{
		"id": "30000001", "merchant": "898310000000009", "tmk_components": []string{c1, c2}})
	var added struct {
		KCV string `json:"tmk_kcv"`
	}
	_ = json.Unmarshal(out, &added)
	if len(added.KCV) != 6 {
		t.Fatalf("terminal add: %s", out)
	}
	mustStatus(400, "POST", "/api/v1/terminals", map[string]any{"id": "30000002", "merchant": "898310000000009", "tmk_components": []string{"XYZ"}})
	mustStatus(400, "POST", "/api/v1/terminals", map[string]any{"id": "30000003", "merchant": "000000000000000"})
	mustStatus(201, "POST", "/api/v1/cards", map[string]any{
		"pan": "6230152000000000017", "holder": "New Student", "holder_type": "student",
		"cash": "80.00", "subsidy": "0", "pin": "246810"})
	if out := mustStatus(200, "GET", "/api/v1/cards/6230152000000000017", nil); !bytes.Contains(out, []byte(`"cash": "80.00"`)) {
		t.Fatalf("card: %s", out)
	}
	mustStatus(404, "GET", "/api/v1/cards/6230152000000000999", nil)

	// The POS holds the XOR of the two components.
	a, _ := hex.DecodeString(c1)
	b, _ := hex.DecodeString(c2)
	tmk := make([]byte, 16)
	for i := range tmk {
		tmk[i] = a[i] ^ b[i]
	}
	pos, _, _ := sw.Addrs()
	conn, err := posclient.Dial(pos, posclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	term := posclient.NewTerminal(conn, "30000001", "898310000000009", tmk)
	if resp, err := term.SignOn(); err != nil || resp.ResponseCode != spec.RCApproved {
		t.Fatalf("sign-on with the component TMK: %v %v", resp, err)
	}
	req, err := term.Consume("6230152000000000017", 6000, "246810")
	expectRC(t, "consume on the new card", do(t, term, req, err), spec.RCApproved)

	// A disabled terminal is refused; enabled again, it works.
	mustStatus(200, "POST", "/api/v1/terminals/30000001/disable", nil)
	req, err = term.Consume("6230152000000000017", 100, "")
	expectRC(t, "disabled terminal", do(t, term, req, err), spec.RCNotPermittedTerminal)
	mustStatus(200, "POST", "/api/v1/terminals/30000001/enable", nil)
	req, err = term.Consume("6230152000000000017", 100, "")
	expectRC(t, "enabled terminal", do(t, term, req, err), spec.RCApproved)

	// Freeze the card: 45.
	mustStatus(200, "POST", "/api/v1/cards/6230152000000000017/freeze", nil)
	req, err = term.Consume("6230152000000000017", 100, "")
	expectRC(t, "frozen by the operator", do(t, term, req, err), spec.RCFrozenCard)

	// The journal of the batch, through the API.
	out = mustStatus(200, "GET", "/api/v1/journal?terminal=30000001&batch="+term.Batch, nil)
	var entries []map[string]any
	// Three exchanges of two entries each: the approved consume, the
	// consume after enabling, the frozen card; the refusal of the disabled
	// terminal (58, before its MAC was checked) is counted, not journaled.
	if err := json.Unmarshal(out, &entries); err != nil || len(entries) < 6 {
		t.Fatalf("journal: %d entries, %v", len(entries), err)
	}
	mustStatus(400, "GET", "/api/v1/journal", nil)
}
