package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
)

// The transfer commands show the bank-transfer loads at kiosks
// (docs/recharge.md, "Bank-transfer loads"). They talk to the running
// switchd.
func init() {
	register("transfer", runTransfer)
}

func runTransfer(args []string, stdout, stderr io.Writer) int {
	return runVerbs("transfer", args, stdout, stderr, map[string]verb{
		"list": {usage: "list [--card PAN] [--date YYYYMMDD] [--terminal T] [--limit N] [--after CURSOR]",
			summary: "transfer loads whose bank leg went out (card masked), a page at a time",
			setup: func(fs *flag.FlagSet, a *adminFlags, _ *string) func() int {
				card := fs.String("card", "", "only this campus card")
				date := fs.String("date", "", "only this business date (YYYYMMDD)")
				terminal := fs.String("terminal", "", "only this kiosk")
				limit := fs.Int("limit", 100, "loads per page (1..1000)")
				after := fs.String("after", "", "the next cursor of the previous page")
				return func() int {
					q := url.Values{"limit": {fmt.Sprint(*limit)}}
					for k, v := range map[string]string{"card": *card, "date": *date, "terminal": *terminal, "after": *after} {
						if v != "" {
							q.Set(k, v)
						}
					}
					return a.call("GET", "/api/v1/transfers?"+q.Encode(), nil, stdout, stderr)
				}
			}},
	})
}
