package admin

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestAdminGuardBounded: failures are tracked for at most adminFailAddrs
// addresses (more share one overflow window), warnings are capped per
// window and say how many were not logged, and windows end.
func TestAdminGuardBounded(t *testing.T) {
	g := newGuard()
	now := time.Unix(1_000_000, 0)
	warned := 0
	for i := 0; i < adminFailAddrs+100; i++ {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if warn, _ := g.fail(ip, now); warn {
			warned++
		}
	}
	if len(g.addrs) != adminFailAddrs {
		t.Fatalf("%d addresses tracked, bound %d", len(g.addrs), adminFailAddrs)
	}
	if warned != WarnsPerWindow {
		t.Fatalf("%d warnings in one window, want %d", warned, WarnsPerWindow)
	}
	// The overflow window took 100 failures: addresses beyond the bound
	// are blocked together.
	if !g.blocked(netip.MustParseAddr("192.0.2.1"), now) {
		t.Fatal("an untracked address while the table is full and the overflow over its limit is not blocked")
	}
	// A new window: the next warning reports what was not logged.
	later := now.Add(adminFailWindow)
	warn, suppressed := g.fail(netip.MustParseAddr("10.0.0.1"), later)
	if !warn || suppressed != adminFailAddrs+100-WarnsPerWindow {
		t.Fatalf("next window: warn %v, not logged %d", warn, suppressed)
	}
	if g.blocked(netip.MustParseAddr("10.0.0.2"), later) {
		t.Fatal("blocked after its window ended")
	}
	// Expired windows make room for new addresses.
	g.fail(netip.MustParseAddr("198.51.100.7"), later)
	if g.addrs[netip.MustParseAddr("198.51.100.7")] == nil {
		t.Fatal("a new address is not tracked once old windows expired")
	}
}

func TestLogPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/api/v1/status", "/api/v1/status"},
		{"/api/v1/cards/6230151000000000012\n", "/api/v1/cards/623015*********0012?"},
		{"/a\x00b\x1bc\x7fd\xffe", "/a?b?c?d?e"},
		{"/" + strings.Repeat("x", 100), "/" + strings.Repeat("x", maxLoggedPath-1) + "...(101 bytes)"},
	} {
		if got := logPath(tt.in); got != tt.want {
			t.Errorf("logPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
