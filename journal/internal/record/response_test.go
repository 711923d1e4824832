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
