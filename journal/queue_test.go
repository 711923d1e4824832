package journal

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// fakeClock advances one second per reading.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func openQueue(t testing.TB, db *pebble.DB, opts QueueOptions) *Queue {
	t.Helper()
	q, err := OpenQueue(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func enqueue(t testing.TB, q *Queue, db *pebble.DB, dest string, payloads ...string) []uint64 {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	var ids []uint64
	for _, p := range payloads {
		id, err := q.Enqueue(b, dest, []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return ids
}

func payloads(ms []Message) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmt.Sprintf("%d:%s/%d", m.ID, m.Payload, m.Attempts))
	}
	return strings.Join(s, " ")
}

func TestQueueFIFOAckAndDestinations(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	clock := &fakeClock{t: time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)}
	q := openQueue(t, db, QueueOptions{Now: clock.now})

	enqueue(t, q, db, "bank", "r1", "r2")
	enqueue(t, q, db, "bankb", "other") // "bank" must not see "bankb"'s messages
	enqueue(t, q, db, "bank", "r3")

	got, err := q.Peek("bank", 10)
	if err != nil {
		t.Fatal(err)
	}
	if s := payloads(got); s != "1:r1/0 2:r2/0 4:r3/0" {
		t.Fatalf("Peek bank: %s", s)
	}
	if !got[0].Enqueued.Equal(time.Date(2025, 3, 14, 10, 0, 1, 0, time.UTC)) || !got[0].LastAttempt.IsZero() || got[0].Dest != "bank" {
		t.Fatalf("first message %+v", got[0])
	}
	if got, _ := q.Peek("bank", 2); payloads(got) != "1:r1/0 2:r2/0" {
		t.Fatalf("Peek bank 2: %s", payloads(got))
	}
	if got, _ := q.Peek("bankb", 10); payloads(got) != "3:other/0" {
		t.Fatalf("Peek bankb: %s", payloads(got))
	}
	if got, _ := q.Peek("nobody", 10); len(got) != 0 {
		t.Fatalf("Peek nobody: %s", payloads(got))
	}

	if err := q.Ack("bank", 2); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack("bank", 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Ack: %v, want ErrNotFound", err)
	}
	if err := q.Ack("bank", 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Ack of another destination's id: %v, want ErrNotFound", err)
	}
	if got, _ := q.Peek("bank", 10); payloads(got) != "1:r1/0 4:r3/0" {
		t.Fatalf("after Ack: %s", payloads(got))
	}
}

func TestQueueUncommittedEnqueueInvisible(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	q := openQueue(t, db, QueueOptions{})
	b := db.NewBatch()
	if _, err := q.Enqueue(b, "bank", []byte("r")); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Peek("bank", 10); len(got) != 0 {
		t.Fatalf("visible before commit: %s", payloads(got))
	}
	b.Close()
	if got, _ := q.Peek("bank", 10); len(got) != 0 {
		t.Fatalf("visible after discard: %s", payloads(got))
	}
}

func TestQueueAttemptsAndDeadLetter(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	clock := &fakeClock{t: time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)}
	q := openQueue(t, db, QueueOptions{MaxAttempts: 3, Now: clock.now})
	ids := enqueue(t, q, db, "bank", "rev")

	for want := 1; want <= 3; want++ {
		m, err := q.Attempt("bank", ids[0])
		if err != nil {
			t.Fatalf("attempt %d: %v", want, err)
		}
		if m.Attempts != want || !m.LastAttempt.Equal(clock.t) || string(m.Payload) != "rev" {
			t.Fatalf("attempt %d: %+v", want, m)
		}
		if got, _ := q.Peek("bank", 1); got[0].Attempts != want {
			t.Fatalf("stored attempts %d, want %d", got[0].Attempts, want)
		}
	}
	// The fourth send is refused and the message dead-lettered.
	if _, err := q.Attempt("bank", ids[0]); !errors.Is(err, ErrAttemptsExhausted) {
		t.Fatalf("attempt 4: %v, want ErrAttemptsExhausted", err)
	}
	if got, _ := q.Peek("bank", 10); len(got) != 0 {
		t.Fatalf("still queued: %s", payloads(got))
	}
	dead, err := q.Dead("bank", 10)
	if err != nil {
		t.Fatal(err)
	}
	if payloads(dead) != "1:rev/3" {
		t.Fatalf("dead: %s", payloads(dead))
	}
	if _, err := q.Attempt("bank", ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("attempt on dead message: %v, want ErrNotFound", err)
	}

	newID, err := q.Requeue("bank", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if newID <= ids[0] {
		t.Fatalf("requeued id %d not above %d", newID, ids[0])
	}
	if got, _ := q.Peek("bank", 10); payloads(got) != fmt.Sprintf("%d:rev/0", newID) {
		t.Fatalf("after requeue: %s", payloads(got))
	}
	if dead, _ := q.Dead("bank", 10); len(dead) != 0 {
		t.Fatalf("dead after requeue: %s", payloads(dead))
	}
	if _, err := q.Requeue("bank", ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second requeue: %v, want ErrNotFound", err)
	}
}

// TestQueueRestart: messages, attempt counts and dead letters survive a
// restart, and new ids continue above every stored one so FIFO order holds.
func TestQueueRestart(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	q := openQueue(t, db, QueueOptions{MaxAttempts: 1})
	enqueue(t, q, db, "a", "a1", "a2")
	enqueue(t, q, db, "b", "b1")
	enqueue(t, q, db, "c", "c1") // id 4, dead-lettered below
	if _, err := q.Attempt("a", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Attempt("c", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Attempt("c", 4); !errors.Is(err, ErrAttemptsExhausted) {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, fs)
	defer db.Close()
	q = openQueue(t, db, QueueOptions{MaxAttempts: 1})
	if got, _ := q.Peek("a", 10); payloads(got) != "1:a1/1 2:a2/0" {
		t.Fatalf("a after restart: %s", payloads(got))
	}
	if got, _ := q.Peek("b", 10); payloads(got) != "3:b1/0" {
		t.Fatalf("b after restart: %s", payloads(got))
	}
	if got, _ := q.Dead("c", 10); payloads(got) != "4:c1/1" {
		t.Fatalf("c dead after restart: %s", payloads(got))
	}
	if ids := enqueue(t, q, db, "a", "a3"); ids[0] != 5 {
		t.Fatalf("first id after restart %d, want 5", ids[0])
	}
	if got, _ := q.Peek("a", 10); payloads(got) != "1:a1/1 2:a2/0 5:a3/0" {
		t.Fatalf("a after enqueue: %s", payloads(got))
	}
}

func TestQueueRejectsInvalid(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	q := openQueue(t, db, QueueOptions{MaxPeek: 5})
	b := db.NewBatch()
	defer b.Close()
	for name, err := range map[string]error{
		"empty dest":     func() error { _, err := q.Enqueue(b, "", []byte("x")); return err }(),
		"long dest":      func() error { _, err := q.Enqueue(b, strings.Repeat("d", maxDestLen+1), []byte("x")); return err }(),
		"empty payload":  func() error { _, err := q.Enqueue(b, "bank", nil); return err }(),
		"long payload":   func() error { _, err := q.Enqueue(b, "bank", make([]byte, MaxPayloadLen+1)); return err }(),
		"peek bad dest":  func() error { _, err := q.Peek("", 1); return err }(),
		"ack bad dest":   q.Ack("", 1),
		"attempt bad":    func() error { _, err := q.Attempt("", 1); return err }(),
		"requeue bad":    func() error { _, err := q.Requeue("", 1); return err }(),
		"dead bad dest":  func() error { _, err := q.Dead("", 1); return err }(),
		"enqueue no bat": func() error { _, err := q.Enqueue(nil, "bank", []byte("x")); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for _, n := range []int{0, 6} {
		if _, err := q.Peek("bank", n); !errors.Is(err, ErrLimit) {
			t.Errorf("Peek %d: %v, want ErrLimit", n, err)
		}
	}
	if b.Count() != 0 {
		t.Fatalf("rejected enqueues left %d operations", b.Count())
	}
	for _, o := range []QueueOptions{{MaxAttempts: -1}, {MaxAttempts: maxMaxAttempts + 1}, {MaxPeek: -1}} {
		if _, err := OpenQueue(db, o); err == nil {
			t.Errorf("OpenQueue %+v succeeded", o)
		}
	}
}
