package record

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
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

// marshalPairV2 is the version 2 encoder, kept to test that stored
// version 2 pairs are still read: the layout in pair.go.
func marshalPairV2(req, resp *Entry) ([]byte, error) { return appendPairV2(nil, req, resp) }

func appendPairV2(b []byte, req, resp *Entry) ([]byte, error) {
	if err := checkPair(req, resp); err != nil {
		return nil, err
	}
	start := len(b)
	b = append(b, pairVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Flags))
	b = binary.BigEndian.AppendUint16(b, uint16(resp.Flags))
	b = binary.BigEndian.AppendUint64(b, uint64(req.Time.UnixNano()))
	b = binary.AppendUvarint(b, zigzag(resp.Time.UnixNano()-req.Time.UnixNano()))
	for _, s := range req.sharedFields() {
		b = append(append(b, byte(len(s))), s...)
	}
	for _, e := range [2]*Entry{req, resp} {
		for _, s := range e.ownFields() {
			b = append(append(b, byte(len(s))), s...)
		}
	}
	for _, e := range [2]*Entry{req, resp} {
		b = binary.AppendUvarint(b, uint64(len(e.Raw)))
		b = append(b, e.Raw...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
}

// TestPair2Bytes: a version 2 pair, pinned byte by byte (checked by hand
// against the layout in pair.go), is still read.
func TestPair2Bytes(t *testing.T) {
	req, resp := samplePair()
	want := "02" + "0000" + "0002" + // version, request flags, response flags (replayed)
		"182ca137067ee9d6" + // 2025-03-14T09:26:53.589793238Z in Unix ns
		"c08db701" + // zig-zag 1 500 000 ns → 3 000 000 = 0x2DC6C0 as a uvarint
		"03706f73" + "0e31302e312e322e333a3430313132" + "083130303030303031" + "0f383938333130303030303030303031" +
		"06303030313233" + "06303030303031" + "07636f6e73756d65" + "083230323530333134" +
		"0430323030" + "00" + "00" + // request: mti, no rrn, no rc
		"0430323130" + "0c313233343536373839303132" + "023030" + // response: mti, rrn, rc
		"0402007020" + "020210" // raws
	b, err := hex.DecodeString(want)
	if err != nil {
		t.Fatal(err)
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	var r1, r2 Entry
	if err := DecodePair(b, &r1, &r2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&r1, req) || !reflect.DeepEqual(&r2, resp) {
		t.Fatalf("round trip\n%+v\n%+v", r1, r2)
	}
	if again, _ := marshalPairV2(req, resp); !bytes.Equal(again, b) {
		t.Fatalf("version 2 encoder\n got %x\nwant %x", again, b)
	}
	if !IsPair(b) {
		t.Fatal("IsPair false for a version 2 pair")
	}
}

// samplePairV3 is samplePair in version 3, as written before version 4
// (checked by hand against the layout in pairdelta.go): the request raw
// as its bytes, the response's operations n << 1 | kind.
func samplePairV3() []byte {
	b, err := hex.DecodeString("03" + "02" + "182ca137067ee9d6" + "c08db701" +
		"04" + "02007020" + "02" + "04" + "0210" + // request raw; response raw, a literal of 2
		"41" + "410a010203" + "9cb0" + "083130303030303031" + "0f383938333130303030303030303031" +
		"06303030313233" + "06303030303031" + "49" + "00" + "5e" + "00" + "00" + "5f" + "0c313233343536373839303132" + "5b")
	if err != nil {
		panic(err)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// TestPairBytes pins the version 4 encoding byte by byte (checked by hand
// against the layout in pairdelta.go).
func TestPairBytes(t *testing.T) {
	req, resp := samplePair()
	b, err := MarshalPair(req, resp)
	if err != nil {
		t.Fatal(err)
	}
	want := "04" + "02" + // version, flags: request 0 << 16 | response 2 (replayed)
		"182ca137067ee9d6" + // 2025-03-14T09:26:53.589793238Z in Unix ns
		"c08db701" + // zig-zag 1 500 000 ns → 3 000 000 = 0x2DC6C0 as a uvarint
		"04" + "10" + "02007020" + // request raw, 4 bytes: one literal of 4 (header 4<<2)
		"02" + "08" + "0210" + // response raw, 2 bytes: one literal of 2
		"41" + // listener "pos", well-known value 0
		"410a010203" + "9cb0" + // peer 10.1.2.3 port 40112 = 0x9cb0
		"083130303030303031" + "0f383938333130303030303030303031" + // terminal, merchant: literals
		"06303030313233" + "06303030303031" + // stan, batch: literals (the raws hold neither)
		"49" + // tx type "consume", well-known value 8
		"00" + // business date: the request time's UTC day, difference 0
		"5e" + "00" + "00" + // request: mti 0200, well-known value 29, no rrn, no rc
		"5f" + "0c313233343536373839303132" + "5b" // response: mti 0210 (30), rrn literal, rc "00" (26)
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
	old := samplePairV3()
	if err := DecodePair(old, &r1, &r2); err != nil || !IsPair(old) {
		t.Fatalf("version 3: %v", err)
	}
	if !reflect.DeepEqual(&r1, req) || !reflect.DeepEqual(&r2, resp) {
		t.Fatalf("version 3 round trip\n%+v\n%+v", r1, r2)
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
		"version":  reseal(append([]byte{5}, good[1:]...)),
	} {
		var a, c Entry
		if err := DecodePair(b, &a, &c); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// consumePair is an approved consume as the switch journals it (demo
// card, canteen terminal; field 52 removed by the switch before the
// journal sees it): the request and its response as sent.
func consumePair() (*Entry, *Entry) {
	raw := func(h string) []byte {
		b, err := hex.DecodeString(h)
		if err != nil {
			panic(err)
		}
		return b
	}
	req := &Entry{
		Direction: In, Listener: "pos", Peer: "127.0.0.1:56020", Terminal: "10000001", Merchant: "898310000000001",
		MTI: "0200", STAN: "000002", Batch: "000001", TxType: "consume",
		Time:         time.Date(2026, 12, 4, 21, 53, 53, 241744107, time.UTC),
		BusinessDate: "20261204",
		Raw: raw("02007038048000c0801119623015100000000001200000000000000030000000022153531204022000" +
			"3130303030303031383938333130303030303030303031313536001122000001000042374444373037" + "45"),
	}
	resp := *req
	resp.Direction, resp.MTI, resp.RRN, resp.ResponseCode = Out, "0210", "338000000001", "00"
	resp.Time = req.Time.Add(2406164)
	resp.Raw = raw("0210703a00800ec08413196230151000000000012000000000000000300000000221535312041204003333" +
		"3830303030303030303130303030303630303130303030303031383938333130303030303030303031313536" +
		"00403030303231353643303030303030303530303030303130323135364330303030303030313730303000" +
		"11220000010000001543534343616e7465656e204e6f2e313344363636363143")
	return req, &resp
}

// TestPackedLiterals pins the literal operations (checked by hand against
// the layout in pairdelta.go): runs of digits and of hex with a letter
// packed where long enough, the rest as it is.
func TestPackedLiterals(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"\x00\x01", "08" + "0001"},    // literal of 2: 2<<2
		{"12345", "14" + "3132333435"}, // 5 digits: too short to pack
		{"\x00" + "10000001898310000000001156" + "\x00", "04" + "00" + "6a" + "10000001898310000000001156" + "04" + "00"}, // 26 digits: 26<<2|2
		{"1234567", "1e" + "1234567" + "0"},                     // 7 digits, the last low nibble 0
		{"B7DD707E", "23" + "b7dd707e"},                         // 8 hex digits: 8<<2|3
		{"No.13D66661C", "10" + "4e6f2e31" + "23" + "3d66661c"}, // 9 hex digits: the first left to the literal
		{"ABCDEF0", "1c" + "41424344454630"},                    // 7 hex digits: too short
		{"abcdef01", "20" + "6162636465663031"},                 // lowercase stays literal
		{"0002156C", "23" + "0002156c"},                         // hex with a letter
	} {
		got := hex.EncodeToString(appendLiteral(nil, []byte(c.in)))
		if got != c.want {
			t.Errorf("%q: got %s, want %s", c.in, got, c.want)
		}
		r := pairReader{b: appendLiteral(nil, []byte(c.in))}
		if out := r.ops(nil, len(c.in), false, "request"); r.err != nil || string(out) != c.in || r.off != len(r.b) {
			t.Errorf("%q: decoded %q, %v", c.in, out, r.err)
		}
	}
}

// TestPackedLiteralsRejects: packed digits that are no digits, a padding
// nibble that is not 0, an odd count of hex digits, a run past the
// message's length.
func TestPackedLiteralsRejects(t *testing.T) {
	for _, c := range []struct {
		ops string
		n   int
	}{
		{"0a" + "1a", 2},   // 2 digits: 1 and a
		{"0e" + "1235", 3}, // 3 digits, padding 5
		{"0f" + "1234", 3}, // 3 hex digits
		{"12" + "1234", 2}, // 4 digits in a message of 2
		{"00", 1},          // an empty literal
	} {
		b, _ := hex.DecodeString(c.ops)
		r := pairReader{b: b}
		if out := r.ops(nil, c.n, false, "request"); !errors.Is(r.err, ErrCorrupt) {
			t.Errorf("%s: %q, %v; want ErrCorrupt", c.ops, out, r.err)
		}
	}
}

// TestConsumePairSize: version 4 of a real consume's pair, against
// version 2 (docs/journal.md#what-one-consume-writes).
func TestConsumePairSize(t *testing.T) {
	req, resp := consumePair()
	v2, err := marshalPairV2(req, resp)
	if err != nil {
		t.Fatal(err)
	}
	v3, err := MarshalPair(req, resp)
	if err != nil {
		t.Fatal(err)
	}
	delta := len(appendDelta(nil, req.Raw, resp.Raw, new(deltaTable[uint32])))
	t.Logf("consume pair: version 2 %d bytes, version 4 %d bytes (request raw %d; response raw %d as a delta of %d)",
		len(v2), len(v3), len(req.Raw), len(resp.Raw), delta)
	if len(v2) != 373 || len(v3) > 210 || delta > 90 {
		t.Errorf("version 2 %d bytes (want 373), version 4 %d (want at most 210), delta %d (want at most 90)", len(v2), len(v3), delta)
	}
	var a, c Entry
	if err := DecodePair(v3, &a, &c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&a, req) || !reflect.DeepEqual(&c, resp) {
		t.Fatalf("round trip\n%+v\n%+v", a, c)
	}
}

// TestPairRoundTripRandom: responses made from their requests by random
// edits (copies of request runs, repeats of their own bytes, new bytes),
// peers in every form and dates near and far from the request's day all
// decode to exactly what was encoded.
func TestPairRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	peers := []string{"127.0.0.1:56020", "[::1]:8583", "[fe80::1%eth0]:80", "[::ffff:10.0.0.1]:1", "10.0.0.01:5", "host:1", "", "0.0.0.0:0"}
	dates := []string{"20261204", "20261205", "20261203", "19700101", "20270101", "20261399", "00000000", "99991231", "20000229"}
	for i := 0; i < 3000; i++ {
		req, resp := consumePair()
		req.Raw = make([]byte, rng.IntN(300))
		for j := range req.Raw {
			// Few symbols, many matches; runs of digits and hex.
			req.Raw[j] = "\x00\x90000079AFa"[rng.IntN(11)]
		}
		var out []byte
		for len(out) < 400 && rng.IntN(12) > 0 {
			switch k := rng.IntN(3); {
			case k == 0 && len(req.Raw) > 0:
				a := rng.IntN(len(req.Raw))
				out = append(out, req.Raw[a:a+rng.IntN(len(req.Raw)-a+1)]...)
			case k == 1 && len(out) > 0:
				a := rng.IntN(len(out))
				out = append(out, out[a:a+rng.IntN(len(out)-a+1)]...)
			default:
				for n := rng.IntN(20); n > 0; n-- {
					out = append(out, byte(rng.IntN(256)))
				}
			}
		}
		resp.Raw = out
		if len(out) == 0 {
			resp.Raw = nil
		}
		if len(req.Raw) == 0 {
			req.Raw = nil
		}
		p := peers[rng.IntN(len(peers))]
		d := dates[rng.IntN(len(dates))]
		for _, e := range []*Entry{req, resp} {
			e.Peer, e.BusinessDate = p, d
			e.Time = e.Time.Add(time.Duration(rng.Int64N(int64(400 * 24 * time.Hour))))
		}
		if len(req.Raw) >= 8 {
			resp.RRN = string(req.Raw[2:8])
		}
		b, err := MarshalPair(req, resp)
		if err != nil {
			t.Fatal(err)
		}
		var a, c Entry
		if err := DecodePair(b, &a, &c); err != nil {
			t.Fatalf("%d: %v\n%x", i, err, b)
		}
		if !reflect.DeepEqual(&a, req) || !reflect.DeepEqual(&c, resp) {
			t.Fatalf("%d: round trip\n%+v\n%+v\nwant\n%+v\n%+v", i, a, c, *req, *resp)
		}
	}
}

// FuzzPairRoundTrip: any pair the encoder takes decodes to exactly what
// was encoded (the raw messages byte for byte, every field).
func FuzzPairRoundTrip(f *testing.F) {
	req, resp := consumePair()
	f.Add(req.Raw, resp.Raw, req.Peer, req.Terminal, resp.RRN, req.BusinessDate, "consume", int64(0))
	f.Add([]byte{}, []byte{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 5}, "[::1]:1", "1234", "0000", "20261399", "0200", int64(-1))
	f.Fuzz(func(t *testing.T, reqRaw, respRaw []byte, peer, terminal, rrn, date, known string, dt int64) {
		req, resp := consumePair()
		req.Raw, resp.Raw = reqRaw, respRaw
		req.Peer, req.Terminal, req.BusinessDate = peer, terminal, date
		resp.Peer, resp.Terminal, resp.BusinessDate = peer, terminal, date
		resp.RRN = rrn
		req.TxType, resp.TxType, req.MTI, resp.ResponseCode = known, known, known, known
		req.Time = req.Time.Add(time.Duration(dt))
		b, err := MarshalPair(req, resp)
		if err != nil {
			if !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("error %v does not wrap ErrInvalidEntry", err)
			}
			return
		}
		var a, c Entry
		if err := DecodePair(b, &a, &c); err != nil {
			t.Fatalf("%v\n%x", err, b)
		}
		for _, e := range []*Entry{req, resp, &a, &c} {
			if len(e.Raw) == 0 {
				e.Raw = nil
			}
		}
		if !reflect.DeepEqual(&a, req) || !reflect.DeepEqual(&c, resp) {
			t.Fatalf("round trip\n%+v\n%+v\nwant\n%+v\n%+v", a, c, *req, *resp)
		}
	})
}

// FuzzDecodePair: the decoder never panics; a version 2 pair it accepts
// re-encodes (in version 2) to exactly the same bytes, and a version 3 or 4
// pair it accepts re-encodes to one that decodes to the same entries.
// Each input is tried as it is and with its checksum made right, so that
// mutations reach the operations and fields behind it (without, nearly
// every mutation stopped at the checksum).
func FuzzDecodePair(f *testing.F) {
	req, resp := samplePair()
	good, _ := MarshalPair(req, resp)
	f.Add(good)
	old, _ := marshalPairV2(req, resp)
	f.Add(old)
	f.Add(samplePairV3())
	creq, cresp := consumePair()
	real, _ := MarshalPair(creq, cresp)
	f.Add(real)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkPairDecode(t, b)
		if len(b) >= crcLen {
			checkPairDecode(t, reseal(bytes.Clone(b)))
		}
	})
}

func checkPairDecode(t *testing.T, b []byte) {
	var a, c Entry
	if err := DecodePair(b, &a, &c); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	if b[0] == pairVersion {
		again, err := marshalPairV2(&a, &c)
		if err != nil {
			t.Fatalf("decoded pair does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs\n in %x\nout %x", b, again)
		}
		return
	}
	again, err := MarshalPair(&a, &c)
	if err != nil {
		t.Fatalf("decoded pair does not encode: %v", err)
	}
	var a2, c2 Entry
	if err := DecodePair(again, &a2, &c2); err != nil {
		t.Fatalf("re-encoded pair does not decode: %v", err)
	}
	if !reflect.DeepEqual(a, a2) || !reflect.DeepEqual(c, c2) {
		t.Fatalf("re-encoded pair decodes differently\n%+v\n%+v\n%+v\n%+v", a, c, a2, c2)
	}
}

// BenchmarkAppendPair: the encoder on the hot path, a real consume.
func BenchmarkAppendPair(b *testing.B) {
	req, resp := consumePair()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendPair(buf[:0], req, resp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/pair")
}

// BenchmarkAppendPairV2: the version 2 encoder, for comparison.
func BenchmarkAppendPairV2(b *testing.B) {
	req, resp := consumePair()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = appendPairV2(buf[:0], req, resp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePair(b *testing.B) {
	req, resp := consumePair()
	v, _ := MarshalPair(req, resp)
	b.ReportAllocs()
	for b.Loop() {
		var a, c Entry
		if err := DecodePair(v, &a, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCivilDays checks the date arithmetic against package time over
// every day from 1600 to 2500 and a few far ones.
func TestCivilDays(t *testing.T) {
	start := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	for tm := start; tm.Year() < 2500; tm = tm.AddDate(0, 0, 1) {
		day := floorDiv(tm.Unix(), 86400)
		s := tm.Format("20060102")
		if got, ok := DayOf(s); !ok || got != day {
			t.Fatalf("DayOf(%s) = %d, %v; want %d", s, got, ok, day)
		}
		if y, m, d := CivilFromDays(day); y != int64(tm.Year()) || m != int64(tm.Month()) || d != int64(tm.Day()) {
			t.Fatalf("CivilFromDays(%d) = %d-%d-%d, want %s", day, y, m, d, s)
		}
	}
	for _, s := range []string{"20261399", "20260229", "21000229", "20261131", "20260001", "20261200", "00000000"} {
		if _, ok := DayOf(s); ok {
			t.Errorf("DayOf(%s) says it is a date", s)
		}
	}
	for _, s := range []string{"20240229", "20000229", "00000101", "99991231"} {
		if _, ok := DayOf(s); !ok {
			t.Errorf("DayOf(%s) says it is not a date", s)
		}
	}
}

// TestPeerForms: a peer is stored in binary exactly when it prints back
// as the same string; every form round-trips.
func TestPeerForms(t *testing.T) {
	for _, c := range []struct {
		peer string
		form byte
	}{
		{"127.0.0.1:56020", peerIPv4}, {"0.0.0.0:0", peerIPv4}, {"255.255.255.255:65535", peerIPv4},
		{"[::1]:8583", peerIPv6}, {"[2001:db8::1]:443", peerIPv6}, {"[::ffff:10.0.0.1]:1", peerIPv6},
		{"10.0.0.01:5", 11}, {"10.0.0.1:05", 11}, {"256.0.0.1:5", 11}, {"1.2.3.4:65536", 13}, {"1.2.3:4", 7},
		{"1.2.3.4", 7}, {"1.2.3.4:", 8}, {"[fe80::1%eth0]:80", 17}, {"[::FFFF:1.2.3.4]:1", 18}, {"[0:0::1]:1", 10},
		{"host:1", 6}, {"", 0}, {"1.2.3.4:100000", 14},
	} {
		b := appendPeer(nil, c.peer)
		if b[0] != c.form {
			t.Errorf("%q: form %d, want %d", c.peer, b[0], c.form)
		}
		r := pairReader{b: b}
		if got := string(r.peer(nil)); r.err != nil || got != c.peer || r.off != len(b) {
			t.Errorf("%q: decoded %q, %v", c.peer, got, r.err)
		}
	}
}

// TestWellKnownCodes: each well-known value has its code, decodes from
// it, and fits the field bounds of a code 0x41 + i; a code beyond the
// table or a value too long for its field is refused.
func TestWellKnownCodes(t *testing.T) {
	if strKnown+len(wellKnown) > strRef {
		t.Fatalf("%d well-known values do not fit below %#x", len(wellKnown), strRef)
	}
	// A literal's length byte must stay below the codes: every string
	// field's bound is at most 64 (the peer has forms of its own).
	for i, max := range append(sharedFieldMax[:], ownFieldMax[:]...) {
		if max >= strKnown {
			t.Errorf("field %d bound %d: a literal that long would read as a code", i, max)
		}
	}
	seen := map[string]bool{}
	for i, w := range wellKnown {
		if seen[w] {
			t.Errorf("%q twice", w)
		}
		seen[w] = true
		c, ok := knownCode(w)
		if !ok || c != strKnown+byte(i) {
			t.Errorf("%q: code %#x, %v; want %#x", w, c, ok, strKnown+i)
		}
		r := pairReader{b: []byte{c}}
		if got := string(r.str(nil, &[2][]byte{}, MaxTxTypeLen, "tx_type")); got != w || r.err != nil {
			t.Errorf("%#x decodes to %q, %v", c, got, r.err)
		}
	}
	for _, s := range []string{"", "POS", "0200 ", "consume_", "99"} {
		if c, ok := knownCode(s); ok {
			t.Errorf("%q has code %#x", s, c)
		}
	}
	r := pairReader{b: []byte{strKnown + byte(len(wellKnown))}}
	if r.str(nil, &[2][]byte{}, MaxTxTypeLen, "tx_type"); !errors.Is(r.err, ErrCorrupt) {
		t.Errorf("code past the table: %v", r.err)
	}
	r = pairReader{b: []byte{strKnown + 8}} // "consume" as a response code
	if r.str(nil, &[2][]byte{}, MaxRCLen, "response_code"); !errors.Is(r.err, ErrCorrupt) {
		t.Errorf("a value too long for its field: %v", r.err)
	}
}

// TestIndexByLast: the search finds an occurrence wherever there is one.
func TestIndexByLast(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 20000; i++ {
		r := make([]byte, rng.IntN(40))
		for j := range r {
			r[j] = byte(rng.IntN(3))
		}
		needle := make([]byte, 1+rng.IntN(3))
		for j := range needle {
			needle[j] = byte(rng.IntN(3))
		}
		got := indexByLast(r, needle)
		if want := bytes.Index(r, needle); (got < 0) != (want < 0) || got >= 0 && !bytes.Equal(r[got:got+len(needle)], needle) {
			t.Fatalf("indexByLast(%x, %x) = %d; bytes.Index %d", r, needle, got, want)
		}
	}
}

// TestHexMasks checks the word-wide classification against isHex for
// every byte value in every position.
func TestHexMasks(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			var w [8]byte
			for k := range w {
				w[k] = byte(c + 37*k) // other bytes vary too
			}
			w[pos] = byte(c)
			d, l := hexMasks(binary.LittleEndian.Uint64(w[:]))
			for k := range w {
				gotD, gotL := d>>(8*k+7)&1 == 1, l>>(8*k+7)&1 == 1
				if gotD != (isHex[w[k]] == 2) || gotL != (isHex[w[k]] == 1) {
					t.Fatalf("byte %#x: digit %v letter %v", w[k], gotD, gotL)
				}
			}
		}
	}
}

// TestDayOfMemo: DayOf with its memo of the last date answers as the
// arithmetic does, for dates in random order (each often repeated,
// calendar dates and not: month 00 or 13, day 00 or past the month's
// end, non-digits, all zeros).
func TestDayOfMemo(t *testing.T) {
	// An empty memo answers nothing, not even for the date of key 0.
	dayMemo.Store(0)
	if d, ok := DayOf("00000000"); ok {
		t.Fatalf("DayOf(00000000) = %d, true on an empty memo", d)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	dates := []string{"00000000", "19700101", "20261204", "20240229", "20230229", "20261399", "20261200", "99991231", "0000010a", "2026120/", "20261:04"}
	for range 2000 {
		dates = append(dates, fmt.Sprintf("%04d%02d%02d", rng.IntN(10000), rng.IntN(14), rng.IntN(33)))
	}
	for range 50000 {
		s := dates[rng.IntN(len(dates))]
		got, gok := DayOf(s)
		want, wok := dayOf(s)
		if got != want || gok != wok {
			t.Fatalf("DayOf(%s) = %d, %v; the arithmetic %d, %v", s, got, gok, want, wok)
		}
	}
}
