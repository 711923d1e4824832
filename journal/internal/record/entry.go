// Package record holds the stored formats of the journal: entries, stored
// responses and queued messages, each with a version byte, bounded fields
// and a CRC-32C trailer. It is separate from package journal so that its
// decoders can be fuzzed without linking Pebble (fuzzing instruments every
// package in the binary, and Pebble's size slows it a hundredfold).
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Direction says whether a message came into the switch or went out of it.
type Direction uint8

const (
	// In is a message the switch received.
	In Direction = 1
	// Out is a message the switch sent.
	Out Direction = 2
)

func (d Direction) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	default:
		return fmt.Sprintf("Direction(%d)", uint8(d))
	}
}

// Flags mark entries that are unusual in a way an operator searching the
// journal cares about. Unknown bits are kept as they are so that an older
// binary can read entries a newer one wrote.
type Flags uint16

const (
	// FlagUndecodable marks a frame that did not decode: Raw holds the bytes
	// as read and the parsed fields are whatever could be recovered.
	FlagUndecodable Flags = 1 << 0
	// FlagReplayed marks a response that was the stored response of an
	// earlier request, sent again for a duplicate (docs/pos-dialect.md#rules).
	FlagReplayed Flags = 1 << 1
	// FlagRawTruncated marks an entry whose Raw the caller shortened to fit
	// MaxRawLen; the journal never shortens on its own.
	FlagRawTruncated Flags = 1 << 2
)

// Bounds on each field of an Entry. They are generous for the POS dialect
// (terminal id ans8, merchant ans15, STAN n6, RRN an12) so that gateway
// dialects fit too, and small enough that one entry stays a few hundred
// bytes plus its message.
const (
	MaxRawLen      = 64 << 10 // the switch's largest configurable frame body
	MaxListenerLen = 16
	MaxPeerLen     = 64 // "[IPv6]:port" is at most 47 bytes
	MaxTerminalLen = 16
	MaxMerchantLen = 32
	MaxMTILen      = 4
	MaxSTANLen     = 12
	MaxBatchLen    = 12
	MaxRRNLen      = 12
	MaxTxTypeLen   = 32
	MaxRCLen       = 4
	DateLen        = 8 // YYYYMMDD
)

// Errors returned for entries that cannot be written or read.
var (
	// ErrInvalidEntry is wrapped by every validation error of Append.
	ErrInvalidEntry = errors.New("journal: invalid entry")
	// ErrCorrupt is wrapped by every decoding error: a stored value that
	// does not decode means the store is damaged, never a normal outcome.
	ErrCorrupt = errors.New("journal: corrupt record")
)

// Entry is one journaled message.
//
// Raw holds the message bytes exactly as the caller gives them. The journal
// cannot parse ISO 8583 (it imports nothing of ours), so it is the CALLER's
// duty to remove the PIN block (field 52), track data (35, 36) and any key
// material (62 in 0810) before handing the bytes over: the journal stores
// what it gets, bounded in size, and nothing else.
type Entry struct {
	// Seq is the journal sequence number. Append assigns it; reads fill it.
	// It is the key of the entry, not part of its encoding.
	Seq uint64

	Direction Direction
	Flags     Flags
	// Listener is the acceptor or link: "pos" or "gateway".
	Listener string
	// Peer is the remote address, "host:port".
	Peer     string
	Terminal string // field 41
	Merchant string // field 42
	MTI      string
	STAN     string // field 11
	Batch    string // field 60.2
	RRN      string // field 37
	// TxType is the transaction label spec identified ("consume", ...).
	TxType       string
	ResponseCode string // field 39, responses only
	// Time is when the message was read or written. It is stored as UTC
	// nanoseconds and must not be the zero time.
	Time time.Time
	// BusinessDate is the switch's business day, YYYYMMDD. Every entry has
	// one: it keys the day index reconciliation scans.
	BusinessDate string
	// Raw is the message as given, at most MaxRawLen bytes; see the type
	// comment for what the caller must strip first.
	Raw []byte
}

// Encoding, version 1. All integers big-endian.
//
//	version   1 byte (= 1)
//	direction 1 byte
//	flags     2 bytes
//	time      8 bytes, UTC Unix nanoseconds
//	11 strings, each 1 length byte + bytes, in the order of stringFields
//	raw       uvarint length + bytes
//	crc       4 bytes, CRC-32C (Castagnoli) of everything before it
//
// The CRC catches damage Pebble's block checksums cannot (a bug writing the
// wrong bytes, a value cut short by a bad copy) so that a read never hands
// out a half-right entry.
const (
	entryVersion    = 1
	entryFixedLen   = 1 + 1 + 2 + 8
	crcLen          = 4
	numStringFields = 11
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stringFieldMax lists the bound of each string field in encoding order.
var stringFieldMax = [numStringFields]int{
	MaxListenerLen, MaxPeerLen, MaxTerminalLen, MaxMerchantLen, MaxMTILen,
	MaxSTANLen, MaxBatchLen, MaxRRNLen, MaxTxTypeLen, MaxRCLen, DateLen,
}

var stringFieldName = [numStringFields]string{
	"listener", "peer", "terminal", "merchant", "mti",
	"stan", "batch", "rrn", "tx_type", "response_code", "business_date",
}

func (e *Entry) stringFields() [numStringFields]string {
	return [numStringFields]string{
		e.Listener, e.Peer, e.Terminal, e.Merchant, e.MTI,
		e.STAN, e.Batch, e.RRN, e.TxType, e.ResponseCode, e.BusinessDate,
	}
}

// Size checks every bound and returns the encoded size.
func (e *Entry) Size() (int, error) {
	if e.Direction != In && e.Direction != Out {
		return 0, fmt.Errorf("%w: direction %d", ErrInvalidEntry, e.Direction)
	}
	if e.Time.IsZero() {
		return 0, fmt.Errorf("%w: time not set", ErrInvalidEntry)
	}
	if !ValidDate(e.BusinessDate) {
		return 0, fmt.Errorf("%w: business date %q: want YYYYMMDD", ErrInvalidEntry, e.BusinessDate)
	}
	if len(e.Raw) > MaxRawLen {
		return 0, fmt.Errorf("%w: raw message %d bytes: limit %d", ErrInvalidEntry, len(e.Raw), MaxRawLen)
	}
	n := entryFixedLen + numStringFields + UvarintLen(uint64(len(e.Raw))) + len(e.Raw) + crcLen
	for i, s := range e.stringFields() {
		if len(s) > stringFieldMax[i] {
			return 0, fmt.Errorf("%w: %s is %d bytes: limit %d", ErrInvalidEntry, stringFieldName[i], len(s), stringFieldMax[i])
		}
		n += len(s)
	}
	return n, nil
}

// EncodeInto writes the entry into dst, which must be exactly the size
// Size returned (the journal encodes straight into batch memory).
func (e *Entry) EncodeInto(dst []byte) {
	dst[0] = entryVersion
	dst[1] = byte(e.Direction)
	binary.BigEndian.PutUint16(dst[2:], uint16(e.Flags))
	binary.BigEndian.PutUint64(dst[4:], uint64(e.Time.UnixNano()))
	off := entryFixedLen
	for _, s := range e.stringFields() {
		dst[off] = byte(len(s))
		off++
		off += copy(dst[off:], s)
	}
	off += binary.PutUvarint(dst[off:], uint64(len(e.Raw)))
	off += copy(dst[off:], e.Raw)
	if off+crcLen != len(dst) {
		panic(fmt.Sprintf("journal: entry encoding size %d, want %d", off+crcLen, len(dst)))
	}
	binary.BigEndian.PutUint32(dst[off:], crc32.Checksum(dst[:off], castagnoli))
}

// MarshalBinary encodes the entry (Seq excluded) in the stored format.
func (e *Entry) MarshalBinary() ([]byte, error) {
	n, err := e.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	e.EncodeInto(b)
	return b, nil
}

// DecodeEntry decodes a stored entry into e, leaving e.Seq alone. It copies
// what it keeps, so b may be reused afterwards. Any deviation from the
// format (bad checksum, unknown version, a length over its bound, trailing
// bytes) is an error wrapping ErrCorrupt.
func DecodeEntry(b []byte, e *Entry) error {
	if len(b) < entryFixedLen+numStringFields+1+crcLen {
		return fmt.Errorf("%w: entry of %d bytes is too short", ErrCorrupt, len(b))
	}
	body := b[:len(b)-crcLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return fmt.Errorf("%w: entry checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	if body[0] != entryVersion {
		return fmt.Errorf("%w: entry version %d", ErrCorrupt, body[0])
	}
	dir := Direction(body[1])
	if dir != In && dir != Out {
		return fmt.Errorf("%w: entry direction %d", ErrCorrupt, body[1])
	}
	// First pass: check every string length and find where they end.
	var start, end [numStringFields]int
	off := entryFixedLen
	for i := range start {
		if off >= len(body) {
			return fmt.Errorf("%w: entry ends in field %s", ErrCorrupt, stringFieldName[i])
		}
		n := int(body[off])
		off++
		if n > stringFieldMax[i] || off+n > len(body) {
			return fmt.Errorf("%w: entry field %s length %d", ErrCorrupt, stringFieldName[i], n)
		}
		start[i], end[i] = off, off+n
		off += n
	}
	// One string allocation holds every string field; the fields are
	// substrings of it.
	all := string(body[entryFixedLen:off])
	var f [numStringFields]string
	for i := range f {
		f[i] = all[start[i]-entryFixedLen : end[i]-entryFixedLen]
	}
	rawLen, k := binary.Uvarint(body[off:])
	if k <= 0 || k != UvarintLen(rawLen) || rawLen > MaxRawLen {
		return fmt.Errorf("%w: entry raw length", ErrCorrupt)
	}
	off += k
	if uint64(len(body)-off) != rawLen {
		return fmt.Errorf("%w: entry raw length %d, %d bytes left", ErrCorrupt, rawLen, len(body)-off)
	}
	if !ValidDate(f[10]) {
		return fmt.Errorf("%w: entry business date %q", ErrCorrupt, f[10])
	}
	*e = Entry{
		Seq:          e.Seq,
		Direction:    dir,
		Flags:        Flags(binary.BigEndian.Uint16(body[2:])),
		Time:         time.Unix(0, int64(binary.BigEndian.Uint64(body[4:]))).UTC(),
		Listener:     f[0],
		Peer:         f[1],
		Terminal:     f[2],
		Merchant:     f[3],
		MTI:          f[4],
		STAN:         f[5],
		Batch:        f[6],
		RRN:          f[7],
		TxType:       f[8],
		ResponseCode: f[9],
		BusinessDate: f[10],
	}
	if rawLen > 0 {
		e.Raw = append([]byte(nil), body[off:]...)
	}
	return nil
}

// ValidDate reports whether s is eight ASCII digits. The calendar is the
// switch's business; the journal only needs the dates to sort.
func ValidDate(s string) bool { return digits8(s) }

// UvarintLen is the length of v as a uvarint; decoders insist on it so that
// every value has exactly one encoding.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
