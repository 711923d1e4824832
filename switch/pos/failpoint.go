package pos

import (
	"os"
	"syscall"
)

// Crash points for the crash tests: with CARDSWITCH_CRASH_POINT set to one
// of them, the daemon kills itself with SIGKILL at that exact point of the
// first transaction that reaches it. That proves the commit rule
// (docs/architecture.md, one unit of work per transaction) at its two
// edges: a crash before the commit leaves nothing
// behind, a crash after it leaves a transaction the terminal's reversal
// finds and undoes. Unset, as in every real deployment, it costs one
// string compare per transaction.
const (
	CrashBeforeCommit = "before-commit"
	CrashAfterCommit  = "after-commit"
)

var crashPoint = os.Getenv("CARDSWITCH_CRASH_POINT")

// maybeCrash kills the process when the configured crash point is name.
func maybeCrash(name string) {
	if crashPoint != "" && crashPoint == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never return
	}
}
