package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mysqlResultStream is a text resultset of one column with the given rows
// (nil: NULL), as a server sends it after COM_QUERY.
func mysqlResultStream(rows ...[]byte) []byte {
	var b []byte
	b = append(b, mysqlPacket(1, []byte{1})...)                                    // one column
	b = append(b, mysqlPacket(2, append([]byte{3}, "def\x00\x00\x00\x01v"...))...) // a column definition (not read)
	b = append(b, mysqlPacket(3, []byte{mysqlEOF, 0, 0, 2, 0})...)
	for i, r := range rows {
		if r == nil {
			b = append(b, mysqlPacket(byte(4+i), []byte{mysqlNull})...)
		} else {
			b = append(b, mysqlPacket(byte(4+i), append([]byte{byte(len(r))}, r...))...)
		}
	}
	return append(b, mysqlPacket(byte(4+len(rows)), []byte{mysqlEOF, 0, 0, 2, 0})...)
}

func TestMySQLResult(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		reason string // "": ready
	}{
		{"one", mysqlResultStream([]byte("1")), ""},
		{"text", mysqlResultStream([]byte("20240101_init")), ""},
		{"first row counts", mysqlResultStream([]byte("1"), []byte("0")), ""},
		{"zero", mysqlResultStream([]byte("0")), `the first value is false ("0")`},
		{"decimal zero", mysqlResultStream([]byte("0.00")), `the first value is false ("0.00")`},
		{"false", mysqlResultStream([]byte("FALSE")), "the first value is false"},
		{"empty", mysqlResultStream([]byte("")), `the first value is false ("")`},
		{"bit zero", mysqlResultStream([]byte{0}), "the first value is false"},
		{"null", mysqlResultStream(nil), "the first value is false (NULL)"},
		{"no rows", mysqlResultStream(), "no rows"},
		{"not a query", mysqlPacket(1, []byte{mysqlOK, 1, 0, 0, 0}), "no rows (the statement returns no result set)"},
		{"error", mysqlErrPacket(1, 1146, "Table 'app.flags' doesn't exist"), "error 1146: Table 'app.flags' doesn't exist"},
		{"no column count", mysqlPacket(1, []byte{0xfc, 1}), "not a MySQL server: a result without a valid column count"},
		{"too many columns", mysqlPacket(1, []byte{0xfc, 0x01, 0x20}), "not a MySQL server: a result without a valid column count"},
		{"huge row", append(mysqlResultStream()[:len(mysqlResultStream())-9], 0xff, 0xff, 0xff, 4), "the first row is 16777215 bytes, more than portpatrol reads (64 KiB): select a smaller value"},
		{"truncated value", append(mysqlResultStream()[:len(mysqlResultStream())-9], mysqlPacket(4, []byte{5, 'a'})...), "a truncated row"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readMySQLResult(bytes.NewReader(tc.stream))
			if tc.reason == "" && err != nil || tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason)) {
				t.Errorf("got %v, want %q", err, tc.reason)
			}
		})
	}
}

func FuzzMySQLResult(f *testing.F) {
	f.Add(mysqlResultStream([]byte("1")))
	f.Add(mysqlResultStream(nil))
	f.Add(mysqlResultStream())
	f.Add(mysqlErrPacket(1, 1146, "no table"))
	f.Add(mysqlPacket(1, []byte{0xfe, 1, 0, 0, 0, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, stream []byte) {
		err := readMySQLResult(bytes.NewReader(stream))
		if err == nil && len(stream) < 4*4 {
			t.Errorf("ready on %d bytes, too few for a result with a row", len(stream))
		}
	})
}

// query against a real MariaDB: a missing table, an empty one, a false
// value, then the row arrives and the target is ready within the interval;
// a write or a second statement is refused and changes nothing.
func TestMySQLQueryRealServer(t *testing.T) {
	db := startMariaDB(t, "", "127.0.0.1")
	addr := "127.0.0.1:" + strconv.Itoa(db.port)
	db.sql(t, "CREATE DATABASE app; "+
		"CREATE USER app@'%' IDENTIFIED BY 'Qu-PLANTED-1'; GRANT ALL ON app.* TO app@'%'; "+
		"CREATE USER app@localhost IDENTIFIED BY 'Qu-PLANTED-1'; GRANT ALL ON app.* TO app@localhost; "+
		"CREATE USER nopw@localhost; GRANT SELECT ON app.* TO nopw@localhost")
	address := "app:Qu-PLANTED-1@tcp(" + addr + ")/app"
	const migrated = "SELECT count(*) > 0 FROM schema_migrations WHERE version = '42'"
	attempt := func(address, query string, extra ...string) outcome {
		t.Helper()
		o := runPortpatrol(t, nil, append([]string{"--mysql.db.address=" + address, "--mysql.db.query=" + query,
			"--mysql.db.timeout=10s", "--default-max-attempts=1", "--timeout=20s"}, extra...)...)
		if strings.Contains(o.stderr+o.stdout, "Qu-PLANTED-1") {
			t.Errorf("the password is in the output:\n%s", o.stderr)
		}
		return o
	}
	for _, step := range []struct{ sql, query, reason string }{
		{"", migrated, "error 1146: Table 'app.schema_migrations' doesn't exist"},
		{"CREATE TABLE app.schema_migrations (version varchar(20), dirty bool)", "SELECT dirty FROM schema_migrations", "no rows"},
		{"INSERT INTO app.schema_migrations VALUES ('41', NULL)", "SELECT dirty FROM schema_migrations", "the first value is false (NULL)"},
		{"", migrated, `the first value is false (\"0\")`}, // as logfmt quotes it
		{"", "INSERT INTO schema_migrations VALUES ('42', 0)", "error 1792: Cannot execute statement in a READ ONLY transaction"},
		{"", "SELECT 1; INSERT INTO schema_migrations VALUES ('42', 0)", "error 1064"},
		{"", "DELETE FROM schema_migrations", "error 1792"},
	} {
		if step.sql != "" {
			db.sql(t, step.sql)
		}
		o := attempt(address, step.query)
		if o.code != 1 || !strings.Contains(o.stderr, step.reason) {
			t.Errorf("%s: exit %d, want 1 with %q:\n%s", step.query, o.code, step.reason, o.stderr)
		}
	}
	if got := strings.TrimSpace(db.sql(t, "SELECT count(*), group_concat(version) FROM app.schema_migrations")); got != "1\t41" {
		t.Errorf("after the refused writes the table holds %q, want one row, 41", got)
	}
	// The row arrives while portpatrol waits: ready within the interval.
	cmd := exec.Command(ppBinary, "--mysql.db.address="+address, "--mysql.db.query=file:"+writeTemp(t, migrated+"\n"),
		"--default-interval=200ms", "--timeout=30s")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, &stderr, `the first value is false (\"0\")`)
	db.sql(t, "INSERT INTO app.schema_migrations VALUES ('42', 0)")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("not ready after the row arrived: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "Qu-PLANTED-1") {
		t.Errorf("the password is in the output:\n%s", stderr.String())
	}
	// A query implies a login, also without a password; a user who may not
	// log in, or may not read the table, is refused.
	for _, tc := range []struct{ address, reason string }{
		{"nopw@tcp(" + addr + ")/app", ""},
		{"nobody@tcp(" + addr + ")/app", "error 1045: Access denied for user 'nobody'@'localhost' (using password: NO)"},
		{"nopw@tcp(" + addr + ")/mysql", "error 1044"},
	} {
		o := attempt(tc.address, migrated)
		if tc.reason == "" && o.code != 0 || tc.reason != "" && (o.code != 1 || !strings.Contains(o.stderr, tc.reason)) {
			t.Errorf("%s: exit %d, want reason %q:\n%s", tc.address, o.code, tc.reason, o.stderr)
		}
	}
	// A first row past the bound is portpatrol's limit, not a server that
	// is not MySQL; inverted, the server is still there.
	const tooLong = "the first row is 100004 bytes, more than portpatrol reads (64 KiB): select a smaller value"
	if o := attempt(address, "SELECT REPEAT('a', 100000)"); o.code != 1 || !strings.Contains(o.stderr, tooLong) {
		t.Errorf("a 100000-byte value: exit %d, want 1 with %q:\n%s", o.code, tooLong, o.stderr)
	}
	if o := attempt(address, "SELECT REPEAT('a', 100000)", "--mysql.db.invert"); o.code != 1 || !strings.Contains(o.stderr, tooLong) {
		t.Errorf("a 100000-byte value, inverted: exit %d, want 1 (still there) with %q:\n%s", o.code, tooLong, o.stderr)
	}
	// A file's trailing semicolon is still one statement.
	if o := attempt(address, "SELECT 1;\n"); o.code != 0 {
		t.Errorf("SELECT 1; exit %d:\n%s", o.code, o.stderr)
	}
	// This server offers no TLS: preferred goes without, required fails.
	runPortpatrol(t, nil, "--mysql.db.address="+address+"?tls=preferred", "--default-max-attempts=1").mustExit(t, 0)
	runPortpatrol(t, nil, "--mysql.db.address=mysql://app:Qu-PLANTED-1@"+addr+"/app", "--default-max-attempts=1").mustExit(t, 0)
	preauth := db.status(t, "Aborted_connects_preauth")
	if o := runPortpatrol(t, nil, "--mysql.db.address="+address+"?tls=skip-verify", "--default-max-attempts=1"); o.code != 1 ||
		!strings.Contains(o.stderr, "the server does not offer TLS, which tls=skip-verify asks for") {
		t.Errorf("tls=skip-verify without TLS on the server: exit %d:\n%s", o.code, o.stderr)
	}
	// Inverted, a server without the TLS the address asks for is there:
	// it keeps waiting.
	if o := runPortpatrol(t, nil, "--mysql.db.address="+address+"?tls=skip-verify", "--mysql.db.invert", "--default-max-attempts=2", "--default-interval=100ms"); o.code != 1 ||
		!strings.Contains(o.stderr, "the server does not offer TLS, which tls=skip-verify asks for") {
		t.Errorf("tls=skip-verify without TLS on the server, inverted: exit %d, want 1 (still there):\n%s", o.code, o.stderr)
	}
	time.Sleep(100 * time.Millisecond)
	if got := db.status(t, "Aborted_connects_preauth"); got != preauth {
		t.Errorf("Aborted_connects_preauth went from %d to %d: the handshake was left unanswered", preauth, got)
	}
	// The mariadb client agrees: translated, tls=skip-verify refuses the
	// server as well; its --ssl alone would not, falling back to clear
	// text (docs/types/mysql.md says so).
	required, pw := mariadbArgs(t, address+"?tls=skip-verify", nil, "")
	preferred, _ := mariadbArgs(t, address+"?tls=preferred", nil, "")
	if !slices.Contains(preferred, "--ssl") {
		t.Errorf("tls=preferred translates to %v, want --ssl", preferred)
	}
	for _, c := range []struct {
		args  []string
		ready bool
	}{{required, false}, {preferred, true}} {
		cmd := exec.Command(requireProgram(t, "mariadb", "mysql"), append(append([]string{"--no-defaults", "-N"}, c.args...), "-e", "SELECT 1")...)
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+pw)
		if out, err := cmd.CombinedOutput(); (err == nil) != c.ready {
			t.Errorf("mariadb %v against a server without TLS: ready %v, want %v:\n%s", c.args, err == nil, c.ready, out)
		}
	}
	// login=true without a query: the same login, then DO 1.
	if o := runPortpatrol(t, nil, "--mysql.db.address=nobody@tcp("+addr+")/", "--mysql.db.login", "--default-max-attempts=1"); o.code != 1 ||
		!strings.Contains(o.stderr, "error 1045") {
		t.Errorf("login=true as a user that does not exist: exit %d:\n%s", o.code, o.stderr)
	}
	runPortpatrol(t, nil, "--mysql.db.address=nobody@tcp("+addr+")/", "--default-max-attempts=1").mustExit(t, 0)
	runPortpatrol(t, nil, "--mysql.db.address=nopw@tcp("+addr+")/app", "--mysql.db.login", "--default-max-attempts=1").mustExit(t, 0)
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "query-*.sql")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// A proxy that accepts the login but whose server is gone never answers the
// statement that follows: not ready, and the reason says where it stopped.
func TestMySQLSilentAfterLogin(t *testing.T) {
	ok := mysqlPacket(2, []byte{0, 0, 0, 2, 0, 0, 0})
	addr, _ := fakeMySQL(t, serveLogin(ok, nil))
	err := mysqlCheck{network: "tcp", address: addr, user: "app", login: true, timeout: 300 * time.Millisecond}.check(context.Background())
	if want := "no answer to a statement within 300ms after the login (a proxy whose server is gone?)"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	// Answered: ready.
	addr, _ = fakeMySQL(t, serveLogin(ok, mysqlPacket(1, []byte{0, 0, 0, 2, 0, 0, 0})))
	if err := (mysqlCheck{network: "tcp", address: addr, user: "app", login: true, timeout: time.Second}).check(context.Background()); err != nil {
		t.Errorf("DO 1 answered OK: %v", err)
	}
}
