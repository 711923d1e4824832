// Package ident checks the identifiers and names an operator gives the
// switch (merchant ids and names, terminal ids, card holder names) before
// they are stored. They end up in storage keys, HSM key labels, log lines,
// journal entries, export files and operators' screens, so a control
// character, a path separator or an unbounded length in one is refused
// with an error that says what is wrong and where (docs/security.md).
package ident

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ID checks an identifier: ASCII letters and digits only, min..max bytes.
func ID(what, s string, min, max int) error {
	if len(s) < min || len(s) > max {
		if min == max {
			return fmt.Errorf("%s must be %d characters, got %d", what, min, len(s))
		}
		return fmt.Errorf("%s must be %d..%d characters, got %d", what, min, max, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return fmt.Errorf("%s may hold only letters and digits: %s at position %d", what, describe(rune(c)), i+1)
		}
	}
	return nil
}

// Name checks a human-readable name: valid UTF-8 of at most max bytes, no
// control or invisible formatting characters (line breaks, tabs, escape
// sequences, bidirectional overrides), no path separators.
func Name(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes, at most %d", what, len(s), max)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Errorf("%s is not valid UTF-8 at byte %d", what, i+1)
			}
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return fmt.Errorf("%s holds a control character (%s) at byte %d", what, describe(r), i+1)
		case r == '/' || r == '\\':
			return fmt.Errorf("%s holds a path separator (%q) at byte %d", what, r, i+1)
		}
	}
	return nil
}

func describe(r rune) string {
	if unicode.IsPrint(r) {
		return fmt.Sprintf("%q", r)
	}
	return fmt.Sprintf("U+%04X", r)
}
