package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// The business day, reconciliation and settlement commands
// (docs/reconciliation.md). They talk to the running switchd.
func init() {
	register("day", runDay)
	register("recon", runRecon)
}

// verb is one NOUN VERB: its usage line, whether it takes a positional
// argument (named), and how it registers its flags and runs.
type verb struct {
	usage string
	arg   string // name of the positional argument; "" for none
	setup func(fs *flag.FlagSet, a *adminFlags, arg *string) func() int
}

// runVerbs dispatches `switchctl NOUN VERB [ARG] [flags]`; the positional
// argument may come before or after the flags.
func runVerbs(noun string, args []string, stdout, stderr io.Writer, verbs map[string]verb) int {
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	printUsage := func(w io.Writer) {
		for _, n := range names {
			fmt.Fprintf(w, "usage: switchctl %s %s\n", noun, verbs[n].usage)
		}
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		if len(args) == 0 {
			printUsage(stderr)
			return 2
		}
		printUsage(stdout)
		return 0
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "switchctl %s: unknown verb %q\n", noun, args[0])
		printUsage(stderr)
		return 2
	}
	fs := flag.NewFlagSet(noun+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: switchctl %s %s\n", noun, v.usage)
		fs.PrintDefaults()
	}
	a := &adminFlags{}
	a.register(fs)
	var pos string
	run := v.setup(fs, a, &pos)
	rest := args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		pos, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 && pos == "" {
		pos = fs.Arg(0)
		if fs.NArg() > 1 {
			fmt.Fprintf(stderr, "switchctl %s %s: unexpected arguments %q\n", noun, args[0], fs.Args()[1:])
			return 2
		}
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchctl %s %s: unexpected arguments %q\n", noun, args[0], fs.Args())
		return 2
	}
	if v.arg != "" && pos == "" {
		fmt.Fprintf(stderr, "%s %s: missing %s\n", noun, args[0], v.arg)
		return 2
	}
	if v.arg == "" && pos != "" {
		fmt.Fprintf(stderr, "switchctl %s %s: unexpected argument %q\n", noun, args[0], pos)
		return 2
	}
	return run()
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
					return a.send("GET", "/api/v1/recon/export?"+q.Encode(), "application/json", nil, true, w, stderr)
				})
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
