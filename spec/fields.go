package spec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// ErrFormat marks a message that does not follow the dialect: bad lengths,
// bad digits, a secondary bitmap, trailing bytes, malformed sub-fields. The
// acceptor answers it with response code 30 (RCFormatError).
var ErrFormat = errors.New("spec: format error")

// Amount is a sum of money in fen (1/100 yuan). Money is never a float.
type Amount int64

// MaxAmount is the largest amount an n12 field can carry.
const MaxAmount Amount = 999_999_999_999

// ParseAmount parses an n12 amount field (exactly 12 digits).
func ParseAmount(n12 string) (Amount, error) {
	if len(n12) != 12 || !isDigits(n12) {
		return 0, fmt.Errorf("%w: amount %q is not 12 digits", ErrFormat, n12)
	}
	// 12 digits cannot overflow: the first eight and the last four, each
	// read as one word.
	hi := parse8Digits(uint64(n12[0]) | uint64(n12[1])<<8 | uint64(n12[2])<<16 | uint64(n12[3])<<24 |
		uint64(n12[4])<<32 | uint64(n12[5])<<40 | uint64(n12[6])<<48 | uint64(n12[7])<<56)
	lo := parse8Digits(uint64(n12[8])<<32 | uint64(n12[9])<<40 | uint64(n12[10])<<48 | uint64(n12[11])<<56)
	return Amount(int64(hi)*10000 + int64(lo)), nil
}

// parse8Digits returns the value of eight ASCII digits, the first in the
// low byte of x; a byte of x that is zero counts as the digit 0. The
// caller has checked that every other byte is a digit.
func parse8Digits(x uint64) uint64 {
	x &= 0x0F0F0F0F0F0F0F0F // '0'..'9' and 0 to 0..9
	x = (x*10 + x>>8) & 0x00FF00FF00FF00FF
	x = (x*100 + x>>16) & 0x0000FFFF0000FFFF
	return (x*10000 + x>>32) & 0xFFFFFFFF
}

// N12 formats the amount as the 12-digit field value. It fails for negative
// amounts and amounts above MaxAmount.
func (a Amount) N12() (string, error) {
	if a < 0 || a > MaxAmount {
		return "", fmt.Errorf("amount %d fen does not fit n12", int64(a))
	}
	var b [12]byte
	return string(a.appendN12(b[:0])), nil
}

// appendN12 appends the 12 digits of an amount N12 accepts: the first
// four and the last eight each formatted as one word
// (TestAppendN12SameAsDigitByDigit).
func (a Amount) appendN12(dst []byte) []byte {
	v := uint64(a)
	var b [12]byte
	binary.LittleEndian.PutUint32(b[0:4], uint32(format8Digits(v/100000000)>>32))
	binary.LittleEndian.PutUint64(b[4:12], format8Digits(v%100000000))
	return append(dst, b[:]...)
}

// format8Digits returns the eight ASCII digits of v (below 10⁸, leading
// zeros included), the first in the low byte: v split into two halves of
// four digits in 32-bit lanes, each into two of two digits in 16-bit
// lanes, each into its two digits in bytes, a lane's quotient taken by a
// multiply and shift exact for the values a lane holds (n/100 as
// n·5243 >> 19 for n < 43699, n/10 as n·103 >> 10 for n < 179); no lane
// reaches into the next. Below 10⁴, the last four bytes are v's four
// digits.
func format8Digits(v uint64) uint64 {
	x := v/10000 | v%10000<<32
	q := x * 5243 >> 19 & 0x0000007F0000007F
	x = q | (x-q*100)<<16
	q = x * 103 >> 10 & 0x000F000F000F000F
	x = q | (x-q*10)<<8
	return x + 0x3030303030303030
}

// String renders the amount in yuan with two decimals, e.g. "-12.05".
func (a Amount) String() string {
	v := int64(a)
	sign := ""
	if v < 0 {
		sign = "-"
		v = -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Field60 is POS field 60 (n..17): 60.1 transaction type code n2, 60.2 batch
// number n6, 60.3 network management code n3, then optional digits (60.4
// onwards, e.g. terminal capability) kept verbatim in Rest. A present field
// carries 60.1 alone, 60.1–60.2, or 60.1–60.3 and more; other lengths are
// format errors.
type Field60 struct {
	Type        string // 60.1, n2: "22" consume, "00" network management...
	Batch       string // 60.2, n6
	NetworkCode string // 60.3, n3: "003" sign-on, "301" echo test...
	Rest        string // 60.4 onwards, digits
}

// Present reports whether the field is set.
func (f Field60) Present() bool { return f.Type != "" }

// String returns the field value (the digits, without the length prefix).
func (f Field60) String() string { return f.Type + f.Batch + f.NetworkCode + f.Rest }

// field60HeadLen is how much of field 60 names a transaction type: 60.1
// and, for network management, 60.3 (spec.Identify).
const field60HeadLen = 11

// head is the first field60HeadLen bytes of String, without joining the
// whole field.
func (f Field60) head() (b [field60HeadLen]byte, n int) {
	for _, p := range [...]string{f.Type, f.Batch, f.NetworkCode, f.Rest} {
		n += copy(b[n:], p)
	}
	return b, n
}

// ParseField60 parses the digits of field 60.
func ParseField60(s string) (Field60, error) {
	if len(s) > posField60MaxLen || !isDigits(s) {
		return Field60{}, fmt.Errorf("%w: field 60 %q", ErrFormat, s)
	}
	switch {
	case len(s) == 2:
		return Field60{Type: s}, nil
	case len(s) == 8:
		return Field60{Type: s[:2], Batch: s[2:8]}, nil
	case len(s) >= 11:
		return Field60{Type: s[:2], Batch: s[2:8], NetworkCode: s[8:11], Rest: s[11:]}, nil
	}
	return Field60{}, fmt.Errorf("%w: field 60 has %d digits, want 2, 8 or 11..%d", ErrFormat, len(s), posField60MaxLen)
}

// validate checks a Field60 built by hand before it is sent.
func (f Field60) validate() error {
	if !f.Present() {
		if f.Batch != "" || f.NetworkCode != "" || f.Rest != "" {
			return fmt.Errorf("field 60 without 60.1 type")
		}
		return nil
	}
	// What ParseField60 accepts, checked without joining the pieces;
	// only what it would refuse is joined, for its error.
	n := len(f.Type) + len(f.Batch) + len(f.NetworkCode) + len(f.Rest)
	if n > posField60MaxLen || !(n == 2 || n == 8 || n >= 11) ||
		!isDigits(f.Type) || !isDigits(f.Batch) || !isDigits(f.NetworkCode) || !isDigits(f.Rest) {
		if _, err := ParseField60(f.String()); err != nil {
			return err
		}
	}
	if len(f.Type) != 2 || (f.Batch != "" && len(f.Batch) != 6) ||
		(f.NetworkCode != "" && (len(f.NetworkCode) != 3 || f.Batch == "")) ||
		(f.Rest != "" && f.NetworkCode == "") {
		return fmt.Errorf("%w: field 60 sub-field widths %d/%d/%d/%d", ErrFormat,
			len(f.Type), len(f.Batch), len(f.NetworkCode), len(f.Rest))
	}
	return nil
}

// Field61 is POS field 61 (n..29), the original transaction of a void,
// refund, cancel or completion: batch n6, STAN n6, optional date MMDD n4,
// then optional digits (e.g. original authorization data) in Rest.
type Field61 struct {
	Batch string // 61.1, n6
	STAN  string // 61.2, n6
	Date  string // 61.3, n4 MMDD (refunds)
	Rest  string // 61.4 onwards
}

// Present reports whether the field is set.
func (f Field61) Present() bool { return f.Batch != "" }

// String returns the field value.
func (f Field61) String() string { return f.Batch + f.STAN + f.Date + f.Rest }

// ParseField61 parses the digits of field 61: 12 digits (batch + STAN) or
// 16..29 (with the original date).
func ParseField61(s string) (Field61, error) {
	if len(s) > posField61MaxLen || !isDigits(s) {
		return Field61{}, fmt.Errorf("%w: field 61 %q", ErrFormat, s)
	}
	switch {
	case len(s) == 12:
		return Field61{Batch: s[:6], STAN: s[6:12]}, nil
	case len(s) >= 16:
		return Field61{Batch: s[:6], STAN: s[6:12], Date: s[12:16], Rest: s[16:]}, nil
	}
	return Field61{}, fmt.Errorf("%w: field 61 has %d digits, want 12 or 16..%d", ErrFormat, len(s), posField61MaxLen)
}

func (f Field61) validate() error {
	if !f.Present() {
		if f.STAN != "" || f.Date != "" || f.Rest != "" {
			return fmt.Errorf("field 61 without 61.1 batch")
		}
		return nil
	}
	if _, err := ParseField61(f.String()); err != nil {
		return err
	}
	if len(f.Batch) != 6 || len(f.STAN) != 6 || (f.Date != "" && len(f.Date) != 4) || (f.Rest != "" && f.Date == "") {
		return fmt.Errorf("%w: field 61 sub-field widths %d/%d/%d/%d", ErrFormat,
			len(f.Batch), len(f.STAN), len(f.Date), len(f.Rest))
	}
	return nil
}

// Field 54 account and amount types (docs/pos-dialect.md#fields).
const (
	AccountCashPurse    = "00"
	AccountSubsidyPurse = "01"
	AccountPendingLoad  = "02" // outside credits not yet claimed (docs/recharge.md)
	AmountTypeAvailable = "02"
	CurrencyCNY         = "156"
)

// Balance is one 20-character entry of field 54: account type n2, amount
// type n2, currency n3, sign C (credit, >= 0) or D (debit, < 0), amount n12.
type Balance struct {
	AccountType string // AccountCashPurse, AccountSubsidyPurse
	AmountType  string // AmountTypeAvailable
	Currency    string // CurrencyCNY
	Amount      Amount // signed: a negative amount is sent with sign D
}

// FormatBalances builds the value of field 54 from up to MaxBalances
// entries.
func FormatBalances(bs []Balance) (string, error) {
	if len(bs) == 0 || len(bs) > MaxBalances {
		return "", fmt.Errorf("field 54: %d balances, want 1..%d", len(bs), MaxBalances)
	}
	var buf [MaxBalances * balanceEntryLen]byte // on the stack: only the string is allocated
	out := buf[:0]
	for i, b := range bs {
		if len(b.AccountType) != 2 || !isDigits(b.AccountType) ||
			len(b.AmountType) != 2 || !isDigits(b.AmountType) ||
			len(b.Currency) != 3 || !isDigits(b.Currency) {
			return "", fmt.Errorf("field 54 entry %d: account %q, amount type %q, currency %q", i, b.AccountType, b.AmountType, b.Currency)
		}
		sign, abs := byte('C'), b.Amount
		if abs < 0 {
			sign, abs = 'D', -abs
		}
		if abs < 0 || abs > MaxAmount {
			_, err := abs.N12()
			return "", fmt.Errorf("field 54 entry %d: %w", i, err)
		}
		out = append(out, b.AccountType...)
		out = append(out, b.AmountType...)
		out = append(out, b.Currency...)
		out = append(out, sign)
		out = abs.appendN12(out)
	}
	return string(out), nil
}

// ParseBalances parses field 54.
func ParseBalances(s string) ([]Balance, error) {
	if len(s) == 0 || len(s)%balanceEntryLen != 0 || len(s) > posField54MaxLen {
		return nil, fmt.Errorf("%w: field 54 of %d characters, want a multiple of %d up to %d", ErrFormat, len(s), balanceEntryLen, posField54MaxLen)
	}
	bs := make([]Balance, 0, len(s)/balanceEntryLen)
	for i := 0; i < len(s); i += balanceEntryLen {
		e := s[i : i+balanceEntryLen]
		if !isDigits(e[:7]) {
			return nil, fmt.Errorf("%w: field 54 entry %d: %q", ErrFormat, i/balanceEntryLen, e)
		}
		a, err := ParseAmount(e[8:])
		if err != nil {
			return nil, fmt.Errorf("field 54 entry %d: %w", i/balanceEntryLen, err)
		}
		switch e[7] {
		case 'C':
		case 'D':
			a = -a
		default:
			return nil, fmt.Errorf("%w: field 54 entry %d: sign %q", ErrFormat, i/balanceEntryLen, e[7])
		}
		bs = append(bs, Balance{AccountType: e[:2], AmountType: e[2:4], Currency: e[4:7], Amount: a})
	}
	return bs, nil
}

// Settlement flags of field 48 (the switch's answer in the 0510).
const (
	SettlementRequested  = '0' // in the terminal's 0500
	SettlementBalanced   = '1' // totals agree
	SettlementUnbalanced = '2' // totals differ: the terminal uploads its batch
	SettlementError      = '3'
)

// SettlementTotals is one half (domestic or foreign cards) of the batch
// settlement totals in field 48: debit count n3, debit amount n12, credit
// count n3, credit amount n12, settlement flag n1 (31 digits).
type SettlementTotals struct {
	DebitCount   int
	DebitAmount  Amount
	CreditCount  int
	CreditAmount Amount
	Flag         byte // SettlementRequested, SettlementBalanced...
}

// Settlement is field 48 of the 0500/0510 batch settlement: domestic totals
// then foreign totals, 62 digits.
type Settlement struct {
	Domestic SettlementTotals
	Foreign  SettlementTotals
}

const settlementTotalsLen = 3 + 12 + 3 + 12 + 1

// FormatSettlement builds the 62 digits of field 48.
func FormatSettlement(s Settlement) (string, error) {
	out := make([]byte, 0, 2*settlementTotalsLen)
	for i, t := range []SettlementTotals{s.Domestic, s.Foreign} {
		if t.DebitCount < 0 || t.DebitCount > 999 || t.CreditCount < 0 || t.CreditCount > 999 ||
			t.Flag < '0' || t.Flag > '9' {
			return "", fmt.Errorf("field 48 totals %d: counts %d/%d, flag %q", i, t.DebitCount, t.CreditCount, t.Flag)
		}
		da, err := t.DebitAmount.N12()
		if err != nil {
			return "", fmt.Errorf("field 48 totals %d debit: %w", i, err)
		}
		ca, err := t.CreditAmount.N12()
		if err != nil {
			return "", fmt.Errorf("field 48 totals %d credit: %w", i, err)
		}
		out = fmt.Appendf(out, "%03d%s%03d%s%c", t.DebitCount, da, t.CreditCount, ca, t.Flag)
	}
	return string(out), nil
}

// ParseSettlement parses field 48 of a batch settlement: exactly 62 digits.
func ParseSettlement(s string) (Settlement, error) {
	if len(s) != 2*settlementTotalsLen || !isDigits(s) {
		return Settlement{}, fmt.Errorf("%w: field 48 settlement totals: %d characters, want %d digits", ErrFormat, len(s), 2*settlementTotalsLen)
	}
	var out Settlement
	for i, t := range []*SettlementTotals{&out.Domestic, &out.Foreign} {
		p := s[i*settlementTotalsLen : (i+1)*settlementTotalsLen]
		t.DebitCount, _ = strconv.Atoi(p[0:3])
		t.DebitAmount, _ = ParseAmount(p[3:15])
		t.CreditCount, _ = strconv.Atoi(p[15:18])
		t.CreditAmount, _ = ParseAmount(p[18:30])
		t.Flag = p[30]
	}
	return out, nil
}
