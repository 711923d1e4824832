package recongen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// BenchInstitution is the institution of the generated day.
const BenchInstitution = "gwsim"

// BenchDate is the generated business day.
const BenchDate = ledger.BusinessDate(20261201)

// pebbleOptions are the switch's storage options (the ledger's
// recommendation with Bloom filters on every level).
func pebbleOptions() *pebble.Options {
	o := ledger.RecommendedPebbleOptions()
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o
}

// Progress shows how far a long run is: a bar redrawn in place on a
// terminal, a log line every few seconds otherwise.
type Progress struct {
	W     io.Writer
	TTY   bool
	Total int64
	what  string
	last  time.Time
	start time.Time
}

// NewProgress writes to stderr, as a bar when stderr is a terminal.
func NewProgress() *Progress {
	fi, err := os.Stderr.Stat()
	return &Progress{W: os.Stderr, TTY: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

// Stage starts a stage of total units (0: unknown).
func (p *Progress) Stage(what string, total int64) {
	p.what, p.Total, p.start, p.last = what, total, time.Now(), time.Time{}
}

// Report says n units are done.
func (p *Progress) Report(n int64) {
	now := time.Now()
	if p.TTY {
		if now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		p.last = now
		if p.Total > 0 {
			w := int(40 * n / p.Total)
			fmt.Fprintf(p.W, "\r%-8s [%s%s] %3d%% %d", p.what, strings.Repeat("#", min(w, 40)), strings.Repeat(".", 40-min(w, 40)), 100*n/p.Total, n)
		} else {
			fmt.Fprintf(p.W, "\r%-8s %d", p.what, n)
		}
		return
	}
	if now.Sub(p.last) < 5*time.Second {
		return
	}
	p.last = now
	fmt.Fprintf(p.W, "%s %s: %d", now.UTC().Format(time.RFC3339), p.what, n)
	if p.Total > 0 {
		fmt.Fprintf(p.W, " of %d", p.Total)
	}
	fmt.Fprintln(p.W)
}

// Done ends the stage.
func (p *Progress) Done(n int64) {
	if p.TTY {
		fmt.Fprint(p.W, "\r\033[K")
	}
	fmt.Fprintf(p.W, "%s: %d in %s\n", p.what, n, time.Since(p.start).Round(time.Millisecond))
}

// GenerateBench writes a day of pairs request/response pairs (2 × pairs
// journal entries) into a new Pebble store in dir/db, and the
// counterparty's file dir/theirs.csv in the gwsim layout with one
// ours-only, one theirs-only and one amount-differs planted. A directory
// that already holds a store is refused: generation is not resumable, the
// caller removes it and starts again.
func GenerateBench(ctx context.Context, dir string, pairs int, p *Progress) error {
	dbDir := filepath.Join(dir, "db")
	if _, err := os.Stat(dbDir); err == nil {
		return fmt.Errorf("%s exists: remove it to generate again", dbDir)
	}
	db, err := pebble.Open(dbDir, pebbleOptions())
	if err != nil {
		return err
	}
	defer db.Close()
	j, err := journal.Open(db, journal.Options{})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "theirs.csv"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fw := NewFileWriter(f, BenchDate)
	// The planted lines: the 10th approved is skipped, the 20th altered.
	approved := 0
	p.Stage("generate", int64(pairs))
	err = Generate(db, j, Options{Date: BenchDate, Pairs: pairs, Institution: BenchInstitution, Seed: 1, DeclinePercent: 5,
		Progress: func(n int) {
			if ctx.Err() == nil {
				p.Report(int64(n))
			}
		}},
		func(t Txn) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if t.Approved {
				approved++
				switch approved {
				case 10:
					fw.Skip[t.RRN] = true
				case 20:
					fw.Alter[t.RRN] = t.Amount + 1
				}
			}
			return fw.Add(t)
		})
	if err != nil {
		return err
	}
	if err := fw.Extra("999999999999", "6230159999999999990", 4242); err != nil {
		return err
	}
	if err := fw.Close(); err != nil {
		return err
	}
	p.Done(int64(pairs))
	if err := f.Sync(); err != nil {
		return err
	}
	return db.Flush()
}

// BenchResult is what RunBench measured.
type BenchResult struct {
	Rows       int64
	Export     time.Duration
	Match      time.Duration
	Report     *recon.Report
	PeakRSSMiB int64
}

// RunBench exports the generated day into dir/recon and imports and
// matches dir/theirs.csv against it. Both steps can be interrupted
// (ctx) and run again: the export replaces whole files, the import its
// own records.
func RunBench(ctx context.Context, dir string, p *Progress) (*BenchResult, error) {
	db, err := pebble.Open(filepath.Join(dir, "db"), pebbleOptions())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	j, err := journal.Open(db, journal.Options{})
	if err != nil {
		return nil, err
	}
	src := recon.Source{Journal: j, Books: db, Location: time.UTC, Context: ctx}
	res := &BenchResult{}
	p.Stage("export", 0)
	start := time.Now()
	exp, err := src.ExportDay(filepath.Join(dir, "recon"), BenchDate, p.Report)
	if err != nil {
		return nil, err
	}
	res.Export, res.Rows = time.Since(start), exp.Rows
	p.Done(exp.Rows)

	f, err := os.Open(filepath.Join(dir, "theirs.csv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	book := &recon.Book{DB: db, Journal: j, Source: src, Today: func() ledger.BusinessDate { return BenchDate.AddDays(1) }}
	p.Stage("match", 0)
	start = time.Now()
	res.Report, err = book.Import(ctx, BenchInstitution, BenchDate, GwsimLayout(), recon.AutoRules{}, bufio.NewReaderSize(f, 1<<20),
		func(stage string, n int64) { p.what = "match/" + stage; p.Report(n) })
	if err != nil {
		return nil, err
	}
	res.Match = time.Since(start)
	p.what = "match"
	p.Done(res.Report.TheirRecords)
	res.PeakRSSMiB = peakRSSMiB()
	return res, nil
}

// GwsimLayout is the gwsim layout of testdata/recon/layouts.yaml.
func GwsimLayout() *recon.Layout {
	c := func(n string) recon.Column { return recon.Column{Name: n} }
	return &recon.Layout{Format: "csv", Header: true, SkipPrefix: []string{"TOTAL,"}, AmountUnit: "fen",
		DateFormat: "20060102", Success: []string{"A"},
		Fields: map[string]recon.Column{"date": c("business_date"), "rrn": c("rrn"), "link_stan": c("stan"),
			"transmission_time": c("transmission_time"), "card": c("card"), "amount": c("amount_fen"),
			"status": c("status"), "their_ref": c("serial")}}
}

// peakRSSMiB is the process's peak resident set (VmHWM), or -1.
func peakRSSMiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return -1
}
