package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConventions: `switchctl help [COMMAND]` and `--help` print usage on
// stdout with exit 0; a missing argument is named with exit 2; the object
// of a command is a positional argument, with the older flag kept.
func TestConventions(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		_, _ = w.Write([]byte("{}\n"))
	}))
	defer srv.Close()
	conn := []string{"--admin", srv.URL, "--token", "tok"}
	cases := []struct {
		name    string
		args    []string
		rc      int
		stdout  string // substring of stdout
		stderr  string // substring of stderr
		request string // the admin request sent, if any
	}{
		{"help", []string{"help"}, 0, "terminal   terminals: list, show", "", ""},
		{"--help", []string{"--help"}, 0, "usage: switchctl COMMAND", "", ""},
		{"-h", []string{"-h"}, 0, "usage: switchctl COMMAND", "", ""},
		{"no command", nil, 2, "", "usage: switchctl COMMAND", ""},
		{"unknown command", []string{"nosuch"}, 2, "", `unknown command "nosuch"`, ""},
		{"help of a noun", []string{"help", "card"}, 0, "switchctl card show CARD", "", ""},
		{"help lists verb flags", []string{"help", "terminal"}, 0, "-merchant string", "", ""},
		{"help of an unknown noun", []string{"help", "nope"}, 2, "", `switchctl help: unknown command "nope"`, ""},
		{"help of hsm", []string{"help", "hsm"}, 0, "usage: switchctl hsm", "", ""},
		{"help of pos", []string{"help", "pos"}, 0, "usage: switchctl pos echo", "", ""},
		{"help of ledger", []string{"help", "ledger"}, 0, "usage: switchctl ledger check", "", ""},
		{"noun --help", []string{"card", "--help"}, 0, "switchctl card freeze CARD", "", ""},
		{"noun help", []string{"merchant", "help"}, 0, "switchctl merchant add MERCHANT --name NAME", "", ""},
		{"verb --help", []string{"card", "show", "--help"}, 0, "usage: switchctl card show CARD", "", ""},
		{"verb -h after argument", []string{"terminal", "show", "10000001", "-h"}, 0, "usage: switchctl terminal show TERMINAL", "", ""},
		{"no verb", []string{"card"}, 2, "", "switchctl card: missing verb", ""},
		{"unknown verb", []string{"card", "shw"}, 2, "", `switchctl card: unknown verb "shw"`, ""},
		{"card show without card", append([]string{"card", "show"}, conn...), 2, "", "card show: missing card number", ""},
		{"card freeze without card", append([]string{"card", "freeze"}, conn...), 2, "", "card freeze: missing card number", ""},
		{"terminal show without id", append([]string{"terminal", "show"}, conn...), 2, "", "terminal show: missing terminal id", ""},
		{"terminal add without merchant", append([]string{"terminal", "add", "10000009"}, conn...), 2, "", "terminal add: missing --merchant", ""},
		{"load-tmk without components", append([]string{"terminal", "load-tmk", "10000009"}, conn...), 2, "", "terminal load-tmk: missing --components", ""},
		{"merchant show without id", append([]string{"merchant", "show"}, conn...), 2, "", "merchant show: missing merchant id", ""},
		{"merchant add without name", append([]string{"merchant", "add", "898310000000009"}, conn...), 2, "", "merchant add: missing --name", ""},
		{"journal show without selector", append([]string{"journal", "show"}, conn...), 2, "", "journal show: missing --rrn R, or --terminal T with --batch B", ""},
		{"two arguments", append([]string{"card", "show", "1", "2"}, conn...), 2, "", `unexpected arguments ["2"] (one card number only)`, ""},
		{"argument and a different flag", append([]string{"card", "show", "1", "--card", "2"}, conn...), 2, "", `card number given twice ("1" and --card "2")`, ""},
		{"argument on a verb without one", append([]string{"terminal", "list", "x"}, conn...), 2, "", `terminal list: unexpected argument "x"`, ""},
		{"card show positional", append([]string{"card", "show", "6230151000000000012"}, conn...), 0, "{}", "", "GET /api/v1/cards/6230151000000000012"},
		{"card show flag alias", append([]string{"card", "show", "--card", "6230151000000000012"}, conn...), 0, "{}", "", "GET /api/v1/cards/6230151000000000012"},
		{"flags before the argument", append(append([]string{"card", "lost"}, conn...), "6230151000000000020"), 0, "{}", "", "POST /api/v1/cards/6230151000000000020/lost"},
		{"terminal disable positional", append([]string{"terminal", "disable", "10000001"}, conn...), 0, "{}", "", "POST /api/v1/terminals/10000001/disable"},
		{"terminal show --id alias", append([]string{"terminal", "show", "--id", "10000001"}, conn...), 0, "{}", "", "GET /api/v1/terminals/10000001"},
		{"merchant show positional", append([]string{"merchant", "show", "898310000000001"}, conn...), 0, "{}", "", "GET /api/v1/merchants/898310000000001"},
		{"journal by terminal", append([]string{"journal", "show", "--terminal", "10000001", "--batch", "000001"}, conn...), 0, "{}", "", "GET /api/v1/journal?batch=000001&limit=200&terminal=10000001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			var out, errs bytes.Buffer
			rc := run(tc.args, &out, &errs)
			if rc != tc.rc {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", rc, tc.rc, out.String(), errs.String())
			}
			if tc.stdout != "" && !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q, want it to contain %q", out.String(), tc.stdout)
			}
			if tc.stdout == "" && out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
			if tc.stderr != "" && !strings.Contains(errs.String(), tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", errs.String(), tc.stderr)
			}
			if tc.rc == 0 && errs.Len() != 0 {
				t.Errorf("stderr %q on success", errs.String())
			}
			want := []string(nil)
			if tc.request != "" {
				want = []string{tc.request}
			}
			if strings.Join(got, ";") != strings.Join(want, ";") {
				t.Errorf("requests %q, want %q", got, want)
			}
		})
	}
}

// TestReferenceListsEveryCommand: every command, and every verb of the
// commands run through runVerbs, is described in docs/switchctl.md or on
// its feature's page.
func TestReferenceListsEveryCommand(t *testing.T) {
	var all []byte
	pages, _ := filepath.Glob("../../docs/*.md")
	for _, p := range pages {
		pb, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, pb...)
	}
	for name, c := range commands {
		if !strings.Contains(string(all), "switchctl "+name) {
			t.Errorf("no page of docs/ mentions switchctl %s (docs/switchctl.md lists every command)", name)
		}
		var out bytes.Buffer
		c([]string{"--help"}, &out, &out)
		for _, line := range strings.Split(out.String(), "\n") {
			line = strings.TrimSpace(line)
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "switchctl" && f[1] == name {
				if verb := f[2]; !strings.HasPrefix(verb, "-") && !strings.Contains(string(all), "switchctl "+name+" "+verb) {
					t.Errorf("no page of docs/ describes switchctl %s %s", name, f[2])
				}
			}
		}
	}
}
