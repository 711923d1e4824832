package posclient

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/spec"
)

// TestNextSTANSameAsSprintf holds the trace numbers to the %06d they were
// formatted with, through a whole cycle and its wrap to 000001.
func TestNextSTANSameAsSprintf(t *testing.T) {
	var term Terminal
	for i := uint32(1); i <= 1000001; i++ {
		want := fmt.Sprintf("%06d", (i-1)%999999+1)
		if got := term.NextSTAN(); got != want {
			t.Fatalf("STAN %d: %q, want %q", i, got, want)
		}
	}
}

// TestLocalStampSameAsFormat: fields 12 and 13 of every request are the
// clock's time and date as Format writes them, whether the second is the
// one of the request before or not, across midnight, a year's end and a
// change of zone.
func TestLocalStampSameAsFormat(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	now := time.Date(2025, 12, 31, 23, 59, 58, 0, cst)
	term := NewTerminal(nil, "10000001", "898310000000001", nil)
	term.SetClock(func() time.Time { return now })
	steps := []time.Duration{0, 100 * time.Millisecond, 999 * time.Millisecond, time.Second, 3 * time.Hour, time.Nanosecond}
	for i := 0; i < 5000; i++ {
		now = now.Add(steps[i%len(steps)])
		if i%700 == 0 {
			now = now.In(time.UTC) // the same instant in another zone
		} else if i%700 == 350 {
			now = now.In(cst)
		}
		m := term.base(spec.MTIFinancialRequest, "000000", "00", "22")
		if m.LocalTime != now.Format("150405") || m.LocalDate != now.Format("0102") {
			t.Fatalf("at %s: %s %s", now, m.LocalTime, m.LocalDate)
		}
	}
}

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error { c.set = append(c.set, t); return nil }
func (c *deadlineConn) Write(p []byte) (int, error)   { return len(p), nil }
func (c *deadlineConn) Read(p []byte) (int, error)    { return 0, io.EOF }

// TestArmOncePerExchange: Send arms the deadline for its exchange (the
// Receive after it does not arm again), between Timeout and 17/16 of it
// from the Send; exchanges within a sixteenth of Timeout keep it; a
// Receive alone arms its own.
func TestArmOncePerExchange(t *testing.T) {
	const timeout = 16 * time.Second
	conn := &deadlineConn{}
	c := NewClient(conn, Options{Timeout: timeout})
	req := &spec.POSMessage{MTI: spec.MTINetworkManagement, STAN: "000001", TerminalID: "10000001",
		Reserved60: spec.Field60{Type: "00", Batch: "000001", NetworkCode: spec.NetworkSignOff}}
	before := time.Now()
	if err := c.Send(req, nil); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if len(conn.set) != 1 {
		t.Fatalf("Send set %d deadlines, want 1", len(conn.set))
	}
	if d := conn.set[0]; d.Before(before.Add(timeout)) || d.After(after.Add(timeout+timeout/16)) {
		t.Fatalf("deadline %s after the Send, want %s..%s", d.Sub(before), timeout, timeout+timeout/16)
	}
	c.sent = false // the Receive of that exchange, as if answered
	if err := c.Send(req, nil); err != nil {
		t.Fatal(err)
	}
	if len(conn.set) != 1 {
		t.Fatalf("a Send within a sixteenth of Timeout set the deadline again")
	}
	c.rearmAt = time.Now().Add(-time.Nanosecond) // a sixteenth of Timeout on
	c.sent = false
	if _, err := c.Receive(); err == nil {
		t.Fatal("Receive on a connection without data succeeded")
	}
	if len(conn.set) != 2 {
		t.Fatalf("a Receive alone after the slack set %d deadlines, want 2", len(conn.set))
	}
	if c.sent {
		t.Fatal("Receive left the exchange marked sent")
	}
}
