package transport

import (
	"net/netip"
	"sort"
)

// TerminalConns is a proved terminal's open connections and the
// addresses they come from.
type TerminalConns struct {
	Terminal string
	Peers    []netip.Addr
}

// NetworkConns is the number of open connections from one source network
// (/24 for IPv4, /64 for IPv6).
type NetworkConns struct {
	Network     netip.Prefix
	Connections int
}

// ConnSnapshot lists the acceptor's connections by proved terminal and by
// source network, largest first, at most maxTerminals and maxNetworks of
// each.
func (a *Acceptor) ConnSnapshot(maxTerminals, maxNetworks int) ([]TerminalConns, []NetworkConns) {
	terms := []TerminalConns{}
	a.pol.termMu.Lock()
	for id, list := range a.pol.terms {
		tc := TerminalConns{Terminal: id, Peers: make([]netip.Addr, 0, len(list))}
		for _, s := range list {
			tc.Peers = append(tc.Peers, s.policy.ip)
		}
		terms = append(terms, tc)
	}
	a.pol.termMu.Unlock()
	sort.Slice(terms, func(i, j int) bool {
		if len(terms[i].Peers) != len(terms[j].Peers) {
			return len(terms[i].Peers) > len(terms[j].Peers)
		}
		return terms[i].Terminal < terms[j].Terminal
	})
	if len(terms) > maxTerminals {
		terms = terms[:maxTerminals]
	}
	nets := map[netip.Prefix]int{}
	a.peersMu.Lock()
	for ip, n := range a.peers {
		bits := 24
		if !ip.Unmap().Is4() {
			bits = 64
		}
		p, _ := ip.Unmap().Prefix(bits)
		nets[p] += n
	}
	a.peersMu.Unlock()
	out := []NetworkConns{}
	for p, n := range nets {
		out = append(out, NetworkConns{Network: p, Connections: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Connections != out[j].Connections {
			return out[i].Connections > out[j].Connections
		}
		return out[i].Network.String() < out[j].Network.String()
	})
	if len(out) > maxNetworks {
		out = out[:maxNetworks]
	}
	return terms, out
}

// PeerEntries is how many remote addresses the acceptor is counting
// connections of (no more than there are connections being served).
func (a *Acceptor) PeerEntries() int {
	a.peersMu.Lock()
	defer a.peersMu.Unlock()
	return len(a.peers)
}
