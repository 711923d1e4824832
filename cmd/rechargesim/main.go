// Command rechargesim plays an outside recharge platform against switchd:
// account verification, credit by order number, order query and credit
// reversal, over ISO 8583 on the gateway port or over HTTP. See
// docs/recharge.md.
//
//	rechargesim [--via iso|http] [--addr HOST:PORT] [--url URL]
//	            [--institution ID] [--zak HEX] [--http-key HEX]
//	            verify|credit|query|reverse [--order ON] [--card PAN]
//	            [--amount YUAN] [--name NAME] [--repeat]
package main

import (
	"os"

	"github.com/cardswitch/cardswitch/internal/rechargesim"
)

func main() {
	os.Exit(rechargesim.Main(os.Args[1:], os.Stdout, os.Stderr))
}
