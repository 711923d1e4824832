package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestReconCommands checks what the recon, day and settle commands send
// and how they treat a missing or misplaced argument.
func TestReconCommands(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		if strings.Contains(r.URL.Path, "/export") {
			if r.URL.Query().Get("merchant") == "CUT" {
				w.Write([]byte("business_date,...\n20261204,1"))
				return
			}
			w.Write([]byte("business_date,...\nTOTAL,0,0\n"))
			return
		}
		w.Write([]byte("{}\n"))
	}))
	defer srv.Close()
	t.Setenv("SWITCHCTL_TOKEN", "t")
	file := t.TempDir() + "/f.csv"
	if err := writeFile(file, "a,b\n"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cmd  string
		args []string
		rc   int
		want string
	}{
		{"recon", []string{"resolve", "17", "--action", "credit", "--operator", "al", "--admin", srv.URL}, 0,
			`POST /api/v1/recon/discrepancies/17/resolve {"action":"credit","operator":"al"}`},
		{"recon", []string{"resolve", "--action", "accept", "--operator", "al", "--admin", srv.URL, "18"}, 0,
			`POST /api/v1/recon/discrepancies/18/resolve {"action":"accept","operator":"al"}`},
		{"recon", []string{"resolve", "--action", "accept", "--admin", srv.URL}, 2, ""},
		{"recon", []string{"import", file, "--gateway", "gwsim", "--date", "20261204", "--admin", srv.URL}, 0,
			"POST /api/v1/recon/import?date=20261204&gateway=gwsim a,b\n"},
		{"recon", []string{"import", file, "--date", "20261204", "--admin", srv.URL}, 2, ""},
		{"recon", []string{"export", "--date", "20261204", "--merchant", "M", "--admin", srv.URL}, 0,
			"GET /api/v1/recon/export?date=20261204&merchant=M "},
		{"recon", []string{"export", "--date", "20261204", "--merchant", "M", "--gateway", "G", "--admin", srv.URL}, 2, ""},
		{"recon", []string{"export", "--date", "20261204", "--merchant", "CUT", "--admin", srv.URL}, 1, ""},
		{"recon", []string{"help"}, 0, ""},
		{"day", []string{"close", "--date", "20261204", "--operator", "bo", "--admin", srv.URL}, 0,
			`POST /api/v1/day/close {"date":"20261204","operator":"bo"}`},
		{"settle", []string{"--from", "20261201", "--to", "20261207", "--admin", srv.URL}, 0,
			"GET /api/v1/settlement?format=json&from=20261201&to=20261207 "},
		{"settle", []string{"rates", "--admin", srv.URL}, 0, "GET /api/v1/settlement/rates "},
		{"settle", []string{"rate", "--from", "20261201", "--fee-bp", "60", "--admin", srv.URL}, 2, ""},
	} {
		got = nil
		var out, errb bytes.Buffer
		rc := commands[c.cmd](c.args, &out, &errb)
		if rc != c.rc {
			t.Fatalf("%s %q: rc %d, want %d (%s)", c.cmd, c.args, rc, c.rc, errb.String())
		}
		if c.want != "" && (len(got) != 1 || got[0] != c.want) {
			t.Fatalf("%s %q sent %q, want %q", c.cmd, c.args, got, c.want)
		}
		if c.rc == 2 && !strings.Contains(errb.String(), "missing") && !strings.Contains(errb.String(), "not both") {
			t.Fatalf("%s %q: error %q does not name what is missing", c.cmd, c.args, errb.String())
		}
	}
	// An export cut short is not renamed into place; a whole one is, 0600.
	out := t.TempDir() + "/day.csv"
	var o, e bytes.Buffer
	if rc := commands["recon"]([]string{"export", "--date", "20261204", "--merchant", "CUT", "--out", out, "--admin", srv.URL}, &o, &e); rc != 1 {
		t.Fatalf("cut export rc %d", rc)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a cut export was written")
	}
	if rc := commands["recon"]([]string{"export", "--date", "20261204", "--out", out, "--admin", srv.URL}, &o, &e); rc != 0 {
		t.Fatalf("export rc %d: %s", rc, e.String())
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
