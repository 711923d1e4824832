// Command gwsim is a bank on the far side of a gateway link, for tests and
// the demo: account holders with balances and PINs, sign-on, key exchange,
// MAC, consume, balance inquiry, void, refund, transfer-load debit and
// reversal, with injected faults and a daily reconciliation file. See
// docs/gwsim.md.
//
//	gwsim [--addr HOST:PORT] [--http HOST:PORT] [--accounts FILE]
//	      [--delay MS] [--drop PCT] [--decline RC] [--decline-reversals RC]
//	      [--disconnect-after N]
//	      [--refuse-signon] [--recon-dir DIR --recon-at-exit ...]
package main

import (
	"os"

	"github.com/cardswitch/cardswitch/internal/gwsim/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
