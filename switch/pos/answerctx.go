package pos

import (
	"context"
	"sync"
	"time"
)

// answerContext is the context a destination runs under: it ends at the
// request's answer deadline, like context.WithDeadline, but makes its
// timer and channel only when something asks for Done, Err or AfterFunc.
// The local destination never does, and a consume then costs no timer
// (docs/BENCHMARKS.md#where-the-time-goes). Deadline needs nothing.
type answerContext struct {
	deadline time.Time
	once     sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
}

func newAnswerContext(deadline time.Time) *answerContext {
	return &answerContext{deadline: deadline}
}

// stoppedContext is what an answerContext becomes when it is stopped
// before anything asked for it: canceled, as a context.WithDeadline is
// after its cancel.
var stoppedContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (c *answerContext) inner() context.Context {
	c.once.Do(func() { c.ctx, c.cancel = context.WithDeadline(context.Background(), c.deadline) })
	return c.ctx
}

// stop releases the context's timer, if it has one, and ends the context
// (the cancel of context.WithDeadline).
func (c *answerContext) stop() {
	c.once.Do(func() { c.ctx = stoppedContext })
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *answerContext) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *answerContext) Done() <-chan struct{}       { return c.inner().Done() }
func (c *answerContext) Err() error                  { return c.inner().Err() }
func (c *answerContext) Value(any) any               { return nil } // as context.Background's

// AfterFunc lets contexts derived from this one follow it without a
// goroutine each (the context package looks for this method).
func (c *answerContext) AfterFunc(f func()) func() bool { return context.AfterFunc(c.inner(), f) }

func (c *answerContext) String() string { return "pos.answerContext" }
