package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
)

// The recharge commands show the outside institutions and their orders
// (docs/recharge.md). They talk to the running switchd.
func init() {
	register("recharge", runRecharge)
}

func runRecharge(args []string, stdout, stderr io.Writer) int {
	return runVerbs("recharge", args, stdout, stderr, map[string]verb{
		"institutions": {usage: "institutions", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			return func() int { return a.call("GET", "/api/v1/recharge/institutions", nil, stdout, stderr) }
		}},
		"order": {usage: "order ORDER --institution ID", arg: "order number", setup: func(fs *flag.FlagSet, a *adminFlags, order *string) func() int {
			inst := fs.String("institution", "", "institution id (field 32)")
			return func() int {
				if *inst == "" {
					fmt.Fprintln(stderr, "recharge order: missing --institution")
					return 2
				}
				return a.call("GET", "/api/v1/recharge/institutions/"+url.PathEscape(*inst)+"/orders/"+url.PathEscape(*order), nil, stdout, stderr)
			}
		}},
		"pending": {usage: "pending [--older-than-days N]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			days := fs.Int("older-than-days", -1, "list unclaimed pending credits older than N business days (default: the switch's recharge.pending_refund_days)")
			return func() int {
				path := "/api/v1/recharge/pending"
				if *days >= 0 {
					path += "?older_than_days=" + fmt.Sprint(*days)
				}
				return a.call("GET", path, nil, stdout, stderr)
			}
		}},
		"orders": {usage: "orders --institution ID [--limit N] [--after ORDER]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
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
