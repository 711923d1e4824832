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

	switching "github.com/cardswitch/cardswitch/switch"
	"go.uber.org/zap"
)

func main() {
	os.Exit(run())
}

func run() int {
	configPath := flag.String("config", "", "YAML configuration file (default: the embedded demo configuration)")
	shutdownTimeout := flag.Duration("shutdown-timeout", 15*time.Second, "how long in-flight messages may take to finish on SIGTERM")
	flag.Parse()

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
		fmt.Fprintln(os.Stderr, "switchd:", err)
		return 2
	}
	log, err := switching.NewLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchd:", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	switching.ApplyRuntime(cfg.Runtime)

	sw, err := switching.New(cfg, log)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	if err := sw.Start(); err != nil {
		log.Error("cannot start", zap.Error(err))
		_ = sw.Shutdown(context.Background())
		return 1
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Info("stopping", zap.String("signal", s.String()))
	ctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		log.Error("shutdown", zap.Error(err))
		return 1
	}
	return 0
}
