package spec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestTPDUReply(t *testing.T) {
	// Hand-checked: 60 0006 0001 -> 60 0001 0006.
	in := TPDU{0x60, 0x00, 0x06, 0x00, 0x01}
	got := in.Reply()
	want := TPDU{0x60, 0x00, 0x01, 0x00, 0x06}
	if got != want {
		t.Fatalf("Reply() = %X, want %X", got, want)
	}
	if got.Reply() != in {
		t.Fatalf("Reply().Reply() = %X, want %X", got.Reply(), in)
	}
	if in.Destination() != [2]byte{0x00, 0x06} || in.Source() != [2]byte{0x00, 0x01} {
		t.Fatalf("Destination/Source = %X/%X", in.Destination(), in.Source())
	}
}

func TestHeaderProcessingRequirement(t *testing.T) {
	tests := []struct {
		name   string
		in     Header
		p      byte
		want   Header
		status byte
	}{
		{"set 3 keeps status", Header{0x60, 0x31, 0x10, 0x31, 0x03, 0x01}, 3, Header{0x60, 0x31, 0x13, 0x31, 0x03, 0x01}, 1},
		{"clear to 0", Header{0x60, 0x22, 0x03, 0, 0, 0}, 0, Header{0x60, 0x22, 0x00, 0, 0, 0}, 0},
		{"only low nibble of p used", Header{0x60, 0, 0xA5, 0, 0, 0}, 0xF3, Header{0x60, 0, 0xA3, 0, 0, 0}, 0xA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.WithProcessingRequirement(tc.p)
			if got != tc.want {
				t.Fatalf("WithProcessingRequirement(%d) = %X, want %X", tc.p, got, tc.want)
			}
			if got.ProcessingRequirement() != tc.p&0x0F {
				t.Fatalf("ProcessingRequirement() = %d, want %d", got.ProcessingRequirement(), tc.p&0x0F)
			}
			if got.TerminalStatus() != tc.status {
				t.Fatalf("TerminalStatus() = %X, want %X", got.TerminalStatus(), tc.status)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		stream  string // hex
		max     int
		want    string // hex body
		wantErr error
	}{
		{"exact", "0003 AABBCC", 2048, "AABBCC", nil},
		{"trailing bytes stay in reader", "0002 AABB CC", 2048, "AABB", nil},
		{"empty body", "0000", 2048, "", nil},
		{"at max", "0004 01020304", 4, "01020304", nil},
		{"over max", "0005 0102030405", 4, "", ErrFrameTooLarge},
		{"short body", "0005 0102", 2048, "", io.ErrUnexpectedEOF},
		{"short prefix", "00", 2048, "", io.ErrUnexpectedEOF},
		{"clean EOF", "", 2048, "", io.EOF},
		{"max 0 means 65535", "0002 0102", 0, "0102", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(mustHex(t, tc.stream))
			body, err := ReadFrame(r, nil, tc.max)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !bytes.Equal(body, mustHex(t, tc.want)) {
				t.Fatalf("body = %X, want %s", body, tc.want)
			}
		})
	}
}

// A too-large frame must be refused before its body is read: the reader
// should still hold every body byte.
func TestReadFrameTooLargeDoesNotReadBody(t *testing.T) {
	r := bytes.NewReader(mustHex(t, "0800"+strings.Repeat("00", 0x800)))
	_, err := ReadFrame(r, nil, 16)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if r.Len() != 0x800 {
		t.Fatalf("reader has %d bytes left, want %d", r.Len(), 0x800)
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	r := bytes.NewReader(mustHex(t, "0002 0102 0003 030405"))
	b1, err := ReadFrame(r, buf, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if &b1[0] != &buf[:1][0] {
		t.Fatalf("first body does not reuse buf")
	}
	b2, err := ReadFrame(r, b1, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b2, []byte{3, 4, 5}) || &b2[0] != &buf[:1][0] {
		t.Fatalf("second body = %X, reuse=%v", b2, &b2[0] == &buf[:1][0])
	}
}

func TestSplitPOSAndAppend(t *testing.T) {
	// Hand-built: TPDU 6000060001, header 603110310301, MTI 0820, bitmap
	// 0020000000C00012 (fields 11, 41, 42, 60, 63... contents irrelevant here).
	body := mustHex(t, "6000060001 603110310301 0820 0020000000C00012 FFEE")
	tp, h, msg, err := SplitPOS(body)
	if err != nil {
		t.Fatal(err)
	}
	if tp != (TPDU{0x60, 0, 6, 0, 1}) || h != (Header{0x60, 0x31, 0x10, 0x31, 0x03, 0x01}) {
		t.Fatalf("tpdu %X header %X", tp, h)
	}
	if !bytes.Equal(msg, mustHex(t, "0820 0020000000C00012 FFEE")) {
		t.Fatalf("msg = %X", msg)
	}
	frame := AppendPOSFrame([]byte{0xAA}, tp, h, msg)
	want := append([]byte{0xAA, 0x00, byte(len(body))}, body...)
	if !bytes.Equal(frame, want) {
		t.Fatalf("AppendPOSFrame = %X, want %X", frame, want)
	}
	if POSFrameLen(len(msg)) != len(frame)-1 {
		t.Fatalf("POSFrameLen = %d, want %d", POSFrameLen(len(msg)), len(frame)-1)
	}
	// The head written in place before a message gives the same frame.
	inPlace := append(make([]byte, POSFrameHeadLen), msg...)
	PutPOSFrameHead(inPlace, tp, h)
	if !bytes.Equal(inPlace, frame[1:]) {
		t.Fatalf("PutPOSFrameHead = %X, want %X", inPlace, frame[1:])
	}
	// The frame reads back to the same body.
	got, err := ReadFrame(bytes.NewReader(frame[1:]), nil, DefaultMaxFrame)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("ReadFrame(AppendPOSFrame) = %X, %v", got, err)
	}
}

func TestSplitPOSTooShort(t *testing.T) {
	for n := 0; n < MinPOSBody; n++ {
		if _, _, _, err := SplitPOS(make([]byte, n)); !errors.Is(err, ErrFrameTooShort) {
			t.Fatalf("len %d: err = %v, want ErrFrameTooShort", n, err)
		}
	}
	if _, _, msg, err := SplitPOS(make([]byte, MinPOSBody)); err != nil || len(msg) != 10 {
		t.Fatalf("len %d: msg %d bytes, err %v", MinPOSBody, len(msg), err)
	}
}

func TestAppendFrame(t *testing.T) {
	got, err := AppendFrame(nil, []byte("0800"))
	if err != nil || !bytes.Equal(got, mustHex(t, "0004 30383030")) {
		t.Fatalf("AppendFrame = %X, %v", got, err)
	}
	if _, err := AppendFrame(nil, make([]byte, MaxFrameLimit+1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("err = %v, want ErrMessageTooLarge", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3}, 2048)
	f.Add([]byte{0xFF, 0xFF}, 16)
	f.Add([]byte{0}, 0)
	f.Fuzz(func(t *testing.T, stream []byte, max int) {
		if max < 0 {
			max = -max
		}
		max %= 4096
		body, err := ReadFrame(bytes.NewReader(stream), nil, max)
		if err != nil {
			return
		}
		limit := max
		if limit == 0 {
			limit = MaxFrameLimit
		}
		if len(body) > limit || len(body)+2 > len(stream) {
			t.Fatalf("body of %d bytes from stream of %d with max %d", len(body), len(stream), max)
		}
		if !bytes.Equal(body, stream[2:2+len(body)]) {
			t.Fatalf("body differs from stream")
		}
	})
}

func FuzzSplitPOS(f *testing.F) {
	f.Add(make([]byte, MinPOSBody))
	f.Add([]byte{0x60, 0, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		tp, h, msg, err := SplitPOS(body)
		if err != nil {
			if len(body) >= MinPOSBody {
				t.Fatalf("error on %d bytes: %v", len(body), err)
			}
			return
		}
		re := AppendPOSFrame(nil, tp, h, msg)
		if !bytes.Equal(re[2:], body) {
			t.Fatalf("re-framed body differs")
		}
	})
}
