package spec

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/moov-io/iso8583"
)

var goldenGateway = []struct {
	file   string
	fields map[int]string // string fields
	binary map[int][]byte
}{
	{"signon-0800.hex", map[int]string{0: "0800", 7: "0315143005", 11: "000001", 70: "001"}, nil},
	{"signon-0810.hex", map[int]string{0: "0810", 7: "0315143005", 11: "000001", 39: "00", 70: "001"}, nil},
	{"purchase-0200.hex", map[int]string{
		0: "0200", 2: "6230151000000000012", 3: "000000", 4: "000000001234", 7: "0315143006",
		11: "000124", 12: "143006", 13: "0315", 22: "021", 25: "00", 32: "12345678",
		35: "6230151000000000012=3012101", 37: "031500000124", 41: "10000001",
		42: "898310000000001", 49: "156", 53: "2600000000000000",
	}, map[int][]byte{52: mustHexG("1A2B3C4D5E6F7081"), 128: mustHexG("0123456789ABCDEF")}},
	{"purchase-0210.hex", map[int]string{
		0: "0210", 3: "000000", 4: "000000001234", 7: "0315143006", 11: "000124",
		37: "031500000124", 39: "00", 41: "10000001", 42: "898310000000001", 49: "156",
	}, map[int][]byte{128: mustHexG("FEDCBA9876543210")}},
}

func loadGoldenGateway(t testing.TB, file string) []byte {
	frame := readHexFile(t, filepath.Join("..", "testdata", "gateway", file))
	body, err := ReadFrame(bytes.NewReader(frame), nil, DefaultMaxFrame)
	if err != nil || len(body)+2 != len(frame) {
		t.Fatalf("%s: ReadFrame: %d of %d bytes, %v", file, len(body), len(frame)-2, err)
	}
	return body
}

func TestGoldenGateway(t *testing.T) {
	for _, g := range goldenGateway {
		t.Run(g.file, func(t *testing.T) {
			body := loadGoldenGateway(t, g.file)
			m, err := DecodeGateway(body)
			if err != nil {
				t.Fatalf("DecodeGateway: %v", err)
			}
			set := m.GetFields()
			if len(set)-1 != len(g.fields)+len(g.binary) { // -1: the bitmap
				t.Fatalf("%d fields set, want %d", len(set)-1, len(g.fields)+len(g.binary))
			}
			for id, want := range g.fields {
				if got, _ := m.GetString(id); got != want {
					t.Errorf("field %d = %q, want %q", id, got, want)
				}
			}
			for id, want := range g.binary {
				if got, _ := m.GetBytes(id); !bytes.Equal(got, want) {
					t.Errorf("field %d = %X, want %X", id, got, want)
				}
			}
			// Re-encode from scratch: a new message with the same values.
			n := iso8583.NewMessage(Gateway)
			for id, v := range g.fields {
				if id == 0 {
					n.MTI(v)
				} else if err := n.Field(id, v); err != nil {
					t.Fatal(err)
				}
			}
			for id, v := range g.binary {
				if err := n.BinaryField(id, v); err != nil {
					t.Fatal(err)
				}
			}
			frame, err := AppendGatewayFrame(nil, n)
			if err != nil {
				t.Fatal(err)
			}
			if want := readHexFile(t, filepath.Join("..", "testdata", "gateway", g.file)); !bytes.Equal(frame, want) {
				t.Fatalf("encoded\n%X\nwant\n%X", frame, want)
			}
			if g.binary[128] != nil {
				block, err := GatewayMACBlock(body)
				if err != nil || !bytes.Equal(block, body[:len(body)-8]) {
					t.Fatalf("GatewayMACBlock: %v", err)
				}
			} else if _, err := GatewayMACBlock(body); err == nil {
				t.Fatal("GatewayMACBlock found a MAC in a message without one")
			}
		})
	}
}

func TestDecodeGatewayRejects(t *testing.T) {
	p := loadGoldenGateway(t, "purchase-0200.hex")
	s := loadGoldenGateway(t, "signon-0800.hex")
	mut := func(src []byte, f func(b []byte) []byte) []byte { return f(append([]byte(nil), src...)) }
	tests := []struct {
		name string
		msg  []byte
	}{
		{"short", p[:10]},
		{"MTI not digits", mut(s, func(b []byte) []byte { b[1] = 'X'; return b })},
		{"trailing byte", append(append([]byte(nil), s...), '0')},
		{"truncated", p[:len(p)-1]},
		{"tertiary bitmap", mut(s, func(b []byte) []byte { b[12] |= 0x80; return b })},
		{"undefined field 5", mut(s, func(b []byte) []byte { b[4] |= 0x08; return b })},
		{"STAN not numeric", mut(s, func(b []byte) []byte { b[4+16+10] = 'A'; return b })},
		{"track 2 bad char", mut(p, func(b []byte) []byte {
			i := bytes.Index(b, []byte("=3012101"))
			b[i] = 'D'
			return b
		})},
		{"no secondary bitmap bytes", s[:4+8]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeGateway(tc.msg); !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
		})
	}
}

func FuzzDecodeGateway(f *testing.F) {
	for _, g := range goldenGateway {
		f.Add(loadGoldenGateway(f, g.file))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := DecodeGateway(msg)
		if err != nil {
			return
		}
		re, err := EncodeGateway(m)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := DecodeGateway(re)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\n%X", err, re)
		}
		re2, err := EncodeGateway(m2)
		if err != nil || !bytes.Equal(re, re2) {
			t.Fatalf("encode not stable: %X vs %X (%v)", re, re2, err)
		}
	})
}
