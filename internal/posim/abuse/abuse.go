// Package abuse is the hostile client of the abuse test: it sends
// malformed POS frames of every kind a broken or malicious peer produces —
// random bytes, bad lengths, bad bitmaps, oversize fields, wrong MACs,
// replays — and holds idle connections, while well-behaved terminals keep
// transacting. Only ever point it at a switch you run yourself on this
// machine.
package abuse

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// Options of an abuse run.
type Options struct {
	Addr string
	// Frames is the number of malformed frames to send.
	Frames int
	// Idle connections to open and hold, sending nothing.
	Idle int
	// Hold is how long the idle connections stay open.
	Hold time.Duration
	// Senders is the number of connections sending frames at once.
	// Default 8.
	Senders int
	// Terminal and Merchant of the demo terminal used for wrong MACs and
	// replays (signed on with TMK), never one of posim's. Defaults: the
	// Partner Cafe demo terminal, 20000001.
	Terminal, Merchant string
	TMK                []byte
	// ReplayCard is the card of the replayed consume (debited once).
	ReplayCard string
	Seed       uint64
}

// Bounds.
const (
	MaxFrames = 10_000_000
	MaxIdle   = 20_000
)

// Result counts what was sent and how the switch reacted.
type Result struct {
	Sent        [numKinds]uint64
	Answered    uint64 // malformed frames that got an answer (a 30, an A0, a replay)
	Closed      uint64 // connections the switch closed on us
	IdleOpened  uint64
	IdleRefused uint64
}

type kind int

const (
	kindRandom kind = iota
	kindBadLength
	kindBadBitmap
	kindOversize
	kindWrongMAC
	kindReplay
	numKinds
)

var kindNames = [numKinds]string{"random_bytes", "bad_length", "bad_bitmap", "oversize_field", "wrong_mac", "replay"}

func (r *Result) String() string {
	s := ""
	for k, n := range r.Sent {
		s += fmt.Sprintf("%s=%d ", kindNames[k], n)
	}
	return s + fmt.Sprintf("answered=%d closed_by_switch=%d idle_opened=%d idle_refused=%d", r.Answered, r.Closed, r.IdleOpened, r.IdleRefused)
}

// Run sends the frames and holds the idle connections at the same time,
// then closes everything.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Frames < 0 || o.Frames > MaxFrames || o.Idle < 0 || o.Idle > MaxIdle {
		return nil, fmt.Errorf("abuse: %d frames, %d idle connections (up to %d, %d)", o.Frames, o.Idle, MaxFrames, MaxIdle)
	}
	if o.Senders <= 0 {
		o.Senders = 8
	}
	if o.Terminal == "" {
		o.Terminal, o.Merchant = "20000001", "898320000000001"
		o.TMK, _ = hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	}
	if o.ReplayCard == "" {
		o.ReplayCard = "6230151000000000020"
	}
	res := &Result{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); holdIdle(ctx, o, res) }()

	signed, err := signedOnFrames(o)
	if err != nil {
		wg.Wait()
		return res, err
	}
	var next atomic.Int64
	var answered, closed atomic.Uint64
	var sent [numKinds]atomic.Uint64
	for s := 0; s < o.Senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(o.Seed, uint64(s)))
			var c net.Conn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for ctx.Err() == nil {
				if next.Add(1) > int64(o.Frames) {
					return
				}
				k := kind(rng.IntN(int(numKinds)))
				frame := build(k, rng, signed)
				if c == nil {
					var derr error
					if c, derr = net.DialTimeout("tcp", o.Addr, 5*time.Second); derr != nil {
						c = nil
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				sent[k].Add(1)
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Write(frame); err != nil {
					closed.Add(1)
					c.Close()
					c = nil
					continue
				}
				// A truncated frame leaves the switch waiting for the rest:
				// it must give up on its own (frame timeout); we do not wait
				// for that, we drop the connection.
				if k == kindBadLength {
					c.Close()
					c = nil
					continue
				}
				_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := spec.ReadFrame(c, nil, spec.MaxFrameLimit); err == nil {
					answered.Add(1)
				} else {
					if !isTimeout(err) {
						closed.Add(1)
					}
					c.Close()
					c = nil
				}
			}
		}()
	}
	wg.Wait()
	for k := range sent {
		res.Sent[k] = sent[k].Load()
	}
	res.Answered, res.Closed = answered.Load(), closed.Load()
	return res, nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// holdIdle opens o.Idle connections, holds them for o.Hold, and closes
// them.
func holdIdle(ctx context.Context, o Options, res *Result) {
	conns := make([]net.Conn, 0, o.Idle)
	for i := 0; i < o.Idle && ctx.Err() == nil; i++ {
		c, err := net.DialTimeout("tcp", o.Addr, 5*time.Second)
		if err != nil {
			res.IdleRefused++
			continue
		}
		conns = append(conns, c)
	}
	res.IdleOpened = uint64(len(conns))
	select {
	case <-ctx.Done():
	case <-time.After(o.Hold):
	}
	for _, c := range conns {
		c.Close()
	}
}

// signed holds real frames of a signed-on demo terminal: a consume to
// replay, and its bytes to corrupt into a wrong MAC.
type signed struct {
	consume []byte
}

func signedOnFrames(o Options) (*signed, error) {
	c, err := posclient.Dial(o.Addr, posclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	t := posclient.NewTerminal(c, o.Terminal, o.Merchant, o.TMK)
	resp, err := t.SignOn()
	if err != nil {
		return nil, fmt.Errorf("abuse: sign on %s: %w", o.Terminal, err)
	}
	if resp.ResponseCode != spec.RCApproved {
		return nil, fmt.Errorf("abuse: sign on %s: rc %s", o.Terminal, resp.ResponseCode)
	}
	req, err := t.Consume(o.ReplayCard, 1, "")
	if err != nil {
		return nil, err
	}
	req.TerminalID, req.MerchantID = t.ID, t.Merchant
	packed, err := spec.EncodePOSWithMAC(req, func(b []byte) ([]byte, error) {
		m, err := t.Keys.MAC(b)
		return m[:], err
	})
	if err != nil {
		return nil, err
	}
	return &signed{consume: spec.AppendPOSFrame(nil, posclient.DefaultTPDU, posclient.DefaultHeader, packed)}, nil
}

// build makes one malformed frame of kind k.
func build(k kind, rng *rand.Rand, s *signed) []byte {
	tpdu, hdr := posclient.DefaultTPDU, posclient.DefaultHeader
	switch k {
	case kindRandom:
		b := make([]byte, 1+rng.IntN(600))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case kindBadLength:
		switch rng.IntN(3) {
		case 0: // declares more than the maximum frame
			return []byte{0xFF, 0xFF, 0x60, 0, 3, 0, 0}
		case 1: // zero length
			return []byte{0, 0}
		default: // declares 300 bytes, sends 20, then hangs up
			b := binary.BigEndian.AppendUint16(nil, 300)
			b = append(b, tpdu[:]...)
			b = append(b, hdr[:]...)
			return append(b, 0x02, 0x00, 0x30, 0x20, 0, 0, 0, 0, 0)
		}
	case kindBadBitmap:
		msg := []byte{0x02, 0x00}
		bm := make([]byte, 8)
		if rng.IntN(2) == 0 {
			bm[0] = 0x80 // secondary bitmap flagged: a format error in this dialect
		} else {
			binary.BigEndian.PutUint64(bm, rng.Uint64()) // fields that are not there
		}
		msg = append(msg, bm...)
		extra := make([]byte, rng.IntN(40))
		for i := range extra {
			extra[i] = byte(rng.Uint32())
		}
		return spec.AppendPOSFrame(nil, tpdu, hdr, append(msg, extra...))
	case kindOversize:
		// Field 2 declared as 99 digits (LL BCD), the bytes to match; or
		// field 62 declared 999 bytes (LLL BCD) in a short frame.
		var msg []byte
		if rng.IntN(2) == 0 {
			msg = []byte{0x02, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x99}
			msg = append(msg, make([]byte, 50)...)
		} else {
			msg = []byte{0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x09, 0x99}
			msg = append(msg, make([]byte, 100)...)
		}
		return spec.AppendPOSFrame(nil, tpdu, hdr, msg)
	case kindWrongMAC:
		b := append([]byte(nil), s.consume...)
		b[len(b)-1-rng.IntN(8)] ^= byte(1 + rng.IntN(255))
		return b
	}
	return append([]byte(nil), s.consume...) // replay
}
