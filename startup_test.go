package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stderrLines are the lines of o.stderr without the final newline's empty one.
func stderrLines(o outcome) []string {
	return strings.Split(strings.TrimSuffix(o.stderr, "\n"), "\n")
}

// hasLine reports whether a line of stderr begins with prefix.
func hasLine(o outcome, prefix string) bool {
	for _, l := range stderrLines(o) {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// Start-up errors show no password and no value of a rejected flag, whatever
// the shape of the mistake: a password holding / or @, a tcp address with a
// user, a flag with one dash or none, a secret value split by the shell.
func TestStartupErrorsNeverEchoSecrets(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil, "--log-level=debug",
		"--http.a.address=http://user:hunter2/pw-SECRET-1@localhost:18080/",
		"--http.b.address=http://user:pa@ss-SECRET-2@localhost:99999/",
		"--tcp.c.address=user:pw-SECRET-3@host:5432",
		"-http.d.body=body-SECRET-4",
		"http.d.header=Authorization=hdr-SECRET-5",
		"-http.d.body", "body-SECRET-6",
		"--http.e.address=http://x/", "--http.e.header", "Authorization=Bearer", "tok-SECRET-7",
		"--http.e.bdy=body-SECRET-8",
	)
	o.mustExit(t, 2)
	if strings.Contains(o.stdout+o.stderr, "SECRET") {
		t.Errorf("a secret leaked:\n%s", o.stderr)
	}
	for _, want := range []string{
		"portpatrol: --http.a.address=http://user:xxxxx@localhost:18080/: not a valid URL",
		"portpatrol: --http.b.address=http://user:xxxxx@localhost:99999/: the port must be",
		"portpatrol: --tcp.c.address=user:xxxxx@host:5432: want host:port: a tcp address has no user or password",
		"portpatrol: unknown flag -http.d.body=…: flags start with two dashes, e.g. --http.d.body=…",
		"portpatrol: unexpected argument http.d.header=…: flags start with two dashes, e.g. --http.d.header=…",
		"portpatrol: unknown flag -http.d.body: flags start with two dashes, e.g. --http.d.body",
		"portpatrol: unexpected argument after the value of --http.e.header, not shown",
		`portpatrol: --http.e.bdy: http targets have no property "bdy" (did you mean body?)`,
	} {
		if !hasLine(o, want) {
			t.Errorf("no line starting %q in\n%s", want, o.stderr)
		}
	}
}

// A value with a line break or a terminal escape code cannot forge a line
// of output or reach the terminal, whichever message quotes it.
func TestStartupErrorsEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	forged := "\nportpatrol: forged"
	o := runPortpatrol(t, []string{"PP_FORGE_DIR=/nonexistent" + forged},
		"--tcp.a.address=h:1", "--tcp.a.interval=1s"+forged,
		"--timeout=\x1b[31mred",
		"--tcp.b.address=file:/nonexistent"+forged,
		"--tcp.c.address=file:$PP_FORGE_DIR/x",
		"--tcp.d.address=env:PP_UNSET"+forged,
		"--http.e.address=http://x/", "--http.e.ca-file=/nonexistent"+forged,
		"--http.f.address=http://x/\x1b[2J",
		"--", "no-such-command"+forged)
	o.mustExit(t, 2)
	if strings.ContainsAny(o.stderr, "\x1b\r") {
		t.Errorf("an escape code reached stderr: %q", o.stderr)
	}
	lines := stderrLines(o)
	for _, l := range lines {
		if strings.HasPrefix(l, "portpatrol: forged") || !strings.HasPrefix(l, "portpatrol: ") {
			t.Errorf("forged or stray line %q in\n%s", l, o.stderr)
		}
	}
	for _, want := range []string{
		`portpatrol: --tcp.a.interval="1s\nportpatrol: forged": not a duration`,
		`portpatrol: --timeout="\x1b[31mred": not a duration`,
		`portpatrol: --tcp.b.address: file:"/nonexistent\nportpatrol: forged": no such file or directory`,
		`portpatrol: --tcp.c.address: file:"/nonexistent\nportpatrol: forged/x": no such file or directory`,
		`portpatrol: --tcp.d.address: environment variable "PP_UNSET\nportpatrol: forged" is not set`,
		`portpatrol: --http.e.ca-file: cannot read /nonexistent\nportpatrol: forged: no such file`, // quoted by the last line of defence
		`portpatrol: --http.f.address="http://x/\x1b[2J": `,
	} {
		if !hasLine(o, want) {
			t.Errorf("no line starting %q in\n%s", want, o.stderr)
		}
	}
	if len(lines) != 8 {
		t.Errorf("%d lines, want 7 problems and the --help hint:\n%s", len(lines), o.stderr)
	}
}

// A host name read through a reference is hidden in reasons also in the
// punycode form that the HTTP client resolves and the error names.
func TestReferencedNonASCIIHostStaysHidden(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, []string{"PP_IDN_URL=http://Bücher-Secret.invalid/", "PP_IDN_HOST=bücher-secret.invalid:80"},
		"--log-level=debug", "--timeout=1s", "--default-interval=100ms",
		"--http.a.address=env:PP_IDN_URL", "--tcp.b.address=env:PP_IDN_HOST")
	o.mustExit(t, 1)
	if strings.Contains(strings.ToLower(o.stderr), "secret") {
		t.Errorf("the host leaked:\n%s", o.stderr)
	}
	for _, target := range []string{"a", "b"} {
		if !strings.Contains(o.stderr, `msg="not ready" target=`+target) || !strings.Contains(o.stderr, "[hidden]") {
			t.Errorf("target %s: want a reason with [hidden]:\n%s", target, o.stderr)
		}
	}
}

// Every configuration problem of a target is reported in the same run, one
// per line: file problems of every TLS property, a reference that cannot
// be read next to the target's other mistakes, a header value with a
// control character, Host given twice.
func TestStartupReportsEveryProblem(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, []string{"PP_CTRL=a\nb", "PP_HOST2=b.test"},
		"--http.a.address=https://x/", "--http.a.ca-file=/nonexistent.pem", "--http.a.cert-file=/no.pem", "--http.a.key-file=/no.key",
		"--http.b.address=env:PP_UNSET_ADDRESS", "--http.b.header=X-A=env:PP_CTRL", "--http.b.ca-file=/nonexistent-b.pem",
		"--http.c.address=ftp://x/", "--http.c.header=Host=a.test", "--http.c.header=Host=env:PP_HOST2",
		"--http.c.allow-duplicate-headers", "--http.c.header=X-B=env:PP_CTRL", "--http.c.body=env:PP_UNSET_BODY",
		"--tcp.d.address=localhost:99999", "--tcp.d.interval=1ns",
	)
	o.mustExit(t, 2)
	for _, want := range []string{
		"portpatrol: --http.a.ca-file: cannot read /nonexistent.pem: no such file or directory",
		"portpatrol: --http.a.cert-file=/no.pem with --http.a.key-file=/no.key: no such file or directory",
		"portpatrol: --http.b.address: environment variable PP_UNSET_ADDRESS is not set",
		"portpatrol: --http.b.header: the value of X-A holds a control character",
		"portpatrol: --http.b.ca-file: cannot read /nonexistent-b.pem",
		"portpatrol: --http.c.address=ftp://x/: want an http:// or https:// URL",
		"portpatrol: --http.c.header: header Host is given more than once",
		"portpatrol: --http.c.header: the value of X-B holds a control character",
		"portpatrol: --http.c.body: environment variable PP_UNSET_BODY is not set",
		"portpatrol: --tcp.d.interval=1ns: below the minimum of 10ms",
		"portpatrol: --tcp.d.address=localhost:99999: the port must be a number from 1 to 65535",
		"portpatrol: see portpatrol --help",
	} {
		if !hasLine(o, want) {
			t.Errorf("no line starting %q in\n%s", want, o.stderr)
		}
	}
	if n := len(stderrLines(o)); n != 12 {
		t.Errorf("%d lines, want 11 problems and the --help hint:\n%s", n, o.stderr)
	}
}

// With --log-format=json every line of stderr is a JSON object, start-up
// errors and the errors of the command after -- included, one per problem;
// the format applies as soon as it is valid, whatever else is wrong.
func TestStartupErrorsJSON(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ready := "--tcp.up.address=" + l.Addr().String()
	script := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(script, []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "plain.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
		want []string // one problem per line, in order
	}{
		{"flags", []string{"--tcp.a.address=x", "--log-format=json", "-v", "--tcp.a.interval=1s\nx", "--bogus"}, 2, "invalid configuration",
			[]string{"unknown flag -v: flags start with two dashes (did you mean --version?)", `--tcp.a.interval="1s\nx": not a duration`,
				"unknown flag --bogus", "--tcp.a.address=x: want host:port"}},
		{"upper case", []string{"--log-format=JSON"}, 2, "invalid configuration", []string{"no targets"}},
		{"not found", []string{"--log-format=json", ready, "--", "portpatrol-no-such-command"}, 127, "cannot run the command",
			[]string{`command "portpatrol-no-such-command" not found`}},
		{"not executable", []string{"--log-format=json", ready, "--", notExec}, 126, "cannot run the command",
			[]string{fmt.Sprintf("command %q cannot be run: permission denied", notExec)}},
		{"exec fails", []string{"--log-format=json", ready, "--", script}, 127, "cannot run the command",
			[]string{fmt.Sprintf("command %q cannot be run: its interpreter (the #! line) or loader was not found", script)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := runPortpatrol(t, nil, tc.args...)
			o.mustExit(t, tc.code)
			var problems []string
			for _, line := range stderrLines(o) {
				var rec struct{ Time, Level, Msg, Error string }
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("line is not JSON: %q: %v\n%s", line, err, o.stderr)
				}
				if rec.Time == "" || rec.Level == "" || rec.Msg == "" {
					t.Errorf("line lacks time, level or msg: %s", line)
				}
				if rec.Level == "ERROR" {
					if rec.Msg != tc.msg {
						t.Errorf("msg %q, want %q: %s", rec.Msg, tc.msg, line)
					}
					problems = append(problems, rec.Error)
				}
			}
			if len(problems) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%s", len(problems), len(tc.want), o.stderr)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(problems[i], w) {
					t.Errorf("problem %d = %q, want it to start with %q", i, problems[i], w)
				}
			}
		})
	}
	// A bad --log-format itself leaves text.
	o := runPortpatrol(t, nil, "--log-format=xml", "--tcp.a.address=h:1")
	o.mustExit(t, 2)
	if !hasLine(o, "portpatrol: --log-format=xml: want text or json") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// An interval below the floor is refused at start-up, before any attempt.
func TestIntervalFloorEndToEnd(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil, "--default-interval=1ns", "--tcp.a.address="+closedPort(t), "--timeout=300ms")
	o.mustExit(t, 2)
	if !hasLine(o, "portpatrol: --default-interval=1ns: below the minimum of 10ms") || strings.Contains(o.stderr, "not ready") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

func TestPunycode(t *testing.T) {
	// Checked against Python's punycode codec, an independent implementation.
	for _, tc := range []struct{ in, want string }{
		{"bücher", "bcher-kva"},
		{"münchen", "mnchen-3ya"},
		{"bücher-secret", "bcher-secret-dlb"},
		{"mañana", "maana-pta"},
		{"ü", "tda"},
		{"☃-⌘", "--dqo34k"},
		{"3年B組金八先生", "3B-ww4c5e180e575a65lsy2b"},
		{"безопасность", "80abmi5aecftcl4j"},
		{strings.Repeat("ÿ", 40), "wd" + strings.Repeat("a", 40)},
	} {
		if got := punycode(tc.in); got != tc.want {
			t.Errorf("punycode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := asciiForm("Bücher-Secret.test"); got != "xn--bcher-secret-dlb.test" {
		t.Errorf("asciiForm = %q, want xn--bcher-secret-dlb.test", got)
	}
	if got := asciiForm("plain.test"); got != "plain.test" {
		t.Errorf("asciiForm changed an ASCII name: %q", got)
	}
}

func TestSplitProblems(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	two := fmt.Errorf("%w and %w", a, b) // one problem that unwraps to two
	got := splitProblems(errors.Join(errors.Join(a, two), nil, c))
	var texts []string
	for _, p := range got {
		texts = append(texts, p.Error())
	}
	if strings.Join(texts, "|") != "a|a and b|c" {
		t.Errorf("splitProblems = %q", texts)
	}
}

func TestEscapeControls(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain: text …", "plain: text …"},
		{"a\nb", `a\nb`},
		{"\x1b[31m", `\x1b[31m`},
		{"tab\there", `tab\there`},
		{"\u009b", `\u009b`},
		{"\u202e", `\u202e`},
		{"bad \xff byte", `bad \xff byte`},
	} {
		if got := escapeControls(tc.in); got != tc.want {
			t.Errorf("escapeControls(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// An address broken so that no @ follows the password (an unquoted space
// split it, or the @ is missing) shows no part of it: the port that is not a
// number reads xxxxx, and the word the shell split off is not shown.
func TestStartupErrorsHidePasswordWithoutAt(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil, "--log-level=debug",
		"--postgres.a.address=postgresql://u:S3CRET", "zz@127.0.0.1:1/x",
		"--mysql.b.address=app:S3CRET", "zz@tcp(127.0.0.1:1)/",
		"--redis.c.address=redis://u:S3CRETzz",
		"--amqp.d.address=amqp://u:S3CRETzz",
		"--http.e.address=http://u:S3CRETzz/",
		"--tcp.f.address=u:S3CRETzz",
		"--mongodb.g.address=mongodb://u:S3CRETzz",
	)
	o.mustExit(t, 2)
	if strings.Contains(o.stdout+o.stderr, "S3CRET") {
		t.Errorf("a secret leaked:\n%s", o.stderr)
	}
	for _, want := range []string{
		"portpatrol: unexpected argument after the value of --postgres.a.address, not shown",
		"portpatrol: unexpected argument after the value of --mysql.b.address, not shown",
		"portpatrol: --postgres.a.address=postgresql://u:xxxxx: the port must be a number from 1 to 65535",
		"portpatrol: --mysql.b.address=app:xxxxx: the port must be",
		"portpatrol: --redis.c.address=redis://u:xxxxx: not a valid URL",
		"portpatrol: --amqp.d.address=amqp://u:xxxxx: not a valid URL",
		"portpatrol: --http.e.address=http://u:xxxxx: not a valid URL",
		"portpatrol: --tcp.f.address=u:xxxxx: the port must be",
		"portpatrol: --mongodb.g.address=mongodb://u:xxxxx: host 1: the port must be",
	} {
		if !hasLine(o, want) {
			t.Errorf("no line starting %q in\n%s", want, o.stderr)
		}
	}
}

// An empty password in an address (user:@host), as a template filled from
// an unset variable gives, would silently mean no login: it is a start-up
// error for every type that logs in, as an empty password property is. A
// user with no colon stays a user without a password, and a password
// property makes the address's empty one irrelevant. The address shows
// xxxxx all the same: whether a password is there is not told apart.
func TestEmptyPasswordInAddress(t *testing.T) {
	t.Parallel()
	const want = "the password must not be empty: leave out the : after the user for no password"
	cases := []struct{ flag, value, want string }{ // want follows "flag="
		{"postgres.a.address", "postgresql://app:@127.0.0.1/orders", "postgresql://app:xxxxx@127.0.0.1/orders: " + want},
		{"postgres.b.address", "postgresql://app@127.0.0.1/orders?password=", "postgresql://app@127.0.0.1/orders?password=xxxxx: the password parameter must not be empty: leave it out for no password"},
		{"mysql.a.address", "app:@tcp(127.0.0.1:3306)/shop", "app:xxxxx@tcp(127.0.0.1:3306)/shop: " + want},
		{"mysql.b.address", "mysql://app:@127.0.0.1/shop", "mysql://app:xxxxx@127.0.0.1/shop: " + want},
		{"redis.a.address", "redis://:@127.0.0.1", "redis://:xxxxx@127.0.0.1: " + want},
		{"amqp.a.address", "amqp://guest:@127.0.0.1/", "amqp://guest:xxxxx@127.0.0.1/: " + want},
	}
	args := []string{"--timeout=2s"}
	for _, tc := range cases {
		args = append(args, "--"+tc.flag+"="+tc.value)
	}
	o := runPortpatrol(t, nil, args...)
	o.mustExit(t, 2)
	for _, tc := range cases {
		if w := "portpatrol: --" + tc.flag + "=" + tc.want; !hasLine(o, w) {
			t.Errorf("no line starting %q in\n%s", w, o.stderr)
		}
	}

	for _, args := range [][]string{
		{"--postgres.a.address=postgresql://app@127.0.0.1/orders"},
		{"--postgres.a.address=postgresql://app:@127.0.0.1/orders", "--postgres.a.password=s3cret"},
		{"--mysql.a.address=app@tcp(127.0.0.1:3306)/shop"},
		{"--mysql.a.address=mysql://app:@127.0.0.1/shop", "--mysql.a.password=s3cret"},
		{"--redis.a.address=redis://:@127.0.0.1", "--redis.a.password=s3cret"},
		{"--amqp.a.address=amqp://guest@127.0.0.1/"},
		{"--http.a.address=http://token:@127.0.0.1/"}, // Basic with an empty password is common for API tokens
	} {
		opts, err := parseArgs(args)
		if err == nil {
			_, err = buildTargets(opts.targets, newLogger(opts, io.Discard))
		}
		if err != nil {
			t.Errorf("%q: %v, want it accepted", args, err)
		}
	}
}
