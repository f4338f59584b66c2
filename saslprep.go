package main

// SASLprep (RFC 4013, the stringprep profile of RFC 3454) of a SCRAM
// password, as libpq and the PostgreSQL server apply it (src/common/
// saslprep.c): both sides prepare the password the same way, so that a
// password typed in another normal form, or with a no-break space, still
// logs in. As in PostgreSQL, a password that is not valid UTF-8, is pure
// ASCII, or holds a prohibited character after mapping is used as it is.
//
// golang.org/x/text/unicode/norm gives NFKC; the bidi rule uses the
// scripts written right to left for RandALCat, and letters of the others
// for LCat, where RFC 3454 lists single code points.

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func pgSASLprep(password string) string {
	if !utf8.ValidString(password) || isASCII(password) {
		return password
	}
	// Mapping (RFC 4013 section 2.1): non-ASCII spaces (C.1.2) to a space,
	// "commonly mapped to nothing" (B.1) removed.
	mapped := strings.Map(func(r rune) rune {
		switch {
		case r == 0xA0 || r == 0x1680 || 0x2000 <= r && r <= 0x200A || r == 0x202F || r == 0x205F || r == 0x3000:
			return ' '
		case r == 0xAD || r == 0x34F || r == 0x1806 || 0x180B <= r && r <= 0x180D || 0x200B <= r && r <= 0x200D ||
			r == 0x2060 || 0xFE00 <= r && r <= 0xFE0F || r == 0xFEFF:
			return -1
		}
		return r
	}, password)
	prepared := norm.NFKC.String(mapped)
	var randAL, l bool
	for _, r := range prepared {
		if saslprepProhibited(r) {
			return password
		}
		switch {
		case unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko):
			randAL = true
		case unicode.IsLetter(r):
			l = true
		}
	}
	if randAL {
		// The bidi rule (RFC 3454 section 6): no left-to-right letter, and
		// a right-to-left character first and last.
		first, _ := utf8.DecodeRuneInString(prepared)
		last, _ := utf8.DecodeLastRuneInString(prepared)
		rtl := func(r rune) bool {
			return unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko) && !unicode.IsMark(r)
		}
		if l || !rtl(first) || !rtl(last) {
			return password
		}
	}
	return prepared
}

// saslprepProhibited is RFC 4013 section 2.3: tables C.1.2 through C.9 of
// RFC 3454.
func saslprepProhibited(r rune) bool {
	switch {
	case r < 0x20 || 0x7F <= r && r <= 0x9F: // C.2.1, C.2.2 controls
		return true
	case r == 0xA0 || r == 0x1680 || 0x2000 <= r && r <= 0x200B || r == 0x202F || r == 0x205F || r == 0x3000: // C.1.2
		return true
	case r == 0x6DD || r == 0x70F || r == 0x180E || 0x200C <= r && r <= 0x200F || 0x2028 <= r && r <= 0x202E ||
		0x2060 <= r && r <= 0x2063 || 0x206A <= r && r <= 0x206F || r == 0xFEFF || 0x1D173 <= r && r <= 0x1D17A: // C.2.2, C.8
		return true
	case 0xE000 <= r && r <= 0xF8FF || 0xF0000 <= r && r <= 0xFFFFD || 0x100000 <= r && r <= 0x10FFFD: // C.3 private use
		return true
	case 0xFDD0 <= r && r <= 0xFDEF || r&0xFFFE == 0xFFFE: // C.4 non-characters
		return true
	case 0xFFF9 <= r && r <= 0xFFFD || 0x2FF0 <= r && r <= 0x2FFB || r == 0x340 || r == 0x341: // C.6, C.7, C.8
		return true
	case r == 0xE0001 || 0xE0020 <= r && r <= 0xE007F: // C.9 tagging
		return true
	}
	return false
}
