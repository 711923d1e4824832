// Package transport is the switch's TCP side: acceptors, the 2-byte
// length framing, shutdown and the connection policy (limits per address,
// per terminal and overall, first-frame deadline, the rate of messages
// that prove nothing). It knows nothing of the messages inside a frame:
// the protocol an acceptor serves (Protocol) owns those.
package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Protocol is what an acceptor speaks on its connections. The acceptor
// owns the socket discipline (limits, deadlines, framing, shutdown); the
// protocol owns the bytes inside a frame.
type Protocol interface {
	// Handle processes one whole frame body (the bytes after the 2-byte
	// length) and returns the whole response frame to write, length
	// prefix included, or nil to write nothing. closeAfter asks the acceptor to close the connection once
	// the response is written.
	Handle(s *Session, body []byte) (resp []byte, closeAfter bool)
	// FormatError builds the format-error (30) response frame to a frame
	// that could not be read whole, from the head of it that did arrive;
	// nil when too little arrived to answer at all.
	FormatError(s *Session, head []byte) []byte
}

// Config bounds one acceptor (the switch's listener configuration,
// docs/operations.md "Connection policy"); it is validated by its owner.
type Config struct {
	Addr                      string
	MaxConnections            int
	MaxConnectionsPerPeer     int
	TrustedNetworks           map[string]int // CIDR -> connections
	FirstFrameTimeout         time.Duration
	MaxConnectionsPerTerminal int
	UnauthenticatedPerSecond  int
	MaxFrame                  int
	IdleTimeout               time.Duration
	FrameTimeout              time.Duration
	WriteTimeout              time.Duration
}

// Metrics are the series an acceptor counts into, labelled by listener
// name: open connections, and connections closed or frames refused
// before processing (by reason).
type Metrics struct {
	Connections *prometheus.GaugeVec   // listener
	Rejected    *prometheus.CounterVec // listener, reason
}

// WriteObserver is told when a response has been written (Session.Written).
type WriteObserver interface{ Written() }

// Session is one connection's state. It is owned by the connection's
// goroutine; only the acceptor's shutdown touches it from outside, through
// the net.Conn. The protocol reads Peer and sets the exported fields
// during Handle.
type Session struct {
	listener string
	conn     net.Conn
	// Peer is the remote address, host:port.
	Peer string
	// Terminal is the terminal ID of the last message decoded on this
	// connection, for logs.
	Terminal string
	// Written, when the protocol sets it during handle, is told once the
	// response has been written (the latency histogram ends there). An
	// interface, not a func: the protocol's per-request state implements
	// it without a closure allocated per message.
	Written WriteObserver
	// Unauthenticated, set by the protocol during handle, says the frame
	// came with nothing that proves a terminal sent it (an echo test, a
	// frame that did not decode, a request refused before its MAC was
	// verified): it is counted, not journaled, and rate limited per
	// address (docs/security.md).
	Unauthenticated bool
	// Undecodable, set by the protocol during handle, says the frame did
	// not decode; until one does, the first-frame deadline stands.
	Undecodable bool
	// policy is the connection policy's state of this connection
	// (connpolicy.go).
	policy connState
	// Out is the connection's response buffer, for the protocol to build
	// its responses in: a response is written before the next request is
	// read, so one buffer serves them all.
	Out []byte
	// readDL and writeDL are the deadlines last set on conn (armIdle,
	// armWrite).
	readDL, writeDL time.Time
}

// IP is the remote IP address, IPv4-mapped IPv6 addresses unmapped.
func (s *Session) IP() netip.Addr { return s.policy.ip }

// Listener is the name of the acceptor that accepted the connection.
func (s *Session) Listener() string { return s.listener }

// Acceptor is a lean TCP server: one goroutine per connection, one request
// at a time per connection (terminals wait for each answer), every input
// bounded. It does not use iso8583-connection: that costs about 45 µs of
// CPU per message here, a third of the budget.
type Acceptor struct {
	name    string
	cfg     Config
	proto   Protocol
	log     *zap.Logger
	metrics Metrics

	ln      net.Listener
	slots   chan struct{} // one token per connection being served
	closing atomic.Bool

	// peers counts the connections being served per remote IP address,
	// against cfg.MaxConnectionsPerPeer. An entry goes when its count
	// reaches zero, so the map never holds more entries than there are
	// connections being served.
	peersMu sync.Mutex
	peers   map[netip.Addr]int

	lastRefusalLog atomic.Int64 // unix nanoseconds of the last refusal warning

	pol *connPolicy // trusted networks, terminals, unauthenticated rate (connpolicy.go)
	// sourceAllowed, when set, says whether a connection from an address
	// is served at all.
	sourceAllowed func(netip.Addr) bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// New builds an acceptor named name (the listener label of its metrics
// and logs) serving p; Listen and Serve start it.
func New(name string, cfg Config, p Protocol, log *zap.Logger, m Metrics) *Acceptor {
	return &Acceptor{
		name:    name,
		cfg:     cfg,
		proto:   p,
		log:     log.With(zap.String("listener", name)),
		metrics: m,
		slots:   make(chan struct{}, cfg.MaxConnections),
		peers:   make(map[netip.Addr]int),
		pol:     newConnPolicy(cfg),
		conns:   make(map[net.Conn]struct{}),
	}
}

// SetSourceAllowed makes the acceptor serve a connection only when
// allowed says so of its remote address; others are closed at connect and
// counted (address_not_allowed). Call it before Serve.
func (a *Acceptor) SetSourceAllowed(allowed func(netip.Addr) bool) { a.sourceAllowed = allowed }

// Listen binds the address; Serve must follow (or Close).
func (a *Acceptor) Listen() error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return err
	}
	a.ln = ln
	return nil
}

// Addr is the bound address (useful when the configured port is 0).
func (a *Acceptor) Addr() string { return a.ln.Addr().String() }

// Listening says whether Listen has bound the address.
func (a *Acceptor) Listening() bool { return a.ln != nil }

// Close releases the bound address of an acceptor that will not serve
// (a later listener of the daemon failed to bind).
func (a *Acceptor) Close() error { return a.ln.Close() }

// Serve accepts until shutdown. Accept errors other than the listener
// being closed are logged and retried after a short pause: running out of
// file descriptors must not stop the switch for good.
func (a *Acceptor) Serve() {
	a.wg.Add(1)
	defer a.wg.Done()
	var backoff time.Duration
	for {
		c, err := a.ln.Accept()
		if err != nil {
			if a.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			a.log.Warn("accept failed", zap.Error(err), zap.Duration("retry_in", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		ip := peerIP(c)
		if a.sourceAllowed != nil && !a.sourceAllowed(ip) {
			// Not an allowed source (docs/recharge.md): refused at
			// connect, counted.
			a.metrics.Rejected.WithLabelValues(a.name, "address_not_allowed").Inc()
			_ = c.Close()
			continue
		}
		select {
		case a.slots <- struct{}{}:
		default:
			// Over the connection limit: close at once rather than let
			// the connection sit unserved.
			a.refuseConn(c, ip, "connection_limit")
			continue
		}
		if !a.acquirePeer(ip) {
			// Over the per-peer limit: closed at once in the same
			// way, so that one host cannot hold every slot.
			<-a.slots
			a.refuseConn(c, ip, "peer_connection_limit")
			continue
		}
		if !a.track(c) {
			a.releasePeer(ip)
			<-a.slots
			_ = c.Close()
			return
		}
		a.wg.Add(1)
		go a.serveConn(c, ip)
	}
}

// refusalLogEvery bounds the warnings about refused connections: a host
// hammering a full listener must not flood the log.
const refusalLogEvery = time.Minute

// refuseConn counts a connection over a limit under reason, warns at most
// once per refusalLogEvery per listener, so the operator sees in the log
// that terminals are being turned away (and from where) and not only in
// switch_rejected_total, and then closes it: a client that has seen the
// close finds the refusal counted.
func (a *Acceptor) refuseConn(c net.Conn, ip netip.Addr, reason string) {
	a.refusal(ip, reason)
	_ = c.Close()
}

// peerIP is the remote IP address of c, IPv4-mapped IPv6 addresses
// unmapped, so that one host counts once whichever way it arrives.
func peerIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap() // the zero Addr, shared, if it does not parse
}

// acquirePeer counts one more connection of ip; false, counting nothing,
// when ip already holds its limit (MaxConnectionsPerPeer, or its trusted
// network's allowance).
func (a *Acceptor) acquirePeer(ip netip.Addr) bool {
	a.peersMu.Lock()
	defer a.peersMu.Unlock()
	n := a.peers[ip]
	if n >= a.pol.peerLimit(ip) {
		return false
	}
	a.peers[ip] = n + 1
	return true
}

// releasePeer counts one connection of ip less, dropping the entry at zero.
func (a *Acceptor) releasePeer(ip netip.Addr) {
	a.peersMu.Lock()
	defer a.peersMu.Unlock()
	if n := a.peers[ip]; n > 1 {
		a.peers[ip] = n - 1
	} else {
		delete(a.peers, ip)
	}
}

// track registers a connection; false once shutdown has begun.
func (a *Acceptor) track(c net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing.Load() {
		return false
	}
	a.conns[c] = struct{}{}
	return true
}

func (a *Acceptor) untrack(c net.Conn) {
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
}

// errFrameTooLarge and errPeerGone classify why a frame was not read.
var (
	errFrameTooLarge = errors.New("frame exceeds the configured maximum")
	errFrameTooShort = errors.New("frame length below the minimum")
)

// minFrame is the smallest body worth reading: a TPDU and header and an
// MTI. Shorter declared lengths cannot be a message of either dialect.
const minFrame = 4

func (a *Acceptor) serveConn(c net.Conn, ip netip.Addr) {
	defer a.wg.Done()
	defer func() { <-a.slots }()
	defer a.releasePeer(ip)
	defer a.untrack(c)
	defer c.Close()

	gauge := a.metrics.Connections.WithLabelValues(a.name)
	gauge.Inc()
	defer gauge.Dec()

	s := &Session{listener: a.name, conn: c, Peer: c.RemoteAddr().String()}
	s.policy.ip, s.policy.firstDeadline = ip, time.Now().Add(a.cfg.FirstFrameTimeout)
	defer a.pol.releaseTerminal(s)
	br := bufio.NewReaderSize(c, 1024)
	buf := make([]byte, 0, 512)
	idle := a.cfg.IdleTimeout
	frameTimeout := a.cfg.FrameTimeout

	for !a.closing.Load() {
		// Wait for the first byte of the next frame under the idle
		// deadline, then give the rest of the frame the frame deadline.
		a.armIdle(s, idle)
		// Shutdown (and a newer connection of the same terminal) sets its
		// flag before it cuts read deadlines short; a deadline set here
		// after that cut would undo it, so look again.
		if a.closing.Load() || s.policy.evicted.Load() {
			return
		}
		if _, err := br.Peek(1); err != nil {
			if a.firstFrameExpired(s) {
				return
			}
			if !isClosedOrEOF(err) && !a.closing.Load() {
				a.log.Debug("connection idle or broken", zap.String("peer", s.Peer), zap.Error(err))
			}
			return
		}
		// A frame that arrived whole with its first byte is read from
		// the buffer: no read can wait, so its deadline is not set (a
		// deadline costs a timer update per message).
		if !frameBuffered(br) {
			s.readDL = a.readDeadline(s, frameTimeout)
			_ = c.SetReadDeadline(s.readDL)
		}
		if a.closing.Load() || s.policy.evicted.Load() {
			return
		}
		body, err := a.readFrame(br, &buf)
		if err != nil {
			if !a.firstFrameExpired(s) {
				a.refuse(s, body, err)
			}
			return
		}
		resp, closeAfter := a.proto.Handle(s, body)
		if !a.admit(s) {
			s.Written = nil
			return
		}
		if resp != nil && !a.write(s, resp) {
			s.Written = nil
			return
		}
		if s.Written != nil {
			s.Written.Written()
			s.Written = nil
		}
		if closeAfter {
			return
		}
	}
}

// readFrame reads a 2-byte big-endian length and that many bytes. On
// error it returns what it has of the body, for a format-error answer.
func (a *Acceptor) readFrame(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	// Peek, not io.ReadFull into an array: the array would escape
	// through the io.Reader, an allocation per message.
	lenb, err := br.Peek(2)
	if err != nil {
		if err == io.EOF && len(lenb) > 0 {
			err = io.ErrUnexpectedEOF // as io.ReadFull says it
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(lenb))
	_, _ = br.Discard(2)
	if n > a.cfg.MaxFrame {
		// Read just the head, so that a terminal whose frame is too big
		// gets a 30 rather than a silent close.
		head := growTo(buf, 32)
		k, _ := io.ReadFull(br, head)
		return head[:k], errFrameTooLarge
	}
	if n < minFrame {
		return nil, errFrameTooShort
	}
	body := growTo(buf, n)
	k, err := io.ReadFull(br, body)
	if err != nil {
		return body[:k], err
	}
	return body, nil
}

// frameBuffered reports whether br holds a whole frame (length prefix
// and body), so that reading it cannot block.
func frameBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < 2 {
		return false
	}
	lenb, _ := br.Peek(2)
	return n >= 2+int(binary.BigEndian.Uint16(lenb))
}

// growTo returns (*buf)[:n], growing the buffer if needed. Growth is
// bounded by MaxFrame, checked before the call.
func growTo(buf *[]byte, n int) []byte {
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	return (*buf)[:n]
}

// refuse answers a frame that could not be read whole with a format
// error when its head allows, and counts it. The connection is closed
// after: its framing can no longer be trusted.
func (a *Acceptor) refuse(s *Session, head []byte, err error) {
	reason := "short_read"
	switch {
	case errors.Is(err, errFrameTooLarge):
		reason = "frame_too_large"
	case errors.Is(err, errFrameTooShort):
		reason = "frame_too_short"
	case isClosedOrEOF(err) && len(head) == 0:
		return // the peer simply went away
	}
	a.metrics.Rejected.WithLabelValues(a.name, reason).Inc()
	// Debug only: anyone can make one such line per connection; the
	// count is in switch_rejected_total (docs/security.md).
	a.log.Debug("frame refused", zap.String("peer", s.Peer), zap.String("reason", reason), zap.Int("head_bytes", len(head)))
	if resp := a.proto.FormatError(s, head); resp != nil {
		a.write(s, resp)
	}
}

// deadlineSlack is the fraction of a timeout by which a deadline may end
// later than the timeout asks: a deadline already set that ends no
// earlier than asked and at most timeout/deadlineSlack later is kept, so
// that a busy connection re-arms its timers about once per sixteenth of
// a timeout instead of twice per message. A connection still gets at
// least the configured timeout (docs/operations.md).
const deadlineSlack = 16

// armIdle sets the read deadline of the wait for the next frame: the
// first-frame deadline exactly, until a frame decoded; then the idle
// timeout, kept while it ends in [now+idle, now+idle+idle/16]. A deadline
// cut short meanwhile (Shutdown, eviction) is not undone: its cut is
// earlier than asked, but the loop's flags end the connection first.
func (a *Acceptor) armIdle(s *Session, idle time.Duration) {
	want := a.readDeadline(s, idle)
	if s.policy.gotValid {
		if !s.readDL.Before(want) && !s.readDL.After(want.Add(idle/deadlineSlack)) {
			return
		}
		want = want.Add(idle / deadlineSlack)
	}
	s.readDL = want
	_ = s.conn.SetReadDeadline(want)
}

// armWrite sets the write deadline of one response, kept while it ends
// in [now+WriteTimeout, now+WriteTimeout·17/16].
func (a *Acceptor) armWrite(s *Session) {
	wt := a.cfg.WriteTimeout
	want := time.Now().Add(wt)
	if !s.writeDL.Before(want) && !s.writeDL.After(want.Add(wt/deadlineSlack)) {
		return
	}
	s.writeDL = want.Add(wt / deadlineSlack)
	_ = s.conn.SetWriteDeadline(s.writeDL)
}

// write sends one response frame under the write deadline.
func (a *Acceptor) write(s *Session, frame []byte) bool {
	a.armWrite(s)
	if _, err := s.conn.Write(frame); err != nil {
		a.log.Info("write failed", zap.String("peer", s.Peer), zap.Error(err))
		return false
	}
	return true
}

// Shutdown stops accepting, wakes idle connections so they exit, lets
// connections in the middle of a message finish it, and waits until ctx
// ends; then it closes whatever is left.
func (a *Acceptor) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.closing.Store(true)
	if a.ln != nil {
		_ = a.ln.Close()
	}
	now := time.Now()
	for c := range a.conns {
		// Interrupts a read in progress; a connection processing a
		// message finishes it and sees closing before its next read.
		_ = c.SetReadDeadline(now)
	}
	a.mu.Unlock()

	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		a.mu.Lock()
		for c := range a.conns {
			_ = c.Close()
		}
		a.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func isClosedOrEOF(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
