// Package baseline is the yardstick of `make bench`: the least a POS switch
// on this machine must do per message — read a POS frame (spec framing),
// commit one synced Pebble batch, write the answer — with nothing else. The
// load side does the same terminal work as posim (build, MAC, decode,
// verify the MAC of the answer), so that the ratio switch/baseline measures
// the switch, not a cheaper client.
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

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/terminal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
)

// Server is the baseline echo server: every frame is written to Pebble in
// one synced batch and echoed back with the TPDU's addresses swapped.
type Server struct {
	db    *pebble.DB
	ln    net.Listener
	seq   atomic.Uint64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Listen opens Pebble in dir with the ledger's recommended options (the
// switch's own) and listens on addr.
func Listen(addr, dir string) (*Server, error) {
	db, err := pebble.Open(dir, ledger.RecommendedPebbleOptions())
	if err != nil {
		return nil, fmt.Errorf("baseline: open storage %s: %w", dir, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("baseline: listen %s: %w", addr, err)
	}
	return &Server{db: db, ln: ln, conns: make(map[net.Conn]struct{})}, nil
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
		binary.BigEndian.PutUint64(key[:], s.seq.Add(1))
		_ = b.Set(key[:], body, nil)
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
