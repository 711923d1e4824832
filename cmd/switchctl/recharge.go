package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
)

// The recharge commands show the outside institutions and their orders
// (docs/recharge.md). They talk to the running switchd.
func init() {
	register("recharge", runRecharge)
}

func runRecharge(args []string, stdout, stderr io.Writer) int {
	return runVerbs("recharge", args, stdout, stderr, map[string]verb{
		"institutions": {usage: "institutions", summary: "the outside institutions (no keys)", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			return func() int { return a.call("GET", "/api/v1/recharge/institutions", nil, stdout, stderr) }
		}},
		"order": {usage: "order ORDER --institution ID", summary: "one order of an institution (card masked)", arg: "order number", setup: func(fs *flag.FlagSet, a *adminFlags, order *string) func() int {
			inst := fs.String("institution", "", "institution id (field 32)")
			return func() int {
				if *inst == "" {
					fmt.Fprintln(stderr, "recharge order: missing --institution")
					return 2
				}
				return a.call("GET", "/api/v1/recharge/institutions/"+url.PathEscape(*inst)+"/orders/"+url.PathEscape(*order), nil, stdout, stderr)
			}
		}},
		"pending": {usage: "pending [--older-than-days N]", summary: "unclaimed pending credits older than N days, for refund", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			days := fs.Int("older-than-days", -1, "list unclaimed pending credits older than N business days (default: the switch's recharge.pending_refund_days)")
			return func() int {
				path := "/api/v1/recharge/pending"
				if *days >= 0 {
					path += "?older_than_days=" + fmt.Sprint(*days)
				}
				return a.call("GET", path, nil, stdout, stderr)
			}
		}},
		"orders": {usage: "orders --institution ID [--limit N] [--after ORDER]", summary: "an institution's orders, a page at a time", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			inst := fs.String("institution", "", "institution id (field 32)")
			limit := fs.Int("limit", 100, "orders per page (1..1000)")
			after := fs.String("after", "", "list orders after this order number (the next page)")
			return func() int {
				if *inst == "" {
					fmt.Fprintln(stderr, "recharge orders: missing --institution")
					return 2
				}
				q := url.Values{"limit": {fmt.Sprint(*limit)}}
				if *after != "" {
					q.Set("after", *after)
				}
				return a.call("GET", "/api/v1/recharge/institutions/"+url.PathEscape(*inst)+"/orders?"+q.Encode(), nil, stdout, stderr)
			}
		}},
	})
}

// cardBindingVerbs are the card <-> bank account binding verbs of
// `switchctl card` (docs/recharge.md "Bank binding").
func cardBindingVerbs(stdout, stderr io.Writer) map[string]verb {
	return map[string]verb{
		"bind": {usage: "bind CARD --gateway G --bank-card N --account A [--operator NAME]", summary: "bind a card to a bank card and account at a gateway (numbers sealed, shown masked)",
			arg: "card number", alias: "card",
			setup: func(fs *flag.FlagSet, a *adminFlags, pan *string) func() int {
				gw := fs.String("gateway", "", "the gateway link the bank leg goes to (a configured link)")
				bankCard := fs.String("bank-card", "", "the bound bank card number (12..19 digits)")
				account := fs.String("account", "", "the bound bank account (field 102, up to 28 characters)")
				op := fs.String("operator", os.Getenv("USER"), "who binds (kept with the binding and journaled)")
				return func() int {
					if *gw == "" || *bankCard == "" || *account == "" {
						fmt.Fprintln(stderr, "card bind: missing --gateway, --bank-card or --account")
						return 2
					}
					return a.call("POST", "/api/v1/cards/"+url.PathEscape(*pan)+"/binding",
						map[string]string{"gateway": *gw, "bank_card": *bankCard, "account": *account, "operator": *op}, stdout, stderr)
				}
			}},
		"unbind": {usage: "unbind CARD [--operator NAME]", summary: "remove a card's bank binding", arg: "card number", alias: "card",
			setup: func(fs *flag.FlagSet, a *adminFlags, pan *string) func() int {
				op := fs.String("operator", os.Getenv("USER"), "who unbinds (journaled)")
				return func() int {
					return a.call("DELETE", "/api/v1/cards/"+url.PathEscape(*pan)+"/binding?operator="+url.QueryEscape(*op), nil, stdout, stderr)
				}
			}},
		"binding": {usage: "binding CARD", summary: "a card's bank binding (masked)", arg: "card number", alias: "card",
			setup: func(fs *flag.FlagSet, a *adminFlags, pan *string) func() int {
				return func() int {
					return a.call("GET", "/api/v1/cards/"+url.PathEscape(*pan)+"/binding", nil, stdout, stderr)
				}
			}},
	}
}
