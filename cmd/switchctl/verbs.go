package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// verb is one `switchctl NOUN VERB`: its usage line, the positional
// argument it acts on (named, for "missing card number"), the older flag
// kept as an alias of that argument, and how it registers its flags and
// runs. docs/switchctl.md is the reference of every verb.
type verb struct {
	usage   string // after "switchctl NOUN ", e.g. "show CARD"
	summary string // one line: what it does
	arg     string // name of the positional argument; "" for none
	alias   string // flag accepted in place of the argument (older scripts)
	// optional: the positional argument may be left out.
	optional bool
	setup    func(fs *flag.FlagSet, a *adminFlags, arg *string) func() int
}

func isHelpWord(s string) bool { return s == "help" || s == "-h" || s == "-help" || s == "--help" }

// runVerbs dispatches `switchctl NOUN VERB [ARG] [flags]`: the argument
// and the flags may come in any order. `NOUN help`, `NOUN --help` and
// `NOUN VERB --help` print usage on stdout and exit 0; a missing or
// unexpected argument is named and exits 2.
func runVerbs(noun string, args []string, stdout, stderr io.Writer, verbs map[string]verb) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "switchctl %s: missing verb\n", noun)
		nounUsage(stderr, noun, verbs, false)
		return 2
	}
	if isHelpWord(args[0]) {
		nounUsage(stdout, noun, verbs, true)
		return 0
	}
	name := args[0]
	v, ok := verbs[name]
	if !ok {
		fmt.Fprintf(stderr, "switchctl %s: unknown verb %q\n", noun, name)
		nounUsage(stderr, noun, verbs, false)
		return 2
	}
	fs := flag.NewFlagSet(noun+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: switchctl %s %s\n", noun, v.usage)
		if v.summary != "" {
			fmt.Fprintln(fs.Output(), v.summary)
		}
		fs.PrintDefaults()
	}
	a := &adminFlags{}
	a.register(fs)
	var pos string
	run := v.setup(fs, a, &pos)
	var alias *string
	if v.alias != "" {
		alias = fs.String(v.alias, "", "the "+v.arg+", as a flag (the argument is preferred)")
	}
	for _, s := range args[1:] {
		if s == "-h" || s == "-help" || s == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
	}
	// Flags and positional arguments interleaved.
	var positional []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch {
	case v.arg == "" && len(positional) > 0:
		fmt.Fprintf(stderr, "switchctl %s %s: unexpected argument %q\n", noun, name, positional[0])
		return 2
	case len(positional) > 1:
		fmt.Fprintf(stderr, "switchctl %s %s: unexpected arguments %q (one %s only)\n", noun, name, positional[1:], v.arg)
		return 2
	case len(positional) == 1:
		pos = positional[0]
	}
	if alias != nil && *alias != "" {
		if pos != "" && pos != *alias {
			fmt.Fprintf(stderr, "switchctl %s %s: %s given twice (%q and --%s %q)\n", noun, name, v.arg, pos, v.alias, *alias)
			return 2
		}
		pos = *alias
	}
	if v.arg != "" && pos == "" && !v.optional {
		fmt.Fprintf(stderr, "%s %s: missing %s\n", noun, name, v.arg)
		fmt.Fprintf(stderr, "usage: switchctl %s %s\n", noun, v.usage)
		return 2
	}
	return run()
}

// nounUsage prints a noun's verbs; full adds each verb's own flags.
func nounUsage(w io.Writer, noun string, verbs map[string]verb, full bool) {
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "usage: switchctl %s VERB [ARG] [flags]\n", noun)
	for _, n := range names {
		v := verbs[n]
		fmt.Fprintf(w, "  switchctl %s %s\n", noun, v.usage)
		if !full {
			continue
		}
		if v.summary != "" {
			fmt.Fprintf(w, "      %s\n", v.summary)
		}
		// The verb's own flags: admin connection flags go on another set.
		fs := flag.NewFlagSet(n, flag.ContinueOnError)
		var pos string
		v.setup(fs, &adminFlags{}, &pos)
		if v.alias != "" {
			fs.String(v.alias, "", "the "+v.arg+", as a flag (the argument is preferred)")
		}
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if line != "" {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	if full {
		fmt.Fprintf(w, "every verb also takes --admin URL (default http://127.0.0.1:9583), --token T (or SWITCHCTL_TOKEN) and --timeout D\n")
		fmt.Fprintf(w, "reference: docs/switchctl.md\n")
	}
}
