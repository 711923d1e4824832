package main

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestComponents(t *testing.T) {
	a, b, c := "0123456789ABCDEFFEDCBA9876543210", "1111111111111111", "2222222222222222"
	tests := []struct {
		name, flag, stdin string
		want              []string
		fail              bool
	}{
		{"from the flag", a + "," + b, "", []string{a, b}, false},
		{"from stdin", "-", a + "\n" + b + "\r\n\n" + c + "\n", []string{a, b, c}, false},
		{"one only", "-", a + "\n", nil, true},
		{"four", "-", a + "\n" + b + "\n" + c + "\n" + c + "\n", nil, true},
		{"too long", "-", strings.Repeat("A", 65) + "\n" + b + "\n", nil, true},
		{"endless", "-", strings.Repeat("A", 1<<20), nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := components(tc.flag, strings.NewReader(tc.stdin))
			if (err != nil) != tc.fail || (!tc.fail && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("components(%q) = %q, %v", tc.flag, got, err)
			}
		})
	}
}

func TestCallBounds(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("x"), maxAnswer+1))
	}))
	defer big.Close()
	var out, errs bytes.Buffer
	a := &adminFlags{}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	a.register(fs)
	if err := fs.Parse([]string{"--admin", big.URL, "--token", "t", "--timeout", "10s"}); err != nil {
		t.Fatal(err)
	}
	if rc := a.call("GET", "/api/v1/terminals", nil, &out, &errs); rc != 1 || out.Len() != 0 || !strings.Contains(errs.String(), "larger than") {
		t.Fatalf("oversized answer: rc %d, %d bytes out, %q", rc, out.Len(), errs.String())
	}
	errs.Reset()
	a.timeout = 0
	if rc := a.call("GET", "/api/v1/terminals", nil, &out, &errs); rc != 2 || !strings.Contains(errs.String(), "--timeout") {
		t.Fatalf("no timeout: rc %d, %q", rc, errs.String())
	}
}

// TestRetentionRun: `switchctl retention run` posts to the retention
// endpoint with the token and prints the report.
func TestRetentionRun(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization")
		_, _ = w.Write([]byte(`{"complete":true}`))
	}))
	defer srv.Close()
	var out, errs bytes.Buffer
	if rc := runRetention([]string{"run", "--admin", srv.URL, "--token", "tok"}, &out, &errs); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errs.String())
	}
	if got != "POST /api/v1/retention/run Bearer tok" || !strings.Contains(out.String(), `"complete"`) {
		t.Fatalf("request %q, output %q", got, out.String())
	}
	if rc := runRetention([]string{"prune"}, &out, &errs); rc != 2 {
		t.Fatalf("unknown verb: rc %d", rc)
	}
}
