package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The postgres type asks the server itself, as pg_isready does: a standby or
// a server replaying WAL accepts TCP connections but answers every client
// with SQLSTATE 57P03 (cannot_connect_now).
//
// Protocol facts are from the PostgreSQL documentation, chapter "Frontend/
// Backend Protocol" (sections "Message Flow: Start-up", "Message Formats",
// "Error and Notice Message Fields").

func init() {
	register("postgres", &targetType{
		ready:      "when the server answers a start-up message with an authentication request or an error other than 57P03 (cannot connect now), as pg_isready; with a password (or login), when the login succeeds and the server is ready for queries",
		stillReady: "still accepts connections",
		properties: pgProperties,
		settings:   func() any { return &pgSettings{} },
		build:      buildPostgres,
	})
}

const (
	pgDefaultPort = "5432"
	// pgProtocol30 is protocol version 3.0: major 3 in the high 16 bits.
	pgProtocol30 = 3 << 16
	// pgMaxMessage bounds one message of a start-up reply. Real ones are an
	// authentication request (a few bytes) or an ErrorResponse (a few
	// hundred); the declared length is checked against it before reading.
	pgMaxMessage = 4096
	// pgMaxMessages bounds how many messages an attempt reads while looking
	// for the answer (notices may come first), so it reads at most
	// pgMaxMessages*(5+pgMaxMessage) bytes.
	pgMaxMessages = 4
	// pgSqlstateCannotConnectNow is what a server that is starting up,
	// shutting down, or a standby without hot standby answers.
	pgSqlstateCannotConnectNow = "57P03"
)

// Backend message types (section "Message Formats").
const (
	pgAuthentication     = 'R' // AuthenticationOk, ...CleartextPassword, ...SASL, ...
	pgErrorResponse      = 'E'
	pgNoticeResponse     = 'N'
	pgNegotiateProtocol  = 'v' // NegotiateProtocolVersion, followed by R or E
	pgTerminateMessage   = 'X' // frontend: Terminate
	pgAuthenticationOK   = 0   // the Int32 after 'R': no password needed
	pgFieldSQLSTATE      = 'C' // "Error and Notice Message Fields"
	pgFieldMessage       = 'M'
	pgFieldDetail        = 'D'
	pgReasonTextMaxBytes = 200 // of a server's message quoted in a reason
)

type pgSettings struct {
	user, database, password string // may be references until built
	login                    bool
}

func pgOf(s *targetSpec) *pgSettings { return s.settings.(*pgSettings) }

var pgProperties = []property{
	{name: "user", arg: "NAME", help: "role named in the start-up message; may be a reference (default: the URL's, else postgres)",
		set: func(s *targetSpec, v string) error { pgOf(s).user = v; return nonEmpty(v) }},
	{name: "database", arg: "NAME", help: "database named in the start-up message; may be a reference (default: the URL's, else the user)",
		set: func(s *targetSpec, v string) error { pgOf(s).database = v; return nonEmpty(v) }},
	{name: "password", arg: "PASSWORD", secret: true, help: "log in with this password, as the app will; wins over the URL's; may be a reference (file:/run/secrets/pg)",
		set: func(s *targetSpec, v string) error {
			if v == "" {
				return errors.New("must not be empty: leave the property out for no password")
			}
			pgOf(s).password = v
			return nil
		}},
	{name: "login", def: "false", help: "log in without a password (trust): ready when the role may use the database",
		set: func(s *targetSpec, v string) (err error) { pgOf(s).login, err = parseBool(v); return }},
	timeoutProperty("one deadline for connecting and the whole exchange"),
}

// pgAddress is a postgres address taken apart.
type pgAddress struct {
	network  string // "tcp" or "unix"
	address  string // host:port, or the socket's path
	user     string // from a URL; "" when it names none
	password string // from a URL: sent only to log in, never shown
	database string // from a URL
	sslmode  string // from a URL; "" when it names none
	rootCert string // sslrootcert from a URL
	// emptyPassword is the start-up error for an empty password in the URL
	// (user:@host, ?password=), unless the password property gives one.
	emptyPassword error
	shown         string // for logs
	pieces        []string
}

func buildPostgres(s *targetSpec, address string) (built, []error) {
	var problems []error
	a, err := parsePGAddress(address)
	if err != nil {
		problems = append(problems, addressError{err})
	}
	o := pgOf(s)
	secrets := []string{a.password} // the URL's, even when the property wins
	user, database := a.user, a.database
	for _, p := range []struct {
		name  string
		value string
		into  *string
	}{{"user", o.user, &user}, {"database", o.database, &database}, {"password", o.password, &a.password}} {
		if p.value == "" {
			continue
		}
		v, err := resolveProperty(s.flag(p.name), p.value)
		switch {
		case err != nil:
			problems = append(problems, err)
		case (v == "" || strings.IndexByte(v, 0) >= 0) && p.name == "password":
			problems = append(problems, errorf("%s: must not be empty or hold a NUL byte", s.flag(p.name)))
		case v == "" || strings.IndexByte(v, 0) >= 0:
			problems = append(problems, errorf("%s: must be a name without NUL bytes, not empty", s.flag(p.name)))
		default:
			*p.into = v
		}
		if isReference(p.value) {
			secrets = append(secrets, v)
		}
	}
	if a.emptyPassword != nil && o.password == "" {
		problems = append(problems, addressError{a.emptyPassword})
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	if user == "" {
		user = "postgres"
	}
	if database == "" {
		database = user
	}
	c := pgCheck{network: a.network, address: a.address, timeout: s.timeout, startup: pgStartupMessage(user, database),
		login: o.login || a.password != "", user: user, password: a.password}
	if c.login && a.network == "tcp" { // libpq ignores sslmode on a unix socket
		host, _, _ := net.SplitHostPort(a.address)
		var err error
		c.tlsOptional = a.sslmode == "" || a.sslmode == "prefer"
		if c.tls, err = pgTLSConfig(a.sslmode, a.rootCert, host); err != nil {
			return built{}, []error{addressError{err}}
		}
	}
	return built{checker: c, address: a.shown, pieces: append(a.pieces, user, database), secrets: append(secrets, a.password)}, nil
}

// parsePGAddress accepts host, host:port, [v6]:port, a socket directory
// (/run/postgresql, optionally ?port=N), and a libpq URL:
// postgres[ql]://[user[:password]@][host][:port][/database][?params], whose
// host may be a percent-encoded socket directory and whose ?host= may name
// one.
func parsePGAddress(s string) (pgAddress, error) {
	switch {
	case strings.HasPrefix(s, "/"):
		dir, rawQuery, _ := strings.Cut(s, "?")
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return pgAddress{}, errors.New("after the socket directory, only ?port=N may follow")
		}
		port := q.Get("port")
		for key := range q {
			if key != "port" {
				return pgAddress{}, errorf("after the socket directory, only ?port=N may follow, not %s", quoteString(key))
			}
		}
		// The socket file itself: /run/postgresql/.s.PGSQL.5432.
		if name := filepath.Base(dir); strings.HasPrefix(name, ".s.PGSQL.") && port == "" {
			dir, port = filepath.Dir(dir), strings.TrimPrefix(name, ".s.PGSQL.")
		}
		a, err := pgUnix(dir, port)
		a.shown, a.pieces = a.address, append(a.pieces, s)
		return a, err
	case strings.Contains(s, "://"):
		return parsePGURL(s)
	case strings.Contains(s, "="):
		return pgAddress{}, errors.New("keyword=value connection strings are not supported: want host, host:port, a postgres:// URL or a socket directory")
	}
	if strings.ContainsAny(s, "/?@,") {
		return pgAddress{}, errors.New("want host, host:port, a postgres:// URL or a socket directory such as /run/postgresql")
	}
	hostport, err := withDefaultPort(s, pgDefaultPort)
	if err != nil {
		return pgAddress{}, err
	}
	host, _, _ := net.SplitHostPort(hostport)
	return pgAddress{network: "tcp", address: hostport, shown: hostport, pieces: []string{s, hostport, host}}, nil
}

func parsePGURL(s string) (pgAddress, error) {
	scheme, rest, _ := strings.Cut(s, "://")
	if scheme != "postgres" && scheme != "postgresql" {
		return pgAddress{}, errorf("unknown scheme %s: want postgres:// or postgresql://, host:port or a socket directory", quoteString(scheme))
	}
	if err := unencodedPassword(s, false); err != nil {
		return pgAddress{}, err
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	path, rawQuery, _ := strings.Cut(tail, "?")
	var a pgAddress
	var err error
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, password, hasPassword := strings.Cut(authority[:at], ":")
		if hasPassword && password == "" {
			a.emptyPassword = errEmptyPassword
		}
		if a.user, err = url.PathUnescape(user); err != nil {
			return pgAddress{}, errors.New("the user name has a bad percent-encoding")
		}
		if a.password, err = url.PathUnescape(password); err != nil {
			return pgAddress{}, errors.New("the password has a bad percent-encoding")
		}
		authority = authority[at+1:]
	}
	if strings.Contains(authority, ",") {
		return pgAddress{}, errors.New("one host only: give each server its own target")
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		end := strings.Index(authority, "]")
		if end < 0 {
			return pgAddress{}, errors.New("missing ] after the IPv6 address")
		}
		host, port = authority[1:end], authority[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return pgAddress{}, errors.New("want [v6]:port after the brackets")
		}
		port = strings.TrimPrefix(port, ":")
	} else {
		host, port, _ = strings.Cut(authority, ":")
	}
	if host, err = url.PathUnescape(host); err != nil {
		return pgAddress{}, errors.New("the host has a bad percent-encoding")
	}
	if path != "" && path != "/" {
		if a.database, err = url.PathUnescape(path[1:]); err != nil {
			return pgAddress{}, errors.New("the database name has a bad percent-encoding")
		}
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return pgAddress{}, errors.New("the query string is not key=value&key=value")
	}
	// Parameters override the URL's parts, as in libpq; the others (sslmode,
	// connect_timeout, ...) are accepted and need nothing to decide readiness.
	for _, p := range [...]struct {
		key  string
		into *string
	}{{"host", &host}, {"port", &port}, {"user", &a.user}, {"dbname", &a.database}, {"password", &a.password},
		{"sslmode", &a.sslmode}, {"sslrootcert", &a.rootCert}} {
		if vs := q[p.key]; len(vs) > 0 {
			*p.into = vs[len(vs)-1]
		}
	}
	if vs := q["password"]; len(vs) > 0 {
		a.emptyPassword = nil // the parameter wins over the URL's password
		if a.password == "" {
			a.emptyPassword = errors.New("the password parameter must not be empty: leave it out for no password")
		}
	}
	shown := redactURL(s)
	pieces := []string{s, shown, authority, rawQuery, a.user, a.database, host}
	switch {
	case strings.HasPrefix(host, "/"):
		b, err := pgUnix(host, port)
		b.user, b.password, b.database, b.sslmode, b.rootCert, b.emptyPassword = a.user, a.password, a.database, a.sslmode, a.rootCert, a.emptyPassword
		b.shown, b.pieces = shown, append(b.pieces, pieces...)
		return b, err
	case host == "":
		return pgAddress{}, errors.New("missing host: name one, or a socket directory as ?host=/run/postgresql")
	case strings.ContainsAny(host, "/?@,"):
		return pgAddress{}, errors.New("the host is not a host name, an IP address or an absolute socket directory")
	}
	if err := checkHost(host); err != nil {
		return pgAddress{}, err
	}
	switch a.sslmode {
	case "", "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		return pgAddress{}, errorf("sslmode %q: want disable, allow, prefer, require, verify-ca or verify-full", serverText(a.sslmode, 40))
	}
	if port == "" {
		port = pgDefaultPort
	}
	if err := checkPort(port); err != nil {
		return pgAddress{}, err
	}
	a.network, a.address, a.shown = "tcp", net.JoinHostPort(host, port), shown
	a.pieces = append(pieces, a.address)
	return a, nil
}

// pgUnix is the socket a server listening on port makes in dir.
func pgUnix(dir, port string) (pgAddress, error) {
	if port == "" {
		port = pgDefaultPort
	}
	if err := checkPort(port); err != nil {
		return pgAddress{}, err
	}
	path := filepath.Join(dir, ".s.PGSQL."+port)
	if err := unixSocketPath(path); err != nil {
		return pgAddress{}, err
	}
	return pgAddress{network: "unix", address: path, pieces: []string{dir, path}}, nil
}

// pgStartupMessage is a StartupMessage: Int32 length (itself included),
// Int32 protocol version, then name/value pairs of NUL-terminated strings,
// and a final NUL.
func pgStartupMessage(user, database string) []byte {
	msg := make([]byte, 8, 64)
	binary.BigEndian.PutUint32(msg[4:], pgProtocol30)
	for _, kv := range [][2]string{{"user", user}, {"database", database}, {"application_name", "portpatrol"}} {
		msg = append(append(append(append(msg, kv[0]...), 0), kv[1]...), 0)
	}
	msg = append(msg, 0)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

// pgCheck is ready when the server answers a start-up message with an
// authentication request, or with an error other than 57P03; with login,
// when it logs in and the server is ready for queries.
type pgCheck struct {
	network, address string
	startup          []byte
	timeout          time.Duration
	login            bool // complete the login: a password is given, or login=true
	user, password   string
	tls              *tls.Config // for a login, unless sslmode is disable or allow
	// tlsOptional is sslmode prefer (libpq's default): plain when the
	// server refuses TLS, or refuses the login over TLS.
	tlsOptional bool
}

func (c pgCheck) check(ctx context.Context) error {
	if !c.login || c.tls == nil {
		return exchange(ctx, c.network, c.address, c.timeout, nil, func(conn net.Conn) error {
			if !c.login {
				return pgTalk(conn, c.startup)
			}
			return c.logIn(conn)
		})
	}
	// Under prefer, libpq (fe-connect.c) connects once more without TLS
	// when the TLS handshake fails or the server answers the start-up over
	// TLS with an ErrorResponse (a pg_hba.conf with hostnossl lines only,
	// say); both connections share the attempt's deadline.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var tryPlain bool
	tlsErr := exchange(ctx, c.network, c.address, c.timeout, nil, func(conn net.Conn) error {
		accepted, err := pgAskTLS(conn)
		switch {
		case err != nil:
			return err
		case !accepted && c.tlsOptional:
			return c.logIn(conn) // a server without TLS
		case !accepted:
			return finalReason{errors.New("the server does not accept TLS, which the URL's sslmode requires")}
		}
		tc := tls.Client(conn, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			tryPlain = c.tlsOptional && ctx.Err() == nil
			return finalReason{handshakeFailed(ctx, err, 0)}
		}
		err = c.logIn(tc)
		_, refused := err.(pgStartupRefusal)
		tryPlain = c.tlsOptional && refused
		return err
	})
	if !tryPlain {
		return tlsErr
	}
	err := exchange(ctx, c.network, c.address, c.timeout, nil, func(conn net.Conn) error { return c.logIn(conn) })
	switch {
	case err == nil:
		return nil
	case err.Error() == tlsErr.Error():
		return errorf("%v (over TLS first as well)", err)
	}
	return errorf("%v; over TLS first: %v", err, tlsErr)
}

// pgStartupRefusal is an ErrorResponse to the start-up before
// AuthenticationOk: the server refuses the connection as it came
// (pg_hba.conf, the password), which under prefer is tried again without
// TLS. libpq tries again after 57P03 too, which only tells the same.
type pgStartupRefusal struct{ error }

// pgTalk is one start-up exchange: the start-up message, one reply, and a
// graceful end. No SSLRequest: readiness needs no TLS, and no password is
// ever sent, since the answer comes before one is asked for.
func pgTalk(conn net.Conn, startup []byte) error {
	if _, err := conn.Write(startup); err != nil {
		return err
	}
	reply, err := readPGReply(conn)
	if err != nil {
		return err
	}
	if reply.authentication {
		if reply.authCode == pgAuthenticationOK {
			pgTerminate(conn) // the session is being set up
			return nil
		}
		// Asked for a password: Terminate is not allowed during
		// start-up, and a client that closes instead of answering is
		// what the server expects from one that has no password (it
		// logs nothing).
		return errPGPasswordAsked
	}
	if err := reply.verdict(); err != nil {
		return err
	}
	return blind{fmt.Sprintf("the server refused the start-up (%s, SQLSTATE %s), which means it is up; %s", reply.message, reply.sqlstate, pgLoginHint)}
}

const pgLoginHint = "give a password (or login=true) to wait until the role may use the database"

var errPGPasswordAsked = blind{"the server (or a pooler in front of it) asks for a password: whether the role and database exist, or a pooler reaches its server, cannot be seen; " + pgLoginHint}

// pgReply is the answer to a start-up message.
type pgReply struct {
	authentication bool  // an authentication request ('R')
	authCode       int32 // which one: 0 is AuthenticationOk
	// An ErrorResponse's fields.
	sqlstate, message, detail string
}

// verdict of an ErrorResponse: 57P03 is not ready; any other SQLSTATE means
// the server is up and deciding about clients (a role or database that does
// not exist, too many connections), which is ready. Without a SQLSTATE it is
// no answer at all.
func (r pgReply) verdict() error {
	switch {
	case r.sqlstate == pgSqlstateCannotConnectNow:
		reason := fmt.Sprintf("the server rejects connections: %s (SQLSTATE %s", r.message, r.sqlstate)
		if r.detail != "" {
			reason += ": " + r.detail
		}
		return errors.New(reason + ")")
	case len(r.sqlstate) == 5:
		return nil
	}
	return errorf("the server answered with an error without a SQLSTATE: %s", r.message)
}

// readPGReply reads the answer to a start-up message: messages, each a type
// byte and an Int32 length (itself included), until an authentication
// request or an ErrorResponse. It reads at most pgMaxMessages messages of at
// most pgMaxMessage bytes each, and allocates no more.
func readPGReply(r io.Reader) (pgReply, error) {
	for range pgMaxMessages {
		kind, body, err := readPGMessage(r, "RENv")
		if err != nil {
			return pgReply{}, err
		}
		switch kind {
		case pgAuthentication:
			if len(body) < 4 {
				return pgReply{}, errors.New("not a PostgreSQL start-up reply: an authentication request without its code")
			}
			return pgReply{authentication: true, authCode: int32(binary.BigEndian.Uint32(body))}, nil
		case pgErrorResponse:
			return parsePGError(body)
		}
		// A notice or a protocol negotiation comes before the answer.
	}
	return pgReply{}, errorf("no authentication request or error in the first %d messages of the reply", pgMaxMessages)
}

// parsePGError reads an ErrorResponse body: fields, each a type byte and a
// NUL-terminated string, ended by a NUL byte.
func parsePGError(body []byte) (pgReply, error) {
	var r pgReply
	for len(body) > 0 && body[0] != 0 {
		field := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			return pgReply{}, errors.New("not a PostgreSQL start-up reply: an error field without its end")
		}
		value := string(body[1 : 1+end])
		body = body[2+end:]
		switch field {
		case pgFieldSQLSTATE:
			r.sqlstate = value
		case pgFieldMessage:
			r.message = serverText(value, pgReasonTextMaxBytes)
		case pgFieldDetail:
			r.detail = serverText(value, pgReasonTextMaxBytes)
		}
	}
	if len(body) == 0 {
		return pgReply{}, errors.New("not a PostgreSQL start-up reply: an error without its final NUL")
	}
	if len(r.sqlstate) != 5 {
		r.sqlstate = ""
	}
	return r, nil
}

func describeByte(b byte) string {
	if ' ' <= b && b < 0x7f {
		return fmt.Sprintf("%q", rune(b))
	}
	return fmt.Sprintf("byte 0x%02x", b)
}

// Login (section "Message Flow: Start-up"): the server asks for a password
// in one of three ways, says AuthenticationOk, sends its parameters and
// ReadyForQuery. Any ErrorResponse on the way is the reason.
const (
	pgAuthCleartext    = 3
	pgAuthMD5          = 5
	pgAuthSASL         = 10
	pgAuthSASLContinue = 11
	pgAuthSASLFinal    = 12
	pgReadyForQuery    = 'Z'
	pgPasswordMessage  = 'p' // also SASLInitialResponse and SASLResponse
	// pgMaxLoginMessages bounds a login's messages: an authentication
	// exchange, about 15 ParameterStatus, BackendKeyData, notices.
	pgMaxLoginMessages = 64
)

// logIn logs in as a client would and ends the session once the server is
// ready for queries. A timeout names the stage it came in, since a pooler
// answers the start-up itself and waits for its server after that.
func (c pgCheck) logIn(conn io.ReadWriter) error {
	if _, err := conn.Write(c.startup); err != nil {
		return err
	}
	stage := ""
	var sasl *scram
	for range pgMaxLoginMessages {
		kind, body, err := readPGMessage(conn, "RENSKvZ")
		if err != nil {
			if stage != "" && os.IsTimeout(err) {
				return finalReason{errorf("no ReadyForQuery within %v %s", c.timeout, stage)}
			}
			return err
		}
		switch kind {
		case pgErrorResponse:
			r, err := parsePGError(body)
			if err != nil {
				return err
			}
			if err := r.verdict(); err != nil {
				return err // 57P03: not up, over TLS or not
			}
			err = errorf("login refused: %s (SQLSTATE %s)", r.message, r.sqlstate)
			if stage != "after authentication" {
				return pgStartupRefusal{err}
			}
			return err
		case pgReadyForQuery:
			pgTerminate(conn)
			return nil
		case pgAuthentication:
			if len(body) < 4 {
				return errors.New("not a PostgreSQL server: an authentication request without its code")
			}
			code, data := binary.BigEndian.Uint32(body), body[4:]
			if code == pgAuthenticationOK {
				stage = "after authentication"
				continue
			}
			if c.password == "" && code != pgAuthSASLContinue && code != pgAuthSASLFinal {
				return errorf("the server asks for a password (authentication method %d): give the password property or one in the URL", code)
			}
			var reply []byte
			switch code {
			case pgAuthCleartext:
				reply = append([]byte(c.password), 0)
			case pgAuthMD5:
				if len(data) != 4 {
					return errors.New("not a PostgreSQL server: an MD5 request without its 4-byte salt")
				}
				reply = append([]byte(pgMD5(c.password, c.user, data)), 0)
			case pgAuthSASL:
				// A list of NUL-terminated names.
				if !bytes.HasPrefix(data, []byte("SCRAM-SHA-256\x00")) && !bytes.Contains(data, []byte("\x00SCRAM-SHA-256\x00")) {
					return errorf("the server offers no SASL mechanism portpatrol speaks (want SCRAM-SHA-256): %s", serverText(strings.TrimRight(string(data), "\x00"), 100))
				}
				sasl = newSCRAM(c.password)
				first := sasl.first()
				reply = append([]byte("SCRAM-SHA-256\x00"), 0, 0, 0, 0)
				binary.BigEndian.PutUint32(reply[len(reply)-4:], uint32(len(first)))
				reply = append(reply, first...)
			case pgAuthSASLContinue:
				if sasl == nil {
					return errors.New("not a PostgreSQL server: SASLContinue before SASL")
				}
				final, err := sasl.final(string(data))
				if err != nil {
					return err
				}
				reply = []byte(final)
			case pgAuthSASLFinal:
				if sasl == nil {
					return errors.New("not a PostgreSQL server: SASLFinal before SASL")
				}
				if err := sasl.verify(string(data)); err != nil {
					return err
				}
				continue
			default:
				return errorf("the server asks for authentication method %d, which portpatrol does not speak", code)
			}
			msg := make([]byte, 5, 5+len(reply))
			msg[0] = pgPasswordMessage
			binary.BigEndian.PutUint32(msg[1:], uint32(4+len(reply)))
			if _, err := conn.Write(append(msg, reply...)); err != nil {
				return err
			}
			stage = "after the password was sent"
		}
		// ParameterStatus, BackendKeyData, notices: on to ReadyForQuery.
	}
	return errorf("no ReadyForQuery in the first %d messages of the login", pgMaxLoginMessages)
}

// pgMD5 is the answer to AuthenticationMD5Password:
// "md5" + md5hex(md5hex(password + user) + salt).
func pgMD5(password, user string, salt []byte) string {
	inner := md5.Sum([]byte(password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt...))
	return "md5" + hex.EncodeToString(outer[:])
}

// pgTerminate ends a session as the protocol says, and reads what the
// server still sends until it closes, so that our close is a clean one
// rather than a reset.
func pgTerminate(conn io.ReadWriter) {
	conn.Write([]byte{pgTerminateMessage, 0, 0, 0, 4})
	switch c := conn.(type) {
	case *net.TCPConn:
		c.CloseWrite()
	case *net.UnixConn:
		c.CloseWrite()
	case *tls.Conn:
		c.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, pgMaxMessages*pgMaxMessage))
}

// readPGMessage reads one message whose type is in kinds: a type byte, an
// Int32 length (itself included) of at most pgMaxMessage, then the body.
func readPGMessage(r io.Reader, kinds string) (byte, []byte, error) {
	var header [5]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, nil, err
	}
	kind, length := header[0], binary.BigEndian.Uint32(header[1:])
	if strings.IndexByte(kinds, kind) < 0 {
		return 0, nil, errorf("not a PostgreSQL server: its reply starts with %s", describeByte(kind))
	}
	if length < 4 || length > pgMaxMessage {
		return 0, nil, errorf("not a PostgreSQL start-up reply: message %q declares %d bytes (at most %d expected)", kind, length, pgMaxMessage)
	}
	body := make([]byte, length-4)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return kind, body, nil
}

// pgAskTLS asks for TLS with an SSLRequest; the server answers one
// byte, S to go on in TLS or N to refuse.
func pgAskTLS(conn net.Conn) (accepted bool, err error) {
	if _, err := conn.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil { // length 8, code 80877103 ("Message Formats")
		return false, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return false, err
	}
	switch answer[0] {
	case 'S':
		return true, nil
	case 'N':
		return false, nil
	}
	return false, errorf("not a PostgreSQL server: it answers an SSLRequest with %s", describeByte(answer[0]))
}

// pgTLSConfig is TLS as libpq's sslmode asks for it: prefer (the default)
// and require encrypt without checking the certificate, verify-ca checks it
// against sslrootcert (else the system's roots), verify-full also checks
// the host name. disable and allow log in without TLS.
func pgTLSConfig(mode, rootCert, host string) (*tls.Config, error) {
	switch mode {
	case "disable", "allow":
		return nil, nil
	}
	config := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if rootCert != "" && rootCert != "system" {
		pem, err := os.ReadFile(rootCert)
		if err != nil {
			return nil, errorf("sslrootcert: cannot read %s: %v", rootCert, unwrapPathError(err))
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errorf("sslrootcert: %s holds no PEM certificate", rootCert)
		}
	}
	switch mode {
	case "", "prefer", "require":
		config.InsecureSkipVerify = true
	case "verify-ca":
		// The chain, without the host name: Go verifies both or neither.
		config.InsecureSkipVerify = true
		roots := config.RootCAs
		config.VerifyConnection = func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, cert := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(cert)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return config, nil
}
