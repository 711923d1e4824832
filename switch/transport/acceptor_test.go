package transport

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeConn is a net.Conn with a given remote address and nothing else.
type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (f fakeConn) RemoteAddr() net.Addr { return f.remote }

func TestPeerIP(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	cases := []struct {
		name   string
		remote net.Addr
		want   string
	}{
		{"IPv4", tcp("192.0.2.7:40001"), "192.0.2.7"},
		{"IPv4, another port", tcp("192.0.2.7:40002"), "192.0.2.7"},
		{"IPv4-mapped IPv6", tcp("[::ffff:192.0.2.7]:40003"), "192.0.2.7"},
		{"IPv6", tcp("[2001:db8::7]:40004"), "2001:db8::7"},
		{"not a TCPAddr", &net.UnixAddr{Name: "@x", Net: "unix"}, "invalid IP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := peerIP(fakeConn{remote: tc.remote}).String(); got != tc.want {
				t.Fatalf("peerIP(%v) = %s, want %s", tc.remote, got, tc.want)
			}
		})
	}
}

// The per-peer count of an address comes back down to nothing: the map
// holds no more entries than there are connections.
func TestPeerCountsBounded(t *testing.T) {
	a := New("pos", Config{MaxConnections: 10, MaxConnectionsPerPeer: 2}, nil, zap.NewNop(), Metrics{})
	x, y := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	steps := []struct {
		name    string
		acquire bool // false: release
		ip      netip.Addr
		ok      bool // acquire's answer
		entries int
	}{
		{"x first", true, x, true, 1},
		{"x second", true, x, true, 1},
		{"x third refused", true, x, false, 1},
		{"y first", true, y, true, 2},
		{"x releases one", false, x, true, 2},
		{"x again", true, x, true, 2},
		{"y releases its last", false, y, true, 1},
		{"x releases one", false, x, true, 1},
		{"x releases its last", false, x, true, 0},
	}
	for _, st := range steps {
		ok := true
		if st.acquire {
			ok = a.acquirePeer(st.ip)
		} else {
			a.releasePeer(st.ip)
		}
		if ok != st.ok || a.PeerEntries() != st.entries {
			t.Fatalf("%s: ok %v, %d entries; want %v, %d", st.name, ok, a.PeerEntries(), st.ok, st.entries)
		}
	}
}

// Trusted networks: the most specific one holding an address sets its
// connection allowance, which only raises the per-address limit, and the
// address's budget of unauthenticated messages grows with it.
func TestPolicyTrustedNetworks(t *testing.T) {
	p := newConnPolicy(Config{
		MaxConnectionsPerPeer:    10,
		UnauthenticatedPerSecond: 100,
		TrustedNetworks:          map[string]int{"10.0.0.0/8": 2000, "10.1.0.0/16": 50, "192.168.0.0/16": 5, "::1/128": 300},
	})
	for ip, want := range map[string]int{
		"10.2.3.4": 2000, "10.1.2.3": 50, // the most specific network applies
		"192.168.1.1": 10, // an allowance only raises the limit
		"172.16.0.1":  10, "::1": 300,
	} {
		if got := p.peerLimit(netip.MustParseAddr(ip)); got != want {
			t.Errorf("peerLimit(%s) = %d, want %d", ip, got, want)
		}
	}
	// A trusted address's unauthenticated budget grows with its allowance:
	// 100/s x 2000/10, bursts of twice that.
	now := time.Now()
	n := 0
	for p.allowUnauthenticated(netip.MustParseAddr("10.2.3.4"), now) {
		n++
	}
	if n != 40000 {
		t.Errorf("burst of a 2000-connection address: %d, want 40000", n)
	}
	n = 0
	for p.allowUnauthenticated(netip.MustParseAddr("172.16.0.1"), now) {
		n++
	}
	if n != 200 {
		t.Errorf("burst of an ordinary address: %d, want 200", n)
	}
}

// frameBuffered is true only once the length prefix and the whole body
// it announces are in the reader's buffer.
func TestFrameBuffered(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"one byte", []byte{0}, false},
		{"prefix only", []byte{0, 4}, false},
		{"part of the body", []byte{0, 4, 1, 2, 3}, false},
		{"whole frame", []byte{0, 4, 1, 2, 3, 4}, true},
		{"whole frame and the next's head", []byte{0, 4, 1, 2, 3, 4, 0}, true},
		{"empty body", []byte{0, 0}, true},
		{"length past the buffer", []byte{0xff, 0xff, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(bytes.NewReader(tc.in), 16)
			if _, err := br.Peek(1); err != nil {
				t.Fatal(err)
			}
			if got := frameBuffered(br); got != tc.want {
				t.Fatalf("frameBuffered(% x) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
