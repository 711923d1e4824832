package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

func init() { register("pos", runPOS) }

// runPOS: switchctl pos echo --addr HOST:PORT --terminal T --merchant M
func runPOS(args []string, stdout, stderr io.Writer) int {
	const posUsage = "usage: switchctl pos echo --addr HOST:PORT --terminal T --merchant M [--timeout D]"
	if len(args) > 0 && isHelpWord(args[0]) {
		fmt.Fprintln(stdout, posUsage)
		return 0
	}
	if len(args) == 0 || args[0] != "echo" {
		fmt.Fprintln(stderr, posUsage)
		return 2
	}
	fs := flag.NewFlagSet("pos echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8583", "POS acceptor address")
	terminal := fs.String("terminal", "", "terminal id (field 41, 8 characters)")
	merchant := fs.String("merchant", "", "merchant id (field 42, 15 characters)")
	timeout := fs.Duration("timeout", 10*time.Second, "dial and answer timeout")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if len(*terminal) != 8 || len(*merchant) != 15 {
		fmt.Fprintln(stderr, "switchctl pos echo: --terminal must be 8 characters and --merchant 15")
		return 2
	}
	c, err := posclient.Dial(*addr, posclient.Options{Timeout: *timeout})
	if err != nil {
		fmt.Fprintln(stderr, "switchctl pos echo:", err)
		return 1
	}
	defer c.Close()
	req := &spec.POSMessage{
		MTI:        "0820",
		TerminalID: *terminal,
		MerchantID: *merchant,
		Reserved60: spec.Field60{Type: "00", Batch: "000000", NetworkCode: "301"},
	}
	start := time.Now()
	resp, err := c.Exchange(req, nil)
	if err != nil {
		fmt.Fprintln(stderr, "switchctl pos echo:", err)
		return 1
	}
	fmt.Fprintf(stdout, "mti       %s\n", resp.MTI)
	fmt.Fprintf(stdout, "39        %s (%s)\n", resp.ResponseCode, spec.RCDescription(resp.ResponseCode))
	fmt.Fprintf(stdout, "41        %s\n", resp.TerminalID)
	fmt.Fprintf(stdout, "42        %s\n", resp.MerchantID)
	fmt.Fprintf(stdout, "60        %s\n", resp.Reserved60.String())
	fmt.Fprintf(stdout, "header    %s\n", c.LastHeader)
	fmt.Fprintf(stdout, "time      %s\n", time.Since(start).Round(time.Microsecond))
	if resp.ResponseCode != spec.RCApproved {
		return 1
	}
	return 0
}
