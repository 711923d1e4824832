package switching

import (
	"fmt"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
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

// pebbleOptions are the storage options of the shared instance: the
// ledger's recommendation (a large memtable so many synced commits share
// a flush, L0 thresholds that keep flush bursts from stalling writers),
// plus Bloom filters on every level, because most point reads on the POS
// path are for keys that do not exist (a new request's duplicate record
// and idempotency key).
func pebbleOptions(log *zap.Logger) *pebble.Options {
	o := ledger.RecommendedPebbleOptions()
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	o.Logger = pebbleLogger{log.Named("pebble").Sugar()}
	return o
}
