package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Setenv("PP_TEST_HOST", "db.internal:5432")
	t.Setenv("PP_TEST_EMPTY", "")
	t.Setenv("PP_TESTDATA", "testdata")
	// One trailing newline, as a Secret or echo leaves it, is not the value.
	t.Setenv("PP_TEST_NEWLINE", "pw\n")
	t.Setenv("PP_TEST_CRLF", "pw\r\n")
	t.Setenv("PP_TEST_TWO_NEWLINES", " pw\n\n")
	dir := t.TempDir()
	whole := filepath.Join(dir, "token")
	if err := os.WriteFile(whole, []byte("  secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ ref, want string }{
		{"localhost:5432", "localhost:5432"},
		{"http://example.com:80/x", "http://example.com:80/x"},
		{"tcp://db:5432", "tcp://db:5432"},
		{"unknown:thing", "unknown:thing"},
		{"env:PP_TEST_HOST", "db.internal:5432"},
		{"env:PP_TEST_EMPTY", ""},
		{"env:PP_TEST_NEWLINE", "pw"},
		{"env:PP_TEST_CRLF", "pw"},
		{"env:PP_TEST_TWO_NEWLINES", " pw\n"},
		{"file:" + whole, "secret-token"},
		{"file:testdata/app.env//DB_HOST", "db.internal"},
		{"file:testdata/app.env//DB_PORT", "5432"},
		{"file:testdata/app.env//DB_PASSWORD", "s3cret value"},
		{"file:testdata/app.env//SINGLE", "single"},
		{"file:testdata/app.env//EQUALS", "a=b=c"},
		{"file:$PP_TESTDATA/app.env//DB_HOST", "db.internal"},
		{"file:${PP_TESTDATA}/app.env//DB_HOST", "db.internal"},
		{"json:testdata/app.json//database.host", "db.internal"},
		{"json:testdata/app.json//database.port", "5432"},
		{"json:testdata/app.json//database.ratio", "1.50"},
		{"json:testdata/app.json//database.tls", "true"},
		{"json:testdata/app.json//big", "12345678901234567890"},
		{"json:testdata/app.json//servers.0.host", "a.internal"},
		{"json:testdata/app.json//servers.1.tags", `["x","y"]`},
		{"json:testdata/app.json//servers.1", `{"host":"b.internal","tags":["x","y"]}`},
		{"yaml:testdata/app.yaml//server.port", "8080"},
		{"yaml:testdata/app.yaml//server.host", "web.internal"},
		{"yaml:testdata/app.yaml//server.ratio", "1.5"},
		{"yaml:testdata/app.yaml//server.enabled", "true"},
		{"yaml:testdata/app.yaml//server.started", "2024-01-02T03:04:05Z"},
		{"yaml:testdata/app.yaml//servers.1.host", "b.internal"},
		{"yaml:testdata/app.yaml//servers.1.tags", `["x","y"]`},
		{"yaml:testdata/app.yaml//1", "numeric-key"},
		{"ini:testdata/app.ini//database.host", "db.internal"},
		{"ini:testdata/app.ini//database.port", "5432"},
		{"ini:testdata/app.ini//database.password", "p@ss word"},
		{"ini:testdata/app.ini//database.name", "quoted"},
		{"ini:testdata/app.ini//database.dotted.key", "yes"},
		{"ini:testdata/app.ini//top", "level"},
		{"ini:testdata/app.ini//url", "http://before.section"},
	} {
		got, err := resolve(tc.ref)
		if err != nil {
			t.Errorf("resolve(%q): %v", tc.ref, err)
			continue
		}
		if got != tc.want {
			t.Errorf("resolve(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badJSON := write("bad.json", `{"a": `)
	twoJSON := write("two.json", `{} {}`)
	badYAML := write("bad.yaml", "a: [b\n")
	badEnv := write("bad.env", "GOOD=1\nthis line has no equals\n")
	badINI := write("bad.ini", "[section\nkey=value\n")

	for _, tc := range []struct{ ref, want string }{
		{"env:PP_TEST_SURELY_UNSET", "environment variable PP_TEST_SURELY_UNSET is not set"},
		{"env:", "env: needs a variable name"},
		{"file:", "file: needs a file path, e.g. file:/run/secrets/token"},
		{"json:", "json: needs a file path, e.g. json:/config/app.json//key"},
		{"file:/nonexistent/portpatrol", "file:/nonexistent/portpatrol: no such file or directory"},
		{"file:" + dir, "file:" + dir + ": is a directory"},
		{"json:" + dir + "//a", "json:" + dir + ": is a directory"},
		{"file:testdata/app.env//NOPE", `file:testdata/app.env: no key "NOPE"`},
		{"file:testdata/app.env//", "file:testdata/app.env: nothing after //"},
		{"yaml:testdata/app.yaml//", "yaml:testdata/app.yaml: nothing after //"},
		{"file:" + badEnv + "//GOOD", "line 2: want KEY=VALUE"},
		{"file:$PP_TEST_SURELY_UNSET/x//k", "environment variable PP_TEST_SURELY_UNSET is not set"},
		{"json:" + badJSON + "//a", badJSON + ": not valid JSON"},
		{"json:" + twoJSON + "//a", "more than one value"},
		{"json:testdata/app.json//database.nope", `no key "database.nope"`},
		{"json:testdata/app.json//servers.5.host", `"servers.5": index 5 is out of range (the array ends at index 1)`},
		{"json:testdata/app.json//servers.first", `"servers" is an array, index it with a number`},
		{"json:testdata/app.json//servers.-1", `index it with a number`},
		{"json:testdata/app.json//database.host.x", `"database.host" is a single value, it has no key "x"`},
		{"json:testdata/app.json//database..host", `json:testdata/app.json: path "database..host" has an empty segment after "database"`},
		{"json:testdata/app.json//database.", `path "database." has an empty segment after "database"`},
		{"yaml:testdata/app.yaml//.server", `yaml:testdata/app.yaml: path ".server" has an empty segment at its start`},
		{"yaml:testdata/app.yaml//server..port", `path "server..port" has an empty segment after "server"`},
		{"json:testdata/app.json//database.replica", `"database.replica" is null`},
		{"yaml:" + badYAML + "//a", badYAML + ": not valid YAML"},
		{"yaml:testdata/app.yaml//server.nope", `no key "server.nope"`},
		{"yaml:testdata/app.yaml//server.empty", "is null"},
		{"ini:" + badINI + "//section.key", "ini:" + badINI + ": line 1: section header is missing its closing ]"},
		{"ini:testdata/app.ini//database.nope", `no key "nope" in section [database]`},
		{"ini:testdata/app.ini//nosuch.key", "no section [nosuch]"},
		{"ini:testdata/app.ini//host", `no key "host" before the first section`},
	} {
		_, err := resolve(tc.ref)
		if err == nil {
			t.Errorf("resolve(%q) succeeded, want an error containing %q", tc.ref, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("resolve(%q) = %q, want it to contain %q", tc.ref, err, tc.want)
		}
	}
}

// A failed lookup must not print what it read: the file may hold secrets.
func TestResolveErrorsHideValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(p, []byte(`{"password": "hunter2", "nested": {"token": "hunter2"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"json:" + p + "//password.x", "json:" + p + "//nested.nope", "json:" + p + "//password.0"} {
		_, err := resolve(ref)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("resolve(%q) = %v: want an error without the value", ref, err)
		}
	}
}

func TestResolveSpec(t *testing.T) {
	t.Setenv("PP_TEST_TOKEN", "Bearer abc")
	opts, err := parseArgs([]string{"--http.w.address=env:PP_TEST_ADDR", "--http.w.header=Authorization=env:PP_TEST_TOKEN", "--http.w.body=env:PP_TEST_BODY"})
	if err != nil {
		t.Fatal(err)
	}
	_, errs := buildTarget(opts.targets[0])
	if len(errs) != 2 {
		t.Fatalf("got errors %v, want two: the address and the body", errs)
	}
	if !strings.Contains(errs[0].Error(), "--http.w.address: environment variable PP_TEST_ADDR is not set") ||
		!strings.Contains(errs[1].Error(), "--http.w.body: environment variable PP_TEST_BODY is not set") {
		t.Errorf("errors = %v", errs)
	}
	c := httpCheckFor(t, "--http.w.address=http://x", "--http.w.header=Authorization=env:PP_TEST_TOKEN")
	if got := c.header.Get("Authorization"); got != "Bearer abc" {
		t.Errorf("header value = %q, want it resolved", got)
	}
}

func FuzzLookupJSON(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":"x"}]}}`), "a.b.1.c")
	f.Add([]byte(`[1,2]`), "0")
	f.Add([]byte(`{"a":null}`), "a")
	f.Add([]byte(`{"a":1e400}`), "a")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		lookupJSON(data, path)
	})
}

func FuzzLookupYAML(f *testing.F) {
	f.Add([]byte("a:\n  b:\n    - 1\n    - c: x\n"), "a.b.1.c")
	f.Add([]byte("1: x\n"), "1")
	f.Add([]byte("a: !!binary aGk=\n"), "a")
	f.Add([]byte("a: &x [*x]\n"), "a")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		lookupYAML(data, path)
	})
}

// A pair written into a KEY=VALUE file among others reads back as written,
// trimmed and unquoted; any other content never panics.
func FuzzLookupKeyValue(f *testing.F) {
	f.Add("B", ` "two" `, []byte("A=1\n# c\n"))
	f.Add("export", "x", []byte("export A = 1\n"))
	f.Add("K", "'a b'", []byte("\n\n"))
	f.Fuzz(func(t *testing.T, key, value string, other []byte) {
		lookupKeyValue(other, key)
		key = strings.TrimSpace(key)
		if key == "" || strings.ContainsAny(key, "=\n\r") || strings.ContainsAny(value, "\n\r") ||
			strings.HasPrefix(key, "#") || strings.HasPrefix(key, "export ") {
			return
		}
		data := "FIRST=1\n" + key + "=" + value + "\nLAST=2\n"
		got, err := lookupKeyValue([]byte(data), key)
		want := unquote(strings.TrimSpace(value))
		if key == "FIRST" || key == "LAST" {
			return // a later line wins
		}
		if err != nil || got != want {
			t.Fatalf("lookup %q in %q = %q, %v; want %q", key, data, got, err, want)
		}
	})
}

func TestIsReference(t *testing.T) {
	for v, want := range map[string]bool{
		"env:DB": true, "file:/x": true, "json:/a//b": true, "yaml:/a": true, "ini:/a//s.k": true,
		"db:5432": false, "http://x/": false, "tcp://db:1": false, "localhost": false, "": false,
		// A bare word is a value (a header X-Format=json, an ICMP host env).
		"env": false, "file": false, "json": false, "yaml": false, "ini": false,
	} {
		if got := isReference(v); got != want {
			t.Errorf("isReference(%q) = %v, want %v", v, got, want)
		}
	}
}

// Windows editors start UTF-8 files with a byte order mark; it is not part
// of the value, whichever kind of file reference reads it.
func TestResolveByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("\ufeff"+content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("token", "Bearer t0k3n\n")
	env := write("app.env", "TOKEN=Bearer t0k3n\n")
	js := write("app.json", `{"token": "Bearer t0k3n"}`)
	yml := write("app.yaml", "token: Bearer t0k3n\n")
	ini := write("app.ini", "token = Bearer t0k3n\n")
	for _, ref := range []string{
		"file:" + token, "file:" + env + "//TOKEN", "json:" + js + "//token", "yaml:" + yml + "//token", "ini:" + ini + "//token",
	} {
		got, err := resolve(ref)
		if err != nil || got != "Bearer t0k3n" {
			t.Errorf("resolve(%q) = %q, %v; want %q", ref, got, err, "Bearer t0k3n")
		}
	}
	for _, ref := range []string{"json:" + js, "yaml:" + yml, "ini:" + ini} {
		if got, err := resolve(ref); err != nil || strings.HasPrefix(got, "\ufeff") {
			t.Errorf("resolve(%q) = %q, %v; want the whole file without the mark", ref, got, err)
		}
	}
}

// YAML scalars come back as written, as JSON numbers do, not as YAML would
// type them: a version 1.10 is not 1.1, a mode 0755 not 493.
func TestResolveYAMLScalarsAsWritten(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.yaml")
	doc := `version: 1.10
whole: 1.0
mode: 0755
mask: 0x1F
day: 2024-01-01
at: 2024-01-02T03:04:05.000+01:00
quoted: "0755"
tagged: !!str 1.10
plain: yes
base: &base
  port: 05432
  host: base.internal
db:
  <<: *base
  host: db.internal
list: [1.10, 0755, 2024-01-01, x, null, 5]
`
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"version", "1.10"},
		{"whole", "1.0"},
		{"mode", "0755"},
		{"mask", "0x1F"},
		{"day", "2024-01-01"},
		{"at", "2024-01-02T03:04:05.000+01:00"},
		{"quoted", "0755"},
		{"tagged", "1.10"},
		{"plain", "yes"},
		{"db.port", "05432"},
		{"db.host", "db.internal"},
		{"list.0", "1.10"},
		{"list.2", "2024-01-01"},
		{"list", `[1.10,493,"2024-01-01","x",null,5]`},
		{"db", `{"host":"db.internal","port":2842}`}, // JSON needs a number: YAML reads 05432 as octal
	} {
		got, err := resolve("yaml:" + p + "//" + tc.path)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	if _, err := resolve("yaml:" + p + "//list.4"); err == nil || !strings.Contains(err.Error(), `"list.4" is null`) {
		t.Errorf("list.4: %v, want null to be an error", err)
	}
}

// In .env and INI files only whole lines are comments: a " # ..." or " ; ..."
// after a value is part of the value, as the README says.
func TestResolveInlineCommentIsValue(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "app.env")
	ini := filepath.Join(dir, "app.ini")
	if err := os.WriteFile(env, []byte("HOST=db # primary\nQUOTED=\"db\" # primary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ini, []byte("[db]\nhost = db ; primary\nport = 5432 # default\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"file:" + env + "//HOST":   "db # primary",
		"file:" + env + "//QUOTED": `"db" # primary`,
		"ini:" + ini + "//db.host": "db ; primary",
		"ini:" + ini + "//db.port": "5432 # default",
	} {
		if got, err := resolve(ref); err != nil || got != want {
			t.Errorf("resolve(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
}

// A bare word that happens to name a kind of reference is a literal value.
func TestResolveBareKindIsLiteral(t *testing.T) {
	for _, v := range []string{"env", "file", "json", "yaml", "ini"} {
		if got, err := resolve(v); err != nil || got != v {
			t.Errorf("resolve(%q) = %q, %v; want it literally", v, got, err)
		}
	}
}

// A file that does not parse is named with the position of the problem, and
// nothing of what it holds: a parser's message may quote the character it
// stopped at, a key or an anchor, and that may be part of a secret.
func TestParseErrorsHideTheContent(t *testing.T) {
	dir := t.TempDir()
	const secret = "~§¶Zq" // none of it appears in a path or a message of ours
	for _, tc := range []struct {
		kind, name, content, want string
	}{
		{"json", "tok", "Bearer tok123", "not valid JSON: syntax error at byte 1 (line 1)"},
		{"json", "char.json", "{\"a\": \"x\",\n \"b\": " + secret + "}", "not valid JSON: syntax error at byte 18 (line 2)"},
		{"json", "control.json", "{\"a\": \"" + secret + "\x01\"}", "not valid JSON: syntax error at byte 15 (line 1)"},
		{"json", "open.json", "{\"a\": \"" + secret, "not valid JSON: the file ends inside a value"},
		{"json", "empty.json", "", "not valid JSON: the file holds no value"},
		// yaml.v3 names the line where the flow began, counted from 0.
		{"yaml", "flow.yaml", "a: b\nc: [" + secret + "\n", "not valid YAML: syntax error at line 1"},
		{"yaml", "quote.yaml", "a: \"" + secret + "\n", "not valid YAML: syntax error at line 2"},
		{"yaml", "colon.yaml", "a: b\nc: " + secret + ": x\n", "not valid YAML: syntax error at line 2"},
		{"yaml", "tab.yaml", "a:\n\t" + secret + "\n", "not valid YAML: syntax error at line 2"},
		{"yaml", "twice.yaml", secret + ": 1\n" + secret + ": 2\n", "not valid YAML: a repeated key or a bad alias at line 2"},
		{"yaml", "anchor.yaml", "a: 1\nb: *" + secret + "\n", "not valid YAML:"},
		{"ini", "section.ini", "[" + secret + "\n", "line 1: section header is missing its closing ]"},
		{"ini", "words.ini", "a = 1\n" + secret + "\n", "line 2: want key = value"},
		{"ini", "nokey.ini", "=" + secret + "\n", "line 1: missing key"},
		{"file", "bad.env", "A=1\n" + secret + "\n", "line 2: want KEY=VALUE"},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := resolve(tc.kind + ":" + p + "//a.b")
		if err == nil {
			t.Errorf("%s: resolved, want an error", tc.name)
			continue
		}
		got := err.Error()
		if !strings.HasPrefix(got, tc.kind+":"+p+": ") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: error %q, want it to name %s:%s and contain %q", tc.name, got, tc.kind, p, tc.want)
		}
		for _, leak := range []string{"~", "§", "¶", "Zq", "'B'", "Bearer", "tok123", `\x01`, `\u0001`} {
			if strings.Contains(got, leak) {
				t.Errorf("%s: error %q quotes the file's content (%q)", tc.name, got, leak)
			}
		}
	}
}

// End to end, as a user met it: a header read from a file that is not JSON.
func TestParseErrorHidesTheContentEndToEnd(t *testing.T) {
	t.Parallel()
	tok := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tok, []byte("Bearer tok123"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := runPortpatrol(t, nil, "--log-level=debug", "--http.a.address=http://127.0.0.1:1/", "--http.a.header=Authorization=json:"+tok+"//a.b")
	o.mustExit(t, 2)
	want := "--http.a.header Authorization: json:" + tok + ": not valid JSON: syntax error at byte 1 (line 1)"
	if !strings.Contains(o.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
	}
	for _, leak := range []string{"'B'", "Bearer", "tok123"} {
		if strings.Contains(o.stdout+o.stderr, leak) {
			t.Errorf("output quotes the file (%q):\n%s", leak, o.stderr)
		}
	}
}
