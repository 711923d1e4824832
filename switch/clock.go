package switching

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cockroachdb/pebble/v2"
)

// rrnBlock is how many RRNs one synced reservation hands out. A restart
// skips the rest of the block: RRNs are unique, not gapless.
const rrnBlock = 10_000

// maxRRNPerDay keeps the 9-digit sequence of the RRN from wrapping.
const maxRRNPerDay = 999_999_999

// ErrRRNExhausted: a business day used up its RRN space.
var ErrRRNExhausted = errors.New("retrieval reference numbers exhausted for the business day")

// businessClock is the switch's business date and the source of retrieval
// reference numbers (field 37), unique per business day.
//
// The business date follows the calendar day in the configured zone; the
// daily cutover with reconciliation comes with the settlement wave.
type businessClock struct {
	db  *pebble.DB
	loc *time.Location
	now func() time.Time

	mu    sync.Mutex
	date  ledger.BusinessDate
	next  uint64 // next RRN sequence to hand out
	limit uint64 // first sequence not reserved
}

func openBusinessClock(db *pebble.DB, zone string) (*businessClock, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", zone, err)
	}
	return &businessClock{db: db, loc: loc, now: time.Now}, nil
}

// Today is the current business date.
func (c *businessClock) Today() ledger.BusinessDate { return c.dateOf(c.now()) }

// dateOf is the business date at t.
func (c *businessClock) dateOf(t time.Time) ledger.BusinessDate {
	return ledger.DateOf(t.In(c.loc))
}

func rrnKey(d ledger.BusinessDate) []byte {
	return fmt.Appendf([]byte("d/rrn/"), "%08d", uint32(d))
}

// NextRRN returns a new RRN for business date d: its day of the year (3
// digits) and a 9-digit sequence.
func (c *businessClock) NextRRN(d ledger.BusinessDate) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d != c.date {
		c.date, c.next, c.limit = d, 0, 0
	}
	if c.next >= c.limit {
		if err := c.reserve(); err != nil {
			return "", err
		}
	}
	seq := c.next
	c.next++
	yday := time.Date(int(d/10000), time.Month(d/100%100), int(d%100), 0, 0, 0, 0, time.UTC).YearDay()
	return fmt.Sprintf("%03d%09d", yday, seq), nil
}

// reserve durably moves the day's high-water mark one block on, so that no
// RRN handed out before a crash is handed out again after it.
func (c *businessClock) reserve() error {
	key := rrnKey(c.date)
	var hi uint64
	v, closer, err := c.db.Get(key)
	switch {
	case err == nil:
		if len(v) == 8 {
			hi = binary.BigEndian.Uint64(v)
		}
		_ = closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read RRN mark: %w", err)
	}
	if hi < c.next {
		hi = c.next
	}
	if hi+rrnBlock > maxRRNPerDay {
		return ErrRRNExhausted
	}
	if err := c.db.Set(key, binary.BigEndian.AppendUint64(nil, hi+rrnBlock), pebble.Sync); err != nil {
		return fmt.Errorf("reserve RRNs: %w", err)
	}
	c.next, c.limit = hi, hi+rrnBlock
	if c.next == 0 {
		c.next = 1 // RRN ...000000000 is never issued
	}
	return nil
}
