// Package cli is posim's command line: flag parsing and wiring, so that
// cmd/posim stays a thin main and the commands can be tested.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/internal/posim"
	"github.com/cardswitch/cardswitch/internal/secretflag"
)

// Main runs posim with args (without the program name) and returns the
// exit status: 0 success, 1 failure, 2 bad usage.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return verify(args[1:], stdout, stderr)
		case "baseline-server":
			return baselineServer(args[1:], stdout, stderr)
		case "baseline":
			return baselineLoad(args[1:], stdout, stderr)
		case "abuse":
			return abuse(args[1:], stdout, stderr)
		case "kiosk":
			return kiosk(args[1:], stdout, stderr)
		}
	}
	return load(args, stdout, stderr)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

func load(args []string, stdout, stderr io.Writer) int {
	lf, ok := parseLoadFlags(args, stderr)
	if !ok {
		return 2
	}
	mix, err := posim.ParseMix(*lf.mix)
	if err != nil {
		fmt.Fprintln(stderr, "posim:", err)
		return 2
	}
	ctx, cancel := signalContext()
	defer cancel()
	terms, opening, code := lf.runTerminals(ctx, stderr)
	if code != 0 {
		return code
	}
	if code := lf.writeOpening(opening, stderr); code != 0 {
		return code
	}
	opts := posim.Options{
		Addr: *lf.addr, Terminals: terms, Duration: *lf.duration, Rate: *lf.rate, Mix: mix,
		Timeout: *lf.timeout, ReconnectFor: *lf.reconnectFor, Drain: *lf.drain, Seed: *lf.seed, SwitchPID: *lf.switchPID,
	}
	if !*lf.quiet {
		opts.Progress = stdout
	}
	if *lf.ackPath != "" {
		f, err := createPrivate(*lf.ackPath)
		if err != nil {
			fmt.Fprintln(stderr, "posim:", err)
			return 1
		}
		// Cards are named by their index in the cards file, never by
		// number (docs/operations.md, posim).
		opts.AckLog = posim.NewAckLog(f, posim.NewCardIndex(posim.RunCards(terms, opening)))
	}
	res, err := posim.Run(ctx, opts)
	if cerr := opts.AckLog.Close(); err == nil {
		err = cerr
	}
	return report(res, err, *lf.switchPID, stdout, stderr)
}

// loadFlags are the flags of a load run.
type loadFlags struct {
	addr, admin                  *string
	token                        *secretflag.Value
	terminals, cardsPer          *int
	duration                     *time.Duration
	rate                         *float64
	mix, ackPath, cardsOut       *string
	timeout, reconnectFor, drain *time.Duration
	seed                         *uint64
	quiet                        *bool
	cardSet, bankAccounts        *string
	switchPID                    *int
}

func parseLoadFlags(args []string, stderr io.Writer) (*loadFlags, bool) {
	fs := flag.NewFlagSet("posim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lf := &loadFlags{
		addr:         fs.String("addr", "127.0.0.1:8583", "POS acceptor of the switch, HOST:PORT"),
		admin:        fs.String("admin", "", "admin API base URL (e.g. http://127.0.0.1:9583): provision terminals and cards of this run"),
		token:        secretflag.New(fs, "token", "POSIM_TOKEN", "admin API bearer token; the variable keeps it out of ps"),
		terminals:    fs.Int("terminals", 5, "simulated terminals, each on its own connection (demo data: at most 5)"),
		cardsPer:     fs.Int("cards-per-terminal", 2, "cards provisioned per terminal (with --admin)"),
		duration:     fs.Duration("duration", 10*time.Second, "how long to drive load"),
		rate:         fs.Float64("rate", 0, "fixed total rate in transactions per second; 0 = closed loop"),
		mix:          fs.String("mix", "consume", "transaction profile: consume, balance, mixed or preauth"),
		ackPath:      fs.String("ack-log", "", "write one line per answered transaction to FILE"),
		cardsOut:     fs.String("cards-out", "", "write the opening balance of every card used to FILE (for posim verify)"),
		timeout:      fs.Duration("timeout", 10*time.Second, "per-exchange timeout; a terminal reverses after it"),
		reconnectFor: fs.Duration("reconnect-for", 2*time.Minute, "how long a terminal keeps redialling an unreachable switch"),
		drain:        fs.Duration("drain", 2*time.Minute, "after --duration, how long outstanding reversals may take"),
		seed:         fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed of the terminals' choices"),
		quiet:        fs.Bool("quiet", false, "no per-second progress lines"),
		cardSet:      fs.String("cards", posim.CardsCampus, "cards presented: campus, bank (gwsim's bank cards, every consume with its PIN) or both"),
		bankAccounts: fs.String("bank-accounts", "", "with --cards bank|both: gwsim accounts file of the bank cards (default gwsim's demo bank)"),
		switchPID:    fs.Int("switch-pid", 0, "PID of switchd: report its CPU time per transaction during the load (Linux /proc)"),
	}
	return lf, fs.Parse(args) == nil
}

// runTerminals are the run's terminals and their cards: provisioned
// through the admin API (with the cards' opening balances), or the demo
// terminals; with --cards bank|both, presenting bank cards too. A
// non-zero code is the exit status of a failure already reported.
func (lf *loadFlags) runTerminals(ctx context.Context, stderr io.Writer) ([]posim.TerminalSpec, map[string]posim.Amount, int) {
	var (
		terms   []posim.TerminalSpec
		opening map[string]posim.Amount
		err     error
	)
	if *lf.admin != "" {
		p, err := posim.Provision(ctx, posim.ProvisionOptions{
			Admin: *lf.admin, Token: lf.token.Get(), Terminals: *lf.terminals, CardsPerTerminal: *lf.cardsPer,
		})
		if err != nil {
			fmt.Fprintln(stderr, "posim: provision:", err)
			return nil, nil, 1
		}
		fmt.Fprintf(stderr, "posim: provisioned %d terminals and %d cards (run %06d)\n", len(p.Terminals), len(p.Opening), p.RunID)
		terms, opening = p.Terminals, p.Opening
	} else if terms, err = posim.DemoTerminals(*lf.terminals); err != nil {
		fmt.Fprintln(stderr, "posim:", err)
		return nil, nil, 2
	}
	if *lf.cardSet == "" || *lf.cardSet == posim.CardsCampus {
		return terms, opening, 0
	}
	bank := posim.DemoBankCards()
	if *lf.bankAccounts != "" {
		accts, err := gwsim.LoadAccounts(*lf.bankAccounts)
		if err != nil {
			fmt.Fprintln(stderr, "posim:", err)
			return nil, nil, 2
		}
		bank = posim.BankCards(accts)
	}
	if terms, err = posim.WithCards(terms, *lf.cardSet, bank); err != nil {
		fmt.Fprintln(stderr, "posim:", err)
		return nil, nil, 2
	}
	if *lf.cardsOut != "" {
		fmt.Fprintln(stderr, "posim: --cards-out covers campus cards only: bank cards' balances are the bank's (gwsim /accounts)")
		return nil, nil, 2
	}
	return terms, opening, 0
}

// writeOpening writes the cards' opening balances for posim verify when
// --cards-out asks for them.
func (lf *loadFlags) writeOpening(opening map[string]posim.Amount, stderr io.Writer) int {
	if *lf.cardsOut == "" {
		return 0
	}
	if opening == nil {
		fmt.Fprintln(stderr, "posim: --cards-out needs --admin (the demo cards' opening balances are not known to posim)")
		return 2
	}
	f, err := createPrivate(*lf.cardsOut)
	if err == nil {
		err = posim.WriteCards(f, opening)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "posim:", err)
		return 1
	}
	return 0
}

// report prints a run's outcome — the counters, the switch's CPU per
// transaction when asked, and the summary line — and returns the exit
// status.
func report(res *posim.Result, err error, switchPID int, stdout, stderr io.Writer) int {
	if res != nil {
		fmt.Fprintf(stderr, "posim: reversals=%d resends=%d reconnects=%d missed=%d unresolved=%d\n",
			res.Reversals, res.Resends, res.Reconnects, res.Missed, res.Unresolved)
		printCPU(stdout, res, "switch", switchPID)
		fmt.Fprintln(stdout, res.Summary())
	}
	if err != nil {
		fmt.Fprintln(stderr, "posim:", err)
		return 1
	}
	if res.Unresolved > 0 {
		fmt.Fprintf(stderr, "posim: %d transactions still unresolved: the ack log cannot be reconciled\n", res.Unresolved)
		return 1
	}
	return 0
}

// printCPU prints the server's CPU per answered transaction (as
// "NAME cpu_us_per_tx=F", when its PID was given) and posim's own
// ("posim cpu_us_per_tx=F"), each when it could be read.
func printCPU(w io.Writer, res *posim.Result, name string, pid int) {
	n := res.Approved + res.Declined
	if n == 0 {
		return
	}
	perTx := func(ticks int64) float64 { return float64(ticks) * 1e6 / float64(clockTicks) / float64(n) }
	if pid > 0 && res.CPUTicks >= 0 {
		fmt.Fprintf(w, "%s cpu_us_per_tx=%.1f\n", name, perTx(res.CPUTicks))
	}
	if res.SelfCPUTicks >= 0 {
		fmt.Fprintf(w, "posim cpu_us_per_tx=%.1f\n", perTx(res.SelfCPUTicks))
	}
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

func verify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posim verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ackPath := fs.String("ack-log", "", "ack log of the run")
	cardsPath := fs.String("cards", "", "opening balances written by --cards-out")
	data := fs.String("data", "", "data directory of the stopped switchd")
	switchctl := fs.String("switchctl", "bin/switchctl", "switchctl binary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *ackPath == "" || *cardsPath == "" || *data == "" {
		fmt.Fprintln(stderr, "posim verify: --ack-log, --cards and --data are required")
		return 2
	}
	const maxLines = 50_000_000
	af, err := os.Open(*ackPath)
	if err != nil {
		fmt.Fprintln(stderr, "posim verify:", err)
		return 1
	}
	defer af.Close()
	acks, err := posim.ReadAcks(af, maxLines)
	if err != nil {
		fmt.Fprintln(stderr, "posim verify:", err)
		return 1
	}
	cf, err := os.Open(*cardsPath)
	if err != nil {
		fmt.Fprintln(stderr, "posim verify:", err)
		return 1
	}
	defer cf.Close()
	opening, err := posim.ReadCards(cf, posim.MaxTerminals*100)
	if err != nil {
		fmt.Fprintln(stderr, "posim verify:", err)
		return 1
	}
	bad, err := posim.Reconcile(acks, opening, posim.SwitchctlBalance(*switchctl, *data))
	for _, b := range bad {
		fmt.Fprintln(stdout, "MISMATCH", b)
	}
	if err != nil {
		fmt.Fprintln(stderr, "posim verify:", err)
		return 1
	}
	if len(bad) > 0 {
		fmt.Fprintf(stdout, "FAILED: %d of %d cards do not reconcile with %d acknowledged transactions\n", len(bad), len(opening), len(acks))
		return 1
	}
	fmt.Fprintf(stdout, "OK: %d cards reconcile with %d acknowledged transactions\n", len(opening), len(acks))
	return 0
}

// createPrivate creates (or truncates) a file only its owner can read: the
// cards file holds full card numbers and the ack log the run's answers,
// neither for other users of the machine (docs/security.md).
func createPrivate(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
}
