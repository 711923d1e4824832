package recharge

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxNameBytes bounds a holder name in a verification request (field 48
// tag NM, docs/recharge.md).
const MaxNameBytes = 60

// NormalizeName is the form in which holder names are compared: Unicode
// NFC, leading and trailing white space removed, every inner run of
// Unicode white space (the ideographic space U+3000 included) one ASCII
// space, ASCII letters lower-cased. Other characters are kept as they
// are: 李雷 and 李蕾 differ, and so do Ä and A.
func NormalizeName(s string) string {
	s = norm.NFC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	// Lower-casing an ASCII letter can let a combining mark after it
	// compose (J + U+030C has no precomposed form, j + U+030C is U+01F0),
	// so the result is composed once more: otherwise "J̌" and "ǰ" would
	// not match, and the normal form would not be stable.
	return norm.NFC.String(b.String())
}

// NamesMatch reports whether a name given by an institution matches the
// holder name on the card.
func NamesMatch(given, holder string) bool {
	return NormalizeName(given) == NormalizeName(holder)
}
