package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTransferCommands(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		_, _ = w.Write([]byte(`{"transfers":[],"next":""}`))
	}))
	defer srv.Close()
	conn := []string{"--admin", srv.URL, "--token", "tok"}
	for _, c := range []struct {
		args []string
		want string
		rc   int
	}{
		{[]string{"transfer", "list"}, "GET /api/v1/transfers?limit=100", 0},
		{[]string{"transfer", "list", "--card", "6230151000000000020", "--date", "20260314", "--limit", "5"},
			"GET /api/v1/transfers?card=6230151000000000020&date=20260314&limit=5", 0},
		{[]string{"transfer", "list", "--terminal", "90000001", "--after", "90000001/000001/000007"},
			"GET /api/v1/transfers?after=90000001%2F000001%2F000007&limit=100&terminal=90000001", 0},
		{[]string{"transfer", "nope"}, "", 2},
	} {
		got = nil
		var out, errs bytes.Buffer
		if rc := run(append(append([]string(nil), c.args...), conn...), &out, &errs); rc != c.rc {
			t.Fatalf("%v: rc %d, want %d: %s", c.args, rc, c.rc, errs.String())
		}
		if c.want != "" && (len(got) != 1 || got[0] != c.want) {
			t.Fatalf("%v: requests %v, want %q", c.args, got, c.want)
		}
		if c.want == "" && len(got) != 0 {
			t.Fatalf("%v: sent %v on a usage error", c.args, got)
		}
	}
}
