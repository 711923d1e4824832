package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// A request and its response are stored as one value, a pair, under the
// request's sequence; the response's sequence is the next one and has no
// key of its own. The fields both halves share are stored once. Pairs are
// written in version 4 (pairdelta.go); versions 2, below, and 3 are still
// read.
//
//	version   1 byte (= 2)
//	flags     2 bytes, request; 2 bytes, response
//	time      8 bytes, the request's UTC Unix nanoseconds
//	delay     zig-zag varint, response time − request time, nanoseconds
//	8 shared strings, each 1 length byte + bytes: listener, peer, terminal,
//	          merchant, stan, batch, tx_type, business_date
//	3 strings of the request: mti, rrn, response_code
//	3 strings of the response: mti, rrn, response_code
//	raw       uvarint length + bytes, request; the same, response
//	crc       4 bytes, CRC-32C of everything before it
//
// The request's direction is In, the response's Out.
const (
	pairVersion     = 2
	pairFixedLen    = 1 + 2 + 2 + 8
	numSharedFields = 8
	numOwnFields    = 3
)

var sharedFieldMax = [numSharedFields]int{
	MaxListenerLen, MaxPeerLen, MaxTerminalLen, MaxMerchantLen, MaxSTANLen, MaxBatchLen, MaxTxTypeLen, DateLen,
}

var sharedFieldName = [numSharedFields]string{
	"listener", "peer", "terminal", "merchant", "stan", "batch", "tx_type", "business_date",
}

var ownFieldMax = [numOwnFields]int{MaxMTILen, MaxRRNLen, MaxRCLen}

var ownFieldName = [numOwnFields]string{"mti", "rrn", "response_code"}

func (e *Entry) sharedFields() [numSharedFields]string {
	return [numSharedFields]string{e.Listener, e.Peer, e.Terminal, e.Merchant, e.STAN, e.Batch, e.TxType, e.BusinessDate}
}

func (e *Entry) ownFields() [numOwnFields]string {
	return [numOwnFields]string{e.MTI, e.RRN, e.ResponseCode}
}

// IsPair reports whether a stored value is a request/response pair rather
// than a single entry (it does not check the rest).
func IsPair(b []byte) bool {
	return len(b) > 0 && (b[0] == pairVersion || b[0] == pairVersion3 || b[0] == pairVersion4)
}

// checkPair checks both entries (each as Size does, plus: the request is
// In, the response Out, and they share every field the pair stores once).
// A valid pair, the rule on the hot path, is recognized by pairValid
// without Size's second pass over the shared fields; anything else takes
// the checks below, which name what is wrong.
func checkPair(req, resp *Entry) error {
	if pairValid(req, resp) {
		return nil
	}
	return checkPairSlow(req, resp)
}

// pairValid reports whether checkPairSlow would accept the pair (false
// may also mean it would: then checkPairSlow decides). The shared fields
// are bounded once, on the request, after comparing them (pointers
// first: both entries usually hold the same strings).
func pairValid(req, resp *Entry) bool {
	return req.Direction == In && resp.Direction == Out &&
		!req.Time.IsZero() && !resp.Time.IsZero() &&
		len(req.Raw) <= MaxRawLen && len(resp.Raw) <= MaxRawLen &&
		req.Listener == resp.Listener && req.Peer == resp.Peer &&
		req.Terminal == resp.Terminal && req.Merchant == resp.Merchant &&
		req.STAN == resp.STAN && req.Batch == resp.Batch &&
		req.TxType == resp.TxType && req.BusinessDate == resp.BusinessDate &&
		len(req.Listener) <= MaxListenerLen && len(req.Peer) <= MaxPeerLen &&
		len(req.Terminal) <= MaxTerminalLen && len(req.Merchant) <= MaxMerchantLen &&
		len(req.STAN) <= MaxSTANLen && len(req.Batch) <= MaxBatchLen &&
		len(req.TxType) <= MaxTxTypeLen &&
		len(req.MTI) <= MaxMTILen && len(req.RRN) <= MaxRRNLen && len(req.ResponseCode) <= MaxRCLen &&
		len(resp.MTI) <= MaxMTILen && len(resp.RRN) <= MaxRRNLen && len(resp.ResponseCode) <= MaxRCLen &&
		digits8(req.BusinessDate)
}

// digits8 reports whether s is eight ASCII digits, as ValidDate, a word
// at a time: every byte 0x30–0x3f, and none of them past 0x39 (adding 6
// to a low nibble of 0–9 carries nothing into the high one).
func digits8(s string) bool {
	return len(s) == DateLen && digitsWord(dateWord(s))
}

// dateWord returns the 8 bytes of s (of DateLen bytes) as a little-endian
// word.
func dateWord(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// digitsWord reports whether every byte of w is an ASCII digit.
func digitsWord(w uint64) bool {
	const high, zeros = 0xf0f0f0f0f0f0f0f0, 0x3030303030303030
	return w&high == zeros && (w+0x0606060606060606)&high == zeros
}

// checkPairSlow is checkPair with every check and its error.
func checkPairSlow(req, resp *Entry) error {
	if _, err := req.Size(); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if _, err := resp.Size(); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	if req.Direction != In || resp.Direction != Out {
		return fmt.Errorf("%w: a pair is a request in and a response out", ErrInvalidEntry)
	}
	if req.sharedFields() != resp.sharedFields() {
		return fmt.Errorf("%w: request and response differ in a shared field", ErrInvalidEntry)
	}
	return nil
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// DecodePair decodes a stored pair (version 2, 3 or 4) into req and resp,
// leaving their Seq alone. Like DecodeEntry it copies what it keeps and
// rejects any deviation from the format (ErrCorrupt).
func DecodePair(b []byte, req, resp *Entry) error {
	if len(b) > 0 && (b[0] == pairVersion3 || b[0] == pairVersion4) {
		return decodePair3(b, req, resp)
	}
	return decodePair2(b, req, resp)
}

// decodePair2 decodes a version 2 pair. Whatever it accepts re-encodes
// (in version 2) to the same bytes.
func decodePair2(b []byte, req, resp *Entry) error {
	if len(b) < pairFixedLen+1+numSharedFields+2*numOwnFields+2+crcLen {
		return fmt.Errorf("%w: pair of %d bytes is too short", ErrCorrupt, len(b))
	}
	body := b[:len(b)-crcLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return fmt.Errorf("%w: pair checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	if body[0] != pairVersion {
		return fmt.Errorf("%w: pair version %d", ErrCorrupt, body[0])
	}
	off := pairFixedLen
	du, k := binary.Uvarint(body[off:])
	if k <= 0 || k != UvarintLen(du) {
		return fmt.Errorf("%w: pair response delay", ErrCorrupt)
	}
	off += k
	const numStrings = numSharedFields + 2*numOwnFields
	var start, end [numStrings]int
	strStart := off
	for i := range start {
		max, name := 0, ""
		switch {
		case i < numSharedFields:
			max, name = sharedFieldMax[i], sharedFieldName[i]
		default:
			j := (i - numSharedFields) % numOwnFields
			max, name = ownFieldMax[j], ownFieldName[j]
		}
		if off >= len(body) {
			return fmt.Errorf("%w: pair ends in field %s", ErrCorrupt, name)
		}
		n := int(body[off])
		off++
		if n > max || off+n > len(body) {
			return fmt.Errorf("%w: pair field %s length %d", ErrCorrupt, name, n)
		}
		start[i], end[i] = off, off+n
		off += n
	}
	all := string(body[strStart:off])
	var f [numStrings]string
	for i := range f {
		f[i] = all[start[i]-strStart : end[i]-strStart]
	}
	if !ValidDate(f[7]) {
		return fmt.Errorf("%w: pair business date %q", ErrCorrupt, f[7])
	}
	var raws [2][]byte
	for i := range raws {
		n, k := binary.Uvarint(body[off:])
		if k <= 0 || k != UvarintLen(n) || n > MaxRawLen || n > uint64(len(body)-off-k) {
			return fmt.Errorf("%w: pair raw length", ErrCorrupt)
		}
		off += k
		if n > 0 {
			raws[i] = append([]byte(nil), body[off:off+int(n)]...)
		}
		off += int(n)
	}
	if off != len(body) {
		return fmt.Errorf("%w: pair has %d trailing bytes", ErrCorrupt, len(body)-off)
	}
	t0 := int64(binary.BigEndian.Uint64(body[5:]))
	t1 := t0 + unzigzag(du)
	fillPair(req, resp, &f, raws, [2]Flags{Flags(binary.BigEndian.Uint16(body[1:])), Flags(binary.BigEndian.Uint16(body[3:]))}, t0, t1)
	return nil
}

// fillPair sets req and resp, keeping their Seq, from a decoded pair: its
// strings (the shared fields, then the request's own, then the
// response's, as every version orders them), raw messages, flags and
// times (UTC Unix nanoseconds).
func fillPair(req, resp *Entry, f *[numSharedFields + 2*numOwnFields]string, raws [2][]byte, flags [2]Flags, t0, t1 int64) {
	for i, e := range [2]*Entry{req, resp} {
		own := f[numSharedFields+i*numOwnFields:]
		*e = Entry{
			Seq:          e.Seq,
			Direction:    [2]Direction{In, Out}[i],
			Flags:        flags[i],
			Time:         time.Unix(0, [2]int64{t0, t1}[i]).UTC(),
			Listener:     f[0],
			Peer:         f[1],
			Terminal:     f[2],
			Merchant:     f[3],
			STAN:         f[4],
			Batch:        f[5],
			TxType:       f[6],
			BusinessDate: f[7],
			MTI:          own[0],
			RRN:          own[1],
			ResponseCode: own[2],
			Raw:          raws[i],
		}
	}
}
