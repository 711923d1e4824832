// Package cli is gwsim's command line: flags and wiring, so that
// cmd/gwsim stays a thin main and the command can be tested.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/internal/logmask"
	"github.com/cardswitch/cardswitch/internal/secretflag"
	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Demo addresses (docs/gwsim.md).
const (
	DefaultAddr     = "127.0.0.1:8590"
	DefaultHTTPAddr = "127.0.0.1:9590"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// Main runs gwsim until SIGINT or SIGTERM and returns the exit status:
// 0 success, 1 failure, 2 bad usage.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	return Run(ctx, args, stdout, stderr)
}

// Run is Main until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gwsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gwsim [flags]   (a bank on the far side of a gateway link; docs/gwsim.md)")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", DefaultAddr, "link listener, loopback HOST:PORT (the switch connects here)")
	httpAddr := fs.String("http", DefaultHTTPAddr, "status surface, loopback HOST:PORT (\"\" = off)")
	accountsFile := fs.String("accounts", "", "YAML file of account holders (default: the demo set)")
	zmk := secretflag.New(fs, "zmk", "GWSIM_ZMK", "zone master key in clear, 32 hex (default: the demo ZMK)")
	zpk := secretflag.New(fs, "zpk", "GWSIM_ZPK", "ZPK in use before the first key exchange, 32 hex (default: random)")
	zak := secretflag.New(fs, "zak", "GWSIM_ZAK", "ZAK in use before the first key exchange, 32 hex (default: random)")
	macAlg := fs.String("mac", gwsim.MACX919, "link MAC: x9.19 (TDES ZAK) or sm4 (SM4 ZAK)")
	institution := fs.String("institution", "", "accept only this field 100 (receiving institution id)")
	delay := fs.Int("delay", 0, "hold every financial answer back N ms (0..300000)")
	drop := fs.Int("drop", 0, "drop PCT percent of financial answers, after processing (0..100)")
	decline := fs.String("decline", "", "answer every financial request but reversals with this response code")
	declineReversals := fs.String("decline-reversals", "", "answer every reversal with this response code and undo nothing")
	disconnectAfter := fs.Int("disconnect-after", 0, "close each connection after N messages (0 = never)")
	refuseSignOn := fs.Bool("refuse-signon", false, "answer sign-on with 91")
	cutover := fs.String("cutover", "23:00", "business day cutover, HH:MM local")
	reconDir := fs.String("recon-dir", ".", "directory of the daily reconciliation files")
	reconAtExit := fs.Bool("recon-at-exit", false, "write the current business day's file when stopping")
	reconDate := fs.String("recon-date", "", "with --recon-at-exit: the business date to write (default: today's)")
	var skip, alter, flip, extra list
	fs.Var(&skip, "recon-skip", "plant: leave the line of this RRN out of the file (repeatable)")
	fs.Var(&alter, "recon-alter", "plant: RRN=FEN writes that line with another amount (repeatable)")
	fs.Var(&flip, "recon-flip", "plant: write the line of this RRN with the other status (repeatable)")
	fs.Var(&extra, "recon-extra", "plant: CARD=FEN adds a debit the switch never sent (repeatable)")
	maxConns := fs.Int("max-conns", 16, "concurrent link connections (1..1024)")
	seed := fs.Uint64("seed", 0, "seed of dropped answers (0 = random)")
	quiet := fs.Bool("quiet", false, "log warnings and errors only")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gwsim: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *delay < 0 || *delay > int(gwsim.MaxDelay/time.Millisecond) {
		fmt.Fprintf(stderr, "gwsim: --delay %d out of range (0..%d ms)\n", *delay, gwsim.MaxDelay/time.Millisecond)
		return 2
	}
	plant := gwsim.Plant{Skip: skip, Flip: flip, Alter: map[string]spec.Amount{}}
	for _, v := range alter {
		k, a, err := gwsim.ParsePlantAmount(v)
		if err != nil {
			fmt.Fprintln(stderr, "gwsim: --recon-alter:", err)
			return 2
		}
		plant.Alter[k] = a
	}
	for _, v := range extra {
		k, a, err := gwsim.ParsePlantAmount(v)
		if err != nil {
			fmt.Fprintln(stderr, "gwsim: --recon-extra:", err)
			return 2
		}
		plant.Extra = append(plant.Extra, gwsim.Extra{Card: k, Amount: a})
	}
	o := gwsim.Options{Addr: *addr, HTTPAddr: *httpAddr, ZMK: zmk.Get(), ZPK: zpk.Get(), ZAK: zak.Get(), MAC: *macAlg,
		Institution: *institution, Cutover: *cutover, ReconDir: *reconDir, MaxConns: *maxConns, Seed: *seed,
		Faults: gwsim.Faults{Delay: time.Duration(*delay) * time.Millisecond, DropPercent: *drop, Decline: *decline,
			DeclineReversals: *declineReversals, DisconnectAfter: *disconnectAfter, RefuseSignOn: *refuseSignOn}}
	if *accountsFile != "" {
		accts, err := gwsim.LoadAccounts(*accountsFile)
		if err != nil {
			fmt.Fprintln(stderr, "gwsim:", err)
			return 2
		}
		o.Accounts = accts
	}
	level := zapcore.InfoLevel
	if *quiet {
		level = zapcore.WarnLevel
	}
	o.Logger = newLogger(stderr, level)
	defer o.Logger.Sync() //nolint:errcheck // stderr
	if o.ZMK == "" {
		o.Logger.Warn("gwsim uses the demo ZMK (clear, public): demo only")
	}
	s, err := gwsim.Start(o)
	if err != nil {
		fmt.Fprintln(stderr, "gwsim:", err)
		if strings.Contains(err.Error(), "bad options") {
			return 2
		}
		return 1
	}
	fmt.Fprintf(stdout, "gwsim link listener %s", s.Addr())
	if h := s.HTTPAddr(); h != "" {
		fmt.Fprintf(stdout, ", status http://%s/status", h)
	}
	fmt.Fprintln(stdout)

	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-usr1:
			s.WriteStatus(stdout)
		}
	}
	s.Close()
	s.WriteStatus(stdout)
	if *reconAtExit {
		date := *reconDate
		if date == "" {
			date = s.BusinessDate(time.Now())
		}
		path, n, err := s.WriteRecon(date, plant)
		if err != nil {
			fmt.Fprintln(stderr, "gwsim: reconciliation file:", err)
			return 1
		}
		fmt.Fprintf(stdout, "reconciliation file %s: %d lines\n", path, n)
	}
	return 0
}

// newLogger logs in console form to w, card numbers masked.
func newLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	cfg := zap.NewDevelopmentEncoderConfig()
	enc := logmask.Encoder(zapcore.NewConsoleEncoder(cfg))
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level))
}
