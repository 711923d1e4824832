package journal

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/cardswitch/cardswitch/journal/internal/record"
)

// Key layout. Every journal key starts with 'j', every queue key with 'q'
// (docs/architecture.md). The second byte names the keyspace. Variable
// strings inside keys carry a one-byte length in front so that one
// terminal's keys can never be a prefix of another's ("1000" vs "10001").
//
//	j e seq(8)                                   entry (the sequence begins with its business day)
//	j d date(8) seq(8)                           business-day index (read and pruned only: data written before sequences carried the day)
//	j t len term len batch seq(8)                terminal + batch index
//	j r len rrn seq(8)                           RRN index of an RRN its entry's sequence does not name (the sequence carries the day)
//	j r len rrn date(8) seq(8)                   RRN index of the old layout (read and pruned only)
//	j o len term len batch len stan len date     duplicate record of an answered pair (AppendAnswered), its terminal + batch index too
//	j p len term len batch len stan len date     stored response (PutResponse)
//	j s                                          sequence mark of the shared counter of earlier versions (written and read by their test layouts only)
//	j n day(4)                                   a day's counter mark: every counter of the day handed out is below it
//	q m len dest id(8)                           queued message
//	q x len dest id(8)                           dead-lettered message
//
// Index values are empty: the sequence at the end of the key is all a read
// needs, and big-endian sequences keep each index range in append order.
const (
	prefixJournal = 'j'
	prefixQueue   = 'q'

	spaceEntry    = 'e'
	spaceDay      = 'd'
	spaceTermBat  = 't'
	spaceRRN      = 'r'
	spaceAnswered = 'o' // just below spaceResponse: one range holds both
	spaceResponse = 'p'
	spaceSeqMark  = 's'
	spaceCounter  = 'n'
	spaceQueued   = 'm'
	spaceDead     = 'x'

	seqLen      = 8
	entryKeyLen = 2 + seqLen
)

// Sequences. A sequence carries its entry's business day: sequence = day
// × seqDayUnit + counter, where day is the day number (days since
// 1970-01-01, at least 1) and the counter, below seqDayUnit, is shared by
// all days and only grows. So 'j e' keys are in business-day order and a
// day's entries are one key range: the day's export and retention walk it
// without an index key per entry (docs/journal.md); in decimal the last
// 11 digits are the counter. Data written before this layout has
// sequences below seqDayUnit (day 0, counter = sequence) and keeps its
// 'j d' index keys, which reads and retention still follow. The largest
// sequence, of day maxSeqDay (year 2216), is below 1<<53, so it survives
// JSON numbers.
const (
	seqDayUnit = 100_000_000_000
	maxSeqDay  = (1<<53)/seqDayUnit - 1
)

// seqDay is the business day a sequence carries, 0 for an old-layout one.
func seqDay(seq uint64) uint32 { return uint32(seq / seqDayUnit) }

// seqCounter is a sequence without its day.
func seqCounter(seq uint64) uint64 { return seq % seqDayUnit }

// SeqCounter returns sequence seq without its business day: the counter
// LastSeq reports (docs/journal.md#sequences).
func SeqCounter(seq uint64) uint64 { return seqCounter(seq) }

// dayStart is the first sequence of business day d (its counter 0 is
// never handed out).
func dayStart(d uint32) uint64 { return uint64(d) * seqDayUnit }

// dayNumber returns the day number of a YYYYMMDD business date: the days
// since 1970-01-01. ok is false for a date that is not a calendar day
// from 1970-01-02 on, up to day maxSeqDay.
func dayNumber(date string) (d uint32, ok bool) {
	if !validDate(date) {
		return 0, false
	}
	n, ok := record.DayOf(date)
	if !ok || n < 1 || n > maxSeqDay {
		return 0, false
	}
	return uint32(n), true
}

// dayOfYear is the day of the year (1..366) of day number d.
//
// Nearly every call asks about the business day: the last answer is
// kept (doyMemo) and given again without the arithmetic.
func dayOfYear(d uint32) int {
	if m := doyMemo.Load(); m != 0 && uint32(m>>32) == d {
		return int(uint32(m))
	}
	y, _, _ := record.CivilFromDays(int64(d))
	doy := int(int64(d) - record.DaysFromCivil(y, 1, 1) + 1)
	if d != 0 {
		doyMemo.Store(uint64(d)<<32 | uint64(doy))
	}
	return doy
}

// doyMemo is the last day dayOfYear answered for, in the high 32 bits,
// and its day of the year in the low; 0 before the first (day 0 is not
// kept).
var doyMemo atomic.Uint64

// RRNs named by sequences. A day's counters below rrnSpan are handed out
// by reservation (ReserveRRN) as retrieval reference numbers: the RRN of
// field 37 (docs/pos-dialect.md) is the day of the year in 3 digits and a
// 9-digit number, and the number is the counter of the request's
// sequence. So an entry whose RRN its own sequence names needs no RRN
// index key: ByRRN reads that sequence (docs/journal.md#sequences).
const (
	rrnSpan = 1_000_000_000
	rrnLen  = 12
)

// seqRRN returns the RRN sequence seq names: "" when its counter is not
// below rrnSpan, or it is 0, or the sequence carries no day.
func seqRRN(seq uint64) string {
	d, c := seqDay(seq), seqCounter(seq)
	if d == 0 || c == 0 || c >= rrnSpan {
		return ""
	}
	var b [rrnLen]byte
	y := uint64(dayOfYear(d))
	b[0], b[1], b[2], b[3] = byte('0'+y/100), byte('0'+y/10%10), byte('0'+y%10), byte('0'+c/100_000_000)
	binary.LittleEndian.PutUint64(b[4:], digits8(c%100_000_000))
	return string(b[:])
}

// namesRRN reports whether rrn is the RRN sequence seq names.
func namesRRN(seq uint64, rrn string) bool {
	s, ok := rrnSeq(rrn, seqDay(seq))
	return ok && s == seq
}

// rrnSeq returns the sequence rrn names on day d, ok false when rrn is not
// 12 digits, its day of the year is not d's or its number is 0.
func rrnSeq(rrn string, d uint32) (seq uint64, ok bool) {
	if len(rrn) != rrnLen || d == 0 {
		return 0, false
	}
	// A word at a time: the first 4 characters (the day of the year and
	// the counter's first digit), then the counter's last 8.
	w1 := uint64(binary.LittleEndian.Uint32([]byte(rrn[:4])))
	w2 := binary.LittleEndian.Uint64([]byte(rrn[4:12]))
	if !digitBytes(w1|0x3030303000000000) || !digitBytes(w2) {
		return 0, false
	}
	w1 -= 0x30303030
	y := int(w1&0xff)*100 + int(w1>>8&0xff)*10 + int(w1>>16&0xff)
	c := (w1>>24)*100_000_000 + digits8Value(w2)
	if c == 0 || y != dayOfYear(d) {
		return 0, false
	}
	return dayStart(d) + c, true
}

// digitBytes reports whether each of the 8 bytes of w is an ASCII
// digit. A byte below '0' sets its top bit in w − '0'×8 (a borrow it
// passes on reaches only bytes above it, the answer being false
// anyway), one above '9' in w + 0x46×8, one of 0x80 and above in w (a
// carry out of it likewise).
func digitBytes(w uint64) bool {
	return ((w-0x3030303030303030)|(w+0x4646464646464646)|w)&0x8080808080808080 == 0
}

// digits8Value is the number 8 ASCII digits (digitBytes) spell, the
// first in the low byte of w.
func digits8Value(w uint64) uint64 {
	w -= 0x3030303030303030
	w = (w*10 + w>>8) & 0x00ff00ff00ff00ff
	w = (w*100 + w>>16) & 0x0000ffff0000ffff
	return (w*10000 + w>>32) & 0xffffffff
}

// digits8 is v (below 10^8) as 8 ASCII digits, the first in the low
// byte: split into two 4-digit halves in 32-bit lanes, each into two
// 2-digit ones in 16-bit lanes, each into two digits in bytes (a
// quotient by multiplying and shifting, exact for the values a lane
// holds).
func digits8(v uint64) uint64 {
	x := v/10000 | v%10000<<32
	q := (x * 5243 >> 19) & 0x0000007f0000007f // /100, exact below 43699
	x = q | (x-q*100)<<16
	q = (x * 103 >> 10) & 0x000f000f000f000f // /10, exact below 179
	x = q | (x-q*10)<<8
	return x + 0x3030303030303030
}

// counterKey is the key of day d's counter mark (counter.go).
func counterKey(d uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixJournal, spaceCounter}, d)
}

// seqMarkKey holds the largest sequence counter pruning has deleted, so that Open
// never hands out a sequence again after the newest entries are pruned.
var seqMarkKey = []byte{prefixJournal, spaceSeqMark}

func putEntryKey(dst []byte, seq uint64) {
	dst[0], dst[1] = prefixJournal, spaceEntry
	binary.BigEndian.PutUint64(dst[2:], seq)
}

func entryKey(seq uint64) []byte {
	k := make([]byte, entryKeyLen)
	putEntryKey(k, seq)
	return k
}

// appendStr appends a length-prefixed string. Callers have bounded s to
// 255 bytes or fewer.
func appendStr(dst []byte, s string) []byte {
	if len(s) > 255 {
		panic(fmt.Sprintf("journal: key string of %d bytes", len(s)))
	}
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

func appendSeq(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, seq)
}

func dayPrefix(dst []byte, date string) []byte {
	dst = append(dst, prefixJournal, spaceDay)
	return append(dst, date...)
}

func termBatchPrefix(dst []byte, terminal, batch string) []byte {
	dst = append(dst, prefixJournal, spaceTermBat)
	dst = appendStr(dst, terminal)
	return appendStr(dst, batch)
}

// rrnKey appends the RRN index key of the entry (or pair) at seq dated
// date: the sequence alone when it carries its day, the date and the
// sequence in the old layout (day 0). The two never interleave: a
// sequence's first byte is 0x00 (it is below 2^53), a date's an ASCII
// digit.
func rrnKey(dst []byte, rrn, date string, seq uint64) []byte {
	dst = rrnPrefix(dst, rrn)
	if seqDay(seq) == 0 {
		dst = append(dst, date...)
	}
	return appendSeq(dst, seq)
}

func rrnPrefix(dst []byte, rrn string) []byte {
	dst = append(dst, prefixJournal, spaceRRN)
	return appendStr(dst, rrn)
}

// seqSuffix reads the sequence every index key ends with.
func seqSuffix(key []byte) (uint64, error) {
	if len(key) < 2+seqLen {
		return 0, fmt.Errorf("%w: index key of %d bytes", ErrCorrupt, len(key))
	}
	return binary.BigEndian.Uint64(key[len(key)-seqLen:]), nil
}

// prefixEnd returns the smallest key greater than every key starting with
// p, for use as an iterator's upper bound.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
