package record

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"
)

func samplePair() (*Entry, *Entry) {
	req := sampleEntry()
	resp := sampleEntry()
	resp.Direction, resp.MTI, resp.ResponseCode = Out, "0210", "00"
	resp.Flags = FlagReplayed
	resp.Time = req.Time.Add(1500 * time.Microsecond)
	resp.Raw = []byte{0x02, 0x10}
	req.RRN = "" // a consume's request names no RRN; its answer does
	return req, resp
}

// TestPairBytes pins the pair encoding byte by byte (checked by hand
// against the layout in pair.go).
func TestPairBytes(t *testing.T) {
	req, resp := samplePair()
	b, err := MarshalPair(req, resp)
	if err != nil {
		t.Fatal(err)
	}
	want := "02" + "0000" + "0002" + // version, request flags, response flags (replayed)
		"182ca137067ee9d6" + // 2025-03-14T09:26:53.589793238Z in Unix ns
		"c08db701" + // zig-zag 1 500 000 ns → 3 000 000 = 0x2DC6C0 as a uvarint
		"03706f73" + "0e31302e312e322e333a3430313132" + "083130303030303031" + "0f383938333130303030303030303031" +
		"06303030313233" + "06303030303031" + "07636f6e73756d65" + "083230323530333134" +
		"0430323030" + "00" + "00" + // request: mti, no rrn, no rc
		"0430323130" + "0c313233343536373839303132" + "023030" + // response: mti, rrn, rc
		"0402007020" + "020210" // raws
	body := hex.EncodeToString(b[:len(b)-crcLen])
	if body != want {
		t.Fatalf("pair body\n got %s\nwant %s", body, want)
	}
	var r1, r2 Entry
	if err := DecodePair(b, &r1, &r2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&r1, req) || !reflect.DeepEqual(&r2, resp) {
		t.Fatalf("round trip\n%+v\n%+v", r1, r2)
	}
	if !IsPair(b) {
		t.Fatal("IsPair false for a pair")
	}
	single, _ := req.MarshalBinary()
	if IsPair(single) {
		t.Fatal("IsPair true for a single entry")
	}
	// One value instead of two: the shared fields, a version, a direction
	// pair and a checksum are stored once.
	rb, _ := resp.MarshalBinary()
	if len(b) >= len(single)+len(rb)-40 {
		t.Errorf("pair %d bytes, entries %d + %d", len(b), len(single), len(rb))
	}
}

func TestPairRejects(t *testing.T) {
	req, resp := samplePair()
	other := *resp
	other.Terminal = "10000002"
	if _, err := MarshalPair(req, &other); !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("different terminals: %v", err)
	}
	if _, err := MarshalPair(resp, req); !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("directions swapped: %v", err)
	}
	good, _ := MarshalPair(req, resp)
	for name, b := range map[string][]byte{
		"short":    good[:10],
		"checksum": append(append([]byte(nil), good[:len(good)-1]...), good[len(good)-1]^1),
		"trailing": reseal(append(append([]byte(nil), good[:len(good)-crcLen]...), 0, 0, 0, 0, 0)),
		"version":  reseal(append([]byte{3}, good[1:]...)),
	} {
		var a, c Entry
		if err := DecodePair(b, &a, &c); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodePair: the decoder never panics, and whatever it accepts
// re-encodes to exactly the same bytes.
func FuzzDecodePair(f *testing.F) {
	req, resp := samplePair()
	good, _ := MarshalPair(req, resp)
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a, c Entry
		if err := DecodePair(b, &a, &c); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := MarshalPair(&a, &c)
		if err != nil {
			t.Fatalf("decoded pair does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs\n in %x\nout %x", b, again)
		}
	})
}
