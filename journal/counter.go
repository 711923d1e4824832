package journal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cardswitch/cardswitch/journal/internal/record"
	"github.com/cockroachdb/pebble/v2"
)

// Per-day counters (docs/journal.md#sequences). Each business day hands
// out its own counters, 1 on, in reservation order: a sequence is the
// day's start plus the counter. The counters handed out stay below the
// day's counter mark ('j n' day), which moves one block on, synced,
// before the counters of the block are handed out; at the first use of a
// day after Open the counter continues at the mark, or above the day's
// stored counters or at the caller's floor when those are higher (an
// earlier version ran in between). So a counter, and the RRN it names, is
// never handed out twice, also after a crash: a counter of a batch that
// never committed is a gap.
//
// A day whose counters stay below rrnSpan is a named day: its counters
// are RRN numbers (ReserveRRN), and its mark never passes rrnSpan. A day
// the shared counter of an earlier version had already taken past
// rrnSpan (rrnSpan-seqBlock at least) is not: its counters continue
// above its stored ones, up to seqDayUnit, its mark above rrnSpan says
// so, and its RRNs are issued by the caller (ErrRRNNotNamed).

// seqBlock is how many counters one synced move of a day's mark covers.
const seqBlock = 10_000

// ErrSeqExhausted is returned when a business day has used up its
// counters: rrnSpan-1 of a named day (500 million pairs), seqDayUnit-1
// of another.
var ErrSeqExhausted = errors.New("journal: sequences of the business day exhausted")

// ErrRRNNotNamed is returned by ReserveRRN for a business day whose
// counters an earlier version's shared counter had taken past the RRN's
// 9 digits: the caller issues the day's RRNs itself, and the journal
// indexes them (docs/journal.md#sequences).
var ErrRRNNotNamed = errors.New("journal: the business day's sequences do not name RRNs")

// dayCounter is one business day's counter: next is the next counter to
// hand out, limit the day's durable mark (every counter handed out is
// below it), ceiling rrnSpan for a named day, seqDayUnit otherwise.
type dayCounter struct {
	day                  uint32
	date                 string // YYYYMMDD
	next, limit, ceiling uint64
	// reserving is closed when the move of the mark under way (written
	// outside seqMu) has ended; nil when none is.
	reserving chan struct{}
}

func (dc *dayCounter) named() bool { return dc.ceiling == rrnSpan }

// Reservation is a request/response pair's two sequences handed out
// ahead by ReserveRRN: the request's, whose counter is the RRN's number,
// and the one after it. AppendPairAt and AppendAnsweredAt write the pair
// at them once; a later append with the same Reservation takes new
// sequences. Only the Reservation ReserveRRN filled holds them: a copy
// (at another address) names the same RRN, but an append with it takes
// new sequences, so two pairs never land on one sequence (go vet reports
// copies). A Reservation is used by one goroutine at a time.
type Reservation struct {
	_    noCopy
	seq  uint64
	used bool
	// at is where ReserveRRN filled the reservation.
	at *Reservation
}

// noCopy makes go vet (copylocks) report copies of the struct holding it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// Seq is the request's sequence; zero for the zero Reservation.
func (r *Reservation) Seq() uint64 { return r.seq }

// RRN is the retrieval reference number the reservation names: the day
// of the year of its business day in 3 digits and its counter in 9
// (docs/pos-dialect.md, field 37); "" for the zero Reservation.
func (r *Reservation) RRN() string { return seqRRN(r.seq) }

// take returns the reserved request sequence when r can hold a pair of
// day d (it is the Reservation ReserveRRN filled, not used yet), and
// marks it used.
func (r *Reservation) take(d uint32) (uint64, bool) {
	if r == nil || r.seq == 0 || r.used || r.at != r || seqDay(r.seq) != d {
		return 0, false
	}
	r.used = true
	return r.seq, true
}

// ReserveRRN hands out a request/response pair's two sequences of
// business day date (YYYYMMDD) and fills r with them; r.RRN is the RRN
// the first names. The pair is then appended at them (AppendPairAt,
// AppendAnsweredAt, given r itself, not a copy) with no RRN index key;
// an RRN reserved but journaled elsewhere, or not at all, is a gap. The
// counter mark is synced before ReserveRRN returns, so the RRN may
// leave the switch (a gateway link) before the pair commits: a crash in
// between never hands it out again. On an error r is the zero
// Reservation; ErrRRNNotNamed: the caller issues the day's RRNs itself.
func (j *Journal) ReserveRRN(date string, r *Reservation) error {
	*r = Reservation{}
	d, ok := dayNumber(date)
	if !ok {
		return fmt.Errorf("journal: reserve rrn: %w: business date %q is not a day", ErrInvalidEntry, date)
	}
	if j.opts.legacyLayout != layoutCurrent {
		return fmt.Errorf("journal: reserve rrn %s: %w", date, ErrRRNNotNamed)
	}
	c, err := j.handOut(d, 2, true)
	if err != nil {
		return fmt.Errorf("journal: reserve rrn %s: %w", date, err)
	}
	r.seq, r.at = dayStart(d)+c, r
	return nil
}

// nextSeqs hands out n consecutive sequences of day d and returns the
// first.
func (j *Journal) nextSeqs(d uint32, n uint64) (uint64, error) {
	switch j.opts.legacyLayout {
	case layoutDay0, layoutShared:
		c := j.shared.Add(n)
		if c >= seqDayUnit {
			return 0, ErrSeqExhausted
		}
		if j.opts.legacyLayout == layoutDay0 {
			return c - n + 1, nil
		}
		return dayStart(d) + c - n + 1, nil
	}
	c, err := j.handOut(d, n, false)
	if err != nil {
		return 0, err
	}
	return dayStart(d) + c, nil
}

// handOut hands out n consecutive counters of day d and returns the
// first; named asks for a named day (else ErrRRNNotNamed). The first use
// of a day in a process, and a block used up before the move ahead
// ended, wait for a synced write of the mark under seqMu; otherwise the
// caller that takes a counter half-way through a block moves the mark
// one block on after releasing seqMu, so the others never queue behind
// that fsync. That caller is a reservation (named: ReserveRRN, called
// before the switch takes any lock); an append (AppendAnsweredAt runs
// inside the ledger's callback, holding card locks) moves the mark only
// when the block is down to its last tenth, which on a day the switch
// reserves RRNs for the reservations never let happen.
func (j *Journal) handOut(d uint32, n uint64, named bool) (uint64, error) {
	j.seqMu.Lock()
	dc := j.cur
	if dc == nil || dc.day != d {
		dc = j.days[d]
		if dc == nil {
			var err error
			if dc, err = j.openDay(d); err != nil {
				j.seqMu.Unlock()
				return 0, err
			}
			j.days[d] = dc
		}
		j.cur = dc
	}
	if named && !dc.named() {
		j.seqMu.Unlock()
		return 0, ErrRRNNotNamed
	}
	for dc.next+n > dc.limit {
		if dc.next+n > dc.ceiling {
			j.seqMu.Unlock()
			return 0, ErrSeqExhausted
		}
		if ch := dc.reserving; ch != nil {
			j.seqMu.Unlock()
			<-ch
			j.seqMu.Lock()
			continue
		}
		to := min(dc.limit+seqBlock, dc.ceiling)
		if err := j.writeMark(dc, to); err != nil {
			j.seqMu.Unlock()
			return 0, err
		}
		dc.limit = to
	}
	c := dc.next
	dc.next += n
	j.last.Store(dc.next - 1)
	var (
		from uint64
		done chan struct{}
	)
	ahead := uint64(seqBlock / 2)
	if !named {
		ahead = seqBlock / 10
	}
	if dc.reserving == nil && dc.limit-dc.next <= ahead && dc.limit < dc.ceiling {
		done = make(chan struct{})
		dc.reserving, from = done, dc.limit
	}
	j.seqMu.Unlock()
	if done != nil {
		j.moveAhead(dc, from, done)
	}
	return c, nil
}

// moveAhead durably moves dc's mark from from (where it is: the mark
// always equals the limit in memory) one block on, then extends the
// limit if it is still from. A failure leaves the limit as it was: the
// move is tried again by a later caller, and handOut reports the error
// when the block runs out.
func (j *Journal) moveAhead(dc *dayCounter, from uint64, done chan struct{}) {
	to := min(from+seqBlock, dc.ceiling)
	err := j.writeMark(dc, to)
	j.seqMu.Lock()
	if err == nil && dc.limit == from {
		dc.limit = to
	}
	dc.reserving = nil
	j.seqMu.Unlock()
	close(done)
}

// writeMark durably moves dc's mark to to: one synced write, which for
// a day whose counters name RRNs also holds what Options.RRNMark adds
// (the switch raises its own RRN mark of the day with it). A day's
// marks are written one at a time (handOut writes only when no move
// ahead is under way), so they only rise.
func (j *Journal) writeMark(dc *dayCounter, to uint64) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, seqLen), to)
	if j.opts.RRNMark == nil || !dc.named() {
		if err := j.db.Set(counterKey(dc.day), v, pebble.Sync); err != nil {
			return fmt.Errorf("counter mark: %w", err)
		}
		return nil
	}
	b := j.db.NewBatch()
	defer b.Close()
	if err := b.Set(counterKey(dc.day), v, nil); err != nil {
		return fmt.Errorf("counter mark: %w", err)
	}
	if err := j.opts.RRNMark(b, dc.date, to); err != nil {
		return fmt.Errorf("counter mark: RRN mark: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("counter mark: %w", err)
	}
	return nil
}

// openDay sets up day d's counter at its first use in this process: at
// the largest of the day's mark, one above its stored counters and the
// counter floor the caller gives (Options.CounterFloor). The stored
// counters are looked at also when the day has a mark: an earlier
// version run in between (a rollback, then the upgrade again) continues
// its shared counter above the stored counters, which may be above the
// mark, and the day must not hand those sequences out again; the floor
// is asked for the same reason (that version issued RRNs from the
// switch's own marks). One seek per day per process. A day with a mark
// at or below rrnSpan names RRNs as long as its counters do; a day
// without one only when a block fits below rrnSpan. Called with seqMu
// held.
func (j *Journal) openDay(d uint32) (*dayCounter, error) {
	dc := &dayCounter{day: d, date: dayDate(d)}
	var mark uint64
	v, closer, err := j.db.Get(counterKey(d))
	switch {
	case err == nil:
		if len(v) != seqLen {
			closer.Close()
			return nil, fmt.Errorf("%w: counter mark of day %d: %d bytes", ErrCorrupt, d, len(v))
		}
		mark = binary.BigEndian.Uint64(v)
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return nil, fmt.Errorf("counter mark of day %d: %w", d, err)
	}
	top, err := j.storedTop(d)
	if err != nil {
		return nil, err
	}
	next := max(mark, top+1)
	if j.opts.CounterFloor != nil {
		f, err := j.opts.CounterFloor(dc.date)
		if err != nil {
			return nil, fmt.Errorf("counter floor of %s: %w", dc.date, err)
		}
		next = max(next, f)
	}
	dc.next, dc.limit, dc.ceiling = next, next, seqDayUnit
	if mark > 0 && mark <= rrnSpan && next <= rrnSpan || next+seqBlock <= rrnSpan {
		dc.ceiling = rrnSpan
	}
	return dc, nil
}

// storedTop is the largest counter stored under day d: its last key's,
// one more when that holds a pair.
func (j *Journal) storedTop(d uint32) (uint64, error) {
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(dayStart(d)), UpperBound: entryKey(dayStart(d + 1))})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	seq, err := seqSuffix(it.Key())
	if err != nil {
		return 0, err
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return 0, err
	}
	c := seqCounter(seq)
	if record.IsPair(v) {
		c++
	}
	return c, nil
}

// dayDate is the YYYYMMDD date of day number d.
func dayDate(d uint32) string {
	y, m, day := record.CivilFromDays(int64(d))
	return fmt.Sprintf("%04d%02d%02d", y, m, day)
}

// sharedTop returns the last value of the counter the layouts of earlier
// versions share among all days (Options.legacyLayout): the largest
// stored counter, or the sequence mark pruning leaves. One seek per
// stored day: each day's last key holds its largest counter.
func sharedTop(db *pebble.DB) (top uint64, err error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixJournal, spaceEntry},
		UpperBound: []byte{prefixJournal, spaceEntry + 1},
	})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	for ok := it.Last(); ok; {
		k := it.Key()
		if len(k) != entryKeyLen {
			return 0, fmt.Errorf("%w: entry key of %d bytes", ErrCorrupt, len(k))
		}
		seq, _ := seqSuffix(k)
		c := seqCounter(seq)
		if record.IsPair(it.Value()) {
			c++ // the pair's response holds the next sequence
		}
		top = max(top, c)
		d := seqDay(seq)
		if d == 0 {
			break
		}
		ok = it.SeekLT(entryKey(dayStart(d)))
	}
	// A walk cut short by a read error would work out the counter too
	// low and later appends would overwrite entries.
	if err := it.Error(); err != nil {
		return 0, err
	}
	mark, err := readSeqMark(db)
	if err != nil {
		return 0, err
	}
	return max(top, mark), nil
}
