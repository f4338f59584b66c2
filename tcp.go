package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tcpCheck is ready when a TCP connection to address can be opened.
type tcpCheck struct {
	address string // host:port
	timeout time.Duration
}

// parseTCPAddress accepts host:port, tcp://host:port and [v6]:port.
func parseTCPAddress(s string) (string, error) {
	addr := strings.TrimPrefix(s, "tcp://")
	if strings.Contains(addr, "://") {
		return "", errors.New("want host:port or tcp://host:port")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errors.New("want host:port or tcp://host:port (IPv6 as [::1]:port)")
	}
	if host == "" {
		return "", errors.New("missing host before the port")
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("the port must be a number from 1 to 65535")
	}
	return nil
}

func (c tcpCheck) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer // resolves the host on every attempt: DNS records may appear late
	conn, err := d.DialContext(ctx, "tcp", c.address)
	if err != nil {
		return describeNetError(ctx, err, c.timeout)
	}
	conn.Close()
	return nil
}

// describeNetError shortens Go's network errors to the reason a person needs
// ("connection refused", "no answer within 1s"). The text stays the same from
// one attempt to the next so that repeated failures can be recognised.
func describeNetError(ctx context.Context, err error, timeout time.Duration) error {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded), os.IsTimeout(err):
		return fmt.Errorf("no answer within %v", timeout)
	case errors.Is(err, context.Canceled):
		return errors.New("cancelled")
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve %s: %s", dnsErr.Name, dnsReason(dnsErr))
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("connection reset by peer")
	case errors.Is(err, syscall.EHOSTUNREACH):
		return errors.New("host unreachable")
	case errors.Is(err, syscall.ENETUNREACH):
		return errors.New("network unreachable")
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		return fmt.Errorf("%s: %v", sysErr.Syscall, sysErr.Err)
	}
	return err
}

// dnsReason is why a lookup failed. Go's resolver reports a socket error as
// text with both ends' addresses ("read udp 127.0.0.1:35871->127.0.0.1:53:
// read: connection refused"), a new local port on every attempt; only the
// cause at its end is kept, so the reason stays the same.
func dnsReason(e *net.DNSError) string {
	if e.IsNotFound {
		return "no such host"
	}
	for _, op := range []string{"dial ", "read ", "write "} {
		if i := strings.LastIndex(e.Err, ": "); strings.HasPrefix(e.Err, op) && i >= 0 {
			return "no answer from the DNS server (" + e.Err[i+2:] + ")"
		}
	}
	return e.Err
}
