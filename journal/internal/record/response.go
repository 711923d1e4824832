package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// ResponseRecord is what the switch keeps about an answered request so that
// a duplicate gets the same answer: the fingerprint of the request (to tell
// a true repeat from a different message reusing the STAN, which gets
// `94`), and the response as sent.
type ResponseRecord struct {
	// Fingerprint is a 32-byte hash (SHA-256) of the request content the
	// switch compares; the journal stores a prefix of it and compares
	// nothing. A record stores its first StoredFingerprintLen bytes
	// (version 3; a decoded one has the rest zero); records of versions 1
	// and 2 stored all 32. Compare with MatchesFingerprint, which compares
	// as many bytes as the record holds.
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
	// Time is when the response was first sent. A record keeps it to the
	// second (version 3: the fraction is dropped); records of versions 1
	// and 2 kept nanoseconds. Its one use, retention's cut, is taken to
	// the second too (docs/journal.md#retention), so the comparison is
	// exact either way.
	Time time.Time
	// TxID is the ledger's posting set that the request's terminal
	// reference (terminal, batch, STAN) names, when the switch keeps that
	// reference for the ledger (ledger.Common.ReferenceKeptByCaller,
	// docs/journal.md#what-one-consume-writes); 0 for none.
	TxID uint64

	// fpStored is how many leading bytes of Fingerprint a decoded record
	// holds (StoredFingerprintLen, or FingerprintLen for versions 1 and
	// 2); 0 for a record not decoded, whose Fingerprint is whole.
	fpStored int
}

// Bounds of a stored response.
const (
	MaxKCVLen      = 16
	FingerprintLen = 32
	// StoredFingerprintLen is how much of the fingerprint a record keeps:
	// 128 bits of SHA-256. The fingerprint does not authenticate anything;
	// it only tells a retransmission (the same request bytes, less the
	// MAC) from another request reusing one terminal, batch, STAN and date
	// while the record lives (the duplicate window, days). Two different
	// requests of one such name agree in 128 bits of SHA-256 with
	// probability 2^-128; finding a request that matches a given one costs
	// about 2^128 hashes (a second preimage: truncation leaves no shortcut
	// known), and even a pair made to collide (2^64 hashes, both made by
	// whoever holds the terminal's MAK) would get the second the first's
	// answer replayed: no money moves for a replay.
	StoredFingerprintLen = 16
	// SeqDayUnit is the journal's sequence layout (sequence = business
	// day × SeqDayUnit + counter, docs/journal.md#sequences), which
	// version 3 stores as its two parts. Any sequence round-trips; the
	// split only makes the usual ones short.
	SeqDayUnit = 100_000_000_000
)

// Encoding, version 3 (written):
//
//	version 3 | flags 1 | fingerprint 16 (the first 16 bytes) |
//	mak generation uvarint | response seq: day uvarint, counter uvarint
//	(seq = day × SeqDayUnit + counter, counter < SeqDayUnit) |
//	time: zigzag varint of the Unix seconds less day × 86400 |
//	[txid uvarint, not 0] | rc | [kcv len 1 (1..16) + kcv] |
//	[response uvarint len (1..MaxRawLen) + bytes] | crc32c 4
//
// flags: bit 0 a txid follows, bit 1 a kcv, bit 2 a response; the others
// are 0. rc is one byte 0..99 for a response code of two ASCII digits
// ("00".."99"), else 0x80 + its length (0..MaxRCLen) and its bytes. Each
// record has one encoding: every uvarint in its shortest form, and a
// part that is absent (TxID 0, no kcv, no response) has no bytes.
// Time is kept from 1970 to the year 9999, to the second.
//
// Versions 1 (a record without a TxID) and 2 (with one), still read:
//
//	version 1 | fingerprint 32 | mak generation 4 | response seq 8 |
//	time 8 (UTC Unix ns) | rc len 1 + rc | kcv len 1 + kcv |
//	response uvarint len + bytes | crc32c 4
//	version 2 | the same, with txid uvarint (never 0) after the time
const (
	responseVersion   = 1
	responseVersionTx = 2
	responseVersion3  = 3
	responseFixedLen  = 1 + FingerprintLen + 4 + 8 + 8

	respFlagTxID     = 1 << 0
	respFlagKCV      = 1 << 1
	respFlagResponse = 1 << 2
	respFlags        = respFlagTxID | respFlagKCV | respFlagResponse

	// rcLong marks a response code not of two ASCII digits.
	rcLong = 0x80
	// maxRecordUnix is 9999-12-31T23:59:59Z.
	maxRecordUnix = 253402300799
	// maxTimeOffset bounds the stored time offset: the largest day a
	// sequence can carry starts before 2^44 seconds.
	maxTimeOffset = 1 << 45
	// respMinLen is the shortest version 3 record.
	respMinLen = 2 + StoredFingerprintLen + 4 + 1 + crcLen
)

// MatchesFingerprint reports whether fp, a request's whole fingerprint,
// is the one the record holds, comparing as many leading bytes as it
// stores: 16 for a record of version 3, 32 for one written before.
func (r *ResponseRecord) MatchesFingerprint(fp [FingerprintLen]byte) bool {
	n := r.fpStored
	if n == 0 {
		n = FingerprintLen
	}
	return bytes.Equal(r.Fingerprint[:n], fp[:n])
}

// twoDigits reports whether rc is two ASCII digits, and their value.
func twoDigits(rc string) (byte, bool) {
	if len(rc) != 2 || rc[0] < '0' || rc[0] > '9' || rc[1] < '0' || rc[1] > '9' {
		return 0, false
	}
	return (rc[0]-'0')*10 + rc[1] - '0', true
}

// timeOffset is the stored time: the record's Unix seconds less the
// start of the day its response sequence carries.
func (r *ResponseRecord) timeOffset() int64 {
	return r.Time.Unix() - int64(r.ResponseSeq/SeqDayUnit)*86400
}

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
	if s := r.Time.Unix(); s < 0 || s > maxRecordUnix {
		return 0, fmt.Errorf("%w: response time %s outside 1970..9999", ErrInvalidEntry, r.Time.UTC().Format(time.RFC3339))
	}
	n := 2 + StoredFingerprintLen + UvarintLen(uint64(r.MAKGeneration)) +
		UvarintLen(r.ResponseSeq/SeqDayUnit) + UvarintLen(r.ResponseSeq%SeqDayUnit) +
		UvarintLen(zigzag(r.timeOffset())) + 1 + crcLen
	if r.TxID != 0 {
		n += UvarintLen(r.TxID)
	}
	if _, ok := twoDigits(r.ResponseCode); !ok {
		n += len(r.ResponseCode)
	}
	if len(r.MAKCheckValue) > 0 {
		n += 1 + len(r.MAKCheckValue)
	}
	if len(r.Response) > 0 {
		n += UvarintLen(uint64(len(r.Response))) + len(r.Response)
	}
	return n, nil
}

// EncodeInto writes the record (version 3) into dst, which must be
// exactly the size Size returned.
func (r *ResponseRecord) EncodeInto(dst []byte) {
	dst[0] = responseVersion3
	var flags byte
	if r.TxID != 0 {
		flags |= respFlagTxID
	}
	if len(r.MAKCheckValue) > 0 {
		flags |= respFlagKCV
	}
	if len(r.Response) > 0 {
		flags |= respFlagResponse
	}
	dst[1] = flags
	// The stored fingerprint as two words, not a call to copy (the
	// constants below fail to compile if it is not 16 bytes).
	const _, _ = uint(StoredFingerprintLen - 16), uint(16 - StoredFingerprintLen)
	fp := dst[2 : 2+StoredFingerprintLen]
	binary.LittleEndian.PutUint64(fp[:8], binary.LittleEndian.Uint64(r.Fingerprint[:8]))
	binary.LittleEndian.PutUint64(fp[8:], binary.LittleEndian.Uint64(r.Fingerprint[8:16]))
	off := 2 + StoredFingerprintLen
	off += binary.PutUvarint(dst[off:], uint64(r.MAKGeneration))
	off += binary.PutUvarint(dst[off:], r.ResponseSeq/SeqDayUnit)
	off += binary.PutUvarint(dst[off:], r.ResponseSeq%SeqDayUnit)
	off += binary.PutUvarint(dst[off:], zigzag(r.timeOffset()))
	if r.TxID != 0 {
		off += binary.PutUvarint(dst[off:], r.TxID)
	}
	if d, ok := twoDigits(r.ResponseCode); ok {
		dst[off] = d
		off++
	} else {
		dst[off] = rcLong | byte(len(r.ResponseCode))
		off++
		off += copy(dst[off:], r.ResponseCode)
	}
	if len(r.MAKCheckValue) > 0 {
		dst[off] = byte(len(r.MAKCheckValue))
		off++
		off += copy(dst[off:], r.MAKCheckValue)
	}
	if len(r.Response) > 0 {
		off += binary.PutUvarint(dst[off:], uint64(len(r.Response)))
		off += copy(dst[off:], r.Response)
	}
	if off+crcLen != len(dst) {
		panic(fmt.Sprintf("journal: response encoding size %d, want %d", off+crcLen, len(dst)))
	}
	binary.BigEndian.PutUint32(dst[off:], crc32.Checksum(dst[:off], castagnoli))
}

// DecodeResponseRecord decodes a stored response record of any version;
// any deviation from the format is an error wrapping ErrCorrupt. The
// result copies from b.
func DecodeResponseRecord(b []byte) (ResponseRecord, error) {
	if len(b) < respMinLen {
		return ResponseRecord{}, fmt.Errorf("%w: response record of %d bytes is too short", ErrCorrupt, len(b))
	}
	body := b[:len(b)-crcLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return ResponseRecord{}, fmt.Errorf("%w: response record checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	switch body[0] {
	case responseVersion3:
		return decodeResponseV3(body)
	case responseVersion, responseVersionTx:
		return decodeResponseV1(body)
	}
	return ResponseRecord{}, fmt.Errorf("%w: response record version %d", ErrCorrupt, body[0])
}

// decodeResponseV3 decodes the body (without its CRC) of a version 3
// record.
func decodeResponseV3(body []byte) (ResponseRecord, error) {
	r := ResponseRecord{fpStored: StoredFingerprintLen}
	flags := body[1]
	if flags&^respFlags != 0 {
		return ResponseRecord{}, fmt.Errorf("%w: response record flags %02x", ErrCorrupt, flags)
	}
	off := 2
	off += copy(r.Fingerprint[:StoredFingerprintLen], body[off:])
	// uv reads one uvarint in its shortest form.
	bad := false
	uv := func() uint64 {
		v, k := binary.Uvarint(body[off:])
		if k <= 0 || k != UvarintLen(v) {
			bad = true
			return 0
		}
		off += k
		return v
	}
	gen := uv()
	day := uv()
	counter := uv()
	tz := uv()
	if bad || gen > math.MaxUint32 {
		return ResponseRecord{}, fmt.Errorf("%w: response record MAK generation or sequence", ErrCorrupt)
	}
	if counter >= SeqDayUnit || day > (math.MaxUint64-counter)/SeqDayUnit {
		return ResponseRecord{}, fmt.Errorf("%w: response record sequence day %d counter %d", ErrCorrupt, day, counter)
	}
	r.MAKGeneration, r.ResponseSeq = uint32(gen), day*SeqDayUnit+counter
	offset := unzigzag(tz)
	if offset > maxTimeOffset || offset < -maxTimeOffset {
		return ResponseRecord{}, fmt.Errorf("%w: response record time", ErrCorrupt)
	}
	sec := int64(day)*86400 + offset
	if sec < 0 || sec > maxRecordUnix {
		return ResponseRecord{}, fmt.Errorf("%w: response record time %d", ErrCorrupt, sec)
	}
	r.Time = time.Unix(sec, 0).UTC()
	if flags&respFlagTxID != 0 {
		if r.TxID = uv(); bad || r.TxID == 0 {
			return ResponseRecord{}, fmt.Errorf("%w: response record transaction id", ErrCorrupt)
		}
	}
	if off >= len(body) {
		return ResponseRecord{}, fmt.Errorf("%w: response record ends before its response code", ErrCorrupt)
	}
	c := body[off]
	off++
	switch {
	case c < 100:
		r.ResponseCode = string([]byte{'0' + c/10, '0' + c%10})
	case c&rcLong != 0 && int(c&^rcLong) <= MaxRCLen && off+int(c&^rcLong) <= len(body):
		n := int(c &^ rcLong)
		r.ResponseCode = string(body[off : off+n])
		off += n
		if _, ok := twoDigits(r.ResponseCode); ok {
			return ResponseRecord{}, fmt.Errorf("%w: response code %q in its long form", ErrCorrupt, r.ResponseCode)
		}
	default:
		return ResponseRecord{}, fmt.Errorf("%w: response code byte %02x", ErrCorrupt, c)
	}
	if flags&respFlagKCV != 0 {
		if off >= len(body) {
			return ResponseRecord{}, fmt.Errorf("%w: response record ends before its MAK check value", ErrCorrupt)
		}
		n := int(body[off])
		off++
		if n == 0 || n > MaxKCVLen || off+n > len(body) {
			return ResponseRecord{}, fmt.Errorf("%w: MAK check value length %d", ErrCorrupt, n)
		}
		r.MAKCheckValue = append([]byte(nil), body[off:off+n]...)
		off += n
	}
	if flags&respFlagResponse != 0 {
		rl := uv()
		if bad || rl == 0 || rl > MaxRawLen || uint64(len(body)-off) != rl {
			return ResponseRecord{}, fmt.Errorf("%w: response length", ErrCorrupt)
		}
		r.Response = append([]byte(nil), body[off:]...)
		off = len(body)
	}
	if off != len(body) {
		return ResponseRecord{}, fmt.Errorf("%w: %d bytes after the response record", ErrCorrupt, len(body)-off)
	}
	return r, nil
}

// decodeResponseV1 decodes the body (without its CRC) of a version 1 or
// 2 record.
func decodeResponseV1(body []byte) (ResponseRecord, error) {
	r := ResponseRecord{fpStored: FingerprintLen}
	if len(body) < responseFixedLen+2+1 {
		return ResponseRecord{}, fmt.Errorf("%w: response record of %d bytes is too short", ErrCorrupt, len(body)+crcLen)
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
