package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
)

// Reports of the running switch (docs/admin-api.md).
func init() { register("report", runReport) }

func runReport(args []string, stdout, stderr io.Writer) int {
	return sub("report", args, stdout, stderr, map[string]func(*flag.FlagSet, *adminFlags) func() int{
		// receivables: the cards that owe the school after a reversal took
		// back a credit already spent (docs/ledger.md#receivables).
		"receivables": func(fs *flag.FlagSet, a *adminFlags) func() int {
			limit := fs.Int("limit", 100, "cards per page (1..1000)")
			after := fs.String("after", "", "the next value of the previous page")
			return func() int {
				q := url.Values{}
				q.Set("limit", fmt.Sprint(*limit))
				if *after != "" {
					q.Set("after", *after)
				}
				return a.call("GET", "/api/v1/reports/receivables?"+q.Encode(), nil, stdout, stderr)
			}
		},
	})
}
