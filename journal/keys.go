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
//	j e seq(8)                                   entry
//	j d date(8) seq(8)                           business-day index
//	j t len term len batch seq(8)                terminal + batch index
//	j r len rrn date(8) seq(8)                   RRN index
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

// seqMarkKey holds the largest sequence pruning has deleted, so that Open
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
