// Command switchd is the cardswitch transaction switch daemon.
//
// With --config it runs the given YAML configuration; without, the demo
// configuration embedded in the binary (data in ./data, POS on
// 127.0.0.1:8583, gateway on 127.0.0.1:8584, HTTP on 127.0.0.1:9583).
// SIGTERM or SIGINT stops it gracefully.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cardswitch/cardswitch/internal/logmask"
	switching "github.com/cardswitch/cardswitch/switch"
	"go.uber.org/zap"
)

func main() {
	os.Exit(run())
}

// checkConfigFile validates a configuration file without starting: exit
// 0 and "ok" with notes on what a start would create, or 2 and every
// problem found, each naming its YAML key.
func checkConfigFile(path string) int {
	cfg, err := switching.LoadConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchd:", logmask.String(err.Error()))
		return 2
	}
	notes, err := switching.CheckConfig(cfg)
	for _, n := range notes {
		fmt.Println("note:", n)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchd: config %s: %s\n", path, logmask.String(err.Error()))
		return 2
	}
	fmt.Printf("config %s: ok\n", path)
	return 0
}

// reload re-reads the configuration file on SIGHUP and applies what can
// be applied while running (docs/operations.md "Reloading"); a file that
// does not load changes nothing.
func reload(sw *switching.Switch, path string, log *zap.Logger) {
	if path == "" {
		log.Warn("SIGHUP: running the embedded demo configuration, nothing to reload")
		return
	}
	cfg, err := switching.LoadConfig(path)
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded", zap.Error(err))
		return
	}
	if rep, err := sw.Reload(cfg); err != nil && !rep.Applied {
		log.Error("SIGHUP: configuration not reloaded; the running configuration stays in force", zap.Error(err))
	} else if err != nil {
		log.Error("SIGHUP: configuration reloaded in part", zap.Error(err))
	}
}

// shutdownBoundWarning says when --shutdown-timeout does not cover a
// gateway link's send timeout: a transaction waiting on that bank at
// SIGTERM would then outlive the bound (docs/operations.md "Shutdown").
func shutdownBoundWarning(cfg *switching.Config, bound time.Duration) string {
	for _, g := range cfg.Gateways {
		if st := g.WithDefaults().SendTimeout; st >= bound {
			return fmt.Sprintf("--shutdown-timeout %v does not exceed gateway %s's send_timeout %v: a transaction waiting on that bank at SIGTERM may outlast it", bound, g.Name, st)
		}
	}
	return ""
}

func run() int {
	configPath := flag.String("config", "", "YAML configuration file (default: the embedded demo configuration)")
	shutdownTimeout := flag.Duration("shutdown-timeout", 15*time.Second, "how long in-flight messages may take to finish on SIGTERM")
	checkConfig := flag.String("check-config", "", "validate this YAML configuration `FILE` and exit: starts nothing, creates nothing")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "switchd: unexpected argument %q (a configuration is given with --config FILE)\n", flag.Arg(0))
		return 2
	}
	if *checkConfig != "" {
		return checkConfigFile(*checkConfig)
	}

	var (
		cfg *switching.Config
		err error
	)
	if *configPath == "" {
		cfg, err = switching.DemoConfig()
	} else {
		cfg, err = switching.LoadConfig(*configPath)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchd:", logmask.String(err.Error()))
		return 2
	}
	log, level, err := switching.NewLoggerLevel(cfg.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchd:", logmask.String(err.Error()))
		return 2
	}
	defer func() { _ = log.Sync() }()
	switching.ApplyRuntime(cfg.Runtime)
	if w := shutdownBoundWarning(cfg, *shutdownTimeout); w != "" {
		log.Warn(w)
	}

	// Signals are caught before the switch starts: a SIGHUP arriving
	// between "switch listening" and here would otherwise end the process
	// (its default action), and a SIGTERM during start-up waits for Start
	// and then shuts down cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	sw, err := switching.New(cfg, log)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	sw.SetLogLevel(level)
	if err := sw.Start(); err != nil {
		log.Error("cannot start", zap.Error(err))
		_ = sw.Shutdown(context.Background())
		return 1
	}

	s := <-sig
	for ; s == syscall.SIGHUP; s = <-sig {
		reload(sw, *configPath, log)
	}
	log.Info("stopping", zap.String("signal", s.String()))
	ctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		log.Error("shutdown", zap.Error(err))
		return 1
	}
	return 0
}
