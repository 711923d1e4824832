package main

import (
	"flag"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"io"
	"sort"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
)

func init() { register("ledger", runLedger) }

// runLedger is `switchctl ledger check|card`: offline views of the card
// ledger, run while the daemon is stopped. The store is opened read-only.
func runLedger(args []string, stdout, stderr io.Writer) int {
	const ledgerUsage = "usage: switchctl ledger check --data DIR | card --data DIR --card PAN"
	if len(args) > 0 && isHelpWord(args[0]) {
		fmt.Fprintln(stdout, ledgerUsage)
		return 0
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, ledgerUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return ledgerCheck(args[1:], stdout, stderr)
	case "card":
		return ledgerCard(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "switchctl ledger: unknown subcommand %q\n", args[0])
	return 2
}

func openLedgerStore(dir string, stderr io.Writer) (*pebble.DB, int) {
	if dir == "" {
		fmt.Fprintln(stderr, "switchctl ledger: --data DIR is required")
		return nil, 2
	}
	o := ledger.RecommendedPebbleOptions()
	o.ReadOnly = true
	o.ErrorIfNotExists = true
	o.Logger = silentLog{}
	db, err := pebble.Open(dir, o)
	if err != nil {
		fmt.Fprintf(stderr, "switchctl ledger: open %s read-only (is switchd stopped?): %v\n", dir, err)
		return nil, 1
	}
	return db, 0
}

func ledgerCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ledger check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "data directory of switchd")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	db, rc := openLedgerStore(*dir, stderr)
	if db == nil {
		return rc
	}
	defer db.Close()
	r, err := ledger.Check(db)
	if err != nil {
		fmt.Fprintf(stderr, "switchctl ledger check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "cards %d, posting sets %d\n", r.Cards, r.Postings)
	if r.OwingCards > 0 {
		// docs/ledger.md#receivables
		fmt.Fprintf(stdout, "owing cards %d (receivable %s)\n", r.OwingCards, r.Accounts[ledger.CardReceivable])
	}
	classes := make([]string, 0, len(r.ClassTotals))
	for c := range r.ClassTotals {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for _, c := range classes {
		fmt.Fprintf(stdout, "class %-14s %16s\n", c, r.ClassTotals[c])
	}
	accounts := make([]string, 0, len(r.Accounts))
	for a := range r.Accounts {
		accounts = append(accounts, string(a))
	}
	sort.Strings(accounts)
	for _, a := range accounts {
		fmt.Fprintf(stdout, "account %-32s %16s\n", a, r.Accounts[ledger.AccountID(a)])
	}
	fmt.Fprintf(stdout, "total %s\n", r.Total)
	if !r.OK() {
		for _, v := range r.Violations {
			fmt.Fprintln(stdout, "VIOLATION "+v)
		}
		fmt.Fprintf(stdout, "FAILED: %d violations\n", len(r.Violations))
		return 1
	}
	fmt.Fprintln(stdout, "OK")
	return 0
}

func ledgerCard(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ledger card", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "data directory of switchd")
	pan := fs.String("card", "", "card number")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *pan == "" || len(*pan) > 19 {
		fmt.Fprintln(stderr, "switchctl ledger card: --card PAN (at most 19 digits) is required")
		return 2
	}
	db, rc := openLedgerStore(*dir, stderr)
	if db == nil {
		return rc
	}
	defer db.Close()
	v, ok, err := ledger.CardByPAN(db, *pan)
	if err != nil {
		fmt.Fprintf(stderr, "switchctl ledger card: %v\n", err)
		return 1
	}
	if !ok {
		fmt.Fprintf(stderr, "switchctl ledger card: %v: %s\n", ledger.ErrUnknownCard, cardno.Mask(*pan))
		return 1
	}
	limit := func(f ledger.Fen) string {
		if f == 0 {
			return "none"
		}
		return f.String()
	}
	fmt.Fprintf(stdout, "card        %s\n", cardno.Mask(v.PAN))
	fmt.Fprintf(stdout, "holder      %s (%s)\n", v.Holder, v.HolderType)
	fmt.Fprintf(stdout, "state       %s, list %s, PIN tries %d\n", v.State, v.List, v.PINTries)
	if v.LostFrom != 0 {
		fmt.Fprintf(stdout, "found       returns it to %s\n", v.LostFrom)
	}
	fmt.Fprintf(stdout, "cash        %s\n", v.Balances.Cash)
	fmt.Fprintf(stdout, "subsidy     %s\n", v.Balances.Subsidy)
	fmt.Fprintf(stdout, "held        %s (%d holds)\n", v.Balances.Held, v.Holds)
	fmt.Fprintf(stdout, "available   %s\n", v.Balances.Available)
	if v.Owed > 0 {
		fmt.Fprintf(stdout, "owes        %s (debits declined until repaid; docs/ledger.md#receivables)\n", v.Owed)
	}
	fmt.Fprintf(stdout, "limits      daily %s, per transaction %s, no-PIN %s, maximum balance %s\n",
		limit(v.DailyLimit), limit(v.PerTxnLimit), v.NoPINLimit, limit(v.MaxBalance))
	fmt.Fprintf(stdout, "service fee %d bp\n", v.FeeBP)
	if v.DayDate != 0 {
		fmt.Fprintf(stdout, "spent       %s on %s\n", v.DaySpent, v.DayDate)
	}
	if v.ReplacedBy != "" {
		fmt.Fprintf(stdout, "replaced by %s\n", cardno.Mask(v.ReplacedBy))
	}
	return 0
}

// silentLog keeps Pebble's informational lines off the operator's screen.
type silentLog struct{}

func (silentLog) Infof(string, ...any)  {}
func (silentLog) Errorf(string, ...any) {}
func (silentLog) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
