package spec

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"
)

// packWithLibrary packs fields as the library's Message does.
func packWithLibrary(mti string, fields []GatewayField) ([]byte, error) {
	m := iso8583.NewMessage(Gateway)
	m.MTI(mti)
	for _, f := range fields {
		var err error
		if _, bin := Gateway.Fields[f.ID].(*field.Binary); bin {
			err = m.BinaryField(f.ID, f.Bytes)
		} else {
			err = m.Field(f.ID, f.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	return m.Pack()
}

// TestAppendGatewayMessage: the links' packer gives the bytes the
// library's Pack gives for the same fields — requests as the links send
// them, with and without the secondary bitmap, binary and LL/LLL fields —
// and refuses what Pack refuses.
func TestAppendGatewayMessage(t *testing.T) {
	pin := []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}
	mac := make([]byte, 8)
	consume := []GatewayField{{ID: 2, Value: "6222020000000000018"}, {ID: 3, Value: "000000"}, {ID: 4, Value: "000000001200"},
		{ID: 7, Value: "1205004546"}, {ID: 11, Value: "000003"}, {ID: 12, Value: "004546"}, {ID: 13, Value: "1205"},
		{ID: 32, Value: "48020000"}, {ID: 33, Value: "48020000"}, {ID: 37, Value: "339000000003"}, {ID: 41, Value: "10000001"},
		{ID: 42, Value: "898310000000001"}, {ID: 49, Value: "156"}, {ID: 52, Bytes: pin}, {ID: 53, Value: "2600000000000000"},
		{ID: 100, Value: "01020000"}, {ID: 128, Bytes: mac}}
	for _, tc := range []struct {
		name   string
		mti    string
		fields []GatewayField
		bad    bool
	}{
		{"consume, secondary bitmap", "0200", consume, false},
		{"primary bitmap only, MAC in 64", "0800", []GatewayField{{ID: 7, Value: "1205004546"}, {ID: 11, Value: "000001"}, {ID: 64, Bytes: mac}}, false},
		{"completion with 25, 38, 90", "0200", []GatewayField{{ID: 2, Value: "6222020000000000018"}, {ID: 3, Value: "000000"},
			{ID: 4, Value: "000000004000"}, {ID: 25, Value: "06"}, {ID: 38, Value: "000004"},
			{ID: 90, Value: "010000000412050045460004802000000048020000"}, {ID: 128, Bytes: mac}}, false},
		{"LLL string and binary", "0210", []GatewayField{{ID: 48, Value: "ON003abc名"}, {ID: 54, Value: strings.Repeat("1", 40)},
			{ID: 55, Bytes: []byte{0, 1, 2, 0xff}}}, false},
		{"empty LL", "0200", []GatewayField{{ID: 2, Value: ""}}, false},
		{"LL too long", "0200", []GatewayField{{ID: 2, Value: strings.Repeat("1", 20)}}, true},
		{"fixed too short", "0200", []GatewayField{{ID: 3, Value: "00000"}}, true},
		{"fixed too long", "0200", []GatewayField{{ID: 41, Value: "100000011"}}, true},
		{"binary wrong length", "0200", []GatewayField{{ID: 52, Bytes: pin[:7]}}, true},
		{"not ASCII", "0200", []GatewayField{{ID: 41, Value: "1000000é"}}, true},
		{"LLL too long", "0200", []GatewayField{{ID: 54, Value: strings.Repeat("1", 121)}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, werr := packWithLibrary(tc.mti, tc.fields)
			got, err := AppendGatewayMessage([]byte("xx"), tc.mti, tc.fields)
			if tc.bad {
				if werr == nil || err == nil || !errors.Is(err, ErrFormat) {
					t.Fatalf("library %v, ours %v: want both refused (ours wrapping ErrFormat)", werr, err)
				}
				return
			}
			if werr != nil || err != nil {
				t.Fatalf("library %v, ours %v", werr, err)
			}
			if !bytes.Equal(got[2:], want) || string(got[:2]) != "xx" {
				t.Fatalf("packed\n got %x\nwant %x", got[2:], want)
			}
			if _, err := DecodeGateway(got[2:]); err != nil && tc.mti != "0210" {
				t.Fatalf("does not decode: %v", err)
			}
		})
	}
	for _, bad := range [][]GatewayField{{{ID: 3, Value: "000000"}, {ID: 2, Value: "1"}}, {{ID: 1}}, {{ID: 129}}, {{ID: 5, Value: "1"}}} {
		if _, err := AppendGatewayMessage(nil, "0200", bad); !errors.Is(err, ErrFormat) {
			t.Errorf("fields %v: %v, want ErrFormat", bad, err)
		}
	}
	if _, err := AppendGatewayMessage(nil, "02x0", nil); !errors.Is(err, ErrFormat) {
		t.Errorf("bad MTI: %v", err)
	}
}

// TestAppendGatewayMessageRandom packs random sets of the dialect's
// fields, values of random lengths around their bounds, both ways.
func TestAppendGatewayMessageRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var ids []int
	for id := range Gateway.Fields {
		if id > 1 {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	packed, refused := 0, 0
	for i := 0; i < 2000; i++ {
		var fields []GatewayField
		for _, id := range ids {
			if rng.IntN(3) != 0 {
				continue
			}
			s := Gateway.Fields[id].Spec()
			n := s.Length
			if rng.IntN(40) == 0 {
				n = max(0, n+rng.IntN(3)-1) // around the bound: some refused
			} else if !strings.Contains(s.Pref.Inspect(), "Fixed") {
				n = rng.IntN(s.Length + 1)
			}
			n = min(n, 1200)
			b := make([]byte, n)
			for j := range b {
				b[j] = byte('0' + rng.IntN(10))
				if rng.IntN(20000) == 0 {
					b[j] = 0xc3 // not ASCII: refused by ASCII fields
				}
			}
			fields = append(fields, GatewayField{ID: id, Value: string(b), Bytes: b})
		}
		want, werr := packWithLibrary("0200", fields)
		got, err := AppendGatewayMessage(nil, "0200", fields)
		if (werr == nil) != (err == nil) || werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("fields %v:\nlibrary %x %v\nours    %x %v", fields, want, werr, got, err)
		}
		if err == nil {
			packed++
		} else {
			refused++
		}
	}
	if packed < 200 || refused < 200 {
		t.Fatalf("%d packed, %d refused: the test should try many of both", packed, refused)
	}
}

var allGatewayIDs = func() []int {
	var ids []int
	for id := 2; id <= 128; id++ {
		ids = append(ids, id)
	}
	return ids
}()

// sameKeptFields compares a message decoded with DecodeGatewayFields(ids)
// with the full decoding: the MTI, and each of ids set alike; no other
// field set.
func sameKeptFields(t testing.TB, full, thin *iso8583.Message, ids []int) {
	t.Helper()
	fm, _ := full.GetMTI()
	tm, _ := thin.GetMTI()
	if fm != tm {
		t.Fatalf("MTI %q, full %q", tm, fm)
	}
	want := map[int]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for id := range thin.GetFields() {
		if id > 1 && !want[id] {
			t.Fatalf("field %d set, not asked for", id)
		}
	}
	for _, id := range ids {
		_, inFull := full.GetFields()[id]
		_, inThin := thin.GetFields()[id]
		if inFull != inThin {
			t.Fatalf("field %d set %v, full %v", id, inThin, inFull)
		}
		if !inFull {
			continue
		}
		fb, _ := full.GetBytes(id)
		tb, _ := thin.GetBytes(id)
		if !bytes.Equal(fb, tb) {
			t.Fatalf("field %d = %x, full %x", id, tb, fb)
		}
	}
}

// TestDecodeGatewayFields: the golden messages decoded keeping every
// field, or a few, give the full decoding's values of those, and no
// other field.
func TestDecodeGatewayFields(t *testing.T) {
	for _, g := range goldenGateway {
		body := loadGoldenGateway(t, g.file)
		full, err := DecodeGateway(body)
		if err != nil {
			t.Fatal(err)
		}
		for _, ids := range [][]int{allGatewayIDs, {2, 11, 37, 38, 39, 41, 54}, {128, 52}, nil} {
			thin, err := DecodeGatewayFields(body, ids...)
			if err != nil {
				t.Fatalf("%s: %v", g.file, err)
			}
			sameKeptFields(t, full, thin, ids)
		}
		// What DecodeGateway refuses, so does it.
		if _, err := DecodeGatewayFields(append(body, '0'), 11); !errors.Is(err, ErrFormat) {
			t.Fatalf("%s with a byte after it: %v", g.file, err)
		}
		if _, err := DecodeGatewayFields(body[:len(body)-1], 11); !errors.Is(err, ErrFormat) {
			t.Fatalf("%s cut short: %v", g.file, err)
		}
	}
}

// FuzzDecodeGatewayFields: it accepts what DecodeGateway accepts, and
// keeps the fields asked for with the same values.
func FuzzDecodeGatewayFields(f *testing.F) {
	for _, g := range goldenGateway {
		f.Add(loadGoldenGateway(f, g.file))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		full, ferr := DecodeGateway(msg)
		thin, terr := DecodeGatewayFields(msg, allGatewayIDs...)
		if (ferr == nil) != (terr == nil) {
			t.Fatalf("DecodeGateway %v, DecodeGatewayFields %v", ferr, terr)
		}
		if ferr == nil {
			sameKeptFields(t, full, thin, allGatewayIDs)
		}
	})
}
