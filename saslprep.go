package main

// SASLprep (RFC 4013, the stringprep profile of RFC 3454) of a SCRAM
// password, as libpq and the PostgreSQL server apply it (src/common/
// saslprep.c): both sides prepare the password the same way, so that a
// password typed in another normal form, or with a no-break space, still
// logs in. As in PostgreSQL, a password that is not valid UTF-8, is pure
// ASCII, or holds a prohibited character after mapping is used as it is.
//
// NFKC is our own, on tables generated from Unicode 14.0 (the version of
// PostgreSQL 15's own tables) by scripts/saslprep/gen.py: about 50 KB,
// where golang.org/x/text/unicode/norm cost 106 KB. A password is short,
// so the tables are scanned, not indexed. The bidi rule uses the scripts
// written right to left for RandALCat, and letters of the others for LCat,
// where RFC 3454 lists single code points.

import (
	"strings"
	"unicode"
	"unicode/utf8"
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
	prepared := nfkc(mapped)
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

// nfkc is Unicode Normalization Form KC (UAX #15): the full compatibility
// decomposition, combining marks put in canonical order, then canonical
// composition.
func nfkc(s string) string {
	var d []rune
	for _, r := range s {
		d = nfkdAppend(d, r)
	}
	for i := 1; i < len(d); i++ {
		for j := i; j > 0; j-- {
			cc := nfkcClass(d[j])
			if cc == 0 || nfkcClass(d[j-1]) <= cc {
				break
			}
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
	out := d[:0]
	starter, lastClass := -1, 0
	for _, c := range d {
		cc := nfkcClass(c)
		if starter >= 0 && (len(out)-1 == starter || lastClass != 0 && lastClass < cc) {
			if composed, ok := nfkcComposePair(out[starter], c); ok {
				out[starter] = composed
				continue
			}
		}
		if cc == 0 {
			starter = len(out)
		}
		lastClass = cc
		out = append(out, c)
	}
	return string(out)
}

// Hangul syllables decompose and compose by arithmetic (Unicode chapter 3.12).
const (
	hangulS, hangulL, hangulV, hangulT = 0xAC00, 0x1100, 0x1161, 0x11A7
	hangulLCount, hangulVCount         = 19, 21
	hangulTCount                       = 28
	hangulNCount                       = hangulVCount * hangulTCount
	hangulSCount                       = hangulLCount * hangulNCount
)

func nfkdAppend(d []rune, r rune) []rune {
	if i := r - hangulS; 0 <= i && i < hangulSCount {
		d = append(d, hangulL+i/hangulNCount, hangulV+i%hangulNCount/hangulTCount)
		if t := i % hangulTCount; t != 0 {
			d = append(d, hangulT+t)
		}
		return d
	}
	for t := nfkcDecomp; len(t) >= 5; {
		start, n, size := nfkcRune(t), rune(t[3]), int(t[4])
		switch {
		case r < start:
			return append(d, r)
		case r < start+n:
			m := t[5 : 5+size]
			if n > 1 {
				first, _ := utf8.DecodeRuneInString(m)
				return append(d, first+r-start)
			}
			for _, c := range m {
				d = append(d, c)
			}
			return d
		}
		t = t[5+size:]
	}
	return append(d, r)
}

func nfkcClass(r rune) int {
	for t := nfkcCombining; len(t) >= 5; t = t[5:] {
		start := nfkcRune(t)
		if r < start {
			return 0
		}
		if r < start+rune(t[3]) {
			return int(t[4])
		}
	}
	return 0
}

func nfkcComposePair(a, b rune) (rune, bool) {
	if l, v := a-hangulL, b-hangulV; 0 <= l && l < hangulLCount && 0 <= v && v < hangulVCount {
		return hangulS + (l*hangulVCount+v)*hangulTCount, true
	}
	if s, t := a-hangulS, b-hangulT; 0 <= s && s < hangulSCount && s%hangulTCount == 0 && 0 < t && t < hangulTCount {
		return a + t, true
	}
	for t := nfkcCompose; len(t) >= 9; t = t[9:] {
		if nfkcRune(t) == a && nfkcRune(t[3:]) == b {
			return nfkcRune(t[6:]), true
		}
	}
	return 0, false
}

func nfkcRune(t string) rune { return rune(t[0])<<16 | rune(t[1])<<8 | rune(t[2]) }
