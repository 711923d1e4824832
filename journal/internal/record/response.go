package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// ResponseRecord is what the switch keeps about an answered request so that
// a duplicate gets the same answer: the fingerprint of the request (to tell
// a true repeat from a different message reusing the STAN, which gets
// `94`), and the response as sent.
type ResponseRecord struct {
	// Fingerprint is a 32-byte hash (SHA-256, say) of the request content
	// the switch compares; the journal stores it and compares nothing.
	Fingerprint [FingerprintLen]byte
	// ResponseCode is field 39 of the stored response.
	ResponseCode string
	// Response holds the response message bytes as sent, at most MaxRawLen.
	Response []byte
	// MAKGeneration and MAKCheckValue identify the MAK the response was
	// MACed under, so that the switch can MAC it again if the terminal has
	// signed on with new keys since.
	MAKGeneration uint32
	MAKCheckValue []byte
	// ResponseSeq is the journal sequence of the response entry, for
	// operators following a duplicate back to its original.
	ResponseSeq uint64
	// Time is when the response was first sent.
	Time time.Time
	// TxID is the ledger's posting set that the request's terminal
	// reference (terminal, batch, STAN) names, when the switch keeps that
	// reference for the ledger (ledger.Common.ReferenceKeptByCaller,
	// docs/journal.md#what-one-consume-writes); 0 for none.
	TxID uint64
}

// Bounds of a stored response.
const (
	MaxKCVLen      = 16
	FingerprintLen = 32
)

// Encoding, version 1 (a record without a TxID) and 2 (with one):
//
//	version 1 | fingerprint 32 | mak generation 4 | response seq 8 |
//	time 8 (UTC Unix ns) | rc len 1 + rc | kcv len 1 + kcv |
//	response uvarint len + bytes | crc32c 4
//	version 2 | the same, with txid uvarint (never 0) after the time
//
// A record has one encoding: TxID 0 is version 1, else version 2.
const (
	responseVersion   = 1
	responseVersionTx = 2
	responseFixedLen  = 1 + FingerprintLen + 4 + 8 + 8
)

// Size checks every bound and returns the encoded size.
func (r *ResponseRecord) Size() (int, error) {
	if len(r.ResponseCode) > MaxRCLen {
		return 0, fmt.Errorf("%w: response code %q", ErrInvalidEntry, r.ResponseCode)
	}
	if len(r.MAKCheckValue) > MaxKCVLen {
		return 0, fmt.Errorf("%w: MAK check value of %d bytes: limit %d", ErrInvalidEntry, len(r.MAKCheckValue), MaxKCVLen)
	}
	if len(r.Response) > MaxRawLen {
		return 0, fmt.Errorf("%w: response of %d bytes: limit %d", ErrInvalidEntry, len(r.Response), MaxRawLen)
	}
	if r.Time.IsZero() {
		return 0, fmt.Errorf("%w: response time not set", ErrInvalidEntry)
	}
	n := 0
	if r.TxID != 0 {
		n = UvarintLen(r.TxID)
	}
	return responseFixedLen + n + 1 + len(r.ResponseCode) + 1 + len(r.MAKCheckValue) +
		UvarintLen(uint64(len(r.Response))) + len(r.Response) + crcLen, nil
}

// EncodeInto writes the record into dst, which must be exactly the size
// Size returned.
func (r *ResponseRecord) EncodeInto(dst []byte) {
	dst[0] = responseVersion
	off := 1
	off += copy(dst[off:], r.Fingerprint[:])
	binary.BigEndian.PutUint32(dst[off:], r.MAKGeneration)
	binary.BigEndian.PutUint64(dst[off+4:], r.ResponseSeq)
	binary.BigEndian.PutUint64(dst[off+12:], uint64(r.Time.UnixNano()))
	off += 20
	if r.TxID != 0 {
		dst[0] = responseVersionTx
		off += binary.PutUvarint(dst[off:], r.TxID)
	}
	dst[off] = byte(len(r.ResponseCode))
	off++
	off += copy(dst[off:], r.ResponseCode)
	dst[off] = byte(len(r.MAKCheckValue))
	off++
	off += copy(dst[off:], r.MAKCheckValue)
	off += binary.PutUvarint(dst[off:], uint64(len(r.Response)))
	off += copy(dst[off:], r.Response)
	if off+crcLen != len(dst) {
		panic(fmt.Sprintf("journal: response encoding size %d, want %d", off+crcLen, len(dst)))
	}
	binary.BigEndian.PutUint32(dst[off:], crc32.Checksum(dst[:off], castagnoli))
}

// DecodeResponseRecord decodes a stored response record; any deviation from
// the format is an error wrapping ErrCorrupt. The result copies from b.
func DecodeResponseRecord(b []byte) (ResponseRecord, error) {
	var r ResponseRecord
	if len(b) < responseFixedLen+2+1+crcLen {
		return r, fmt.Errorf("%w: response record of %d bytes is too short", ErrCorrupt, len(b))
	}
	body := b[:len(b)-crcLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return r, fmt.Errorf("%w: response record checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	if body[0] != responseVersion && body[0] != responseVersionTx {
		return r, fmt.Errorf("%w: response record version %d", ErrCorrupt, body[0])
	}
	off := 1
	copy(r.Fingerprint[:], body[off:])
	off += FingerprintLen
	r.MAKGeneration = binary.BigEndian.Uint32(body[off:])
	r.ResponseSeq = binary.BigEndian.Uint64(body[off+4:])
	r.Time = time.Unix(0, int64(binary.BigEndian.Uint64(body[off+12:]))).UTC()
	off += 20
	if body[0] == responseVersionTx {
		tx, k := binary.Uvarint(body[off:])
		if k <= 0 || k != UvarintLen(tx) || tx == 0 || off+k >= len(body) {
			return ResponseRecord{}, fmt.Errorf("%w: response record transaction id", ErrCorrupt)
		}
		r.TxID = tx
		off += k
	}
	n := int(body[off])
	off++
	if n > MaxRCLen || off+n >= len(body) {
		return ResponseRecord{}, fmt.Errorf("%w: response code length %d", ErrCorrupt, n)
	}
	r.ResponseCode = string(body[off : off+n])
	off += n
	n = int(body[off])
	off++
	if n > MaxKCVLen || off+n > len(body) {
		return ResponseRecord{}, fmt.Errorf("%w: MAK check value length %d", ErrCorrupt, n)
	}
	if n > 0 {
		r.MAKCheckValue = append([]byte(nil), body[off:off+n]...)
	}
	off += n
	rl, k := binary.Uvarint(body[off:])
	if k <= 0 || k != UvarintLen(rl) || rl > MaxRawLen || uint64(len(body)-off-k) != rl {
		return ResponseRecord{}, fmt.Errorf("%w: response length", ErrCorrupt)
	}
	off += k
	if rl > 0 {
		r.Response = append([]byte(nil), body[off:]...)
	}
	return r, nil
}
