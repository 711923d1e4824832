package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGatewaysAndSAFCommands(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	conn := []string{"--admin", srv.URL, "--token", "tok"}
	cases := []struct {
		run  func([]string, *bytes.Buffer, *bytes.Buffer) int
		args []string
		want string
		rc   int
	}{
		{gw, nil, "GET /api/v1/gateways", 0},
		{gw, []string{"list"}, "GET /api/v1/gateways", 0},
		{saf, []string{"list", "--gateway", "demo-bank", "--dead"}, "GET /api/v1/saf?dead=true&gateway=demo-bank&limit=100", 0},
		{saf, []string{"retry", "42"}, "POST /api/v1/saf/42/retry", 0},
		{saf, []string{"drop", "42", "--gateway", "demo-bank"}, "POST /api/v1/saf/42/drop?gateway=demo-bank", 0},
		{gw, []string{"load-zmk", "demo-bank", "--components", "00,11"}, "POST /api/v1/gateways/demo-bank/zmk", 0},
		{saf, []string{"retry"}, "", 2},
		{saf, []string{"drop", "x"}, "", 2},
		{gw, []string{"load-zmk"}, "", 2},
		{gw, []string{"unbind", "old-bank", "--operator", "alice"}, "DELETE /api/v1/gateways/old-bank/bindings?operator=alice", 0},
		{gw, []string{"unbind"}, "", 2},
		{saf, []string{"purge"}, "", 2},
		{saf, []string{"help"}, "", 0},
		{gw, []string{"--help"}, "", 0},
	}
	for _, c := range cases {
		got = nil
		var out, errs bytes.Buffer
		args := append(append([]string(nil), c.args...), conn...)
		if rc := c.run(args, &out, &errs); rc != c.rc {
			t.Fatalf("%v: rc %d, want %d: %s", c.args, rc, c.rc, errs.String())
		}
		if c.want != "" && (len(got) != 1 || got[0] != c.want) {
			t.Fatalf("%v: requests %v, want %q", c.args, got, c.want)
		}
		if c.rc == 2 && !strings.Contains(errs.String(), "usage") && !strings.Contains(errs.String(), "missing") && !strings.Contains(errs.String(), "not a number") {
			t.Fatalf("%v: no usage on error: %q", c.args, errs.String())
		}
	}
}

func gw(a []string, o, e *bytes.Buffer) int  { return runGateways(a, o, e) }
func saf(a []string, o, e *bytes.Buffer) int { return runSAF(a, o, e) }

// TestGatewaysUnbindFailedPartWay: a gateways unbind that failed after
// unbinding some cards says how many, and that running it again carries on.
func TestGatewaysUnbindFailedPartWay(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("{\n  \"error\": \"disk full\",\n  \"gateway\": \"old-bank\",\n  \"unbound\": 200\n}\n"))
	}))
	defer srv.Close()
	var out, errs bytes.Buffer
	rc := runGateways([]string{"unbind", "old-bank", "--operator", "alice", "--admin", srv.URL, "--token", "tok"}, &out, &errs)
	if rc != 1 || !strings.Contains(errs.String(), "disk full") ||
		!strings.Contains(errs.String(), "gateways unbind: 200 cards were unbound before the error and stay unbound; run it again to carry on") {
		t.Fatalf("rc %d, stderr %q", rc, errs.String())
	}
}
