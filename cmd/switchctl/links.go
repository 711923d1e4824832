package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Gateway links and their store-and-forward queues (docs/gateway-links.md).
func init() {
	register("gateways", runGateways)
	register("saf", runSAF)
}

const gatewaysUsage = `usage: switchctl gateways [list]                 links, their state, keys' check values, queue depth
       switchctl gateways load-zmk NAME --components -   load a link's ZMK from 2-3 components
       switchctl gateways unbind NAME [--operator NAME]  remove every card's bank binding to the link (up to 1000 a call: repeat while "more" is true)`

const safUsage = `usage: switchctl saf list [--gateway NAME] [--dead] [--limit N] [--after ID]
       switchctl saf retry ID [--gateway NAME]   put a dead letter back in its queue
       switchctl saf drop ID [--gateway NAME]    delete a dead letter for good`

// linkCmd parses "VERB [ARG] [flags]" (the argument may come before or
// after the flags).
type linkCmd struct {
	fs  *flag.FlagSet
	a   *adminFlags
	arg string
}

func parseLinkCmd(name string, args []string, stderr io.Writer, setup func(*flag.FlagSet)) (*linkCmd, int) {
	c := &linkCmd{fs: flag.NewFlagSet(name, flag.ContinueOnError), a: &adminFlags{}}
	c.fs.SetOutput(stderr)
	c.a.register(c.fs)
	if setup != nil {
		setup(c.fs)
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c.arg, args = args[0], args[1:]
	}
	if err := c.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, 0
		}
		return nil, 2
	}
	if c.arg == "" && c.fs.NArg() > 0 {
		c.arg = c.fs.Arg(0)
	}
	return c, -1
}

func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "help" || args[0] == "--help" || args[0] == "-h")
}

func runGateways(args []string, stdout, stderr io.Writer) int {
	if isHelp(args) {
		fmt.Fprintln(stdout, gatewaysUsage)
		return 0
	}
	verb := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		verb, args = args[0], args[1:]
	}
	switch verb {
	case "list":
		c, rc := parseLinkCmd("gateways list", args, stderr, nil)
		if c == nil {
			return rc
		}
		return c.a.call("GET", "/api/v1/gateways", nil, stdout, stderr)
	case "load-zmk":
		var comps *string
		c, rc := parseLinkCmd("gateways load-zmk", args, stderr, func(fs *flag.FlagSet) {
			comps = fs.String("components", "-", "clear ZMK components (hex), 2 or 3: comma-separated, or - to read one a line from standard input")
		})
		if c == nil {
			return rc
		}
		if c.arg == "" {
			fmt.Fprintln(stderr, "gateways load-zmk: missing gateway name")
			return 2
		}
		cs, err := components(*comps, os.Stdin)
		if err != nil {
			fmt.Fprintln(stderr, "switchctl gateways load-zmk:", err)
			return 2
		}
		return c.a.call("POST", "/api/v1/gateways/"+url.PathEscape(c.arg)+"/zmk", map[string]any{"components": cs}, stdout, stderr)
	case "unbind":
		var op *string
		c, rc := parseLinkCmd("gateways unbind", args, stderr, func(fs *flag.FlagSet) {
			op = fs.String("operator", os.Getenv("USER"), "who unbinds (journaled with each card)")
		})
		if c == nil {
			return rc
		}
		if c.arg == "" {
			fmt.Fprintln(stderr, "gateways unbind: missing gateway name")
			return 2
		}
		var errs bytes.Buffer
		rc = c.a.call("DELETE", "/api/v1/gateways/"+url.PathEscape(c.arg)+"/bindings?operator="+url.QueryEscape(*op), nil, stdout, &errs)
		_, _ = stderr.Write(errs.Bytes())
		if n := unboundBeforeError(errs.Bytes()); rc != 0 && n > 0 {
			fmt.Fprintf(stderr, "gateways unbind: %d cards were unbound before the error and stay unbound; run it again to carry on with the rest\n", n)
		}
		return rc
	}
	fmt.Fprintln(stderr, gatewaysUsage)
	return 2
}

// unboundBeforeError reads the "unbound" count of a failed gateways
// unbind's answer (docs/admin-api.md), as switchctl printed it; 0 when
// there is none.
func unboundBeforeError(printed []byte) int {
	i := bytes.IndexByte(printed, '{')
	if i < 0 {
		return 0
	}
	var e struct {
		Unbound int `json:"unbound"`
	}
	if json.Unmarshal(printed[i:], &e) != nil {
		return 0
	}
	return e.Unbound
}

func runSAF(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, safUsage)
		return 2
	}
	if isHelp(args) {
		fmt.Fprintln(stdout, safUsage)
		return 0
	}
	verb, args := args[0], args[1:]
	var gateway, after *string
	var dead *bool
	var limit *int
	c, rc := parseLinkCmd("saf "+verb, args, stderr, func(fs *flag.FlagSet) {
		gateway = fs.String("gateway", "", "gateway link name (default: all)")
		if verb == "list" {
			dead = fs.Bool("dead", false, "list dead letters instead of the queue")
			limit = fs.Int("limit", 100, "entries per page (1..100)")
			after = fs.String("after", "", "list entries after this id (the previous page's next)")
		}
	})
	if c == nil {
		return rc
	}
	q := url.Values{}
	if *gateway != "" {
		q.Set("gateway", *gateway)
	}
	switch verb {
	case "list":
		if *dead {
			q.Set("dead", "true")
		}
		q.Set("limit", strconv.Itoa(*limit))
		if *after != "" {
			q.Set("after", *after)
		}
		return c.a.call("GET", "/api/v1/saf?"+q.Encode(), nil, stdout, stderr)
	case "retry", "drop":
		if c.arg == "" {
			fmt.Fprintf(stderr, "saf %s: missing dead letter id\n", verb)
			return 2
		}
		if _, err := strconv.ParseUint(c.arg, 10, 64); err != nil {
			fmt.Fprintf(stderr, "saf %s: id %q is not a number\n", verb, c.arg)
			return 2
		}
		path := "/api/v1/saf/" + c.arg + "/" + verb
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		return c.a.call("POST", path, nil, stdout, stderr)
	}
	fmt.Fprintln(stderr, safUsage)
	return 2
}
