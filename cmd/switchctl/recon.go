package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
)

// The business day, reconciliation and settlement commands
// (docs/reconciliation.md). They talk to the running switchd.
func init() {
	register("day", runDay)
	register("recon", runRecon)
}

func runDay(args []string, stdout, stderr io.Writer) int {
	return runVerbs("day", args, stdout, stderr, map[string]verb{
		"status": {usage: "status [--days N]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			days := fs.Int("days", 7, "how many business days to list, newest first")
			return func() int {
				return a.call("GET", fmt.Sprintf("/api/v1/day?days=%d", *days), nil, stdout, stderr)
			}
		}},
		"close": {usage: "close [--date YYYYMMDD] [--operator NAME]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			date := fs.String("date", "", "business date to close (default: the current one, closed early)")
			op := fs.String("operator", os.Getenv("USER"), "who closes the day (kept in the day's record)")
			return func() int {
				return a.call("POST", "/api/v1/day/close", map[string]string{"date": *date, "operator": *op}, stdout, stderr)
			}
		}},
	})
}

func runRecon(args []string, stdout, stderr io.Writer) int {
	return runVerbs("recon", args, stdout, stderr, map[string]verb{
		"export": {usage: "export --date YYYYMMDD [--gateway G | --merchant M] [--out FILE]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			date := fs.String("date", "", "business date (YYYYMMDD)")
			gw := fs.String("gateway", "", "only this gateway or institution (local = the campus card ledger)")
			merchant := fs.String("merchant", "", "only this merchant")
			out := fs.String("out", "", "write to FILE (mode 0600, replaced whole) instead of standard output")
			return func() int {
				if *date == "" {
					fmt.Fprintln(stderr, "recon export: missing --date")
					return 2
				}
				if *gw != "" && *merchant != "" {
					fmt.Fprintln(stderr, "recon export: give --gateway or --merchant, not both")
					return 2
				}
				if a.timeout == defaultTimeout {
					a.timeout = maxTimeout
				}
				q := url.Values{"date": {*date}}
				if *gw != "" {
					q.Set("gateway", *gw)
				}
				if *merchant != "" {
					q.Set("merchant", *merchant)
				}
				return toFile(*out, stdout, stderr, func(w io.Writer) int {
					tw := &tailWriter{w: w}
					if rc := a.send("GET", "/api/v1/recon/export?"+q.Encode(), "application/json", nil, true, tw, stderr); rc != 0 {
						return rc
					}
					// A stream cut short (the switch stopped, the
					// connection broke) lacks its trailer line.
					if !tw.complete() {
						fmt.Fprintln(stderr, "recon export: incomplete: the answer ends without its TOTAL line")
						return 1
					}
					return 0
				})
			}
		}},
		"import": {usage: "import FILE --gateway G --date YYYYMMDD", arg: "file", setup: func(fs *flag.FlagSet, a *adminFlags, file *string) func() int {
			gw := fs.String("gateway", "", "gateway or institution whose file this is (its layout is in recon.gateways)")
			date := fs.String("date", "", "business date the file covers (YYYYMMDD)")
			return func() int {
				if *gw == "" || *date == "" {
					fmt.Fprintln(stderr, "recon import: missing --gateway or --date")
					return 2
				}
				f, err := os.Open(*file)
				if err != nil {
					fmt.Fprintln(stderr, "recon import:", err)
					return 2
				}
				defer f.Close()
				if a.timeout == defaultTimeout {
					a.timeout = maxTimeout
				}
				q := url.Values{"gateway": {*gw}, "date": {*date}}
				return a.send("POST", "/api/v1/recon/import?"+q.Encode(), "text/csv", f, false, stdout, stderr)
			}
		}},
		"report": {usage: "report --gateway G --date YYYYMMDD [--format json|csv]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			gw := fs.String("gateway", "", "gateway or institution")
			date := fs.String("date", "", "business date (YYYYMMDD)")
			format := fs.String("format", "json", "json or csv")
			return func() int {
				q := url.Values{"gateway": {*gw}, "date": {*date}, "format": {*format}}
				return a.call("GET", "/api/v1/recon/report?"+q.Encode(), nil, stdout, stderr)
			}
		}},
		"discrepancies": {usage: "discrepancies [--gateway G] [--date D] [--class C] [--state open|resolved] [--limit N] [--after ID]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			gw := fs.String("gateway", "", "only this gateway")
			date := fs.String("date", "", "only this business date")
			class := fs.String("class", "", "only this class (ours-only, theirs-only, amount-differs, status-differs)")
			state := fs.String("state", "", "open or resolved")
			limit := fs.Int("limit", 100, "most to list (1..1000)")
			after := fs.Uint64("after", 0, "list ids above this (the next of the previous page)")
			return func() int {
				q := url.Values{"limit": {fmt.Sprint(*limit)}, "after": {fmt.Sprint(*after)}}
				for k, v := range map[string]string{"gateway": *gw, "date": *date, "class": *class, "state": *state} {
					if v != "" {
						q.Set(k, v)
					}
				}
				return a.call("GET", "/api/v1/recon/discrepancies?"+q.Encode(), nil, stdout, stderr)
			}
		}},
		"stats": {usage: "stats --date YYYYMMDD", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			date := fs.String("date", "", "business date")
			return func() int {
				if a.timeout == defaultTimeout {
					a.timeout = maxTimeout
				}
				return a.call("GET", "/api/v1/recon/statistics?date="+url.QueryEscape(*date), nil, stdout, stderr)
			}
		}},
		"resolve": {usage: "resolve ID --action credit|refund|accept [--operator NAME]", arg: "discrepancy id", setup: func(fs *flag.FlagSet, a *adminFlags, id *string) func() int {
			action := fs.String("action", "", "credit, refund or accept")
			op := fs.String("operator", os.Getenv("USER"), "who resolves it (journaled)")
			return func() int {
				if *action == "" {
					fmt.Fprintln(stderr, "recon resolve: missing --action")
					return 2
				}
				return a.call("POST", "/api/v1/recon/discrepancies/"+url.PathEscape(*id)+"/resolve",
					map[string]string{"action": *action, "operator": *op}, stdout, stderr)
			}
		}},
	})
}

// defaultTimeout is the --timeout default of admin calls; long reports
// raise it to the maximum unless the operator set one.
const defaultTimeout = 10 * time.Second

// toFile runs f writing to path (a temporary file renamed into place, mode
// 0600: exports hold full card numbers) or to stdout when path is "".
func toFile(path string, stdout, stderr io.Writer, f func(io.Writer) int) int {
	if path == "" {
		return f(stdout)
	}
	tmp, err := os.CreateTemp(dirOf(path), ".switchctl-*")
	if err != nil {
		fmt.Fprintln(stderr, "switchctl:", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		fmt.Fprintln(stderr, "switchctl:", err)
		return 1
	}
	rc := f(tmp)
	if err := tmp.Close(); err != nil && rc == 0 {
		fmt.Fprintln(stderr, "switchctl:", err)
		return 1
	}
	if rc != 0 {
		return rc
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		fmt.Fprintln(stderr, "switchctl:", err)
		return 1
	}
	return 0
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// tailWriter passes writes on and keeps the last line written.
type tailWriter struct {
	w    io.Writer
	tail []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.tail = append(t.tail, p...)
	if len(t.tail) > 256 {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-256:]...)
	}
	return t.w.Write(p)
}

// complete reports whether the last line is an export's trailer.
func (t *tailWriter) complete() bool {
	s := strings.TrimSuffix(string(t.tail), "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.HasPrefix(s, "TOTAL,") && strings.HasSuffix(string(t.tail), "\n")
}
