package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/secretflag"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The admin commands talk to a running switchd through its admin API
// (docs/admin-api.md). They print the JSON answer.
func init() {
	register("terminal", runTerminal)
	register("merchant", runMerchant)
	register("card", runCard)
	register("journal", runJournal)
	register("retention", runRetention)
}

// adminFlags are the connection flags every admin command takes.
type adminFlags struct {
	url     string
	token   *secretflag.Value
	timeout time.Duration
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "admin", "http://127.0.0.1:9583", "switchd HTTP address")
	a.token = secretflag.New(fs, "token", "SWITCHCTL_TOKEN", "admin bearer token; the variable keeps it out of ps")
	fs.DurationVar(&a.timeout, "timeout", 10*time.Second, "request timeout")
}

// Bounds of an admin call: the answer read by the CLI and its timeout.
const (
	maxAnswer  = 16 << 20
	maxTimeout = 10 * time.Minute
)

// call sends one admin request and prints the answer; exit 1 on an HTTP
// error status.
func (a *adminFlags) call(method, path string, body any, stdout, stderr io.Writer) int {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			fmt.Fprintln(stderr, "switchctl:", err)
			return 2
		}
		rd = bytes.NewReader(b)
	}
	return a.send(method, path, "application/json", rd, false, stdout, stderr)
}

// send is call with a body of any content type (a file being uploaded);
// stream copies a successful answer to stdout as it arrives, without the
// size bound (a day's export).
func (a *adminFlags) send(method, path, contentType string, rd io.Reader, stream bool, stdout, stderr io.Writer) int {
	token := a.token.Get()
	if token == "" {
		fmt.Fprintln(stderr, "switchctl: no admin token: pass --token or set SWITCHCTL_TOKEN")
		return 2
	}
	if a.timeout <= 0 || a.timeout > maxTimeout {
		fmt.Fprintf(stderr, "switchctl: --timeout %s: want more than 0, up to %s\n", a.timeout, maxTimeout)
		return 2
	}
	req, err := http.NewRequest(method, strings.TrimRight(a.url, "/")+path, rd)
	if err != nil {
		fmt.Fprintln(stderr, "switchctl:", err)
		return 2
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := (&http.Client{Timeout: a.timeout}).Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "switchctl:", err)
		return 1
	}
	defer resp.Body.Close()
	if stream && resp.StatusCode < 300 {
		if _, err := io.Copy(stdout, resp.Body); err != nil {
			fmt.Fprintln(stderr, "switchctl:", err)
			return 1
		}
		return 0
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		fmt.Fprintln(stderr, "switchctl:", err)
		return 1
	}
	if len(out) > maxAnswer {
		fmt.Fprintf(stderr, "switchctl: answer larger than %d MiB: ask for less (a smaller --limit)\n", maxAnswer>>20)
		return 1
	}
	if resp.StatusCode >= 300 {
		fmt.Fprintf(stderr, "switchctl: %s: %s", resp.Status, out)
		return 1
	}
	_, _ = stdout.Write(out)
	return 0
}

// sub runs a noun whose verbs take flags only (no positional argument).
func sub(noun string, args []string, stdout, stderr io.Writer, verbs map[string]func(fs *flag.FlagSet, a *adminFlags) func() int) int {
	vs := make(map[string]verb, len(verbs))
	for name, setup := range verbs {
		setup := setup
		vs[name] = verb{usage: name + " [flags]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int { return setup(fs, a) }}
	}
	return runVerbs(noun, args, stdout, stderr, vs)
}

const componentsUsage = "clear TMK components (hex), 2 or 3: comma-separated, or - to read one a line from standard input (keeps them out of ps and shell history)"

// components reads the clear key components of a TMK: from v, comma
// separated, or, when v is "-", one a line from in (at most 3 lines of at
// most 64 characters). The switch checks them and their KCVs.
func components(v string, in io.Reader) ([]string, error) {
	if v != "-" {
		return strings.Split(v, ","), nil
	}
	var out []string
	sc := bufio.NewScanner(io.LimitReader(in, 3*(64+2)+1))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if len(out) == 3 || len(line) > 64 {
			return nil, errors.New("components on standard input: at most 3 lines of at most 64 hex digits")
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("components on standard input: %w", err)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("components on standard input: %d read, want 2 or 3", len(out))
	}
	return out, nil
}

// permissionVerb is terminal permit and terminal forbid: --type names
// the transaction types (docs/pos-dialect.md), comma-separated.
func permissionVerb(verb string, path func(id, tail string) string, stdout, stderr io.Writer) func(*flag.FlagSet, *adminFlags, *string) func() int {
	return func(fs *flag.FlagSet, a *adminFlags, t *string) func() int {
		types := fs.String("type", "", "transaction types, comma-separated (transfer_load, cash_load, consume, ...)")
		return func() int {
			var list []string
			for _, l := range strings.Split(*types, ",") {
				if l = strings.TrimSpace(l); l != "" {
					list = append(list, l)
				}
			}
			if len(list) == 0 {
				fmt.Fprintf(stderr, "terminal %s: missing --type\n", verb)
				return 2
			}
			return a.call("POST", path(*t, "/"+verb), map[string]any{"types": list}, stdout, stderr)
		}
	}
}

func runTerminal(args []string, stdout, stderr io.Writer) int {
	const id = "terminal id"
	path := func(id string, tail string) string { return "/api/v1/terminals/" + url.PathEscape(id) + tail }
	return runVerbs("terminal", args, stdout, stderr, map[string]verb{
		"list": {usage: "list", summary: "every terminal with its merchant, state and key check values",
			setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
				return func() int { return a.call("GET", "/api/v1/terminals", nil, stdout, stderr) }
			}},
		"show": {usage: "show TERMINAL", summary: "one terminal", arg: id, alias: "id",
			setup: func(fs *flag.FlagSet, a *adminFlags, t *string) func() int {
				return func() int { return a.call("GET", path(*t, ""), nil, stdout, stderr) }
			}},
		"add": {usage: "add TERMINAL --merchant M [--may-load] [--tmk-components C1,C2[,C3] | -]", summary: "register a terminal, with its TMK from clear components",
			arg: id, alias: "id",
			setup: func(fs *flag.FlagSet, a *adminFlags, t *string) func() int {
				merchant := fs.String("merchant", "", "merchant id (15 characters)")
				mayLoad := fs.Bool("may-load", false, "a recharge kiosk (may cash-load cards)")
				comps := fs.String("tmk-components", "", componentsUsage)
				return func() int {
					if *merchant == "" {
						fmt.Fprintln(stderr, "terminal add: missing --merchant")
						return 2
					}
					body := map[string]any{"id": *t, "merchant": *merchant, "may_load": *mayLoad}
					if *comps != "" {
						c, err := components(*comps, os.Stdin)
						if err != nil {
							fmt.Fprintln(stderr, "switchctl terminal add:", err)
							return 2
						}
						body["tmk_components"] = c
					}
					return a.call("POST", "/api/v1/terminals", body, stdout, stderr)
				}
			}},
		"load-tmk": {usage: "load-tmk TERMINAL --components C1,C2[,C3] | -", summary: "replace a terminal's TMK from clear components",
			arg: id, alias: "id",
			setup: func(fs *flag.FlagSet, a *adminFlags, t *string) func() int {
				comps := fs.String("components", "", componentsUsage)
				return func() int {
					if *comps == "" {
						fmt.Fprintln(stderr, "terminal load-tmk: missing --components")
						return 2
					}
					c, err := components(*comps, os.Stdin)
					if err != nil {
						fmt.Fprintln(stderr, "switchctl terminal load-tmk:", err)
						return 2
					}
					return a.call("POST", path(*t, "/tmk"), map[string]any{"components": c}, stdout, stderr)
				}
			}},
		"disable": {usage: "disable TERMINAL", summary: "refuse the terminal's transactions (answered 58) until enabled", arg: id, alias: "id",
			setup: func(fs *flag.FlagSet, a *adminFlags, t *string) func() int {
				return func() int { return a.call("POST", path(*t, "/disable"), nil, stdout, stderr) }
			}},
		"enable": {usage: "enable TERMINAL", summary: "serve a disabled terminal again", arg: id, alias: "id",
			setup: func(fs *flag.FlagSet, a *adminFlags, t *string) func() int {
				return func() int { return a.call("POST", path(*t, "/enable"), nil, stdout, stderr) }
			}},
		"permit": {usage: "permit TERMINAL --type T[,T...]", summary: "let the terminal send these transaction types too (e.g. transfer_load for a kiosk registered before transfer loads)",
			arg: id, alias: "id", setup: permissionVerb("permit", path, stdout, stderr)},
		"forbid": {usage: "forbid TERMINAL --type T[,T...]", summary: "answer these transaction types from the terminal 58 from now on",
			arg: id, alias: "id", setup: permissionVerb("forbid", path, stdout, stderr)},
	})
}

func runMerchant(args []string, stdout, stderr io.Writer) int {
	const id = "merchant id"
	return runVerbs("merchant", args, stdout, stderr, map[string]verb{
		"list": {usage: "list", summary: "every merchant",
			setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
				return func() int { return a.call("GET", "/api/v1/merchants", nil, stdout, stderr) }
			}},
		"show": {usage: "show MERCHANT", summary: "one merchant", arg: id, alias: "id",
			setup: func(fs *flag.FlagSet, a *adminFlags, m *string) func() int {
				return func() int { return a.call("GET", "/api/v1/merchants/"+url.PathEscape(*m), nil, stdout, stderr) }
			}},
		"add": {usage: "add MERCHANT --name NAME [--on-campus]", summary: "register a merchant", arg: id, alias: "id",
			setup: func(fs *flag.FlagSet, a *adminFlags, m *string) func() int {
				name := fs.String("name", "", "merchant name (printed on receipts)")
				onCampus := fs.Bool("on-campus", false, "on campus: subsidy may be spent here")
				return func() int {
					if *name == "" {
						fmt.Fprintln(stderr, "merchant add: missing --name")
						return 2
					}
					return a.call("POST", "/api/v1/merchants", map[string]any{"id": *m, "name": *name, "on_campus": *onCampus}, stdout, stderr)
				}
			}},
	})
}

func runCard(args []string, stdout, stderr io.Writer) int {
	const pan = "card number"
	verbs := map[string]verb{
		"show": {usage: "show CARD", summary: "one card: state, purses, limits (number masked)", arg: pan, alias: "card",
			setup: func(fs *flag.FlagSet, a *adminFlags, c *string) func() int {
				return func() int { return a.call("GET", "/api/v1/cards/"+url.PathEscape(*c), nil, stdout, stderr) }
			}},
	}
	for action, summary := range map[string]string{
		"freeze":   "freeze a card (its transactions declined 45 until unfrozen)",
		"unfreeze": "undo freeze",
		"lost":     "report a card lost (declined 41)",
		"found":    "cancel a loss report",
		"close":    "close a card for good",
	} {
		action := action
		verbs[action] = verb{usage: action + " CARD", summary: summary, arg: pan, alias: "card",
			setup: func(fs *flag.FlagSet, a *adminFlags, c *string) func() int {
				return func() int {
					return a.call("POST", "/api/v1/cards/"+url.PathEscape(*c)+"/"+action, nil, stdout, stderr)
				}
			}}
	}
	for name, v := range cardBindingVerbs(stdout, stderr) {
		verbs[name] = v
	}
	return runVerbs("card", args, stdout, stderr, verbs)
}

func runJournal(args []string, stdout, stderr io.Writer) int {
	return runVerbs("journal", args, stdout, stderr, map[string]verb{
		"show": {usage: "show (--rrn R [--date YYYYMMDD] | --terminal T --batch B) [--limit N]", summary: "journal entries of one RRN, or of one terminal's batch",
			setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
				rrn := fs.String("rrn", "", "retrieval reference number (field 37)")
				date := fs.String("date", "", "business date YYYYMMDD (with --rrn)")
				terminal := fs.String("terminal", "", "terminal id (with --batch)")
				batch := fs.String("batch", "", "batch number (with --terminal)")
				limit := fs.Int("limit", 200, "most entries to show")
				return func() int {
					q := url.Values{}
					switch {
					case *rrn != "":
						q.Set("rrn", *rrn)
						if *date != "" {
							q.Set("date", *date)
						}
					case *terminal != "" && *batch != "":
						q.Set("terminal", *terminal)
						q.Set("batch", *batch)
					default:
						fmt.Fprintln(stderr, "journal show: missing --rrn R, or --terminal T with --batch B")
						return 2
					}
					q.Set("limit", fmt.Sprint(*limit))
					return a.call("GET", "/api/v1/journal?"+q.Encode(), nil, stdout, stderr)
				}
			}},
	})
}

func runRetention(args []string, stdout, stderr io.Writer) int {
	return runVerbs("retention", args, stdout, stderr, map[string]verb{
		"run": {usage: "run", summary: "run the retention job now and print its report",
			setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
				return func() int { return a.call("POST", "/api/v1/retention/run", nil, stdout, stderr) }
			}},
	})
}
