package cli

import (
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/internal/posim"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

const kioskUsage = `usage: posim kiosk transfer|balance --card PAN --pin PIN [--amount YUAN] [flags]

Plays one kiosk terminal: signs on, then
  transfer   loads the card from its bound bank account (0200, 400000, 60.1 48)
  balance    asks the card's balance (0200, 310000, 60.1 01)
and prints one line: rc=.. (meaning) rrn=.. cash=.. subsidy=..
(docs/recharge.md, "Bank-transfer loads").`

// kiosk is "posim kiosk": one transaction from a kiosk terminal, for
// trying the bank-transfer load by hand.
func kiosk(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, kioskUsage)
		return 0
	}
	op := args[0]
	if op != "transfer" && op != "balance" {
		fmt.Fprintf(stderr, "posim kiosk: unknown operation %q\n%s\n", op, kioskUsage)
		return 2
	}
	fs := flag.NewFlagSet("posim kiosk "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8583", "switch POS acceptor")
	terminal := fs.String("terminal", "90000001", "kiosk terminal id (demo kiosk)")
	merchant := fs.String("merchant", "898310000000001", "its merchant id")
	tmkHex := fs.String("tmk", posim.DemoTMK, "the terminal's TMK, hex (demo TMK by default)")
	card := fs.String("card", "", "campus card number")
	pin := fs.String("pin", "", "the card's PIN")
	amount := fs.String("amount", "", "amount in yuan (transfer)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on each exchange")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch {
	case *card == "":
		fmt.Fprintf(stderr, "posim kiosk %s: missing --card\n", op)
		return 2
	case op == "transfer" && *amount == "":
		fmt.Fprintln(stderr, "posim kiosk transfer: missing --amount")
		return 2
	}
	var fen ledger.Fen
	if op == "transfer" {
		var err error
		if fen, err = ledger.ParseYuan(*amount); err != nil || fen <= 0 {
			fmt.Fprintf(stderr, "posim kiosk transfer: --amount %q: want yuan above 0, e.g. 100.00\n", *amount)
			return 2
		}
	}
	tmk, err := hex.DecodeString(*tmkHex)
	if err != nil || len(tmk) != 16 {
		fmt.Fprintln(stderr, "posim kiosk: --tmk must be 32 hex characters")
		return 2
	}
	c, err := posclient.Dial(*addr, posclient.Options{Timeout: *timeout})
	if err != nil {
		fmt.Fprintln(stderr, "posim kiosk:", err)
		return 1
	}
	defer c.Close()
	term := posclient.NewTerminal(c, *terminal, *merchant, tmk)
	// A real kiosk keeps its trace number; this one starts from the
	// microseconds of the clock, so that a sign-on in the same second as
	// the last run's still carries a later stamp (docs/pos-dialect.md#sign-on-proof).
	term.SetSTAN(uint32(time.Now().Nanosecond()/1000) % 999000)
	if resp, err := term.SignOn(); err != nil || resp.ResponseCode != spec.RCApproved {
		if err == nil {
			err = fmt.Errorf("rc %s (%s)", resp.ResponseCode, spec.RCDescription(resp.ResponseCode))
		}
		fmt.Fprintln(stderr, "posim kiosk: sign-on:", err)
		return 1
	}
	var req *spec.POSMessage
	if op == "transfer" {
		req, err = term.TransferLoad(*card, spec.Amount(fen), *pin)
	} else {
		req, err = term.Balance(*card, *pin)
	}
	if err != nil {
		fmt.Fprintln(stderr, "posim kiosk:", err)
		return 1
	}
	resp, err := term.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "posim kiosk: no answer (%v); a terminal would now reverse it\n", err)
		return 1
	}
	line := fmt.Sprintf("%s card=%s rc=%s (%s) rrn=%s", op, cardno.Mask(*card), resp.ResponseCode,
		spec.RCDescription(resp.ResponseCode), resp.RRN)
	if bs, err := spec.ParseBalances(resp.Balances); err == nil {
		for _, b := range bs {
			name := map[string]string{spec.AccountCashPurse: "cash", spec.AccountSubsidyPurse: "subsidy",
				spec.AccountPendingLoad: "pending"}[b.AccountType]
			if name == "" {
				name = "account_" + b.AccountType
			}
			line += fmt.Sprintf(" %s=%s", name, ledger.Fen(b.Amount))
		}
	}
	fmt.Fprintln(stdout, line)
	if resp.ResponseCode != spec.RCApproved {
		return 1
	}
	return 0
}
