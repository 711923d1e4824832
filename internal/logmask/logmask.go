// Package logmask masks card numbers in log output by construction: the
// switch's zap encoder is wrapped so that, after a line is encoded and
// before it is written, every run of 13 or more digits in it — a card
// number's length is 13 to 19 — keeps only its first 6 and last 4 digits
// and has the rest replaced by '*', the same rule as internal/cardno.
//
// A run may be split by single spaces or dashes ("6230 1510 0000 0000
// 012", "6230-1510-..."), the ways people and forms write card numbers;
// the separators stay, the digits between the first 6 and last 4 are
// masked. Whatever a caller hands the logger — a message, a field, an
// error's text, a request path with trailing whitespace or a newline — a
// card number cannot reach the log whole. The price: other numbers of 13
// or more digits (nanosecond timestamps, byte counts above 10 TB) are
// masked too; the switch logs times as ISO 8601 and durations as strings.
// docs/security.md lists this among the defences.
package logmask

import (
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// MinRun is the shortest digit run that is masked: the shortest card
// number (ISO/IEC 7812 allows 8, but no card of this switch's schemes is
// shorter than 13; runs of 12 are RRNs and must stay readable).
const MinRun = 13

const keepHead, keepTail = 6, 4

// Bytes masks every digit run of at least MinRun digits in b in place and
// returns b. Lengths and every byte that is not a masked digit stay as
// they are, so the result is still valid JSON when b was.
func Bytes(b []byte) []byte {
	for i := 0; i < len(b); {
		if !isDigit(b[i]) {
			i++
			continue
		}
		// A run: digits, possibly split by single ' ' or '-' between
		// digits. end is one past its last digit; n counts its digits.
		end, n := i, 0
		for j := i; j < len(b); {
			if isDigit(b[j]) {
				n++
				j++
				end = j
				continue
			}
			if (b[j] == ' ' || b[j] == '-') && j+1 < len(b) && isDigit(b[j+1]) {
				j++
				continue
			}
			break
		}
		if n >= MinRun {
			mask(b[i:end], n)
		}
		i = end
	}
	return b
}

// String is Bytes for a string.
func String(s string) string {
	if !hasRun(s) {
		return s
	}
	return string(Bytes([]byte(s)))
}

func hasRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		switch {
		case isDigit(s[i]):
			n++
			if n >= MinRun {
				return true
			}
		case (s[i] == ' ' || s[i] == '-') && n > 0:
		default:
			n = 0
		}
	}
	return false
}

// mask replaces the digits of run, which holds n digits, except the first
// keepHead and the last keepTail.
func mask(run []byte, n int) {
	k := 0
	for i := range run {
		if !isDigit(run[i]) {
			continue
		}
		if k >= keepHead && k < n-keepTail {
			run[i] = '*'
		}
		k++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Encoder wraps a zap encoder so that every line it encodes is masked.
// Fields added with With are encoded by the wrapped encoder and copied
// into each line, so they are masked with it.
func Encoder(enc zapcore.Encoder) zapcore.Encoder { return maskingEncoder{enc} }

type maskingEncoder struct{ zapcore.Encoder }

func (m maskingEncoder) Clone() zapcore.Encoder { return maskingEncoder{m.Encoder.Clone()} }

func (m maskingEncoder) EncodeEntry(e zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	buf, err := m.Encoder.EncodeEntry(e, fields)
	if buf != nil {
		Bytes(buf.Bytes())
	}
	return buf, err
}
