package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"
)

func init() {
	register("tcp", &targetType{
		ready:      "when a connection opens (to host:port, or to a unix socket)",
		stillReady: "still accepts connections",
		properties: []property{timeoutProperty("how long one connection attempt may take")},
		prepare:    prepareWatch, // for unix sockets
		build:      buildTCP,
	})
}

func buildTCP(s *targetSpec, address string) (built, []error) {
	if path, ok := cutUnixScheme(address); ok {
		if err := unixSocketPath(path); err != nil {
			return built{}, []error{addressError{err}}
		}
		return built{checker: tcpCheck{unix: true, address: path, timeout: s.timeout}, address: "unix://" + path, pieces: []string{address, path}}, nil
	}
	addr, err := parseTCPAddress(address)
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	host, _, _ := net.SplitHostPort(addr)
	return built{checker: tcpCheck{address: addr, timeout: s.timeout}, address: addr, pieces: []string{address, addr, host}}, nil
}

// tcpCheck is ready when a stream connection to address can be opened.
type tcpCheck struct {
	unix    bool   // address is a unix socket's path
	address string // host:port, or the socket's path
	timeout time.Duration
}

// parseTCPAddress accepts host:port, tcp://host:port and [v6]:port.
func parseTCPAddress(s string) (string, error) {
	addr := strings.TrimPrefix(s, "tcp://")
	if strings.Contains(addr, "://") {
		return "", errors.New("want host:port or tcp://host:port (or unix:///path/to.sock)")
	}
	if strings.Contains(addr, "@") {
		return "", errors.New("want host:port: a tcp address has no user or password")
	}
	if strings.HasPrefix(addr, "/") {
		// A socket's path, most likely. The message quotes no part of the
		// address: it may have been read from a reference.
		return "", errors.New("a path alone is not an address: write a unix socket as unix:///path")
	}
	if strings.Contains(addr, "/") {
		return "", errors.New("want host:port without a path: a tcp address has none")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errors.New("want host:port or tcp://host:port (IPv6 as [::1]:port)")
	}
	if host == "" {
		return "", errors.New("missing host before the port")
	}
	if err := checkHost(host); err != nil {
		return "", err
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

// changes wakes the wait when a unix socket's file appears (watch.go).
func (c tcpCheck) changes() <-chan struct{} {
	if !c.unix {
		return nil
	}
	return watchPath(c.address)
}

func (c tcpCheck) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	network := "tcp"
	if c.unix {
		network = "unix"
	}
	var d net.Dialer // resolves the host on every attempt: DNS records may appear late
	conn, err := d.DialContext(ctx, network, c.address)
	if err != nil {
		return describeNetError(ctx, err, c.timeout)
	}
	conn.Close()
	return nil
}

// an unseen inside stays unseen
