package record

// The pair encoder (version 4) as it was when its bytes were fixed on
// disk, kept verbatim but for the names (suffix Ref) as the reference
// the encoder in pairdelta.go must match byte for byte
// (pairref_test.go's TestAppendPairSameAsReference and
// FuzzAppendPairSameAsReference).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"net/netip"
	"time"
)

// AppendPairRef checks the pair (each entry as Size does, plus: the request
// is In, the response Out, and they share the fields a pair stores once)
// and appends its encoding (version 4) to dst.
func AppendPairRef(dst []byte, req, resp *Entry) ([]byte, error) {
	if err := checkPairRef(req, resp); err != nil {
		return dst, err
	}
	start := len(dst)
	t0 := req.Time.UnixNano()
	dst = append(dst, pairVersion4)
	dst = binary.AppendUvarint(dst, uint64(req.Flags)<<16|uint64(resp.Flags))
	dst = binary.BigEndian.AppendUint64(dst, uint64(t0))
	dst = binary.AppendUvarint(dst, zigzag(resp.Time.UnixNano()-t0))
	dst = binary.AppendUvarint(dst, uint64(len(req.Raw)))
	dst = appendLiteralRef(dst, req.Raw)
	dst = binary.AppendUvarint(dst, uint64(len(resp.Raw)))
	var table deltaTableRef
	dst = appendDeltaRef(dst, req.Raw, resp.Raw, &table)
	raws := [2][]byte{req.Raw, resp.Raw}
	dst = appendKnownStringRef(dst, req.Listener)
	dst = appendPeerRef(dst, req.Peer)
	for _, s := range [...]string{req.Terminal, req.Merchant, req.STAN, req.Batch} {
		dst = appendRefStringRef(dst, s, &raws, &table, false)
	}
	dst = appendKnownStringRef(dst, req.TxType)
	dst = appendDateRef(dst, req.BusinessDate, t0)
	for i, e := range [2]*Entry{req, resp} {
		if c, ok := knownCodeRef(e.MTI); ok {
			dst = append(dst, c)
		} else {
			dst = appendRefStringRef(dst, e.MTI, &raws, &table, i == 1)
		}
		dst = appendRefStringRef(dst, e.RRN, &raws, &table, i == 1)
		dst = appendKnownStringRef(dst, e.ResponseCode)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

// checkPairRef checks both entries (each as Size does, plus: the request is
// In, the response Out, and they share every field the pair stores once).
func checkPairRef(req, resp *Entry) error {
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

// MarshalPairRef encodes a pair in the stored format.
func MarshalPairRef(req, resp *Entry) ([]byte, error) {
	b, err := AppendPairRef(nil, req, resp)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func load32Ref(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

func hash4Ref(u uint32) uint32 { return (u * 2654435761) >> (32 - deltaBits) }

// matchLenRef returns the length of the common prefix of a and b.
func matchLenRef(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

// deltaTableRef maps the hash of 4 bytes to a position + 1 in the request
// followed by the response (0: none).
type deltaTableRef [1 << deltaBits]uint32

// appendDeltaRef appends the operations that rebuild resp from req: a
// greedy match over a hash of 4-byte sequences — every request position,
// then every other response position as it is scanned, a match found
// extended backwards into the pending literal where it lies in the
// request. The table is left for the string references (findRefRef).
func appendDeltaRef(dst, req, resp []byte, table *deltaTableRef) []byte {
	i := 0
	for ; i+8 <= len(req); i += 4 {
		x := binary.LittleEndian.Uint64(req[i:])
		table[hash4Ref(uint32(x))] = uint32(i + 1)
		table[hash4Ref(uint32(x>>8))] = uint32(i + 2)
		table[hash4Ref(uint32(x>>16))] = uint32(i + 3)
		table[hash4Ref(uint32(x>>24))] = uint32(i + 4)
	}
	for ; i+4 <= len(req); i++ {
		table[hash4Ref(load32Ref(req, i))] = uint32(i + 1)
	}
	lit := 0
	i = 0
	for i+4 <= len(resp) {
		cur := load32Ref(resp, i)
		h := hash4Ref(cur)
		c := int(table[h]) - 1
		table[h] = uint32(len(req) + i + 1)
		n := 0
		switch {
		case c < 0:
		case c < len(req):
			if load32Ref(req, c) == cur {
				n = matchLenRef(req[c:], resp[i:])
				for c > 0 && i > lit && req[c-1] == resp[i-1] {
					c, i, n = c-1, i-1, n+1
				}
			}
		default:
			if s := c - len(req); s+4 <= i && load32Ref(resp, s) == cur {
				n = matchLenRef(resp[s:i], resp[i:])
			}
		}
		if n < minCopy {
			i += probeStep
			continue
		}
		dst = appendLiteralRef(dst, resp[lit:i])
		dst = binary.AppendUvarint(dst, uint64(n)<<2|opCopy)
		dst = binary.AppendUvarint(dst, uint64(c))
		i += n
		lit = i
	}
	return appendLiteralRef(dst, resp[lit:])
}

// isHexRef marks the ASCII digits and uppercase hex letters; isHexRef[c] == 2
// for a digit.
var isHexRef = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 2
	}
	for c := 'A'; c <= 'F'; c++ {
		t[c] = 1
	}
	return t
}()

// appendLiteralRef appends the operations for bytes b: runs of ASCII digits
// (at least minDigitRun) and of uppercase hex with a letter (at least
// minHexRun; an odd run's first character left to the literal before)
// packed, the rest literals.
func appendLiteralRef(dst, b []byte) []byte {
	lit := 0
	for i := 0; i < len(b); {
		// Skip to the next hex character, 8 bytes at a time.
		if i+8 <= len(b) {
			d, l := hexMasksRef(binary.LittleEndian.Uint64(b[i:]))
			if d|l == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(d|l) / 8
		} else if isHexRef[b[i]] == 0 {
			i++
			continue
		}
		j, letters := hexRunRef(b, i)
		switch n := j - i; {
		case !letters && n >= minDigitRun:
			dst = appendPlainRef(dst, b[lit:i])
			dst = binary.AppendUvarint(dst, uint64(n)<<2|opDigits)
			for k := i; k < j; k += 2 {
				v := (b[k] - '0') << 4
				if k+1 < j {
					v |= b[k+1] - '0'
				}
				dst = append(dst, v)
			}
			lit = j
		case letters && n >= minHexRun:
			i += n % 2
			dst = appendPlainRef(dst, b[lit:i])
			dst = binary.AppendUvarint(dst, uint64(j-i)<<2|opHex)
			for k := i; k < j; k += 2 {
				dst = append(dst, unhexRef(b[k])<<4|unhexRef(b[k+1]))
			}
			lit = j
		}
		i = j
	}
	return appendPlainRef(dst, b[lit:])
}

// hexRunRef returns the end of the run of hex characters starting at i and
// whether it has a letter.
func hexRunRef(b []byte, i int) (j int, letters bool) {
	for j = i; j+8 <= len(b); j += 8 {
		d, l := hexMasksRef(binary.LittleEndian.Uint64(b[j:]))
		if non := ^(d | l) & swarHighRef; non != 0 {
			k := bits.TrailingZeros64(non) / 8
			return j + k, letters || l&(1<<(8*k)-1) != 0
		}
		letters = letters || l != 0
	}
	for ; j < len(b) && isHexRef[b[j]] != 0; j++ {
		letters = letters || isHexRef[b[j]] == 1
	}
	return j, letters
}

const (
	swarOnesRef = 0x0101010101010101
	swarLow7Ref = 0x7f7f7f7f7f7f7f7f
	swarHighRef = 0x8080808080808080
)

// hexMasksRef returns, for the 8 bytes of x, the high bit of each byte that
// is an ASCII digit (d) and of each that is an uppercase hex letter (l):
// the exact "byte between m and n" test on words (m < byte < n, for
// bytes below 128; a byte from 128 on has its high bit cleared by ^x).
func hexMasksRef(x uint64) (d, l uint64) {
	between := func(m, n uint64) uint64 {
		return (swarOnesRef*(127+n) - x&swarLow7Ref) &^ x & (x&swarLow7Ref + swarOnesRef*(127-m)) & swarHighRef
	}
	return between('0'-1, '9'+1), between('A'-1, 'F'+1)
}

func unhexRef(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

func appendPlainRef(dst, b []byte) []byte {
	if len(b) == 0 {
		return dst
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))<<2|opLiteral)
	return append(dst, b...)
}

// appendRefStringRef appends s as a reference into the raw messages where
// one is shorter than the literal, else as the literal: its bytes or its
// digits packed as BCD (findRefRef); own says s is a field of the response.
func appendRefStringRef(dst []byte, s string, raws *[2][]byte, table *deltaTableRef, own bool) []byte {
	n := len(s)
	if n >= 4 && n <= strLenMask {
		var buf [strLenMask]byte
		copy(buf[:], s)
		if o, ok := findRefRef(raws, table, buf[:n], own, n); ok {
			return binary.AppendUvarint(append(dst, strRef|byte(n)), uint64(o))
		}
		if n%2 == 0 && packBCDRef(buf[:n/2], s) {
			if o, ok := findRefRef(raws, table, buf[:n/2], own, n); ok {
				return binary.AppendUvarint(append(dst, strBCD|byte(n)), uint64(o))
			}
		}
	}
	return append(append(dst, byte(n)), s...)
}

// wellKnownRef are values of the listener, tx type, MTI and response code
// fields stored as one byte, strKnown + their index. New ones go at the
// end: a code, once written, names its value for ever.
var wellKnownRef = [...]string{
	"pos", "gateway", "recharge_http",
	"unknown", "sign_on", "sign_off", "echo_test", "balance_inquiry", "consume", "consume_void", "refund",
	"pre_auth", "pre_auth_cancel", "pre_auth_completion", "completion_void", "cash_load", "cash_load_void",
	"reversal", "batch_settlement", "batch_upload", "pending_claim", "transfer_load",
	"recharge_verify", "recharge_credit", "recharge_query", "recharge_reversal",
	"00",
	"0100", "0110", "0200", "0210", "0220", "0230", "0320", "0330", "0400", "0410", "0500", "0510", "0800", "0810", "0820", "0830",
}

// knownByLenRef lists the indexes in wellKnownRef of the values of each length.
var knownByLenRef = func() (t [20][]byte) {
	for i, w := range wellKnownRef {
		t[len(w)] = append(t[len(w)], byte(i))
	}
	return t
}()

// knownCodeRef returns the one-byte code of a well-known value.
func knownCodeRef(s string) (byte, bool) {
	if len(s) >= len(knownByLenRef) {
		return 0, false
	}
	for _, i := range knownByLenRef[len(s)] {
		if wellKnownRef[i] == s {
			return strKnown + i, true
		}
	}
	return 0, false
}

// appendKnownStringRef appends s as its code where it is well known, else
// as the literal.
func appendKnownStringRef(dst []byte, s string) []byte {
	if c, ok := knownCodeRef(s); ok {
		return append(dst, c)
	}
	return append(append(dst, byte(len(s))), s...)
}

// findRefRef returns an offset of needle in raws[0] ++ raws[1], wholly in
// one of them, whose uvarint is shorter than literal, the length of the
// string the needle stands for. The delta's table holds every request
// position but only some of the response's: a needle of 4 bytes or more
// is looked up there; a field of the response (inResp) not found there,
// and a needle of 2 or 3 bytes (the packed digits of an MTI, a STAN), are
// searched for in the message the field is from, first at its start.
func findRefRef(raws *[2][]byte, table *deltaTableRef, needle []byte, inResp bool, literal int) (int, bool) {
	n := len(needle)
	if n >= 4 {
		o := int(table[hash4Ref(load32Ref(needle, 0))]) - 1
		src, at := raws[0], o
		if o >= len(src) {
			src, at = raws[1], o-len(src)
		}
		if o >= 0 && at+n <= len(src) && bytes.Equal(src[at:at+n], needle) {
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
	if len(r) < n || !bytes.Equal(r[:n], needle) {
		if i = indexByLastRef(r, needle); i < 0 {
			return 0, false
		}
	}
	return base + i, UvarintLen(uint64(base+i)) < literal
}

// indexByLastRef returns the position of an occurrence of needle in r, or
// −1, looking for its last byte first: the packed digits of a number
// often begin with zeros, as much else in a message does, and end in
// something rarer.
func indexByLastRef(r, needle []byte) int {
	n := len(needle)
	last := needle[n-1]
	for off := n - 1; off < len(r); {
		i := bytes.IndexByte(r[off:], last)
		if i < 0 {
			return -1
		}
		p := off + i - (n - 1)
		if bytes.Equal(r[p:p+n], needle) {
			return p
		}
		off += i + 1
	}
	return -1
}

// packBCDRef packs the decimal digits of s two a byte into dst; false if s
// has anything else.
func packBCDRef(dst []byte, s string) bool {
	for i := range dst {
		hi, lo := s[2*i]-'0', s[2*i+1]-'0'
		if hi > 9 || lo > 9 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func appendPeerRef(dst []byte, peer string) []byte {
	if a, port, ok := parseIPv4PortRef(peer); ok {
		dst = append(append(dst, peerIPv4), a[:]...)
		return binary.BigEndian.AppendUint16(dst, port)
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

// parseIPv4PortRef parses "a.b.c.d:port" in the one form that prints back
// the same: decimal numbers without leading zeros, octets to 255, the
// port to 65535.
func parseIPv4PortRef(s string) (a [4]byte, port uint16, ok bool) {
	i := 0
	num := func(max int) (int, bool) {
		start, v := i, 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 5 {
			v = v*10 + int(s[i]-'0')
			i++
		}
		n := i - start
		return v, n > 0 && v <= max && (n == 1 || s[start] != '0')
	}
	for k := range a {
		v, ok := num(255)
		sep := byte('.')
		if k == 3 {
			sep = ':'
		}
		if !ok || i >= len(s) || s[i] != sep {
			return a, 0, false
		}
		i++
		a[k] = byte(v)
	}
	v, ok := num(65535)
	if !ok || i != len(s) {
		return a, 0, false
	}
	return a, uint16(v), true
}

const nsPerDayRef = 24 * int64(time.Hour)

func floorDivRef(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func appendDateRef(dst []byte, date string, t0 int64) []byte {
	if d, ok := DayOf(date); ok {
		if z := zigzag(d - floorDivRef(t0, nsPerDayRef)); z < dateLiteral {
			return append(dst, byte(z))
		}
	}
	return append(append(dst, dateLiteral), date...)
}
