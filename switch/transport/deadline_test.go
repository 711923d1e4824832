package transport

import (
	"net"
	"testing"
	"time"
)

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	reads, writes []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.reads = append(c.reads, t)
	return nil
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.writes = append(c.writes, t)
	return nil
}

// TestDeadlinesReArmedLazily checks armIdle and armWrite: every wait gets
// at least its timeout and at most a sixteenth more, the first-frame
// deadline is set exactly, and a deadline still in that window is not set
// again.
func TestDeadlinesReArmedLazily(t *testing.T) {
	const idle, wt = time.Minute, 5 * time.Second
	a := &Acceptor{cfg: Config{WriteTimeout: wt}}
	dc := &deadlineConn{}
	s := &Session{conn: dc}
	s.policy.firstDeadline = time.Now().Add(time.Second)

	// Until a frame decoded, the first-frame deadline, exactly, each time.
	a.armIdle(s, idle)
	a.armIdle(s, idle)
	if len(dc.reads) != 2 || !dc.reads[0].Equal(s.policy.firstDeadline) || !dc.reads[1].Equal(s.policy.firstDeadline) {
		t.Fatalf("before a valid frame: deadlines %v, want the first-frame deadline %v twice", dc.reads, s.policy.firstDeadline)
	}

	s.policy.gotValid = true
	arm := func(wantSet bool) {
		t.Helper()
		n := len(dc.reads)
		before := time.Now()
		a.armIdle(s, idle)
		after := time.Now()
		if set := len(dc.reads) > n; set != wantSet {
			t.Fatalf("armIdle set a deadline: %v, want %v", set, wantSet)
		}
		if s.readDL.Before(before.Add(idle)) || s.readDL.After(after.Add(idle+idle/deadlineSlack)) {
			t.Fatalf("read deadline %v not within [%v, %v]", s.readDL, before.Add(idle), after.Add(idle+idle/deadlineSlack))
		}
		if got := dc.reads[len(dc.reads)-1]; !got.Equal(s.readDL) {
			t.Fatalf("deadline on the connection %v, recorded %v", got, s.readDL)
		}
	}
	arm(true)  // the first-frame deadline is earlier than the idle wait
	arm(false) // still in the window
	arm(false)
	// A frame's deadline (shorter) came in between: the idle one is set again.
	s.readDL = time.Now().Add(10 * time.Second)
	dc.reads = append(dc.reads, s.readDL)
	arm(true)
	// A sixteenth of the timeout passed: the deadline would end too soon.
	s.readDL = s.readDL.Add(-idle/deadlineSlack - time.Millisecond)
	arm(true)
	// A deadline further out than the window (a longer timeout before a
	// reload) is brought back.
	s.readDL = s.readDL.Add(time.Hour)
	arm(true)

	armW := func(wantSet bool) {
		t.Helper()
		n := len(dc.writes)
		before := time.Now()
		a.armWrite(s)
		after := time.Now()
		if set := len(dc.writes) > n; set != wantSet {
			t.Fatalf("armWrite set a deadline: %v, want %v", set, wantSet)
		}
		if s.writeDL.Before(before.Add(wt)) || s.writeDL.After(after.Add(wt+wt/deadlineSlack)) {
			t.Fatalf("write deadline %v not within [%v, %v]", s.writeDL, before.Add(wt), after.Add(wt+wt/deadlineSlack))
		}
	}
	armW(true)
	armW(false)
	s.writeDL = s.writeDL.Add(-wt/deadlineSlack - time.Millisecond)
	armW(true)
	s.writeDL = s.writeDL.Add(time.Hour)
	armW(true)
}
