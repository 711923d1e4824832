package ident

import (
	"strings"
	"testing"
)

func TestID(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" = accepted
	}{
		{"10000001", ""},
		{"T0000001", ""},
		{"1000000", "must be 8 characters, got 7"},
		{"100000011", "must be 8 characters, got 9"},
		{"1000/001", `letters and digits: '/' at position 5`},
		{"1000\\001", `'\\' at position 5`},
		{"1000000\n", "U+000A at position 8"},
		{"100 0001", "' ' at position 4"},
		{"10000..1", "'.' at position 6"},
		{"1000000\x00", "U+0000 at position 8"},
	} {
		err := ID("terminal id", tt.in, 8, 8)
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ID(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
	if err := ID("merchant id", "", 1, 15); err == nil || !strings.Contains(err.Error(), "1..15") {
		t.Errorf("empty id: %v", err)
	}
}

func TestName(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{
		{"Canteen No.1", ""},
		{"第一食堂", ""},
		{"O'Brien-Smith, Jr.", ""},
		{"", ""},
		{"Evil\nINFO fake log line", "control character (U+000A) at byte 5"},
		{"tab\there", "U+0009"},
		{"esc\x1b[31m", "U+001B"},
		{"del\x7f", "U+007F"},
		{"bidi\u202eevil", "U+202E"},
		{"../../etc/passwd", `path separator ('/') at byte 3`},
		{`a\b`, `path separator ('\\')`},
		{"bad\xffutf8", "not valid UTF-8 at byte 4"},
		{strings.Repeat("x", 65), "65 bytes, at most 64"},
		{strings.Repeat("食", 22), "66 bytes, at most 64"},
	} {
		err := Name("name", tt.in, 64)
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Name(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
}
