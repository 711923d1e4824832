// Package posclient is the terminal side of a POS connection: it frames,
// sends and reads POS messages the way a UnionPay-style terminal does. The
// operator CLI's smoke tests, the terminal simulator and the end-to-end
// tests use it; the switch never does.
package posclient

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cardswitch/cardswitch/spec"
)

// Options configure a client. Zero values take the defaults.
type Options struct {
	// TPDU sent on every request; the response must come back with
	// destination and source swapped. Default 60 0003 0000.
	TPDU spec.TPDU
	// Header sent on every request. Default 60 31 00 313030.
	Header spec.Header
	// Timeout bounds dialling and each exchange: the request's write and
	// the answer together get at least Timeout and at most a sixteenth
	// more (Receive). Default 10 s.
	Timeout time.Duration
	// MaxFrame bounds a response frame. Default spec.DefaultMaxFrame.
	MaxFrame int
}

// DefaultTPDU and DefaultHeader are what the simulated terminals send.
var (
	DefaultTPDU   = spec.TPDU{spec.TPDUID, 0x00, 0x03, 0x00, 0x00}
	DefaultHeader = spec.Header{spec.HeaderAppType, 0x31, 0x00, 0x31, 0x30, 0x30}
)

// Client is one terminal connection. It is not safe for concurrent use: a
// terminal has one transaction outstanding at a time.
type Client struct {
	opts Options
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
	out  []byte

	// LastHeader is the header of the last response (its processing
	// requirement tells the terminal to sign on again).
	LastHeader spec.Header

	// rearmAt is when the connection's deadline is next moved on (arm);
	// sent is set by Send for the Receive of the same exchange.
	rearmAt time.Time
	sent    bool
}

// Dial connects to a POS acceptor.
func Dial(addr string, opts Options) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	c, err := net.DialTimeout("tcp", addr, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("dial POS acceptor %s: %w", addr, err)
	}
	return NewClient(c, opts), nil
}

// NewClient is a client on a connection already open (Dial's, or a
// test's in-memory one), with the defaults of opts filled as Dial fills
// them.
func NewClient(c net.Conn, opts Options) *Client {
	if opts.TPDU == (spec.TPDU{}) {
		opts.TPDU = DefaultTPDU
	}
	if opts.Header == (spec.Header{}) {
		opts.Header = DefaultHeader
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = spec.DefaultMaxFrame
	}
	return &Client{opts: opts, conn: c, br: bufio.NewReaderSize(c, 1024)}
}

// arm gives the exchange that starts now its time: between Timeout and
// 17/16 of it for the write and the answer together. The connection's
// deadline (read and write) is set to now + Timeout + Timeout/16 and
// kept for the exchanges that start within the next Timeout/16, rather
// than set again on every message: a deadline set is a clock read and a
// runtime timer moved, twice per exchange, which a load generator's
// thousands of exchanges a second pay for.
func (c *Client) arm() {
	now := time.Now()
	if now.Before(c.rearmAt) {
		return
	}
	slack := c.opts.Timeout / 16
	_ = c.conn.SetDeadline(now.Add(c.opts.Timeout + slack))
	c.rearmAt = now.Add(slack)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// ErrTPDUMismatch: the response did not carry the request's TPDU swapped.
var ErrTPDUMismatch = errors.New("posclient: response TPDU is not the request TPDU swapped")

// Send packs and writes one request without waiting for the answer. With
// mac non-nil the message carries field 64.
func (c *Client) Send(req *spec.POSMessage, mac spec.MACFunc) error {
	var (
		frame []byte
		err   error
	)
	if mac != nil {
		frame, err = spec.AppendPOSWithMAC(c.frameHead(), req, mac)
	} else {
		var packed []byte
		if packed, err = spec.EncodePOS(req); err == nil {
			frame = append(c.frameHead(), packed...)
		}
	}
	if err != nil {
		return fmt.Errorf("pack %s: %w", req.MTI, err)
	}
	return c.sendFrame(req.MTI, frame)
}

// frameHead is the client's frame buffer holding room for a frame's
// head: a message is packed after it, in place.
func (c *Client) frameHead() []byte {
	if cap(c.out) < spec.POSFrameHeadLen {
		c.out = make([]byte, 0, 512)
	}
	return c.out[:spec.POSFrameHeadLen]
}

// sendFrame writes the head of frame (frameHead's room, the message
// packed after it) and writes the frame.
func (c *Client) sendFrame(mti string, frame []byte) error {
	spec.PutPOSFrameHead(frame, c.opts.TPDU, c.opts.Header)
	c.out = frame
	c.arm()
	c.sent = true
	if _, err := c.conn.Write(frame); err != nil {
		return fmt.Errorf("send %s: %w", mti, err)
	}
	return nil
}

// Receive reads and decodes one response. Its Raw field holds the message
// bytes from the MTI, for MAC verification. After a Send it waits within
// the time Send armed for the exchange (Options.Timeout and at most a
// sixteenth more, from the Send); alone, it arms its own.
func (c *Client) Receive() (*spec.POSMessage, error) {
	if !c.sent {
		c.arm()
	}
	c.sent = false
	body, err := spec.ReadFrame(c.br, c.buf, c.opts.MaxFrame)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	c.buf = body[:0]
	t, h, msg, err := spec.SplitPOS(body)
	if err != nil {
		return nil, err
	}
	if t != c.opts.TPDU.Reply() {
		return nil, fmt.Errorf("%w: got %s", ErrTPDUMismatch, t)
	}
	c.LastHeader = h
	return spec.DecodePOS(msg)
}

// Exchange sends a request and waits for its response.
func (c *Client) Exchange(req *spec.POSMessage, mac spec.MACFunc) (*spec.POSMessage, error) {
	if err := c.Send(req, mac); err != nil {
		return nil, err
	}
	return c.Receive()
}
