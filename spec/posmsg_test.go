package spec

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func goldenMsg(t testing.TB, file string) []byte {
	_, _, msg, _ := loadGoldenPOS(t, file)
	return append([]byte(nil), msg...)
}

func TestDecodePOSRejects(t *testing.T) {
	consume := goldenMsg(t, "consume-0200.hex")
	echo := goldenMsg(t, "echo-0820.hex")
	mutate := func(src []byte, f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), src...))
	}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"too short", consume[:9]},
		{"MTI not BCD", mutate(echo, func(b []byte) []byte { b[0] = 0x0A; return b })},
		{"secondary bitmap bit", mutate(echo, func(b []byte) []byte { b[2] |= 0x80; return b })},
		{"field outside dialect (5)", mutate(echo, func(b []byte) []byte { b[2] |= 0x08; return b })},
		{"trailing byte", append(append([]byte(nil), echo...), 0x00)},
		{"truncated", consume[:len(consume)-1]},
		// Field 2 length byte 0x19 -> 0x20: exceeds n..19.
		{"card number too long", mutate(consume, func(b []byte) []byte { b[10] = 0x20; return b })},
		{"card number length not BCD", mutate(consume, func(b []byte) []byte { b[10] = 0x1A; return b })},
		// Field 3 first byte 00 -> 0A.
		{"processing code not BCD", mutate(consume, func(b []byte) []byte { b[21] = 0x0A; return b })},
		// Field 41 (after echo MTI+bitmap) first byte -> 0x07 (BEL).
		{"terminal id not printable", mutate(echo, func(b []byte) []byte { b[10] = 0x07; return b })},
		// Field 60 length 11 -> 05: 5 digits is not a valid field 60.
		{"field 60 bad length", mutate(echo, func(b []byte) []byte {
			b[len(b)-7] = 0x05
			return b[:len(b)-3]
		})},
		// Field 60 length 0.
		{"empty variable field", mutate(echo, func(b []byte) []byte {
			b[len(b)-7] = 0x00
			return b[:len(b)-6]
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodePOS(tc.msg)
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("DecodePOS = %+v, %v; want ErrFormat", m, err)
			}
		})
	}
}

// TestDecodePOSAllocations: a message decodes in two allocations (the
// message with its wire, and its Raw followed by one string of its text
// and digits), one longer than the stack buffer they are joined in in
// three; every
// field of the golden consume comes back equal all the same (TestGolden*).
func TestDecodePOSAllocations(t *testing.T) {
	consume := goldenMsg(t, "consume-0200.hex")
	m, err := DecodePOS(consume)
	if err != nil {
		t.Fatal(err)
	}
	m.Reserved62 = bytes.Repeat([]byte{0xA5}, 512)
	m.Reserved63 = string(bytes.Repeat([]byte{'A'}, 163))
	long, err := EncodePOS(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		msg  []byte
		want float64
	}{{"consume", consume, 2}, {"longer than the join buffer", long, 3}} {
		if tc.name != "consume" && len(tc.msg) <= posJoinBuf {
			t.Fatalf("%s: %d bytes", tc.name, len(tc.msg))
		}
		allocs := testing.AllocsPerRun(100, func() {
			m, err := DecodePOS(tc.msg)
			if err != nil || !bytes.Equal(m.Raw, tc.msg) || m.TerminalID == "" {
				t.Fatalf("%s: %v", tc.name, err)
			}
		})
		if allocs != tc.want {
			t.Errorf("%s: DecodePOS allocates %.1f times, want %.0f", tc.name, allocs, tc.want)
		}
	}
}

func TestEncodePOSRejects(t *testing.T) {
	base := func() *POSMessage {
		return &POSMessage{MTI: "0200", ProcessingCode: "000000", STAN: "000001", TerminalID: "10000001"}
	}
	tests := []struct {
		name string
		mod  func(m *POSMessage)
	}{
		{"bad MTI", func(m *POSMessage) { m.MTI = "02A0" }},
		{"short STAN", func(m *POSMessage) { m.STAN = "1" }},
		{"negative amount", func(m *POSMessage) { m.Amount, m.HasAmount = -1, true }},
		{"amount over n12", func(m *POSMessage) { m.Amount, m.HasAmount = MaxAmount+1, true }},
		{"PAN too long", func(m *POSMessage) { m.PAN = "12345678901234567890" }},
		{"PAN not digits", func(m *POSMessage) { m.PAN = "62301510000000000X" }},
		{"track2 bad char", func(m *POSMessage) { m.Track2 = "6230=30A1" }},
		{"terminal id not printable", func(m *POSMessage) { m.TerminalID = "1000000\n" }},
		{"PIN block 7 bytes", func(m *POSMessage) { m.PINBlock = make([]byte, 7) }},
		{"field 60 partial", func(m *POSMessage) { m.Reserved60 = Field60{Type: "22", Batch: "0001"} }},
		{"field 60 rest without code", func(m *POSMessage) { m.Reserved60 = Field60{Type: "22", Batch: "000001", Rest: "000"} }},
		{"field 61 without batch", func(m *POSMessage) { m.Original = Field61{STAN: "000001"} }},
		{"field 63 too long", func(m *POSMessage) { m.Reserved63 = string(bytes.Repeat([]byte{'a'}, 164)) }},
	}
	if _, err := EncodePOS(base()); err != nil {
		t.Fatalf("base message: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.mod(m)
			if b, err := EncodePOS(m); err == nil {
				t.Fatalf("EncodePOS accepted %+v: %X", m, b)
			}
		})
	}
}

func TestMACBlockAndPatch(t *testing.T) {
	echo := goldenMsg(t, "echo-0820.hex")
	if _, err := MACBlock(echo); !errors.Is(err, ErrFormat) {
		t.Fatalf("MACBlock without bit 64: %v", err)
	}
	consume := goldenMsg(t, "consume-0200.hex")
	if err := PatchMAC(consume, []byte("ZZZZZZZZ")); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(consume, []byte("ZZZZZZZZ")) {
		t.Fatalf("PatchMAC did not patch: %X", consume)
	}
	if err := PatchMAC(consume, []byte("short")); err == nil {
		t.Fatal("PatchMAC accepted 5 bytes")
	}
	m := &POSMessage{MTI: "0200", ProcessingCode: "000000", TerminalID: "10000001"}
	if _, err := EncodePOSWithMAC(m, func([]byte) ([]byte, error) { return nil, errors.New("hsm down") }); err == nil {
		t.Fatal("EncodePOSWithMAC ignored the MAC error")
	}
}

func TestMaskedPAN(t *testing.T) {
	m := &POSMessage{Track2: "6230151000000000020=3012101"}
	if m.CardNumber() != "6230151000000000020" || m.MaskedPAN() != "623015*********0020" {
		t.Fatalf("card from track 2: %q %q", m.CardNumber(), m.MaskedPAN())
	}
}

func FuzzDecodePOS(f *testing.F) {
	for _, g := range goldenPOS {
		f.Add(goldenMsg(f, g.file))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := DecodePOS(msg)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		re, err := EncodePOS(m)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := DecodePOS(re)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		re2, err := EncodePOS(m2)
		if err != nil || !bytes.Equal(re, re2) {
			t.Fatalf("encode not stable: %X vs %X (%v)", re, re2, err)
		}
		m.TxType()
	})
}

// TestDecodePOSRawIsItsOwn: Raw shares an allocation with the string the
// text and digit fields are cut from, but writing into Raw or appending
// to it changes none of them.
func TestDecodePOSRawIsItsOwn(t *testing.T) {
	m, err := DecodePOS(goldenMsg(t, "consume-0200.hex"))
	if err != nil {
		t.Fatal(err)
	}
	want := *withoutWire(m)
	want.Raw, want.PINBlock, want.MAC = nil, nil, nil // binary fields are Raw's own slices
	fields := fmt.Sprintf("%+v", want)
	grown := append(m.Raw, bytes.Repeat([]byte{0xEE}, len(m.Raw))...)
	for i := range m.Raw {
		m.Raw[i] = 0xFF
	}
	got := *withoutWire(m)
	got.Raw, got.PINBlock, got.MAC = nil, nil, nil
	if s := fmt.Sprintf("%+v", got); s != fields || len(grown) != 2*len(m.Raw) {
		t.Fatalf("after writing Raw: %s\nwant %s", s, fields)
	}
}
