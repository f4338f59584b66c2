package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"
)

// The grpc type makes one unary call, grpc.health.v1.Health/Check, as
// Kubernetes' gRPC probe does. A call is a few HTTP/2 frames (RFC 9113)
// written and read here; header blocks go through hpack (RFC 7541), and the
// request and reply (grpc/grpc doc/PROTOCOL-HTTP2.md, health/v1/health.proto)
// are one protobuf field each.

func init() {
	register("grpc", &targetType{
		ready:      "when the standard health service (grpc.health.v1.Health/Check) answers SERVING",
		properties: grpcProperties,
		settings:   func() any { return &grpcSettings{} },
		finish:     func(s *targetSpec) []error { return grpcOf(s).tlsFiles.finish(s) },
		prepare:    prepareWatch, // for unix sockets
		build:      buildGRPC,
	})
}

const (
	grpcHealthPath = "/grpc.health.v1.Health/Check"
	// grpcMaxRead bounds what one attempt reads: a health reply is a few
	// dozen bytes of frames, and a declared length above it is refused
	// before anything is allocated for it.
	grpcMaxRead = 64 << 10
	// grpcMaxHeaderList bounds one header block as decoded (RFC 9113
	// section 6.5.2 counts each field as name, value and 32), and is sent
	// as SETTINGS_MAX_HEADER_LIST_SIZE: hpack's references to its table
	// could otherwise make a few KiB on the wire into megabytes.
	grpcMaxHeaderList = 16 << 10
	h2Preface         = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	// h2MaxFrame is SETTINGS_MAX_FRAME_SIZE's initial value, which we never
	// raise: a larger frame is a FRAME_SIZE_ERROR (RFC 9113 section 4.2).
	h2MaxFrame = 16384
)

// Frame types and flags (RFC 9113 section 6).
const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2RSTStream    = 0x3
	h2Settings     = 0x4
	h2PushPromise  = 0x5
	h2Ping         = 0x6
	h2GoAway       = 0x7
	h2WindowUpdate = 0x8
	h2Continuation = 0x9

	h2FlagEndStream  = 0x1
	h2FlagAck        = 0x1
	h2FlagEndHeaders = 0x4
	h2FlagPadded     = 0x8
	h2FlagPriority   = 0x20
)

type grpcSettings struct {
	service    string
	authority  string
	serverName string
	headers    []header // values may be references until built
	tls        string   // "true", "false", or "" when not given
	tlsFiles
}

func grpcOf(s *targetSpec) *grpcSettings { return s.settings.(*grpcSettings) }

var grpcProperties = append([]property{
	{name: "service", arg: "NAME", help: `service to ask about, e.g. my.pkg.Orders (default: "", the whole server)`,
		set: func(s *targetSpec, v string) error { grpcOf(s).service = v; return nil }},
	{name: "authority", arg: "HOST[:PORT]", help: "the :authority sent, for a proxy that routes by it (default: the address)",
		set: func(s *targetSpec, v string) error {
			if u, err := url.Parse("http://" + v + "/"); err != nil || u.Host != v || v == "" || u.User != nil {
				return errors.New("want host or host:port")
			}
			grpcOf(s).authority = v
			return nil
		}},
	{name: "header", arg: "NAME=VALUE", aliases: []string{"headers", "metadata"}, repeatable: true, secret: true, help: "metadata sent with the call, repeatable; VALUE may be a reference",
		set: func(s *targetSpec, v string) error {
			name, value, ok := strings.Cut(v, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			switch {
			case !ok:
				return errors.New("want NAME=VALUE, e.g. authorization=env:TOKEN")
			case strings.HasPrefix(name, ":"), name == "content-type", name == "te", strings.HasPrefix(name, "grpc-"):
				return errorf("header %q is reserved: pseudo-headers, content-type, te and grpc-* are set by the call itself", name)
			case name == "connection", name == "keep-alive", name == "proxy-connection", name == "transfer-encoding", name == "upgrade", name == "host":
				return errorf("header %q cannot be sent over HTTP/2 (use authority for the host)", name)
			case !isToken(name):
				return errorf("header name %q is not valid (letters, digits and !#$%%&'*+-.^_`|~)", name)
			}
			grpcOf(s).headers = append(grpcOf(s).headers, header{name, strings.TrimSpace(value)})
			return nil
		}},
	{name: "tls", help: "speak TLS without grpcs://, as over a unix socket (default: with grpcs://, or a unix socket with a TLS property)",
		set: func(s *targetSpec, v string) error {
			b, err := parseBool(v)
			grpcOf(s).tls = strconv.FormatBool(b)
			return err
		}},
	{name: "server-name", arg: "NAME", help: "TLS server name to ask for and verify (default: the authority's host; localhost on a unix socket)",
		set: func(s *targetSpec, v string) error {
			if err := checkHost(v); err != nil {
				return err
			}
			grpcOf(s).serverName = v
			return nil
		}},
}, append(tlsProperties(func(s *targetSpec) *tlsFiles { return &grpcOf(s).tlsFiles }),
	timeoutProperty("one deadline for connect, TLS and the call; what is left of it is sent as grpc-timeout"))...)

// parseGRPCAddress accepts the target names grpc-go accepts for one server:
// host:port, [v6]:port, dns:///host:port (dns:host:port), unix:///path and
// unix:relative/path, and also grpc://host:port (h2c) and grpcs://host:port
// (TLS); a scheme in any case. gRPC has no default port.
func parseGRPCAddress(s string) (network, address string, useTLS bool, err error) {
	rest := s
	scheme, after, _ := strings.Cut(s, ":")
	switch strings.ToLower(scheme) {
	case "unix":
		path := after
		if p, ok := strings.CutPrefix(after, "//"); ok {
			if !strings.HasPrefix(p, "/") {
				return "", "", false, errors.New("a unix:// address has no host: write unix:///path, or unix:relative/path")
			}
			path = p
		}
		return "unix", path, false, grpcSocketPath(path)
	case "grpcs":
		rest, useTLS = strings.TrimPrefix(after, "//"), true
	case "grpc":
		rest = strings.TrimPrefix(after, "//")
	case "dns":
		rest = after
		if p, ok := strings.CutPrefix(after, "//"); ok {
			server, hostport, _ := strings.Cut(p, "/")
			if server != "" {
				return "", "", false, errors.New("a DNS server in the address (dns://server/host:port) is not supported: the system's resolver is asked; write dns:///host:port")
			}
			rest = hostport
		}
	}
	rest = strings.TrimSuffix(rest, "/")
	switch {
	case strings.Contains(rest, "://"):
		return "", "", false, errors.New("want host:port, dns:///host:port, grpc://host:port, grpcs://host:port (TLS) or unix:///path")
	case strings.Contains(rest, "@"):
		return "", "", false, errors.New("a grpc address has no user or password: send credentials with header")
	case strings.HasPrefix(rest, "/"):
		return "", "", false, errors.New("a path alone is not an address: write a unix socket as unix:///path")
	case strings.ContainsAny(rest, "/?#"):
		return "", "", false, errors.New("want host:port without a path: the health service's path is fixed")
	}
	if _, perr := netip.ParseAddr(strings.Trim(rest, "[]")); perr == nil || !strings.Contains(rest, ":") || strings.HasSuffix(rest, "]") {
		return "", "", false, errors.New("the port is missing: gRPC has no default port (want host:port, IPv6 as [::1]:port)")
	}
	host, port, serr := net.SplitHostPort(rest)
	switch {
	case serr != nil:
		return "", "", false, errors.New("want host:port (IPv6 as [::1]:port)")
	case host == "":
		return "", "", false, errors.New("missing host before the port")
	}
	if err := checkHost(host); err != nil {
		return "", "", false, err
	}
	if err := checkPort(port); err != nil {
		return "", "", false, err
	}
	return "tcp", net.JoinHostPort(host, port), useTLS, nil
}

// grpcSocketPath checks a socket's path, which grpc-go lets be relative to
// the working directory (unix:path).
func grpcSocketPath(path string) error {
	switch {
	case strings.HasPrefix(path, "/"):
		return unixSocketPath(path)
	case path == "":
		return errors.New("the unix socket path is empty (want unix:///path/to.sock or unix:relative/path)")
	case strings.IndexByte(path, 0) >= 0:
		return errors.New("the unix socket path holds a NUL byte")
	case len(path) > maxUnixPath:
		return errorf("the unix socket path is %d bytes long; Linux allows at most %d", len(path), maxUnixPath)
	}
	return nil
}

func buildGRPC(s *targetSpec, address string) (built, []error) {
	g := grpcOf(s)
	var problems []error
	network, addr, useTLS, err := parseGRPCAddress(address)
	if err != nil {
		problems = append(problems, addressError{err})
	}
	c := grpcCheck{network: network, address: addr, timeout: s.timeout, path: grpcHealthPath,
		scheme: "http", authority: g.authority, message: grpcHealthRequest(g.service), service: g.service}
	if c.authority == "" {
		c.authority = addr
		if network == "unix" {
			c.authority = "localhost" // as gRPC's own clients name a socket
		}
	}
	var secrets []string
	for _, hd := range g.headers {
		value, err := resolveProperty(s.flag("header")+" "+hd.name, hd.value)
		value = strings.TrimSpace(value)
		switch {
		case err != nil:
			problems = append(problems, err)
		case value == "":
			problems = append(problems, errorf("%s: the value of %s is empty; metadata without a value is never what was meant", s.flag("header"), hd.name))
		case strings.IndexFunc(value, isControl) >= 0:
			problems = append(problems, errorf("%s: the value of %s holds a control character such as a line break, which metadata cannot carry", s.flag("header"), hd.name))
		default:
			c.headers = append(c.headers, header{hd.name, value})
			secrets = append(secrets, value)
		}
	}
	wantTLS := g.tlsFiles != tlsFiles{} || g.serverName != ""
	switch {
	case err != nil:
	case g.tls == "false" && useTLS:
		problems = append(problems, errorf("%s=false contradicts grpcs://", s.flag("tls")))
	case g.tls == "false" && wantTLS:
		problems = append(problems, errorf("%s=false contradicts the TLS properties set", s.flag("tls")))
	case g.tls == "true" && strings.HasPrefix(strings.ToLower(address), "grpc:"):
		problems = append(problems, errorf("%s=true contradicts grpc://, which is cleartext HTTP/2: use grpcs://", s.flag("tls")))
	case network == "unix" && wantTLS, g.tls == "true":
		useTLS = true
	case wantTLS && !useTLS:
		problems = append(problems, errorf("%s: TLS properties are set but the address does not ask for TLS (use grpcs://, or %s=true)", s.flag("address"), s.flag("tls")))
	}
	c.advice = "use grpcs://"
	if network == "unix" {
		c.advice = "set " + s.flag("tls") + "=true"
	}
	if useTLS {
		name := g.serverName
		if name == "" {
			name = hostWithoutPort(c.authority)
		}
		cfg, errs := g.tlsFiles.config(s, name)
		problems = append(problems, errs...)
		cfg.NextProtos = []string{"h2"} // RFC 9113 section 3.2
		c.tls, c.scheme = cfg, "https"
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	// Logged as written: an address holds no password (it is refused).
	return built{checker: &c, address: address, pieces: []string{address, addr, hostWithoutPort(addr)}, secrets: secrets}, nil
}

// grpcCheck is ready when Health/Check answers SERVING.
type grpcCheck struct {
	network, address string
	tls              *tls.Config
	timeout          time.Duration
	scheme           string // :scheme, http or https
	authority        string
	path             string
	headers          []header // metadata, values resolved
	service          string
	message          []byte // the HealthCheckRequest
	advice           string // how to ask for TLS, for a TLS server asked in clear
}

// changes wakes the wait when the unix socket's file appears (watch.go).
func (c *grpcCheck) changes() <-chan struct{} {
	if c.network != "unix" {
		return nil
	}
	return watchPath(c.address)
}

func (c *grpcCheck) check(ctx context.Context) error {
	deadline := time.Now().Add(c.timeout) // exchange's own comes a little later
	var sent time.Time
	var left time.Duration
	var status int
	err := exchange(ctx, c.network, c.address, c.timeout, c.tls, func(conn net.Conn) error {
		if tc, ok := conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != "h2" {
			return finalReason{errors.New("the server, or a proxy in front of it, did not negotiate HTTP/2 (ALPN h2); grpc-go clients since 1.67 refuse it")}
		}
		// One polite close whatever happened, a timeout included: GOAWAY,
		// then exchange closes.
		defer func() {
			conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			conn.Write(h2AppendFrame(nil, h2GoAway, 0, 0, make([]byte, 8)))
		}()
		sent, left = time.Now(), time.Until(deadline)
		if _, err := conn.Write(c.request(left)); err != nil {
			return err
		}
		var err error
		status, err = readHealthReply(conn, conn, c.tls != nil, c.advice)
		return err
	})
	if err != nil {
		if gaveUpWithUs(err, sent, left) {
			return errorf("no answer within %v", c.timeout)
		}
		return c.explain(err)
	}
	if status != grpcServing {
		return errors.New(healthStatusName(status))
	}
	return nil
}

// gaveUpWithUs reports whether the server ended the call at the
// grpc-timeout we sent left of our deadline, with DEADLINE_EXCEEDED or
// RST_STREAM CANCEL: its answer can beat our own read deadline by a moment,
// and it means what ours does.
func gaveUpWithUs(err error, sent time.Time, left time.Duration) bool {
	se, isStatus := errors.AsType[grpcStatusError](err)
	reset, isReset := errors.AsType[h2Reset](err)
	return (isStatus && se.code == 4 || isReset && reset == 8) && !sent.IsZero() && time.Since(sent) >= left
}

// request is the whole call at once: the client preface, SETTINGS, HEADERS
// and DATA. RFC 9113 section 3.4 lets a client send frames before the
// server's SETTINGS arrive.
func (c *grpcCheck) request(left time.Duration) []byte {
	b := []byte(h2Preface)
	// SETTINGS_ENABLE_PUSH (0x2) = 0: a PUSH_PROMISE is then an error;
	// SETTINGS_MAX_HEADER_LIST_SIZE (0x6), our limit.
	b = h2AppendFrame(b, h2Settings, 0, 0, []byte{0, 2, 0, 0, 0, 0, 0, 6, 0, 0, grpcMaxHeaderList >> 8, 0})
	var block []byte
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", c.scheme}, {":path", c.path}, {":authority", c.authority},
		{"content-type", "application/grpc"}, {"te", "trailers"},
		{"grpc-timeout", grpcTimeout(left)}, {"grpc-accept-encoding", "gzip"}, {"user-agent", "portpatrol/" + versionString()},
	} {
		block = hpackLiteral(block, 0x00, f[0], f[1])
	}
	for _, h := range c.headers {
		// Never indexed (RFC 7541 section 7.1.3): values may be secrets.
		block = hpackLiteral(block, 0x10, h.name, h.value)
	}
	typ, flags, p := byte(h2Headers), byte(0), block
	for {
		n := min(len(p), h2MaxFrame)
		if n == len(p) {
			flags |= h2FlagEndHeaders
		}
		b = h2AppendFrame(b, typ, flags, 1, p[:n])
		if p = p[n:]; len(p) == 0 {
			break
		}
		typ, flags = h2Continuation, 0
	}
	// A gRPC message: a compressed flag, a 4-byte length, the protobuf.
	msg := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(c.message)))
	return h2AppendFrame(b, h2Data, h2FlagEndStream, 1, append(msg, c.message...))
}

// hpackLiteral appends a field as a literal with a new name, without
// Huffman coding (RFC 7541 section 6.2.2; 0x10 for never indexed, 6.2.3):
// hpack.Encoder's indexing and Huffman tables would save a few dozen bytes
// on the wire for several kilobytes of binary. Only the decoder is needed
// for what servers send.
//
//go:noinline
func hpackLiteral(b []byte, kind byte, name, value string) []byte {
	b = append(b, kind)
	for _, s := range []string{name, value} {
		// A string length is an integer with a 7-bit prefix (section 5.1).
		if n := len(s); n < 127 {
			b = append(b, byte(n))
		} else {
			b = append(b, 127)
			for n -= 127; n >= 128; n >>= 7 {
				b = append(b, byte(n)|0x80)
			}
			b = append(b, byte(n))
		}
		b = append(b, s...)
	}
	return b
}

// grpcTimeout writes what is left of the deadline as grpc-timeout: at most
// eight digits and a unit, rounded down so that the server gives up first.
func grpcTimeout(d time.Duration) string {
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"u", time.Microsecond}, {"m", time.Millisecond}, {"S", time.Second}, {"M", time.Minute}, {"H", time.Hour}} {
		if n := d / u.d; n <= 99999999 {
			return strconv.FormatInt(max(int64(n), 1), 10) + u.unit
		}
	}
	return "99999999H"
}

// grpcHealthRequest is a HealthCheckRequest: field 1, service, a string
// (wire type 2), left out when empty as proto3 does.
func grpcHealthRequest(service string) []byte {
	if service == "" {
		return nil
	}
	b := binary.AppendUvarint([]byte{1<<3 | 2}, uint64(len(service)))
	return append(b, service...)
}

// h2AppendFrame and hpackLiteral are called out of line: inlined at each
// call site they cost about 2 KB more.
//
//go:noinline
func h2AppendFrame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, payload...)
}

// explain adds what the reasons that need the target's own settings say.
func (c *grpcCheck) explain(err error) error {
	se, ok := errors.AsType[grpcStatusError](err)
	if !ok {
		return err
	}
	head := grpcCodeName(se.code)
	if se.message != "" {
		head += " (" + serverText(se.message, 200) + ")"
	}
	switch se.code {
	case 5: // NOT_FOUND: a service not registered yet, or misspelt
		return unseen{errorf("%s: the health service does not know service %q (not registered yet, or misspelt)", head, c.service)}
	case 7, 16: // PERMISSION_DENIED, UNAUTHENTICATED: the server will not tell
		return unseen{errors.New(head)}
	case 12: // UNIMPLEMENTED: a live gRPC server that cannot be asked
		return unseen{errorf("%s: the server has no grpc.health.v1.Health service; a tcp target waits for its port", head)}
	}
	return errors.New(head)
}

// grpcStatusError is a gRPC error status the server ended the call with.
type grpcStatusError struct {
	code    int
	message string // grpc-message, percent-decoded
}

func (e grpcStatusError) Error() string { return grpcCodeName(e.code) }

// grpcCodes are split when a reason needs one, not at every start-up.
const grpcCodes = "OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS " +
	"PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE UNIMPLEMENTED INTERNAL " +
	"UNAVAILABLE DATA_LOSS UNAUTHENTICATED"

func grpcCodeName(code int) string {
	if names := strings.Fields(grpcCodes); code >= 0 && code < len(names) {
		return names[code]
	}
	return "gRPC status " + strconv.Itoa(code)
}

// HTTP/2 error codes (RFC 9113 section 7), as RST_STREAM and GOAWAY name them.
const h2Errors = ("NO_ERROR PROTOCOL_ERROR INTERNAL_ERROR FLOW_CONTROL_ERROR SETTINGS_TIMEOUT " +
	"STREAM_CLOSED FRAME_SIZE_ERROR REFUSED_STREAM CANCEL COMPRESSION_ERROR CONNECT_ERROR ENHANCE_YOUR_CALM " +
	"INADEQUATE_SECURITY HTTP_1_1_REQUIRED")

// h2Reset is the error code of the RST_STREAM that ended the call.
type h2Reset uint32

func (e h2Reset) Error() string {
	return "the server reset the call with RST_STREAM " + h2ErrorName(uint32(e))
}

func h2ErrorName(code uint32) string {
	if names := strings.Fields(h2Errors); code < uint32(len(names)) {
		return names[code]
	}
	return "error code 0x" + strconv.FormatUint(uint64(code), 16)
}

// ServingStatus of health.proto.
const grpcServing = 1

func healthStatusName(status int) string {
	switch status {
	case 0:
		return "UNKNOWN"
	case grpcServing:
		return "SERVING"
	case 2:
		return "NOT_SERVING"
	case 3:
		return "SERVICE_UNKNOWN"
	}
	return "serving status " + strconv.Itoa(status)
}

// h2Frame is one frame as read: its payload belongs to the frame alone.
type h2Frame struct {
	typ, flags byte
	stream     uint32
	payload    []byte
}

// h2Reader reads frames within one attempt's budget of grpcMaxRead bytes.
type h2Reader struct {
	r      io.Reader
	left   int
	frames int
	tls    bool
	advice string // how to ask for TLS: "use grpcs://"
}

var (
	errTooMuch       = errors.New("the server sent more than 64 KiB, portpatrol's limit for one call, without ending it")
	errClosedMidCall = errors.New("the server closed the connection before the call ended")
)

func (fr *h2Reader) next() (h2Frame, error) {
	var head [9]byte
	if fr.left < len(head) {
		return h2Frame{}, errTooMuch
	}
	got, err := io.ReadFull(fr.r, head[:])
	if fr.frames == 0 && got > 0 {
		// Whatever came before a close or a reset tells what the
		// server speaks.
		if err := notHTTP2(head[:got], fr.tls, fr.advice); err != nil {
			return h2Frame{}, err
		}
	}
	if err != nil {
		switch {
		case err != io.EOF && err != io.ErrUnexpectedEOF:
		case fr.frames > 0:
			return h2Frame{}, errClosedMidCall
		case !fr.tls:
			// What a TLS server does with the cleartext preface, as etcd's.
			return h2Frame{}, errors.New("the server closed the connection before it answered: " + fr.advice + " if it wants TLS")
		}
		return h2Frame{}, err
	}
	fr.left -= len(head)
	fr.frames++
	f := h2Frame{typ: head[3], flags: head[4], stream: binary.BigEndian.Uint32(head[5:]) & (1<<31 - 1)}
	n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
	switch {
	case n > h2MaxFrame:
		return f, errorf("the server sent a frame of %d bytes, more than the %d HTTP/2 allows here", n, h2MaxFrame)
	case n > fr.left:
		return f, errTooMuch
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(fr.r, f.payload); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return f, errors.New("the server closed the connection in the middle of a frame")
		}
		return f, err
	}
	fr.left -= n
	return f, nil
}

// notHTTP2 judges the first bytes the server sent, up to the nine of a frame
// header, with which an HTTP/2 server's SETTINGS frame starts (RFC 9113
// section 3.4): nil when they can be that, else a reason that says what the
// server speaks instead. They are quoted with Go's escapes, so that no reply
// can forge a log line or steer a terminal.
func notHTTP2(b []byte, useTLS bool, advice string) error {
	switch {
	case bytes.HasPrefix(b, []byte("HTTP/1.")):
		version := "HTTP/1"
		if len(b) > 7 && '0' <= b[7] && b[7] <= '9' {
			version += "." + string(b[7])
		}
		if useTLS {
			return errorf("the server spoke %s, not gRPC: it did not agree to HTTP/2 over TLS", version)
		}
		return errorf("the server spoke %s, not gRPC: %s if it wants TLS", version, advice)
	case !useTLS && len(b) >= 2 && b[0] == 0x15 && b[1] == 3:
		return errors.New("the server answered with a TLS alert, not HTTP/2: " + advice)
	case len(b) < 9:
		return errorf("the server did not speak HTTP/2, as a gRPC server does: it sent %q", b)
	case b[3] != h2Settings:
		return errorf("the server did not speak HTTP/2, as a gRPC server does: it sent %q…", b)
	}
	return nil
}

// unpad strips the padding of a DATA or HEADERS frame (RFC 9113 sections
// 6.1, 6.2) and the priority fields of HEADERS.
func (f h2Frame) unpad() ([]byte, error) {
	p := f.payload
	pad := 0
	if f.flags&h2FlagPadded != 0 {
		if len(p) < 1 {
			return nil, errors.New("a padded frame without its pad length")
		}
		pad, p = int(p[0]), p[1:]
	}
	if f.typ == h2Headers && f.flags&h2FlagPriority != 0 {
		if len(p) < 5 {
			return nil, errors.New("a HEADERS frame too short for its priority")
		}
		p = p[5:]
	}
	if pad > len(p) {
		return nil, errors.New("a frame's padding is longer than the frame")
	}
	return p[:len(p)-pad], nil
}

// healthCall collects the answer on stream 1 as its frames arrive.
type healthCall struct {
	dec      *hpack.Decoder
	blocks   int                 // header blocks received: response headers, then trailers
	block    []byte              // a header block still waiting for CONTINUATION
	blockEnd bool                // END_STREAM was on the HEADERS that started block
	message  []byte              // the DATA of stream 1
	encoding string              // grpc-encoding of the response headers
	status   string              // grpc-status
	gmessage string              // grpc-message
	goaway   string              // a graceful GOAWAY that still let our call finish
	fields   []hpack.HeaderField // of the block being decoded
	size     int                 // of that block as decoded, RFC 9113 section 6.5.2
}

// readHealthReply reads the server's frames until stream 1 ends, answering
// SETTINGS and PING on w, and returns the ServingStatus of the reply.
func readHealthReply(r io.Reader, w io.Writer, useTLS bool, advice string) (int, error) {
	fr := &h2Reader{r: r, left: grpcMaxRead, tls: useTLS, advice: advice}
	call := &healthCall{}
	call.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		// Fields past the limit are counted, not kept.
		if call.size += len(f.Name) + len(f.Value) + 32; call.size <= grpcMaxHeaderList {
			call.fields = append(call.fields, f)
		}
	})
	call.dec.SetMaxStringLength(grpcMaxHeaderList)
	for {
		f, err := fr.next()
		if err != nil {
			if call.goaway != "" && err == errClosedMidCall {
				return 0, errorf("%v, after %s", err, call.goaway)
			}
			return 0, err
		}
		done, err := call.frame(f, w)
		if err != nil {
			return 0, err
		}
		if done {
			return call.finish()
		}
	}
}

var errProtocol = errors.New("the server broke the HTTP/2 protocol")

// frame handles one frame; done means stream 1 has ended.
func (c *healthCall) frame(f h2Frame, w io.Writer) (done bool, err error) {
	if c.block != nil && (f.typ != h2Continuation || f.stream != 1) {
		return false, errorf("%w: a header block was not continued", errProtocol)
	}
	switch f.typ {
	case h2Headers, h2Continuation, h2Data:
		if f.stream != 1 {
			return false, errorf("%w: a frame of type %d on stream %d, which the client never opened", errProtocol, f.typ, f.stream)
		}
		return c.streamFrame(f)
	}
	return false, c.controlFrame(f, w)
}

// controlFrame reads a frame that is not part of our call's reply:
// SETTINGS and PING are acknowledged, a GOAWAY or RST_STREAM may end the call.
func (c *healthCall) controlFrame(f h2Frame, w io.Writer) (err error) {
	switch f.typ {
	case h2Settings:
		if f.stream != 0 || f.flags&h2FlagAck != 0 && len(f.payload) != 0 || len(f.payload)%6 != 0 {
			return errorf("%w: a malformed SETTINGS frame", errProtocol)
		}
		if f.flags&h2FlagAck == 0 {
			_, err = w.Write(h2AppendFrame(nil, h2Settings, h2FlagAck, 0, nil))
		}
		return err
	case h2Ping:
		if f.stream != 0 || len(f.payload) != 8 {
			return errorf("%w: a malformed PING frame", errProtocol)
		}
		if f.flags&h2FlagAck == 0 {
			_, err = w.Write(h2AppendFrame(nil, h2Ping, h2FlagAck, 0, f.payload))
		}
		return err
	case h2GoAway:
		if f.stream != 0 || len(f.payload) < 8 {
			return errorf("%w: a malformed GOAWAY frame", errProtocol)
		}
		last := binary.BigEndian.Uint32(f.payload) & (1<<31 - 1)
		code := binary.BigEndian.Uint32(f.payload[4:])
		reason := "GOAWAY " + h2ErrorName(code)
		if debug := f.payload[8:]; len(debug) > 0 {
			reason += " (" + serverText(string(debug), 100) + ")"
		}
		if code != 0 || last < 1 {
			return errorf("the server closed the connection with %s", reason)
		}
		c.goaway = reason // a graceful shutdown that finishes our call first
		return nil
	case h2WindowUpdate:
		if len(f.payload) != 4 {
			return errorf("%w: a malformed WINDOW_UPDATE frame", errProtocol)
		}
		return nil // the request went out whole; the reply is small
	case h2PushPromise:
		return errorf("%w: PUSH_PROMISE though push is disabled", errProtocol)
	case h2RSTStream:
		if f.stream == 0 || len(f.payload) != 4 {
			return errorf("%w: a malformed RST_STREAM frame", errProtocol)
		}
		return h2Reset(binary.BigEndian.Uint32(f.payload))
	}
	return nil // PRIORITY and unknown types are ignored (RFC 9113 section 5.5)
}

// streamFrame reads a HEADERS, CONTINUATION or DATA frame of our call.
func (c *healthCall) streamFrame(f h2Frame) (done bool, err error) {
	switch f.typ {
	case h2Headers:
		p, err := f.unpad()
		if err != nil {
			return false, errorf("%w: %v", errProtocol, err)
		}
		c.block, c.blockEnd = append([]byte{}, p...), f.flags&h2FlagEndStream != 0
	case h2Continuation:
		if c.block == nil {
			return false, errorf("%w: CONTINUATION without HEADERS", errProtocol)
		}
		c.block = append(c.block, f.payload...)
	case h2Data:
		if c.blocks == 0 {
			return false, errorf("%w: DATA before the response headers", errProtocol)
		}
		p, err := f.unpad()
		if err != nil {
			return false, errorf("%w: %v", errProtocol, err)
		}
		c.message = append(c.message, p...)
		if len(c.message) >= 5 {
			if err := c.messagePrefix(); err != nil {
				return false, err
			}
		}
		return f.flags&h2FlagEndStream != 0, nil
	}
	if f.flags&h2FlagEndHeaders == 0 {
		return false, nil
	}
	block := c.block
	c.block = nil
	return c.blockEnd, c.headerBlock(block)
}

// messagePrefix checks the reply message's 5-byte prefix: the
// compressed-flag (PROTOCOL-HTTP2.md), 1 with the grpc-encoding of the
// response headers, which we asked to be gzip if any; then its length.
func (c *healthCall) messagePrefix() error {
	switch flag := c.message[0]; {
	case flag == 1 && c.encoding == "gzip":
	case flag == 1 && (c.encoding == "" || c.encoding == "identity"):
		return errors.New("the server compressed its reply without naming its grpc-encoding")
	case flag == 1:
		return errorf("the server compressed its reply with %q, though the call accepts gzip alone", serverText(c.encoding, 40))
	case flag != 0:
		return errorf("the reply message has compressed-flag %d, neither 0 nor 1", flag)
	}
	if n := binary.BigEndian.Uint32(c.message[1:]); n > grpcMaxRead {
		return errorf("the server declared a reply message of %d bytes, more than 64 KiB", n)
	}
	return nil
}

// headerBlock reads the response headers (the first block) or the trailers.
func (c *healthCall) headerBlock(block []byte) error {
	c.fields, c.size = c.fields[:0], 0
	_, err := c.dec.Write(block)
	if err == nil {
		err = c.dec.Close()
	}
	switch {
	case c.size > grpcMaxHeaderList || errors.Is(err, hpack.ErrStringLength):
		return errorf("the server sent a header block larger than %d KiB, portpatrol's limit (sent as SETTINGS_MAX_HEADER_LIST_SIZE)", grpcMaxHeaderList>>10)
	case err != nil:
		return errorf("%w: a header block hpack cannot decode", errProtocol)
	}
	fields := c.fields
	c.blocks++
	if c.blocks > 2 {
		return errorf("%w: a third header block on the call", errProtocol)
	}
	var status, contentType string
	for _, f := range fields {
		switch f.Name {
		case ":status":
			status = f.Value
		case "content-type":
			contentType = f.Value
		case "grpc-status":
			c.status = f.Value
		case "grpc-message":
			c.gmessage = f.Value
		case "grpc-encoding":
			if c.blocks == 1 {
				c.encoding = f.Value
			}
		}
	}
	if c.blocks > 1 {
		if !c.blockEnd {
			return errorf("%w: trailers that do not end the stream", errProtocol)
		}
		return nil
	}
	switch {
	case status == "":
		return errorf("%w: the response has no :status", errProtocol)
	case status != "200":
		return errorf("the server answered HTTP status %s, not a gRPC call's 200", serverText(status, 20))
	}
	if ct, _, _ := strings.Cut(contentType, ";"); ct != "application/grpc" && !strings.HasPrefix(ct, "application/grpc+") {
		return errorf("the server answered with content-type %q, not application/grpc", serverText(contentType, 60))
	}
	return nil
}

// finish decides once the call has ended: the status in the trailers, then
// the one message of a unary reply.
func (c *healthCall) finish() (int, error) {
	if c.status == "" {
		return 0, errors.New("the call ended without a grpc-status")
	}
	code, err := strconv.Atoi(c.status)
	if err != nil || code < 0 {
		return 0, errorf("the call ended with grpc-status %q, not a number", serverText(c.status, 20))
	}
	if code != 0 {
		msg, err := url.PathUnescape(c.gmessage) // percent-encoded, PROTOCOL-HTTP2.md
		if err != nil {
			msg = c.gmessage
		}
		return 0, grpcStatusError{code, msg}
	}
	if len(c.message) < 5 {
		return 0, errors.New("the call ended OK without a reply message")
	}
	if n := binary.BigEndian.Uint32(c.message[1:]); int(n) != len(c.message)-5 {
		return 0, errorf("the reply message declared %d bytes but %d came", n, len(c.message)-5)
	}
	msg := c.message[5:]
	if c.message[0] == 1 {
		var err error
		if msg, err = gunzip(msg); err != nil {
			return 0, err
		}
	}
	return decodeHealthReply(msg)
}

// gunzip decompresses a gzip reply message, reading no more than
// grpcMaxRead of what it decompresses to.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, errors.New("the server's gzip reply is not gzip")
	}
	out, err := io.ReadAll(io.LimitReader(zr, grpcMaxRead+1))
	switch {
	case err != nil:
		return nil, errors.New("the server's gzip reply is corrupt")
	case len(out) > grpcMaxRead:
		return nil, errors.New("the server's gzip reply decompresses to more than 64 KiB")
	}
	return out, nil
}

// decodeHealthReply reads a HealthCheckResponse: field 1, status, an enum
// (a varint). Other fields are skipped as protobuf requires (the encoding
// guide, "Message Structure"), a later field 1 overriding an earlier one.
func decodeHealthReply(b []byte) (int, error) {
	status := 0       // proto3's default: UNKNOWN
	var open []uint64 // fields of the groups still open, innermost last
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errors.New("the reply message is not valid protobuf (a bad field key)")
		}
		b = b[n:]
		field, wire := key>>3, key&7
		switch {
		case field == 0 || field > 1<<29-1:
			return 0, errors.New("the reply message is not valid protobuf (a bad field number)")
		case wire == 4: // end group: it must close the innermost open one
			if len(open) == 0 || open[len(open)-1] != field {
				return 0, errors.New("the reply message is not valid protobuf (a group ends that never started)")
			}
			open = open[:len(open)-1]
			continue
		case field == 1 && len(open) == 0 && wire != 0:
			return 0, errorf("the reply message is not a HealthCheckResponse (its status has wire type %d)", wire)
		}
		switch wire {
		case 0: // varint
			v, m := binary.Uvarint(b)
			if m <= 0 {
				return 0, errors.New("the reply message is not valid protobuf (a bad varint)")
			}
			if field == 1 && len(open) == 0 {
				status = int(int32(v)) // an enum is an int32 on the wire
			}
			n = m
		case 1: // fixed64
			n = 8
		case 5: // fixed32
			n = 4
		case 2: // length-delimited
			l, m := binary.Uvarint(b)
			if m <= 0 || l > uint64(len(b)-m) {
				return 0, errors.New("the reply message is not valid protobuf (a length beyond its end)")
			}
			n = m + int(l)
		case 3: // start group
			open = append(open, field)
			n = 0
		default:
			return 0, errorf("the reply message is not valid protobuf (wire type %d)", wire)
		}
		if n > len(b) {
			return 0, errors.New("the reply message is not valid protobuf (a field beyond its end)")
		}
		b = b[n:]
	}
	if len(open) != 0 {
		return 0, errors.New("the reply message is not valid protobuf (a group never ends)")
	}
	return status, nil
}
