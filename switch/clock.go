package switching

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/internal/inflight"
	"github.com/cardswitch/cardswitch/journal"
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
// The business date is the calendar day in the configured zone, moved one
// day on at the cutover (business_day.cutover, docs/reconciliation.md): at
// 23:00 with the default, the day of the 5th becomes the 6th. Closing a
// day (at cutover, or early by the operator) moves it on too: a closed
// day is never handed out again, and the close waits until every exchange
// that started under it has finished, so nothing posts to a closed day.
type businessClock struct {
	db *pebble.DB
	// journal hands out the RRNs its sequences name (ReserveRRN); nil
	// only in tests of the clock's own RRN marks.
	journal *journal.Journal
	// dateText caches the YYYYMMDD text of the last date ReserveRRN
	// asked the journal for, so that an RRN costs no formatting.
	rrnDate atomic.Pointer[dateText]
	loc     *time.Location
	now     func() time.Time
	// cutover is the time of day at which the next business day starts;
	// zero means midnight.
	cutover time.Duration

	// day caches dateOf: the date of the last instant asked and the span
	// of instants that share it, so that the date of each exchange is a
	// comparison rather than a zone conversion.
	day atomic.Pointer[daySpan]

	// closed is the last closed business date (0 before the first).
	closed atomic.Uint32
	// dayMu guards inflight: the exchanges under way per business date.
	dayMu    sync.Mutex
	inflight inflight.Counts[ledger.BusinessDate]

	mu    sync.Mutex
	date  ledger.BusinessDate
	yday  int    // date's day of the year, the RRN's first 3 digits
	next  uint64 // next RRN sequence to hand out
	limit uint64 // first sequence not reserved: the date's durable mark
	// reserving is closed when the reservation ahead under way (written
	// outside mu) has ended; nil when none is.
	reserving chan struct{}
}

// dateText is a business date and its YYYYMMDD text.
type dateText struct {
	date ledger.BusinessDate
	text string
}

// textOf returns d's YYYYMMDD text, cached for the last date asked.
func (c *businessClock) textOf(d ledger.BusinessDate) string {
	if t := c.rrnDate.Load(); t != nil && t.date == d {
		return t.text
	}
	t := &dateText{date: d, text: d.String()}
	c.rrnDate.Store(t)
	return t.text
}

// daySpan is a business date and the instants [from, until) (Unix
// nanoseconds) that fall on it: from the calendar midnight or the cutover
// before, to the cutover or the calendar midnight after.
type daySpan struct {
	from, until int64
	date        ledger.BusinessDate
}

func openBusinessClock(db *pebble.DB, j *journal.Journal, zone string, cutover time.Duration) (*businessClock, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", zone, err)
	}
	c := &businessClock{db: db, journal: j, loc: loc, now: time.Now, cutover: cutover}
	closed, err := readClosedMark(db)
	if err != nil {
		return nil, err
	}
	c.closed.Store(uint32(closed))
	return c, nil
}

// Today is the current business date: the date at this moment, or the day
// LocalNow is the switch's time in its business time zone.
func (c *businessClock) LocalNow() time.Time { return c.now().In(c.loc) }

// after the last closed one when the operator closed today early.
func (c *businessClock) Today() ledger.BusinessDate {
	d := c.dateOf(c.now())
	if closed := ledger.BusinessDate(c.closed.Load()); d <= closed {
		d = closed.AddDays(1)
	}
	return d
}

// Begin is Today for an exchange that may post: the date is held open
// until End, so that closing it waits for the exchange to finish.
func (c *businessClock) Begin() ledger.BusinessDate {
	c.dayMu.Lock()
	d := c.Today()
	c.inflight.Add(d)
	c.dayMu.Unlock()
	return d
}

// End releases a date Begin returned.
func (c *businessClock) End(d ledger.BusinessDate) {
	c.dayMu.Lock()
	c.inflight.Done(d)
	c.dayMu.Unlock()
}

// busy reports how many exchanges are under way on d or before.
func (c *businessClock) busy(d ledger.BusinessDate) int {
	c.dayMu.Lock()
	defer c.dayMu.Unlock()
	n := 0
	c.inflight.Each(func(x ledger.BusinessDate, k int) {
		if x <= d {
			n += k
		}
	})
	return n
}

// dateOf is the business date at t, the cutover applied.
func (c *businessClock) dateOf(t time.Time) ledger.BusinessDate {
	n := t.UnixNano()
	if sp := c.day.Load(); sp != nil && n >= sp.from && n < sp.until {
		return sp.date
	}
	sp := c.spanOf(t)
	c.day.Store(&sp)
	return sp.date
}

// spanOf is the business date at t and the instants that share it: the
// calendar day of t in the zone, the day after from the cutover on.
func (c *businessClock) spanOf(t time.Time) daySpan {
	lt := t.In(c.loc)
	y, m, day := lt.Date()
	midnight := time.Date(y, m, day, 0, 0, 0, 0, c.loc)
	next := time.Date(y, m, day+1, 0, 0, 0, 0, c.loc)
	sp := daySpan{from: midnight.UnixNano(), until: next.UnixNano(), date: ledger.DateOf(lt)}
	if c.cutover > 0 {
		cut := midnight.Add(c.cutover)
		if lt.Sub(midnight) >= c.cutover {
			sp.from, sp.date = cut.UnixNano(), sp.date.AddDays(1)
		} else if cut.Before(next) {
			sp.until = cut.UnixNano()
		}
	}
	return sp
}

// startOf is the first instant of business day d: the cutover on the
// calendar day before d, in the clock's zone, or d's calendar midnight
// when there is no cutover (or that day is too short to reach it), as
// spanOf cuts the days.
func (c *businessClock) startOf(d ledger.BusinessDate) time.Time {
	y, m, day := int(d/10000), time.Month(d/100%100), int(d%100)
	midnight := time.Date(y, m, day, 0, 0, 0, 0, c.loc)
	if c.cutover > 0 {
		if cut := time.Date(y, m, day-1, 0, 0, 0, 0, c.loc).Add(c.cutover); cut.Before(midnight) {
			return cut
		}
	}
	return midnight
}

func rrnKey(d ledger.BusinessDate) []byte {
	return fmt.Appendf([]byte("d/rrn/"), "%08d", uint32(d))
}

// rrnFloor is the journal's counter floor (journal.Options.CounterFloor)
// for business date date (YYYYMMDD): the clock's RRN mark of that date,
// above every RRN the clock's own marks handed out that day (before the
// journal's sequences named RRNs, or on a day they do not), so that the
// journal's counters, which name RRNs, never issue one of them again.
func rrnFloor(db pebble.Reader, date string) (uint64, error) {
	v, closer, err := db.Get([]byte("d/rrn/" + date))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read RRN mark %s: %w", date, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("RRN mark %s: %d bytes", date, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// rrnJournalOptions are the journal's options that tie its counters to
// the clock's RRN marks: the marks floor a day's counter, and a day whose
// counters name RRNs raises its mark with each counter mark.
func rrnJournalOptions(db pebble.Reader) journal.Options {
	return journal.Options{
		CounterFloor: func(date string) (uint64, error) { return rrnFloor(db, date) },
		RRNMark:      raiseRRNMark,
	}
}

// raiseRRNMark is the journal's RRNMark (journal.Options.RRNMark): it
// sets date's RRN mark, in b, to mark, the journal's new counter mark of
// a day whose counters name RRNs (at or above the RRN mark, which floors
// the counter). An earlier version, which issues RRNs from these marks
// only, then continues above every RRN the journal's counters named,
// also after a rollback on the same day (docs/operations.md#upgrades).
func raiseRRNMark(b *pebble.Batch, date string, mark uint64) error {
	return b.Set([]byte("d/rrn/"+date), binary.BigEndian.AppendUint64(nil, mark), nil)
}

// ReserveRRN returns a new RRN for business date d: its day of the year
// (3 digits) and a 9-digit number. The journal issues it: the number is
// the counter of the sequence it reserves for the exchange's
// request/response pair, in r, so that the pair is journaled there (with
// r itself) with no RRN index key (docs/journal.md#sequences). On a day
// whose journal sequences name no RRNs (one an earlier version's counter
// had taken past 9 digits), and without a journal, the RRN comes from
// the clock's own marks (markedRRN) and r is the zero Reservation.
// Either way the RRN is durably reserved before it is returned.
func (c *businessClock) ReserveRRN(d ledger.BusinessDate, r *journal.Reservation) (string, error) {
	if c.journal != nil {
		err := c.journal.ReserveRRN(c.textOf(d), r)
		switch {
		case err == nil:
			return r.RRN(), nil
		case errors.Is(err, journal.ErrSeqExhausted):
			return "", ErrRRNExhausted
		case !errors.Is(err, journal.ErrRRNNotNamed):
			return "", err
		}
	}
	*r = journal.Reservation{}
	return c.markedRRN(d)
}

// NextRRN is ReserveRRN for an RRN journaled elsewhere (a recharge
// order's): the reserved sequences are a gap, and the RRN gets an index
// key where it is journaled.
func (c *businessClock) NextRRN(d ledger.BusinessDate) (string, error) {
	var r journal.Reservation
	return c.ReserveRRN(d, &r)
}

// markedRRN returns a new RRN for business date d from the clock's own
// marks: its day of the year (3 digits) and a 9-digit sequence.
//
// Every RRN handed out is below the day's durable mark. The mark moves one
// block on ahead of need: the exchange that takes the RRN half-way through
// a block writes the next mark (a synced write) after releasing the lock,
// so the others never queue behind that fsync; only the first RRN of a day
// (or of a process) waits for its reservation under the lock.
func (c *businessClock) markedRRN(d ledger.BusinessDate) (string, error) {
	c.mu.Lock()
	for {
		if d != c.date {
			c.date, c.next, c.limit = d, 0, 0
			c.yday = time.Date(int(d/10000), time.Month(d/100%100), int(d%100), 0, 0, 0, 0, time.UTC).YearDay()
		}
		if c.next < c.limit {
			break
		}
		if ch := c.reserving; ch != nil {
			// The next block is being written: wait for it rather than
			// write the mark twice at once.
			c.mu.Unlock()
			<-ch
			c.mu.Lock()
			continue
		}
		if err := c.reserve(); err != nil {
			c.mu.Unlock()
			return "", err
		}
	}
	seq := c.next
	c.next++
	rrn := formatRRN(c.yday, seq)
	var date ledger.BusinessDate
	var from uint64
	var done chan struct{}
	if c.reserving == nil && c.limit-c.next <= rrnBlock/2 && c.limit+rrnBlock <= maxRRNPerDay {
		done = make(chan struct{})
		c.reserving, date, from = done, c.date, c.limit
	}
	c.mu.Unlock()
	if done != nil {
		c.reserveAhead(date, from, done)
	}
	return rrn, nil
}

// reserveAhead durably moves date's mark from from (where it is: the mark
// always equals the limit in memory) one block on, then extends the limit
// when the date and limit are still those it started from. A failure
// leaves the limit as it was; the reservation is tried again by the next
// RRN, and reserve reports the error when the block runs out.
func (c *businessClock) reserveAhead(date ledger.BusinessDate, from uint64, done chan struct{}) {
	err := c.db.Set(rrnKey(date), binary.BigEndian.AppendUint64(nil, from+rrnBlock), pebble.Sync)
	c.mu.Lock()
	if err == nil && c.date == date && c.limit == from {
		c.limit = from + rrnBlock
	}
	c.reserving = nil
	c.mu.Unlock()
	close(done)
}

// formatRRN is yday in 3 digits and seq in 9, zero-padded: the RRN of
// field 37 (seq < 10^9, yday ≤ 366).
func formatRRN(yday int, seq uint64) string {
	var b [12]byte
	for i := 11; i >= 3; i-- {
		b[i] = byte('0' + seq%10)
		seq /= 10
	}
	for i := 2; i >= 0; i-- {
		b[i] = byte('0' + yday%10)
		yday /= 10
	}
	return string(b[:])
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
