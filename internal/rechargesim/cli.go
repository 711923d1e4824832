package rechargesim

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
)

// Demo defaults: the demo institution of the embedded demo configuration
// (docs/recharge.md). Its keys are public demo keys.
const (
	DemoInstitution = "10001"
	DemoZAK         = "0123456789ABCDEFFEDCBA9876543210"
	DemoHTTPKey     = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
	DemoGatewayAddr = "127.0.0.1:8584"
	DemoHTTPURL     = "http://127.0.0.1:9584"
)

const usage = `usage: rechargesim [--via iso|http] [--addr HOST:PORT] [--url URL]
                   [--institution ID] [--zak HEX] [--http-key HEX]
                   COMMAND [--order ON] [--card PAN] [--amount YUAN] [--name NAME] [--repeat]

commands:
  verify   --card PAN --name NAME             account verification
  credit   --order ON --card PAN --amount Y   credit (recharge) the card
  query    --order ON                          order query
  reverse  --order ON --card PAN --amount Y   credit reversal (--repeat: 0401)

Defaults are the demo institution 10001 with its demo keys, the gateway
port 127.0.0.1:8584 (--via iso) and http://127.0.0.1:9584 (--via http).
One answer line is printed: rc, its meaning, and what the answer carried.
Exit status: 0 answered, 1 no answer, 2 bad usage.
`

// Main runs the command line; it returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	g := flag.NewFlagSet("rechargesim", flag.ContinueOnError)
	g.SetOutput(io.Discard)
	via := g.String("via", "iso", "front end: iso (gateway port) or http")
	addr := g.String("addr", DemoGatewayAddr, "gateway port address")
	url := g.String("url", DemoHTTPURL, "recharge HTTP base URL")
	inst := g.String("institution", DemoInstitution, "institution id (field 32)")
	zak := g.String("zak", DemoZAK, "the institution's ZAK, 32 hex digits")
	httpKey := g.String("http-key", DemoHTTPKey, "the institution's HTTP key, hex")
	if err := g.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "rechargesim: %v\n%s", err, usage)
		return 2
	}
	rest := g.Args()
	if len(rest) == 0 || rest[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(rest) == 0 {
			return 2
		}
		return 0
	}
	cmd := rest[0]
	f := flag.NewFlagSet(cmd, flag.ContinueOnError)
	f.SetOutput(io.Discard)
	order := f.String("order", "", "order number (1..32 printable ASCII)")
	card := f.String("card", "", "card number")
	amount := f.String("amount", "", "amount in yuan, e.g. 50.00")
	name := f.String("name", "", "holder name (verify)")
	repeat := f.Bool("repeat", false, "send the reversal as a repeat (0401)")
	if err := f.Parse(rest[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "rechargesim %s: %v\n", cmd, err)
		return 2
	}
	op := Op{Order: *order, Card: *card, Name: *name, Repeat: *repeat, Amount: -1}
	if *amount != "" {
		v, err := ledger.ParseYuan(*amount)
		if err != nil {
			fmt.Fprintf(stderr, "rechargesim %s: --amount: %v\n", cmd, err)
			return 2
		}
		op.Amount = int64(v)
	}
	missing := func(what string) int {
		fmt.Fprintf(stderr, "rechargesim %s: missing %s\n", cmd, what)
		return 2
	}
	switch cmd {
	case "verify":
		if op.Card == "" || op.Name == "" {
			return missing("--card and --name")
		}
	case "credit", "reverse":
		if op.Order == "" || op.Card == "" || op.Amount < 0 {
			return missing("--order, --card and --amount")
		}
	case "query":
		if op.Order == "" {
			return missing("--order")
		}
	default:
		fmt.Fprintf(stderr, "rechargesim: unknown command %q\n%s", cmd, usage)
		return 2
	}

	var c interface {
		Verify(Op) (Answer, error)
		Credit(Op) (Answer, error)
		Query(Op) (Answer, error)
		Reverse(Op) (Answer, error)
	}
	switch *via {
	case "iso":
		ic, err := DialISO(*addr, *inst, *zak)
		if err != nil {
			fmt.Fprintf(stderr, "rechargesim: %v\n", err)
			return 1
		}
		defer ic.Close()
		c = ic
	case "http":
		hc, err := NewHTTP(*url, *inst, *httpKey)
		if err != nil {
			fmt.Fprintf(stderr, "rechargesim: %v\n", err)
			return 2
		}
		c = hc
	default:
		fmt.Fprintf(stderr, "rechargesim: --via %q: want iso or http\n", *via)
		return 2
	}
	var (
		a   Answer
		err error
	)
	switch cmd {
	case "verify":
		a, err = c.Verify(op)
	case "credit":
		a, err = c.Credit(op)
	case "query":
		a, err = c.Query(op)
	case "reverse":
		a, err = c.Reverse(op)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rechargesim %s: %v\n", cmd, err)
		return 1
	}
	fmt.Fprintln(stdout, a.String())
	return 0
}

// String is the answer on one line.
func (a Answer) String() string {
	s := fmt.Sprintf("rc=%s (%s)", a.RC, describe(a.RC))
	add := func(k, v string) {
		if v != "" {
			s += " " + k + "=" + v
		}
	}
	add("order", a.Order)
	add("status", a.Status)
	add("status_rc", a.StatusRC)
	add("card", a.Card)
	if a.Status != "" {
		add("amount", ledger.Fen(a.Amount).String())
	}
	add("rrn", a.RRN)
	add("auth", a.AuthCode)
	if a.HasBalances {
		add("cash", ledger.Fen(a.Cash).String())
		add("subsidy", ledger.Fen(a.Subsidy).String())
	}
	if a.Replayed {
		s += " replayed"
	}
	return s
}

func describe(rc string) string {
	if d := spec.RCDescription(rc); d != "" {
		return d
	}
	return "unknown code"
}
