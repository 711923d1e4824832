package cardno

import "testing"

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"6230151000000000012", "623015*********0012"},
		{"62301510000", "623015*0000"},
		{"1234567890", "**********"},
		{"123", "***"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
