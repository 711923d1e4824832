package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// Pair encoding, version 4 (docs/journal.md#key-layout). A response
// echoes much of its request (card number, processing code, amount, STAN,
// terminal, merchant, currency, field 60), and most of the pair's fields
// are bytes of the two messages, so the response is stored as a delta
// and the fields as references where that is shorter; runs of ASCII
// digits and hex in either message (terminal and merchant ids, amounts,
// a MAC) are packed two characters a byte. All of it is exact: decoding
// gives back the bytes written.
//
//	version   1 byte (= 4)
//	flags     uvarint, request flags << 16 | response flags
//	time      8 bytes big-endian, the request's UTC Unix nanoseconds
//	delay     zig-zag varint, response time − request time, nanoseconds
//	request   uvarint length + operations until that length is reached
//	response  uvarint length + operations until that length is reached
//	listener  string
//	peer      1 byte: 0–64 a literal of that length; 65 an IPv4 address
//	          (4 bytes) and port (2 bytes big-endian), 66 IPv6 (16 + 2),
//	          each written only where it prints back as the same string
//	terminal, merchant, stan, batch: strings
//	tx_type   string
//	date      1 byte: 255 then the 8 digits; else the zig-zag difference
//	          in days between the business date and the request time's
//	          UTC date
//	mti, rrn, response_code of the request, then of the response: strings
//	crc       4 bytes, CRC-32C of everything before it
//
// An operation is a uvarint h = n << 2 | kind: kind 0, a literal of n
// bytes that follow; 1, a copy of n bytes (at least minCopy) from uvarint
// offset o of the request followed by the message so far, lying wholly in
// the request or wholly in what the message produced before it (the
// encoder copies only into the response); 2, n ASCII digits packed two a
// byte, a last odd one's low nibble 0; 3, n (even) uppercase hex digits
// packed two a byte.
//
// Version 3, still read, is the same but for the operations: the request
// raw as its bytes, and the response's operations a uvarint h = n << 1 |
// kind, kind 0 a literal and 1 a copy as above.
//
// A string is a header byte h and what it says: h ≤ 64, a literal of h
// bytes; 65 + i, wellKnown[i] (the listener, tx type, MTI and response
// code fields); 128 + n (n < 64), the n bytes at uvarint offset o of the
// request followed by the response, wholly in one of them; 192 + n (n
// even), n decimal digits packed two a byte (BCD) at uvarint offset o,
// the same way. The encoder takes a reference only where it is shorter.
//
// Unlike version 2 a value has more than one valid encoding (the encoder
// searches, it does not promise the shortest), so the decoder checks
// every bound but not that the encoder would have chosen the same form.
const (
	pairVersion3 = 3
	pairVersion4 = 4
	opLiteral    = 0
	opCopy       = 1
	opDigits     = 2
	opHex        = 3
	minDigitRun  = 6 // a packed run saves half, less its header and the literal it splits
	minHexRun    = 8
	minCopy      = 4 // a shorter copy costs as much as its literal
	probeStep    = 3 // response positions probed outside a match
	deltaBits    = 9 // request positions hashed by their first 4 bytes
	peerIPv4     = MaxPeerLen + 1
	peerIPv6     = MaxPeerLen + 2
	dateLiteral  = 255
	strKnown     = 0x41 // 0x41 + i: wellKnown[i]
	strRef       = 0x80
	strBCD       = 0xc0
	strLenMask   = 0x3f
)

// AppendPair checks the pair (each entry as Size does, plus: the request
// is In, the response Out, and they share the fields a pair stores once)
// and appends its encoding (version 4) to dst.
func AppendPair(dst []byte, req, resp *Entry) ([]byte, error) {
	if err := checkPair(req, resp); err != nil {
		return dst, err
	}
	// The delta's table holds positions + 1 in the two messages: 16 bits
	// hold them for every POS pair, and the table is half the size to
	// clear and to keep in cache.
	if len(req.Raw)+len(resp.Raw) < 1<<16 {
		var table deltaTable[uint16]
		return appendPair(dst, req, resp, &table), nil
	}
	var table deltaTable[uint32]
	return appendPair(dst, req, resp, &table), nil
}

// appendPair appends the encoding of a checked pair, with table (empty)
// for the delta and the string references.
func appendPair[T deltaEntry](dst []byte, req, resp *Entry, table *deltaTable[T]) []byte {
	start := len(dst)
	t0 := req.Time.UnixNano()
	dst = append(dst, pairVersion4)
	dst = binary.AppendUvarint(dst, uint64(req.Flags)<<16|uint64(resp.Flags))
	dst = binary.BigEndian.AppendUint64(dst, uint64(t0))
	dst = binary.AppendUvarint(dst, zigzag(resp.Time.UnixNano()-t0))
	dst = binary.AppendUvarint(dst, uint64(len(req.Raw)))
	dst = appendLiteral(dst, req.Raw)
	dst = binary.AppendUvarint(dst, uint64(len(resp.Raw)))
	dst = appendDelta(dst, req.Raw, resp.Raw, table)
	raws := [2][]byte{req.Raw, resp.Raw}
	dst = appendKnownString(dst, req.Listener)
	dst = appendPeer(dst, req.Peer)
	for _, s := range [...]string{req.Terminal, req.Merchant, req.STAN, req.Batch} {
		dst = appendRefString(dst, s, &raws, table, false)
	}
	dst = appendKnownString(dst, req.TxType)
	dst = appendDate(dst, req.BusinessDate, t0)
	for i, e := range [2]*Entry{req, resp} {
		if c, ok := knownCode(e.MTI); ok {
			dst = append(dst, c)
		} else {
			dst = appendRefString(dst, e.MTI, &raws, table, i == 1)
		}
		dst = appendRefString(dst, e.RRN, &raws, table, i == 1)
		dst = appendKnownString(dst, e.ResponseCode)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// MarshalPair encodes a pair in the stored format.
func MarshalPair(req, resp *Entry) ([]byte, error) {
	b, err := AppendPair(nil, req, resp)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// load32 and load64 read 4 and 8 bytes from i on, little-endian (a
// slice of constant length costs one bounds check and no pointer
// masking, where b[i:] costs both and a length check).
func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i : i+4]) }

func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i : i+8]) }

func hash4(u uint32) uint32 { return (u * 2654435761) >> (32 - deltaBits) }

// matchLen returns the length of the common prefix of a and b.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := load64(a, i) ^ load64(b, i); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

// deltaTable maps the hash of 4 bytes to a position + 1 in the request
// followed by the response (0: none), of type uint16 where every such
// position fits.
type deltaTable[T deltaEntry] [1 << deltaBits]T

type deltaEntry interface{ uint16 | uint32 }

// appendDelta appends the operations that rebuild resp from req: a
// greedy match over a hash of 4-byte sequences — every request position,
// then every other response position as it is scanned, a match found
// extended backwards into the pending literal where it lies in the
// request. The table is left for the string references (findRef).
func appendDelta[T deltaEntry](dst, req, resp []byte, table *deltaTable[T]) []byte {
	i := 0
	for ; i+8 <= len(req); i += 4 {
		x := load64(req, i)
		table[hash4(uint32(x))] = T(i + 1)
		table[hash4(uint32(x>>8))] = T(i + 2)
		table[hash4(uint32(x>>16))] = T(i + 3)
		table[hash4(uint32(x>>24))] = T(i + 4)
	}
	for ; i+4 <= len(req); i++ {
		table[hash4(load32(req, i))] = T(i + 1)
	}
	lit := 0
	i = 0
	for i+4 <= len(resp) {
		cur := load32(resp, i)
		h := hash4(cur)
		c := int(table[h]) - 1
		table[h] = T(len(req) + i + 1)
		if c < 0 {
			i += probeStep
			continue
		}
		// A probe whose 4 bytes differ moves on at once too.
		var n int
		if c < len(req) {
			if load32(req, c) != cur {
				i += probeStep
				continue
			}
			n = matchLen(req[c:], resp[i:])
			for c > 0 && i > lit && req[c-1] == resp[i-1] {
				c, i, n = c-1, i-1, n+1
			}
		} else {
			s := c - len(req)
			if s+4 > i || load32(resp, s) != cur {
				i += probeStep
				continue
			}
			n = matchLen(resp[s:i], resp[i:])
		}
		if n < minCopy { // not taken while minCopy is 4: the 4 bytes matched
			i += probeStep
			continue
		}
		if k := i - lit; k >= minDigitRun {
			dst = appendLiteral(dst, resp[lit:i])
		} else if k > 0 {
			// Too short to pack: appendLiteral's plain literal, inline.
			dst = append(append(dst, byte(k<<2|opLiteral)), resp[lit:i]...)
		}
		dst = binary.AppendUvarint(dst, uint64(n)<<2|opCopy)
		dst = binary.AppendUvarint(dst, uint64(c))
		i += n
		lit = i
	}
	return appendLiteral(dst, resp[lit:])
}

// isHex marks the ASCII digits and uppercase hex letters; isHex[c] == 2
// for a digit.
var isHex = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 2
	}
	for c := 'A'; c <= 'F'; c++ {
		t[c] = 1
	}
	return t
}()

// appendLiteral appends the operations for bytes b: runs of ASCII digits
// (at least minDigitRun) and of uppercase hex with a letter (at least
// minHexRun; an odd run's first character left to the literal before)
// packed, the rest literals.
func appendLiteral(dst, b []byte) []byte {
	if len(b) < minDigitRun {
		// Too short for a packed run (the literals between copies mostly).
		return appendPlain(dst, b)
	}
	lit := 0
	for i := 0; i < len(b); {
		// Skip to the next hex character, 8 bytes at a time; where the
		// run it starts ends in the same 8 bytes, its end and whether it
		// has a letter come from the same masks.
		var j int
		var letters bool
		if i+8 <= len(b) {
			d, l := hexMasks(load64(b, i))
			m := d | l
			// Nothing to pack here unless 6 hex bytes in a row (where a
			// run ending within these 8 bytes could be packed) or a run
			// reaching past them.
			if m&(m>>8)&(m>>16)&(m>>24)&(m>>32)&(m>>40) == 0 && m>>63 == 0 {
				i += 8
				continue
			}
			// The runs that end within these 8 bytes, taken in turn
			// from the same masks: at most 7 characters, so never a hex
			// run to pack, a digit run of 6 or 7.
			k, non := 0, uint64(0)
			for m != 0 {
				k = bits.TrailingZeros64(m)
				// The non-hex bytes from the run's first on.
				if non = ^m & swarHigh &^ (1<<k - 1); non == 0 {
					break
				}
				e := bits.TrailingZeros64(non)
				if (e-k)/8 >= minDigitRun && l&(1<<e-1)&^(1<<k-1) == 0 {
					dst = appendPlain(dst, b[lit:i+k/8])
					dst = append(dst, byte((e-k)/8)<<2|opDigits)
					dst = appendPacked(dst, b, i+k/8, i+e/8)
					lit = i + e/8
				}
				m &^= 1<<e - 1
			}
			if m == 0 {
				i += 8
				continue
			}
			// A run from k on past these 8 bytes.
			j, letters = hexRun(b, i+8)
			letters = letters || l&^(1<<k-1) != 0
			i += k / 8
		} else if isHex[b[i]] == 0 {
			i++
			continue
		} else {
			j, letters = hexRun(b, i)
		}
		switch n := j - i; {
		case !letters && n >= minDigitRun:
			dst = appendPlain(dst, b[lit:i])
			dst = binary.AppendUvarint(dst, uint64(n)<<2|opDigits)
			dst = appendPacked(dst, b, i, j)
			lit = j
		case letters && n >= minHexRun:
			i += n % 2
			dst = appendPlain(dst, b[lit:i])
			dst = binary.AppendUvarint(dst, uint64(j-i)<<2|opHex)
			dst = appendPacked(dst, b, i, j)
			lit = j
		}
		i = j
	}
	return appendPlain(dst, b[lit:])
}

// hexRun returns the end of the run of hex characters starting at i and
// whether it has a letter.
func hexRun(b []byte, i int) (j int, letters bool) {
	for j = i; j+8 <= len(b); j += 8 {
		d, l := hexMasks(load64(b, j))
		if non := ^(d | l) & swarHigh; non != 0 {
			k := bits.TrailingZeros64(non) / 8
			return j + k, letters || l&(1<<(8*k)-1) != 0
		}
		letters = letters || l != 0
	}
	for ; j < len(b) && isHex[b[j]] != 0; j++ {
		letters = letters || isHex[b[j]] == 1
	}
	return j, letters
}

const (
	swarOnes = 0x0101010101010101
	swarLow7 = 0x7f7f7f7f7f7f7f7f
	swarHigh = 0x8080808080808080
)

// hexMasks returns, for the 8 bytes of x, the high bit of each byte that
// is an ASCII digit (d) and of each that is an uppercase hex letter (l):
// the exact "byte between m and n" test on words (m < byte < n, for
// bytes below 128; a byte from 128 on has its high bit cleared by ^x).
func hexMasks(x uint64) (d, l uint64) {
	between := func(m, n uint64) uint64 {
		return (swarOnes*(127+n) - x&swarLow7) &^ x & (x&swarLow7 + swarOnes*(127-m)) & swarHigh
	}
	return between('0'-1, '9'+1), between('A'-1, 'F'+1)
}

// appendPacked appends the run b[i:j], ASCII digits or uppercase hex,
// packed two characters a byte (the first in the high nibble), an odd
// last one's low nibble 0: 8 characters at a time, the last fewer than 8
// from a load of 8 bytes of b with the bytes not in the run cleared
// (packed as 0), so that how long the run is decides few branches.
func appendPacked(dst, b []byte, i, j int) []byte {
	for ; i+8 <= j; i += 8 {
		dst = binary.LittleEndian.AppendUint32(dst, pack8(load64(b, i)))
	}
	t := j - i
	if t == 0 {
		return dst
	}
	var x uint64
	switch {
	case i+8 <= len(b):
		x = load64(b, i) & (1<<(8*t) - 1)
	case j >= 8:
		x = load64(b, j-8) >> (8 * (8 - t))
	default:
		for k := j - 1; k >= i; k-- {
			x = x<<8 | uint64(b[k])
		}
	}
	dst = binary.LittleEndian.AppendUint32(dst, pack8(x))
	return dst[:len(dst)-4+(t+1)/2]
}

// pack8 packs 8 hex characters (little-endian in x) into 4 bytes, the
// first character in the high nibble of the lowest byte: each
// character's value is its low 4 bits, plus 9 for a letter (bit 6).
func pack8(x uint64) uint32 {
	v := x&(swarOnes*0x0f) + (x>>6&swarOnes)*9
	t := (v&0x000f000f000f000f)<<4 | v>>8&0x000f000f000f000f
	t = (t | t>>8) & 0x0000ffff0000ffff
	return uint32(t | t>>16)
}

func appendPlain(dst, b []byte) []byte {
	if len(b) == 0 {
		return dst
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))<<2|opLiteral)
	return append(dst, b...)
}

// appendRefString appends s as a reference into the raw messages where
// one is shorter than the literal, else as the literal: its bytes or its
// digits packed as BCD (findRef); own says s is a field of the response.
func appendRefString[T deltaEntry](dst []byte, s string, raws *[2][]byte, table *deltaTable[T], own bool) []byte {
	n := len(s)
	if n >= 4 && n <= strLenMask {
		if o, ok := findRef(raws, table, s, own, n); ok {
			return binary.AppendUvarint(append(dst, strRef|byte(n)), uint64(o))
		}
		if n%2 == 0 {
			var buf [strLenMask / 2]byte
			if packBCD(buf[:n/2], s) {
				if o, ok := findRef(raws, table, buf[:n/2], own, n); ok {
					return binary.AppendUvarint(append(dst, strBCD|byte(n)), uint64(o))
				}
			}
		}
	}
	return append(append(dst, byte(n)), s...)
}

// wellKnown are values of the listener, tx type, MTI and response code
// fields stored as one byte, strKnown + their index. New ones go at the
// end: a code, once written, names its value for ever.
var wellKnown = [...]string{
	"pos", "gateway", "recharge_http",
	"unknown", "sign_on", "sign_off", "echo_test", "balance_inquiry", "consume", "consume_void", "refund",
	"pre_auth", "pre_auth_cancel", "pre_auth_completion", "completion_void", "cash_load", "cash_load_void",
	"reversal", "batch_settlement", "batch_upload", "pending_claim", "transfer_load",
	"recharge_verify", "recharge_credit", "recharge_query", "recharge_reversal",
	"00",
	"0100", "0110", "0200", "0210", "0220", "0230", "0320", "0330", "0400", "0410", "0500", "0510", "0800", "0810", "0820", "0830",
}

// knownByLen lists the indexes in wellKnown of the values of each length.
var knownByLen = func() (t [20][]byte) {
	for i, w := range wellKnown {
		t[len(w)] = append(t[len(w)], byte(i))
	}
	return t
}()

// The well-known values of up to 8 bytes are found by their bytes as a
// little-endian word (word8): knownSlot[w*knownMul>>(64-knownSlotBits)]
// is 1 + the index in wellKnown of the one value that can have word w, 0
// for none (knownMul, found when the package starts, gives every such
// value its own slot); two strings of the same length up to 8 are equal
// exactly where their words are.
const knownSlotBits = 7

var knownSlot, knownMul = func() (t [1 << knownSlotBits]uint8, mul uint64) {
	for mul = 0x9e3779b97f4a7c15; ; mul += 2 {
		t = [1 << knownSlotBits]uint8{}
		clash := false
		for i, w := range wellKnown {
			if len(w) > 8 {
				continue
			}
			h := (word8(w) * mul) >> (64 - knownSlotBits)
			if t[h] != 0 {
				clash = true
				break
			}
			t[h] = uint8(i + 1)
		}
		if !clash {
			return t, mul
		}
	}
}()

// knownWord holds the word of each well-known value of up to 8 bytes.
var knownWord = func() (t [len(wellKnown)]uint64) {
	for i, w := range wellKnown {
		if len(w) <= 8 {
			t[i] = word8(w)
		}
	}
	return t
}()

// word8 returns the bytes of s (at most 8) as a little-endian word,
// loading them two or four at a time (overlapping where the length is
// not a multiple: the overlap ORs a byte with itself).
func word8(s string) uint64 {
	switch n := len(s); {
	case n >= 4:
		lo := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
		hi := uint64(s[n-4]) | uint64(s[n-3])<<8 | uint64(s[n-2])<<16 | uint64(s[n-1])<<24
		return lo | hi<<(8*(n-4)&63)
	case n >= 2:
		lo := uint64(s[0]) | uint64(s[1])<<8
		hi := uint64(s[n-2]) | uint64(s[n-1])<<8
		return lo | hi<<(8*(n-2)&63)
	case n == 1:
		return uint64(s[0])
	}
	return 0
}

// knownCode returns the one-byte code of a well-known value.
func knownCode(s string) (byte, bool) {
	if len(s) <= 8 {
		if len(s) == 0 {
			return 0, false
		}
		w := word8(s)
		i := int(knownSlot[(w*knownMul)>>(64-knownSlotBits)]) - 1
		if i >= 0 && len(wellKnown[i]) == len(s) && knownWord[i] == w {
			return strKnown + byte(i), true
		}
		return 0, false
	}
	if len(s) >= len(knownByLen) {
		return 0, false
	}
	for _, i := range knownByLen[len(s)] {
		if wellKnown[i] == s {
			return strKnown + i, true
		}
	}
	return 0, false
}

// appendKnownString appends s as its code where it is well known, else
// as the literal.
func appendKnownString(dst []byte, s string) []byte {
	if c, ok := knownCode(s); ok {
		return append(dst, c)
	}
	return append(append(dst, byte(len(s))), s...)
}

// findRef returns an offset of needle in raws[0] ++ raws[1], wholly in
// one of them, whose uvarint is shorter than literal, the length of the
// string the needle stands for. The delta's table holds every request
// position but only some of the response's: a needle of 4 bytes or more
// is looked up there; a field of the response (inResp) not found there,
// and a needle of 2 or 3 bytes (the packed digits of an MTI, a STAN), are
// searched for in the message the field is from, first at its start.
func findRef[E deltaEntry, T string | []byte](raws *[2][]byte, table *deltaTable[E], needle T, inResp bool, literal int) (int, bool) {
	n := len(needle)
	if n >= 4 {
		o := int(table[hash4(uint32(needle[0])|uint32(needle[1])<<8|uint32(needle[2])<<16|uint32(needle[3])<<24)]) - 1
		src, at := raws[0], o
		if o >= len(src) {
			src, at = raws[1], o-len(src)
		}
		if o >= 0 && at+n <= len(src) && string(src[at:at+n]) == string(needle) {
			return o, UvarintLen(uint64(o)) < literal
		}
		if !inResp {
			return 0, false
		}
	}
	base, r := 0, raws[0]
	if inResp {
		base, r = len(raws[0]), raws[1]
	}
	i := 0
	if len(r) < n || string(r[:n]) != string(needle) {
		if i = indexByLast(r, needle); i < 0 {
			return 0, false
		}
	}
	return base + i, UvarintLen(uint64(base+i)) < literal
}

// indexByLast returns the position of an occurrence of needle in r, or
// −1, looking for its last byte first: the packed digits of a number
// often begin with zeros, as much else in a message does, and end in
// something rarer.
func indexByLast[T string | []byte](r []byte, needle T) int {
	n := len(needle)
	last := needle[n-1]
	for off := n - 1; off < len(r); {
		i := bytes.IndexByte(r[off:], last)
		if i < 0 {
			return -1
		}
		p := off + i - (n - 1)
		if string(r[p:p+n]) == string(needle) {
			return p
		}
		off += i + 1
	}
	return -1
}

// packBCD packs the decimal digits of s two a byte into dst; false if s
// has anything else.
func packBCD(dst []byte, s string) bool {
	for i := range dst {
		hi, lo := s[2*i]-'0', s[2*i+1]-'0'
		if hi > 9 || lo > 9 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func appendPeer(dst []byte, peer string) []byte {
	if enc, ok := ipv4PeerOf(peer); ok {
		return append(append(dst, peerIPv4), enc[:]...)
	}
	if len(peer) > 0 && peer[0] == '[' {
		if ap, err := netip.ParseAddrPort(peer); err == nil && ap.Addr().Is6() && ap.Addr().Zone() == "" {
			var buf [MaxPeerLen]byte
			if string(ap.AppendTo(buf[:0])) == peer {
				v := ap.Addr().As16()
				dst = append(append(dst, peerIPv6), v[:]...)
				return binary.BigEndian.AppendUint16(dst, ap.Port())
			}
		}
	}
	return append(append(dst, byte(len(peer))), peer...)
}

// ipv4PeerOf returns the stored form of an IPv4 peer (address and port
// big-endian), false if peer is not one that prints back the same.
//
// A connection's pairs all name its peer: the last IPv4 peer parsed is
// kept (peerMemo) and answers again without parsing.
func ipv4PeerOf(peer string) (enc [6]byte, ok bool) {
	if len(peer) > maxIPv4PeerLen {
		return enc, false
	}
	var key [3]uint64
	{
		var b [24]byte
		copy(b[:], peer)
		key[0] = binary.LittleEndian.Uint64(b[0:8])
		key[1] = binary.LittleEndian.Uint64(b[8:16])
		key[2] = binary.LittleEndian.Uint64(b[16:24])
	}
	if e, hit := peerMemo.lookup(key, len(peer)); hit {
		return e, true
	}
	a, port, ok := parseIPv4Port(peer)
	if !ok {
		return enc, false
	}
	copy(enc[:4], a[:])
	binary.BigEndian.PutUint16(enc[4:], port)
	peerMemo.store(key, len(peer), enc)
	return enc, true
}

// maxIPv4PeerLen is the length of "255.255.255.255:65535".
const maxIPv4PeerLen = 21

// peerMemo is the last IPv4 peer ipv4PeerOf parsed.
var peerMemo ipv4Memo

// ipv4Memo is a one-entry memo of a peer string of up to 24 bytes (its
// bytes zero-padded, little-endian words) and its stored form, safe for
// concurrent use without a lock: a sequence number odd while a writer
// changes the words (one writer at a time; another gives up), and a
// reader takes the words only if it read the same even number before
// and after them. Every access is atomic.
type ipv4Memo struct {
	seq  atomic.Uint64
	key  [3]atomic.Uint64
	form atomic.Uint64 // length << 48 | the 6 bytes of the stored form; 0 empty
}

func (m *ipv4Memo) lookup(key [3]uint64, n int) (enc [6]byte, hit bool) {
	s := m.seq.Load()
	if s&1 != 0 {
		return enc, false
	}
	f := m.form.Load()
	k0, k1, k2 := m.key[0].Load(), m.key[1].Load(), m.key[2].Load()
	if m.seq.Load() != s || f == 0 || f>>48 != uint64(n) || k0 != key[0] || k1 != key[1] || k2 != key[2] {
		return enc, false
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], f)
	copy(enc[:], b[2:])
	return enc, true
}

func (m *ipv4Memo) store(key [3]uint64, n int, enc [6]byte) {
	s := m.seq.Load()
	if s&1 != 0 || !m.seq.CompareAndSwap(s, s+1) {
		return // another writer is at it
	}
	var b [8]byte
	copy(b[2:], enc[:])
	m.key[0].Store(key[0])
	m.key[1].Store(key[1])
	m.key[2].Store(key[2])
	m.form.Store(uint64(n)<<48 | binary.BigEndian.Uint64(b[:]))
	m.seq.Store(s + 2)
}

// parseIPv4Port parses "a.b.c.d:port" in the one form that prints back
// the same: decimal numbers without leading zeros, octets to 255, the
// port to 65535.
func parseIPv4Port(s string) (a [4]byte, port uint16, ok bool) {
	// One pass: v is the number being read, n its digits, k the parts
	// read before it (4 octets, then the port).
	v, n, k := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if d := c - '0'; d <= 9 {
			// At most 5 digits, none after a leading zero.
			if n == 5 || n == 1 && v == 0 {
				return a, 0, false
			}
			v, n = v*10+int(d), n+1
			continue
		}
		sep := byte('.')
		if k == 3 {
			sep = ':'
		}
		if n == 0 || k == 4 || c != sep || v > 255 {
			return a, 0, false
		}
		a[k] = byte(v)
		v, n, k = 0, 0, k+1
	}
	if k != 4 || n == 0 || v > 65535 {
		return a, 0, false
	}
	return a, uint16(v), true
}

const nsPerDay = 24 * int64(time.Hour)

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func appendDate(dst []byte, date string, t0 int64) []byte {
	if d, ok := DayOf(date); ok {
		if z := zigzag(d - floorDiv(t0, nsPerDay)); z < dateLiteral {
			return append(dst, byte(z))
		}
	}
	return append(append(dst, dateLiteral), date...)
}

// pairReader reads a version 3 or 4 pair body; the first error sticks.
type pairReader struct {
	b   []byte
	off int
	err error
}

func (r *pairReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: pair: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (r *pairReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b[r.off:])
	if k <= 0 || k != UvarintLen(v) {
		r.fail("bad %s", what)
		return 0
	}
	r.off += k
	return v
}

func (r *pairReader) next(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("ends in %s", what)
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *pairReader) byte1(what string) byte {
	if v := r.next(1, what); v != nil {
		return v[0]
	}
	return 0
}

const hexDigits = "0123456789ABCDEF"

// ops rebuilds a message of n bytes from its operations (version 4, or
// version 3's response when v3), copies taken from req and the message
// so far.
func (r *pairReader) ops(req []byte, n int, v3 bool, what string) []byte {
	if n == 0 || r.err != nil {
		return nil
	}
	out := make([]byte, 0, n)
	for len(out) < n && r.err == nil {
		h := r.uvarint("operation")
		kind, k := h&3, h>>2
		if v3 {
			kind, k = h&1, h>>1
		}
		if k == 0 || k > uint64(n-len(out)) {
			r.fail("%s operation of %d bytes, %d left", what, k, n-len(out))
			break
		}
		switch kind {
		case opLiteral:
			out = append(out, r.next(int(k), "literal")...)
		case opDigits:
			for i, c := range r.next(int(k+1)/2, "packed digits") {
				if c>>4 > 9 || c&15 > 9 || 2*i+1 == int(k) && c&15 != 0 {
					r.fail("%s digits %x", what, c)
					break
				}
				out = append(out, '0'+c>>4)
				if 2*i+1 < int(k) {
					out = append(out, '0'+c&15)
				}
			}
		case opHex:
			if k%2 != 0 {
				r.fail("%s of %d hex digits", what, k)
				break
			}
			for _, c := range r.next(int(k)/2, "hex digits") {
				out = append(out, hexDigits[c>>4], hexDigits[c&15])
			}
		case opCopy:
			o := r.uvarint("copy offset")
			switch {
			case r.err != nil:
			case k < minCopy:
				r.fail("copy of %d bytes", k)
			case o < uint64(len(req)) && k <= uint64(len(req))-o:
				out = append(out, req[o:o+k]...)
			case o >= uint64(len(req)) && o-uint64(len(req)) <= uint64(len(out)) && k <= uint64(len(out))-(o-uint64(len(req))):
				s := int(o) - len(req)
				out = append(out, out[s:s+int(k)]...)
			default:
				r.fail("copy of %d bytes at %d", k, o)
			}
		}
	}
	return out
}

// str reads a string of at most max bytes into sb.
func (r *pairReader) str(sb []byte, raws *[2][]byte, max int, what string) []byte {
	h := r.byte1(what)
	if r.err != nil {
		return sb
	}
	if h >= strKnown && h < strRef {
		i := int(h - strKnown)
		if i >= len(wellKnown) || len(wellKnown[i]) > max {
			r.fail("%s code %d", what, h)
			return sb
		}
		return append(sb, wellKnown[i]...)
	}
	if h < strRef {
		if int(h) > max {
			r.fail("%s length %d", what, h)
			return sb
		}
		return append(sb, r.next(int(h), what)...)
	}
	n := int(h & strLenMask)
	size := n
	if h&strBCD == strBCD {
		size = n / 2
		if n%2 != 0 {
			r.fail("%s of %d digits", what, n)
		}
	}
	if n > max {
		r.fail("%s length %d", what, n)
	}
	o := r.uvarint("string offset")
	if r.err != nil {
		return sb
	}
	src := raws[0]
	if o >= uint64(len(src)) {
		o -= uint64(len(src))
		src = raws[1]
	}
	if o > uint64(len(src)) || uint64(size) > uint64(len(src))-o {
		r.fail("%s reference of %d bytes at %d", what, size, o)
		return sb
	}
	b := src[o : o+uint64(size)]
	if h&strBCD != strBCD {
		return append(sb, b...)
	}
	for _, c := range b {
		if c>>4 > 9 || c&15 > 9 {
			r.fail("%s digits %x", what, c)
			return sb
		}
		sb = append(sb, '0'+c>>4, '0'+c&15)
	}
	return sb
}

func (r *pairReader) peer(sb []byte) []byte {
	h := r.byte1("peer")
	switch {
	case r.err != nil:
		return sb
	case h <= MaxPeerLen:
		return append(sb, r.next(int(h), "peer")...)
	case h == peerIPv4:
		if v := r.next(4+2, "peer"); v != nil {
			a := netip.AddrFrom4([4]byte(v))
			return netip.AddrPortFrom(a, binary.BigEndian.Uint16(v[4:])).AppendTo(sb)
		}
	case h == peerIPv6:
		if v := r.next(16+2, "peer"); v != nil {
			a := netip.AddrFrom16([16]byte(v))
			return netip.AddrPortFrom(a, binary.BigEndian.Uint16(v[16:])).AppendTo(sb)
		}
	default:
		r.fail("peer form %d", h)
	}
	return sb
}

func (r *pairReader) date(sb []byte, t0 int64) []byte {
	h := r.byte1("business date")
	switch {
	case r.err != nil:
		return sb
	case h == dateLiteral:
		return append(sb, r.next(DateLen, "business date")...)
	}
	y, m, d := CivilFromDays(floorDiv(t0, nsPerDay) + unzigzag(uint64(h)))
	if y < 0 || y > 9999 {
		r.fail("business date year %d", y)
		return sb
	}
	for _, v := range [...]int64{y / 100, y % 100, m, d} {
		sb = append(sb, byte('0'+v/10), byte('0'+v%10))
	}
	return sb
}

// decodePair3 decodes a version 3 or 4 pair.
func decodePair3(b []byte, req, resp *Entry) error {
	if len(b) < 1+crcLen {
		return fmt.Errorf("%w: pair of %d bytes is too short", ErrCorrupt, len(b))
	}
	body := b[:len(b)-crcLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return fmt.Errorf("%w: pair checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	r := pairReader{b: body, off: 1}
	v3 := body[0] == pairVersion3
	flags := r.uvarint("flags")
	if flags>>32 != 0 {
		r.fail("flags %x", flags)
	}
	var t0 int64
	if v := r.next(8, "time"); v != nil {
		t0 = int64(binary.BigEndian.Uint64(v))
	}
	delay := unzigzag(r.uvarint("delay"))
	var raws [2][]byte
	for i := range raws {
		n := r.uvarint("raw length")
		if n > MaxRawLen {
			r.fail("raw length %d", n)
		}
		if r.err != nil {
			break
		}
		switch {
		case i == 0 && v3:
			if v := r.next(int(n), "request raw"); len(v) > 0 {
				raws[0] = append([]byte(nil), v...)
			}
		case i == 0:
			raws[0] = r.ops(nil, int(n), false, "request")
		default:
			raws[1] = r.ops(raws[0], int(n), v3, "response")
		}
	}
	// The string fields, in the order of sharedFields then ownFields of
	// each entry, in one buffer; ends[i] is where field i ends.
	const numStrings = numSharedFields + 2*numOwnFields
	var ends [numStrings]int
	sb := make([]byte, 0, 128)
	for i := range ends {
		switch {
		case i == 1:
			sb = r.peer(sb)
		case i == 7:
			sb = r.date(sb, t0)
		case i < numSharedFields:
			sb = r.str(sb, &raws, sharedFieldMax[i], sharedFieldName[i])
		default:
			j := (i - numSharedFields) % numOwnFields
			sb = r.str(sb, &raws, ownFieldMax[j], ownFieldName[j])
		}
		ends[i] = len(sb)
	}
	if r.err == nil && r.off != len(body) {
		r.fail("%d trailing bytes", len(body)-r.off)
	}
	if r.err != nil {
		return r.err
	}
	all := string(sb)
	var f [numStrings]string
	for i := range f {
		s := 0
		if i > 0 {
			s = ends[i-1]
		}
		f[i] = all[s:ends[i]]
	}
	if !ValidDate(f[7]) {
		return fmt.Errorf("%w: pair business date %q", ErrCorrupt, f[7])
	}
	t1 := t0 + delay
	fillPair(req, resp, &f, raws, [2]Flags{Flags(flags >> 16), Flags(flags & 0xffff)}, t0, t1)
	return nil
}
