package record

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleEntry is a POS consume request as the switch would journal it (PIN
// block and track 2 already removed by the caller).
func sampleEntry() *Entry {
	return &Entry{
		Direction:    In,
		Listener:     "pos",
		Peer:         "10.1.2.3:40112",
		Terminal:     "10000001",
		Merchant:     "898310000000001",
		MTI:          "0200",
		STAN:         "000123",
		Batch:        "000001",
		RRN:          "123456789012",
		TxType:       "consume",
		Time:         time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC),
		BusinessDate: "20250314",
		Raw:          []byte{0x02, 0x00, 0x70, 0x20},
	}
}

// TestCRC32CCheckValue pins the checksum to CRC-32C: its published check
// value over "123456789" is 0xE3069283 (RFC 3720 appendix B.4; Greg Cook's
// CRC catalogue, CRC-32/ISCSI).
func TestCRC32CCheckValue(t *testing.T) {
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xE3069283 {
		t.Fatalf("CRC-32C check value %08X, want E3069283", got)
	}
}

// TestEntryEncodingBytes checks the layout byte by byte for a small entry
// (hand-assembled from the format comment in entry.go).
func TestEntryEncodingBytes(t *testing.T) {
	e := &Entry{
		Direction:    Out,
		Flags:        FlagReplayed,
		Listener:     "pos",
		Terminal:     "T1",
		MTI:          "0210",
		ResponseCode: "00",
		Time:         time.Unix(0, 0x0102030405060708).UTC(),
		BusinessDate: "20250101",
		Raw:          []byte{0xAB, 0xCD},
	}
	got, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	body := "01" + "02" + "0002" + "0102030405060708" +
		"03" + hex.EncodeToString([]byte("pos")) + // listener
		"00" + // peer
		"02" + hex.EncodeToString([]byte("T1")) + // terminal
		"00" + // merchant
		"04" + hex.EncodeToString([]byte("0210")) + // mti
		"00" + "00" + "00" + "00" + // stan, batch, rrn, tx type
		"02" + hex.EncodeToString([]byte("00")) + // response code
		"08" + hex.EncodeToString([]byte("20250101")) + // business date
		"02" + "abcd" // raw
	want, _ := hex.DecodeString(body)
	want = binary.BigEndian.AppendUint32(want, crc32.Checksum(want, castagnoli))
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	long := func(n int) string { return strings.Repeat("9", n) }
	tests := []struct {
		name string
		e    *Entry
	}{
		{"consume request", sampleEntry()},
		{"undecodable frame, minimal", &Entry{Direction: In, Flags: FlagUndecodable, Time: time.Unix(1, 0), BusinessDate: "20250101"}},
		{"unknown flag bits kept", &Entry{Direction: Out, Flags: 0xF000, Time: time.Unix(1, 1), BusinessDate: "20250101"}},
		{"every field at its bound", &Entry{
			Direction: Out, Listener: long(MaxListenerLen), Peer: long(MaxPeerLen), Terminal: long(MaxTerminalLen),
			Merchant: long(MaxMerchantLen), MTI: long(MaxMTILen), STAN: long(MaxSTANLen), Batch: long(MaxBatchLen),
			RRN: long(MaxRRNLen), TxType: long(MaxTxTypeLen), ResponseCode: long(MaxRCLen),
			Time: time.Unix(0, -1), BusinessDate: "99991231", Raw: bytes.Repeat([]byte{0xFF}, MaxRawLen),
		}},
		{"raw needing a 2-byte length", &Entry{Direction: In, Time: time.Unix(5, 0), BusinessDate: "20250101", Raw: make([]byte, 200)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.e.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got := &Entry{Seq: 77}
			if err := DecodeEntry(b, got); err != nil {
				t.Fatal(err)
			}
			want := *tt.e
			want.Seq = 77
			want.Time = want.Time.UTC()
			assertEntryEqual(t, got, &want)
			// The decoded entry must not alias the input buffer.
			for i := range b {
				b[i] = 0
			}
			assertEntryEqual(t, got, &want)
		})
	}
}

func assertEntryEqual(t *testing.T, got, want *Entry) {
	t.Helper()
	g, w := *got, *want
	if !bytes.Equal(g.Raw, w.Raw) {
		t.Fatalf("raw %x, want %x", g.Raw, w.Raw)
	}
	if !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
		t.Fatalf("time %v, want %v (UTC)", g.Time, w.Time)
	}
	g.Raw, w.Raw, g.Time, w.Time = nil, nil, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("entry\n got %+v\nwant %+v", g, w)
	}
}

func TestEntryValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *Entry)
	}{
		{"no direction", func(e *Entry) { e.Direction = 0 }},
		{"bad direction", func(e *Entry) { e.Direction = 3 }},
		{"zero time", func(e *Entry) { e.Time = time.Time{} }},
		{"no business date", func(e *Entry) { e.BusinessDate = "" }},
		{"short business date", func(e *Entry) { e.BusinessDate = "2025031" }},
		{"business date not digits", func(e *Entry) { e.BusinessDate = "2025-3-1" }},
		{"raw too long", func(e *Entry) { e.Raw = make([]byte, MaxRawLen+1) }},
		{"terminal too long", func(e *Entry) { e.Terminal = strings.Repeat("1", MaxTerminalLen+1) }},
		{"merchant too long", func(e *Entry) { e.Merchant = strings.Repeat("1", MaxMerchantLen+1) }},
		{"peer too long", func(e *Entry) { e.Peer = strings.Repeat("1", MaxPeerLen+1) }},
		{"rrn too long", func(e *Entry) { e.RRN = strings.Repeat("1", MaxRRNLen+1) }},
		{"response code too long", func(e *Entry) { e.ResponseCode = "00000" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEntry()
			tt.change(e)
			if _, err := e.MarshalBinary(); !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("MarshalBinary: %v, want ErrInvalidEntry", err)
			}
		})
	}
}

// reseal recomputes the checksum after a deliberate change to the body, so
// the test reaches the structural checks behind it.
func reseal(b []byte) []byte {
	body := b[:len(b)-crcLen]
	binary.BigEndian.PutUint32(b[len(body):], crc32.Checksum(body, castagnoli))
	return b
}

func TestDecodeEntryRejectsCorruption(t *testing.T) {
	good, err := sampleEntry().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := DecodeEntry(good, &e); err != nil {
		t.Fatalf("good entry: %v", err)
	}
	// Every single-byte change is caught (CRC-32C detects all burst errors
	// up to 32 bits).
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x41
		if err := DecodeEntry(b, &e); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d changed: %v, want ErrCorrupt", i, err)
		}
	}
	for n := 0; n < len(good); n++ {
		if err := DecodeEntry(good[:n], &e); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
	// Structural damage behind a valid checksum.
	listenerLen := entryFixedLen
	rawLenOff := len(good) - crcLen - len(sampleEntry().Raw) - 1
	tests := []struct {
		name   string
		change func(b []byte) []byte
	}{
		{"unknown version", func(b []byte) []byte { b[0] = 2; return b }},
		{"unknown direction", func(b []byte) []byte { b[1] = 9; return b }},
		{"string over its bound", func(b []byte) []byte { b[listenerLen] = MaxListenerLen + 1; return b }},
		{"string past the end", func(b []byte) []byte { b[listenerLen] = 0xFF; return b }},
		{"raw longer than stored", func(b []byte) []byte { b[rawLenOff]++; return b }},
		{"raw shorter than stored", func(b []byte) []byte { b[rawLenOff]--; return b }},
		{"trailing byte", func(b []byte) []byte {
			return append(b[:len(b)-crcLen:len(b)-crcLen], 0, 0, 0, 0, 0)
		}},
		{"non-minimal raw length", func(b []byte) []byte {
			// 4 encoded as 0x84 0x00 instead of 0x04.
			out := append([]byte(nil), b[:rawLenOff]...)
			out = append(out, 0x84, 0x00)
			return append(out, b[rawLenOff+1:]...)
		}},
		{"business date not digits", func(b []byte) []byte {
			i := bytes.Index(b, []byte("20250314"))
			b[i] = 'X'
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := reseal(tt.change(append([]byte(nil), good...)))
			if err := DecodeEntry(b, &e); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzDecodeEntry: the decoder never panics, and whatever it accepts
// re-encodes to exactly the same bytes (the encoding is canonical).
func FuzzDecodeEntry(f *testing.F) {
	good, _ := sampleEntry().MarshalBinary()
	f.Add(good)
	min, _ := (&Entry{Direction: In, Time: time.Unix(1, 0), BusinessDate: "20250101"}).MarshalBinary()
	f.Add(min)
	f.Add([]byte{})
	f.Add(reseal(append([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 20)...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if err := DecodeEntry(b, &e); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs\n in %x\nout %x", b, again)
		}
	})
}

// BenchmarkDecodeEntry decodes a request-sized entry (operator reads and
// reconciliation scans pay this per entry).
func BenchmarkDecodeEntry(b *testing.B) {
	e := sampleEntry()
	e.Raw = make([]byte, 120)
	enc, err := e.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	var out Entry
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := DecodeEntry(enc, &out); err != nil {
			b.Fatal(err)
		}
	}
}
