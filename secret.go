// Everything that keeps secrets out of output: passwords in URLs and
// DSNs, secret parameters, and the resolved values a target's reasons may
// not quote.

package main

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// redactURL hides the password of any user:password@ in s, with or without
// a scheme, also when s does not parse as a URL, so that no message can
// carry it. A password may hold / and @ (user:pa/ss@host, user:pa@ss@host),
// so the user information runs to the last @ and the user to the first :;
// when an @ in a path or query makes this hide more than the password, that
// is the safe side. Without an @ (user:pa ss@host split by the shell), a
// port that is not a number may be the start of a password: it and all that
// follows read xxxxx (not in unix:path). A user with white space in it is
// no user name but may be a password after a space: the whole user
// information reads xxxxx. A reference (env:NAME) is a name,
// shown as written.
func redactURL(s string) string {
	if isReference(s) {
		return s
	}
	s = redactSecretParams(s)
	prefix, rest := "", s
	if scheme, ok := urlScheme(s); ok {
		prefix, rest = s[:len(scheme)+3], s[len(scheme)+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		if strings.HasPrefix(s, "unix:") {
			return s
		}
		// Each host of the authority (h1:1,h2:2; a DSN's tcp(h:p)) in turn.
		authority := rest
		if end := strings.IndexAny(authority, "/?#"); end >= 0 {
			authority = authority[:end]
		}
		offset := 0
		for _, host := range strings.Split(authority, ",") {
			if colon := doubtfulPort(host); colon >= 0 {
				return prefix + rest[:offset+colon+1] + "xxxxx"
			}
			offset += len(host) + 1
		}
		return s
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if strings.ContainsFunc(user, unicode.IsSpace) && !keywordForm(rest[:at]) {
		// Not a user name: a password after a space instead of a colon
		// (app s3cret@host), or a colon further on: all of it may be one.
		return prefix + "xxxxx" + rest[at:]
	}
	if !hasPassword {
		return s
	}
	return prefix + user + ":xxxxx" + rest[at:]
}

// redactWords is redactURL for each word of a command line, so that the
// command stays readable while a URL among its arguments (curl
// http://app:pw@host/) loses its password.
func redactWords(line string) string {
	var out strings.Builder
	for len(line) > 0 {
		end := strings.IndexAny(line, " \t")
		if end < 0 {
			end = len(line)
		}
		out.WriteString(redactURL(line[:end]))
		space := len(line[end:]) - len(strings.TrimLeft(line[end:], " \t"))
		out.WriteString(line[end : end+space])
		line = line[end+space:]
	}
	return out.String()
}

// urlScheme is the scheme of s when s starts with one and "://" (RFC 3986:
// a letter, then letters, digits, + - .): a :// further on, in a password
// (app:pa://ss@tcp(db)/), starts no URL.
func urlScheme(s string) (string, bool) {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || !unicode.IsLetter(rune(scheme[0])) || scheme[0] >= 0x80 {
		return "", false
	}
	for _, c := range []byte(scheme) {
		if c >= 0x80 || !unicode.IsLetter(rune(c)) && !unicode.IsDigit(rune(c)) && c != '+' && c != '-' && c != '.' {
			return "", false
		}
	}
	return scheme, true
}

func isURL(s string) bool { _, ok := urlScheme(s); return ok }

// keywordForm tells a keyword/value string (host=db user=app@corp ...),
// whose secrets redactSecretParams hides, from user information with
// white space in it: each of its words is a key=value whose key is one of
// libpq's. Any other word with an = in it (a=b c=pw@db) may be a password.
func keywordForm(userinfo string) bool {
	for _, word := range strings.Fields(userinfo) {
		key, _, ok := strings.Cut(word, "=")
		if !ok || !pgKnownKeyword(key) {
			return false
		}
	}
	return true
}

// doubtfulPort returns where the port of host starts when it is not a
// number, and so may be the start of a password (u:pa ss@h split by the
// shell), or -1. An IPv6 address without a port (::1, [::1, fe80::1%lo)
// has colons but no port.
func doubtfulPort(host string) int {
	v6, _, _ := strings.Cut(strings.TrimPrefix(host, "["), "%")
	if strings.Count(v6, ":") >= 2 && strings.Trim(v6, "0123456789abcdefABCDEF:.") == "" {
		return -1
	}
	from := strings.Index(host, "]") + 1 // after a [v6], if any
	colon := strings.IndexByte(host[from:], ':')
	if colon < 0 || strings.Trim(strings.TrimSuffix(host[from+colon+1:], ")"), "0123456789") == "" {
		return -1
	}
	return from + colon
}

// secretKeyWords mark a parameter whose value is a secret: a key holding
// one of them, in any case (sslpassword, PWD, api_token, client_secret,
// X-Amz-Credential), or equal to one of secretKeys (MongoDB's
// authMechanismProperties carries AWS_SESSION_TOKEN), has its value hidden.
// A harmless key that holds one is hidden too: the safe side.
var secretKeyWords = []string{"password", "passwd", "pwd", "secret", "token", "key", "credential", "signature"}
var secretKeys = []string{"auth", "sig", "authmechanismproperties"}

// redactSecretParams hides the value of every key=VALUE parameter whose key
// names a secret, as a connection URL's query (?sslpassword=), a DSN's
// parameters or a keyword=value string may carry.
func redactSecretParams(s string) string {
	spans := secretParams(s)
	for i := len(spans) - 1; i >= 0; i-- {
		s = s[:spans[i][0]] + "xxxxx" + s[spans[i][1]:]
	}
	return s
}

// secretParams finds where the value of each parameter whose key names a
// secret stands in s. A key starts after ? & ; white space or the start of
// s, and may have spaces around its = (libpq's keyword/value form). A value
// runs to the next & (in a query) or white space; one in single quotes to its closing
// quote (past \' escapes), or to the end when there is none; and one
// followed by words that are not key=value pairs runs on over them, since
// they read as the rest of a password whose quotes are missing
// (password=s3 cr3t).
func secretParams(s string) [][2]int {
	var spans [][2]int
	for from := 0; ; {
		eq := strings.IndexByte(s[from:], '=')
		if eq < 0 {
			return spans
		}
		eq += from
		from = eq + 1
		keyEnd := len(strings.TrimRight(s[:eq], " \t\n\r\f\v"))
		start := strings.LastIndexAny(s[:keyEnd], "?&; \t\n\r\f\v") + 1
		if !secretKey(s[start:keyEnd]) {
			continue
		}
		for from < len(s) && cSpace(s[from]) {
			from++
		}
		end := from
		if end < len(s) && s[end] == '\'' {
			for end++; end < len(s) && s[end] != '\''; end++ {
				if s[end] == '\\' {
					end++
				}
			}
			end = min(end+1, len(s))
		} else {
			// A backslash keeps the next byte in the value (libpq's
			// a\ b), the safe side elsewhere; & ends it in a query only:
			// a key right after ? or &, not after white space (user=?
			// password=&pw is a keyword/value string whose user is ?).
			query := start > 0 && (s[start-1] == '?' || s[start-1] == '&') && strings.Contains(s[:start], "?")
			for end < len(s) {
				c := s[end]
				if c == '\\' {
					end += 2
					continue
				}
				if c == '&' && query || cSpace(c) && continuesWithParam(s[end:]) {
					break
				}
				end++
			}
			end = min(end, len(s))
		}
		spans = append(spans, [2]int{from, end})
		from = end
	}
}

// cSpace is C's isspace, which separates libpq's key=value pairs.
func cSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// continuesWithParam reports whether s, which starts with white space, goes
// on with a key=value pair (or only white space).
func continuesWithParam(s string) bool {
	const space = " \t\n\r\f\v"
	s = strings.TrimLeft(s, space)
	word := s
	if i := strings.IndexAny(s, "="+space); i >= 0 {
		word = s[:i]
	}
	return s == "" || word != "" && strings.HasPrefix(strings.TrimLeft(s[len(word):], space), "=")
}

// secretParamValues are the values redactSecretParams hides in a query
// string or form body s (a=b&c=d), as written and percent-decoded, for
// hiding where a server echoes them.
func secretParamValues(s string) []string {
	var values []string
	s = "?" + s // a query: & ends a value
	for _, span := range secretParams(s) {
		v := s[span[0]:span[1]]
		values = append(values, v)
		if d, err := url.QueryUnescape(v); err == nil {
			values = append(values, d)
		}
		if d, err := url.PathUnescape(v); err == nil {
			values = append(values, d)
		}
	}
	return values
}

// sentCredentials are the forms in which a request to u carries the URL's
// secrets, as an echo endpoint (httpbin's /anything) sends them back: the
// password as written and decoded, the Authorization header Go makes of the
// user and password and its base64 part alone, and the values of secret
// query parameters.
func sentCredentials(u *url.URL) []string {
	pieces := secretParamValues(u.RawQuery)
	if u.User == nil {
		return pieces
	}
	password, ok := u.User.Password()
	if !ok {
		return pieces
	}
	_, written, _ := strings.Cut(u.User.String(), ":")
	basic := base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + password))
	return append(pieces, password, written, basic, "Basic "+basic)
}

// secretKey reports whether a parameter's key names a secret, also when it
// is percent-encoded (ssl%70assword).
func secretKey(key string) bool {
	if k, err := url.QueryUnescape(key); err == nil {
		key = k
	}
	key = strings.ToLower(key)
	if slices.Contains(secretKeys, key) {
		return true
	}
	for _, w := range secretKeyWords {
		if strings.Contains(key, w) {
			return true
		}
	}
	return false
}

// hidden is what a target's failure reasons may not quote, longest first so
// that a whole URL is replaced before the host inside it. Built once, at
// start-up, and read on every failed attempt.
type hidden []string

func newHidden(pieces ...string) hidden {
	h := slices.DeleteFunc(withASCIIForms(slices.Clone(pieces)), func(p string) bool { return p == "" })
	slices.SortStableFunc(h, func(a, b string) int { return len(b) - len(a) })
	return h
}

// conceal replaces each piece found in msg with [hidden] where it stands as
// a whole word: hiding host "a" must not turn "no answer" into nonsense.
// Hiding too much is harmless; too little is not.
func (h hidden) conceal(msg string) string {
	for _, p := range h {
		var out strings.Builder
		copied, from := 0, 0
		for {
			j := strings.Index(msg[from:], p)
			if j < 0 {
				break
			}
			i, end := from+j, from+j+len(p)
			whole := (i == 0 || !isWordByte(msg[i-1]) || !isWordByte(p[0])) &&
				(end == len(msg) || !isWordByte(msg[end]) || !isWordByte(p[len(p)-1]))
			if !whole {
				from = i + 1
				continue
			}
			out.WriteString(msg[copied:i])
			out.WriteString("[hidden]")
			copied, from = end, end
		}
		if copied > 0 {
			out.WriteString(msg[copied:])
			msg = out.String()
		}
	}
	return msg
}

// withASCIIForms adds, for each piece with a non-ASCII host name in it, the
// form a resolver is asked for and an error names: every label lower-cased
// and punycoded (RFC 3492), bücher.test as xn--bcher-kva.test.
func withASCIIForms(pieces []string) []string {
	for _, p := range pieces {
		if ascii := asciiForm(p); ascii != p {
			pieces = append(pieces, ascii)
		}
	}
	return pieces
}

func asciiForm(s string) string {
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if !isASCII(l) {
			labels[i] = "xn--" + punycode(strings.ToLower(l))
		}
	}
	return strings.Join(labels, ".")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// punycode encodes one label as RFC 3492 section 6.3 describes: the ASCII
// code points first, then, after a "-", each other code point as a
// variable-length number of base-36 digits, in increasing code point order.
func punycode(label string) string {
	const (
		base, tMin, tMax = 36, 1, 26
		skew, damp       = 38, 700
	)
	digit := func(d int) byte {
		if d < 26 {
			return byte('a' + d)
		}
		return byte('0' + d - 26)
	}
	// adapt is the bias adaptation function of section 6.1.
	adapt := func(delta, points int, first bool) int {
		if first {
			delta /= damp
		} else {
			delta /= 2
		}
		delta += delta / points
		k := 0
		for delta > (base-tMin)*tMax/2 {
			delta /= base - tMin
			k += base
		}
		return k + (base-tMin+1)*delta/(delta+skew)
	}
	runes := []rune(label)
	var out []byte
	for _, r := range runes {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	basic := len(out)
	if basic > 0 {
		out = append(out, '-')
	}
	n, delta, bias := 0x80, 0, 72
	for handled := basic; handled < len(runes); {
		m := rune(0x7fffffff)
		for _, r := range runes {
			if int(r) >= n && r < m {
				m = r
			}
		}
		delta += (int(m) - n) * (handled + 1)
		n = int(m)
		for _, r := range runes {
			if int(r) < n {
				delta++
			}
			if int(r) != n {
				continue
			}
			q := delta
			for k := base; ; k += base {
				t := k - bias
				t = min(max(t, tMin), tMax)
				if q < t {
					break
				}
				out = append(out, digit(t+(q-t)%(base-t)))
				q = (q - t) / (base - t)
			}
			out = append(out, digit(q))
			bias = adapt(delta, handled+1, handled == basic)
			delta = 0
			handled++
		}
		delta++
		n++
	}
	return string(out)
}
