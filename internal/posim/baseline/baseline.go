// Package baseline is the yardstick of `make bench`: the least a POS switch
// on this machine must do per message — read a POS frame (spec framing),
// commit one synced Pebble batch, write the answer — with nothing else. The
// load side does the same terminal work as posim (build, MAC, decode,
// verify the MAC of the answer), so that the ratio switch/baseline measures
// the switch, not a cheaper client.
//
// With Options.Commit = CommitConsume the server commits, instead of the
// frame, a batch shaped as one approved consume's (docs/journal.md, "What
// one consume writes"): the storage floor of a consume, the least the
// switch's synced commit costs on this machine with nothing of the
// switch's own work around it. make bench reports it beside the
// baseline, so that the gap between the switch and the baseline splits
// into what the commit costs and what the switch does.
package baseline

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/terminal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
)

// Server is the baseline echo server: every frame is written to Pebble in
// one synced batch and echoed back with the TPDU's addresses swapped.
type Server struct {
	db     *pebble.DB
	ln     net.Listener
	commit Commit
	seq    atomic.Uint64
	txid   atomic.Uint64
	term   atomic.Uint64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// Commit is what the server commits per frame.
type Commit int

const (
	// CommitFrame commits the frame as one key: the baseline.
	CommitFrame Commit = iota
	// CommitConsume commits four keys of the sizes one approved consume
	// commits (ConsumeShape), their values cut from the frame's bytes so
	// that they compress about as a consume's do.
	CommitConsume
)

// ParseCommit reads a Commit's name: "frame" or "consume".
func ParseCommit(name string) (Commit, error) {
	switch name {
	case "frame":
		return CommitFrame, nil
	case "consume":
		return CommitConsume, nil
	}
	return 0, fmt.Errorf("baseline: commit %q: want frame or consume", name)
}

// ConsumeShape is the size of each key and value of one approved consume's
// commit (docs/journal.md, "What one consume writes"; 385 bytes in all,
// TestConsumeShapeMatchesTheJournalTable keeps the two alike): the journal
// pair `j e` under an appended sequence, the duplicate record `j o` under
// terminal, batch, STAN and date, the card's purses `l b` rewritten in
// place, the posting set `l p` under an appended id.
var ConsumeShape = [4]struct{ Key, Value int }{
	{10, 202}, // j e seq
	{30, 31},  // j o terminal batch stan date
	{21, 32},  // l b card
	{10, 49},  // l p txid
}

// Listen opens Pebble in dir with the ledger's recommended options (the
// switch's own) and listens on addr, committing each frame as one key.
func Listen(addr, dir string) (*Server, error) {
	return ListenCommit(addr, dir, CommitFrame)
}

// ListenCommit is Listen with the shape of what is committed per frame.
func ListenCommit(addr, dir string, commit Commit) (*Server, error) {
	db, err := pebble.Open(dir, ledger.RecommendedPebbleOptions())
	if err != nil {
		return nil, fmt.Errorf("baseline: open storage %s: %w", dir, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("baseline: listen %s: %w", addr, err)
	}
	return &Server{db: db, ln: ln, commit: commit, conns: make(map[net.Conn]struct{})}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve accepts until Close.
func (s *Server) Serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.handle(c)
	}
}

func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReaderSize(c, 4096)
	var buf, out []byte
	var key [8]byte
	var shaped consumeKeys
	shaped.init(s.term.Add(1))
	for {
		body, err := spec.ReadFrame(br, buf, spec.DefaultMaxFrame)
		if err != nil {
			return
		}
		buf = body[:0]
		t, h, msg, err := spec.SplitPOS(body)
		if err != nil {
			return
		}
		b := s.db.NewBatch()
		if s.commit == CommitConsume {
			shaped.fill(b, s.seq.Add(1), s.txid.Add(1), body)
		} else {
			binary.BigEndian.PutUint64(key[:], s.seq.Add(1))
			_ = b.Set(key[:], body, nil)
		}
		err = b.Commit(pebble.Sync)
		_ = b.Close()
		if err != nil {
			return
		}
		out = spec.AppendPOSFrame(out[:0], t.Reply(), h, msg)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// consumeKeys builds one connection's consume-shaped batches: the
// connection is one terminal (an 8-digit id, batch 000001, STAN counting
// up) presenting two cards in turn, as posim's provisioned terminals do.
type consumeKeys struct {
	terminal uint64
	stan     uint64
	keys     [4][]byte
	value    []byte
}

func (k *consumeKeys) init(terminal uint64) {
	k.terminal = terminal
	for i, sh := range ConsumeShape {
		k.keys[i] = make([]byte, sh.Key)
	}
	k.keys[0][0], k.keys[0][1] = 'j', 'e'
	k.keys[3][0], k.keys[3][1] = 'l', 'p'
	copy(k.keys[1], fmt.Sprintf("jo%08d000001000000%s", terminal%100_000_000, time.Now().Format("20060102")))
	copy(k.keys[2], "lb623015")
}

// putDigits writes v in decimal into all of dst, zero-padded on the left
// (the digits beyond dst's length dropped).
func putDigits(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// fill sets the four keys in b: the sequence and the posting id appended,
// the duplicate record under the next STAN, the purse of one of the
// terminal's two cards; each value is cut from the frame's bytes, repeated
// where the frame is shorter.
func (k *consumeKeys) fill(b *pebble.Batch, seq, txid uint64, frame []byte) {
	k.stan = k.stan%999_999 + 1
	binary.BigEndian.PutUint64(k.keys[0][2:], seq)
	binary.BigEndian.PutUint64(k.keys[3][2:], txid)
	putDigits(k.keys[1][16:22], k.stan)
	putDigits(k.keys[2][8:], 2*k.terminal+k.stan%2)
	for i, sh := range ConsumeShape {
		k.value = k.value[:0]
		for len(k.value) < sh.Value {
			k.value = append(k.value, frame[:min(len(frame), sh.Value-len(k.value))]...)
		}
		_ = b.Set(k.keys[i], k.value, nil)
	}
}

// Close stops accepting, closes every connection and the storage.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return errors.Join(err, s.db.Close())
}

// localKeys makes working keys the way a sign-on delivers them (field 62,
// mode 003, under a random TMK), so the load side MACs with real keys.
func localKeys() (*terminal.WorkingKeys, error) {
	tmk, pik, mak := make([]byte, 16), make([]byte, 16), make([]byte, 8)
	for _, k := range [][]byte{tmk, pik, mak} {
		if _, err := io.ReadFull(rand.Reader, k); err != nil {
			return nil, err
		}
	}
	tb, err := blockcipher.New(blockcipher.TDES, tmk)
	if err != nil {
		return nil, err
	}
	f62 := make([]byte, 0, 40)
	for _, k := range []struct {
		alg blockcipher.Algorithm
		key []byte
	}{{blockcipher.TDES, pik}, {blockcipher.DES, mak}} {
		enc, err := blockcipher.EncryptECB(tb, k.key)
		if err != nil {
			return nil, err
		}
		cv, err := blockcipher.CheckBlock(k.alg, k.key)
		if err != nil {
			return nil, err
		}
		f62 = append(f62, enc...)
		if len(k.key) == 8 {
			f62 = append(f62, make([]byte, 8)...)
		}
		f62 = append(f62, cv[:4]...)
	}
	return terminal.ParseField62(tmk, spec.SignOnDoubleDES, f62)
}
