package switching

import (
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/transport"
)

// BenchmarkHandleConsume runs approved consumes through the POS
// protocol's Handle in-process, with the real HSM, ledger, journal and
// business clock behind it and no socket: the switch's own work per
// consume, for instruction counts (docs/BENCHMARKS.md). Each iteration
// packs and MACs its request too (the same cost whatever Handle does).
func BenchmarkHandleConsume(b *testing.B) {
	sw, terms, cards := benchTerminals(b, 1)
	proto, err := sw.posProtocol()
	if err != nil {
		b.Fatal(err)
	}
	term := terms[0]
	tpdu := spec.TPDU{0x60, 0x00, 0x01, 0x00, 0x02}
	header := spec.Header{0x60, 0x31, 0x00, 0x31, 0x00, 0x00}
	mac := func(block []byte) ([]byte, error) {
		m, err := term.Keys.MAC(block)
		return m[:], err
	}
	s := &transport.Session{Peer: "127.0.0.1:40000"}
	var frame []byte
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, err := term.Consume(cards[0], 1, "")
		if err != nil {
			b.Fatal(err)
		}
		req.TerminalID, req.MerchantID, req.Reserved60.Batch = term.ID, term.Merchant, term.Batch
		packed, err := spec.EncodePOSWithMAC(req, mac)
		if err != nil {
			b.Fatal(err)
		}
		frame = append(append(append(frame[:0], tpdu[:]...), header[:]...), packed...)
		s.Written = nil
		out, closeAfter := proto.Handle(s, frame)
		if closeAfter || len(out) < 2 {
			b.Fatalf("consume %d: closed %v, answer % X", i, closeAfter, out)
		}
		if s.Written != nil {
			s.Written.Written()
		}
		if i == 0 {
			_, _, msg, err := spec.SplitPOS(out[2:])
			if err != nil {
				b.Fatal(err)
			}
			resp, err := spec.DecodePOS(msg)
			if err != nil || resp.ResponseCode != spec.RCApproved {
				b.Fatalf("consume: %v %v", resp, err)
			}
		}
	}
}
