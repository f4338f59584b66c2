// dial.go holds what every protocol type's attempt shares: the bounded
// exchange (dial, optional TLS, talk under one deadline), the reasons a dial
// or handshake fails for, text a server sent made fit to quote, and asking
// several servers at once.

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// describeUnixError names the socket's path in the reasons a unix dial
// fails for. Linux refuses a connect to a path that is not a socket with
// ECONNREFUSED, like a socket nobody listens on; a stat tells them apart.
func describeUnixError(err error, path string) error {
	notFound := errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR)
	denied := errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
	if !notFound && !denied && !errors.Is(err, syscall.ENOTSOCK) && !errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	if fi, serr := os.Stat(path); serr == nil && fi.Mode().Type() != os.ModeSocket {
		return errorf("%s is not a socket", path)
	}
	switch {
	case notFound:
		return errorf("no socket at %s", path)
	case denied:
		return errorf("permission denied on %s", path)
	}
	return errorf("connection refused on %s", path)
}

// describeNetError shortens Go's network errors to the reason a person needs
// ("connection refused", "no answer within 1s"). The text stays the same from
// one attempt to the next so that repeated failures can be recognised.
func describeNetError(ctx context.Context, err error, timeout time.Duration) error {
	// The commonest failure, a refused dial, is told by two type assertions
	// rather than by the chain walks below.
	if opErr, ok := err.(*net.OpError); ok && opErr.Net != "unix" {
		if sysErr, ok := opErr.Err.(*os.SyscallError); ok && sysErr.Err == syscall.ECONNREFUSED {
			return errRefused
		}
	}
	if opErr, ok := errors.AsType[*net.OpError](err); ok && opErr.Op == "dial" && opErr.Net == "unix" && opErr.Addr != nil {
		if e := describeUnixError(err, opErr.Addr.String()); e != nil {
			return e
		}
	}
	dnsErr, isDNS := errors.AsType[*net.DNSError](err)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded), os.IsTimeout(err):
		return errorf("no answer within %v", timeout)
	case errors.Is(err, context.Canceled):
		return errors.New("cancelled")
	case isDNS:
		return errorf("cannot resolve %s: %s", dnsErr.Name, dnsReason(dnsErr))
	case errors.Is(err, syscall.ECONNREFUSED):
		return errRefused
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the server closed the connection before it answered")
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("connection reset by peer")
	case errors.Is(err, syscall.EHOSTUNREACH):
		return errors.New("host unreachable")
	case errors.Is(err, syscall.ENETUNREACH):
		return errors.New("network unreachable")
	}
	if sysErr, ok := errors.AsType[*os.SyscallError](err); ok {
		return errorf("%s: %w", sysErr.Syscall, sysErr.Err)
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		// Its hint about a trusted CA of the same name but another key
		// quotes x509's error inside x509's own.
		return unseen{errors.New(strings.Replace(err.Error(), `"x509: `, `"`, 1))}
	}
	if _, ok := err.(unseen); !ok && distrusted(err) {
		return unseen{err}
	}
	return err
}

// handshakeFailed is the reason a TLS handshake failed, naming the stage
// once: Go's own reason starts with tls: too. A failure on trust stays
// unseen.
func handshakeFailed(ctx context.Context, err error, timeout time.Duration) error {
	reason := describeNetError(ctx, err, timeout)
	text := errors.New("TLS handshake: " + strings.TrimPrefix(reason.Error(), "tls: "))
	if _, ok := reason.(unseen); ok {
		return unseen{text}
	}
	return text
}

var errRefused = errors.New("connection refused")

// exchange is one attempt of a protocol type: it dials address (a unix
// socket when network is "unix"), optionally starts TLS, and runs talk on the
// connection. One deadline, timeout, covers the connect and the whole
// exchange; the connection is closed when talk returns or ctx ends.
func exchange(parent context.Context, network, address string, timeout time.Duration, tlsConfig *tls.Config, talk func(conn net.Conn) error) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return describeNetError(ctx, err, timeout)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// A cancelled wait must not sit out the deadline of a silent server.
	// The attempt's own deadline is the connection's alone, so that talk
	// may still say goodbye once it has passed.
	stop := context.AfterFunc(parent, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if tlsConfig != nil {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return handshakeFailed(ctx, err, timeout)
		}
		conn = tc
	}
	switch err := talk(conn); err.(type) {
	case nil, blind, finalReason:
		return err
	default:
		return describeNetError(ctx, err, timeout)
	}
}

// finalReason is a talk error that already reads as the reason, such as a
// timeout that names the stage it came in: exchange passes it on as it is.
type finalReason struct{ error }

func (e finalReason) Unwrap() error { return e.error }

// serverText makes text that a server sent fit to quote in a reason: it is
// cut to at most max bytes as printed (then "…"), and control characters
// and invalid UTF-8 become U+FFFD, so that no reply can forge a log line or
// steer a terminal.
func serverText(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			r = utf8.RuneError
		}
		// The limit is on what is printed: an invalid byte becomes a
		// three-byte replacement character.
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// anyServer runs try on every server at once and is ready as soon as one
// passes; otherwise its reason lists each server's, in the order given, so
// that it reads the same from one attempt to the next.
func anyServer(ctx context.Context, servers []string, try func(ctx context.Context, server string) error) error {
	if len(servers) == 1 {
		return try(ctx, servers[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the others stop as soon as one is ready
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(servers))
	for i, srv := range servers {
		go func() { results <- result{i, try(ctx, srv)} }()
	}
	errs := make([]string, len(servers))
	refused := false // a server that would not tell may be ready: not gone
	for range servers {
		res := <-results
		if _, ok := res.err.(blind); ok || res.err == nil {
			return res.err
		}
		errs[res.i] = servers[res.i] + ": " + res.err.Error()
		if _, ok := errors.AsType[unseen](res.err); ok {
			refused = true
		}
	}
	if refused {
		return unseen{errors.New(strings.Join(errs, "; "))}
	}
	return errors.New(strings.Join(errs, "; "))
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
