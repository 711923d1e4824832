package record

// The calendar of business dates, shared by the pair encoding (a date
// stored as a difference in days) and the journal's sequences (a day
// number in every key).

import "sync/atomic"

// DayOf returns the day number (days since 1970-01-01) of a YYYYMMDD
// date of eight digits, false if it is not a calendar date.
//
// Nearly every call converts the business day: the last calendar date
// converted is kept (dayMemo) and answers again without the arithmetic.
func DayOf(date string) (int64, bool) {
	if len(date) != DateLen {
		return dayOf(date)
	}
	w := dateWord(date)
	if !digitsWord(w) {
		return dayOf(date)
	}
	key := pack8(w) // distinct digit strings, distinct keys
	if m := dayMemo.Load(); m != 0 && uint32(m>>32) == key {
		return int64(int32(uint32(m))), true
	}
	d, ok := dayOf(date)
	if ok {
		dayMemo.Store(uint64(key)<<32 | uint64(uint32(int32(d))))
	}
	return d, ok
}

// dayMemo is the last calendar date DayOf converted: its key (its digits
// packed two a byte) in the high 32 bits, its day number in the low; 0
// before the first (no calendar date has key 0: its month would be 00).
// A day number of a date of 4-digit year fits 32 bits.
var dayMemo atomic.Uint64

// dayOf is DayOf without the memo.
func dayOf(date string) (int64, bool) {
	num := func(s string) int64 {
		var v int64
		for i := 0; i < len(s); i++ {
			v = v*10 + int64(s[i]-'0')
		}
		return v
	}
	y, m, d := num(date[:4]), num(date[4:6]), num(date[6:8])
	if m < 1 || m > 12 || d < 1 || d > DaysIn(y, m) {
		return 0, false
	}
	return DaysFromCivil(y, m, d), true
}

// DaysIn is the number of days of month m of year y.
func DaysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// DaysFromCivil and CivilFromDays convert between proleptic Gregorian
// dates and days since 1970-01-01 (the era arithmetic of Howard Hinnant's
// "chrono-Compatible Low-Level Date Algorithms").
func DaysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func CivilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}
