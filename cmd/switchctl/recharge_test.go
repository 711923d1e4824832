package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRechargeAndBindingCommands(t *testing.T) {
	var got []string
	var body map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		body = nil
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			_ = json.Unmarshal(b, &body)
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	conn := []string{"--admin", srv.URL, "--token", "tok"}
	cases := []struct {
		args []string
		want string
		rc   int
	}{
		{[]string{"recharge", "institutions"}, "GET /api/v1/recharge/institutions", 0},
		{[]string{"recharge", "order", "WEB-1", "--institution", "10001"}, "GET /api/v1/recharge/institutions/10001/orders/WEB-1", 0},
		{[]string{"recharge", "orders", "--institution", "10001", "--limit", "5", "--after", "A"}, "GET /api/v1/recharge/institutions/10001/orders?after=A&limit=5", 0},
		{[]string{"recharge", "pending"}, "GET /api/v1/recharge/pending", 0},
		{[]string{"recharge", "pending", "--older-than-days", "7"}, "GET /api/v1/recharge/pending?older_than_days=7", 0},
		{[]string{"card", "bind", "6230151000000000020", "--gateway", "demo-bank", "--bank-card", "6222020200112233445", "--account", "A1", "--operator", "alice"}, "POST /api/v1/cards/6230151000000000020/binding", 0},
		{[]string{"card", "binding", "6230151000000000020"}, "GET /api/v1/cards/6230151000000000020/binding", 0},
		{[]string{"card", "unbind", "6230151000000000020", "--operator", "bob"}, "DELETE /api/v1/cards/6230151000000000020/binding?operator=bob", 0},
		{[]string{"recharge", "order", "WEB-1"}, "", 2},
		{[]string{"recharge", "order", "--institution", "10001"}, "", 2},
		{[]string{"recharge", "orders"}, "", 2},
		{[]string{"card", "bind", "6230151000000000020", "--gateway", "demo-bank"}, "", 2},
		{[]string{"card", "bind"}, "", 2},
	}
	for _, c := range cases {
		got = nil
		var out, errs bytes.Buffer
		args := append(append([]string(nil), c.args...), conn...)
		if rc := run(args, &out, &errs); rc != c.rc {
			t.Fatalf("%v: rc %d, want %d: %s", c.args, rc, c.rc, errs.String())
		}
		if c.want != "" && (len(got) != 1 || got[0] != c.want) {
			t.Fatalf("%v: requests %v, want %q", c.args, got, c.want)
		}
		if c.want == "" && len(got) != 0 {
			t.Fatalf("%v: sent %v on a usage error", c.args, got)
		}
		if c.args[1] == "bind" && c.rc == 0 && (body["bank_card"] != "6222020200112233445" || body["account"] != "A1" || body["operator"] != "alice") {
			t.Fatalf("bind body %v", body)
		}
	}
}
