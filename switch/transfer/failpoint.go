package transfer

import (
	"os"
	"syscall"
)

// Crash points for the crash tests of transfer loads: with
// CARDSWITCH_CRASH_POINT set to one of them, the daemon kills itself at
// that point of the first transfer load that reaches it. Unset, as in
// every real deployment, it costs one string compare per load.
const (
	// crashBetweenLegs: the bank has approved the debit, nothing of the
	// answer or the credit is durable.
	crashBetweenLegs = "transfer-between-legs"
	// crashAfterCommit: the bank's answer and the credit are durable, the
	// kiosk has no answer.
	crashAfterCommit = "transfer-after-commit"
)

var crashPoint = os.Getenv("CARDSWITCH_CRASH_POINT")

func maybeCrash(name string) {
	if crashPoint != "" && crashPoint == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never return
	}
}
