package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseTCPAddress(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"localhost:5432", "localhost:5432", ""},
		{"tcp://db.internal:6379", "db.internal:6379", ""},
		{"[::1]:80", "[::1]:80", ""},
		{"tcp://[fe80::1]:22", "[fe80::1]:22", ""},
		{"10.0.0.1:65535", "10.0.0.1:65535", ""},
		{"localhost", "", "want host:port"},
		{":5432", "", "missing host"},
		{"db:0", "", `the port must be a number from 1 to 65535`},
		{"db:65536", "", "the port must be"},
		{"db:postgres", "", "the port must be"},
		{"http://db:80", "", "want host:port or tcp://host:port"},
		{"tcp://db:80/path", "", "want host:port without a path"},
		{"tcp://localhost:18080/", "", "want host:port without a path"},
		{"user:pw@db:5432", "", "a tcp address has no user or password"},
		{"::1:80", "", "want host:port"},
		// A socket's path alone, which unix:// would have made an address.
		{"/tmp/u.sock", "", "a path alone is not an address: write a unix socket as unix:///path"},
		{"tcp:///tmp/u.sock", "", "a path alone is not an address"},
		{"run/u.sock", "", "want host:port without a path"},
	} {
		got, err := parseTCPAddress(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseTCPAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseTCPAddress(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.err)
		}
	}
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	up := tcpCheck{address: l.Addr().String(), timeout: time.Second}
	if err := up.check(context.Background()); err != nil {
		t.Errorf("listening port: %v", err)
	}
	l.Close()
	err = up.check(context.Background())
	if err == nil || err.Error() != "connection refused" {
		t.Errorf("closed port: %v, want connection refused", err)
	}
	err = tcpCheck{address: "no-such-host.invalid:80", timeout: time.Second}.check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot resolve no-such-host.invalid") {
		t.Errorf("unresolvable host: %v", err)
	}
}

// A listener whose backlog is full drops new SYNs, so a connect hangs: the
// attempt must end at its timeout.
func TestTCPCheckTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue; nothing ever accepts.
	var fillers []net.Conn
	defer func() {
		for _, c := range fillers {
			c.Close()
		}
	}()
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		fillers = append(fillers, c)
	}
	start := time.Now()
	err = tcpCheck{address: addr, timeout: 300 * time.Millisecond}.check(context.Background())
	took := time.Since(start)
	if err == nil || err.Error() != "no answer within 300ms" {
		t.Fatalf("check = %v after %v, want no answer within 300ms", err, took)
	}
	if took > 3*time.Second {
		t.Errorf("check took %v, far beyond its 300ms timeout", took)
	}
}

func TestTCPCheckCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (tcpCheck{address: "127.0.0.1:1", timeout: time.Second}).check(ctx); err == nil {
		t.Error("a cancelled attempt succeeded")
	}
}

func TestTCPAddressFromEnvTrimmed(t *testing.T) {
	t.Setenv("PP_ADDR", "db.internal:5432\n")
	if c := checkerFor(t, "--tcp.db.address=env:PP_ADDR").(tcpCheck); c.address != "db.internal:5432" {
		t.Errorf("address %q, want it without the newline", c.address)
	}
}

func TestWithDefaultPort(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"db", "db:5432", ""},
		{"db:6000", "db:6000", ""},
		{"[::1]:6000", "[::1]:6000", ""},
		{"[::1]", "[::1]:5432", ""},
		{"::1", "[::1]:5432", ""},
		{"fe80::1%lo", "[fe80::1%lo]:5432", ""},
		{"", "", "missing host"},
		{":6000", "", "missing host before the port"},
		{"db:0", "", "the port must be a number from 1 to 65535"},
		{"db:x", "", "the port must be a number"},
		{"db:1:2", "", "want host or host:port"},
		{"udp://1.2.3.4", "", "want host or host:port here, not a URL"},
		{"[::1", "", "missing ] after the IPv6 address"},
		{"[::1:5", "", "missing ] after the IPv6 address"},
		{"my db:5", "", "the host has a space in it"},
		{"fe80::1%nonexist0", "", "names no network interface"},
	} {
		got, err := withDefaultPort(tc.in, "5432")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("withDefaultPort(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("withDefaultPort(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, err string }{
		{"db", ""},
		{"my_db-1.Example.COM.", ""},
		{"bücher.example", ""}, // the HTTP client sends its xn-- form
		{"::1", ""},
		{"fe80::1%lo", ""},
		{"fe80::1%" + strconv.Itoa(lo.Index), ""},
		{strings.Repeat("a.", 126) + "a", ""},
		{strings.Repeat("a.", 126) + "ab", "longer than 253 bytes"},
		{"", "missing host"},
		{"fe80::1%0", "names no network interface"},
		{"fe80::1%nonexist0", "names no network interface"},
		{"127.0.0.1%lo", `the host has "%" in it`},
		{"a!b", `the host has "!" in it`},
		{"[::1", `the host has "[" in it`},
		{"a\u2028b", "a control character or invalid UTF-8"},
		{"a\xffb", "a control character or invalid UTF-8"},
		{"a\tb", "a control character or invalid UTF-8"},
	} {
		err := checkHost(tc.in)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("checkHost(%q) = %v, want error %q", tc.in, err, tc.err)
		}
	}
}

func TestExchange(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn) { c.Write([]byte("hello")) })
	var got string
	err := exchange(context.Background(), "tcp", addr, time.Second, nil, func(c net.Conn) error {
		b := make([]byte, 5)
		_, err := io.ReadFull(c, b)
		got = string(b)
		return err
	})
	if err != nil || got != "hello" {
		t.Errorf("exchange = %v, read %q; want hello", err, got)
	}
	closed := tcpServer(t, func(c net.Conn) {})
	err = exchange(context.Background(), "tcp", closed, time.Second, nil, func(c net.Conn) error {
		_, err := c.Read(make([]byte, 1))
		return err
	})
	if err == nil || err.Error() != "the server closed the connection before it answered" {
		t.Errorf("closed: %v", err)
	}
	start := time.Now()
	err = exchange(context.Background(), "tcp", silentServer(t), 200*time.Millisecond, nil, func(c net.Conn) error {
		_, err := c.Read(make([]byte, 1))
		return err
	})
	if err == nil || err.Error() != "no answer within 200ms" || time.Since(start) > 2*time.Second {
		t.Errorf("silent: %v after %v", err, time.Since(start))
	}
	if err := exchange(context.Background(), "tcp", closedPort(t), time.Second, nil, func(net.Conn) error { return nil }); err == nil || err.Error() != "connection refused" {
		t.Errorf("refused: %v", err)
	}
}

// A DNS failure reads the same on every attempt: Go's resolver quotes a
// socket error with its random local port, which must not reach the reason.
func TestDescribeDNSError(t *testing.T) {
	dnsFailure := func(err string) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: err, Name: "db.internal", Server: "127.0.0.1:53"}}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{dnsFailure("read udp 127.0.0.1:35871->127.0.0.1:53: read: connection refused"), "cannot resolve db.internal: no answer from the DNS server (connection refused)"},
		{dnsFailure("read udp 127.0.0.1:41002->127.0.0.1:53: read: connection refused"), "cannot resolve db.internal: no answer from the DNS server (connection refused)"},
		{dnsFailure("dial udp [fd00::53]:53: connect: network is unreachable"), "cannot resolve db.internal: no answer from the DNS server (network is unreachable)"},
		{dnsFailure("write udp 10.0.0.2:50123->10.0.0.1:53: write: no buffer space available"), "cannot resolve db.internal: no answer from the DNS server (no buffer space available)"},
		{dnsFailure("server misbehaving"), "cannot resolve db.internal: server misbehaving"},
		{dnsFailure("no answer from DNS server"), "cannot resolve db.internal: no answer from DNS server"},
		{&net.DNSError{Err: "no such host", Name: "db.internal", IsNotFound: true}, "cannot resolve db.internal: no such host"},
		{&net.DNSError{Err: "read udp 127.0.0.1:35871->127.0.0.1:53: i/o timeout", Name: "db.internal", IsTimeout: true}, "no answer within 1s"},
	} {
		if got := describeNetError(ctx, tc.err, time.Second).Error(); got != tc.want {
			t.Errorf("describeNetError(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// End to end, a resolver that refuses every query (nothing listens on port
// 53 of a fresh namespace's loopback) gives one warning, not one per attempt.
func TestDNSFailureLogsOnce(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	_, err := exec.LookPath("unshare")
	requirePrivilege(t, err == nil, "unshare (util-linux) is not installed")
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A private mount namespace shows the binary our resolv.conf alone.
	cmd := exec.Command("ip", "netns", "exec", ns, "unshare", "--mount", "sh", "-c",
		`mount --bind "$1" /etc/resolv.conf && shift && exec "$@"`, "sh", resolvConf,
		ppBinary, "--tcp.db.address=db.portpatrol.test:5432", "--http.web.address=http://web.portpatrol.test/",
		"--default-interval=50ms", "--timeout=1s")
	o := runCommand(t, cmd)
	o.mustExit(t, 1)
	for _, target := range []string{"db", "web"} {
		if n := strings.Count(o.stderr, `level=WARN msg="not ready" target=`+target); n != 1 {
			t.Errorf("%s: %d warnings in 1 s at a 50 ms interval, want 1: the reason must not change between attempts:\n%s", target, n, o.stderr)
		}
		want := fmt.Sprintf(`error="cannot resolve %s.portpatrol.test: no answer from the DNS server (connection refused)"`, target)
		if !strings.Contains(o.stderr, want) {
			t.Errorf("no %s in\n%s", want, o.stderr)
		}
	}
	if strings.Contains(o.stderr, "127.0.0.1") {
		t.Errorf("the reason quotes the resolver's addresses:\n%s", o.stderr)
	}
}

func TestServerTextBoundsWhatIsPrinted(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"ok", "ok"},
		{"\n\x1b", "\ufffd…"}, // no forged line, no terminal escape
		{"abcdef", "abcd…"},
		{"ab\u00e9", "ab\u00e9"},                // exactly four bytes
		{"abc\u00e9", "abc…"},                   // é would cross the limit
		{"\xff\xff", "\ufffd…"},                 // each invalid byte prints as three
		{strings.Repeat("\xff", 10), "\ufffd…"}, // never more than max as printed
		{"\x7f\xc3", "\ufffd…"},                 // DEL, then a cut-off sequence
	} {
		got := serverText(c.in, 4)
		if got != c.want {
			t.Errorf("serverText(%q, 4) = %q, want %q", c.in, got, c.want)
		}
		if len(strings.TrimSuffix(got, "…")) > 4 {
			t.Errorf("serverText(%q, 4) = %q: more than 4 bytes before the ellipsis", c.in, got)
		}
	}
}

// Every type checks a host the same way at start-up: a space, a control
// character, a stray % or an unclosed [ is exit 2, not a wait on "cannot
// resolve"; so is a zone naming no interface, and a second userinfo.
func TestStartupRejectsBadHosts(t *testing.T) {
	t.Parallel()
	const want = ": want a DNS name or an IP address"
	const space, control = "the host has a space in it" + want, "the host has a control character or invalid UTF-8 in it" + want
	const noZone = "the zone after % names no network interface of this machine (see ip link)"
	cases := []struct{ flag, value, want string }{ // want follows "flag="
		{"tcp.a.address", "my db:5432", `"my db:5432": ` + space},
		{"tcp.b.address", "db\n:1", `"db\n:1": ` + control},
		{"tcp.c.address", "d\x1bb:1", `"d\x1bb:1": ` + control},
		{"tcp.d.address", "tcp://db\t:5432", `"tcp://db\t:5432": ` + control},
		{"tcp.e.address", "tcp://my%20db:5432", `tcp://my%20db:5432: the host has "%" in it` + want},
		{"mysql.a.address", "my db:3306", `"my db:3306": ` + space},
		{"mysql.b.address", "mysql://a!b", `mysql://a!b: the host has "!" in it` + want},
		{"amqp.a.address", "my db", `"my db": ` + space},
		{"mongodb.a.address", "my db", `"my db": ` + space},
		{"mongodb.b.address", "mongodb+srv://my%20db.example.com", `mongodb+srv://my%20db.example.com: the host has "%" in it` + want},
		{"kafka.a.address", "my db,x y:1", `"my db,x y:1": bootstrap server 1: ` + space},
		{"redis.a.address", "redis://a!b", `redis://a!b: the host has "!" in it` + want},
		{"amqp.c.address", "amqp://a!b", `amqp://a!b: the host has "!" in it` + want},
		{"postgres.a.address", "postgres://my%20db", `postgres://my%20db: ` + space},
		{"http.a.address", "http://a!b/", `http://a!b/: the host has "!" in it` + want},
		{"redis.b.address", "[::1", `[::1: missing ] after the IPv6 address`},
		{"postgres.b.address", "[::1", `[::1: missing ] after the IPv6 address`},
		{"mysql.c.address", "[::1:5", `[::1:5: missing ] after the IPv6 address`},
		{"amqp.b.address", "[::1", `[::1: missing ] after the IPv6 address`},
		{"mongodb.c.address", "[::1:5", `[::1:5: missing ] after the IPv6 address`},
		{"kafka.b.address", "127.0.0.1:9092,[::1", `127.0.0.1:9092,[::1: bootstrap server 2: missing ] after the IPv6 address`},
		{"mongodb.d.address", "mongodb://u:pw-SECRET@h1,v:q@127.0.0.1:1", `mongodb://u:xxxxx@127.0.0.1:1: more than one @ before the hosts`},
		{"icmp.a.address", "fe80::1%nonexist0", "fe80::1%nonexist0: " + noZone},
		{"tcp.f.address", "[fe80::1%nonexist0]:80", "[fe80::1%nonexist0]:80: " + noZone},
		{"http.b.address", "http://[fe80::1%25nonexist0]/", "http://[fe80::1%25nonexist0]/: " + noZone},
		{"dns.a.server", "my db", `"my db": ` + space},
		{"dns.b.server", "[::1", `[::1: missing ] after the IPv6 address`},
	}
	args := []string{"--log-level=debug", "--timeout=2s", "--dns.a.address=example.com", "--dns.b.address=example.com"}
	for _, tc := range cases {
		args = append(args, "--"+tc.flag+"="+tc.value)
	}
	o := runPortpatrol(t, nil, args...)
	o.mustExit(t, 2)
	if strings.Contains(o.stderr, "SECRET") {
		t.Errorf("the password leaked:\n%s", o.stderr)
	}
	for _, tc := range cases {
		if want := "portpatrol: --" + tc.flag + "=" + tc.want; !hasLine(o, want) {
			t.Errorf("no line starting %q in\n%s", want, o.stderr)
		}
	}
}

// A password with an unencoded / # % in a URL is named as the problem, for
// every type that reads a URL, not a bad port or database name.
func TestUnencodedPasswordInURL(t *testing.T) {
	for _, address := range []string{
		"--postgres.x.address=postgres://app:pa/ss@db:5432/orders",
		"--postgres.x.address=postgres://app:pa#ss@db/orders",
		"--postgres.x.address=postgres://app:50%off@db/orders",
		"--mysql.x.address=mysql://app:pa/ss@db:3306/shop",
		"--amqp.x.address=amqp://app:pa/ss@mq:5672/vh",
		"--redis.x.address=redis://:pa#ss@cache:6379/0",
		"--http.x.address=http://app:pa/ss@web/health",
	} {
		_, err := parseArgs([]string{address})
		if err == nil {
			opts, _ := parseArgs([]string{address})
			_, err = buildTargets(opts.targets, newLogger(opts, io.Discard))
		}
		if err == nil || !strings.Contains(err.Error(), passwordAdvice) {
			t.Errorf("%s: %v, want the advice to percent-encode", address, err)
		}
		if err != nil && strings.Contains(err.Error(), "ss@") {
			t.Errorf("%s: the error shows the password: %v", address, err)
		}
	}
}

// A password written unencoded with an @ and then a /, ? or # parses, but
// not as meant: the host is read from inside the password, and the rest
// becomes path, query or fragment. Each type that takes credentials from a
// URL refuses it at start-up, names the flag, shows no part of the password
// and says to percent-encode it; the redis type says so too, rather than
// that its URL takes no ?query or #fragment.
func TestAmbiguousPasswordStartupError(t *testing.T) {
	t.Parallel()
	const advice = "percent-encode special characters in the password (@ as %40, / as %2F, # as %23, ? as %3F"
	flags := []string{
		"--postgres.a.address=postgresql://postgres:Zq@127.0.0.1:53121/w:rd#1@127.0.0.9:1/",
		"--mysql.a.address=mysql://root:Zq@127.0.0.1:53121/w:rd#1@127.0.0.9:1/",
		"--amqp.a.address=amqp://guest:Zq@127.0.0.1:53121/w:rd#1@127.0.0.9:1/",
		"--redis.a.address=redis://:Zq@127.0.0.1:53121/w:rd#1@127.0.0.9:1/",
		"--http.a.address=http://admin:Zq@127.0.0.1:53121/w:rd#1@127.0.0.9:1/",
		// A ? and = in the password: its rest reads as a query value.
		"--postgres.b.address=postgresql://app:Zq@127.0.0.1?w=rd@127.0.0.9/orders",
		"--amqp.b.address=amqp://app:Zq@127.0.0.1?w=rd@127.0.0.9/",
		// Digits before a / in the password: they read as a port.
		"--postgres.c.address=postgresql://app:53121/Zq@127.0.0.9/orders",
		"--mysql.b.address=mysql://app:53121/Zq@127.0.0.9/shop",
	}
	o := runPortpatrol(t, nil, append(flags, "--timeout=2s")...)
	o.mustExit(t, 2)
	for _, f := range flags {
		name, _, _ := strings.Cut(f, "=")
		found := false
		for _, l := range stderrLines(o) {
			found = found || strings.HasPrefix(l, "portpatrol: "+name+"=") && strings.Contains(l, advice)
		}
		if !found {
			t.Errorf("no line for %s with the advice %q in\n%s", name, advice, o.stderr)
		}
	}
	if strings.Contains(o.stderr, "Zq") || strings.Contains(o.stderr, "w:rd") || strings.Contains(o.stderr, "53121/") {
		t.Errorf("a part of a password is shown:\n%s", o.stderr)
	}
}

// An @ where a URL legitimately has one is not taken for a password's:
// in a query value when the host has no user information before it, and
// in an http URL's path and query, which every HTTP client reads alike.
func TestLegitimateAtInURL(t *testing.T) {
	for _, address := range []string{
		"--postgres.a.address=postgresql://127.0.0.1:5432/orders?user=app@tenant",
		"--postgres.b.address=postgresql://127.0.0.1/orders?application_name=a@b&user=c@d",
		"--mysql.a.address=mysql://127.0.0.1/shop?note=a@b",
		"--amqp.a.address=amqp://127.0.0.1/?client=a@b",
		"--http.a.address=http://admin:pw@127.0.0.1/@me/health?notify=ops@example.com",
		"--http.b.address=http://127.0.0.1:8080/users/a@b",
		// Percent-encoded, the password may hold anything.
		"--postgres.c.address=postgresql://postgres:zz%40127.0.0.1:53121%2Fw:rd%231@127.0.0.9:1/",
		"--redis.a.address=redis://:zz%40h%2Fw%23x%3F@127.0.0.1:6379/0",
	} {
		opts, err := parseArgs([]string{address})
		if err == nil {
			_, err = buildTargets(opts.targets, newLogger(opts, io.Discard))
		}
		if err != nil {
			t.Errorf("%s: %v, want it accepted", address, err)
		}
	}
}
