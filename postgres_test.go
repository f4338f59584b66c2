package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pgBuild reads s as buildPostgres does, with env as the environment.
func pgBuild(s string, env map[string]string) (pgCheck, error) {
	p, err := parsePGAddress(s)
	if err != nil {
		return pgCheck{}, err
	}
	p.withEnvironment(func(k string) string { return env[k] })
	c, err := newPGCheck(p, false, time.Minute)
	return c, err
}

func TestParsePGAddress(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	long := "/" + strings.Repeat("d", 100) // with /.s.PGSQL.5432: 115 bytes
	for _, tc := range []struct {
		in                                      string
		network, address, user, database, shown string
		err                                     string
	}{
		{in: "db", network: "tcp", address: "db:5432", shown: "db"},
		{in: "db:6543", network: "tcp", address: "db:6543", shown: "db:6543"},
		{in: "[::1]:6543", network: "tcp", address: "[::1]:6543", shown: "[::1]:6543"},
		{in: "::1", network: "tcp", address: "[::1]:5432", shown: "::1"},
		{in: "postgres://db", network: "tcp", address: "db:5432", shown: "postgres://db"},
		{in: "postgresql://app:s3cret@db.internal:6000/orders?sslmode=require", network: "tcp", address: "db.internal:6000",
			user: "app", database: "orders", shown: "postgresql://app:xxxxx@db.internal:6000/orders?sslmode=require"},
		{in: "postgres://a%40b@[::1]:7/my%20db", network: "tcp", address: "[::1]:7", user: "a@b", database: "my db", shown: "postgres://a%40b@[::1]:7/my%20db"},
		{in: "postgres://db/x?user=u&dbname=y&port=7&password=pw", network: "tcp", address: "db:7", user: "u", database: "y",
			shown: "postgres://db/x?user=u&dbname=y&port=7&password=xxxxx"},
		{in: "postgres://db/x?host=other", network: "tcp", address: "other:5432", database: "x", shown: "postgres://db/x?host=other"},
		{in: "postgres://h1:1,h2,[::1]:3/x", network: "tcp", address: "h1:1 h2:5432 [::1]:3", database: "x", shown: "postgres://h1:1,h2,[::1]:3/x"},
		{in: "postgres://h1,h2:2/x", network: "tcp", address: "h1:5432 h2:2", database: "x", shown: "postgres://h1,h2:2/x"},
		{in: "postgres://u@h1/x?ssl=true&requiressl=0", network: "tcp", address: "h1:5432", user: "u", database: "x", shown: "postgres://u@h1/x?ssl=true&requiressl=0"},
		// The keyword/value form.
		{in: "host=db port=6000 user=app password='a b' dbname=shop", network: "tcp", address: "db:6000", user: "app", database: "shop",
			shown: "host=db port=6000 user=app password=xxxxx dbname=shop"},
		{in: "  host = db\tdbname =  'it\\'s'  user='o\\\\b' ", network: "tcp", address: "db:5432", user: `o\b`, database: "it's"},
		{in: "host=a,b hostaddr=127.0.0.1,127.0.0.2 port=7", network: "tcp", address: "127.0.0.1:7 127.0.0.2:7"},
		{in: "host=db dbname=x://y", network: "tcp", address: "db:5432", database: "x://y"},
		{in: "host=/run/postgresql,db port=1,2", network: "unix", address: "/run/postgresql/.s.PGSQL.1 db:2"},
		{in: "password = s3 cr3t host=db", err: `a word without = follows the value of "password"`},
		{in: "host=db password='s3cr3t", err: `the value of "password" has no closing single quote`},
		{in: "host=db sslmod=require", err: `unknown connection option "sslmod": libpq refuses the string`},
		{in: "postgres://db/x?bogus_param=1", err: `unknown URI query parameter "bogus_param"`},
		{in: "host=db password=s3 Cr3t=x", err: "unknown connection option after the password (not shown: it may be part of the password)"},
		{in: "host=db password=s3 cr3t=x", err: "unknown connection option after the password (not shown"},
		{in: "host=db password='' dbname=x", err: "the password key word must not be empty: leave it out for no password"},
		{in: "host=db password=", err: "the password key word must not be empty"},
		{in: "postgres://db/x?a", err: "a URI query parameter without ="},
		{in: "host=a,b port=1,2,3", err: "could not match 3 port numbers to 2 hosts"},
		{in: "host=a,b hostaddr=127.0.0.1", err: "could not match 2 host names to 1 hostaddr values"},
		{in: "host=db gssencmode=require", err: "gssencmode=require: portpatrol has no GSSAPI"},
		{in: "host=db service=shop", err: "service: portpatrol does not read libpq's connection service file"},
		{in: "host=db target_session_attrs=primry", err: `target_session_attrs "primry": want any, read-write`},
		{in: "host=db connect_timeout=soon", err: `invalid integer value "soon" for connection option "connect_timeout": libpq wants a whole number`},
		{in: "host=db connect_timeout=", err: `invalid integer value "" for connection option "connect_timeout"`},
		{in: "host=db keepalives=abc", err: `invalid integer value "abc" for connection option "keepalives"`},
		{in: "host=db keepalives_idle=1x", err: `invalid integer value "1x" for connection option "keepalives_idle"`},
		{in: "host=db keepalives_interval=", err: `invalid integer value "" for connection option "keepalives_interval"`},
		{in: "host=db keepalives_count=9999999999", err: `invalid integer value "9999999999" for connection option "keepalives_count"`},
		{in: "host=db tcp_user_timeout=0x10", err: `invalid integer value "0x10" for connection option "tcp_user_timeout"`},
		{in: "host=db keepalives=' +1 ' keepalives_idle=-1 tcp_user_timeout=0 connect_timeout=' 3'", network: "tcp", address: "db:5432"},
		// A unix socket has no keepalives: libpq does not read them.
		{in: "host=/run/postgresql keepalives=abc tcp_user_timeout=x", network: "unix", address: "/run/postgresql/.s.PGSQL.5432"},
		{in: "host=db sslmode=verify-full", err: "sslmode verify-full needs a root certificate"},
		{in: "host=db sslrootcert=system sslmode=require", err: "sslmode require with sslrootcert=system: libpq wants verify-full"},
		{in: "host=db sslnegotiation=direct", err: "sslnegotiation=direct with sslmode prefer"},
		{in: "host=db require_auth=md5,!password", err: "require_auth: negative and positive methods cannot be mixed"},
		// Unix sockets, as libpq names them.
		{in: "postgres:///db?host=/run/postgresql", network: "unix", address: "/run/postgresql/.s.PGSQL.5432", database: "db", shown: "postgres:///db?host=/run/postgresql"},
		{in: "postgres:///db?host=%2Frun%2Fpostgresql&port=5433", network: "unix", address: "/run/postgresql/.s.PGSQL.5433", database: "db", shown: "postgres:///db?host=%2Frun%2Fpostgresql&port=5433"},
		{in: "postgresql://%2Frun%2Fpostgresql/db", network: "unix", address: "/run/postgresql/.s.PGSQL.5432", database: "db", shown: "postgresql://%2Frun%2Fpostgresql/db"},
		{in: "postgresql://u:pw@%2Fvar%2Frun:6000/db", network: "unix", address: "/var/run/.s.PGSQL.6000", user: "u", database: "db", shown: "postgresql://u:xxxxx@%2Fvar%2Frun:6000/db"},
		{in: "/run/postgresql", network: "unix", address: "/run/postgresql/.s.PGSQL.5432", shown: "/run/postgresql"},
		{in: "/run/postgresql?port=6000", network: "unix", address: "/run/postgresql/.s.PGSQL.6000", shown: "/run/postgresql?port=6000"},
		{in: "/run/postgresql/.s.PGSQL.6001", network: "unix", address: "/run/postgresql/.s.PGSQL.6001", shown: "/run/postgresql/.s.PGSQL.6001"},
		// Wrong forms.
		{in: "http://x", err: `unknown scheme "http": want postgres:// or postgresql://`},
		{in: "postgress://x", err: `unknown scheme "postgress"`},
		{in: "db:99999", err: "the port must be a number from 1 to 65535"},
		{in: "postgres://db:0/x", err: "the port must be a number from 1 to 65535"},
		{in: "postgres://db/x?port=many", err: "the port must be"},
		{in: "/run/postgresql?port=70000", err: "the port must be"},
		{in: "/run/postgresql?sslmode=disable", err: `only ?port=N may follow`},
		{in: "postgres:///db", err: "missing host: name one"},
		{in: "postgres://[::1/db", err: "missing ]"},
		{in: "postgres://db/%zz", err: "the database name: a % not followed by two hex digits"},
		{in: "postgresql://app:p@ss:w@db/x", err: "an @ in the password leaves unclear where it ends"},
		{in: "postgresql://app:p@ss@db/x", err: "an @ in the password leaves unclear where it ends"},
		{in: "user@db", err: "want host, host:port, a postgres:// URL"},
		{in: "db/x", err: "want host, host:port"},
		{in: long, err: "the unix socket path is 115 bytes long; Linux allows at most 107"},
		{in: "postgres:///x?host=" + long, err: "the unix socket path is 115 bytes long"},
	} {
		c, err := pgBuild(tc.in, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %+v, %v; want an error containing %q", tc.in, c, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "cr3t") {
				t.Errorf("%q: the error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var addrs []string
		for _, h := range c.hosts {
			addrs = append(addrs, h.address)
		}
		if got := strings.Join(addrs, " "); c.hosts[0].network != tc.network || got != tc.address {
			t.Errorf("%q: %s %s, want %s %s", tc.in, c.hosts[0].network, got, tc.network, tc.address)
		}
		user, db := tc.user, tc.database
		if user == "" {
			user = "postgres"
		}
		if db == "" {
			db = user
		}
		if want := pgStartupMessage(user, db); !bytes.Equal(c.startup, want) {
			t.Errorf("%q: start-up message %q, want %q", tc.in, c.startup, want)
		}
		if tc.shown != "" && redactURL(tc.in) != tc.shown {
			t.Errorf("%q: shown as %q, want %q", tc.in, redactURL(tc.in), tc.shown)
		}
	}
}

func TestPGStartupMessage(t *testing.T) {
	got := pgStartupMessage("app", "orders")
	want := []byte("\x00\x00\x00\x3e\x00\x03\x00\x00user\x00app\x00database\x00orders\x00application_name\x00portpatrol\x00\x00")
	if !bytes.Equal(got, want) {
		t.Errorf("start-up message\n got %q\nwant %q", got, want)
	}
	if n := binary.BigEndian.Uint32(got); int(n) != len(got) {
		t.Errorf("declared length %d, actual %d", n, len(got))
	}
}

// Backend messages as a server sends them.
func pgMessage(kind byte, body []byte) []byte {
	msg := []byte{kind, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(msg[1:], uint32(4+len(body)))
	return append(msg, body...)
}

func pgAuthRequest(code uint32) []byte {
	return pgMessage('R', binary.BigEndian.AppendUint32(nil, code))
}

// pgError is an ErrorResponse with the fields a server sends first.
func pgError(sqlstate, message, detail string) []byte {
	var body []byte
	field := func(code byte, v string) { body = append(append(append(body, code), v...), 0) }
	field('S', "FATAL")
	field('V', "FATAL")
	if sqlstate != "" {
		field('C', sqlstate)
	}
	field('M', message)
	if detail != "" {
		field('D', detail)
	}
	return pgMessage('E', append(body, 0))
}

func TestReadPGReply(t *testing.T) {
	notice := pgMessage('N', []byte("SNOTICE\x00Mhello\x00\x00"))
	for _, tc := range []struct {
		name  string
		in    []byte
		want  pgReply
		err   string
		ready bool
	}{
		{"AuthenticationOk", pgAuthRequest(0), pgReply{authentication: true}, "", true},
		{"SASL", pgMessage('R', []byte("\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00")), pgReply{authentication: true, authCode: 10}, "", true},
		{"MD5", pgMessage('R', []byte{0, 0, 0, 5, 1, 2, 3, 4}), pgReply{authentication: true, authCode: 5}, "", true},
		{"notice first", append(notice, pgAuthRequest(3)...), pgReply{authentication: true, authCode: 3}, "", true},
		{"protocol negotiation first", append(pgMessage('v', []byte{0, 0, 0, 0, 0, 0, 0, 0}), pgAuthRequest(0)...), pgReply{authentication: true}, "", true},
		{"starting up", pgError("57P03", "the database system is starting up", ""),
			pgReply{sqlstate: "57P03", message: "the database system is starting up"}, "", false},
		{"no such role", pgError("28000", `role "x" does not exist`, ""), pgReply{sqlstate: "28000", message: `role "x" does not exist`}, "", true},
		{"no SQLSTATE", pgError("", "odd", ""), pgReply{message: "odd"}, "", false},
		{"short SQLSTATE", pgError("57P0", "odd", ""), pgReply{message: "odd"}, "", false},
		{"control characters replaced", pgError("57P03", "a\nb\x1b[31m", "d\te"), pgReply{sqlstate: "57P03", message: "a\uFFFDb\uFFFD[31m", detail: "d\uFFFDe"}, "", false},
		{"empty", nil, pgReply{}, "EOF", false},
		{"cut in the header", []byte{'R', 0, 0}, pgReply{}, "unexpected EOF", false},
		{"cut in the body", pgAuthRequest(0)[:7], pgReply{}, "unexpected EOF", false},
		{"garbage", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), pgReply{}, `not a PostgreSQL server: its reply starts with 'H'`, false},
		{"binary garbage", []byte{0x16, 3, 1, 0, 0}, pgReply{}, "its reply starts with byte 0x16", false},
		{"huge length", []byte{'E', 0x7f, 0xff, 0xff, 0xff}, pgReply{}, "message 'E' declares 2147483647 bytes (at most 4096 expected)", false},
		{"length below 4", []byte{'R', 0, 0, 0, 3}, pgReply{}, "declares 3 bytes", false},
		{"authentication without its code", pgMessage('R', nil), pgReply{}, "an authentication request without its code", false},
		{"error field without end", pgMessage('E', []byte("Mno end")), pgReply{}, "an error field without its end", false},
		{"error without final NUL", pgMessage('E', []byte("C57P03\x00")), pgReply{}, "an error without its final NUL", false},
		{"only notices", bytes.Repeat(notice, 5), pgReply{}, "no authentication request or error in the first 4 messages", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readPGReply(bytes.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if ready := got.authentication || got.verdict() == nil; ready != tc.ready {
				t.Errorf("ready = %v, want %v (%+v)", ready, tc.ready, got)
			}
		})
	}
}

func TestPGVerdictReason(t *testing.T) {
	for _, tc := range []struct {
		reply pgReply
		want  string
	}{
		{pgReply{sqlstate: "57P03", message: "the database system is starting up"},
			"the server rejects connections: the database system is starting up (SQLSTATE 57P03)"},
		{pgReply{sqlstate: "57P03", message: "the database system is not accepting connections", detail: "Hot standby mode is disabled."},
			"the server rejects connections: the database system is not accepting connections (SQLSTATE 57P03: Hot standby mode is disabled.)"},
		{pgReply{message: "odd"}, "the server answered with an error without a SQLSTATE: odd"},
		{pgReply{sqlstate: "53300", message: "sorry, too many clients already"}, ""},
	} {
		err := tc.reply.verdict()
		if got := fmt.Sprint(err); (err == nil) != (tc.want == "") || err != nil && got != tc.want {
			t.Errorf("verdict(%+v) = %v, want %q", tc.reply, err, tc.want)
		}
	}
}

// countingReader counts what the parser consumed.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// endless repeats a chunk forever.
type endless []byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e[i%len(e)]
	}
	return len(p), nil
}

// However long the reply, an attempt reads a bounded number of bytes.
func TestReadPGReplyIsBounded(t *testing.T) {
	const bound = pgMaxMessages * (5 + pgMaxMessage)
	for name, src := range map[string]io.Reader{
		"notices":       endless(pgMessage('N', []byte("SNOTICE\x00\x00"))),
		"large notices": endless(pgMessage('N', bytes.Repeat([]byte{'M'}, pgMaxMessage-4))),
		"zeros":         endless([]byte{'E', 0, 0, 0x10, 0}),
		"huge length":   endless([]byte{'E', 0xff, 0xff, 0xff, 0xff}),
	} {
		c := &countingReader{r: src}
		_, err := readPGReply(c)
		if c.n > bound {
			t.Errorf("%s: read %d bytes (bound %d), err %v", name, c.n, bound, err)
		}
	}
	c := &countingReader{r: endless([]byte{'E', 0x7f, 0xff, 0xff, 0xff})}
	readPGReply(c)
	if c.n != 5 {
		t.Errorf("a huge declared length: read %d bytes, want only the 5 of the header", c.n)
	}
}

func FuzzPGReply(f *testing.F) {
	f.Add(pgAuthRequest(0))
	f.Add(pgError("57P03", "the database system is starting up", ""))
	f.Add(pgError("28P01", "password authentication failed", "detail"))
	f.Add(append(pgMessage('N', []byte("Mx\x00\x00")), pgAuthRequest(10)...))
	f.Add([]byte{'E', 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n"))
	// invalid bytes print as three each: the bound is on what is printed
	f.Add(pgError("XX000", strings.Repeat("\xff", 2*pgReasonTextMaxBytes), ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &countingReader{r: bytes.NewReader(data)}
		reply, err := readPGReply(c)
		if c.n > pgMaxMessages*(5+pgMaxMessage) {
			t.Fatalf("read %d bytes", c.n)
		}
		if err != nil {
			return
		}
		if reply.sqlstate != "" && len(reply.sqlstate) != 5 {
			t.Fatalf("SQLSTATE %q", reply.sqlstate)
		}
		if len(reply.message) > pgReasonTextMaxBytes+len("…") || strings.ContainsAny(reply.message+reply.detail, "\n\r\x00\x1b") {
			t.Fatalf("message %q, detail %q not fit for a reason", reply.message, reply.detail)
		}
		_ = reply.verdict()
	})
}

// pgFake is a fake server on loopback: it reads one start-up message, checks
// that it is protocol 3.0 (no SSLRequest first), records its parameters and
// every byte received, and lets respond answer the n-th connection.
type pgFake struct {
	addr        string
	sslRequests atomic.Int32 // answered N, as by a server without TLS
	mu          sync.Mutex
	params      map[string]string
	received    bytes.Buffer
	conns       atomic.Int32
}

func startPGFake(t *testing.T, respond func(n int, c net.Conn)) *pgFake {
	t.Helper()
	f := &pgFake{}
	f.addr = tcpServer(t, func(c net.Conn) {
		n := int(f.conns.Add(1))
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var length [4]byte
		if _, err := io.ReadFull(c, length[:]); err != nil {
			return
		}
		if binary.BigEndian.Uint32(length[:]) == 8 {
			var code [4]byte
			if io.ReadFull(c, code[:]); binary.BigEndian.Uint32(code[:]) != 80877103 {
				t.Errorf("an 8-byte first message that is not an SSLRequest: %q", code)
				return
			}
			f.sslRequests.Add(1)
			c.Write([]byte{'N'})
			if _, err := io.ReadFull(c, length[:]); err != nil {
				return
			}
		}
		size := binary.BigEndian.Uint32(length[:])
		if size < 8 || size > 10000 {
			t.Errorf("start-up message of %d bytes", size)
			return
		}
		body := make([]byte, size-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if v := binary.BigEndian.Uint32(body); v != 3<<16 {
			t.Errorf("first message has code %d, want protocol 3.0 (196608): no SSLRequest", v)
			return
		}
		parts := strings.Split(strings.TrimSuffix(string(body[4:]), "\x00\x00"), "\x00")
		params := map[string]string{}
		for i := 0; i+1 < len(parts); i += 2 {
			params[parts[i]] = parts[i+1]
		}
		f.mu.Lock()
		f.params = params
		f.received.Write(length[:])
		f.received.Write(body)
		f.mu.Unlock()
		respond(n, c)
		// Record whatever else the client sends until it closes.
		rest, _ := io.ReadAll(io.LimitReader(c, 1<<16))
		f.mu.Lock()
		f.received.Write(rest)
		f.mu.Unlock()
	})
	return f
}

func (f *pgFake) snapshot() (map[string]string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.params, f.received.String()
}

func TestPostgresFakeServers(t *testing.T) {
	t.Parallel()
	startingUp := pgError("57P03", "the database system is starting up", "")

	t.Run("57P03 then an authentication request", func(t *testing.T) {
		t.Parallel()
		f := startPGFake(t, func(n int, c net.Conn) {
			if n <= 2 {
				c.Write(startingUp)
				c.Close()
				return
			}
			c.Write(pgAuthRequest(10))
		})
		// Without a password too, sslmode (prefer) asks for TLS first, as
		// pg_isready: the fake answers N, as a server without TLS.
		o := runPortpatrol(t, nil, "--postgres.db.address=postgres://app@"+f.addr+"/orders?sslmode=prefer",
			"--default-interval=50ms", "--timeout=20s", "--log-level=debug")
		o.mustExit(t, 0)
		want := `error="the server rejects connections: the database system is starting up (SQLSTATE 57P03)"`
		if !strings.Contains(o.stderr, want) || !strings.Contains(o.stderr, "msg=ready target=db type=postgres address=\"postgres://app@"+f.addr+"/orders?sslmode=prefer\" attempts=3") {
			t.Errorf("stderr lacks %s, or the ready line after 3 attempts:\n%s", want, o.stderr)
		}
		params, received := f.snapshot()
		if params["user"] != "app" || params["database"] != "orders" || params["application_name"] != "portpatrol" || len(params) != 3 {
			t.Errorf("start-up parameters %q", params)
		}
		// Up on a password request, which cannot see further: said at
		// debug level.
		if !strings.Contains(o.stderr, `msg="up, but the check cannot see further"`) || !strings.Contains(o.stderr, "asks for a password") {
			t.Errorf("no debug note on the password request:\n%s", o.stderr)
		}
		if n := f.sslRequests.Load(); n != 3 {
			t.Errorf("%d SSLRequests in 3 attempts without a login, want 3", n)
		}
		// Asked for a password, the client closes without a Terminate:
		// the protocol allows none during start-up.
		if strings.Contains(received, "X\x00\x00\x00\x04") {
			t.Errorf("sent Terminate in reply to a password request: %q", received)
		}
	})

	t.Run("AuthenticationOk ends with Terminate", func(t *testing.T) {
		t.Parallel()
		f := startPGFake(t, func(n int, c net.Conn) {
			c.Write(append(append(pgAuthRequest(0), pgMessage('Z', []byte("I"))...), pgEmptyQueryAnswer()...))
		})
		runPortpatrol(t, nil, "--postgres.db.address="+f.addr, "--postgres.db.user=u", "--timeout=20s").mustExit(t, 0)
		params, received := f.snapshot()
		if !strings.HasSuffix(received, "\x00\x00X\x00\x00\x00\x04") {
			t.Errorf("the session did not end with Terminate: %q", received)
		}
		if params["user"] != "u" || params["database"] != "u" {
			t.Errorf("database must default to the user: %q", params)
		}
		// An application's own connection string, by reference.
		o := runPortpatrol(t, []string{"PP_DATABASE_URL=postgresql://app:hunter2@" + f.addr + "/orders"},
			"--postgres.db.address=env:PP_DATABASE_URL", "--timeout=20s", "--log-level=debug")
		o.mustExit(t, 0)
		if !strings.Contains(o.stderr, "address=env:PP_DATABASE_URL") || strings.Contains(o.stderr, "hunter2") || strings.Contains(o.stderr, f.addr) {
			t.Errorf("a referenced address must be shown as its reference:\n%s", o.stderr)
		}
		if params, _ := f.snapshot(); params["user"] != "app" || params["database"] != "orders" {
			t.Errorf("start-up parameters from the referenced URL: %q", params)
		}
	})

	t.Run("errors other than 57P03 mean ready", func(t *testing.T) {
		t.Parallel()
		for _, sqlstate := range []string{"28000", "28P01", "3D000", "53300"} {
			f := startPGFake(t, func(n int, c net.Conn) { c.Write(pgError(sqlstate, "no", "")) })
			o := runPortpatrol(t, nil, "--postgres.db.address="+f.addr, "--timeout=20s")
			o.mustExit(t, 0)
			if strings.Contains(o.stderr, "level=WARN") {
				t.Errorf("%s: ready must log nothing extra:\n%s", sqlstate, o.stderr)
			}
		}
	})

	for _, tc := range []struct {
		name    string
		respond func(n int, c net.Conn)
		reason  string
	}{
		{"silence", func(n int, c net.Conn) { time.Sleep(5 * time.Second) }, `error="no answer within 300ms"`},
		{"garbage", func(n int, c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) },
			`error="not a PostgreSQL server: its reply starts with 'H'"`},
		{"endless reply", func(n int, c net.Conn) {
			notice := pgMessage('N', bytes.Repeat([]byte("Mnotice "), 100))
			for {
				if _, err := c.Write(notice); err != nil {
					return
				}
			}
		}, `error="no authentication request or error in the first 4 messages of the reply"`},
		{"huge declared length", func(n int, c net.Conn) { c.Write([]byte{'E', 0x7f, 0xff, 0xff, 0xff, 'S'}) },
			`message 'E' declares 2147483647 bytes (at most 4096 expected)`},
		{"reset", func(n int, c net.Conn) {
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}, `error="connection reset by peer"`},
		{"closed", func(n int, c net.Conn) { c.Close() }, `error="the server closed the connection before it answered"`},
		{"error without a SQLSTATE", func(n int, c net.Conn) { c.Write(pgError("", "odd", "")) },
			`error="the server answered with an error without a SQLSTATE: odd"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startPGFake(t, tc.respond)
			o := runPortpatrol(t, nil, "--postgres.db.address="+f.addr, "--postgres.db.timeout=300ms",
				"--default-interval=100ms", "--timeout=1500ms")
			o.mustExit(t, 1)
			if !strings.Contains(o.stderr, tc.reason) {
				t.Errorf("stderr lacks %s:\n%s", tc.reason, o.stderr)
			}
			if o.elapsed > 10*time.Second {
				t.Errorf("took %v", o.elapsed)
			}
		})
	}
}

// The fake's bytes must mean to the real client what they mean to us.
func TestPostgresFakeAgainstRealClients(t *testing.T) {
	t.Parallel()
	pgIsready := requireProgram(t, "pg_isready", "/usr/lib/postgresql/*/bin/pg_isready")
	psql := requireProgram(t, "psql", "/usr/lib/postgresql/*/bin/psql")
	startingUp := startPGFake(t, func(n int, c net.Conn) { c.Write(pgError("57P03", "the database system is starting up", "")) })
	asking := startPGFake(t, func(n int, c net.Conn) { c.Write(pgAuthRequest(10)) })
	// The real client would ask for TLS first; our fake speaks none, as
	// the server would after refusing it.
	env := append(os.Environ(), "PGSSLMODE=disable", "PGGSSENCMODE=disable", "PGCONNECT_TIMEOUT=10", "PGPASSWORD=", "PGUSER=app")
	for _, tc := range []struct {
		f    *pgFake
		want string
		code int
	}{{startingUp, "rejecting connections", 1}, {asking, "accepting connections", 0}} {
		host, port, _ := net.SplitHostPort(tc.f.addr)
		cmd := exec.Command(pgIsready, "-h", host, "-p", port, "-d", "db")
		cmd.Env = env
		o := runCommand(t, cmd)
		if o.code != tc.code || !strings.Contains(o.stdout, tc.want) {
			t.Errorf("pg_isready against the fake: exit %d, %q; want %d, %q", o.code, o.stdout, tc.code, tc.want)
		}
	}
	host, port, _ := net.SplitHostPort(startingUp.addr)
	cmd := exec.Command(psql, "-h", host, "-p", port, "-w", "-c", "select 1", "db")
	cmd.Env = env
	o := runCommand(t, cmd)
	if o.code == 0 || !strings.Contains(o.stderr, "FATAL:  the database system is starting up") {
		t.Errorf("psql against the fake: exit %d, %q", o.code, o.stderr)
	}
}

func TestPostgresStartupErrors(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, []string{"PP_PG_URL=postgres://app:hunter2@db:0/x"},
		"--postgres.a.address=http://x",
		"--postgres.b.address=postgres://app:hunter2@db:99999/x",
		"--postgres.c.address=postgres://db/x?password=hunter2&port=nope",
		"--postgres.d.address=env:PP_PG_URL",
		"--postgres.e.address=/"+strings.Repeat("x", 120),
		"--log-level=debug")
	o.mustExit(t, 2)
	for _, want := range []string{
		`portpatrol: --postgres.a.address=http://x: unknown scheme "http": want postgres:// or postgresql://, host:port, a keyword/value string or a socket directory`,
		`portpatrol: --postgres.b.address=postgres://app:xxxxx@db:99999/x: the port must be a number from 1 to 65535`,
		`portpatrol: --postgres.c.address=postgres://db/x?password=xxxxx&port=nope: the port must be`,
		`portpatrol: --postgres.d.address=env:PP_PG_URL (resolved): the port must be`,
		`portpatrol: --postgres.e.address=/xxxxxxxx`,
		`the unix socket path is 135 bytes long; Linux allows at most 107`,
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if strings.Contains(o.stderr, "hunter2") {
		t.Errorf("a password was shown:\n%s", o.stderr)
	}
}

// A unix socket that is missing, not a socket, or not allowed is a reason
// naming the path, at once rather than at the timeout.
func TestPostgresSocketProblems(t *testing.T) {
	t.Parallel()
	requireRoot(t) // the permission case runs portpatrol as nobody
	base := nobodyDir(t)
	missing := filepath.Join(base, "missing")
	notSocket := filepath.Join(base, "file")
	locked := filepath.Join(base, "locked")
	for _, dir := range []string{missing, notSocket, locked} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(notSocket, ".s.PGSQL.5432"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(locked, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Chmod(locked, 0o700) // root's: nobody may not pass
	// A socket nobody may not write to, in a directory it may enter.
	l2, err := net.Listen("unix", filepath.Join(base, ".s.PGSQL.6000"))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	os.Chmod(filepath.Join(base, ".s.PGSQL.6000"), 0o600)

	cmd := exec.Command(ppBinary, "--postgres.missing.address="+missing, "--postgres.file.address=postgres:///db?host="+notSocket,
		"--postgres.locked.address="+locked, "--postgres.mode.address="+base+"?port=6000",
		"--default-interval=100ms", "--timeout=1500ms", "--postgres.missing.timeout=30s", "--postgres.locked.timeout=30s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	o := runCommand(t, cmd)
	o.mustExit(t, 1)
	for _, want := range []string{
		`error="no socket at ` + missing + `/.s.PGSQL.5432"`,
		`error="` + notSocket + `/.s.PGSQL.5432 is not a socket"`,
		`error="permission denied on ` + locked + `/.s.PGSQL.5432"`,
		`error="permission denied on ` + base + `/.s.PGSQL.6000"`,
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %s:\n%s", want, o.stderr)
		}
	}
}

func TestPostgresUnixSocketFake(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "pp-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.7000"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var params atomic.Value
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 200)
			n, _ := c.Read(buf)
			params.Store(string(buf[:n]))
			c.Write(pgAuthRequest(3))
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	for _, address := range []string{dir + "?port=7000", "postgres:///orders?host=" + dir + "&port=7000", "postgresql://%2F" + strings.ReplaceAll(dir[1:], "/", "%2F") + ":7000/orders"} {
		o := runPortpatrol(t, nil, "--postgres.sock.address="+address, "--timeout=20s")
		o.mustExit(t, 0)
	}
	if p, _ := params.Load().(string); !strings.Contains(p, "database\x00orders\x00") {
		t.Errorf("start-up message %q", p)
	}
	// A referenced socket directory is not quoted in reasons.
	missing := filepath.Join(dir, "missing")
	o := runPortpatrol(t, []string{"PP_PG_SOCK=" + missing}, "--postgres.sock.address=env:PP_PG_SOCK", "--timeout=300ms")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="no socket at [hidden]"`) || strings.Contains(o.stderr, missing) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// pgServer is a real PostgreSQL server run by the test as nobody.
type pgServer struct {
	bin     string // the directory of initdb, postgres, pg_ctl
	data    string
	port    int
	sockDir string
	log     string
}

func (s *pgServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// pgTool runs one of the server's programs as nobody.
func (s *pgServer) tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := asNobody(exec.Command(filepath.Join(s.bin, name), args...))
	cmd.Dir = filepath.Dir(s.data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func (s *pgServer) start(t *testing.T, settings ...string) {
	t.Helper()
	logFile, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	args := []string{"-D", s.data, "-p", strconv.Itoa(s.port), "-k", s.sockDir,
		"-c", "listen_addresses=127.0.0.1", "-c", "log_connections=on", "-c", "fsync=off"}
	for _, kv := range settings {
		args = append(args, "-c", kv)
	}
	cmd := asNobody(exec.Command(filepath.Join(s.bin, "postgres"), args...))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	startServer(t, cmd)
	waitForPort(t, s.addr(), 60*time.Second)
}

// sql runs statements as postgres over the unix socket.
// It waits out a server that is still starting up.
func (s *pgServer) sql(t *testing.T, statements string) string {
	t.Helper()
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		cmd := asNobody(exec.Command(filepath.Join(s.bin, "psql"), "-h", s.sockDir, "-p", strconv.Itoa(s.port), "-U", "postgres", "-d", "postgres",
			"-v", "ON_ERROR_STOP=1", "-qAtc", statements))
		cmd.Dir = filepath.Dir(s.data)
		out, err := cmd.CombinedOutput()
		if err == nil {
			return string(out)
		}
		if !strings.Contains(string(out), "the database system is starting up") || time.Now().After(end) {
			t.Fatalf("psql %q: %v\n%s", statements, err, out)
		}
	}
}

func (s *pgServer) logText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(s.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newPGServers makes one cluster with initdb and a copy of it, cleanly shut
// down: a primary and, with standby.signal, a standby without a primary,
// which waits for WAL for ever and (hot_standby=off) rejects every client.
func newPGServers(t *testing.T) (primary, standby *pgServer) {
	t.Helper()
	requireRoot(t)
	initdb := requireProgram(t, "/usr/lib/postgresql/*/bin/initdb")
	dir := nobodyDir(t)
	primary = &pgServer{bin: filepath.Dir(initdb), data: filepath.Join(dir, "primary"), port: freePort(t), sockDir: dir, log: filepath.Join(dir, "primary.log")}
	standby = &pgServer{bin: primary.bin, data: filepath.Join(dir, "standby"), port: freePort(t), sockDir: dir, log: filepath.Join(dir, "standby.log")}
	primary.tool(t, "initdb", "-D", primary.data, "-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
	// Password authentication for one role, so that the server asks for
	// one; trust for the others, so that they get in or hear an error.
	hba := "local all all trust\nhost all pwuser 127.0.0.1/32 scram-sha-256\nhost all md5user 127.0.0.1/32 md5\n" +
		"host all clearuser 127.0.0.1/32 password\nhost all all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(primary.data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", primary.data, standby.data).CombinedOutput(); err != nil {
		t.Fatalf("copying the cluster: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(standby.data, "standby.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(primary.data, "pg_hba.conf"), filepath.Join(standby.data, "pg_hba.conf"), filepath.Join(standby.data, "standby.signal")} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	return primary, standby
}

func TestPostgresRealServer(t *testing.T) {
	t.Parallel()
	primary, standby := newPGServers(t)
	primary.start(t)
	standby.start(t, "hot_standby=off")
	pgIsready := filepath.Join(primary.bin, "pg_isready")
	// The role with a password, by SCRAM (the default encryption).
	primary.sql(t, "CREATE ROLE pwuser LOGIN PASSWORD 'hunter2'")

	t.Run("primary is ready", func(t *testing.T) {
		port := strconv.Itoa(primary.port)
		sockDirURL := strings.ReplaceAll(primary.sockDir, "/", "%2F")
		o := runPortpatrol(t, nil,
			"--postgres.tcp.address="+primary.addr(),
			"--postgres.url.address=postgresql://postgres@"+primary.addr()+"/postgres?sslmode=disable",
			"--postgres.dir.address="+primary.sockDir+"?port="+port,
			"--postgres.file.address="+primary.sockDir+"/.s.PGSQL."+port,
			"--postgres.hostparam.address=postgres:///postgres?host="+primary.sockDir+"&port="+port,
			"--postgres.encoded.address=postgresql://"+sockDirURL+":"+port+"/postgres",
			"--postgres.norole.address="+primary.addr(), "--postgres.norole.user=nosuchrole",
			"--postgres.nodb.address="+primary.addr(), "--postgres.nodb.database=nosuchdb",
			"--postgres.password.address=postgres://pwuser:hunter2@"+primary.addr()+"/postgres",
			"--postgres.askedpw.address=postgres://pwuser@"+primary.addr()+"/postgres",
			"--timeout=30s", "--log-level=debug")
		o.mustExit(t, 0)
		if strings.Contains(o.stderr, "level=WARN") || strings.Contains(o.stderr, "hunter2") {
			t.Errorf("every form must be ready at once, and no password shown:\n%s", o.stderr)
		}
		if !strings.Contains(o.stderr, `address=postgres://pwuser:xxxxx@`+primary.addr()+`/postgres`) {
			t.Errorf("the address with a password is not shown redacted:\n%s", o.stderr)
		}
		log := primary.logText(t)
		for _, want := range []string{
			"connection authorized: user=postgres database=postgres application_name=portpatrol",
			`FATAL:  role "nosuchrole" does not exist`,
			`FATAL:  database "nosuchdb" does not exist`,
			"connection received: host=[local]",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("server log lacks %q:\n%s", want, log)
			}
		}
		// Ending politely: no complaint about how the client left.
		for _, bad := range []string{"expected SASL response", "unexpected EOF", "could not receive data", "reset by peer", "hunter2"} {
			if strings.Contains(log, bad) {
				t.Errorf("server log has %q:\n%s", bad, log)
			}
		}
	})

	t.Run("login", func(t *testing.T) {
		primary.sql(t, "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'Md5-S3cret'")
		primary.sql(t, "CREATE ROLE clearuser LOGIN PASSWORD 'Cl3ar-S3cret'")
		if got := primary.sql(t, "SELECT left(r1.rolpassword, 3) || ' ' || left(r2.rolpassword, 13) FROM pg_authid r1, pg_authid r2 WHERE r1.rolname = 'md5user' AND r2.rolname = 'pwuser'"); strings.TrimSpace(got) != "md5 SCRAM-SHA-256" {
			t.Fatalf("stored passwords %q, want md5 and SCRAM-SHA-256", got)
		}
		o := runPortpatrol(t, []string{"PP_PG_PW=Cl3ar-S3cret\n"}, // as a Secret leaves it
			"--postgres.scram.address=postgres://pwuser:hunter2@"+primary.addr()+"/postgres",
			"--postgres.md5.address=postgres://md5user:Md5-S3cret@"+primary.addr()+"/postgres",
			"--postgres.clear.address=postgres://clearuser@"+primary.addr()+"/postgres", "--postgres.clear.password=env:PP_PG_PW",
			"--postgres.trust.address="+primary.addr(), "--postgres.trust.login",
			// On a unix socket, sslmode is ignored, as by libpq.
			"--postgres.sock.address=postgresql://md5user:Md5-S3cret@"+strings.ReplaceAll(primary.sockDir, "/", "%2F")+":"+strconv.Itoa(primary.port)+"/postgres?sslmode=require",
			"--timeout=30s", "--log-level=debug")
		o.mustExit(t, 0)
		for _, secret := range []string{"hunter2", "Md5-S3cret", "Cl3ar-S3cret"} {
			if strings.Contains(o.stderr, secret) || strings.Contains(primary.logText(t), secret) {
				t.Errorf("%s is shown", secret)
			}
		}
		log := primary.logText(t)
		for _, want := range []string{"user=pwuser database=postgres application_name=portpatrol", "user=md5user", "user=clearuser"} {
			if !strings.Contains(log, "connection authorized: "+want) && !strings.Contains(log, want) {
				t.Errorf("server log lacks %q", want)
			}
		}

		// Refusals are the reason, with the server's code and message.
		for _, tc := range []struct {
			args   []string
			reason string
		}{
			{[]string{"--postgres.x.address=postgres://pwuser:wrong-Pw@" + primary.addr() + "/postgres"},
				`error="login refused: password authentication failed for user \"pwuser\" (SQLSTATE 28P01)"`},
			{[]string{"--postgres.x.address=postgres://nosuchrole:wrong-Pw@" + primary.addr() + "/postgres"},
				`error="login refused: role \"nosuchrole\" does not exist (SQLSTATE 28000)"`},
			{[]string{"--postgres.x.address=" + primary.addr(), "--postgres.x.login", "--postgres.x.database=later"},
				`error="login refused: database \"later\" does not exist (SQLSTATE 3D000)"`},
			{[]string{"--postgres.x.address=postgres://pwuser@" + primary.addr() + "/postgres", "--postgres.x.login"},
				`error="the server asks for a password (authentication method 10): give the password property, one in the connection string, PGPASSWORD or the password file"`},
			{[]string{"--postgres.x.address=postgres://pwuser:hunter2@" + primary.addr() + "/postgres?sslmode=require"},
				`error="the server does not accept TLS, which sslmode=require asks for"`},
		} {
			o := runPortpatrol(t, nil, append(tc.args, "--default-max-attempts=1", "--timeout=30s")...)
			o.mustExit(t, 1)
			if !strings.Contains(o.stderr, tc.reason) || strings.Contains(o.stderr, "wrong-Pw") || strings.Contains(o.stderr, "hunter2") {
				t.Errorf("%q: stderr lacks %s, or shows a password:\n%s", tc.args, tc.reason, o.stderr)
			}
		}
		// A server that answers the SSLRequest with N is there: an
		// inverted target keeps waiting, with or without a password.
		for _, conn := range []string{"postgres://pwuser:hunter2@" + primary.addr() + "/postgres?sslmode=require", "postgres://pwuser@" + primary.addr() + "/postgres?sslmode=require"} {
			o := runPortpatrol(t, nil, "--postgres.db.address="+conn, "--postgres.db.invert=true", "--default-interval=200ms", "--timeout=1500ms")
			if o.code != 1 || !strings.Contains(o.stderr, "the server does not accept TLS, which sslmode=require asks for") {
				t.Errorf("%s inverted: exit %d, want 1:\n%s", redactURL(conn), o.code, o.stderr)
			}
		}

		// A database a migration creates late: ready within an interval of
		// CREATE DATABASE.
		cmd := exec.Command(ppBinary, "--postgres.app.address=postgres://pwuser:hunter2@"+primary.addr()+"/created_late",
			"--default-interval=200ms", "--timeout=60s")
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitFor(t, &stderr, `(SQLSTATE 3D000)`)
		primary.sql(t, "CREATE DATABASE created_late")
		created := time.Now()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("portpatrol: %v\n%s", err, stderr.String())
		}
		t.Logf("ready %v after CREATE DATABASE", time.Since(created))
	})

	t.Run("standby is not ready until promoted", func(t *testing.T) {
		// The real client agrees that this standby rejects connections.
		out, _ := exec.Command(pgIsready, "-h", "127.0.0.1", "-p", strconv.Itoa(standby.port)).CombinedOutput()
		if !strings.Contains(string(out), "rejecting connections") {
			t.Fatalf("pg_isready: %s", out)
		}
		// The tcp type calls it ready; the postgres type does not.
		runPortpatrol(t, nil, "--tcp.db.address="+standby.addr(), "--timeout=10s").mustExit(t, 0)
		cmd := exec.Command(ppBinary, "--postgres.db.address="+standby.addr(), "--default-interval=200ms", "--timeout=120s")
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		waitFor(t, &stderr, `error="the server rejects connections: the database system is not accepting connections (SQLSTATE 57P03: Hot standby mode is disabled.)"`)
		select {
		case err := <-done:
			t.Fatalf("portpatrol ended before the promotion: %v\n%s", err, stderr.String())
		case <-time.After(time.Second):
		}
		standby.tool(t, "pg_ctl", "promote", "-D", standby.data, "-t", "60")
		promoted := time.Now()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("portpatrol: %v\n%s", err, stderr.String())
			}
			t.Logf("ready %v after pg_ctl promote returned", time.Since(promoted))
		case <-time.After(30 * time.Second):
			t.Fatalf("not ready 30 s after the promotion:\n%s", stderr.String())
		}
		if !strings.Contains(stderr.String(), "msg=ready target=db type=postgres") {
			t.Errorf("stderr:\n%s", stderr.String())
		}
	})
}

// The check itself ends when its context does, also against a silent server.
func TestPGCheckCancelled(t *testing.T) {
	t.Parallel()
	c := pgCheck{hosts: []pgHost{{network: "tcp", address: silentServer(t)}}, timeout: time.Minute, startup: pgStartupMessage("u", "d")}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.check(ctx)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("check = %v after %v", err, time.Since(start))
	}
}

func TestPostgresUserAndDatabase(t *testing.T) {
	t.Setenv("PP_PG_USER", "from-env")
	for _, tc := range []struct {
		args     []string
		user, db string
		err      string
	}{
		{args: []string{"--postgres.x.address=db"}, user: "postgres", db: "postgres"},
		{args: []string{"--postgres.x.address=postgres://u@db/d"}, user: "u", db: "d"},
		{args: []string{"--postgres.x.address=postgres://u@db/d", "--postgres.x.user=v"}, user: "v", db: "d"},
		{args: []string{"--postgres.x.address=postgres://u@db", "--postgres.x.database=e"}, user: "u", db: "e"},
		{args: []string{"--postgres.x.address=db", "--postgres.x.user=env:PP_PG_USER"}, user: "from-env", db: "from-env"},
		{args: []string{"--postgres.x.address=db", "--postgres.x.user=bad\x00name"}, err: "--postgres.x.user: must be a name without NUL bytes"},
		{args: []string{"--postgres.x.address=db", "--postgres.x.database=env:PP_PG_NO_SUCH_VARIABLE"}, err: "--postgres.x.database"},
		{args: []string{"--postgres.x.address=db", "--postgres.x.user="}, err: `--postgres.x.user="": must not be empty`},
	} {
		opts, err := parseArgs(tc.args)
		var targets []target
		if err == nil {
			targets, err = buildTargets(opts.targets, newLogger(opts, io.Discard))
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error containing %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		got := targets[0].checker.(pgCheck).startup
		if want := pgStartupMessage(tc.user, tc.db); !bytes.Equal(got, want) {
			t.Errorf("%q: start-up message %q, want %q", tc.args, got, want)
		}
	}
}

// PgBouncer answers the start-up itself: without a password it is ready
// while its server is down. A login makes it reach its server, so it is not
// ready until the server starts, with a reason that names the stage.
func TestPostgresThroughPgBouncer(t *testing.T) {
	t.Parallel()
	bouncer := requireProgram(t, "pgbouncer", "/usr/sbin/pgbouncer")
	primary, _ := newPGServers(t) // initialised, not started
	dir := nobodyDir(t)
	port := freePort(t)
	config := fmt.Sprintf(`[databases]
postgres = host=127.0.0.1 port=%d dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s/userlist.txt
logfile = %s/pgbouncer.log
server_login_retry = 1
admin_users = postgres
`, primary.port, port, dir, dir)
	for name, content := range map[string]string{"pgbouncer.ini": config, "userlist.txt": `"postgres" "B0uncer-S3cret"` + "\n"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	cmd := asNobody(exec.Command(bouncer, filepath.Join(dir, "pgbouncer.ini")))
	cmd.Dir = dir
	startServer(t, cmd)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitForPort(t, addr, 30*time.Second)

	// Without a password: the pooler's own password request, ready (the
	// false ready this login is for), with a debug note.
	o := runPortpatrol(t, nil, "--postgres.db.address="+addr, "--timeout=10s", "--log-level=debug")
	o.mustExit(t, 0)
	if !strings.Contains(o.stderr, "a pooler in front of it") {
		t.Errorf("no debug note that the check cannot see past a pooler:\n%s", o.stderr)
	}

	// PgBouncer refuses a login with 08P01, not 28P01: still a refusal,
	// which an inverted target does not take for gone.
	for conn, reason := range map[string]string{
		"postgres://postgres:Wr0ng-pw@" + addr + "/postgres":       "authentication failed (SQLSTATE 08P01)",
		"postgres://nosuchuser:Wr0ng-pw@" + addr + "/postgres":     "(SQLSTATE 08P01)",
		"postgres://postgres:B0uncer-S3cret@" + addr + "/nosuchdb": `no such database: nosuchdb (SQLSTATE 08P01)`,
	} {
		o := runPortpatrol(t, nil, "--postgres.db.address="+conn, "--postgres.db.invert=true", "--default-interval=200ms", "--timeout=1500ms")
		if o.code != 1 || !strings.Contains(o.stderr, reason) || strings.Contains(o.stderr, "Wr0ng-pw") || strings.Contains(o.stderr, "B0uncer-S3cret") {
			t.Errorf("%s inverted: exit %d, want 1 with %s:\n%s", redactURL(conn), o.code, reason, o.stderr)
		}
	}

	url := "postgres://postgres:B0uncer-S3cret@" + addr + "/postgres"
	o = runPortpatrol(t, nil, "--postgres.db.address="+url, "--default-max-attempts=2", "--default-interval=100ms", "--timeout=30s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="no ReadyForQuery within 1s after the password was sent"`) || strings.Contains(o.stderr, "B0uncer-S3cret") {
		t.Errorf("with its server down, stderr lacks the stage of the timeout, or shows the password:\n%s", o.stderr)
	}

	cmd2 := exec.Command(ppBinary, "--postgres.db.address="+url, "--default-interval=200ms", "--timeout=120s")
	var stderr syncBuffer
	cmd2.Stderr = &stderr
	if err := cmd2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd2.Process.Kill() })
	waitFor(t, &stderr, "no ReadyForQuery within 1s after")
	primary.start(t)
	started := time.Now()
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("portpatrol: %v\n%s", err, stderr.String())
	}
	t.Logf("ready %v after the server started:\n%s", time.Since(started), stderr.String())

	// Paused (its admin console's PAUSE), PgBouncer still completes logins
	// but holds every query: not ready, as psql's first query hangs.
	psql := requireProgram(t, "psql")
	admin := func(command string) {
		t.Helper()
		cmd := exec.Command(psql, "-X", "-w", "postgres://postgres:B0uncer-S3cret@"+addr+"/pgbouncer", "-c", command)
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pgbouncer %s: %v\n%s", command, err, out)
		}
	}
	admin("PAUSE")
	o = runPortpatrol(t, nil, "--postgres.db.address="+url, "--default-max-attempts=1", "--timeout=30s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="no answer to a query within 1s (a paused pooler, or its server down?)"`) {
		t.Errorf("paused: stderr lacks the reason:\n%s", o.stderr)
	}
	if v := psqlVerdict(t, url, nil, 3*time.Second); v != "not ready" {
		t.Errorf("psql against the paused pooler: %s, want not ready", v)
	}
	admin("RESUME")
	runPortpatrol(t, nil, "--postgres.db.address="+url, "--default-max-attempts=1", "--timeout=30s").mustExit(t, 0)
	if v := psqlVerdict(t, url, nil, 3*time.Second); v != "ready" {
		t.Errorf("psql against the resumed pooler: %s, want ready", v)
	}

	// Once the pooler has reached its server, it completes later logins
	// itself, also with the server down again: the query shows it.
	primary.tool(t, "pg_ctl", "stop", "-D", primary.data, "-m", "fast")
	o = runPortpatrol(t, nil, "--postgres.db.address="+url, "--default-max-attempts=1", "--timeout=30s")
	o.mustExit(t, 1)
	if v := psqlVerdict(t, url, nil, 5*time.Second); v != "not ready" {
		t.Errorf("psql against the pooler without its server: %s, want not ready", v)
	}
	t.Logf("with its server down again:\n%s", o.stderr)
}

// sslmode from the URL: the login goes over TLS (the server refuses the
// role without it), and the certificate is checked as the mode says. Under
// prefer, as libpq, a login refused over TLS is tried again without: the
// role plainuser may only log in without TLS (hostnossl), which a server
// with TLS refuses over TLS with 28000.
func TestPostgresLoginOverTLS(t *testing.T) {
	t.Parallel()
	primary, _ := newPGServers(t)
	pki := newTestPKI(t)
	cert, key, ca := writeServerPEM(t, pki, filepath.Dir(primary.data))
	hba := "local all all trust\nhostssl all pwuser 127.0.0.0/8 scram-sha-256\nhostnossl all pwuser 127.0.0.0/8 reject\n" +
		"hostnossl all plainuser 127.0.0.0/8 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(primary.data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	// 127.0.0.2 is loopback too, and not a name in the certificate.
	primary.start(t, "listen_addresses=127.0.0.1,127.0.0.2", "ssl=on", "ssl_cert_file="+cert, "ssl_key_file="+key)
	primary.sql(t, "CREATE ROLE pwuser LOGIN PASSWORD 'Tls-S3cret'; CREATE ROLE plainuser LOGIN PASSWORD 'Tls-S3cret'")
	port := strconv.Itoa(primary.port)
	url := func(host, query string) string {
		return "postgres://pwuser:Tls-S3cret@" + host + ":" + port + "/postgres?" + query
	}
	plain := func(password, query string) string {
		return "postgres://plainuser:" + password + "@127.0.0.1:" + port + "/postgres?" + query
	}
	for _, tc := range []struct{ address, reason string }{
		{url("127.0.0.1", "sslmode=require"), ""},
		{url("127.0.0.2", "sslmode=verify-ca&sslrootcert="+ca), ""},
		{url("127.0.0.1", "sslmode=verify-full&sslrootcert="+ca), ""},
		{url("127.0.0.2", "sslmode=verify-full&sslrootcert="+ca), "certificate is valid for 127.0.0.1, not 127.0.0.2"},
		{url("127.0.0.1", "sslmode=verify-full&sslrootcert=system"), "certificate signed by unknown authority"},
		// prefer, as libpq and without sslmode: TLS when the server has it.
		{url("127.0.0.1", "sslmode=prefer"), ""},
		{url("127.0.0.1", "connect_timeout=5"), ""},
		// allow, as libpq: without TLS first, then with it when refused.
		{url("127.0.0.1", "sslmode=allow"), ""},
		// Refused over TLS: prefer tries again without, require does not.
		{plain("Tls-S3cret", "sslmode=prefer"), ""},
		{plain("Tls-S3cret", "connect_timeout=5"), ""},
		{plain("Tls-S3cret", "sslmode=require"), `login refused: no pg_hba.conf entry for host \"127.0.0.1\", user \"plainuser\", database \"postgres\", SSL encryption (SQLSTATE 28000)`},
		{plain("Wrong-pw", "sslmode=prefer"), `error="login refused: password authentication failed for user \"plainuser\" (SQLSTATE 28P01); over TLS first: login refused: no pg_hba.conf entry for host \"127.0.0.1\", user \"plainuser\", database \"postgres\", SSL encryption (SQLSTATE 28000)"`},
	} {
		o := runPortpatrol(t, nil, "--postgres.db.address="+tc.address, "--default-max-attempts=1", "--timeout=30s")
		if tc.reason == "" {
			o.mustExit(t, 0)
		} else if o.mustExit(t, 1); !strings.Contains(o.stderr, tc.reason) {
			t.Errorf("%s: stderr lacks %s:\n%s", tc.address, tc.reason, o.stderr)
		}
		if strings.Contains(o.stderr, "Tls-S3cret") || strings.Contains(o.stderr, "Wrong-pw") {
			t.Errorf("the password is shown:\n%s", o.stderr)
		}
	}
	log := primary.logText(t)
	if !strings.Contains(log, "connection authorized: user=pwuser database=postgres application_name=portpatrol SSL enabled") {
		t.Errorf("the server log shows no login over TLS:\n%s", log)
	}
	if !strings.Contains(log, "connection authorized: user=plainuser database=postgres application_name=portpatrol\n") {
		t.Errorf("the server log shows no login without TLS:\n%s", log)
	}
	o := runPortpatrol(t, nil, "--postgres.db.address=postgres://pwuser:pw@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
	o.mustExit(t, 2)
	if !strings.Contains(o.stderr, "sslrootcert: cannot read /nonexistent/ca.pem: no such file or directory") {
		t.Errorf("start-up error:\n%s", o.stderr)
	}
	o = runPortpatrol(t, nil, "--postgres.db.address=postgres://pwuser:pw@db/x?sslmode=on")
	o.mustExit(t, 2)
	if !strings.Contains(o.stderr, `sslmode "on": want disable, allow, prefer, require, verify-ca or verify-full`) {
		t.Errorf("start-up error:\n%s", o.stderr)
	}
}

// Under prefer, a TLS handshake that fails is followed, as in libpq, by
// one more connection without TLS within the same attempt; under require
// the failed handshake is the reason.
func TestPostgresPreferAfterFailedHandshake(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	addr := tcpServer(t, func(c net.Conn) {
		conns.Add(1)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var first [8]byte
		if _, err := io.ReadFull(c, first[:]); err != nil {
			return
		}
		if binary.BigEndian.Uint32(first[4:]) == 80877103 { // SSLRequest
			c.Write([]byte("Snot a TLS server hello\n"))
			return
		}
		rest := make([]byte, binary.BigEndian.Uint32(first[:4])-8)
		if _, err := io.ReadFull(c, rest); err != nil {
			return
		}
		c.Write(append(append(pgAuthRequest(0), pgMessage('Z', []byte("I"))...), pgEmptyQueryAnswer()...))
		io.Copy(io.Discard, c)
	})
	for _, tc := range []struct {
		query  string
		code   int
		reason string
		conns  int32
	}{
		{"", 0, "", 2},
		{"?sslmode=prefer", 0, "", 2},
		{"?sslmode=require", 1, `error="TLS handshake: `, 1},
	} {
		conns.Store(0)
		o := runPortpatrol(t, nil, "--postgres.db.address=postgres://app@"+addr+"/orders"+tc.query, "--postgres.db.login=true",
			"--default-max-attempts=1", "--timeout=20s")
		o.mustExit(t, tc.code)
		if !strings.Contains(o.stderr, tc.reason) {
			t.Errorf("%q: stderr lacks %s:\n%s", tc.query, tc.reason, o.stderr)
		}
		if n := conns.Load(); n != tc.conns {
			t.Errorf("%q: %d connections, want %d", tc.query, n, tc.conns)
		}
	}
}
