// Command posim is the cardswitch terminal simulator and load generator
// (docs/posim.md). See internal/posim and docs/BENCHMARKS.md.
//
//	posim --addr HOST:PORT [--admin URL --token T] --terminals N --duration D
//	      [--rate R] [--mix consume|mixed] [--ack-log FILE] [--cards-out FILE]
//	posim verify --ack-log FILE --cards FILE --data DIR [--switchctl PATH]
//	posim baseline-server --addr HOST:PORT --data DIR
//	posim baseline --addr HOST:PORT --conns N --duration D
//	posim abuse --addr HOST:PORT --frames N --idle N [--hold D]
package main

import (
	"os"

	"github.com/cardswitch/cardswitch/internal/posim/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
