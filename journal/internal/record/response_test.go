package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// sampleDay is 2025-03-14 as a day number (1741910400 / 86400).
const sampleDay = 20161

func sampleResponse() ResponseRecord {
	return ResponseRecord{
		Fingerprint:   sha256.Sum256([]byte("0200 consume 6230151000000000012 000000001000")),
		ResponseCode:  "00",
		Response:      []byte{0x02, 0x10, 0x30, 0x38, 0x00, 0x00},
		MAKGeneration: 7,
		MAKCheckValue: []byte{0x82, 0xE1, 0x36, 0x65},
		ResponseSeq:   sampleDay*SeqDayUnit + 7,
		Time:          time.Date(2025, 3, 14, 10, 0, 0, 123, time.UTC),
		TxID:          300,
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

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stored is what a record reads back as: the fingerprint cut to what
// version 3 keeps, the time to the second.
func stored(r ResponseRecord) ResponseRecord {
	clear(r.Fingerprint[StoredFingerprintLen:])
	r.Time = r.Time.Truncate(time.Second).UTC()
	r.fpStored = StoredFingerprintLen
	return r
}

// TestResponseRecordV3Bytes pins the version 3 encoding byte for byte
// (hand-checked) and its round trip.
func TestResponseRecordV3Bytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  func(*ResponseRecord)
		body string
	}{
		{"every part", func(*ResponseRecord) {},
			"03" + "07" + // version, flags: txid, kcv, response
				"ed14042decae345104518f4c2c0ab1da" + // fingerprint, first 16 bytes
				"07" + // MAK generation 7
				"c19d01" + "07" + // sequence: day 20161, counter 7
				"c0b204" + // time: 10:00:00 of the day = 36000 s, zigzag 72000
				"ac02" + // txid 300
				"00" + // rc "00"
				"0482e13665" + // kcv
				"06021030380000"}, // response
		{"a consume's record", func(r *ResponseRecord) { r.MAKCheckValue, r.Response, r.TxID = nil, nil, 6 },
			"03" + "01" + "ed14042decae345104518f4c2c0ab1da" + "07" + "c19d01" + "07" + "c0b204" + "06" + "00"},
		{"no txid, rc 94", func(r *ResponseRecord) { r.MAKCheckValue, r.Response, r.TxID, r.ResponseCode = nil, nil, 0, "94" },
			"03" + "00" + "ed14042decae345104518f4c2c0ab1da" + "07" + "c19d01" + "07" + "c0b204" + "5e"},
		{"rc not two digits, answered before its business day", func(r *ResponseRecord) {
			r.MAKCheckValue, r.Response, r.TxID, r.ResponseCode = nil, nil, 0, "A1"
			r.Time = time.Date(2025, 3, 13, 23, 0, 0, 0, time.UTC) // -3600 s, zigzag 7199
		},
			"03" + "00" + "ed14042decae345104518f4c2c0ab1da" + "07" + "c19d01" + "07" + "9f38" + "824131"},
		{"old-layout sequence (day 0)", func(r *ResponseRecord) {
			r.MAKCheckValue, r.Response, r.TxID, r.ResponseSeq, r.ResponseCode, r.MAKGeneration = nil, nil, 0, 42, "", 0
			r.Time = time.Unix(1, 0)
		},
			"03" + "00" + "ed14042decae345104518f4c2c0ab1da" + "00" + "00" + "2a" + "02" + "80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleResponse()
			tc.rec(&r)
			b := encodeResponse(t, r)
			want := hexBytes(t, tc.body)
			if !bytes.Equal(b[:len(b)-crcLen], want) {
				t.Fatalf("encoded\n got % x\nwant % x", b[:len(b)-crcLen], want)
			}
			if !bytes.Equal(reseal(bytes.Clone(b)), b) {
				t.Fatal("checksum is not CRC-32C of the body")
			}
			got, err := DecodeResponseRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if want := stored(r); !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestResponseRecordRoundTrips: records at the edges of every field
// decode to what was encoded (fingerprint and time as kept) and encode
// again to the same bytes.
func TestResponseRecordRoundTrips(t *testing.T) {
	for _, change := range []func(*ResponseRecord){
		func(r *ResponseRecord) {},
		func(r *ResponseRecord) { r.ResponseSeq = 0 },
		func(r *ResponseRecord) { r.ResponseSeq = math.MaxUint64 },
		func(r *ResponseRecord) { r.ResponseSeq = 2216*SeqDayUnit - 1 },
		func(r *ResponseRecord) { r.MAKGeneration = math.MaxUint32 },
		func(r *ResponseRecord) { r.TxID = math.MaxUint64 },
		func(r *ResponseRecord) { r.Time = time.Unix(0, 0) },
		func(r *ResponseRecord) { r.Time = time.Unix(maxRecordUnix, 999_999_999) },
		func(r *ResponseRecord) { r.ResponseSeq, r.Time = math.MaxUint64, time.Unix(0, 0) },
		func(r *ResponseRecord) { r.ResponseCode = "" },
		func(r *ResponseRecord) { r.ResponseCode = "0" },
		func(r *ResponseRecord) { r.ResponseCode = "99" },
		func(r *ResponseRecord) { r.ResponseCode = "9A" },
		func(r *ResponseRecord) { r.ResponseCode = "0000" },
		func(r *ResponseRecord) { r.MAKCheckValue = bytes.Repeat([]byte{0xff}, MaxKCVLen) },
		func(r *ResponseRecord) { r.Response = bytes.Repeat([]byte{1}, MaxRawLen) },
		func(r *ResponseRecord) { r.Time = time.Date(2025, 3, 14, 10, 0, 0, 0, time.FixedZone("CST", 8*3600)) },
	} {
		r := sampleResponse()
		change(&r)
		b := encodeResponse(t, r)
		got, err := DecodeResponseRecord(b)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if want := stored(r); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n got %+v\nwant %+v", got, want)
		}
		if again := encodeResponse(t, got); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded\n got % x\nwant % x", again, b)
		}
	}
}

// TestResponseRecordSizeBounds: a time outside 1970..9999 or unset, and
// fields over their bounds, are refused.
func TestResponseRecordSizeBounds(t *testing.T) {
	for name, change := range map[string]func(*ResponseRecord){
		"time unset":     func(r *ResponseRecord) { r.Time = time.Time{} },
		"time 1969":      func(r *ResponseRecord) { r.Time = time.Unix(-1, 0) },
		"time 10000":     func(r *ResponseRecord) { r.Time = time.Unix(maxRecordUnix+1, 0) },
		"rc of 5":        func(r *ResponseRecord) { r.ResponseCode = "00000" },
		"kcv of 17":      func(r *ResponseRecord) { r.MAKCheckValue = make([]byte, MaxKCVLen+1) },
		"response 64K+1": func(r *ResponseRecord) { r.Response = make([]byte, MaxRawLen+1) },
	} {
		r := sampleResponse()
		change(&r)
		if _, err := r.Size(); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: %v, want ErrInvalidEntry", name, err)
		}
	}
}

// Records as versions 1 and 2 wrote them (the encoder before version 3),
// of sampleResponse's fields at sequence 42 (v2: txid 300, no kcv, no
// response; v1: no txid).
const (
	goldenV1 = "01ed14042decae345104518f4c2c0ab1dafbc28c895691809e972d645b28c4738600000007000000000000002a182ca30585c5407b0230300482e1366506021030380000aa25513e"
	goldenV2 = "02ed14042decae345104518f4c2c0ab1dafbc28c895691809e972d645b28c4738600000007000000000000002a182ca30585c5407bac020230300000651b28c6"
)

// TestResponseRecordOldVersions: records of versions 1 and 2 still decode,
// with their whole fingerprint and nanosecond time, and are compared on
// all 32 bytes of their fingerprint; a version 3 record on its 16.
func TestResponseRecordOldVersions(t *testing.T) {
	s := sampleResponse()
	v1, err := DecodeResponseRecord(hexBytes(t, goldenV1))
	if err != nil {
		t.Fatal(err)
	}
	want := ResponseRecord{Fingerprint: s.Fingerprint, ResponseCode: "00", Response: s.Response, MAKGeneration: 7,
		MAKCheckValue: s.MAKCheckValue, ResponseSeq: 42, Time: s.Time, fpStored: FingerprintLen}
	if !reflect.DeepEqual(v1, want) {
		t.Fatalf("version 1\n got %+v\nwant %+v", v1, want)
	}
	v2, err := DecodeResponseRecord(hexBytes(t, goldenV2))
	if err != nil {
		t.Fatal(err)
	}
	want.TxID, want.MAKCheckValue, want.Response = 300, nil, nil
	if !reflect.DeepEqual(v2, want) {
		t.Fatalf("version 2\n got %+v\nwant %+v", v2, want)
	}
	v3, err := DecodeResponseRecord(encodeResponse(t, s))
	if err != nil {
		t.Fatal(err)
	}

	same := s.Fingerprint
	late := s.Fingerprint // differs after the 16 bytes version 3 keeps
	late[20] ^= 1
	early := s.Fingerprint
	early[3] ^= 1
	for _, tc := range []struct {
		name              string
		rec               ResponseRecord
		same, late, early bool
	}{
		{"version 1", v1, true, false, false},
		{"version 2", v2, true, false, false},
		{"version 3", v3, true, true, false},
		{"not decoded", s, true, false, false},
	} {
		if got := [3]bool{tc.rec.MatchesFingerprint(same), tc.rec.MatchesFingerprint(late), tc.rec.MatchesFingerprint(early)}; got != [3]bool{tc.same, tc.late, tc.early} {
			t.Errorf("%s: matches same, differing at byte 20, at byte 3: %v, want %v", tc.name, got, [3]bool{tc.same, tc.late, tc.early})
		}
	}

	// Written again, an old record is version 3.
	if b := encodeResponse(t, v2); b[0] != responseVersion3 {
		t.Fatalf("re-encoded version 2 record: version %d", b[0])
	}
	// Versions 1 and 2 keep rejecting what they rejected.
	zero := hexBytes(t, goldenV2)
	zero[responseFixedLen], zero[responseFixedLen+1] = 0x00, 0x02 // txid 0, then rc length 2
	v2b := hexBytes(t, goldenV2)
	long := append(append(bytes.Clone(v2b[:responseFixedLen]), 0xac, 0x82, 0x00), v2b[responseFixedLen+2:]...)
	for name, b := range map[string][]byte{"txid 0": zero, "long txid": long} {
		if _, err := DecodeResponseRecord(reseal(b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	for _, golden := range []string{goldenV1, goldenV2} {
		good := hexBytes(t, golden)
		for i := range good {
			b := bytes.Clone(good)
			b[i] ^= 0x10
			if _, err := DecodeResponseRecord(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("version %d, byte %d changed: %v, want ErrCorrupt", good[0], i, err)
			}
		}
		for n := 0; n < len(good); n++ {
			if _, err := DecodeResponseRecord(good[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("version %d cut to %d bytes: %v, want ErrCorrupt", good[0], n, err)
			}
		}
	}
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
	// Bodies (without their checksum) that are well formed but for one
	// thing; each is sealed before decoding.
	const fp = "ed14042decae345104518f4c2c0ab1da"
	for name, body := range map[string]string{
		"version 4":                         "04" + "00" + fp + "07" + "c19d01" + "07" + "c0b204" + "00",
		"unknown flag":                      "03" + "08" + fp + "07" + "c19d01" + "07" + "c0b204" + "00",
		"long MAK generation":               "03" + "00" + fp + "8700" + "c19d01" + "07" + "c0b204" + "00",
		"MAK generation 2^32":               "03" + "00" + fp + "8080808010" + "c19d01" + "07" + "c0b204" + "00",
		"long day":                          "03" + "00" + fp + "07" + "c19d8100" + "07" + "c0b204" + "00",
		"counter of a whole day":            "03" + "00" + fp + "07" + "00" + "80d0dbc3f402" + "c0b204" + "00",
		"sequence past 2^64":                "03" + "00" + fp + "07" + "f1fffa57" + "00" + "00" + "00",
		"sequence past 2^64 by its counter": "03" + "00" + fp + "07" + "f0fffa57" + "ffcfdbc3f402" + "00" + "00",
		"time before 1970":                  "03" + "00" + fp + "07" + "00" + "07" + "01" + "00",
		"time past 9999":                    "03" + "00" + fp + "07" + "00" + "07" + "8086a2ffdf0e" + "00",
		"txid 0":                            "03" + "01" + fp + "07" + "c19d01" + "07" + "c0b204" + "00" + "00",
		"no txid":                           "03" + "01" + fp + "07" + "c19d01" + "07" + "c0b204",
		"rc byte 100":                       "03" + "00" + fp + "07" + "c19d01" + "07" + "c0b204" + "64",
		"rc 00 long":                        "03" + "00" + fp + "07" + "c19d01" + "07" + "c0b204" + "823030",
		"rc of 5":                           "03" + "00" + fp + "07" + "c19d01" + "07" + "c0b204" + "853030303030",
		"rc cut short":                      "03" + "00" + fp + "07" + "c19d01" + "07" + "c0b204" + "8341",
		"no rc":                             "03" + "00" + fp + "07" + "c19d01" + "07" + "c0b204",
		"kcv of 0":                          "03" + "02" + fp + "07" + "c19d01" + "07" + "c0b204" + "00" + "00",
		"kcv of 17":                         "03" + "02" + fp + "07" + "c19d01" + "07" + "c0b204" + "00" + "11" + "0000000000000000000000000000000000",
		"response of 0":                     "03" + "04" + fp + "07" + "c19d01" + "07" + "c0b204" + "00" + "00",
		"response length":                   "03" + "04" + fp + "07" + "c19d01" + "07" + "c0b204" + "00" + "030102",
		"long response length":              "03" + "04" + fp + "07" + "c19d01" + "07" + "c0b204" + "00" + "8100" + "01",
		"bytes after":                       "03" + "00" + fp + "07" + "c19d01" + "07" + "c0b204" + "00" + "00",
	} {
		b := append(hexBytes(t, body), 0, 0, 0, 0)
		if _, err := DecodeResponseRecord(reseal(b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	// The same bodies, well formed, decode.
	for _, body := range []string{
		"03" + "00" + fp + "07" + "c19d01" + "07" + "c0b204" + "00",
		"03" + "00" + fp + "07" + "00" + "07" + "00" + "00",
		"03" + "00" + fp + "07" + "00" + "07" + "fe85a2ffdf0e" + "00",
		"03" + "06" + fp + "07" + "c19d01" + "07" + "c0b204" + "00" + "0101" + "0102",
	} {
		if _, err := DecodeResponseRecord(reseal(append(hexBytes(t, body), 0, 0, 0, 0))); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// FuzzDecodeResponseRecord: the decoder never panics and errors wrap
// ErrCorrupt; a version 3 record it accepts encodes again to the same
// bytes (one encoding per record); a version 1 or 2 record it accepts
// reads back, once written (as version 3), as what version 3 keeps of it.
// Each input is tried as it is and with its checksum made right, so that
// mutations reach the fields behind it.
func FuzzDecodeResponseRecord(f *testing.F) {
	f.Add(encodeResponse(f, sampleResponse()))
	f.Add(encodeResponse(f, ResponseRecord{Time: time.Unix(1, 0)}))
	noTx := sampleResponse()
	noTx.TxID, noTx.ResponseCode = 0, "A"
	f.Add(encodeResponse(f, noTx))
	f.Add(hexBytes(f, goldenV1))
	f.Add(hexBytes(f, goldenV2))
	f.Add([]byte{3})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkResponseDecode(t, b)
		if len(b) >= crcLen {
			checkResponseDecode(t, reseal(bytes.Clone(b)))
		}
	})
}

func checkResponseDecode(t *testing.T, b []byte) {
	r, err := DecodeResponseRecord(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	if b[0] == responseVersion3 {
		if again := encodeResponse(t, r); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs\n in %x\nout %x", b, again)
		}
		return
	}
	if r.Time.Unix() < 0 || r.Time.Unix() > maxRecordUnix {
		return // a time version 3 does not keep
	}
	got, err := DecodeResponseRecord(encodeResponse(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if want := stored(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("version %d record written again\n got %+v\nwant %+v", b[0], got, want)
	}
}
