package logmask

import (
	"bytes"
	"errors"
	"regexp"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestBytes(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"6230151000000000012", "623015*********0012"},
		{"card 6230151000000000012\n", "card 623015*********0012\n"},
		{"/api/v1/cards/6230151000000000012 ", "/api/v1/cards/623015*********0012 "},
		{"x6230151000000000012-", "x623015*********0012-"},
		{"6230-1510-0000-0000-012", "6230-15**-****-***0-012"},
		{"6230 1510 0000 0000 012", "6230 15** **** ***0 012"},
		{"4111111111111", "411111***1111"},                                   // 13 digits
		{"411111111111", "411111111111"},                                     // 12: an RRN, kept
		{"000000000099 rrn", "000000000099 rrn"},                             // RRN
		{"62301510000000000123456", "623015*************3456"},               // longer runs too
		{"2026-12-04T13:46:43.123Z", "2026-12-04T13:46:43.123Z"},             // a time
		{"amount 12345 stan 000123", "amount 12345 stan 000123"},             // short runs
		{"-6230151000000000012--", "-623015*********0012--"},                 // dashes around
		{"6230151000000000012%0A", "623015*********0012%0A"},                 // percent-escaped newline
		{`"path":"6230151000000000012\n"`, `"path":"623015*********0012\n"`}, // JSON escape
		{"", ""},
	} {
		if got := string(Bytes([]byte(tt.in))); got != tt.want {
			t.Errorf("Bytes(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// runOf13 finds a digit run of 13 or more digits, also across single
// spaces or dashes: what must never reach a log.
var runOf13 = regexp.MustCompile(`\d(?:[ -]?\d){12,}`)

func TestEncoderMasksEveryPath(t *testing.T) {
	const pan = "6230151000000000012"
	for _, format := range []string{"json", "console"} {
		var out bytes.Buffer
		cfg := zap.NewProductionEncoderConfig()
		var enc zapcore.Encoder
		if format == "json" {
			enc = zapcore.NewJSONEncoder(cfg)
		} else {
			enc = zapcore.NewConsoleEncoder(cfg)
		}
		core := zapcore.NewCore(Encoder(enc), zapcore.AddSync(&out), zapcore.DebugLevel)
		log := zap.New(core).With(zap.String("with", pan+" "))
		log.Info("message "+pan+"\n", zap.String("path", "/api/v1/cards/"+pan+"\r\n"),
			zap.Error(errors.New("unknown card "+pan)), zap.Strings("list", []string{pan, "-" + pan + "-"}),
			zap.Any("any", map[string]string{"k": pan}), zap.Int64("num", 6230151000000000012),
			zap.ByteString("raw", []byte(pan)), zap.Stringer("s", stringer(pan)))
		log.Named(pan).Sugar().Infof("sugar %s %v", pan, []string{pan})
		log.With(zap.Namespace("ns"), zap.String("x", pan)).Warn("w")
		if out.Len() == 0 {
			t.Fatal("nothing logged")
		}
		if m := runOf13.FindString(out.String()); m != "" {
			t.Errorf("%s: %q reached the log:\n%s", format, m, out.String())
		}
		if !bytes.Contains(out.Bytes(), []byte("623015*********0012")) {
			t.Errorf("%s: no masked card in the log:\n%s", format, out.String())
		}
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

// FuzzBytes: whatever the input, the output has the same length, changes
// only digits (to '*'), and holds no run of 13 or more digits (also across
// single spaces or dashes); String agrees with Bytes.
func FuzzBytes(f *testing.F) {
	for _, s := range []string{"6230151000000000012", "6230-1510-0000-0000-012", "x 1234567890123 y", "12-", "--1", "1 2 3 4 5 6 7 8 9 0 1 2 3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := Bytes(append([]byte(nil), in...))
		if len(out) != len(in) {
			t.Fatalf("length %d -> %d", len(in), len(out))
		}
		for i := range in {
			if out[i] != in[i] && !(out[i] == '*' && isDigit(in[i])) {
				t.Fatalf("byte %d changed from %q to %q", i, in[i], out[i])
			}
		}
		if m := runOf13.Find(out); m != nil {
			t.Fatalf("%q left in %q", m, out)
		}
		if s := String(string(in)); s != string(out) {
			t.Fatalf("String %q, Bytes %q", s, out)
		}
	})
}
