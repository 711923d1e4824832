package ledger

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Fen is an amount of money in fen (1 yuan = 100 fen). It is signed because
// postings are signed; purses themselves never go below zero.
type Fen int64

// MaxAmount bounds every amount accepted from outside (requests, YAML):
// 10^12 fen is the largest value POS field 4 (n12) can carry, and keeping
// amounts below it leaves sums of many amounts far from int64 overflow.
const MaxAmount Fen = 999_999_999_999

// ErrBadAmount is returned by ParseYuan for text that is not a non-negative
// decimal yuan amount with at most two decimals within MaxAmount.
var ErrBadAmount = errors.New("ledger: bad amount")

// maxAmountText bounds the text ParseYuan looks at, so hostile input cannot
// make it scan megabytes.
const maxAmountText = 24

// ParseYuan parses a decimal yuan amount such as "500.00", "500", "0.5" or
// "12.34" exactly into fen, with no floating point. At most two decimals are
// accepted (a third would be a fraction of a fen); signs, exponents, spaces
// and thousands separators are rejected.
func ParseYuan(s string) (Fen, error) {
	if len(s) == 0 || len(s) > maxAmountText {
		return 0, fmt.Errorf("%w: %q", ErrBadAmount, truncate(s))
	}
	var yuan, fen int64
	i := 0
	digits := 0
	for ; i < len(s) && s[i] != '.'; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q", ErrBadAmount, truncate(s))
		}
		yuan = yuan*10 + int64(c-'0')
		digits++
		if yuan > int64(MaxAmount/100) {
			return 0, fmt.Errorf("%w: %q exceeds the maximum", ErrBadAmount, truncate(s))
		}
	}
	if digits == 0 {
		return 0, fmt.Errorf("%w: %q has no yuan digits", ErrBadAmount, truncate(s))
	}
	if i < len(s) { // s[i] == '.'
		dec := s[i+1:]
		if len(dec) == 0 || len(dec) > 2 {
			return 0, fmt.Errorf("%w: %q needs one or two decimals", ErrBadAmount, truncate(s))
		}
		for j := 0; j < 2; j++ {
			fen *= 10
			if j < len(dec) {
				c := dec[j]
				if c < '0' || c > '9' {
					return 0, fmt.Errorf("%w: %q", ErrBadAmount, truncate(s))
				}
				fen += int64(c - '0')
			}
		}
	}
	v := Fen(yuan*100 + fen)
	if v > MaxAmount {
		return 0, fmt.Errorf("%w: %q exceeds the maximum", ErrBadAmount, truncate(s))
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) > maxAmountText {
		return s[:maxAmountText] + "..."
	}
	return s
}

// String formats the amount as yuan with two decimals ("500.00", "-0.05").
func (f Fen) String() string {
	neg := f < 0
	u := uint64(f)
	if neg {
		u = uint64(-f)
	}
	s := strconv.FormatUint(u/100, 10) + "." + string([]byte{byte('0' + u%100/10), byte('0' + u%10)})
	if neg {
		return "-" + s
	}
	return s
}

// UnmarshalText lets YAML and JSON configuration carry amounts as decimal
// yuan ("500.00"); see ParseYuan.
func (f *Fen) UnmarshalText(b []byte) error {
	v, err := ParseYuan(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// MarshalText writes the amount as decimal yuan, the inverse of UnmarshalText.
func (f Fen) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// BusinessDate is a switch business day as the number YYYYMMDD. The switch
// owns the calendar (cutover); the ledger uses it for daily limits, the
// same-day rule of voids, the refund window and pre-auth expiry.
type BusinessDate uint32

// ErrBadDate is returned for a BusinessDate that is not a real calendar day.
var ErrBadDate = errors.New("ledger: bad business date")

// DateOf returns the business date of t's calendar day (in t's location).
func DateOf(t time.Time) BusinessDate {
	y, m, d := t.Date()
	return BusinessDate(y*10000 + int(m)*100 + d)
}

// Valid reports whether d is a real calendar day between 2000 and 9999.
//
// It is computed by arithmetic, without the time package: every
// operation validates its date and encodes dates as day numbers
// (codec.go), and time.Date cost more than the rest of the check.
func (d BusinessDate) Valid() bool {
	y, m, day := uint32(d/10000), uint32(d/100%100), uint32(d%100)
	if y < 2000 || y > 9999 || m < 1 || m > 12 || day < 1 {
		return false
	}
	return day <= daysInMonth(y, m)
}

// daysInMonth is the length of month m (1..12) of year y (Gregorian).
func daysInMonth(y, m uint32) uint32 {
	if m == 2 {
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 30 + (m+m>>3)&1 // 31 in January, March, May, July, August, October, December
}

// days returns the number of days from 1970-01-01 to the valid date d
// (the proleptic Gregorian calendar's day count, as time.Time's Unix()/86400
// for d's midnight UTC).
func (d BusinessDate) days() int64 {
	y, m, day := int64(d/10000), int64(d/100%100), int64(d%100)
	if m <= 2 {
		y--
	}
	era := y / 400 // y ≥ 1999 for a valid date: no negative division
	yoe := y - era*400
	mp := (m + 9) % 12 // March = 0 ... February = 11
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func (d BusinessDate) time() time.Time {
	return time.Date(int(d/10000), time.Month(d/100%100), int(d%100), 0, 0, 0, 0, time.UTC)
}

// AddDays returns the date n days after d (n may be negative).
func (d BusinessDate) AddDays(n int) BusinessDate { return DateOf(d.time().AddDate(0, 0, n)) }

// DaysSince returns the number of days from earlier to d.
func (d BusinessDate) DaysSince(earlier BusinessDate) int {
	return int(d.time().Sub(earlier.time()).Hours() / 24)
}

// String formats the date as YYYYMMDD.
func (d BusinessDate) String() string {
	// Formatted by hand: every POS message formats its business date.
	if d > 99999999 {
		return fmt.Sprintf("%08d", uint32(d))
	}
	// Nearly every call formats today: the last date formatted is kept,
	// and formatting it again costs no allocation.
	if last := lastDateString.Load(); last != nil && last.d == d {
		return last.s
	}
	var b [8]byte
	for i, v := 7, uint32(d); i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	s := string(b[:])
	lastDateString.Store(&formattedDate{d, s})
	return s
}

// formattedDate is a business date and its String.
type formattedDate struct {
	d BusinessDate
	s string
}

var lastDateString atomic.Pointer[formattedDate]

// ServiceFee returns the surcharge for amount at rateBP basis points
// (1 bp = 0.01%), rounded half up to the nearest fen: fee = floor((amount *
// rateBP + 5000) / 10000). At the demo 5% (500 bp) a 10.00 consume pays 0.50
// and a 0.10 consume pays 0.01 (0.005 rounds up). Amounts are bounded by
// MaxAmount and rates by maxFeeBP, so the product cannot overflow.
func ServiceFee(amount Fen, rateBP int32) Fen {
	if amount <= 0 || rateBP <= 0 {
		return 0
	}
	return Fen((int64(amount)*int64(rateBP) + 5000) / 10000)
}

// maxFeeBP bounds a fee rate at 100%.
const maxFeeBP = 10000
