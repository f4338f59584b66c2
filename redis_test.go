package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
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

func redisCheckFor(t *testing.T, args ...string) *redisCheck {
	t.Helper()
	return checkerFor(t, args...).(*redisCheck)
}

// redisBuildErrors returns the start-up errors of one redis target.
func redisBuildErrors(t *testing.T, args ...string) string {
	t.Helper()
	opts, err := parseArgs(args)
	if err != nil {
		return err.Error()
	}
	var msgs []string
	for _, s := range opts.targets {
		_, errs := buildTarget(s)
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
	}
	return strings.Join(msgs, "\n")
}

func TestParseRedisAddress(t *testing.T) {
	long := "/" + strings.Repeat("s", maxUnixPath-1)
	for _, tc := range []struct {
		in                              string
		network, address, user, pw, err string
		tls                             bool
		db                              int
	}{
		{in: "cache", network: "tcp", address: "cache:6379", db: -1},
		{in: "cache:6380", network: "tcp", address: "cache:6380", db: -1},
		{in: "[::1]:6380", network: "tcp", address: "[::1]:6380", db: -1},
		{in: "::1", network: "tcp", address: "[::1]:6379", db: -1},
		{in: "redis://cache", network: "tcp", address: "cache:6379", db: -1},
		{in: "redis://cache:7000/3", network: "tcp", address: "cache:7000", db: 3},
		{in: "REDIS://cache/", network: "tcp", address: "cache:6379", db: -1},
		{in: "redis://:pw@cache", network: "tcp", address: "cache:6379", pw: "pw", db: -1},
		{in: "redis://app:p%40ss@[::1]:7000/0", network: "tcp", address: "[::1]:7000", user: "app", pw: "p@ss", db: 0},
		{in: "redis://app@cache", network: "tcp", address: "cache:6379", user: "app", db: -1},
		{in: "rediss://cache", network: "tcp", address: "cache:6379", tls: true, db: -1},
		{in: "unix:///run/redis/redis.sock", network: "unix", address: "/run/redis/redis.sock", db: -1},
		{in: "unix:/run/redis.sock?db=2", network: "unix", address: "/run/redis.sock", db: 2},
		{in: "unix://" + long, network: "unix", address: long, db: -1},

		{in: "http://x", err: `unknown scheme "http": want host[:port], redis://, rediss:// or unix:///path`},
		{in: "tcp://x:6379", err: `unknown scheme "tcp"`},
		{in: "cache:0", err: "the port must be a number from 1 to 65535"},
		{in: "cache:65536", err: "the port must be a number from 1 to 65535"},
		{in: "redis://cache:99999", err: "the port must be a number from 1 to 65535"},
		{in: "redis://cache:/", err: "the port must be a number from 1 to 65535"},
		{in: "rediss://", err: "the URL has no host (want rediss://host[:port])"},
		{in: "rediss://:pw@:6380", err: "the URL has no host"},
		{in: "redis://cache/x", err: "the database must be a number from 0"},
		{in: "redis://cache/-1", err: "the database must be a number from 0"},
		{in: "redis://cache/1/2", err: "the database must be a number from 0"},
		{in: "redis://cache?db=1", err: "takes no ?query or #fragment"},
		{in: "redis://cache%zz", err: "not a valid URL"},
		{in: "cache/0", err: "want host[:port], redis://"},
		{in: "/run/redis.sock", err: "a socket path is written unix:///path/to/redis.sock"},
		{in: "unix://run/redis.sock", err: "want unix:///path/to/redis.sock (an absolute path)"},
		{in: "unix:redis.sock", err: "want unix:///path/to/redis.sock (an absolute path)"},
		{in: "unix:///r.sock?db=x", err: "the database must be a number from 0"},
		{in: "unix:///r.sock?password=x", err: "the only query parameter of a unix:// address is db"},
		{in: "unix:///r.sock?db=1&db=2", err: "the only query parameter of a unix:// address is db"},
		{in: "unix://:pw@/r.sock", err: "a unix:// address takes no user or password"},
		{in: "unix://" + long + "s", err: fmt.Sprintf("the unix socket path is %d bytes long; Linux allows at most 107", maxUnixPath+1)},
	} {
		a, err := parseRedisAddress(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if a.network != tc.network || a.address != tc.address || a.user != tc.user || a.password != tc.pw || a.tls != tc.tls || a.db != tc.db {
			t.Errorf("%q: got %+v, want %s %s user %q password %q tls %v db %d", tc.in, *a, tc.network, tc.address, tc.user, tc.pw, tc.tls, tc.db)
		}
	}
}

func TestRedisStartupErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	pki := newTestPKI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis.db.address=http://x"}, `--redis.db.address=http://x: unknown scheme "http"`},
		{[]string{"--redis.db.address=redis://:pw-SECRET@x:70000"}, "--redis.db.address=redis://:xxxxx@x:70000: the port must be a number from 1 to 65535"},
		{[]string{"--redis.db.address=redis://x", "--redis.db.ca-file=" + pki.caFile}, "--redis.db.ca-file needs a rediss:// address"},
		{[]string{"--redis.db.address=x", "--redis.db.skip-tls-verify=false"}, "--redis.db.skip-tls-verify needs a rediss:// address"},
		{[]string{"--redis.db.address=unix:///r.sock", "--redis.db.cert-file=" + pki.clientCert, "--redis.db.key-file=" + pki.clientKey},
			"--redis.db.cert-file needs a rediss:// address"},
		{[]string{"--redis.db.address=rediss://x", "--redis.db.cert-file=" + pki.clientCert}, "--redis.db.cert-file and --redis.db.key-file go together"},
		{[]string{"--redis.db.address=rediss://x", "--redis.db.ca-file=/nonexistent/ca.pem"}, "--redis.db.ca-file: cannot read /nonexistent/ca.pem"},
		{[]string{"--redis.db.address=x", "--redis.db.user=app"}, "--redis.db.user: a user needs a password: set --redis.db.password too"},
		{[]string{"--redis.db.address=redis://app@x"}, "--redis.db.address=redis://app@x: a user needs a password"},
		{[]string{"--redis.db.address=x", "--redis.db.password=file:" + empty}, "--redis.db.password: the password is empty"},
		// An empty user or password, written or read, is a mistake (an unset
		// $REDIS_PASSWORD in a shell), never a quiet "no AUTH".
		{[]string{"--redis.db.address=x", "--redis.db.password="}, `--redis.db.password="": must not be empty: leave the property out for no password`},
		{[]string{"--redis.db.address=x", "--redis.db.password", ""}, `--redis.db.password="": must not be empty`},
		{[]string{"--redis.db.address=x", "--redis.db.user=", "--redis.db.password=pw"}, `--redis.db.user="": must not be empty: leave the property out for no user`},
		{[]string{"--redis.db.address=x", "--redis.db.user=file:" + empty, "--redis.db.password=pw"}, "--redis.db.user: the user is empty"},
		{[]string{"--redis.db.address=x", "--redis.db.password=file:/nonexistent/pw"}, "--redis.db.password: file:/nonexistent/pw: no such file or directory"},
		{[]string{"--redis.db.address=x", "--redis.db.password=env:PP_REDIS_UNSET"}, "--redis.db.password: environment variable PP_REDIS_UNSET is not set"},
		{[]string{"--redis.db.address=unix://" + strings.Repeat("/s", 54)}, "the unix socket path is 108 bytes long"},
	} {
		got := redisBuildErrors(t, tc.args...)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%q: errors %q, want %q", tc.args, got, tc.want)
		}
		if strings.Contains(got, "SECRET") {
			t.Errorf("%q: the error shows the password: %q", tc.args, got)
		}
	}
	// A user in the address with the password from a property is fine.
	if got := redisBuildErrors(t, "--redis.db.address=redis://app@x", "--redis.db.password=pw"); got != "" {
		t.Errorf("user in the URL, password property: %q", got)
	}

	o := runPortpatrol(t, []string{"PP_EMPTY="}, "--redis.db.address=http://x", "--redis.c.address=x", "--redis.c.ca-file=/x",
		"--redis.e.address=x", "--redis.e.password=", "--redis.f.address=x", "--redis.f.password=env:PP_EMPTY")
	o.mustExit(t, 2)
	for _, want := range []string{"--redis.db.address=http://x: unknown scheme", "--redis.c.ca-file needs a rediss:// address",
		`--redis.e.password="": must not be empty: leave the property out for no password`, "--redis.f.password: the password is empty"} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
}

// The password property wins over the URL's, and so does the user.
func TestRedisCredentialPrecedence(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("from-file\n"), 0o600)
	for _, tc := range []struct {
		args       []string
		user, pass string
	}{
		{[]string{"--redis.c.address=redis://u:url-pw@x"}, "u", "url-pw"},
		{[]string{"--redis.c.address=redis://:url-pw@x", "--redis.c.password=file:" + pwFile}, "", "from-file"},
		{[]string{"--redis.c.address=redis://u:url-pw@x", "--redis.c.user=app", "--redis.c.password=pw"}, "app", "pw"},
		{[]string{"--redis.c.address=x", "--redis.c.password=pw"}, "", "pw"},
	} {
		c := redisCheckFor(t, tc.args...)
		if c.user != tc.user || c.password != tc.pass {
			t.Errorf("%q: user %q password %q, want %q %q", tc.args, c.user, c.password, tc.user, tc.pass)
		}
	}
}

func TestRESPCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "*1\r\n$4\r\nPING\r\n"},
		{[]string{"AUTH", "p w\r\n"}, "*2\r\n$4\r\nAUTH\r\n$5\r\np w\r\n\r\n"},
		{[]string{"AUTH", "app", ""}, "*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$0\r\n\r\n"},
	} {
		if got := string(respCommand(tc.args...)); got != tc.want {
			t.Errorf("respCommand(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestReadRESPReply(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "+PONG\r\n", want: "+PONG"},
		{in: "-LOADING Redis is loading the dataset in memory\r\n", want: "-LOADING Redis is loading the dataset in memory"},
		{in: "+\r\n", want: "+"},
		{in: "-ERR a\x00b\xff\r\n", want: "-ERR a\uFFFDb\uFFFD"},
		{in: "$4\r\nPONG\r\n", want: "a bulk string"},
		{in: ":1\r\n", want: "an integer"},
		{in: "*1\r\n$4\r\nPONG\r\n", want: "an array"},
		{in: "%1\r\n", want: "a map"},
		{in: "HTTP/1.1 400 Bad Request\r\n", err: `not a Redis reply (it starts with 'H')`},
		{in: "\r\n", err: `not a Redis reply (it starts with '\r')`},
		{in: "+PONG\n", err: "a reply line that does not end in CRLF"},
		{in: "+PONG", err: "the server closed the connection in the middle of a reply"},
		{in: "", err: "EOF"},
		{in: "+" + strings.Repeat("x", maxRESPLine), err: "a reply line longer than 1024 bytes"},
		{in: "+" + strings.Repeat("x", maxRESPLine-3) + "\r\n", want: "+" + strings.Repeat("x", maxRESPLine-3)},
	} {
		r, err := readRESPReply(bufio.NewReaderSize(strings.NewReader(tc.in), maxRESPLine))
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%.40q: reply %v, error %v; want error %q", tc.in, r, err, tc.err)
		case tc.err == "" && (err != nil || r.String() != tc.want):
			t.Errorf("%.40q: reply %q, error %v; want %q", tc.in, r.String(), err, tc.want)
		}
	}
}

func FuzzRESPReply(f *testing.F) {
	for _, seed := range []string{"+PONG\r\n", "-LOADING loading\r\n", "-NOAUTH x\r\n+PONG\r\n", "$-1\r\n", "*2\r\n", "+OK\n", "\xff\r\n", "+a\rb\r\n", ""} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		r, err := readRESPReply(bufio.NewReaderSize(src, maxRESPLine))
		if read := len(data) - src.Len(); read > maxRESPLine {
			t.Fatalf("read %d bytes for one reply", read)
		}
		if err != nil {
			return
		}
		if _, known := respTypeNames[r.kind]; !known && r.kind != respSimpleString && r.kind != respError {
			t.Fatalf("reply of unknown type %q", r.kind)
		}
		if len(r.text) > 3*maxRESPLine || strings.ContainsAny(r.text, "\r\n\x00") {
			t.Fatalf("reply text %q", r.text)
		}
	})
}

// fakeRedis serves each connection with serve(n, conn, commands), n counting
// connections from 1, commands yielding each command the client sends.
func fakeRedis(t *testing.T, serve func(n int64, c net.Conn, next func() []string)) string {
	t.Helper()
	var count atomic.Int64
	return tcpServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		serve(count.Add(1), c, func() []string { return readCommand(r) })
	})
}

// readCommand reads one array of bulk strings, as a client sends it; nil when
// the connection ends or sends something else.
func readCommand(r *bufio.Reader) []string {
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "*") {
		return nil
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	var args []string
	for range n {
		head, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(head, "$") {
			return nil
		}
		size, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil
		}
		args = append(args, string(buf[:size]))
	}
	return args
}

// answering replies to each command with reply(command) until the client
// leaves.
func answering(reply func(cmd []string) string) func(int64, net.Conn, func() []string) {
	return func(_ int64, c net.Conn, next func() []string) {
		for cmd := next(); cmd != nil; cmd = next() {
			cmd[0] = strings.ToUpper(cmd[0]) // Redis reads command names in any case
			if out := reply(cmd); out != "" {
				c.Write([]byte(out))
			}
		}
	}
}

func TestRedisAgainstFakes(t *testing.T) {
	byCommand := func(auth, ping string) func(int64, net.Conn, func() []string) {
		return answering(func(cmd []string) string {
			switch cmd[0] {
			case "AUTH":
				return auth
			case "PING":
				return ping
			}
			return "+OK\r\n"
		})
	}
	endless := func(_ int64, c net.Conn, next func() []string) {
		next()
		c.Write([]byte("+"))
		chunk := bytes.Repeat([]byte("x"), 4096)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
	reset := func(_ int64, c net.Conn, next func() []string) {
		next()
		c.(*net.TCPConn).SetLinger(0) // close with RST
	}
	for _, tc := range []struct {
		name     string
		serve    func(int64, net.Conn, func() []string)
		password bool
		want     string // "" is ready
	}{
		{"pong", byCommand("", "+PONG\r\n"), false, ""},
		{"pong after auth", byCommand("+OK\r\n", "+PONG\r\n"), true, ""},
		{"loading", byCommand("", "-LOADING Redis is loading the dataset in memory\r\n"), false, "LOADING Redis is loading the dataset in memory"},
		{"loading, valkey words", byCommand("", "-LOADING Valkey is loading the dataset in memory\r\n"), false, "LOADING Valkey is loading the dataset in memory"},
		{"busy", byCommand("", "-BUSY Redis is busy running a script.\r\n"), false, "BUSY Redis is busy running a script."},
		{"masterdown", byCommand("", "-MASTERDOWN Link with MASTER is down\r\n"), false, "MASTERDOWN Link with MASTER is down"},
		{"misconf", byCommand("", "-MISCONF unable to persist\r\n"), false, "MISCONF unable to persist"},
		{"tryagain", byCommand("", "-TRYAGAIN Multiple keys request during rehashing\r\n"), false, "TRYAGAIN Multiple keys request during rehashing"},
		{"denied", byCommand("", "-DENIED replica\r\n"), false, "DENIED replica"},
		{"loading during auth", byCommand("-LOADING loading\r\n", "+PONG\r\n"), true, "LOADING loading"},
		{"noauth without a password is up", byCommand("", "-NOAUTH Authentication required.\r\n"), false, ""},
		{"noauth with a password", byCommand("+OK\r\n", "-NOAUTH Authentication required.\r\n"), true, "unexpected reply to PING: -NOAUTH Authentication required."},
		{"noauth to auth", byCommand("-NOAUTH Authentication required.\r\n", "+PONG\r\n"), true, "AUTH failed: NOAUTH Authentication required."},
		{"wrongpass", byCommand("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "+PONG\r\n"), true, "AUTH failed: WRONGPASS invalid username-password pair or user is disabled."},
		{"auth error", byCommand("-ERR invalid password\r\n", "+PONG\r\n"), true, "AUTH failed: ERR invalid password"},
		{"auth odd reply", byCommand(":1\r\n", "+PONG\r\n"), true, "unexpected reply to AUTH: an integer"},
		{"other error", byCommand("", "-ERR unknown command 'PING'\r\n"), false, "unexpected reply to PING: -ERR unknown command 'PING'"},
		{"noperm", byCommand("+OK\r\n", "-NOPERM User app has no permissions to run the 'ping' command\r\n"), true, "unexpected reply to PING: -NOPERM"},
		{"not pong", byCommand("", "+OK\r\n"), false, "unexpected reply to PING: +OK"},
		{"bulk pong", byCommand("", "$4\r\nPONG\r\n"), false, "unexpected reply to PING: a bulk string"},
		{"garbage", byCommand("", "HTTP/1.1 400 Bad Request\r\n\r\n"), false, "not a Redis reply (it starts with 'H')"},
		{"endless line", endless, false, "a reply line longer than 1024 bytes"},
		{"silence", func(_ int64, c net.Conn, next func() []string) { next(); time.Sleep(2 * time.Second) }, false, "no answer within 300ms"},
		{"closed", func(_ int64, _ net.Conn, next func() []string) { next() }, false, "the server closed the connection before it answered"},
		{"half a line", func(_ int64, c net.Conn, next func() []string) { next(); c.Write([]byte("+PON")) }, false, "the server closed the connection in the middle of a reply"},
		{"reset", reset, false, "connection reset by peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeRedis(t, tc.serve)
			args := []string{"--redis.c.address=" + addr, "--redis.c.timeout=300ms"}
			if tc.password {
				args = append(args, "--redis.c.password=pw")
			}
			start := time.Now()
			err := attempt(redisCheckFor(t, args...))
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("the attempt took %v", took)
			}
			switch {
			case tc.want == "" && !isReady(err):
				t.Errorf("not ready: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
			// NOAUTH, and only NOAUTH, is up but blind.
			if _, isBlind := err.(blind); isBlind != strings.HasPrefix(tc.name, "noauth without") {
				t.Errorf("blind: %v (%v)", isBlind, err)
			}
		})
	}
}

// The exchange is AUTH (with the user when there is one), PING, QUIT, each
// sent as an array of bulk strings on a new connection.
func TestRedisCommandsSent(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "[PING] [QUIT]"},
		{[]string{"--redis.c.password=pw"}, "[AUTH pw] [PING] [QUIT]"},
		{[]string{"--redis.c.user=app", "--redis.c.password=pw"}, "[AUTH app pw] [PING] [QUIT]"},
		{[]string{"--redis.c.password=pw", "--redis.c.address=redis://ADDR/2"}, "[AUTH pw] [SELECT 2] [PING] [QUIT]"},
		{[]string{"--redis.c.address=redis://ADDR/0"}, "[PING] [QUIT]"},
		{[]string{"--redis.c.address=redis://ADDR/15"}, "[SELECT 15] [PING] [QUIT]"},
	} {
		var mu sync.Mutex
		got := map[int64][]string{} // commands by connection
		addr := fakeRedis(t, func(n int64, c net.Conn, next func() []string) {
			for cmd := next(); cmd != nil; cmd = next() {
				mu.Lock()
				got[n] = append(got[n], fmt.Sprint(cmd))
				mu.Unlock()
				if cmd[0] == "PING" {
					c.Write([]byte("+PONG\r\n"))
				} else if cmd[0] == "AUTH" || cmd[0] == "SELECT" {
					c.Write([]byte("+OK\r\n"))
				}
			}
		})
		args := []string{"--redis.c.address=" + addr}
		if len(tc.args) > 0 && strings.Contains(tc.args[len(tc.args)-1], "ADDR") {
			args = nil
		}
		for _, a := range tc.args {
			args = append(args, strings.Replace(a, "ADDR", addr, 1))
		}
		c := redisCheckFor(t, args...)
		for range 2 {
			if err := attempt(c); err != nil {
				t.Fatal(err)
			}
		}
		// The server sees QUIT after the client has gone on.
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			s := fmt.Sprint(got)
			mu.Unlock()
			want := fmt.Sprintf("map[1:[%s] 2:[%s]]", tc.want, tc.want)
			if s == want {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%q: commands by connection %s, want %s", tc.args, s, want)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// A server that is loading is not ready; once it answers PONG the target
// becomes ready at its next attempt, end to end.
func TestRedisLoadingThenReady(t *testing.T) {
	t.Parallel()
	addr := fakeRedis(t, func(n int64, c net.Conn, next func() []string) {
		for cmd := next(); cmd != nil; cmd = next() {
			switch {
			case cmd[0] == "PING" && n <= 2:
				c.Write([]byte("-LOADING Redis is loading the dataset in memory\r\n"))
			case cmd[0] == "PING":
				c.Write([]byte("+PONG\r\n"))
			}
		}
	})
	o := runPortpatrol(t, nil, "--timeout=30s", "--redis.cache.address="+addr, "--redis.cache.interval=100ms")
	o.mustExit(t, 0)
	for _, want := range []string{`error="LOADING Redis is loading the dataset in memory"`, "msg=ready target=cache type=redis", "attempts=3"} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
}

// The fake's replies are what the real client reads as Redis's own.
func TestRedisFakeAgainstRedisCli(t *testing.T) {
	cli := requireProgram(t, "redis-cli")
	addr := fakeRedis(t, answering(func(cmd []string) string {
		if cmd[0] == "PING" {
			return "-LOADING Redis is loading the dataset in memory\r\n"
		}
		return "+OK\r\n"
	}))
	host, port, _ := net.SplitHostPort(addr)
	out, _ := exec.Command(cli, "-h", host, "-p", port, "--no-raw", "ping").CombinedOutput()
	if got := strings.TrimSpace(string(out)); got != "(error) LOADING Redis is loading the dataset in memory" {
		t.Errorf("redis-cli ping against the fake printed %q", got)
	}
}

// realRedis is a redis-server started by the test.
type realRedis struct {
	addr, socket, dir string
	tlsAddr           string
}

// startRedis starts the Debian redis-server as nobody on free loopback ports
// with a generated configuration plus extra lines.
func startRedis(t *testing.T, extra ...string) realRedis {
	t.Helper()
	requireRoot(t)
	return startRedisIn(t, nobodyDir(t), extra...)
}

// startRedisIn starts it in dir, which may hold a dataset to load.
func startRedisIn(t *testing.T, dir string, extra ...string) realRedis {
	t.Helper()
	bin := requireProgram(t, "redis-server", "/usr/bin/redis-server")
	r := realRedis{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), socket: filepath.Join(dir, "redis.sock"), dir: dir}
	_, port, _ := net.SplitHostPort(r.addr)
	conf := []string{
		"port " + port, "bind 127.0.0.1", "dir " + dir, "unixsocket " + r.socket, "unixsocketperm 700",
		"daemonize no", `save ""`, "appendonly no", "logfile " + filepath.Join(dir, "redis.log"),
	}
	for _, line := range extra {
		if strings.HasPrefix(line, "tls-port ") {
			r.tlsAddr = "127.0.0.1:" + strings.TrimPrefix(line, "tls-port ")
		}
	}
	confFile := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confFile, []byte(strings.Join(append(conf, extra...), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startServer(t, asNobody(exec.Command(bin, confFile)))
	waitForRedis(t, r)
	return r
}

func waitForRedis(t *testing.T, r realRedis) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err1 := net.Dial("tcp", r.addr)
		if err1 == nil {
			c.Close()
			if r.tlsAddr == "" {
				return
			}
			if c, err := net.Dial("tcp", r.tlsAddr); err == nil {
				c.Close()
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	t.Fatalf("redis-server did not start within 30s; its log:\n%s", log)
}

func TestRedisRealServer(t *testing.T) {
	t.Parallel()
	open := startRedis(t)
	locked := startRedis(t, "requirepass pw-main", "user app on >pw-app ~* +@all")
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	os.WriteFile(pwFile, []byte("pw-main\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string // "" is ready
	}{
		{"no password", []string{"--redis.c.address=" + open.addr}, ""},
		{"redis:// with a db", []string{"--redis.c.address=redis://" + open.addr + "/3"}, ""},
		{"a db beyond databases", []string{"--redis.c.address=redis://" + open.addr + "/16"}, "SELECT 16: ERR DB index is out of range"},
		{"a db beyond databases, with a password", []string{"--redis.c.address=redis://:pw-main@" + locked.addr + "/16"}, "SELECT 16: ERR DB index is out of range"},
		{"unix socket", []string{"--redis.c.address=unix://" + open.socket}, ""},
		{"unix socket with a db", []string{"--redis.c.address=unix:" + open.socket + "?db=1"}, ""},
		{"requirepass, password by file reference", []string{"--redis.c.address=" + locked.addr, "--redis.c.password=file:" + pwFile}, ""},
		{"requirepass in the URL", []string{"--redis.c.address=redis://:pw-main@" + locked.addr}, ""},
		{"ACL user by property", []string{"--redis.c.address=" + locked.addr, "--redis.c.user=app", "--redis.c.password=pw-app"}, ""},
		{"ACL user in the URL", []string{"--redis.c.address=redis://app:pw-app@" + locked.addr + "/0"}, ""},
		{"property password wins over the URL's", []string{"--redis.c.address=redis://app:wrong@" + locked.addr, "--redis.c.password=pw-app"}, ""},
		{"unix socket with a password", []string{"--redis.c.address=unix://" + locked.socket, "--redis.c.password=file:" + pwFile}, ""},
		// Without a password, the server only says NOAUTH: it is up.
		{"requirepass, no password", []string{"--redis.c.address=" + locked.addr}, ""},
		{"wrong password", []string{"--redis.c.address=" + locked.addr, "--redis.c.password=wrong"}, "AUTH failed: WRONGPASS invalid username-password pair or user is disabled."},
		{"wrong ACL password", []string{"--redis.c.address=" + locked.addr, "--redis.c.user=app", "--redis.c.password=pw-main"}, "AUTH failed: WRONGPASS invalid username-password pair or user is disabled."},
		{"password the server does not expect", []string{"--redis.c.address=" + open.addr, "--redis.c.password=pw"}, "AUTH failed: ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := attempt(redisCheckFor(t, tc.args...))
			switch {
			case tc.want == "" && !isReady(err):
				t.Errorf("not ready: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// writeServerPEM writes the test PKI's server certificate and key where an
// unprivileged server can read them.
func writeServerPEM(t *testing.T, pki testPKI, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(pki.server.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem")
	for name, data := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.server.Certificate[0]}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		caFile:   ca,
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(name, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, caFile
}

// rediss:// against the real server speaking TLS on its tls-port.
func TestRedisRealTLS(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	pki := newTestPKI(t)
	pemDir := nobodyDir(t)
	cert, key, ca := writeServerPEM(t, pki, pemDir)
	r := startRedis(t, "tls-port "+strconv.Itoa(freePort(t)), "tls-cert-file "+cert, "tls-key-file "+key,
		"tls-ca-cert-file "+ca, "tls-auth-clients no", "requirepass pw-tls")
	_, tlsPort, _ := net.SplitHostPort(r.tlsAddr)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"trusted CA", []string{"--redis.c.address=rediss://:pw-tls@" + r.tlsAddr, "--redis.c.ca-file=" + pki.caFile}, ""},
		{"by name, db", []string{"--redis.c.address=rediss://localhost:" + tlsPort + "/0", "--redis.c.password=pw-tls", "--redis.c.ca-file=" + pki.caFile}, ""},
		{"skip-tls-verify", []string{"--redis.c.address=rediss://:pw-tls@" + r.tlsAddr, "--redis.c.skip-tls-verify"}, ""},
		{"unknown CA", []string{"--redis.c.address=rediss://:pw-tls@" + r.tlsAddr}, "TLS handshake: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"wrong password over TLS", []string{"--redis.c.address=rediss://:nope@" + r.tlsAddr, "--redis.c.ca-file=" + pki.caFile}, "AUTH failed: WRONGPASS invalid username-password pair or user is disabled."},
		{"TLS to the plain port", []string{"--redis.c.address=rediss://" + r.addr, "--redis.c.ca-file=" + pki.caFile}, "TLS handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := attempt(redisCheckFor(t, tc.args...))
			switch {
			case tc.want == "" && !isReady(err):
				t.Errorf("not ready: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// A socket that is missing, a path that is not a socket, and a socket the
// user may not open are reasons that name the path.
func TestRedisSocketReasons(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "file")
	os.WriteFile(notSocket, nil, 0o600)
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.sock"), "no socket at " + filepath.Join(dir, "missing.sock")},
		{notSocket, notSocket + " is not a socket"},
		{stale, "connection refused on " + stale},
	} {
		err := attempt(redisCheckFor(t, "--redis.c.address=unix://"+tc.path))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}

	// Permission denied needs an unprivileged client: portpatrol as nobody
	// against a socket only root may open.
	requireRoot(t)
	private := filepath.Join(nobodyDir(t), "private")
	os.Mkdir(private, 0o700)
	sock := filepath.Join(private, "redis.sock")
	if l, err = net.Listen("unix", sock); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(ppBinary, "--timeout=1s", "--redis.c.address=unix://"+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	o := runCommand(t, cmd)
	o.mustExit(t, 1)
	if want := `error="permission denied on ` + sock + `"`; !strings.Contains(o.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
	}
}

// End to end against real servers: several redis targets at once, a
// deadline and a command run in portpatrol's place; and a wrong password
// that never shows, even at debug level.
func TestRedisEndToEnd(t *testing.T) {
	t.Parallel()
	open := startRedis(t)
	locked := startRedis(t, "requirepass pw-SECRET-1", "user app on >pw-SECRET-2 ~* +@all")
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("pw-SECRET-1\n"), 0o600)
	env := []string{"PP_REDIS_URL=redis://app:pw-SECRET-2@" + locked.addr + "/0"}

	o := runPortpatrol(t, env, "--timeout=30s", "--log-level=debug",
		"--redis.a.address="+open.addr,
		"--redis.b.address=unix://"+open.socket,
		"--redis.c.address="+locked.addr, "--redis.c.password=file:"+pwFile,
		"--redis.d.address=env:PP_REDIS_URL",
		"--redis.e.address=redis://app:pw-SECRET-2@"+locked.addr,
		"--", "sh", "-c", "echo command ran")
	o.mustExit(t, 0)
	if o.stdout != "command ran\n" {
		t.Errorf("stdout %q, want the command's output", o.stdout)
	}
	if !strings.Contains(o.stderr, "msg=\"all targets ready\" targets=5") || !strings.Contains(o.stderr, "address=redis://app:xxxxx@") {
		t.Errorf("stderr:\n%s", o.stderr)
	}

	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("wrong-SECRET-3"), 0o600)
	o2 := runPortpatrol(t, nil, "--timeout=1s", "--log-level=debug", "--default-interval=100ms",
		"--redis.c.address="+locked.addr, "--redis.c.password=file:"+bad,
		"--redis.d.address=redis://app:wrong-SECRET-4@"+locked.addr,
		"--redis.e.address=unix://"+locked.socket, "--redis.e.user=app", "--redis.e.password=wrong-SECRET-5",
		"--", "sh", "-c", "echo must not run")
	o2.mustExit(t, 1)
	if strings.Count(o2.stderr, `error="AUTH failed: WRONGPASS invalid username-password pair or user is disabled."`) < 3 || o2.stdout != "" {
		t.Errorf("want three targets failing authentication:\n%s", o2.stderr)
	}
	all := o.stdout + o.stderr + o2.stdout + o2.stderr
	if strings.Contains(all, "SECRET") {
		t.Errorf("a password leaked:\n%s", all)
	}
}

// A reason never carries the password, even if the server's reply quotes it.
func TestRedisPasswordHiddenInReasons(t *testing.T) {
	addr := fakeRedis(t, answering(func(cmd []string) string {
		if cmd[0] == "AUTH" {
			return "+OK\r\n"
		}
		return "-LOADING still loading for pw-SECRET-7\r\n"
	}))
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("pw-SECRET-7\n"), 0o600)
	o := runPortpatrol(t, nil, "--timeout=500ms", "--log-level=debug", "--redis.c.address=redis://:pw-SECRET-7@"+addr,
		"--redis.d.address="+addr, "--redis.d.password=file:"+pwFile)
	o.mustExit(t, 1)
	if strings.Contains(o.stderr, "SECRET") || strings.Count(o.stderr, `error="LOADING still loading for [hidden]"`) < 2 {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// The real server, reading its dataset: PING gets -LOADING (not ready) until
// it is done. A client without a password only hears NOAUTH, which counts as
// up: the server does not say whether it is loading before AUTH.
func TestRedisRealLoading(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	first := startRedis(t)
	// A dataset of 100 keys that do not compress, saved for the next start.
	c, err := net.Dial("tcp", first.addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	value := make([]byte, 1500)
	for i := range 100 {
		rand.Read(value)
		c.Write(respCommand("SET", "k"+strconv.Itoa(i), string(value)))
	}
	c.Write(respCommand("SAVE"))
	for range 101 {
		if reply, err := readRESPReply(r); err != nil || reply.String() != "+OK" {
			t.Fatalf("filling the dataset: %v %v", reply, err)
		}
	}
	c.Write(respCommand("SHUTDOWN", "NOSAVE"))
	io.Copy(io.Discard, r) // until the server has gone
	c.Close()

	// key-load-delay (microseconds per key, a setting Redis's own tests use)
	// makes the load take about 2s; events are served every KiB meanwhile.
	loading := startRedisIn(t, first.dir, "key-load-delay 20000", "loading-process-events-interval-bytes 1024", "requirepass pw")
	o := runPortpatrol(t, nil, "--timeout=60s", "--default-interval=100ms",
		"--redis.auth.address="+loading.addr, "--redis.auth.password=pw",
		"--redis.noauth.address="+loading.addr)
	o.mustExit(t, 0)
	for _, want := range []string{
		`msg="not ready" target=auth type=redis address=` + loading.addr + ` attempt=1 error="LOADING Redis is loading the dataset in memory"`,
		"msg=ready target=auth",
		"msg=ready target=noauth type=redis address=" + loading.addr + " attempts=1 ",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
}

// A password from a variable that a Secret filled ends in a newline, which
// is not part of it.
func TestRedisPasswordDropsOneNewline(t *testing.T) {
	t.Setenv("PP_REDIS_PW_NEWLINE", "pw-main\n")
	if c := redisCheckFor(t, "--redis.c.address=cache", "--redis.c.password=env:PP_REDIS_PW_NEWLINE"); c.password != "pw-main" {
		t.Errorf("password %q, want pw-main", c.password)
	}
}

// A refused AUTH reads as redis-cli prints it, the server's whole message,
// and an inverted target whose password is refused is not gone.
func TestRedisAuthAgainstCLI(t *testing.T) {
	t.Parallel()
	cli := requireProgram(t, "redis-cli")
	open := startRedis(t)
	locked := startRedis(t, "requirepass pw-main", "user app on >pw-app ~* +@all")
	for _, tc := range []struct {
		addr       string
		user, pass string
	}{
		{open.addr, "", "pw-SECRET-1"},
		{locked.addr, "", "pw-SECRET-2"},
		{locked.addr, "app", "pw-SECRET-3"},
	} {
		host, port, _ := net.SplitHostPort(tc.addr)
		args := []string{"--no-auth-warning", "-h", host, "-p", port, "-a", tc.pass}
		ppArgs := []string{"--redis.c.address=" + tc.addr, "--redis.c.password=" + tc.pass, "--default-max-attempts=1"}
		if tc.user != "" {
			args = append(args, "--user", tc.user)
			ppArgs = append(ppArgs, "--redis.c.user="+tc.user)
		}
		out, _ := exec.Command(cli, append(args, "ping")...).CombinedOutput()
		line, _, _ := strings.Cut(string(out), "\n")
		if !strings.HasPrefix(line, "AUTH failed: ") {
			t.Fatalf("redis-cli: %q, want AUTH failed: ...", out)
		}
		o := runPortpatrol(t, nil, ppArgs...)
		if o.code != 1 || !strings.Contains(o.stderr, `error="`+line+`"`) {
			t.Errorf("%s: exit %d, want 1 with redis-cli's %q:\n%s", tc.addr, o.code, line, o.stderr)
		}
		o = runPortpatrol(t, nil, "--redis.c.address="+tc.addr, "--redis.c.password="+tc.pass, "--redis.c.invert", "--default-interval=100ms", "--default-max-attempts=2", "--timeout=30s")
		if o.code != 1 || !strings.Contains(o.stderr, line) {
			t.Errorf("%s inverted: exit %d, want 1 (still waiting) with %q:\n%s", tc.addr, o.code, line, o.stderr)
		}
		if strings.Contains(o.stderr, "SECRET") {
			t.Errorf("a password leaked:\n%s", o.stderr)
		}
	}
}
