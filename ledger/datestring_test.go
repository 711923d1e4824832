package ledger

import (
	"fmt"
	"testing"
)

// TestBusinessDateString checks the hand formatting against %08d, with
// the zero padding and the values too wide for eight digits.
func TestBusinessDateString(t *testing.T) {
	for _, tt := range []struct {
		d    BusinessDate
		want string
	}{{20250301, "20250301"}, {0, "00000000"}, {1231, "00001231"}, {99999999, "99999999"},
		{100000000, "100000000"}, {4294967295, "4294967295"}} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("BusinessDate(%d).String() = %q, want %q", uint32(tt.d), got, tt.want)
		}
		if got := fmt.Sprintf("%08d", uint32(tt.d)); got != tt.want {
			t.Errorf("%%08d of %d = %q: the table is wrong", uint32(tt.d), got)
		}
	}
}
