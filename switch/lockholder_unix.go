//go:build linux || darwin

package switching

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// lockHolder returns the id of the process holding the Pebble lock of
// dataDir (its LOCK file, locked with fcntl), or 0 when none does or it
// cannot be told.
func lockHolder(dataDir string) int {
	f, err := os.Open(filepath.Join(dataDir, "LOCK"))
	if err != nil {
		return 0
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil || lk.Type == syscall.F_UNLCK {
		return 0
	}
	return int(lk.Pid)
}
