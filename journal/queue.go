package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/journal/internal/record"
	"github.com/cockroachdb/pebble/v2"
)

// The store-and-forward queue holds messages that must reach a destination
// until it answers: a gateway reversal (0420) is queued in the same batch
// as the transaction that timed out, then sent, repeated (as 0421) and
// finally acknowledged when the answer arrives. The queue is persistent,
// FIFO per destination, and survives restarts; it is not on the POS hot
// path, so its own state changes (attempts, acks) commit synced at once.

// Queue bounds.
const (
	// MaxPayloadLen bounds one queued message.
	MaxPayloadLen = record.MaxPayloadLen
	// maxDestLen bounds a destination name.
	maxDestLen = 64
	// DefaultMaxAttempts is how many times a message is handed out for
	// sending before it is dead-lettered.
	DefaultMaxAttempts = 10
	maxMaxAttempts     = record.MaxAttempts
	// DefaultMaxPeek bounds the messages one Peek returns.
	DefaultMaxPeek = 100
)

// ErrAttemptsExhausted is returned by Attempt when a message has been sent
// MaxAttempts times; it has been moved to the dead-letter list.
var ErrAttemptsExhausted = errors.New("journal: queue: send attempts exhausted")

// QueueOptions configure a Queue. The zero value is usable.
type QueueOptions struct {
	// MaxAttempts is how many sends Attempt allows per message; zero means
	// DefaultMaxAttempts.
	MaxAttempts int
	// MaxPeek bounds n in Peek and Dead; zero means DefaultMaxPeek.
	MaxPeek int
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Message is one queued message.
type Message = record.Message

// Queue is the persistent store-and-forward queue. It is safe for
// concurrent use.
type Queue struct {
	db   *pebble.DB
	opts QueueOptions
	// next is the last message id handed out. Ids grow across all
	// destinations; after a restart they continue above every id still
	// stored, so FIFO order holds, though ids of messages acknowledged
	// before the restart may be used again.
	next atomic.Uint64
	// mu serializes the read-modify-write of Attempt, Ack and Requeue.
	mu sync.Mutex
}

// OpenQueue returns the queue kept in db, restoring the id counter. The
// caller keeps ownership of db.
func OpenQueue(db *pebble.DB, opts QueueOptions) (*Queue, error) {
	if db == nil {
		return nil, errors.New("journal: open queue: nil db")
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxAttempts < 1 || opts.MaxAttempts > maxMaxAttempts {
		return nil, fmt.Errorf("journal: open queue: max attempts %d: want 1..%d", opts.MaxAttempts, maxMaxAttempts)
	}
	if opts.MaxPeek == 0 {
		opts.MaxPeek = DefaultMaxPeek
	}
	if opts.MaxPeek < 1 || opts.MaxPeek > maxMaxRead {
		return nil, fmt.Errorf("journal: open queue: max peek %d: want 1..%d", opts.MaxPeek, maxMaxRead)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	q := &Queue{db: db, opts: opts}
	for _, space := range []byte{spaceQueued, spaceDead} {
		last, err := lastQueueID(db, space)
		if err != nil {
			return nil, fmt.Errorf("journal: open queue: %w", err)
		}
		if last > q.next.Load() {
			q.next.Store(last)
		}
	}
	return q, nil
}

// lastQueueID finds the largest id in one queue keyspace with two seeks
// per destination rather than a scan of every message.
func lastQueueID(db *pebble.DB, space byte) (last uint64, err error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixQueue, space},
		UpperBound: []byte{prefixQueue, space + 1},
	})
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for ok := it.First(); ok; {
		dest, _, err := parseQueueKey(it.Key())
		if err != nil {
			return 0, err
		}
		end := append(queuePrefix(nil, space, dest), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00)
		if !it.SeekLT(end) {
			return 0, fmt.Errorf("%w: queue destination %q vanished during open", ErrCorrupt, dest)
		}
		_, id, err := parseQueueKey(it.Key())
		if err != nil {
			return 0, err
		}
		last = max(last, id)
		ok = it.SeekGE(end)
	}
	return last, it.Error()
}

func queuePrefix(dst []byte, space byte, dest string) []byte {
	dst = append(dst, prefixQueue, space)
	return appendStr(dst, dest)
}

func queueKey(space byte, dest string, id uint64) []byte {
	return appendSeq(queuePrefix(make([]byte, 0, 3+len(dest)+seqLen), space, dest), id)
}

func parseQueueKey(k []byte) (dest string, id uint64, err error) {
	if len(k) < 3+seqLen || int(k[2]) != len(k)-3-seqLen {
		return "", 0, fmt.Errorf("%w: queue key %x", ErrCorrupt, k)
	}
	return string(k[3 : 3+k[2]]), binary.BigEndian.Uint64(k[len(k)-seqLen:]), nil
}

func validDest(dest string) error {
	if dest == "" || len(dest) > maxDestLen {
		return fmt.Errorf("%w: queue destination %q: want 1..%d bytes", ErrInvalidEntry, dest, maxDestLen)
	}
	return nil
}

// Enqueue writes payload for dest into b and returns its id. Nothing is
// queued until the caller commits b (synced, with the transaction that made
// the message necessary). Messages committed concurrently may become
// visible slightly out of id order.
func (q *Queue) Enqueue(b *pebble.Batch, dest string, payload []byte) (uint64, error) {
	if b == nil {
		return 0, errors.New("journal: enqueue: nil batch")
	}
	if err := validDest(dest); err != nil {
		return 0, fmt.Errorf("journal: enqueue: %w", err)
	}
	if len(payload) == 0 || len(payload) > MaxPayloadLen {
		return 0, fmt.Errorf("journal: enqueue for %s: %w: payload of %d bytes: want 1..%d", dest, ErrInvalidEntry, len(payload), MaxPayloadLen)
	}
	id := q.next.Add(1)
	m := Message{Payload: payload, Enqueued: q.opts.Now()}
	if err := b.Set(queueKey(spaceQueued, dest, id), record.EncodeMessage(&m), nil); err != nil {
		return 0, fmt.Errorf("journal: enqueue for %s: %w", dest, err)
	}
	return id, nil
}

// Peek returns up to n of dest's queued messages, oldest first, without
// removing them.
func (q *Queue) Peek(dest string, n int) ([]Message, error) {
	return q.list(spaceQueued, dest, n)
}

// Dead returns up to n of dest's dead-lettered messages, oldest first.
func (q *Queue) Dead(dest string, n int) ([]Message, error) {
	return q.list(spaceDead, dest, n)
}

func (q *Queue) list(space byte, dest string, n int) (out []Message, err error) {
	if err := validDest(dest); err != nil {
		return nil, fmt.Errorf("journal: queue list: %w", err)
	}
	if n < 1 || n > q.opts.MaxPeek {
		return nil, fmt.Errorf("journal: queue list for %s: %w: %d, want 1..%d", dest, ErrLimit, n, q.opts.MaxPeek)
	}
	p := queuePrefix(nil, space, dest)
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("journal: queue list for %s: %w", dest, err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("journal: queue list for %s: %w", dest, cerr)
		}
	}()
	for ok := it.First(); ok && len(out) < n; ok = it.Next() {
		_, id, err := parseQueueKey(it.Key())
		if err != nil {
			return nil, fmt.Errorf("journal: queue list for %s: %w", dest, err)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("journal: queue list for %s: %w", dest, err)
		}
		m := Message{ID: id, Dest: dest}
		if err := record.DecodeMessage(v, &m); err != nil {
			return nil, fmt.Errorf("journal: queue list for %s id %d: %w", dest, id, err)
		}
		out = append(out, m)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("journal: queue list for %s: %w", dest, err)
	}
	return out, nil
}

// get reads one message; the caller holds q.mu.
func (q *Queue) get(space byte, dest string, id uint64) (Message, error) {
	v, closer, err := q.db.Get(queueKey(space, dest, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, err
	}
	defer closer.Close()
	m := Message{ID: id, Dest: dest}
	if err := record.DecodeMessage(v, &m); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Attempt records that message id of dest is about to be sent and returns
// it with Attempts counting this send (1 for the first send: a gateway link
// sends 0420 then, 0421 for repeats). The count is committed synced before
// Attempt returns, so a crash never loses a send from the count. When the
// message has already been sent MaxAttempts times it is moved to the
// dead-letter list instead and ErrAttemptsExhausted is returned.
func (q *Queue) Attempt(dest string, id uint64) (Message, error) {
	if err := validDest(dest); err != nil {
		return Message{}, fmt.Errorf("journal: queue attempt: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	m, err := q.get(spaceQueued, dest, id)
	if err != nil {
		return Message{}, fmt.Errorf("journal: queue attempt %s id %d: %w", dest, id, err)
	}
	b := q.db.NewBatch()
	defer b.Close()
	key := queueKey(spaceQueued, dest, id)
	if m.Attempts >= q.opts.MaxAttempts {
		if err := b.Delete(key, nil); err != nil {
			return Message{}, fmt.Errorf("journal: queue attempt %s id %d: %w", dest, id, err)
		}
		if err := b.Set(queueKey(spaceDead, dest, id), record.EncodeMessage(&m), nil); err != nil {
			return Message{}, fmt.Errorf("journal: queue attempt %s id %d: %w", dest, id, err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return Message{}, fmt.Errorf("journal: queue dead-letter %s id %d: %w", dest, id, err)
		}
		return m, fmt.Errorf("journal: queue %s id %d after %d sends: %w", dest, id, m.Attempts, ErrAttemptsExhausted)
	}
	m.Attempts++
	m.LastAttempt = q.opts.Now()
	if err := b.Set(key, record.EncodeMessage(&m), nil); err != nil {
		return Message{}, fmt.Errorf("journal: queue attempt %s id %d: %w", dest, id, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return Message{}, fmt.Errorf("journal: queue attempt %s id %d: %w", dest, id, err)
	}
	return m, nil
}

// Ack removes message id of dest from the queue once the destination has
// answered it, committing synced. A message that is not queued (acked
// already, or never committed) gives ErrNotFound, which a caller handling
// a repeated answer may ignore.
func (q *Queue) Ack(dest string, id uint64) error {
	if err := validDest(dest); err != nil {
		return fmt.Errorf("journal: queue ack: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	key := queueKey(spaceQueued, dest, id)
	_, closer, err := q.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("journal: queue ack %s id %d: %w", dest, id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("journal: queue ack %s id %d: %w", dest, id, err)
	}
	closer.Close()
	if err := q.db.Delete(key, pebble.Sync); err != nil {
		return fmt.Errorf("journal: queue ack %s id %d: %w", dest, id, err)
	}
	return nil
}

// Requeue moves a dead-lettered message back to the end of dest's queue
// under a new id with its attempt count reset, for an operator who has
// fixed the cause. It returns the new id.
func (q *Queue) Requeue(dest string, id uint64) (uint64, error) {
	if err := validDest(dest); err != nil {
		return 0, fmt.Errorf("journal: queue requeue: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	m, err := q.get(spaceDead, dest, id)
	if err != nil {
		return 0, fmt.Errorf("journal: queue requeue %s id %d: %w", dest, id, err)
	}
	b := q.db.NewBatch()
	defer b.Close()
	newID := q.next.Add(1)
	m.Attempts, m.LastAttempt = 0, time.Time{}
	if err := b.Delete(queueKey(spaceDead, dest, id), nil); err != nil {
		return 0, fmt.Errorf("journal: queue requeue %s id %d: %w", dest, id, err)
	}
	if err := b.Set(queueKey(spaceQueued, dest, newID), record.EncodeMessage(&m), nil); err != nil {
		return 0, fmt.Errorf("journal: queue requeue %s id %d: %w", dest, id, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("journal: queue requeue %s id %d: %w", dest, id, err)
	}
	return newID, nil
}

// Kill moves a queued message of dest to the dead-letter list at once
// (an answer that neither completes nor warrants a retry), committing
// synced.
func (q *Queue) Kill(dest string, id uint64) error {
	if err := validDest(dest); err != nil {
		return fmt.Errorf("journal: queue kill: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	m, err := q.get(spaceQueued, dest, id)
	if err != nil {
		return fmt.Errorf("journal: queue kill %s id %d: %w", dest, id, err)
	}
	b := q.db.NewBatch()
	defer b.Close()
	if err := b.Delete(queueKey(spaceQueued, dest, id), nil); err != nil {
		return err
	}
	if err := b.Set(queueKey(spaceDead, dest, id), record.EncodeMessage(&m), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("journal: queue kill %s id %d: %w", dest, id, err)
	}
	return nil
}

// Drop deletes a dead-lettered message for good (an operator settled it
// another way), committing synced.
func (q *Queue) Drop(dest string, id uint64) error {
	if err := validDest(dest); err != nil {
		return fmt.Errorf("journal: queue drop: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.get(spaceDead, dest, id); err != nil {
		return fmt.Errorf("journal: queue drop %s id %d: %w", dest, id, err)
	}
	if err := q.db.Delete(queueKey(spaceDead, dest, id), pebble.Sync); err != nil {
		return fmt.Errorf("journal: queue drop %s id %d: %w", dest, id, err)
	}
	return nil
}

// Stats counts dest's queued and dead messages (at most limit of each)
// and returns the enqueue time of the oldest queued one (zero if none).
func (q *Queue) Stats(dest string, limit int) (queued, dead int, oldest time.Time, err error) {
	if err := validDest(dest); err != nil {
		return 0, 0, time.Time{}, err
	}
	for _, space := range []byte{spaceQueued, spaceDead} {
		p := queuePrefix(nil, space, dest)
		it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return 0, 0, time.Time{}, err
		}
		n := 0
		for ok := it.First(); ok && n < limit; ok = it.Next() {
			if n == 0 && space == spaceQueued {
				var m Message
				if v, verr := it.ValueAndErr(); verr == nil && record.DecodeMessage(v, &m) == nil {
					oldest = m.Enqueued
				}
			}
			n++
		}
		err = it.Close()
		if err != nil {
			return 0, 0, time.Time{}, err
		}
		if space == spaceQueued {
			queued = n
		} else {
			dead = n
		}
	}
	return queued, dead, oldest, nil
}
