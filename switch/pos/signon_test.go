package pos

import (
	"testing"
	"time"
)

// TestFullStampYearWrap: the year of a sign-on stamp is the one nearest
// the switch's date, so a sign-on on 1 January is later than one on 31
// December.
func TestFullStampYearWrap(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		stamp, now, want string
	}{
		{"1231235900000001", "2026-12-31 23:59:30", "20261231235900000001"},
		{"0101000001000002", "2026-12-31 23:59:30", "20270101000001000002"},
		{"1231235959000001", "2027-01-01 00:00:30", "20261231235959000001"},
		{"0101000010000002", "2027-01-01 00:00:30", "20270101000010000002"},
		{"0701120000000001", "2026-12-04 12:00:00", "20260701120000000001"},
		{"0601120000000001", "2026-12-04 12:00:00", "20270601120000000001"}, // nearer next June
		{"0229120000000001", "2028-03-01 12:00:00", "20280229120000000001"},
		{"0229120000000001", "2026-03-01 12:00:00", ""}, // no 29 February near
		{"1301120000000001", "2026-12-04 12:00:00", ""},
		{"1204250000000001", "2026-12-04 12:00:00", ""},
		{"120412000000001", "2026-12-04 12:00:00", ""},
	} {
		got, ok := fullStamp(tc.stamp, at(tc.now))
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s at %s: %q %v, want %q", tc.stamp, tc.now, got, ok, tc.want)
		}
	}
	late, _ := fullStamp("0101000001000002", at("2026-12-31 23:59:30"))
	early, _ := fullStamp("1231235900000001", at("2026-12-31 23:59:30"))
	if late <= early {
		t.Fatal("1 January is not later than 31 December")
	}
}
