// Command switchctl is the operator CLI of cardswitch: an offline HSM
// calculator, a POS smoke-test client, ledger checks and admin commands.
// Each subcommand registers itself from its own file; main only dispatches.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command runs one subcommand with the arguments after its name and returns
// the process exit status (0 ok, 1 failure, 2 bad usage or input).
type command func(args []string, stdout, stderr io.Writer) int

var commands = map[string]command{}

func register(name string, c command) {
	if _, dup := commands[name]; dup {
		panic("switchctl: command registered twice: " + name)
	}
	commands[name] = c
}

// summaries are the one-line descriptions `switchctl help` prints; a
// command without one is listed by name.
var summaries = map[string]string{
	"hsm":       "offline key and PIN calculator (KCV, MAC, PIN blocks, DUKPT, PVV)",
	"pos":       "POS smoke test: echo a terminal through the acceptor",
	"ledger":    "offline ledger views of a stopped switchd's data directory",
	"terminal":  "terminals: list, show, add, load-tmk, disable, enable, permit, forbid",
	"merchant":  "merchants: list, show, add",
	"card":      "cards: show, freeze, unfreeze, lost, found, close, bind, binding, unbind",
	"journal":   "journal entries by RRN or by terminal batch",
	"retention": "run the retention job now",
	"day":       "the business day: status, close",
	"recon":     "reconciliation: export, import, report, discrepancies, resolve",
	"report":    "reports of the running switch: receivables",
	"settle":    "settlement per merchant, rates, refund list",
	"gateways":  "gateway links: list, load-zmk",
	"saf":       "store-and-forward queues: list, retry, drop",
	"recharge":  "outside institutions: institutions, orders, order, pending",
	"transfer":  "bank-transfer loads at kiosks: list",
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: switchctl COMMAND [VERB] [ARG] [flags]")
	fmt.Fprintln(w, "commands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, summaries[n])
	}
	fmt.Fprintln(w, "switchctl help COMMAND (or COMMAND --help) prints a command's verbs and flags; reference: docs/switchctl.md")
}

// run dispatches the command line; main only exits with its status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if isHelpWord(args[0]) {
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		c, ok := commands[args[1]]
		if !ok {
			fmt.Fprintf(stderr, "switchctl help: unknown command %q\n", args[1])
			usage(stderr)
			return 2
		}
		// Usage goes to stdout, whichever stream the command writes it to.
		return c([]string{"--help"}, stdout, stdout)
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "switchctl: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return c(args[1:], stdout, stderr)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
