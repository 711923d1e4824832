package record

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

func sampleResponse() ResponseRecord {
	return ResponseRecord{
		Fingerprint:   sha256.Sum256([]byte("0200 consume 6230151000000000012 000000001000")),
		ResponseCode:  "00",
		Response:      []byte{0x02, 0x10, 0x30, 0x38, 0x00, 0x00},
		MAKGeneration: 7,
		MAKCheckValue: []byte{0x82, 0xE1, 0x36, 0x65},
		ResponseSeq:   42,
		Time:          time.Date(2025, 3, 14, 10, 0, 0, 123, time.UTC),
	}
}

func encodeResponse(t testing.TB, r ResponseRecord) []byte {
	t.Helper()
	n, err := r.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	r.EncodeInto(b)
	return b
}

func TestDecodeResponseRecordRejectsCorruption(t *testing.T) {
	good := encodeResponse(t, sampleResponse())
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		if _, err := DecodeResponseRecord(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d changed: %v, want ErrCorrupt", i, err)
		}
	}
	for n := 0; n < len(good); n++ {
		if _, err := DecodeResponseRecord(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
	rcOff := responseFixedLen
	for name, change := range map[string]func(b []byte){
		"version":         func(b []byte) { b[0] = 9 },
		"rc length":       func(b []byte) { b[rcOff] = MaxRCLen + 1 },
		"kcv length":      func(b []byte) { b[rcOff+3] = MaxKCVLen + 1 },
		"response length": func(b []byte) { b[rcOff+3+5]++ },
	} {
		b := bytes.Clone(good)
		change(b)
		if _, err := DecodeResponseRecord(reseal(b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecodeResponseRecord(f *testing.F) {
	f.Add(encodeResponse(f, sampleResponse()))
	f.Add(encodeResponse(f, ResponseRecord{Time: time.Unix(1, 0)}))
	withTx := sampleResponse()
	withTx.TxID = 1 << 20
	f.Add(encodeResponse(f, withTx))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponseRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := encodeResponse(t, r); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs\n in %x\nout %x", b, again)
		}
	})
}

// TestResponseRecordTxID: a record with a ledger transaction id is
// version 2, two more bytes for an id below 2^14 (hand-checked), and
// round-trips; without one it stays version 1; a version 2 record naming
// id 0, or with a longer form of its id, does not decode.
func TestResponseRecordTxID(t *testing.T) {
	v1 := encodeResponse(t, sampleResponse())
	if v1[0] != 1 {
		t.Fatalf("record without txid: version %d, want 1", v1[0])
	}
	r := sampleResponse()
	r.TxID = 300 // uvarint ac 02
	v2 := encodeResponse(t, r)
	if v2[0] != 2 || len(v2) != len(v1)+2 || !bytes.Equal(v2[responseFixedLen:responseFixedLen+2], []byte{0xac, 0x02}) {
		t.Fatalf("record with txid 300: % x", v2)
	}
	got, err := DecodeResponseRecord(v2)
	if err != nil || got.TxID != 300 || got.ResponseCode != r.ResponseCode || !bytes.Equal(got.Response, r.Response) {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	zero := bytes.Clone(v2)
	zero[responseFixedLen], zero[responseFixedLen+1] = 0x00, 0x02 // txid 0, then rc length 2
	long := append(append(bytes.Clone(v2[:responseFixedLen]), 0xac, 0x82, 0x00), v2[responseFixedLen+2:]...)
	for name, b := range map[string][]byte{"txid 0": zero, "long txid": long} {
		if _, err := DecodeResponseRecord(reseal(b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
