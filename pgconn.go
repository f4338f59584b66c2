package main

// libpq's reading of a connection string, so that the postgres type reads
// the app's own string as the app's driver does: the two forms, libpq's
// parameter key words, the environment variables that fill what the string
// leaves out, and the password file. From the libpq 17 documentation,
// sections "Connection Strings", "Parameter Key Words", "Environment
// Variables" and "The Password File".
//
// No error here quotes a value or a word of the string it could not read:
// any of them may be part of a password.

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// pgKeywords are libpq 17's parameter key words, each with the environment
// variable that gives its default ("" for none).
var pgKeywords = [][2]string{
	{"host", "PGHOST"}, {"hostaddr", "PGHOSTADDR"}, {"port", "PGPORT"}, {"dbname", "PGDATABASE"},
	{"user", "PGUSER"}, {"password", "PGPASSWORD"}, {"passfile", "PGPASSFILE"},
	{"require_auth", "PGREQUIREAUTH"}, {"channel_binding", "PGCHANNELBINDING"},
	{"connect_timeout", "PGCONNECT_TIMEOUT"}, {"client_encoding", "PGCLIENTENCODING"},
	{"options", "PGOPTIONS"}, {"application_name", "PGAPPNAME"}, {"fallback_application_name", ""},
	{"keepalives", ""}, {"keepalives_idle", ""}, {"keepalives_interval", ""}, {"keepalives_count", ""},
	{"tcp_user_timeout", ""}, {"replication", ""}, {"gssencmode", "PGGSSENCMODE"},
	{"sslmode", "PGSSLMODE"}, {"sslnegotiation", "PGSSLNEGOTIATION"}, {"sslcompression", "PGSSLCOMPRESSION"},
	{"sslcert", "PGSSLCERT"}, {"sslkey", "PGSSLKEY"}, {"sslpassword", ""}, {"sslcertmode", "PGSSLCERTMODE"},
	{"sslrootcert", "PGSSLROOTCERT"}, {"sslcrl", "PGSSLCRL"}, {"sslcrldir", "PGSSLCRLDIR"}, {"sslsni", "PGSSLSNI"},
	{"requirepeer", "PGREQUIREPEER"}, {"ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"},
	{"ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"}, {"krbsrvname", "PGKRBSRVNAME"},
	{"gsslib", "PGGSSLIB"}, {"gssdelegation", "PGGSSDELEGATION"}, {"service", "PGSERVICE"},
	{"target_session_attrs", "PGTARGETSESSIONATTRS"}, {"load_balance_hosts", "PGLOADBALANCEHOSTS"},
}

func pgKnownKeyword(k string) bool {
	return k == "requiressl" || slices.ContainsFunc(pgKeywords, func(kw [2]string) bool { return kw[0] == k })
}

// pgParams are a connection string's parameters by key word.
type pgParams map[string]string

// pgEmptyPassword is no key word: it keeps the start-up error for an empty
// password in a URL (user:@host, ?password=), which a template filled from
// an unset variable writes, unless the password property gives one.
const pgEmptyPassword = "\x00empty password"

// set stores one parameter as libpq's conninfo_storeval does: requiressl is
// the old spelling of sslmode=require (or prefer).
func (p pgParams) set(key, value string, uri bool) error {
	if key == "requiressl" {
		key, value = "sslmode", map[bool]string{true: "require", false: "prefer"}[strings.HasPrefix(value, "1")]
	}
	if !pgKnownKeyword(key) {
		what := "connection option"
		if uri {
			what = "URI query parameter"
		}
		return errorf("unknown %s %s: libpq refuses the string (want one of libpq's parameter key words)", what, pgKeyName(key))
	}
	p[key] = value
	return nil
}

func pgIsURI(s string) bool {
	return strings.HasPrefix(s, "postgresql://") || strings.HasPrefix(s, "postgres://")
}

// pgKeywordError is a keyword/value string that could not be read: the
// string itself is not shown with it, since a password whose quotes are
// missing or broken would show through any redaction.
type pgKeywordError struct{ error }

func (e pgKeywordError) Unwrap() error { return e.error }

// parsePGKeywords reads the keyword/value form: key = value pairs separated
// by white space, a value in single quotes when it holds white space, and
// \' and \\ escapes in either (libpq's conninfo_parse).
func parsePGKeywords(s string) (pgParams, error) {
	p, err := parsePGKeywordsAt(s, nil)
	if err != nil {
		return nil, pgKeywordError{err}
	}
	return p, nil
}

// parsePGKeywordsAt is parsePGKeywords that also tells at, for each pair,
// where its value stands in s (quotes included), for the fuzz test of
// redaction.
func parsePGKeywordsAt(s string, at func(key string, from, to int)) (pgParams, error) {
	p := pgParams{}
	prev := "" // the key before, to say where a problem is without quoting a value
	afterPassword := false
	for i := 0; ; {
		for i < len(s) && cSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return p, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !cSpace(s[i]) {
			i++
		}
		key := s[start:i]
		for i < len(s) && cSpace(s[i]) {
			i++
		}
		if i == len(s) || s[i] != '=' {
			if prev == "" {
				return nil, errors.New("the keyword/value string does not start with key=value (want key=value pairs separated by spaces)")
			}
			return nil, errorf("a word without = follows the value of %s (want key=value pairs separated by spaces; a value with spaces goes in single quotes)", pgKeyName(prev))
		}
		i++
		for i < len(s) && cSpace(s[i]) {
			i++
		}
		valueFrom := i
		value, end, closed := pgKeywordValue(s, i)
		if !closed {
			return nil, errorf("the value of %s has no closing single quote", pgKeyName(key))
		}
		i = end
		if at != nil {
			at(key, valueFrom, i)
		}
		if afterPassword && !pgKnownKeyword(key) {
			// password=ab cd=ef: cd may be the rest of a password
			// whose quotes are missing.
			return nil, errors.New("unknown connection option after the password (not shown: it may be part of the password): libpq refuses the string (want one of libpq's parameter key words; a password with spaces goes in single quotes)")
		}
		if err := p.set(key, value, false); err != nil {
			return nil, err
		}
		if key == "password" && value == "" {
			p[pgEmptyPassword] = "the password key word must not be empty: leave it out for no password"
		}
		afterPassword = afterPassword || secretKey(key)
		prev = key
	}
}

// pgKeywordValue reads the value that starts at s[i]: in single quotes, or
// up to white space, with \ escaping the next byte in either. end is where
// it stops; closed is false for a quote that never closes.
func pgKeywordValue(s string, i int) (value string, end int, closed bool) {
	var b strings.Builder
	quoted := i < len(s) && s[i] == '\''
	if quoted {
		i++
	}
	for i < len(s) && (quoted || !cSpace(s[i])) {
		c := s[i]
		i++
		switch {
		case c == '\\':
			if i < len(s) {
				b.WriteByte(s[i])
				i++
			}
		case c == '\'' && quoted:
			return b.String(), i, true
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), i, !quoted
}

// pgKeyName quotes a key for an error when it reads as a key word; anything
// else may be a piece of a password whose quotes are missing.
func pgKeyName(key string) string {
	if len(key) <= 40 && key != "" && strings.Trim(key, "abcdefghijklmnopqrstuvwxyz0123456789_") == "" {
		return quoteString(key)
	}
	return "a key (not shown: it may be part of a password)"
}

// parsePGURI reads postgres[ql]://[user[:password]@][netloc][:port][,...][/dbname][?param=value&...]
// as libpq's conninfo_uri_parse_options does: the user information runs to
// the FIRST @ (before any /), hosts and ports to , / ?, the database name
// to ?, and every part is percent-decoded.
func parsePGURI(s string) (pgParams, error) {
	p := pgParams{}
	_, rest, _ := strings.Cut(s, "://")
	if end := strings.IndexAny(rest, "@/"); end >= 0 && rest[end] == '@' {
		if err := p.uriUserinfo(rest[:end]); err != nil {
			return nil, err
		}
		rest = rest[end+1:]
	}
	rest, err := p.uriHosts(rest)
	if err != nil {
		return nil, err
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	if db := strings.TrimPrefix(path, "/"); db != "" {
		if err := p.decoded("dbname", db, "the database name"); err != nil {
			return nil, err
		}
	}
	if !hasQuery {
		return p, nil
	}
	if err := p.uriQuery(query); err != nil {
		return nil, err
	}
	return p, nil
}

// uriUserinfo reads user[:password], the part before the first @.
func (p pgParams) uriUserinfo(userinfo string) error {
	user, password, hasPassword := strings.Cut(userinfo, ":")
	if user != "" {
		if err := p.decoded("user", user, "the user name"); err != nil {
			return err
		}
	}
	if hasPassword && password != "" {
		if err := p.decoded("password", password, "the password"); err != nil {
			return err
		}
	}
	if hasPassword && password == "" {
		p["password"] = "" // user:@host: refused later, unless given elsewhere
		p[pgEmptyPassword] = errEmptyPassword.Error()
	}
	return nil
}

// uriHosts reads the comma list of host[:port] into host and port, and
// returns what follows it.
func (p pgParams) uriHosts(rest string) (string, error) {
	var hosts, ports []string
	for {
		host, port, after, err := pgURIHost(rest)
		if err != nil {
			return "", err
		}
		hosts, ports, rest = append(hosts, host), append(ports, port), after
		if !strings.HasPrefix(rest, ",") {
			break
		}
		rest = rest[1:]
	}
	if h := strings.Join(hosts, ","); h != "" {
		if err := p.decoded("host", h, "the host"); err != nil {
			return "", err
		}
	}
	if pt := strings.Join(ports, ","); pt != "" {
		if err := p.decoded("port", pt, "the port"); err != nil {
			return "", err
		}
	}
	return rest, nil
}

// pgURIHost reads one host (a name, or an IPv6 address in brackets) and
// its :port, if any, and returns what follows them.
func pgURIHost(rest string) (host, port, after string, err error) {
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		switch {
		case end < 0:
			return "", "", "", errors.New("missing ] after the IPv6 address")
		case end == 1:
			return "", "", "", errors.New("an empty IPv6 address in brackets")
		}
		host, rest = rest[1:end], rest[end+1:]
		if rest != "" && !strings.ContainsRune(":/?,", rune(rest[0])) {
			return "", "", "", errors.New("want :port, /, ? or , after the ] of an IPv6 address")
		}
	} else {
		end := strings.IndexAny(rest, ":/?,")
		if end < 0 {
			end = len(rest)
		}
		host, rest = rest[:end], rest[end:]
	}
	if strings.HasPrefix(rest, ":") {
		end := strings.IndexAny(rest[1:], "/?,") + 1
		if end == 0 {
			end = len(rest)
		}
		port, rest = rest[1:end], rest[end:]
	}
	return host, port, rest, nil
}

// uriQuery reads the ?key=value&... parameters, each percent-decoded.
func (p pgParams) uriQuery(query string) error {
	for query != "" {
		param, next, _ := strings.Cut(query, "&")
		query = next
		key, value, ok := strings.Cut(param, "=")
		if !ok {
			return errors.New("a URI query parameter without =: want key=value&key=value")
		}
		if strings.Contains(value, "=") {
			return errors.New("a URI query parameter with a second =: percent-encode it as %3D")
		}
		k, err := pgUnescape(key)
		if err != nil {
			return errorf("a URI query parameter's name: %v", err)
		}
		v, err := pgUnescape(value)
		if err != nil {
			return errorf("the value of the URI query parameter %s: %v", quoteString(serverText(k, 40)), err)
		}
		if k == "ssl" && v == "true" { // libpq's JDBC compatibility
			k, v = "sslmode", "require"
		}
		if k == "password" && v == "" {
			p[pgEmptyPassword] = "the password parameter must not be empty: leave it out for no password"
		}
		if err := p.set(k, v, true); err != nil {
			return err
		}
	}
	return nil
}

func (p pgParams) decoded(key, value, what string) error {
	v, err := pgUnescape(value)
	if err != nil {
		return errorf("%s: %v", what, err)
	}
	p[key] = v
	return nil
}

// pgUnescape is libpq's percent-decoding: %XX only (+ stays +), and no %00.
func pgUnescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", errors.New("a % not followed by two hex digits (write % as %25)")
		}
		v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if v == 0 {
			return "", errors.New("%00 is not allowed")
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// withEnvironment fills what the string leaves out from libpq's environment
// variables (an empty variable counts as unset, as in libpq).
func (p pgParams) withEnvironment(getenv func(string) string) {
	for _, kw := range pgKeywords {
		if _, ok := p[kw[0]]; ok || kw[1] == "" {
			continue
		}
		if v := getenv(kw[1]); v != "" {
			p[kw[0]] = v
		}
	}
}

// pgPassfileWarning says why a password file was not read.
type pgPassfileWarning string

// pgPassfilePassword looks a password up in the password file: lines of
// hostname:port:database:username:password, * matching anything in the
// first four, \: and \\ escapes, # comments; the first match wins. libpq
// ignores a file that group or others may read, with a warning: then the
// password found is not returned, only the warning.
func pgPassfilePassword(path, host, port, database, user string) (string, pgPassfileWarning) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return "", ""
	}
	pw := pgPassfileLookup(f, host, port, database, user)
	if pw != "" && info.Mode().Perm()&0o077 != 0 {
		return "", pgPassfileWarning("password file " + quoteString(path) + " has group or world access, so libpq ignores it; permissions should be u=rw (0600) or less")
	}
	return pw, ""
}

func pgPassfileLookup(f io.Reader, host, port, database, user string) string {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<16)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		rest, ok := line, true
		for _, want := range []string{host, port, database, user} {
			if rest, ok = pgPassfileField(rest, want); !ok {
				break
			}
		}
		if !ok {
			continue
		}
		// The password runs to an unescaped : or the end of the line.
		var pw strings.Builder
		for i := 0; i < len(rest) && rest[i] != ':'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
			}
			pw.WriteByte(rest[i])
		}
		return pw.String()
	}
	return ""
}

// pgPassfileField matches the field at the start of line against want and
// returns what follows its colon.
func pgPassfileField(line, want string) (string, bool) {
	if strings.HasPrefix(line, "*:") {
		return line[2:], true
	}
	var field strings.Builder
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && i+1 < len(line):
			i++
			field.WriteByte(line[i])
		case c == ':':
			return line[i+1:], field.String() == want
		default:
			field.WriteByte(c)
		}
	}
	return "", false
}

// pgHomeFile is a file under ~/ (libpq's ~/.pgpass, ~/.postgresql/...).
func pgHomeFile(name string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, name)
}
