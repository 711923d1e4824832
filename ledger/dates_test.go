package ledger

import (
	"math/rand/v2"
	"testing"
	"time"
)

// validByTime is BusinessDate.Valid as it was written with the time
// package, kept as the reference for the arithmetic one.
func validByTime(d BusinessDate) bool {
	y, m, day := int(d/10000), time.Month(d/100%100), int(d%100)
	if y < 2000 || y > 9999 {
		return false
	}
	t := time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
	return t.Year() == y && t.Month() == m && t.Day() == day
}

// TestBusinessDateValidArithmetic compares Valid with the time package's
// answer on every month and day number 0..32 of the years around each
// century rule and the range's ends, and on random values.
func TestBusinessDateValidArithmetic(t *testing.T) {
	check := func(d BusinessDate) {
		if got, want := d.Valid(), validByTime(d); got != want {
			t.Fatalf("BusinessDate(%d).Valid() = %v, want %v", uint32(d), got, want)
		}
	}
	for _, years := range [][2]uint32{{0, 3}, {1995, 2110}, {2396, 2404}, {9990, 10010}, {42949, 42949}} {
		for y := years[0]; y <= years[1]; y++ {
			for m := uint32(0); m <= 99; m++ {
				for day := uint32(0); day <= 99; day++ {
					check(BusinessDate(y*10000 + m*100 + day))
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		check(BusinessDate(r.Uint32()))
		check(BusinessDate(20000101 + r.Uint32N(80000000)))
	}
}

// TestBusinessDateDays checks the day count of every valid date against
// the time package: days() is Unix()/86400 of the date's midnight UTC, and
// the day encoding (codec.go) decodes back to the date.
func TestBusinessDateDays(t *testing.T) {
	first := BusinessDate(20000101).time().Unix() / 86400
	last := BusinessDate(99991231).time().Unix() / 86400
	step := int64(1)
	if testing.Short() {
		step = 7
	}
	n := 0
	for u := first; u <= last; u += step {
		d := DateOf(time.Unix(u*86400, 0).UTC())
		if !d.Valid() {
			t.Fatalf("%d (day %d) not valid", uint32(d), u)
		}
		if got := d.days(); got != u {
			t.Fatalf("BusinessDate(%d).days() = %d, want %d", uint32(d), got, u)
		}
		n++
	}
	if want := (last-first)/step + 1; int64(n) != want || (step == 1 && n != 20*146097) { // 8000 years: 20 Gregorian cycles
		t.Fatalf("walked %d dates, want %d", n, want)
	}
	for _, d := range []BusinessDate{20000101, 20000229, 20250301, 20440101, 99991231} {
		e := encoder{}
		e.day(d)
		want := 1 + (d.time().Unix()-day2000.Unix())/86400
		dec := decoder{b: e.b}
		if got := dec.u(); int64(got) != want {
			t.Errorf("day(%d) = %d, want %d", uint32(d), got, want)
		}
		dec = decoder{b: e.b}
		if got := dec.day(); got != d || dec.err != nil {
			t.Errorf("day(%d) decodes to %d, %v", uint32(d), uint32(got), dec.err)
		}
	}
}

// TestDayEncodingRemembersLastDate checks the day encoding across changes
// of the date it remembers: each date, valid or not, encodes as computed
// afresh whatever was encoded before it.
func TestDayEncodingRemembersLastDate(t *testing.T) {
	want := func(d BusinessDate) uint64 {
		switch {
		case d == 0:
			return 0
		case validByTime(d):
			return uint64(1 + (d.time().Unix()-day2000.Unix())/86400)
		}
		return dayRaw + uint64(d)
	}
	dates := []BusinessDate{20250301, 20250301, 20250302, 0, 20250302, 20250230, 20250302, 19991231, 20250301,
		99991231, 20000101, 20000101, 4294967295, 20000101}
	for i, d := range dates {
		e := encoder{}
		e.day(d)
		dec := decoder{b: e.b}
		if got := dec.u(); got != want(d) || dec.done() != nil {
			t.Fatalf("date %d (%d of the sequence): day %d, want %d", uint32(d), i, got, want(d))
		}
	}
}
