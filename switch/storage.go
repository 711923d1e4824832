package switching

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// pebbleLogger routes Pebble's own messages through zap, at debug for its
// routine chatter, so the daemon's log stays one stream in one format.
type pebbleLogger struct{ log *zap.SugaredLogger }

func (l pebbleLogger) Infof(format string, args ...any)  { l.log.Debugf(format, args...) }
func (l pebbleLogger) Errorf(format string, args ...any) { l.log.Errorf(format, args...) }
func (l pebbleLogger) Fatalf(format string, args ...any) {
	// Pebble calls Fatalf on unrecoverable corruption; it expects the
	// process to stop.
	l.log.Errorf(format, args...)
	panic(fmt.Sprintf(format, args...))
}

// pebbleOptions are the storage options of the shared instance.
func pebbleOptions(log *zap.Logger) *pebble.Options {
	return &pebble.Options{
		// A larger memtable lets Pebble group more synced commits per
		// flush; measured ~20% more synced commits/s here (notes).
		MemTableSize: 64 << 20,
		Logger:       pebbleLogger{log.Named("pebble").Sugar()},
	}
}
