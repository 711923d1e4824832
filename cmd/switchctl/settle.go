package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// switchctl settle: settlement per merchant and period, merchant rates,
// the refund list; switchctl recon stats: a day's statistics
// (docs/reconciliation.md). The receivables report is
// `switchctl report receivables`.
func init() {
	register("settle", runSettle)
}

func runSettle(args []string, stdout, stderr io.Writer) int {
	// `switchctl settle --from D1 --to D2` is the settlement itself.
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" {
		args = append([]string{"period"}, args...)
	}
	return runVerbs("settle", args, stdout, stderr, map[string]verb{
		"period": {usage: "--from YYYYMMDD --to YYYYMMDD [--merchant M] [--format json|csv]  (or: settle period ...)",
			setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
				from := fs.String("from", "", "first business date")
				to := fs.String("to", "", "last business date (default: --from)")
				merchant := fs.String("merchant", "", "only this merchant")
				format := fs.String("format", "json", "json or csv")
				return func() int {
					if *from == "" {
						fmt.Fprintln(stderr, "settle: missing --from")
						return 2
					}
					q := url.Values{"from": {*from}, "format": {*format}}
					if *to != "" {
						q.Set("to", *to)
					}
					if *merchant != "" {
						q.Set("merchant", *merchant)
					}
					if a.timeout == defaultTimeout {
						a.timeout = maxTimeout
					}
					return a.call("GET", "/api/v1/settlement?"+q.Encode(), nil, stdout, stderr)
				}
			}},
		"rates": {usage: "rates [MERCHANT]", setup: func(fs *flag.FlagSet, a *adminFlags, m *string) func() int {
			return func() int {
				q := ""
				if *m != "" {
					q = "?merchant=" + url.QueryEscape(*m)
				}
				return a.call("GET", "/api/v1/settlement/rates"+q, nil, stdout, stderr)
			}
		}, arg: "merchant id", optional: true},
		"rate": {usage: "rate MERCHANT --from YYYYMMDD --fee-bp N --management-bp N [--operator NAME]", arg: "merchant id",
			setup: func(fs *flag.FlagSet, a *adminFlags, m *string) func() int {
				from := fs.String("from", "", "business date the rates apply from")
				fee := fs.Int("fee-bp", -1, "fee the school keeps, basis points of each consume")
				mgmt := fs.Int("management-bp", 0, "management fee (搭伙费) kept, basis points")
				op := fs.String("operator", os.Getenv("USER"), "who sets them (kept with the rates)")
				return func() int {
					if *from == "" || *fee < 0 {
						fmt.Fprintln(stderr, "settle rate: missing --from or --fee-bp")
						return 2
					}
					return a.call("POST", "/api/v1/settlement/rates", map[string]any{"merchant": *m, "from": *from,
						"fee_bp": *fee, "management_bp": *mgmt, "operator": *op}, stdout, stderr)
				}
			}},
		"refunds": {usage: "refunds --from YYYYMMDD [--to YYYYMMDD] [--limit N] [--after CURSOR]", setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
			from := fs.String("from", "", "first business date")
			to := fs.String("to", "", "last business date (default: --from)")
			limit := fs.Int("limit", 100, "most to list (1..1000)")
			after := fs.String("after", "", "the next of the previous page")
			return func() int {
				q := url.Values{"from": {*from}, "limit": {fmt.Sprint(*limit)}}
				if *to != "" {
					q.Set("to", *to)
				}
				if *after != "" {
					q.Set("after", *after)
				}
				return a.call("GET", "/api/v1/settlement/refunds?"+q.Encode(), nil, stdout, stderr)
			}
		}},
	})
}
