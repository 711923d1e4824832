package pos

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestAnswerContextEndsAtItsDeadline(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	ctx := newAnswerContext(deadline)
	defer ctx.stop()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
		t.Fatalf("Deadline = %v, %v; want %v, true", d, ok, deadline)
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10 s after a 50 ms deadline")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, Cause = %v; want deadline exceeded", ctx.Err(), context.Cause(ctx))
	}
}

func TestAnswerContextPastDeadline(t *testing.T) {
	ctx := newAnswerContext(time.Now().Add(-time.Second))
	defer ctx.stop()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want deadline exceeded", ctx.Err())
	}
}

// A context stopped before anyone asked for it is canceled, as
// context.WithDeadline's is after its cancel; so is one stopped after.
func TestAnswerContextStop(t *testing.T) {
	for _, asked := range []bool{false, true} {
		ctx := newAnswerContext(time.Now().Add(time.Hour))
		if asked {
			_ = ctx.Done()
		}
		if ctx.stop(); !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("asked %v: Err after stop = %v, want canceled", asked, ctx.Err())
		}
		select {
		case <-ctx.Done():
		default:
			t.Fatalf("asked %v: Done open after stop", asked)
		}
	}
}

// Contexts derived from it end with it, and Done and stop may race.
func TestAnswerContextDerivedAndConcurrent(t *testing.T) {
	ctx := newAnswerContext(time.Now().Add(time.Hour))
	child, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	if d, _ := child.Deadline(); d.After(time.Now().Add(time.Hour)) {
		t.Fatalf("child deadline %v is after its parent's", d)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
		}()
	}
	ctx.stop()
	wg.Wait()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("derived context still open 10 s after its parent was stopped")
	}
	if !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("child Err = %v, want canceled", child.Err())
	}
}
