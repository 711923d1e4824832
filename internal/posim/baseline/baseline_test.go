package baseline

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// startServer starts a baseline server on a loopback port and a temp
// directory, closed when the test ends.
func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestBaselineEchoes(t *testing.T) {
	s := startServer(t)
	res, err := Load(context.Background(), s.Addr(), 4, 300*time.Millisecond, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Every echo decoded, carried the request's STAN and a MAC that
	// verified under the terminal's MAK; and every frame was committed.
	if res.Errors != 0 || res.Approved == 0 || res.Latency.Count() != res.Approved {
		t.Fatalf("%s", res.Summary())
	}
	if got := s.seq.Load(); got < res.Approved {
		t.Fatalf("%d frames committed for %d echoes", got, res.Approved)
	}
	if _, err := Load(context.Background(), s.Addr(), 0, time.Second, 0, 0); err == nil {
		t.Fatal("0 connections accepted")
	}
	if _, err := Load(context.Background(), s.Addr(), 4, time.Second, -1, 0); err == nil {
		t.Fatal("a negative rate accepted")
	}
}

func TestBaselineFixedRate(t *testing.T) {
	s := startServer(t)
	// 200/s for 0.6 s is 120 sends, give or take the last tick; closed
	// loop on 4 connections would do thousands, so the pacing shows.
	res, err := Load(context.Background(), s.Addr(), 4, 600*time.Millisecond, 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The pacer's own count (sent + missed ticks) shows the pacing; how
	// many ticks a loaded machine misses measures the machine, not the
	// pacer, so it is not checked. A closed loop would send thousands.
	sent := res.Approved + res.Missed
	if res.Errors != 0 || sent < 100 || sent > 130 || res.Approved > 130 {
		t.Fatalf("200/s for 0.6 s: %s missed %d", res.Summary(), res.Missed)
	}
}
