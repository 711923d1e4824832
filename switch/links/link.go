// Package links is the switch's outbound gateway links (docs/gateway-links.md):
// connection pools to banks and third parties built on
// github.com/moov-io/iso8583-connection, sign-on, key exchange and echo,
// the link destination that forwards transactions with write-ahead
// journaling, and the store-and-forward sender of reversals.
package links

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// Link states.
const (
	StateUp        = "up"
	StateSigningOn = "signing_on"
	StateDown      = "down"
)

// maxFrame bounds a frame read from a gateway.
const maxFrame = 8192

// missedEchoesDown is how many echoes in a row may go unanswered before
// the connection is closed and reconnected.
const missedEchoesDown = 3

// Errors of Send.
var (
	// ErrDown: no signed-on connection; nothing was sent.
	ErrDown = errors.New("link is down")
	// ErrNoAnswer: the request was (or may have been) sent and no valid
	// answer came in time.
	ErrNoAnswer = errors.New("no answer from the link")
	// ErrBudgetSpent: the request's answer budget (Request.Deadline) was
	// gone before it could be sent; nothing was sent.
	ErrBudgetSpent = errors.New("the request's answer budget is spent")
)

// connState is what the link knows of one connection.
type connState struct {
	signedOn atomic.Bool
	missed   atomic.Int32
	// waiting counts the requests sent on the connection still waiting
	// for their answer: closing the connection lets them finish first.
	waiting atomic.Int32
}

// pendingKey names a request waiting for its answer: the connection it
// went out on and its request ID (requestID).
type pendingKey struct {
	c  *connection.Connection
	id string
}

// Link is one outbound gateway link.
type Link struct {
	cfg   Config
	hsm   *hsm.HSM
	recs  *journal.Links
	log   *zap.Logger
	m     *Metrics
	pool  *connection.Pool
	now   func() time.Time
	conns sync.Map // *connection.Connection -> *connState

	signingOn atomic.Int32
	// keysChanged is when the ZAK last changed (Unix ns): the previous ZAK
	// is accepted for one send timeout after it.
	keysChanged atomic.Int64
	keyMu       sync.Mutex
	lastKeys    atomic.Int64 // Unix ns of the last successful key exchange
	closed      atomic.Bool
	lastErr     atomic.Value // string: the last connection, sign-on or key exchange error
	done        chan struct{}
	mgr         *Manager
	safWake     chan struct{}
	// inflight maps link request ids being forwarded to a channel closed
	// when their answer (or reversal) is recorded.
	inflightMu sync.Mutex
	inflight   map[uint64]chan struct{}
	// pending holds the requests sent and waiting for their answer
	// (sendOn): the link matches answers itself, see sendOn.
	pendingMu sync.Mutex
	pending   map[pendingKey]chan *iso8583.Message
	// frames holds the frames of MACed requests being written
	// (*iso8583.Message -> []byte, exchange): the writer sends them as
	// they are instead of packing the message again.
	frames sync.Map
	wg     sync.WaitGroup
	// users counts transactions inside the link's destination, and
	// retired turns new ones away while a reload removes or restarts the
	// link (reload.go).
	users   atomic.Int64
	retired atomic.Bool
}

// newLink builds a link; Start connects it.
func newLink(cfg Config, h *hsm.HSM, recs *journal.Links, log *zap.Logger, m *Metrics, now func() time.Time) *Link {
	l := &Link{cfg: cfg, hsm: h, recs: recs, log: log.With(zap.String("link", cfg.Name)), m: m, now: now, done: make(chan struct{}),
		safWake: make(chan struct{}, 1), inflight: map[uint64]chan struct{}{},
		pending: map[pendingKey]chan *iso8583.Message{}}
	l.setStateMetric()
	return l
}

// Name is the link's name.
func (l *Link) Name() string { return l.cfg.Name }

// Config returns the link's configuration.
func (l *Link) Config() Config { return l.cfg }

// start opens the pool; connections that fail keep retrying in the
// background with capped exponential backoff.
func (l *Link) start() error {
	addrs := make([]string, l.cfg.PoolSize)
	for i := range addrs {
		addrs[i] = "#" + strconv.Itoa(i)
	}
	p, err := connection.NewPool(l.factory, addrs,
		connection.PoolReconnectWait(l.cfg.ReconnectWait),
		connection.PoolMaxReconnectWait(l.cfg.MaxReconnectWait),
		connection.PoolMinConnections(0),
		connection.PoolErrorHandler(func(err error) {
			l.lastErr.Store(err.Error())
			l.log.Warn("gateway link connection", zap.Error(err))
		}),
		connection.PoolConnectionsFilter(func(c *connection.Connection) bool {
			s := l.state(c)
			return s != nil && s.signedOn.Load() && c.Status() == connection.StatusOnline
		}))
	if err != nil {
		return err
	}
	l.pool = p
	if err := p.Connect(); err != nil {
		return fmt.Errorf("gateway %s: %w", l.cfg.Name, err)
	}
	l.wg.Add(1)
	go l.keyLoop()
	return nil
}

// close stops the store-and-forward sender and the key loop (a reversal
// in flight gets its answer or times out first), signs off every
// connection and closes the pool.
func (l *Link) close() {
	if l.closed.Swap(true) {
		return
	}
	close(l.done)
	l.wg.Wait()
	l.signOffAll()
	if l.pool != nil {
		_ = l.pool.Close()
	}
	l.setStateMetric()
}

// signOffAll signs off every signed-on connection (0800 002), all at
// once, each waiting at most min(send_timeout, 2 s) for its answer. It
// runs before the pool closes: a closing connection sends nothing more.
func (l *Link) signOffAll() {
	var wg sync.WaitGroup
	l.conns.Range(func(k, v any) bool {
		c, s := k.(*connection.Connection), v.(*connState)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.awaitAnswers(s)
			if s.signedOn.Swap(false) && c.Status() == connection.StatusOnline {
				l.sendSignOff(c)
			}
		}()
		return true
	})
	wg.Wait()
}

func (l *Link) state(c *connection.Connection) *connState {
	v, ok := l.conns.Load(c)
	if !ok {
		return nil
	}
	return v.(*connState)
}

// nextAddr picks the address a (re)created connection dials: the first
// for a new slot, the one after the address that just failed otherwise.
func (l *Link) nextAddr(prev string) string {
	for i, a := range l.cfg.Addresses {
		if a == prev {
			return l.cfg.Addresses[(i+1)%len(l.cfg.Addresses)]
		}
	}
	return l.cfg.Addresses[0]
}

func (l *Link) factory(prev string) (*connection.Connection, error) {
	addr := l.nextAddr(prev)
	rd := &reader{l: l}
	c, err := connection.New(addr, spec.Gateway, nil, nil,
		connection.ConnectTimeout(l.cfg.ConnectTimeout),
		connection.SendTimeout(l.cfg.SendTimeout),
		connection.IdleTime(l.cfg.EchoInterval),
		connection.ReadTimeout(24*time.Hour),
		connection.PingHandler(l.echo),
		connection.InboundMessageHandler(l.inbound),
		connection.OnConnect(l.signOn),
		connection.OnClose(l.signOff),
		connection.ConnectionClosedHandler(l.connClosed),
		connection.ErrorHandler(func(err error) { l.log.Debug("gateway link connection error", zap.Error(err)) }),
		connection.SetRequestIDGenerator(requestID{}),
		connection.SetMessageReader(rd),
		connection.SetMessageWriter(&writer{l: l}),
	)
	if err != nil {
		return nil, err
	}
	// Before the pool connects it: the reader's goroutine starts then.
	rd.c.Store(c)
	l.conns.Store(c, &connState{})
	return c, nil
}

func (l *Link) connClosed(c *connection.Connection) {
	if s := l.state(c); s != nil {
		s.signedOn.Store(false)
	}
	l.conns.Delete(c)
	if l.closed.Load() {
		return // shutting down: the pool closes every connection
	}
	l.lastErr.Store("connection to " + c.Addr() + " closed")
	l.log.Warn("gateway link connection closed", zap.String("addr", c.Addr()))
	l.setStateMetric()
}

// State is up (a signed-on connection), signing_on or down.
func (l *Link) State() string {
	if l.closed.Load() {
		return StateDown
	}
	up := false
	l.conns.Range(func(k, v any) bool {
		if v.(*connState).signedOn.Load() && k.(*connection.Connection).Status() == connection.StatusOnline {
			up = true
			return false
		}
		return true
	})
	switch {
	case up:
		return StateUp
	case l.signingOn.Load() > 0:
		return StateSigningOn
	}
	return StateDown
}

// LastError is the last connection, sign-on or key exchange error ("" if
// none).
func (l *Link) LastError() string {
	s, _ := l.lastErr.Load().(string)
	return s
}

// Connections counts signed-on connections.
func (l *Link) Connections() int {
	n := 0
	l.conns.Range(func(_, v any) bool {
		if v.(*connState).signedOn.Load() {
			n++
		}
		return true
	})
	return n
}

func (l *Link) setStateMetric() {
	if l.m == nil {
		return
	}
	cur := l.State()
	for _, s := range linkStates {
		v := 0.0
		if s == cur {
			v = 1
		}
		l.m.State.WithLabelValues(l.cfg.Name, s).Set(v)
	}
	up := 0.0
	if cur == StateUp {
		up = 1
	}
	l.m.Up.WithLabelValues(l.cfg.Name).Set(up)
}

// netMsg builds an 0800 with network management code code.
func (l *Link) netMsg(code string) (*iso8583.Message, error) {
	_, stan, err := l.recs.NextID(l.cfg.Name)
	if err != nil {
		return nil, err
	}
	m := iso8583.NewMessage(spec.Gateway)
	for id, v := range map[int]string{0: spec.GWNetworkRequest, 7: spec.FormatTransmissionTime(l.now()), 11: stan, 70: code} {
		if err := m.Field(id, v); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// sendNet sends a network management request on c and checks its 00.
func (l *Link) sendNet(c *connection.Connection, code string, timeout time.Duration) (*iso8583.Message, error) {
	req, err := l.netMsg(code)
	if err != nil {
		return nil, err
	}
	resp, err := l.exchange(c, req, nil, timeout)
	if err != nil {
		return nil, fmt.Errorf("0800 %s: %w", code, err)
	}
	if rc, _ := resp.GetString(39); rc != spec.RCApproved {
		return resp, fmt.Errorf("0800 %s answered %q", code, rc)
	}
	return resp, nil
}

// signOn runs on every new connection: sign-on (001), then key exchange
// (101). Until both succeed the pool does not hand the connection out.
func (l *Link) signOn(c *connection.Connection) error {
	l.signingOn.Add(1)
	defer l.signingOn.Add(-1)
	l.setStateMetric()
	defer l.setStateMetric()
	if _, err := l.sendNet(c, spec.GWNetworkSignOn, l.cfg.SignOnTimeout); err != nil {
		l.m.Reconnect.WithLabelValues(l.cfg.Name, "refused").Inc()
		l.lastErr.Store("sign-on: " + err.Error())
		l.log.Warn("gateway sign-on failed", zap.String("addr", c.Addr()), zap.Error(err))
		return err
	}
	if err := l.exchangeKeys(c); err != nil {
		l.lastErr.Store("key exchange: " + err.Error())
		// Without a ZAK no financial message can be MACed: stay off.
		if !l.hasKeys() {
			l.m.Reconnect.WithLabelValues(l.cfg.Name, "no_keys").Inc()
			return err
		}
		l.log.Error("gateway key exchange failed; keeping the previous keys", zap.Error(err))
	}
	c.SetStatus(connection.StatusOnline)
	if s := l.state(c); s != nil {
		s.signedOn.Store(true)
		s.missed.Store(0)
	}
	l.m.Reconnect.WithLabelValues(l.cfg.Name, "ok").Inc()
	l.log.Info("gateway link signed on", zap.String("addr", c.Addr()))
	return nil
}

// hasKeys reports whether the link has a ZPK and a ZAK of its MAC's
// algorithm (after its mac was reconfigured, the old ZAK does not count).
func (l *Link) hasKeys() bool {
	zak, err := l.hsm.Info(hsm.ZoneKeyLabel(l.cfg.Name, hsm.ZAK))
	return err == nil && zak.Alg == l.cfg.zakAlg() && l.hsm.HasKey(hsm.ZoneKeyLabel(l.cfg.Name, hsm.ZPK))
}

// exchangeKeys sends 0800 101 and imports the ZPK and ZAK of the answer.
// A wrong check value or an answer other than 00 keeps the old keys.
func (l *Link) exchangeKeys(c *connection.Connection) error {
	l.keyMu.Lock()
	defer l.keyMu.Unlock()
	resp, err := l.sendNet(c, spec.GWNetworkKeyExchange, l.cfg.SignOnTimeout)
	if err != nil {
		return err
	}
	f48, _ := resp.GetString(48)
	tags, err := spec.ParseTagList(f48)
	if err != nil {
		return fmt.Errorf("key exchange: %w", err)
	}
	var k hsm.ZoneKeys
	for _, t := range []struct {
		name string
		dst  *string
	}{{"PK", &k.ZPK}, {"PC", &k.ZPKCheck}, {"AK", &k.ZAK}, {"AC", &k.ZAKCheck}} {
		v, ok := spec.TagValue(tags, t.name)
		if !ok {
			return fmt.Errorf("key exchange: field 48 has no %s", t.name)
		}
		*t.dst = v
	}
	if err := l.hsm.ImportZoneKeysAlg(l.cfg.Name, k, l.cfg.zakAlg()); err != nil {
		return err
	}
	l.keysChanged.Store(l.now().UnixNano())
	l.lastKeys.Store(l.now().UnixNano())
	return nil
}

// keyLoop exchanges keys every key_interval on one signed-on connection.
func (l *Link) keyLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.KeyInterval)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			c, err := l.pool.Get()
			if err != nil {
				continue
			}
			if err := l.exchangeKeys(c); err != nil {
				l.log.Error("gateway key exchange failed; keeping the previous keys", zap.Error(err))
			}
		}
	}
}

// signOff is sent when the switch closes a connection.
func (l *Link) signOff(c *connection.Connection) error {
	s := l.state(c)
	if s == nil {
		return nil
	}
	l.awaitAnswers(s)
	if !s.signedOn.Swap(false) {
		return nil
	}
	l.sendSignOff(c)
	return nil
}

// awaitAnswers lets the requests still waiting on a connection get their
// answer (or their timeout) before it signs off, as the library's Close
// waits for its own Sends.
func (l *Link) awaitAnswers(s *connState) {
	for deadline := time.Now().Add(l.cfg.SendTimeout + time.Second); s.waiting.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *Link) sendSignOff(c *connection.Connection) {
	if _, err := l.sendNet(c, spec.GWNetworkSignOff, min(l.cfg.SendTimeout, 2*time.Second)); err != nil {
		l.log.Info("gateway sign-off not answered", zap.Error(err))
		return
	}
	l.log.Info("gateway link signed off", zap.String("addr", c.Addr()))
}

// echo runs when a connection has been idle for echo_interval.
func (l *Link) echo(c *connection.Connection) {
	s := l.state(c)
	if s == nil || !s.signedOn.Load() {
		return
	}
	if _, err := l.sendNet(c, spec.GWNetworkEcho, l.cfg.SendTimeout); err != nil {
		n := s.missed.Add(1)
		l.log.Warn("gateway echo missed", zap.Int32("missed", n), zap.Error(err))
		if n >= missedEchoesDown {
			l.lastErr.Store(fmt.Sprintf("%d echoes missed", n))
			s.signedOn.Store(false)
			l.setStateMetric()
			c.TriggerFailure(fmt.Errorf("%d echoes missed", n))
		}
		return
	}
	s.missed.Store(0)
}

// inbound handles the messages from the gateway that the reader did not
// hand to a waiting request (reader.ReadMessage): late answers, and the
// gateway's own requests.
func (l *Link) inbound(c *connection.Connection, m *iso8583.Message) {
	mti, _ := m.GetMTI()
	if len(mti) == 4 && (mti[2]-'0')%2 == 1 {
		if l.deliver(c, m) {
			return
		}
		stan, _ := m.GetString(11)
		rc, _ := m.GetString(39)
		pan, _ := m.GetString(2)
		l.m.Late.WithLabelValues(l.cfg.Name).Inc()
		l.log.Warn("late answer from gateway; the reversal stands", zap.String("mti", mti), zap.String("stan", stan),
			zap.String("rc", rc), zap.String("pan", cardno.Mask(pan)))
		return
	}
	resp := iso8583.NewMessage(spec.Gateway)
	rmti := mti[:2] + string(mti[2]+1) + mti[3:]
	_ = resp.Field(0, rmti)
	for _, id := range []int{3, 4, 7, 11, 32, 33, 37, 41, 42, 49, 70} {
		if v, err := m.GetString(id); err == nil && v != "" {
			_ = resp.Field(id, v)
		}
	}
	rc := spec.RCApproved
	if mti != spec.GWNetworkRequest {
		// Financial requests are not served on links the switch opens:
		// 91 before sign-on, 40 after.
		rc = "91"
		if s := l.state(c); s != nil && s.signedOn.Load() {
			rc = spec.RCFunctionNotSupported
		}
	}
	_ = resp.Field(39, rc)
	if err := c.Reply(resp); err != nil {
		l.log.Info("reply to gateway request", zap.Error(err))
	}
}

// Send sends a financial request on a signed-on connection, with the MAC,
// and returns the answer; ErrDown when nothing could be sent, ErrNoAnswer
// when it may have been sent and no valid answer came in time.
func (l *Link) Send(m *iso8583.Message) (*iso8583.Message, error) {
	c, err := l.pool.Get()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDown, err)
	}
	return l.sendOn(c, m, l.cfg.SendTimeout)
}

// sendOn MACs and sends m on c and waits at most timeout for its answer.
func (l *Link) sendOn(c *connection.Connection, m *iso8583.Message, timeout time.Duration) (*iso8583.Message, error) {
	frame, err := l.addMAC(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDown, err)
	}
	return l.sendMACed(c, m, frame, timeout)
}

// sendMACed sends m, MACed already (frame: its frame, from addMAC), on c
// and waits at most timeout for its answer.
func (l *Link) sendMACed(c *connection.Connection, m *iso8583.Message, frame []byte, timeout time.Duration) (*iso8583.Message, error) {
	l.m.InFlight.WithLabelValues(l.cfg.Name).Inc()
	start := time.Now()
	resp, err := l.exchange(c, m, frame, timeout)
	l.m.InFlight.WithLabelValues(l.cfg.Name).Dec()
	if err != nil {
		// A timeout, or a connection closed before or after the write:
		// either way the request may have reached the gateway.
		id, _ := requestID{}.GenerateRequestID(m)
		l.log.Info("gateway request unanswered", zap.String("request", id), zap.Error(err))
		return nil, fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	l.m.Latency.WithLabelValues(l.cfg.Name).Observe(time.Since(start).Seconds())
	return resp, nil
}

// errTimeout is an exchange that had no answer within its timeout.
var errTimeout = errors.New("no answer within the send timeout")

// exchange writes request m on c and waits up to timeout for its answer.
// frame, when not nil, is m's frame as packed already (addMAC): the
// writer sends it instead of packing m again.
//
// The link matches answers itself instead of using the library's Send:
// in iso8583-connection v0.9.0 an answer that arrives as Send gives up
// can leave the library's goroutine blocked for ever on an unbuffered
// channel nobody reads any more (Connection.handleResponse finds the
// request, Send's timeout drains the channel without waiting, and the
// send then blocks) — one goroutine and one answer lost per such race,
// the answer never reaching the late-answer count. Here the request is
// written with Reply (no library matching) and waits on a buffered
// channel. The connection's reader hands each answer to its waiting
// request as it decodes it, in the reading goroutine (the library's own
// path for an answer it does not match costs two more goroutines, one of
// them inbound's); an answer nobody waits for goes on to inbound and is
// counted late. Delivery is under pendingMu, so an answer is delivered
// or, once the request has stopped waiting, counted as late — never
// both, never neither (TestAnswersAtTheTimeoutLeakNothing).
func (l *Link) exchange(c *connection.Connection, m *iso8583.Message, frame []byte, timeout time.Duration) (*iso8583.Message, error) {
	id, err := requestID{}.GenerateRequestID(m)
	if err != nil {
		return nil, err
	}
	key := pendingKey{c: c, id: id}
	ch := make(chan *iso8583.Message, 1)
	l.pendingMu.Lock()
	if _, dup := l.pending[key]; dup {
		l.pendingMu.Unlock()
		return nil, fmt.Errorf("request %s already waiting on this connection", id)
	}
	l.pending[key] = ch
	l.pendingMu.Unlock()
	if s := l.state(c); s != nil {
		s.waiting.Add(1)
		defer s.waiting.Add(-1)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	if frame != nil {
		l.frames.Store(m, frame)
	}
	err = c.Reply(m)
	if frame != nil {
		// Written, or never to be (Reply gave up): the writer took it or
		// will not.
		l.frames.Delete(m)
	}
	if err == nil {
		select {
		case resp := <-ch:
			return resp, nil
		case <-timer.C:
			err = errTimeout
		case <-c.Done():
			err = connection.ErrConnectionClosed
		}
	}
	l.pendingMu.Lock()
	_, waiting := l.pending[key]
	delete(l.pending, key)
	l.pendingMu.Unlock()
	if !waiting {
		// The answer was delivered as the wait ended: take it.
		return <-ch, nil
	}
	return nil, err
}

// deliver hands an answer to the request waiting for it; false when none
// waits (a late answer).
func (l *Link) deliver(c *connection.Connection, m *iso8583.Message) bool {
	id, err := requestID{}.GenerateRequestID(m)
	if err != nil {
		return false
	}
	key := pendingKey{c: c, id: id}
	l.pendingMu.Lock()
	ch, ok := l.pending[key]
	delete(l.pending, key)
	l.pendingMu.Unlock()
	if ok {
		ch <- m // buffered, and only the one deliverer removed the entry
	}
	return ok
}

// addMAC sets the MAC field (128 when a secondary-bitmap field is present,
// else 64) over the packed message and returns the message's frame with
// it: the MAC is the message's last field, so the packed message with the
// MAC in its last 8 bytes is what packing m again would give
// (TestAddMACFrame).
func (l *Link) addMAC(m *iso8583.Message) ([]byte, error) {
	field := 64
	for id := range m.GetFields() {
		if id > 64 && id != 128 {
			field = 128
		}
	}
	if err := m.BinaryField(field, make([]byte, 8)); err != nil {
		return nil, err
	}
	packed, err := m.Pack()
	if err != nil {
		return nil, err
	}
	block, err := spec.GatewayMACBlock(packed)
	if err != nil {
		return nil, err
	}
	mac, err := l.zoneMAC(block)
	if err != nil {
		return nil, err
	}
	if err := m.BinaryField(field, mac); err != nil {
		return nil, err
	}
	copy(packed[len(block):], mac)
	return spec.AppendFrame(nil, packed)
}

// zoneMAC is the link's MAC of block under its zone MAC key: the 8 bytes
// that end a gateway message in field 64 or 128 (docs/gateway-links.md).
func (l *Link) zoneMAC(block []byte) ([]byte, error) {
	mac, err := l.hsm.GenerateZoneMACAlg(l.cfg.Name, l.cfg.zakAlg(), block)
	if err != nil {
		return nil, err
	}
	if len(mac) != 8 {
		return nil, fmt.Errorf("MAC of %d bytes", len(mac))
	}
	return mac, nil
}

// verifyMAC checks the MAC of a packed financial answer.
func (l *Link) verifyMAC(packed []byte) bool {
	block, err := spec.GatewayMACBlock(packed)
	if err != nil {
		return false
	}
	grace := l.now().UnixNano()-l.keysChanged.Load() < int64(l.cfg.SendTimeout)
	ok, err := l.hsm.VerifyZoneMACAlg(l.cfg.Name, l.cfg.zakAlg(), block, packed[len(block):], grace)
	return err == nil && ok
}

// requestID matches answers to requests by MTI class, STAN and terminal:
// a 0420 and a pending 0200 may share a STAN on other links' numbering.
type requestID struct{}

func (requestID) GenerateRequestID(m *iso8583.Message) (string, error) {
	mti, err := m.GetMTI()
	if err != nil || len(mti) != 4 {
		return "", fmt.Errorf("request id: MTI %q", mti)
	}
	stan, _ := m.GetString(11)
	if stan == "" {
		return "", errors.New("request id: no STAN")
	}
	tid, _ := m.GetString(41)
	return mti[1:2] + "/" + stan + "/" + tid, nil
}

// reader reads gateway frames, decodes them, drops financial answers
// whose MAC is missing or wrong (the request then times out and is
// reversed) and delivers answers to the requests waiting for them on its
// connection c (exchange); what it returns goes to inbound.
type reader struct {
	l *Link
	c atomic.Pointer[connection.Connection]
}

// answerFields are the fields of a financial answer the link reads: 11
// and 41 match it to its request (requestID), 39, 38 and 54 are the
// answer (answerOf), 2 and 37 name it in logs. A financial answer is
// decoded with these only (spec.DecodeGatewayFields), every field still
// checked.
var answerFields = []int{2, 11, 37, 38, 39, 41, 54}

func (r *reader) ReadMessage(in io.Reader) (*iso8583.Message, error) {
	body, err := spec.ReadFrame(in, nil, maxFrame)
	if err != nil {
		return nil, err
	}
	var m *iso8583.Message
	if len(body) >= 4 && body[2]%2 == 1 && body[1] != '8' {
		m, err = spec.DecodeGatewayFields(body, answerFields...)
	} else {
		m, err = spec.DecodeGateway(body)
	}
	if err != nil {
		// A frame we cannot decode: the stream may be out of step; close.
		return nil, err
	}
	mti, _ := m.GetMTI()
	if mti[2]%2 == 1 && mti[1] != '8' && !r.l.verifyMAC(body) {
		stan, _ := m.GetString(11)
		r.l.m.BadMAC.WithLabelValues(r.l.cfg.Name).Inc()
		r.l.log.Error("gateway answer with a missing or wrong MAC dropped; treated as no answer", zap.String("mti", mti), zap.String("stan", stan))
		return nil, nil
	}
	if c := r.c.Load(); c != nil && mti[2]%2 == 1 && r.l.deliver(c, m) {
		return nil, nil // delivered: the library reads on
	}
	return m, nil
}

// writer frames and writes a message under a write deadline of half a
// send timeout, so a stalled peer cannot block the link's writer for
// ever. Half: the library's Reply waits for the write at most one send
// timeout from when its writer took the message, and its writer then
// reports a successful write on an unbuffered channel — a write that
// succeeded after Reply had given up would block the connection's writer
// for good (and every later Reply with it). Ended within half, a write
// either fails, which Reply does not wait to hear, or is heard.
type writer struct{ l *Link }

// writeDeadline is how long one write may take (see writer).
func (l *Link) writeDeadline() time.Duration { return l.cfg.SendTimeout / 2 }

func (w *writer) WriteMessage(out io.Writer, m *iso8583.Message) error {
	var frame []byte
	if f, ok := w.l.frames.Load(m); ok {
		frame = f.([]byte) // packed and MACed already (exchange)
	} else {
		var err error
		if frame, err = spec.AppendGatewayFrame(nil, m); err != nil {
			return err
		}
	}
	if nc, ok := out.(net.Conn); ok {
		_ = nc.SetWriteDeadline(time.Now().Add(w.l.writeDeadline()))
	}
	_, err := out.Write(frame)
	return err
}
