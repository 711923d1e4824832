package switching

import (
	"fmt"
	"os"
	"strings"
)

// describeOpenError says why the data directory did not open. When another
// process holds its lock (a second switchd on the same data_dir), it names
// that process; the error Pebble gives says only that a lock failed.
func describeOpenError(dataDir string, err error) error {
	msg := err.Error()
	if !strings.Contains(msg, "lock") && !strings.Contains(msg, "resource temporarily unavailable") {
		return fmt.Errorf("open storage in %s: %w", dataDir, err)
	}
	if strings.Contains(msg, "held by current process") {
		return fmt.Errorf("open storage in %s: data directory is locked by this process (pid %d): it is already open: %w", dataDir, os.Getpid(), err)
	}
	if pid := lockHolder(dataDir); pid != 0 {
		return fmt.Errorf("open storage in %s: data directory is locked by process %d (another switchd on the same data_dir?): %w", dataDir, pid, err)
	}
	return fmt.Errorf("open storage in %s: data directory is locked by another process: %w", dataDir, err)
}
