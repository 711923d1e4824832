// Package spec holds cardswitch's message layer: the framing of POS and
// gateway connections, the ISO 8583 specifications of both dialects, a fast
// BCD codec for them, typed POS messages and the table that names every
// transaction type.
//
// spec depends on nothing else of ours, so every other package may use it.
package spec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Sizes of the POS frame parts (docs/pos-dialect.md#framing).
const (
	// LengthPrefixLen is the 2-byte big-endian length before every frame.
	LengthPrefixLen = 2
	// TPDULen is the transport protocol data unit: 0x60 + destination(2) + source(2).
	TPDULen = 5
	// HeaderLen is the application header: app type, software version,
	// status/processing requirement, software sub-version(3).
	HeaderLen = 6
	// DefaultMaxFrame bounds the bytes after the length prefix. POS messages
	// are a few hundred bytes; 2048 leaves room for field 55 and 62 while
	// keeping a hostile length from making us allocate.
	DefaultMaxFrame = 2048
	// MaxFrameLimit is the largest length a 2-byte prefix can declare.
	MaxFrameLimit = 0xFFFF

	// minPOSMessage is MTI(2, BCD) + primary bitmap(8).
	minPOSMessage = 2 + 8
	// MinPOSBody is the shortest body SplitPOS accepts.
	MinPOSBody = TPDULen + HeaderLen + minPOSMessage
)

// TPDUID is the first TPDU byte on every POS frame.
const TPDUID = 0x60

// HeaderAppType is the application type byte of the POS header.
const HeaderAppType = 0x60

// Processing requirements (low nibble of header byte 2).
const (
	// ProcessingNone means the terminal need not do anything special.
	ProcessingNone byte = 0
	// ProcessingSignOn tells the terminal to sign on again (the switch sets
	// it with response code 77).
	ProcessingSignOn byte = 3
)

// Framing errors. Callers compare with errors.Is; the acceptor answers 30
// when the header could be read and closes the connection otherwise.
var (
	// ErrFrameTooLarge: the declared length exceeds the configured maximum.
	ErrFrameTooLarge = errors.New("spec: frame too large")
	// ErrFrameTooShort: the body cannot hold TPDU, header, MTI and bitmap.
	ErrFrameTooShort = errors.New("spec: frame too short")
	// ErrMessageTooLarge: a frame being built does not fit a 2-byte length.
	ErrMessageTooLarge = errors.New("spec: message too large for a 2-byte length")
)

// TPDU is the 5-byte transport header of a POS frame: 0x60, destination
// address(2), source address(2). Network access points route on it, so the
// response must carry it with addresses swapped.
type TPDU [TPDULen]byte

// Destination returns the 2-byte destination address.
func (t TPDU) Destination() [2]byte { return [2]byte{t[1], t[2]} }

// Source returns the 2-byte source address.
func (t TPDU) Source() [2]byte { return [2]byte{t[3], t[4]} }

// Reply returns the TPDU for the response: the ID byte kept, destination and
// source swapped.
func (t TPDU) Reply() TPDU {
	return TPDU{t[0], t[3], t[4], t[1], t[2]}
}

// String renders the TPDU as hex for logs (it carries no secret).
func (t TPDU) String() string { return fmt.Sprintf("%X", t[:]) }

// Header is the 6-byte POS application header: application type (0x60),
// software version, terminal status (high nibble) and processing requirement
// (low nibble), software sub-version (3 bytes). The response echoes it.
type Header [HeaderLen]byte

// AppType returns byte 0, the application type (0x60 for POS).
func (h Header) AppType() byte { return h[0] }

// SoftwareVersion returns byte 1.
func (h Header) SoftwareVersion() byte { return h[1] }

// TerminalStatus returns the high nibble of byte 2.
func (h Header) TerminalStatus() byte { return h[2] >> 4 }

// ProcessingRequirement returns the low nibble of byte 2.
func (h Header) ProcessingRequirement() byte { return h[2] & 0x0F }

// WithProcessingRequirement returns a copy of h with the low nibble of byte 2
// set to p (only its low 4 bits are used). The switch sets ProcessingSignOn
// when the terminal must sign on again.
func (h Header) WithProcessingRequirement(p byte) Header {
	h[2] = h[2]&0xF0 | p&0x0F
	return h
}

// String renders the header as hex for logs.
func (h Header) String() string { return fmt.Sprintf("%X", h[:]) }

// ReadFrame reads one length-prefixed frame: a 2-byte big-endian length, then
// that many bytes. The body is read into buf, which is grown when too small
// and otherwise reused, so a connection loop allocates once. The returned
// body aliases buf and is valid until the next call with the same buf.
//
// A declared length above max returns ErrFrameTooLarge without reading the
// body (the caller closes the connection: the stream can no longer be
// trusted). A zero length is returned as an empty body: SplitPOS rejects it.
// A stream ending inside the prefix or body returns io.ErrUnexpectedEOF; a
// stream ending cleanly before the prefix returns io.EOF.
func ReadFrame(r io.Reader, buf []byte, max int) (body []byte, err error) {
	if max <= 0 || max > MaxFrameLimit {
		max = MaxFrameLimit
	}
	var lb [LengthPrefixLen]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(lb[:]))
	if n > max {
		return nil, fmt.Errorf("%w: declared %d bytes, maximum %d", ErrFrameTooLarge, n, max)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// SplitPOS splits a POS frame body into its TPDU, header and the message that
// starts at the first MTI byte. The message aliases body. It returns
// ErrFrameTooShort when the body is shorter than TPDU + header + MTI(2) +
// bitmap(8). It does not check the TPDU or header bytes: the caller decides
// what to do with an unexpected ID, and can still answer with them.
func SplitPOS(body []byte) (TPDU, Header, []byte, error) {
	var t TPDU
	var h Header
	if len(body) < MinPOSBody {
		return t, h, nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrFrameTooShort, len(body), MinPOSBody)
	}
	copy(t[:], body[:TPDULen])
	copy(h[:], body[TPDULen:TPDULen+HeaderLen])
	return t, h, body[TPDULen+HeaderLen:], nil
}

// AppendPOSFrame appends a complete POS frame — length, TPDU, header, msg —
// to dst and returns the extended slice. It panics if the frame body exceeds
// a 2-byte length; use POSFrameLen to check sizes beforehand when msg is not
// bounded by the spec.
func AppendPOSFrame(dst []byte, t TPDU, h Header, msg []byte) []byte {
	n := TPDULen + HeaderLen + len(msg)
	if n > MaxFrameLimit {
		panic(fmt.Sprintf("spec: POS frame body of %d bytes exceeds %d", n, MaxFrameLimit))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	dst = append(dst, t[:]...)
	dst = append(dst, h[:]...)
	return append(dst, msg...)
}

// POSFrameLen returns the total length of a POS frame for a message of
// msgLen bytes, including the 2-byte prefix.
func POSFrameLen(msgLen int) int { return POSFrameHeadLen + msgLen }

// POSFrameHeadLen is the length of what precedes the message in a POS
// frame: length prefix, TPDU and header.
const POSFrameHeadLen = LengthPrefixLen + TPDULen + HeaderLen

// PutPOSFrameHead writes the head of a POS frame — length, TPDU, header —
// into the first POSFrameHeadLen bytes of frame, whose message is the
// rest: AppendPOSFrame for a message packed in place after room for the
// head. It panics as AppendPOSFrame does, and when frame is shorter
// than the head.
func PutPOSFrameHead(frame []byte, t TPDU, h Header) {
	n := len(frame) - LengthPrefixLen
	if n > MaxFrameLimit {
		panic(fmt.Sprintf("spec: POS frame body of %d bytes exceeds %d", n, MaxFrameLimit))
	}
	head := frame[:POSFrameHeadLen]
	binary.BigEndian.PutUint16(head, uint16(n))
	copy(head[LengthPrefixLen:], t[:])
	copy(head[LengthPrefixLen+TPDULen:], h[:])
}

// AppendFrame appends a 2-byte big-endian length and body to dst: the
// gateway framing (no TPDU, no header). It returns ErrMessageTooLarge when
// body does not fit the prefix.
func AppendFrame(dst []byte, body []byte) ([]byte, error) {
	if len(body) > MaxFrameLimit {
		return dst, fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, len(body))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(body)))
	return append(dst, body...), nil
}
