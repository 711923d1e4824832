package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// Bounds of a queued message.
const (
	// MaxPayloadLen bounds one queued message.
	MaxPayloadLen = 64 << 10
	// MaxAttempts bounds the stored send count.
	MaxAttempts = 1_000_000
)

// Message is one queued message.
type Message struct {
	ID      uint64
	Dest    string
	Payload []byte
	// Attempts is how many times Attempt handed it out for sending.
	Attempts int
	// Enqueued is when Enqueue wrote it; LastAttempt when Attempt last
	// handed it out (zero if never).
	Enqueued    time.Time
	LastAttempt time.Time
}

// Message value, version 1:
//
//	version 1 | attempts 4 | enqueued 8 (UTC Unix ns) | last attempt 8 |
//	payload uvarint len + bytes | crc32c 4
const (
	messageVersion  = 1
	messageFixedLen = 1 + 4 + 8 + 8
)

// EncodeMessage encodes a queued message's value (ID and Dest live in the
// key).
func EncodeMessage(m *Message) []byte {
	n := messageFixedLen + UvarintLen(uint64(len(m.Payload))) + len(m.Payload) + crcLen
	b := make([]byte, messageFixedLen, n)
	b[0] = messageVersion
	binary.BigEndian.PutUint32(b[1:], uint32(m.Attempts))
	binary.BigEndian.PutUint64(b[5:], uint64(unixNanos(m.Enqueued)))
	binary.BigEndian.PutUint64(b[13:], uint64(unixNanos(m.LastAttempt)))
	b = binary.AppendUvarint(b, uint64(len(m.Payload)))
	b = append(b, m.Payload...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// unixNanos stores the zero time as 0 so that "never attempted" survives a
// round trip.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// DecodeMessage decodes a stored message value into m (ID and Dest come
// from the key). Any deviation is an error wrapping ErrCorrupt.
func DecodeMessage(b []byte, m *Message) error {
	if len(b) < messageFixedLen+1+crcLen {
		return fmt.Errorf("%w: queued message of %d bytes is too short", ErrCorrupt, len(b))
	}
	body := b[:len(b)-crcLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return fmt.Errorf("%w: queued message checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	if body[0] != messageVersion {
		return fmt.Errorf("%w: queued message version %d", ErrCorrupt, body[0])
	}
	attempts := binary.BigEndian.Uint32(body[1:])
	if attempts > MaxAttempts {
		return fmt.Errorf("%w: queued message attempts %d", ErrCorrupt, attempts)
	}
	pl, k := binary.Uvarint(body[messageFixedLen:])
	if k <= 0 || k != UvarintLen(pl) || pl > MaxPayloadLen || uint64(len(body)-messageFixedLen-k) != pl {
		return fmt.Errorf("%w: queued message payload length", ErrCorrupt)
	}
	m.Attempts = int(attempts)
	m.Enqueued = fromUnixNanos(int64(binary.BigEndian.Uint64(body[5:])))
	m.LastAttempt = fromUnixNanos(int64(binary.BigEndian.Uint64(body[13:])))
	m.Payload = append([]byte(nil), body[messageFixedLen+k:]...)
	return nil
}
