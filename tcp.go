package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
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

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("the port must be a number from 1 to 65535")
	}
	return nil
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

// maxUnixPath is the longest socket path Linux takes: sun_path holds 108
// bytes, the terminating NUL included (unix(7)).
const maxUnixPath = 107

// cutUnixScheme returns the path of a unix:///path or unix:/path address.
// An address with a host, unix://host/path, comes back whole, so that
// unixSocketPath names the host as the problem rather than a relative path.
func cutUnixScheme(s string) (string, bool) {
	if rest, ok := strings.CutPrefix(s, "unix://"); ok {
		if rest != "" && !strings.HasPrefix(rest, "/") {
			return s, true
		}
		return rest, true
	}
	return strings.CutPrefix(s, "unix:")
}

// unixSocketPath is the start-up check of a unix socket's path, shared by
// every type that can dial one: absolute, and short enough for sun_path.
func unixSocketPath(path string) error {
	switch {
	case path == "":
		return errors.New("the unix socket path is empty (want unix:///path/to.sock)")
	case strings.IndexByte(path, 0) >= 0:
		return errors.New("the unix socket path holds a NUL byte")
	case strings.HasPrefix(path, "unix://"):
		// Left whole by cutUnixScheme: unix://host/path. Quoted, the
		// address would show a value that may come from a reference.
		return errors.New("a unix:// address has no host: write unix:///path")
	case !strings.HasPrefix(path, "/"):
		return errors.New("the unix socket path must be absolute (unix:///path/to.sock)")
	case len(path) > maxUnixPath:
		return errorf("the unix socket path is %d bytes long; Linux allows at most %d", len(path), maxUnixPath)
	}
	return nil
}

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

// withDefaultPort accepts host, host:port, [v6]:port, [v6] and a bare IPv6
// address, and returns host:port with port defaulting to def: the address
// forms shared by the protocol types.
func withDefaultPort(s, def string) (string, error) {
	if scheme, _, ok := strings.Cut(s, "://"); ok && !strings.ContainsAny(scheme, "@:/[") {
		return "", errors.New("want host or host:port here, not a URL")
	}
	host, port := s, def
	switch ip, err := netip.ParseAddr(s); {
	case err == nil && ip.Is6(): // ::1
	case len(s) > 1 && s[0] == '[' && s[len(s)-1] == ']':
		host = s[1 : len(s)-1]
	case strings.ContainsAny(s, ":[]"):
		if host, port, err = net.SplitHostPort(s); err != nil {
			if strings.HasPrefix(s, "[") && !strings.Contains(s, "]") {
				return "", errors.New("missing ] after the IPv6 address")
			}
			return "", errors.New("want host or host:port (IPv6 as [::1]:port)")
		}
		if host == "" {
			return "", errors.New("missing host before the port")
		}
		if err := checkPort(port); err != nil {
			return "", err
		}
	}
	if err := checkHost(host); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

// checkHost is the start-up check of a host, shared by every type: an IP
// address, an IPv6 one with a zone naming an interface of this machine
// (fe80::1%eth0, or its index), or a name of letters, digits, -, _ and dots.
// It quotes no part of the host: the address may come from a reference.
func checkHost(host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		if zone := ip.Zone(); zone != "" {
			if _, err := net.InterfaceByName(zone); err != nil {
				n, nerr := strconv.Atoi(zone)
				if _, err = net.InterfaceByIndex(n); nerr != nil || err != nil {
					return errors.New("the zone after % names no network interface of this machine (see ip link)")
				}
			}
		}
		return nil
	}
	const want = ": want a DNS name or an IP address"
	if strings.Contains(host, "%") {
		return errors.New(`the host has "%" in it` + want + " (a zone, as in fe80::1%eth0, follows an IPv6 address only)")
	}
	for _, r := range host {
		switch {
		case r == ' ':
			return errors.New("the host has a space in it" + want)
		case r < ' ' || r == 0x7f || r == utf8.RuneError || r > 0x7f && !strconv.IsPrint(r):
			return errors.New("the host has a control character or invalid UTF-8 in it" + want)
		case r > 0x7f: // an international name: the HTTP client sends its xn-- form
		case !strings.ContainsRune("-._", r) && !('a' <= r|0x20 && r|0x20 <= 'z') && !('0' <= r && r <= '9'):
			return errorf("the host has %q in it%s", string(r), want)
		}
	}
	switch {
	case host == "":
		return errors.New("missing host")
	case len(strings.TrimSuffix(host, ".")) > 253:
		return errors.New("the host name is longer than 253 bytes" + want)
	}
	return nil
}

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

func (e finalReason) Unwrap() error { return e.error } // an unseen inside stays unseen

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

// passwordAdvice ends every start-up error about a password that was not
// percent-encoded in a URL.
const passwordAdvice = "percent-encode special characters in the password (@ as %40, / as %2F, # as %23, ? as %3F, % as %25, : as %3A)"

var (
	// errUnencodedPassword: a character of the password ends the user
	// information early, and what follows does not parse.
	errUnencodedPassword = errors.New("not a valid URL: the user information is not valid; " + passwordAdvice)
	// errAmbiguousPassword: the URL parses, but with the host taken from
	// inside the password.
	errAmbiguousPassword = errors.New("not a valid URL: an @ after the first /, ? or # leaves unclear where the password ends and the host begins; " + passwordAdvice)
	// errAtColonPassword: an @ in the user information followed by a :
	// (user:p@ss:w@host). libpq ends the user information at the first @,
	// Go and most other clients at the last: they would read different
	// hosts and ports.
	errAtColonPassword = errors.New("not a valid URL: an @ in the password leaves unclear where it ends and the host begins (libpq reads up to the first @, other clients up to the last); " + passwordAdvice)
	// errEmptyPassword: user:@host. A template filled from an unset
	// variable writes it, and it would quietly mean no login, as an empty
	// password property would.
	errEmptyPassword = errors.New("the password must not be empty: leave out the : after the user for no password")
)

// unencodedPassword returns the start-up error for a URL s whose password
// was written without percent-encoding, or nil. Two shapes give it away:
//
//   - s does not parse, but does with everything up to its last @ cut: a /
//     or # in the password (user:pa/ss@host) ends the host early and makes
//     "pa" a bad port; a % not followed by two hex digits is a bad escape.
//   - an @ comes after the first /, ? or #, where the host ends: in
//     user:zz@h:1/w#1@h2 the URL's host is h:1 and its password zz, while
//     the password meant is zz@h:1/w#1 and the host h2 — a check would
//     reach another server than the one the app means. Such an @ is taken
//     as written only where URLs legitimately carry one: in a query value
//     (?user=a@b) when the host has no user information before it (with
//     one, user:a@b?c=d@h is as likely a password), and with web (http)
//     in the path and query too, which every HTTP client reads the same
//     way. A fragment is never sent, so an @ in one is always a password's.
func unencodedPassword(s string, web bool) error {
	scheme, rest, ok := strings.Cut(s, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return nil
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 && end < at {
		authority, after := rest[:end], rest[end:]
		path, fragment, _ := strings.Cut(after, "#")
		path, query, _ := strings.Cut(path, "?")
		ambiguous := strings.Contains(fragment, "@")
		if !web {
			ambiguous = ambiguous || strings.Contains(authority, "@") || strings.Contains(path, "@")
			for _, param := range strings.Split(query, "&") {
				if i := strings.IndexByte(param, '@'); i >= 0 && !strings.Contains(param[:i], "=") {
					ambiguous = true
				}
			}
		}
		if ambiguous {
			return errAmbiguousPassword
		}
	}
	authority := rest
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		authority = rest[:end]
	}
	if at < len(authority) {
		if first := strings.IndexByte(authority[:at], '@'); first >= 0 && strings.Contains(authority[first:at], ":") {
			return errAtColonPassword
		}
	}
	if _, err := url.Parse(s); err == nil {
		return nil
	}
	if _, err := url.Parse(scheme + "://" + rest[at+1:]); err == nil {
		return errUnencodedPassword
	}
	return nil
}
