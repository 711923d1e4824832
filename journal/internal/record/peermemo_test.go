package record

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// ipv4PeerRef is ipv4PeerOf without the memo: the reference parser's
// answer in the stored form.
func ipv4PeerRef(peer string) (enc [6]byte, ok bool) {
	a, port, ok := parseIPv4PortRef(peer)
	if !ok {
		return enc, false
	}
	copy(enc[:4], a[:])
	binary.BigEndian.PutUint16(enc[4:], port)
	return enc, true
}

// peerSamples: IPv4 peers that print back the same and strings that
// do not (leading zeros, octet or port too large, too long for the
// memo, differing only past a memo word or in length), each often
// repeated by the callers.
func peerSamples(rng *rand.Rand) []string {
	peers := []string{"", "127.0.0.1:56020", "127.0.0.1:5602", "127.0.0.1:560200", "0.0.0.0:0", "255.255.255.255:65535",
		"255.255.255.255:65536", "255.255.255.255:6553", "01.2.3.4:5", "1.2.3.4:05", "256.0.0.1:1", "1.2.3.4",
		"[::1]:8583", "host:1", "1.2.3.4:5", "1.2.3.4:5\x00", "1.2.3.4:5\x00\x00\x00", "10.0.0.1:1234", "10.0.0.1:1234\x00"}
	for range 500 {
		peers = append(peers, fmt.Sprintf("%d.%d.%d.%d:%d", rng.IntN(300), rng.IntN(300), rng.IntN(300), rng.IntN(300), rng.IntN(70000)))
	}
	return peers
}

// TestIPv4PeerMemo: ipv4PeerOf with its memo of the last peer answers
// as the reference parser does, for peers in random order; appendPeer
// gives the reference encoder's bytes.
func TestIPv4PeerMemo(t *testing.T) {
	peerMemo = ipv4Memo{}
	rng := rand.New(rand.NewPCG(15, 16))
	peers := peerSamples(rng)
	for range 100000 {
		s := peers[rng.IntN(len(peers))]
		if rng.IntN(4) != 0 {
			s = peers[rng.IntN(20)] // hot peers, hits and misses between them
		}
		got, gok := ipv4PeerOf(s)
		want, wok := ipv4PeerRef(s)
		if got != want || gok != wok {
			t.Fatalf("ipv4PeerOf(%q) = %v, %v; the reference %v, %v", s, got, gok, want, wok)
		}
		if b, r := appendPeer(nil, s), appendPeerRef(nil, s); string(b) != string(r) {
			t.Fatalf("appendPeer(%q) = %x, the reference %x", s, b, r)
		}
	}
}

// TestIPv4PeerMemoConcurrent: goroutines each on their own peers (as
// connections are) and some on shared ones all get the reference's
// answer while they overwrite one another's memo; run it with -race.
func TestIPv4PeerMemoConcurrent(t *testing.T) {
	peerMemo = ipv4Memo{}
	peers := peerSamples(rand.New(rand.NewPCG(17, 18)))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 19))
			own := peers[20+g*10 : 30+g*10]
			for range 20000 {
				s := own[rng.IntN(len(own))]
				if rng.IntN(3) == 0 {
					s = peers[rng.IntN(20)]
				}
				got, gok := ipv4PeerOf(s)
				want, wok := ipv4PeerRef(s)
				if got != want || gok != wok {
					errs <- fmt.Errorf("ipv4PeerOf(%q) = %v, %v; the reference %v, %v", s, got, gok, want, wok)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
