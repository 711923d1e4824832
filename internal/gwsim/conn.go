package gwsim

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// conn is one link connection from the switch.
type conn struct {
	net.Conn
	peer     string
	wmu      sync.Mutex
	signedOn bool // guarded by Sim.mu
}

func (c *conn) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	_, err := c.Conn.Write(frame)
	return err
}

func (s *Sim) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("gwsim accept failed", zap.Error(err))
			time.Sleep(50 * time.Millisecond)
			continue
		}
		c := &conn{Conn: nc, peer: nc.RemoteAddr().String()}
		s.mu.Lock()
		full := len(s.conns) >= s.opts.MaxConns
		if !full {
			s.conns[nc] = c
			s.stats.Connections++
		}
		s.mu.Unlock()
		if full {
			s.log.Warn("gwsim connection refused: too many connections", zap.String("peer", c.peer), zap.Int("max", s.opts.MaxConns))
			nc.Close()
			continue
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

// serve reads requests one at a time and processes each before reading
// the next, so a reversal never overtakes its original on one connection.
// Answers leave at once, or after the injected delay from their own
// goroutine.
func (s *Sim) serve(c *conn) {
	defer s.wg.Done()
	var pending sync.WaitGroup
	defer func() {
		pending.Wait()
		c.Close()
		s.mu.Lock()
		delete(s.conns, c.Conn)
		s.mu.Unlock()
		s.log.Info("gwsim connection closed", zap.String("peer", c.peer))
	}()
	s.log.Info("gwsim connection", zap.String("peer", c.peer))
	buf := make([]byte, maxFrame)
	read := 0
	for {
		if err := c.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
			return
		}
		body, err := spec.ReadFrame(c, buf, maxFrame)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Info("gwsim read ended", zap.String("peer", c.peer), zap.Error(err))
			}
			return
		}
		read++
		out := s.handle(c, append([]byte(nil), body...))
		if out.frame != nil && !out.drop {
			if out.delay > 0 {
				pending.Add(1)
				go func(frame []byte, d time.Duration) {
					defer pending.Done()
					t := time.NewTimer(d)
					defer t.Stop()
					select {
					case <-t.C:
						if err := c.write(frame); err != nil {
							s.log.Info("gwsim delayed answer not sent", zap.String("peer", c.peer), zap.Error(err))
						}
					case <-s.done:
					}
				}(out.frame, out.delay)
			} else if err := c.write(out.frame); err != nil {
				s.log.Info("gwsim write failed", zap.String("peer", c.peer), zap.Error(err))
				return
			}
		}
		if out.disconnectAfter > 0 && read >= out.disconnectAfter {
			s.mu.Lock()
			s.stats.Disconnects++
			s.mu.Unlock()
			s.log.Info("gwsim disconnecting (injected)", zap.String("peer", c.peer), zap.Int("messages", read))
			return
		}
	}
}
