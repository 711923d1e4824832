package journal

import (
	"encoding/binary"
	"fmt"
)

// Key layout. Every journal key starts with 'j', every queue key with 'q'
// (docs/architecture.md). The second byte names the keyspace. Variable
// strings inside keys carry a one-byte length in front so that one
// terminal's keys can never be a prefix of another's ("1000" vs "10001").
//
//	j e seq(8)                                   entry (the sequence begins with its business day)
//	j d date(8) seq(8)                           business-day index (read and pruned only: data written before sequences carried the day)
//	j t len term len batch seq(8)                terminal + batch index
//	j r len rrn seq(8)                           RRN index (the sequence carries the day)
//	j r len rrn date(8) seq(8)                   RRN index of the old layout (read and pruned only)
//	j o len term len batch len stan len date     duplicate record of an answered pair (AppendAnswered), its terminal + batch index too
//	j p len term len batch len stan len date     stored response (PutResponse)
//	j s                                          sequence mark (retention)
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
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	y, m, day := num(date[:4]), num(date[4:6]), num(date[6:])
	if m < 1 || m > 12 || day < 1 || day > daysIn(y, m) {
		return 0, false
	}
	// Days from civil (proleptic Gregorian), counting March as the first
	// month so the leap day ends the year.
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	n := era*146097 + doe - 719468
	if n < 1 || n > maxSeqDay {
		return 0, false
	}
	return uint32(n), true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
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
