package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzPGKeywords: the keyword/value parser ends in parameters or an error,
// never quotes a password in the error, and every password value it reads
// lies where the redaction of the string hides it.
func FuzzPGKeywords(f *testing.F) {
	for _, s := range []string{
		"host=db port=5432 user=app password='a b' dbname=shop",
		"password = s3cr3t host=db",
		`password='it\'s \\ x' host=db`,
		"password=s3 cr3t host=db",
		"host='unterminated password=x",
		"sslpassword=k password= host=x",
		"host=db\tpassword\n=\vx y",
		`password=a\ b=c host=x`,
		"host=127.0.0.1 user=app password='it's a secret' dbname=shop",
		"password='Sek'r1tK'",
		"password='abc'def",
		"host=127.0.0.1 password Sekr1tK",
		"host=db password=ab cd=ef",
		"password Sekr1tK",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var spans [][2]int
		p, err := parsePGKeywordsAt(s, func(key string, from, to int) {
			if secretKey(key) && from < to {
				spans = append(spans, [2]int{from, to})
			}
		})
		if err != nil {
			if pw := p["password"]; pw != "" && strings.Contains(err.Error(), pw) {
				t.Fatalf("%q: the error %q shows the password", s, err)
			}
			pgNoWordAfterPassword(t, s)
			return
		}
		hidden := secretParams(s)
		for _, v := range spans {
			covered := false
			for _, h := range hidden {
				covered = covered || h[0] <= v[0] && v[1] <= h[1]
			}
			if !covered {
				t.Fatalf("%q: the value at %v is not within a redacted span %v: %q", s, v, hidden, redactSecretParams(s))
			}
		}
	})
}

// pgNoWordAfterPassword: the start-up error for a keyword/value string
// that cannot be read, as the user sees it, shows no word that follows
// "password" in it (other than libpq's key words): each is made a run of
// Qs, which no error text holds, and the error must hold no QQ.
func pgNoWordAfterPassword(t *testing.T, s string) {
	at := strings.Index(strings.ToLower(s), "password")
	if at < 0 || strings.ContainsRune(s, 0) {
		return
	}
	b := []byte(s)
	word := func(c byte) bool {
		return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	for i := at + len("password"); i < len(b); {
		j := i
		for j < len(b) && word(b[j]) {
			j++
		}
		if j == i {
			i++
			continue
		}
		if !pgKnownKeyword(string(b[i:j])) {
			copy(b[i:j], strings.Repeat("Q", j-i))
		}
		i = j
	}
	masked := strings.TrimSpace(string(b)) // as buildTarget trims an address
	if _, err := parsePGAddress(masked); err == nil {
		return
	} else if _, ok := errors.AsType[pgKeywordError](err); !ok {
		return
	}
	opts, err := parseArgs([]string{"--postgres.x.address=" + masked})
	if err != nil {
		return
	}
	_, err = buildTargets(opts.targets, newLogger(opts, io.Discard))
	if err == nil {
		t.Fatalf("%q: no start-up error", masked)
	}
	if strings.Contains(err.Error(), "QQ") {
		t.Fatalf("%q: the start-up error shows a word that follows the password: %v", masked, err)
	}
}

func TestPGKeywordsRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"host=db password='a b' dbname=shop":       "host=db password=xxxxx dbname=shop",
		"host=db password = s3cr3t dbname=shop":    "host=db password = xxxxx dbname=shop",
		`host=db password='it\'s x' dbname=shop`:   "host=db password=xxxxx dbname=shop",
		"host=db password='a b":                    "host=db password=xxxxx",
		"host=db password=s3 cr3t dbname=shop":     "host=db password=xxxxx dbname=shop",
		"password=s3 cr3t":                         "password=xxxxx",
		"postgres://db/x?password=a&sslmode=allow": "postgres://db/x?password=xxxxx&sslmode=allow",
	} {
		if got := redactSecretParams(in); got != want {
			t.Errorf("redactSecretParams(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPGPassfile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
		return path
	}
	pass := write("pgpass", "# comment\n"+
		"db:5432:shop:app:first\n"+
		"db:5432:shop:app:second\n"+
		`we\:ird:*:*:app:pa\:ss\\word:ignored`+"\n"+
		"*:6000:*:*:any-host\r\n"+
		"localhost:5432:*:sock:from-localhost\n", 0o600)
	for _, tc := range []struct{ host, port, db, user, want string }{
		{"db", "5432", "shop", "app", "first"},
		{"db", "5432", "other", "app", ""},
		{"we:ird", "1", "x", "app", `pa:ss\word`},
		{"anything", "6000", "x", "y", "any-host"},
		{"localhost", "5432", "x", "sock", "from-localhost"},
		{"db", "5433", "shop", "app", ""},
	} {
		if got, warning := pgPassfilePassword(pass, tc.host, tc.port, tc.db, tc.user); got != tc.want || warning != "" {
			t.Errorf("%v: %q (%s), want %q", tc, got, warning, tc.want)
		}
	}
	open := write("pgpass-open", "*:*:*:*:pw\n", 0o640)
	if got, warning := pgPassfilePassword(open, "db", "5432", "x", "y"); got != "" || !strings.Contains(string(warning), "has group or world access") {
		t.Errorf("a group-readable file: %q, %q", got, warning)
	}
	if got, warning := pgPassfilePassword(filepath.Join(dir, "none"), "db", "5432", "x", "y"); got != "" || warning != "" {
		t.Errorf("no file: %q, %q", got, warning)
	}

	// Through the whole reading: PGPASSFILE, then ~/.pgpass.
	t.Setenv("HOME", dir)
	write(".pgpass", "db:5432:*:app:from-home\n", 0o600)
	for _, tc := range []struct {
		conn string
		env  map[string]string
		want string
	}{
		{"postgres://app@db/x", nil, "from-home"},
		{"postgres://app@db/shop", map[string]string{"PGPASSFILE": pass}, "first"},
		{"host=db user=app dbname=shop passfile=" + pass, nil, "first"},
		{"postgres://app:given@db/x", nil, "given"},
		{"postgres://app@db/x", map[string]string{"PGPASSWORD": "env"}, "env"},
		{"postgres://other@db/x", nil, ""},
		{"postgres://app@db/x", map[string]string{"PGPASSFILE": write("pgpass-open2", "*:*:*:app:pw\n", 0o644)}, ""},
	} {
		open := tc.env["PGPASSFILE"] != "" && strings.HasSuffix(tc.env["PGPASSFILE"], "open2")
		c, err := pgBuild(tc.conn, tc.env)
		if err != nil {
			t.Fatalf("%q: %v", tc.conn, err)
		}
		// A file libpq ignores gives no password, so no login: the
		// verdict is pg_isready's, as libpq's without a password.
		if got := c.hosts[0].password; got != tc.want || c.login != (tc.want != "") {
			t.Errorf("%q %v: password %q (login %v), want %q", tc.conn, tc.env, got, c.login, tc.want)
		}
		if ignored := strings.Contains(c.passfileWarning, "has group or world access, so libpq ignores it"); ignored != open {
			t.Errorf("%q %v: passfile warning %q", tc.conn, tc.env, c.passfileWarning)
		}
	}
}

func TestPGSASLprep(t *testing.T) {
	for in, want := range map[string]string{
		"plain-ascii\x01":      "plain-ascii\x01", // ASCII: as it is, as PostgreSQL does
		"Ⅸﬁ":                   "IXfi",            // NFKC
		"a\u00a0b\u2003c":      "a b c",           // non-ASCII spaces
		"so\u00adft\u200bhy":   "softhy",          // mapped to nothing
		"e\u0301":              "é",               // composed
		"x\u0007é":             "x\u0007é",        // a control: prohibited, as it is
		"\ue000é":              "\ue000é",         // private use
		"\u05d0\u05d1":         "\u05d0\u05d1",    // right to left only
		"\u05d0a\u05d1":        "\u05d0a\u05d1",   // mixed: the bidi rule fails, as it is
		"\xff\xfe not utf-8 é": "\xff\xfe not utf-8 é",
	} {
		if got := pgSASLprep(in); got != want {
			t.Errorf("pgSASLprep(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzPGQuery: whatever a server answers the query property with, the
// attempt ends in a reason or ready, reading a bounded amount.
func FuzzPGQuery(f *testing.F) {
	f.Add([]byte("1\x00\x00\x00\x042\x00\x00\x00\x04C\x00\x00\x00\x0aBEGIN\x00"))
	f.Add(append(pgMessage('D', []byte("\x00\x01\x00\x00\x00\x01t")), pgMessage('Z', []byte("T"))...))
	f.Add(append(pgError("42P01", "relation does not exist", ""), pgMessage('Z', []byte("E"))...))
	f.Add(append(pgMessage('D', []byte("\x00\x01\xff\xff\xff\xff")), pgMessage('Z', []byte("T"))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &countingReader{r: bytes.NewReader(data)}
		err := pgCheck{query: "SELECT true"}.readOnlyQuery(struct {
			io.Reader
			io.Writer
		}{c, io.Discard})
		if c.n > 2*pgMaxLoginMessages*(5+pgMaxRow) {
			t.Fatalf("read %d bytes", c.n)
		}
		if err == nil && !bytes.Contains(data, []byte{'Z'}) {
			t.Fatalf("ready without ReadyForQuery")
		}
	})
}

func TestPGTrue(t *testing.T) {
	for v, want := range map[string]bool{"t": true, "true": true, "1": true, "yes": true, "x": true, "2.5": true,
		"f": false, "false": false, "0": false, "0.00": false, "": false, "off": false,
		"no": false, "N": false, " FALSE ": false, " 0.0 ": false, "-0": false, "0e3": false, "on": true, "nan": true} {
		if pgTrue(v) != want {
			t.Errorf("pgTrue(%q) = %v", v, !want)
		}
	}
}

// An @ in a URL's password followed by a : is refused for every URL type:
// libpq reads up to the first @, most clients up to the last.
func TestAtColonPasswordRefused(t *testing.T) {
	var args []string
	for _, a := range []string{"postgres.a=postgresql://app:p@ss:w@db/x", "mysql.a=mysql://app:p@ss:w@db/x",
		"redis.a=redis://app:p@ss:w@db:6379", "amqp.a=amqp://app:p@ss:w@db/", "mongodb.a=mongodb://app:p@ss:w@db/x",
		"http.a=http://app:p@ss:w@db/x"} {
		args = append(args, "--"+strings.Replace(a, "=", ".address=", 1))
	}
	o := runPortpatrol(t, nil, args...)
	o.mustExit(t, 2)
	for _, kind := range []string{"postgres", "mysql", "redis", "amqp", "mongodb", "http"} {
		want := "--" + kind + ".a.address="
		line := ""
		for _, l := range strings.Split(o.stderr, "\n") {
			if strings.HasPrefix(l, "portpatrol: "+want) {
				line = l
			}
		}
		// mongodb has its own words for it (more than one @ before the hosts).
		if !strings.Contains(line, "@") || !strings.Contains(line, "%40") {
			t.Errorf("%s: no start-up error with percent-encoding advice:\n%s", kind, o.stderr)
		}
	}
	if strings.Contains(o.stderr, "ss:w") {
		t.Errorf("the password is shown:\n%s", o.stderr)
	}
	// An @ in the password without a : after it, and one encoded, are as before.
	if err := unencodedPassword("mysql://app:p%40ss:w@db/x", false); err != nil {
		t.Errorf("an encoded @: %v", err)
	}
}

// nfkc against Python's unicodedata on the vectors scripts/saslprep/vectors.py
// wrote: every decomposable code point, and random mixes.
func TestNFKC(t *testing.T) {
	b, err := os.ReadFile("testdata/nfkc.txt")
	if err != nil {
		t.Fatal(err)
	}
	decode := func(hex string) string {
		var r []rune
		for _, f := range strings.Fields(hex) {
			n, err := strconv.ParseUint(f, 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			r = append(r, rune(n))
		}
		return string(r)
	}
	failures := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		in, want, _ := strings.Cut(line, "\t")
		if got := nfkc(decode(in)); got != decode(want) && failures < 20 {
			failures++
			t.Errorf("nfkc(%s) = %+q, want %+q (%s)", in, got, decode(want), want)
		}
	}
}

func TestPGConnectTimeoutCaps(t *testing.T) {
	for conn, want := range map[string]time.Duration{
		"host=db":                      time.Minute,
		"host=db connect_timeout=3":    3 * time.Second,
		"host=db connect_timeout=1":    2 * time.Second, // libpq's least
		"host=db connect_timeout=0":    time.Minute,     // no limit
		"host=db connect_timeout=3600": time.Minute,
	} {
		c, err := pgBuild(conn, nil)
		if err != nil || c.timeout != want {
			t.Errorf("%q: timeout %v (%v), want %v", conn, c.timeout, err, want)
		}
	}
	c, err := pgBuild("host=db", map[string]string{"PGCONNECT_TIMEOUT": "5"})
	if err != nil || c.timeout != 5*time.Second {
		t.Errorf("PGCONNECT_TIMEOUT=5: timeout %v (%v)", c.timeout, err)
	}
}

// FuzzPGURI: the URI parser ends in parameters or an error, and the error
// never quotes the password it read.
func FuzzPGURI(f *testing.F) {
	for _, s := range []string{"postgres://u:pw@h1:1,[::1]:2/db?sslmode=require&password=x", "postgresql://%2Frun:5/x?host=a&port=",
		"postgres://u:p%zz@h/x", "postgres://[::1", "postgres://h/?a", "postgres://h/?a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		s = "postgres://" + strings.TrimPrefix(s, "postgres://")
		p, err := parsePGURI(s)
		if err != nil {
			if _, rest, _ := strings.Cut(s, "://"); strings.Contains(rest, ":") {
				_, pw, _ := strings.Cut(strings.SplitN(rest, "@", 2)[0], ":")
				if len(pw) > 3 && strings.Contains(err.Error(), pw) {
					t.Fatalf("%q: the error %q shows the password", s, err)
				}
			}
			return
		}
		for k := range p {
			if !pgKnownKeyword(k) && k != pgEmptyPassword {
				t.Fatalf("%q: an unknown key %q was kept", s, k)
			}
		}
	})
}

// A require_auth refusal says what was required, ! included.
func TestPGRequireAuthReason(t *testing.T) {
	for _, tc := range []struct {
		value string
		code  uint32
		want  string
	}{
		{"!md5", pgAuthMD5, "require_auth !md5 failed: server requested md5 authentication"},
		{"!md5,!password", pgAuthCleartext, "require_auth !md5,!password failed: server requested password authentication"},
		{"scram-sha-256", pgAuthMD5, "require_auth scram-sha-256 failed: server requested md5 authentication"},
		{"password,md5", pgAuthSASL, "require_auth password,md5 failed: server requested scram-sha-256 authentication"},
	} {
		var c pgCheck
		var err error
		if c.requireAuth, c.requireAuthNot, err = parseRequireAuth(tc.value); err != nil {
			t.Fatal(err)
		}
		if err := c.authAllowed(tc.code, nil, false, false); err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %s", tc.value, err, tc.want)
		}
	}
}

// A keyword/value string that cannot be read is not shown in the start-up
// error: with its quotes broken or missing, no redaction can tell where
// the password ends.
func TestPGMalformedKeywordsHidePassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ address, password, reason string }{
		{"host=127.0.0.1 user=app password='it's a secret' dbname=shop", "s a secret", `a word without = follows the value of "password"`},
		{"host=127.0.0.1 password='Sek'r1tK'", "r1tK", `a word without = follows the value of "password"`},
		{"host=127.0.0.1 password='abc'def", "def", `a word without = follows the value of "password"`},
		{"host=127.0.0.1 password Sekr1tK", "Sekr1tK", `a word without = follows the value of "host"`},
		{"password Sekr1tK", "Sekr1tK", "the keyword/value string does not start with key=value"},
		{"host=127.0.0.1 pass=Sekr1tK", "Sekr1tK", `unknown connection option "pass"`},
		{"host=127.0.0.1 password=ab cd=Sekr1tK", "cd", "unknown connection option after the password (not shown"},
	} {
		o := runPortpatrol(t, nil, "--postgres.db.address="+tc.address)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, "--postgres.db.address (a keyword/value string, not shown: it may hold a password): "+tc.reason) {
			t.Errorf("%q: stderr lacks the reason %s:\n%s", tc.address, tc.reason, o.stderr)
		}
		if strings.Contains(o.stderr, tc.password) {
			t.Errorf("%q: stderr shows %q:\n%s", tc.address, tc.password, o.stderr)
		}
	}
}
