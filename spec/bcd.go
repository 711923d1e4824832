package spec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/prefix"
)

// The library's BCD and LBCD encoders build a 1 KiB decode table on every
// call, which makes a BCD POS message 10–15× slower to pack and unpack than
// its ASCII equivalent. The codecs here produce the same bytes with plain
// nibble arithmetic and no tables. They implement the library's
// encoding.Encoder and prefix.Prefixer interfaces so that specs can use
// them in place of encoding.BCD, encoding.LBCD and prefix.BCD.

// ErrBadBCD reports a digit string that cannot be BCD-encoded, or bytes that
// are not valid BCD.
var ErrBadBCD = errors.New("spec: bad BCD")

var (
	// FastBCD is a right-aligned BCD encoder: an odd number of digits gets a
	// leading 0 nibble. Byte-identical to encoding.BCD.
	FastBCD encoding.Encoder = bcdCodec{}
	// FastLBCD is a left-aligned BCD encoder: an odd number of digits gets a
	// trailing 0 nibble. Byte-identical to encoding.LBCD.
	FastLBCD encoding.Encoder = bcdCodec{left: true}
	// Track2BCD encodes track 2 equivalent data left-aligned, with the field
	// separator '=' sent as nibble D (the library's BCD encoders reject it).
	Track2BCD encoding.Encoder = bcdCodec{left: true, track2: true}
)

// FastBCDPrefix holds BCD length prefixers byte-identical to prefix.BCD: the
// length is written as Digits decimal digits, right-aligned BCD, so LL is
// 1 byte and LLL is 2 bytes.
var FastBCDPrefix = prefix.Prefixers{
	Fixed:  prefix.BCD.Fixed,
	L:      bcdPrefixer{1},
	LL:     bcdPrefixer{2},
	LLL:    bcdPrefixer{3},
	LLLL:   bcdPrefixer{4},
	LLLLL:  bcdPrefixer{5},
	LLLLLL: bcdPrefixer{6},
}

// bcdCodec packs ASCII digits two to a byte. left selects the padding side
// for odd lengths; track2 additionally maps '=' to and from nibble D.
type bcdCodec struct {
	left   bool
	track2 bool
}

// nibble converts one input character to its BCD nibble.
func (c bcdCodec) nibble(ch byte) (byte, bool) {
	switch {
	case ch >= '0' && ch <= '9':
		return ch - '0', true
	case c.track2 && ch == '=':
		return 0xD, true
	}
	return 0, false
}

// char converts one nibble back to its character.
func (c bcdCodec) char(n byte) (byte, bool) {
	switch {
	case n <= 9:
		return '0' + n, true
	case c.track2 && n == 0xD:
		return '=', true
	}
	return 0, false
}

// Encode packs src (ASCII digits) into BCD.
func (c bcdCodec) Encode(src []byte) ([]byte, error) {
	out := make([]byte, (len(src)+1)/2)
	return appendBCD(c, out[:0], src)
}

// appendBCD appends the BCD form of src to dst. Digits are packed eight
// and two at a time; track 2 and anything that is not a digit go through
// appendBCDChecked, which names the bad character.
func appendBCD[T string | []byte](c bcdCodec, dst []byte, src T) ([]byte, error) {
	if !c.track2 {
		at, n := len(dst), (len(src)+1)/2
		out := dst
		if cap(out)-at < n {
			out = slices.Grow(out, n)
		}
		out = out[:at+n]
		if packDigits(out[at:], src, c.left) {
			return out, nil
		}
	}
	return appendBCDChecked(c, dst, src)
}

// packDigits packs the ASCII digits of src into out (len(out) =
// ceil(len(src)/2)), the pad nibble 0 on the left or right of an odd
// length. It reports false when src holds a character that is not a
// digit.
func packDigits[T string | []byte](out []byte, src T, left bool) bool {
	const (
		ones = 0x0101010101010101
		tops = 0x8080808080808080
		lows = 0x000F000F000F000F
	)
	i, j := 0, 0
	if len(src)%2 != 0 && !left {
		d := src[0] - '0'
		if d > 9 {
			return false
		}
		out[0] = d
		i, j = 1, 1
	}
	for ; i+8 <= len(src) && j+4 <= len(out); i, j = i+8, j+4 {
		// Eight characters as a word (the first in the low byte): all
		// digits when none is below '0' (taking '0' borrows into its top
		// bit) and none above '9' (adding 0x46 reaches its top bit); see
		// printable for why the word test is exact.
		w := src[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		if ((x-'0'*ones)&^x|(x+0x46*ones)|x)&tops != 0 {
			return false
		}
		// Each 16-bit lane's two digits into its low byte, then the four
		// low bytes together.
		d := x - '0'*ones
		y := (d&lows)<<4 | (d>>8)&lows
		y = (y | y>>8) & 0x0000FFFF0000FFFF
		y = (y | y>>16) & 0xFFFFFFFF
		binary.LittleEndian.PutUint32(out[j:], uint32(y))
	}
	for ; i+1 < len(src); i += 2 {
		hi, lo := src[i]-'0', src[i+1]-'0'
		if hi > 9 || lo > 9 {
			return false
		}
		out[j] = hi<<4 | lo
		j++
	}
	if i < len(src) {
		hi := src[i] - '0'
		if hi > 9 {
			return false
		}
		out[j] = hi << 4
	}
	return true
}

// appendBCDChecked is appendBCD character by character, with the error
// that names what is wrong.
func appendBCDChecked[T string | []byte](c bcdCodec, dst []byte, src T) ([]byte, error) {
	i := 0
	if len(src)%2 != 0 && !c.left {
		// Right-aligned: the leading nibble is the 0 pad.
		n, ok := c.nibble(src[0])
		if !ok {
			return nil, fmt.Errorf("%w: character %q at %d", ErrBadBCD, src[0], 0)
		}
		dst = append(dst, n)
		i = 1
	}
	for ; i+1 < len(src); i += 2 {
		hi, ok1 := c.nibble(src[i])
		lo, ok2 := c.nibble(src[i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: character at %d..%d", ErrBadBCD, i, i+1)
		}
		dst = append(dst, hi<<4|lo)
	}
	if i < len(src) {
		// Left-aligned odd length: trailing 0 pad nibble.
		hi, ok := c.nibble(src[i])
		if !ok {
			return nil, fmt.Errorf("%w: character at %d", ErrBadBCD, i)
		}
		dst = append(dst, hi<<4)
	}
	return dst, nil
}

// Decode reads length digits (ceil(length/2) bytes) from src. The pad nibble
// of an odd length must be a digit, or F at the end of a left-aligned field
// (as the library accepts); every other nibble must be a digit (or D in
// track 2).
func (c bcdCodec) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 {
		return nil, 0, fmt.Errorf("%w: negative length %d", ErrBadBCD, length)
	}
	return c.decodeInto(make([]byte, 0, length), src, length)
}

// decodeInto is Decode appending the digits to dst (the POS decoder
// passes a stack buffer). Valid BCD goes through the pair tables, a byte
// at a time; anything the tables refuse is decoded again by
// decodeChecked, which names the bad nibble.
func (c bcdCodec) decodeInto(dst, src []byte, length int) ([]byte, int, error) {
	if length < 0 {
		return nil, 0, fmt.Errorf("%w: negative length %d", ErrBadBCD, length)
	}
	read := (length + 1) / 2
	if len(src) < read {
		return nil, 0, fmt.Errorf("%w: need %d bytes for %d digits, have %d", ErrBadBCD, read, length, len(src))
	}
	// Not zeroed: pairs writes every byte, or decodeChecked does.
	full := slices.Grow(dst, length)[:len(dst)+length]
	if c.pairs(full[len(dst):], src[:read]) {
		return full, read, nil
	}
	return c.decodeChecked(full[:len(dst)], src, length)
}

// bcdPairs maps a byte of two digit nibbles to its two characters (high
// nibble first, little-endian); 0 marks a byte with another nibble.
// track2Pairs also maps nibble D to '='.
var bcdPairs, track2Pairs = func() (d, t [256]uint16) {
	for b := range 256 {
		hi, ok1 := bcdCodec{track2: true}.char(byte(b >> 4))
		lo, ok2 := bcdCodec{track2: true}.char(byte(b & 0x0F))
		if ok1 && ok2 {
			t[b] = uint16(hi) | uint16(lo)<<8
			if hi != '=' && lo != '=' {
				d[b] = t[b]
			}
		}
	}
	return d, t
}()

// pairs unpacks src into out (len(out) digits, len(src) = ceil(len(out)/2))
// as decodeChecked does, and reports false where decodeChecked would fail.
func (c bcdCodec) pairs(out, src []byte) bool {
	tbl := &bcdPairs
	if c.track2 {
		tbl = &track2Pairs
	}
	if len(out)%2 != 0 {
		if c.left {
			// The last byte holds a digit and the pad nibble (a digit or F).
			b := src[len(src)-1]
			lo := b & 0x0F
			ch, ok := c.char(b >> 4)
			if !ok || (lo > 9 && lo != 0xF) {
				return false
			}
			out[len(out)-1] = ch
			out, src = out[:len(out)-1], src[:len(src)-1]
		} else {
			// The first byte holds the pad nibble (a digit) and a digit.
			b := src[0]
			ch, ok := c.char(b & 0x0F)
			if !ok || b>>4 > 9 {
				return false
			}
			out[0] = ch
			out, src = out[1:], src[1:]
		}
	}
	for _, b := range src {
		p := tbl[b]
		if p == 0 || len(out) < 2 {
			return false
		}
		binary.LittleEndian.PutUint16(out, p)
		out = out[2:]
	}
	return true
}

// decodeChecked is decodeInto nibble by nibble, with the error that
// names what is wrong.
func (c bcdCodec) decodeChecked(dst, src []byte, length int) ([]byte, int, error) {
	read := (length + 1) / 2
	full := append(dst, make([]byte, length)...)
	out := full[len(dst):]
	j := 0
	for i := 0; i < read; i++ {
		b := src[i]
		hi, lo := b>>4, b&0x0F
		odd := length%2 != 0
		switch {
		case odd && !c.left && i == 0:
			if hi > 9 {
				return nil, 0, fmt.Errorf("%w: pad nibble %X at byte %d", ErrBadBCD, hi, i)
			}
			ch, ok := c.char(lo)
			if !ok {
				return nil, 0, fmt.Errorf("%w: nibble %X at byte %d", ErrBadBCD, lo, i)
			}
			out[j] = ch
			j++
		case odd && c.left && i == read-1:
			if lo > 9 && lo != 0xF {
				return nil, 0, fmt.Errorf("%w: pad nibble %X at byte %d", ErrBadBCD, lo, i)
			}
			ch, ok := c.char(hi)
			if !ok {
				return nil, 0, fmt.Errorf("%w: nibble %X at byte %d", ErrBadBCD, hi, i)
			}
			out[j] = ch
			j++
		default:
			ch1, ok1 := c.char(hi)
			ch2, ok2 := c.char(lo)
			if !ok1 || !ok2 {
				return nil, 0, fmt.Errorf("%w: byte %02X at %d", ErrBadBCD, b, i)
			}
			out[j], out[j+1] = ch1, ch2
			j += 2
		}
	}
	return full, read, nil
}

// bcdPrefixer writes a variable field's length as Digits decimal digits in
// right-aligned BCD.
type bcdPrefixer struct {
	digits int
}

var pow10 = [...]int{1, 10, 100, 1000, 10000, 100000, 1000000}

// EncodeLength returns the BCD length prefix for dataLen.
func (p bcdPrefixer) EncodeLength(maxLen, dataLen int) ([]byte, error) {
	if dataLen > maxLen {
		return nil, fmt.Errorf("field length %d is larger than maximum %d", dataLen, maxLen)
	}
	if dataLen < 0 || dataLen >= pow10[p.digits] {
		return nil, fmt.Errorf("length %d does not fit %d digits", dataLen, p.digits)
	}
	n := (p.digits + 1) / 2
	out := make([]byte, n)
	v := dataLen
	for i := n - 1; i >= 0; i-- {
		lo := v % 10
		v /= 10
		hi := v % 10
		v /= 10
		out[i] = byte(hi<<4 | lo)
	}
	return out, nil
}

// appendLength appends the prefix EncodeLength returns.
func (p bcdPrefixer) appendLength(dst []byte, maxLen, dataLen int) ([]byte, error) {
	if dataLen > maxLen {
		return nil, fmt.Errorf("field length %d is larger than maximum %d", dataLen, maxLen)
	}
	if dataLen < 0 || dataLen >= pow10[p.digits] {
		return nil, fmt.Errorf("length %d does not fit %d digits", dataLen, p.digits)
	}
	switch p.digits {
	case 1, 2: // one byte
		return append(dst, byte(dataLen/10<<4|dataLen%10)), nil
	case 3, 4: // two bytes
		return append(dst, byte(dataLen/1000<<4|dataLen/100%10), byte(dataLen/10%10<<4|dataLen%10)), nil
	}
	n := (p.digits + 1) / 2
	at := len(dst)
	dst = append(dst, make([]byte, n)...)
	v := dataLen
	for i := n - 1; i >= 0; i-- {
		lo := v % 10
		v /= 10
		hi := v % 10
		v /= 10
		dst[at+i] = byte(hi<<4 | lo)
	}
	return dst, nil
}

// DecodeLength reads the BCD length prefix and checks it against maxLen.
func (p bcdPrefixer) DecodeLength(maxLen int, data []byte) (int, int, error) {
	n := (p.digits + 1) / 2
	if len(data) < n {
		return 0, 0, fmt.Errorf("not enough data to read a %d-byte length prefix: %d bytes", n, len(data))
	}
	v := 0
	for i := 0; i < n; i++ {
		hi, lo := int(data[i]>>4), int(data[i]&0x0F)
		if hi > 9 || lo > 9 {
			return 0, 0, fmt.Errorf("%w: length prefix byte %02X", ErrBadBCD, data[i])
		}
		if i == 0 && p.digits%2 != 0 {
			// An odd digit count leaves a leading pad nibble; like the
			// library, its value is not part of the length.
			hi = 0
		}
		v = v*100 + hi*10 + lo
	}
	if v > maxLen {
		return 0, 0, fmt.Errorf("data length %d is larger than maximum %d", v, maxLen)
	}
	return v, n, nil
}

// Inspect names the prefixer like the library's BCD one, so JSON spec
// descriptions stay comparable.
func (p bcdPrefixer) Inspect() string {
	return "BCD." + strings.Repeat("L", p.digits)
}
