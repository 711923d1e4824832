package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTerminalPermissionCommands(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	conn := []string{"--admin", srv.URL, "--token", "tok"}
	for _, c := range []struct {
		args []string
		want string
		rc   int
	}{
		{[]string{"terminal", "permit", "90000001", "--type", "transfer_load"},
			`POST /api/v1/terminals/90000001/permit {"types":["transfer_load"]}`, 0},
		{[]string{"terminal", "forbid", "--type", "refund, pre_auth", "10000001"},
			`POST /api/v1/terminals/10000001/forbid {"types":["refund","pre_auth"]}`, 0},
		{[]string{"terminal", "permit", "90000001"}, "", 2},
		{[]string{"terminal", "permit", "--type", "transfer_load"}, "", 2},
	} {
		got = nil
		var out, errs bytes.Buffer
		if rc := run(append(append([]string(nil), c.args...), conn...), &out, &errs); rc != c.rc {
			t.Fatalf("%v: rc %d, want %d: %s", c.args, rc, c.rc, errs.String())
		}
		if c.want != "" && (len(got) != 1 || got[0] != c.want+"\n" && got[0] != c.want) {
			t.Fatalf("%v: requests %q, want %q", c.args, got, c.want)
		}
		if c.want == "" && len(got) != 0 {
			t.Fatalf("%v: sent %v on a usage error", c.args, got)
		}
	}
}
