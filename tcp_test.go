package main

import (
	"context"
	"io"
	"net"
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
	opts, err := parseArgs([]string{"--tcp.db.address=env:PP_ADDR"})
	if err != nil {
		t.Fatal(err)
	}
	tg, errs := buildTarget(opts.targets[0])
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if c := tg.checker.(tcpCheck); c.address != "db.internal:5432" {
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
