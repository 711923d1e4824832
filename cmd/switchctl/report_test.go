package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReportReceivables: `switchctl report receivables` asks the
// receivables endpoint with the token and the page flags, and prints the
// answer; a missing verb is a usage error.
func TestReportReceivables(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = w.Write([]byte(`{"total_owed":"70.00","cards":1,"receivables":[{"card":"623015*********0061","holder":"x","state":"active","owed":"70.00"}]}`))
	}))
	defer srv.Close()
	var out, errs bytes.Buffer
	rc := runReport([]string{"receivables", "--admin", srv.URL, "--token", "tok", "--limit", "5", "--after", "10"}, &out, &errs)
	if rc != 0 || got == nil {
		t.Fatalf("rc %d: %s", rc, errs.String())
	}
	if got.Method != "GET" || got.URL.Path != "/api/v1/reports/receivables" || got.URL.Query().Get("limit") != "5" ||
		got.URL.Query().Get("after") != "10" || got.Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("request %s %s auth %q", got.Method, got.URL, got.Header.Get("Authorization"))
	}
	if !strings.Contains(out.String(), `"total_owed"`) {
		t.Errorf("output %q", out.String())
	}
	errs.Reset()
	if rc := runReport(nil, &out, &errs); rc != 2 || !strings.Contains(errs.String(), "receivables") {
		t.Errorf("no verb: rc %d %q", rc, errs.String())
	}
}
