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

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: switchctl COMMAND [ARGS]")
	fmt.Fprintln(w, "commands:")
	for _, n := range names {
		fmt.Fprintln(w, "  "+n)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "switchctl: unknown command %q\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	os.Exit(c(os.Args[2:], os.Stdout, os.Stderr))
}
