package switching

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/switch/recharge"
	"github.com/cockroachdb/pebble/v2"
)

func adminDo(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// A card is bound to a bank card and account at a configured gateway;
// the numbers are stored sealed (never in clear in the data directory),
// shown masked, and binding and unbinding are journaled.
func TestCardBinding(t *testing.T) {
	sw := testSwitch(t)
	_, _, admin := sw.Addrs()
	base := "http://" + admin + "/api/v1/cards/" + cardStaff + "/binding"
	const bankCard, account = "6222020200112233445", "ACC-0099887766"
	body := `{"gateway":"demo-bank","bank_card":"` + bankCard + `","account":"` + account + `","operator":"alice"}`
	for _, bad := range []string{
		`{"gateway":"nowhere","bank_card":"` + bankCard + `","account":"A1","operator":"alice"}`,
		`{"gateway":"demo-bank","bank_card":"12ab","account":"A1","operator":"alice"}`,
		`{"gateway":"demo-bank","bank_card":"` + bankCard + `","account":"","operator":"alice"}`,
		`{"gateway":"demo-bank","bank_card":"` + bankCard + `","account":"A1","operator":"alice","x":1}`,
	} {
		if code, b := adminDo(t, "POST", base, bad); code != http.StatusBadRequest {
			t.Fatalf("bad binding %s: %d %s", bad, code, b)
		}
	}
	if code, _ := adminDo(t, "POST", "http://"+admin+"/api/v1/cards/6230151000000009999/binding", body); code != http.StatusNotFound {
		t.Fatalf("unknown card: %d", code)
	}
	code, b := adminDo(t, "POST", base, body)
	if code != http.StatusCreated {
		t.Fatalf("bind: %d %s", code, b)
	}
	var v recharge.BindingView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Gateway != "demo-bank" || v.BankCard != "622202*********3445" || v.Account != "**********7766" || v.Operator != "alice" {
		t.Fatalf("binding %+v", v)
	}
	if bytes.Contains(b, []byte(bankCard)) || bytes.Contains(b, []byte(account)) {
		t.Fatal("the answer shows a number in clear")
	}
	if code, _ := adminDo(t, "POST", base, body); code != http.StatusConflict {
		t.Fatalf("second bind: %d", code)
	}
	if code, b := adminDo(t, "GET", base, ""); code != 200 || !bytes.Contains(b, []byte("7766")) {
		t.Fatalf("get binding: %d %s", code, b)
	}
	// Nothing in the store holds the numbers in clear.
	it, err := sw.db.NewIter(&pebble.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if bytes.Contains(it.Value(), []byte(bankCard)) || bytes.Contains(it.Value(), []byte(account)) {
			t.Fatalf("key %q holds a bank number in clear", it.Key())
		}
	}
	it.Close()
	if code, b := adminDo(t, "DELETE", base+"?operator=bob", ""); code != 200 {
		t.Fatalf("unbind: %d %s", code, b)
	}
	if code, _ := adminDo(t, "GET", base, ""); code != http.StatusNotFound {
		t.Fatalf("binding after unbind: %d", code)
	}
	if code, _ := adminDo(t, "DELETE", base+"?operator=bob", ""); code != http.StatusNotFound {
		t.Fatalf("second unbind: %d", code)
	}
	// Both changes are in the journal, with the operator.
	var n int
	err = sw.journal.ByBusinessDay(sw.clock.Today().String(), func(e *journal.Entry) bool {
		if e.Listener == recharge.BindListener && e.Direction == journal.In {
			n++
			if !strings.HasPrefix(e.Peer, "operator:") {
				t.Errorf("binding entry without operator: %q", e.Peer)
			}
		}
		return true
	})
	if err != nil || n != 2 {
		t.Fatalf("binding journal entries: %d, %v", n, err)
	}
}
