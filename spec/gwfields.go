package spec

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Gateway message type indicators (docs/gateway-dialect.md, "Link
// messages").
const (
	GWFinancialRequest      = "0200"
	GWFinancialResponse     = "0210"
	GWAdviceRequest         = "0220"
	GWAdviceResponse        = "0230"
	GWReversalRequest       = "0400"
	GWReversalResponse      = "0410"
	GWReversalRepeat        = "0401"
	GWReversalAdvice        = "0420"
	GWReversalAdviceRepeat  = "0421"
	GWReversalAdviceAnswer  = "0430"
	GWNetworkRequest        = "0800"
	GWNetworkResponse       = "0810"
	GWNetworkSignOn         = "001"
	GWNetworkSignOff        = "002"
	GWNetworkKeyExchange    = "101"
	GWNetworkEcho           = "301"
	GWProcConsume           = "000000"
	GWProcBalanceInquiry    = "310000"
	GWProcVoid              = "200000"
	GWProcRefund            = "200000"
	GWProcTransferLoadDebit = "400000"
)

// Gateway authorisation messages (docs/gateway-dialect.md, "Processing
// codes"): a pre-authorisation and its cancel are 0100/0110; a
// completion and a completion void are 0200 with condition code 06.
const (
	GWAuthorizationRequest  = "0100"
	GWAuthorizationResponse = "0110"
	GWProcPreAuth           = "030000"
	GWConditionPreAuth      = "06" // field 25 of every pre-authorisation message
)

// GWCurrencyCNY is field 49 on every gateway financial message.
const GWCurrencyCNY = "156"

// Tag is one entry of a field 48 tag list: a 2-character tag and its
// value. Values are bytes; they may hold UTF-8.
type Tag struct {
	Name  string
	Value string
}

// MaxTagList is the largest field 48 the dialect carries (its LLL).
const MaxTagList = 999

// ParseTagList decodes field 48 as a tag list: repeated tag (2 printable
// ASCII characters) + length (3 digits, bytes) + value. Values must be
// valid UTF-8 without control characters; a tag may appear once. Errors
// wrap ErrFormat.
func ParseTagList(s string) ([]Tag, error) {
	if len(s) > MaxTagList {
		return nil, fmt.Errorf("%w: field 48 of %d bytes", ErrFormat, len(s))
	}
	var tags []Tag
	for off := 0; off < len(s); {
		if len(s)-off < 5 {
			return nil, fmt.Errorf("%w: field 48: %d bytes left at %d, a tag needs 5", ErrFormat, len(s)-off, off)
		}
		name := s[off : off+2]
		if !isTagName(name) {
			return nil, fmt.Errorf("%w: field 48: tag %q at %d", ErrFormat, name, off)
		}
		ls := s[off+2 : off+5]
		if !isDigits(ls) {
			return nil, fmt.Errorf("%w: field 48: tag %s length %q", ErrFormat, name, ls)
		}
		n, _ := strconv.Atoi(ls)
		off += 5
		if n > len(s)-off {
			return nil, fmt.Errorf("%w: field 48: tag %s of %d bytes, %d left", ErrFormat, name, n, len(s)-off)
		}
		v := s[off : off+n]
		if err := checkTagValue(name, v); err != nil {
			return nil, err
		}
		for _, t := range tags {
			if t.Name == name {
				return nil, fmt.Errorf("%w: field 48: tag %s appears twice", ErrFormat, name)
			}
		}
		tags = append(tags, Tag{Name: name, Value: v})
		off += n
	}
	return tags, nil
}

// FormatTagList encodes tags as field 48. It checks what ParseTagList
// checks, so what it writes parses back to the same list.
func FormatTagList(tags []Tag) (string, error) {
	n := 0
	for i, t := range tags {
		if !isTagName(t.Name) {
			return "", fmt.Errorf("field 48: tag %q is not 2 printable ASCII characters", t.Name)
		}
		if len(t.Value) > 999 {
			return "", fmt.Errorf("field 48: tag %s value of %d bytes", t.Name, len(t.Value))
		}
		if err := checkTagValue(t.Name, t.Value); err != nil {
			return "", err
		}
		for _, u := range tags[:i] {
			if u.Name == t.Name {
				return "", fmt.Errorf("field 48: tag %s appears twice", t.Name)
			}
		}
		n += 5 + len(t.Value)
	}
	if n > MaxTagList {
		return "", fmt.Errorf("field 48: tag list of %d bytes, at most %d", n, MaxTagList)
	}
	b := make([]byte, 0, n)
	for _, t := range tags {
		b = append(b, t.Name...)
		l := len(t.Value)
		b = append(b, byte('0'+l/100), byte('0'+l/10%10), byte('0'+l%10))
		b = append(b, t.Value...)
	}
	return string(b), nil
}

// TagValue returns the value of the named tag and whether it is present.
func TagValue(tags []Tag, name string) (string, bool) {
	for _, t := range tags {
		if t.Name == name {
			return t.Value, true
		}
	}
	return "", false
}

func isTagName(s string) bool {
	return len(s) == 2 && s[0] > ' ' && s[0] < 0x7f && s[1] > ' ' && s[1] < 0x7f
}

func checkTagValue(name, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: field 48: tag %s value is not UTF-8", ErrFormat, name)
	}
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("%w: field 48: tag %s value holds control character %#x", ErrFormat, name, r)
		}
	}
	return nil
}

// OriginalData is field 90, the original data elements of a reversal,
// void or refund: the original's MTI (4), STAN (6), transmission time
// (7, 10 digits), acquirer id (32, 11 digits right-aligned zero-filled)
// and forwarding id (33, likewise; zeros when absent).
type OriginalData struct {
	MTI          string
	STAN         string
	Transmission string
	Acquirer     string
	Forwarding   string
}

// Format renders field 90 (42 digits).
func (o OriginalData) Format() (string, error) {
	if len(o.MTI) != 4 || !isDigits(o.MTI) {
		return "", fmt.Errorf("field 90: MTI %q is not 4 digits", o.MTI)
	}
	if len(o.STAN) != 6 || !isDigits(o.STAN) {
		return "", fmt.Errorf("field 90: STAN %q is not 6 digits", o.STAN)
	}
	if len(o.Transmission) != 10 || !isDigits(o.Transmission) {
		return "", fmt.Errorf("field 90: transmission time %q is not 10 digits", o.Transmission)
	}
	acq, err := institution11(o.Acquirer)
	if err != nil {
		return "", fmt.Errorf("field 90: acquirer: %w", err)
	}
	fwd, err := institution11(o.Forwarding)
	if err != nil {
		return "", fmt.Errorf("field 90: forwarding institution: %w", err)
	}
	return o.MTI + o.STAN + o.Transmission + acq + fwd, nil
}

func institution11(id string) (string, error) {
	if len(id) > 11 || !isDigits(id) {
		return "", fmt.Errorf("institution id %q is not up to 11 digits", id)
	}
	return "00000000000"[:11-len(id)] + id, nil
}

// ParseOriginalData decodes field 90. Acquirer and Forwarding keep their
// 11 zero-filled digits: compare them with institution11 forms.
func ParseOriginalData(s string) (OriginalData, error) {
	if len(s) != 42 || !isDigits(s) {
		return OriginalData{}, fmt.Errorf("%w: field 90 %q is not 42 digits", ErrFormat, s)
	}
	return OriginalData{MTI: s[0:4], STAN: s[4:10], Transmission: s[10:20], Acquirer: s[20:31], Forwarding: s[31:42]}, nil
}

// SameInstitution reports whether two institution ids are equal once
// both are zero-filled to 11 digits (field 90 form against field 32/33).
func SameInstitution(a, b string) bool {
	x, err1 := institution11(a)
	y, err2 := institution11(b)
	return err1 == nil && err2 == nil && x == y
}

// FormatTransmissionTime renders field 7: t in UTC as MMDDhhmmss.
func FormatTransmissionTime(t time.Time) string {
	return t.UTC().Format("0102150405")
}

// ParseTransmissionTime decodes field 7 (UTC MMDDhhmmss) into the instant
// nearest to now: the year is now's, the previous or the next one,
// whichever lands closest (a message sent at 23:59:59 on 31 December and
// read a second later in January is from last year). Errors wrap
// ErrFormat.
func ParseTransmissionTime(s string, now time.Time) (time.Time, error) {
	if len(s) != 10 || !isDigits(s) {
		return time.Time{}, fmt.Errorf("%w: field 7 %q is not 10 digits", ErrFormat, s)
	}
	now = now.UTC()
	var best time.Time
	var bestD time.Duration = -1
	for _, y := range []int{now.Year() - 1, now.Year(), now.Year() + 1} {
		t, err := time.Parse("20060102150405", strconv.Itoa(y)+s)
		if err != nil {
			continue // 29 February in a year that has none, or out of range
		}
		d := t.Sub(now)
		if d < 0 {
			d = -d
		}
		if bestD < 0 || d < bestD {
			best, bestD = t, d
		}
	}
	if bestD < 0 {
		return time.Time{}, fmt.Errorf("%w: field 7 %q is not a date and time", ErrFormat, s)
	}
	return best, nil
}

// TransmissionSkew returns how far field 7 is from now (absolute).
func TransmissionSkew(s string, now time.Time) (time.Duration, error) {
	t, err := ParseTransmissionTime(s, now)
	if err != nil {
		return 0, err
	}
	d := t.Sub(now)
	if d < 0 {
		d = -d
	}
	return d, nil
}
