package cli

import (
	"flag"
	"fmt"
	"io"
	"time"

	abusepkg "github.com/cardswitch/cardswitch/internal/posim/abuse"
	"github.com/cardswitch/cardswitch/internal/posim/baseline"
)

// baselineServer runs the baseline echo server until SIGINT/SIGTERM.
func baselineServer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posim baseline-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	data := fs.String("data", "", "Pebble directory (created)")
	commitName := fs.String("commit", "frame", "what each frame commits: frame (one key, the baseline) or consume (the four keys of an approved consume: the storage floor)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" {
		fmt.Fprintln(stderr, "posim baseline-server: --data is required")
		return 2
	}
	commit, err := baseline.ParseCommit(*commitName)
	if err != nil {
		fmt.Fprintln(stderr, "posim baseline-server:", err)
		return 2
	}
	s, err := baseline.ListenCommit(*addr, *data, commit)
	if err != nil {
		fmt.Fprintln(stderr, "posim baseline-server:", err)
		return 1
	}
	fmt.Fprintln(stdout, "listening", s.Addr())
	ctx, cancel := signalContext()
	defer cancel()
	go s.Serve()
	<-ctx.Done()
	if err := s.Close(); err != nil {
		fmt.Fprintln(stderr, "posim baseline-server:", err)
		return 1
	}
	return 0
}

// baselineLoad drives the baseline server and prints the summary line.
func baselineLoad(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posim baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "baseline server address")
	conns := fs.Int("conns", 100, "connections, one request outstanding each")
	d := fs.Duration("duration", 10*time.Second, "how long")
	rate := fs.Float64("rate", 0, "fixed total rate in requests per second (0 = closed loop)")
	serverPID := fs.Int("server-pid", 0, "PID of the baseline server: report its CPU time per request during the load (Linux /proc)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := signalContext()
	defer cancel()
	res, err := baseline.Load(ctx, *addr, *conns, *d, *rate, *serverPID)
	if err != nil {
		fmt.Fprintln(stderr, "posim baseline:", err)
		return 1
	}
	printCPU(stdout, res, "server", *serverPID)
	fmt.Fprintln(stdout, res.Summary())
	if *rate > 0 {
		fmt.Fprintf(stdout, "baseline missed=%d\n", res.Missed)
	}
	if res.Errors > 0 {
		return 1
	}
	return 0
}

// abuse runs the hostile client.
func abuse(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posim abuse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o abuseOpts
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8583", "POS acceptor of a switch you run on this machine")
	fs.IntVar(&o.Frames, "frames", 10000, "malformed frames to send")
	fs.IntVar(&o.Idle, "idle", 2000, "idle connections to hold")
	fs.DurationVar(&o.Hold, "hold", 20*time.Second, "how long to hold the idle connections")
	fs.IntVar(&o.Senders, "senders", 8, "connections sending malformed frames at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := signalContext()
	defer cancel()
	start := time.Now()
	res, err := abuseRun(ctx, o)
	if res != nil {
		fmt.Fprintf(stdout, "abuse %s in %.1fs\n", res, time.Since(start).Seconds())
	}
	if err != nil {
		fmt.Fprintln(stderr, "posim abuse:", err)
		return 1
	}
	return 0
}

type abuseOpts = abusepkg.Options

var abuseRun = abusepkg.Run
