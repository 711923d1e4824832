// Command reconbench measures reconciliation at scale
// (docs/BENCHMARKS.md): `reconbench generate` writes a business day of
// journal entries and the counterparty's file, `reconbench run` exports
// the day and imports and matches the file, printing times and peak RSS.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cardswitch/cardswitch/internal/recongen"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "generate" && os.Args[1] != "run") {
		fmt.Fprintln(os.Stderr, "usage: reconbench generate|run --dir DIR [--entries N]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("reconbench "+os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "", "work directory (store, files)")
	entries := fs.Int("entries", 5_000_000, "journal entries to generate (two per transaction)")
	fs.Parse(os.Args[2:])
	if *dir == "" || *entries < 2 || *entries > 100_000_000 {
		fmt.Fprintln(os.Stderr, "reconbench: --dir needed, --entries 2..100000000")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := recongen.NewProgress()
	if os.Args[1] == "generate" {
		if err := os.MkdirAll(*dir, 0o700); err == nil {
			err = recongen.GenerateBench(ctx, *dir, *entries/2, p)
			if err == nil {
				return
			}
			fmt.Fprintln(os.Stderr, "reconbench:", err)
		} else {
			fmt.Fprintln(os.Stderr, "reconbench:", err)
		}
		os.Exit(1)
	}
	res, err := recongen.RunBench(ctx, *dir, p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconbench:", err)
		os.Exit(1)
	}
	r := res.Report
	fmt.Printf("rows %d export %s match %s total %s peak_rss_mib %d matched %d ours_only %d theirs_only %d amount_differs %d status_differs %d\n",
		res.Rows, res.Export.Round(1e6), res.Match.Round(1e6), (res.Export + res.Match).Round(1e6), res.PeakRSSMiB,
		r.Matched.Count, r.OursOnly.Count, r.TheirsOnly.Count, r.AmountDiffers.Count, r.StatusDiffers.Count)
}
