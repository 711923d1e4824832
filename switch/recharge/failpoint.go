package recharge

import (
	"os"
	"syscall"
)

// Crash points for the crash test of outside credits: with
// CARDSWITCH_CRASH_POINT set to one of them, the daemon kills itself at
// that point of the first outside credit that reaches it. Unset, as in
// every real deployment, it costs one string compare per credit.
const (
	crashBeforeCommit = "recharge-before-commit"
	crashAfterCommit  = "recharge-after-commit"
)

var crashPoint = os.Getenv("CARDSWITCH_CRASH_POINT")

func maybeCrash(name string) {
	if crashPoint != "" && crashPoint == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never return
	}
}
