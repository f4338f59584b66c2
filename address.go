// address.go holds the address forms and start-up checks every protocol type
// shares: ports, hosts, default ports, unix socket paths, and the URL
// passwords written without percent-encoding.

package main

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkPort is the start-up check of a port: a number from 1 to 65535.
func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("the port must be a number from 1 to 65535")
	}
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
