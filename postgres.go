package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	query                    string // may be a reference until built
}

func pgOf(s *targetSpec) *pgSettings { return s.settings.(*pgSettings) }

var pgProperties = []property{
	{name: "user", arg: "NAME", help: "role named in the start-up message; may be a reference (default: the connection string's, else PGUSER, else postgres)",
		set: func(s *targetSpec, v string) error { pgOf(s).user = v; return nonEmpty(v) }},
	{name: "database", arg: "NAME", help: "database named in the start-up message; may be a reference (default: the connection string's, else PGDATABASE, else the user)",
		set: func(s *targetSpec, v string) error { pgOf(s).database = v; return nonEmpty(v) }},
	{name: "password", arg: "PASSWORD", secret: true, help: "log in with this password, as the app will; wins over the connection string's; may be a reference (file:/run/secrets/pg)",
		set: func(s *targetSpec, v string) error {
			if v == "" {
				return errors.New("must not be empty: leave the property out for no password")
			}
			pgOf(s).password = v
			return nil
		}},
	{name: "login", def: "false", help: "log in without a password (trust): ready when the role may use the database",
		set: func(s *targetSpec, v string) (err error) { pgOf(s).login, err = parseBool(v); return }},
	{name: "query", arg: "SQL", help: "after the login (it implies one), run this one statement read-only: ready when its first row's first value is true; may be a reference (file:/etc/checks/migrated.sql)",
		set: func(s *targetSpec, v string) error { pgOf(s).query = v; return nonEmpty(v) }},
	timeoutProperty("one deadline for connecting and the whole exchange (connect_timeout caps it)"),
}

func buildPostgres(s *targetSpec, address string) (built, []error) {
	var problems []error
	params, err := parsePGAddress(address)
	if err != nil {
		problems = append(problems, addressError{err})
		params = pgParams{}
	}
	o := pgOf(s)
	var secrets []string
	if pw, ok := params["password"]; ok {
		secrets = append(secrets, pw) // the string's, even when the property wins
	}
	for _, p := range []struct{ name, value, key string }{{"user", o.user, "user"}, {"database", o.database, "dbname"}, {"password", o.password, "password"}} {
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
			params[p.key] = v
		}
		if isReference(p.value) {
			secrets = append(secrets, v)
		}
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	var query string
	if o.query != "" {
		v, err := resolveProperty(s.flag("query"), o.query)
		switch {
		case err != nil:
			return built{}, []error{err}
		case strings.TrimSpace(v) == "" || strings.IndexByte(v, 0) >= 0:
			return built{}, []error{errorf("%s: want one SQL statement, not empty and without NUL bytes", s.flag("query"))}
		}
		query = v
	}
	params.withEnvironment(os.Getenv)
	c, err := newPGCheck(params, o.login || query != "", s.timeout)
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	c.query = query
	for _, h := range c.hosts {
		secrets = append(secrets, h.password)
	}
	shown := redactURL(address)
	pieces := []string{address, shown, params["user"], params["dbname"], params["host"], params["hostaddr"]}
	for _, h := range c.hosts {
		pieces = append(pieces, h.address, h.name)
	}
	empty := func(s string) bool { return s == "" }
	return built{checker: c, address: shown, pieces: slices.DeleteFunc(pieces, empty), secrets: slices.DeleteFunc(secrets, empty)}, nil
}

// parsePGAddress reads the address forms: a libpq URL
// (postgres[ql]://...), a keyword/value string (host=db port=5432 ...),
// host, host:port, [v6]:port, or a socket directory (/run/postgresql,
// optionally ?port=N) or the socket file itself.
func parsePGAddress(s string) (pgParams, error) {
	switch {
	case pgIsURI(s):
		// libpq ends the user information at the first @, Go and most
		// clients at the last: an @ in a password is refused, not read
		// as two different hosts.
		if err := unencodedPassword(s, false); err != nil {
			return nil, err
		}
		_, rest, _ := strings.Cut(s, "://")
		if end := strings.IndexByte(rest, '/'); end >= 0 {
			rest = rest[:end]
		}
		if strings.Count(rest, "@") > 1 {
			return nil, errAtColonPassword
		}
		return parsePGURI(s)
	case strings.HasPrefix(s, "/"):
		dir, rawQuery, _ := strings.Cut(s, "?")
		port, ok := strings.CutPrefix(rawQuery, "port=")
		if rawQuery != "" && (!ok || strings.ContainsAny(port, "&=")) {
			return nil, errors.New("after the socket directory, only ?port=N may follow")
		}
		// The socket file itself: /run/postgresql/.s.PGSQL.5432.
		if name := filepath.Base(dir); strings.HasPrefix(name, ".s.PGSQL.") && port == "" {
			dir, port = filepath.Dir(dir), strings.TrimPrefix(name, ".s.PGSQL.")
		}
		p := pgParams{"host": dir}
		if port != "" {
			p["port"] = port
		}
		return p, nil
	case pgKeywordForm(s):
		return parsePGKeywords(s)
	case strings.Contains(s, "://"):
		scheme, _, _ := strings.Cut(s, "://")
		return nil, errorf("unknown scheme %s: want postgres:// or postgresql://, host:port, a keyword/value string or a socket directory", quoteString(serverText(scheme, 40)))
	case strings.Contains(s, "="):
		return parsePGKeywords(s)
	case strings.ContainsAny(s, "/?@,"):
		return nil, errors.New("want host, host:port, a postgres:// URL, a keyword/value string or a socket directory such as /run/postgresql")
	}
	hostport, err := withDefaultPort(s, pgDefaultPort)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(hostport)
	return pgParams{"host": host, "port": port}, nil
}

// pgKeywordForm: s starts as a keyword/value string does, with a word and
// an = (host=db, or a value that holds :// further on).
func pgKeywordForm(s string) bool {
	s = strings.TrimLeft(s, " \t\n\r\f\v")
	end := strings.IndexAny(s, "= \t\n\r\f\v")
	return end > 0 && !strings.Contains(s[:end], "://") && strings.HasPrefix(strings.TrimLeft(s[end:], " \t\n\r\f\v"), "=")
}

// pgHost is one server of a connection string's host list.
type pgHost struct {
	network, address string // "tcp" or "unix"; host:port or the socket's path
	name             string // the host as written: for the certificate and the password file
	password         string
}

// pgListAt is the i-th value of a comma list of n, or of a list of one.
func pgListAt(list []string, i int) string {
	if len(list) == 1 {
		return list[0]
	}
	return list[i]
}

// newPGCheck turns libpq's parameters into a check, refusing at start-up
// what libpq refuses before it connects.
func newPGCheck(p pgParams, login bool, timeout time.Duration) (pgCheck, error) {
	var warnings []string
	c := pgCheck{timeout: timeout, login: login, user: p["user"], sslmode: p["sslmode"]}
	if c.user == "" {
		c.user = "postgres"
	}
	database := p["dbname"]
	if database == "" {
		database = c.user
	}
	// The parameters with a set of values.
	for _, opt := range []struct {
		key    string
		values []string
	}{
		{"sslmode", []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}},
		{"target_session_attrs", []string{"any", "read-write", "read-only", "primary", "standby", "prefer-standby"}},
		{"gssencmode", []string{"disable", "prefer", "require"}},
		{"channel_binding", []string{"disable", "prefer", "require"}},
		{"sslnegotiation", []string{"postgres", "direct"}},
		{"load_balance_hosts", []string{"disable", "random"}},
		{"sslcertmode", []string{"disable", "allow", "require"}},
	} {
		v, ok := p[opt.key]
		if !ok {
			continue
		}
		if !slices.Contains(opt.values, v) {
			last := len(opt.values) - 1
			return c, errorf("%s %s: want %s or %s", opt.key, quoteString(serverText(v, 40)), strings.Join(opt.values[:last], ", "), opt.values[last])
		}
	}
	if p["service"] != "" {
		return c, errors.New("service: portpatrol does not read libpq's connection service file: give the service's parameters in the string itself")
	}
	if p["gssencmode"] == "require" {
		return c, errors.New("gssencmode=require: portpatrol has no GSSAPI, so it cannot see what the app would (use prefer or disable)")
	}
	c.attrs, c.loadBalance, c.channelBinding = p["target_session_attrs"], p["load_balance_hosts"] == "random", p["channel_binding"]
	if c.attrs == "" {
		c.attrs = "any"
	}
	if ra := p["require_auth"]; ra != "" {
		var err error
		if c.requireAuth, c.requireAuthNot, err = parseRequireAuth(ra); err != nil {
			return c, err
		}
	}
	if v := p["connect_timeout"]; v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return c, errorf("connect_timeout %s: want a whole number of seconds", quoteString(serverText(v, 40)))
		}
		if n > 0 {
			// libpq waits at least 2 s per host.
			c.timeout = min(c.timeout, time.Duration(max(n, 2))*time.Second)
		}
	}

	// Hosts, their addresses and ports: lists that pair up.
	split := func(key string) []string {
		if v, ok := p[key]; ok {
			return strings.Split(v, ",")
		}
		return nil
	}
	hosts, hostaddrs, ports := split("host"), split("hostaddr"), split("port")
	n := max(len(hosts), len(hostaddrs))
	switch {
	case n == 0:
		return c, errors.New("missing host: name one (host=db, postgres://db), or a socket directory (host=/run/postgresql)")
	case hosts != nil && hostaddrs != nil && len(hosts) != len(hostaddrs):
		return c, errorf("could not match %d host names to %d hostaddr values", len(hosts), len(hostaddrs))
	case len(ports) > 1 && len(ports) != n:
		return c, errorf("could not match %d port numbers to %d hosts", len(ports), n)
	}
	passfile := p["passfile"]
	if passfile == "" {
		passfile = pgHomeFile(".pgpass")
	}
	for i := range n {
		var name, addr, port string
		if hosts != nil {
			name = pgListAt(hosts, i)
		}
		if hostaddrs != nil {
			addr = pgListAt(hostaddrs, i)
		}
		if ports != nil {
			port = strings.TrimSpace(pgListAt(ports, i))
		}
		if port == "" {
			port = pgDefaultPort
		}
		if err := checkPort(port); err != nil {
			return c, err
		}
		h := pgHost{name: name, password: p["password"]}
		switch {
		case addr != "":
			if _, err := netip.ParseAddr(addr); err != nil {
				return c, errors.New("hostaddr: want an IP address (a name goes in host)")
			}
			h.network, h.address = "tcp", net.JoinHostPort(addr, port)
			if name == "" {
				h.name = addr
			}
		case strings.HasPrefix(name, "/"):
			h.network, h.address = "unix", filepath.Join(name, ".s.PGSQL."+port)
			if err := unixSocketPath(h.address); err != nil {
				return c, err
			}
		case name == "":
			return c, errors.New("missing host: an empty host in the list")
		default:
			if err := checkHost(name); err != nil {
				return c, err
			}
			h.network, h.address = "tcp", net.JoinHostPort(name, port)
		}
		if _, given := p["password"]; !given && passfile != "" {
			matchHost := h.name
			if matchHost == "/var/run/postgresql" { // Debian's libpq's default socket directory
				matchHost = "localhost"
			}
			pw, warning := pgPassfilePassword(passfile, matchHost, port, database, c.user)
			if warning != "" {
				// The entry meant a login, which will fail as the app's.
				c.login = true
				if !slices.Contains(warnings, string(warning)) {
					warnings = append(warnings, string(warning))
				}
			}
			h.password = pw
		}
		if h.password != "" {
			c.login = true
		}
		c.hosts = append(c.hosts, h)
	}
	if pw, ok := p["password"]; ok && pw == "" && p[pgEmptyPassword] != "" {
		return c, errors.New(p[pgEmptyPassword])
	}
	if c.attrs != "any" {
		c.login = true
	}

	var extra [][2]string
	app := p["application_name"]
	if app == "" {
		app = "portpatrol"
	}
	extra = append(extra, [2]string{"application_name", app})
	for _, key := range []string{"options", "client_encoding", "replication"} {
		if v := p[key]; v != "" && !(key == "client_encoding" && v == "auto") {
			extra = append(extra, [2]string{key, v})
		}
	}
	c.startup = pgStartupMessage(c.user, database, extra...)
	var err error
	if c.tls, c.direct, err = pgTLSConfig(p); err != nil {
		return c, err
	}
	if c.sslmode == "" {
		c.sslmode = "prefer"
		if p["sslrootcert"] == "system" {
			c.sslmode = "verify-full" // libpq's default with the system's roots
		}
	}
	c.passfileWarning = strings.Join(warnings, "; ")
	return c, nil
}

// parseRequireAuth reads require_auth: a comma list of methods the server
// may ask for, or of methods it may not (each with !).
func parseRequireAuth(v string) (methods []string, negated bool, err error) {
	for i, m := range strings.Split(v, ",") {
		neg := strings.HasPrefix(m, "!")
		m = strings.TrimPrefix(m, "!")
		if i > 0 && neg != negated {
			return nil, false, errors.New("require_auth: negative and positive methods cannot be mixed")
		}
		negated = neg
		if !slices.Contains([]string{"password", "md5", "scram-sha-256", "gss", "sspi", "none"}, m) {
			return nil, false, errorf("require_auth method %s: want password, md5, scram-sha-256, gss, sspi or none (or each with !)", quoteString(serverText(m, 40)))
		}
		methods = append(methods, m)
	}
	return methods, negated, nil
}

// pgStartupMessage is a StartupMessage: Int32 length (itself included),
// Int32 protocol version, then name/value pairs of NUL-terminated strings,
// and a final NUL.
func pgStartupMessage(user, database string, extra ...[2]string) []byte {
	msg := make([]byte, 8, 64)
	binary.BigEndian.PutUint32(msg[4:], pgProtocol30)
	if len(extra) == 0 {
		extra = [][2]string{{"application_name", "portpatrol"}}
	}
	for _, kv := range append([][2]string{{"user", user}, {"database", database}}, extra...) {
		msg = append(append(append(append(msg, kv[0]...), 0), kv[1]...), 0)
	}
	msg = append(msg, 0)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

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
	return readPGMessageMax(r, kinds, pgMaxMessage)
}

// readPGMessageMax is readPGMessage with a bound of its own.
func readPGMessageMax(r io.Reader, kinds string, max uint32) (byte, []byte, error) {
	var header [5]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, nil, err
	}
	kind, length := header[0], binary.BigEndian.Uint32(header[1:])
	if strings.IndexByte(kinds, kind) < 0 {
		return 0, nil, errorf("not a PostgreSQL server: its reply starts with %s", describeByte(kind))
	}
	if length < 4 || length > max {
		return 0, nil, errorf("not a PostgreSQL start-up reply: message %q declares %d bytes (at most %d expected)", kind, length, max)
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

// pgTLSConfig is TLS as libpq's sslmode, sslrootcert, sslcert and sslkey
// ask for it (section "SSL Support"): a root certificate file, named or
// ~/.postgresql/root.crt, makes every mode check the server's chain, as
// verify-ca does (so require with a wrong CA fails, as in libpq);
// verify-full also checks the host name, set per host by the checker.
// disable has no TLS. direct is sslnegotiation=direct.
func pgTLSConfig(p pgParams) (config *tls.Config, direct bool, err error) {
	mode, rootCert := p["sslmode"], p["sslrootcert"]
	if mode == "" {
		mode = "prefer"
		if rootCert == "system" {
			mode = "verify-full"
		}
	}
	if mode == "disable" {
		return nil, false, nil
	}
	verify := strings.HasPrefix(mode, "verify-")
	if direct = p["sslnegotiation"] == "direct"; direct && mode != "require" && !verify {
		return nil, false, errorf("sslnegotiation=direct with sslmode %s: libpq wants require, verify-ca or verify-full", mode)
	}
	config = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"postgresql"}}
	for key, into := range map[string]*uint16{"ssl_min_protocol_version": &config.MinVersion, "ssl_max_protocol_version": &config.MaxVersion} {
		switch v := p[key]; v {
		case "":
		case "TLSv1":
			*into = tls.VersionTLS10
		case "TLSv1.1":
			*into = tls.VersionTLS11
		case "TLSv1.2":
			*into = tls.VersionTLS12
		case "TLSv1.3":
			*into = tls.VersionTLS13
		default:
			return nil, false, errorf("%s %s: want TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3", key, quoteString(serverText(v, 40)))
		}
	}
	switch {
	case rootCert == "system":
		if mode != "verify-full" {
			return nil, false, errorf("sslmode %s with sslrootcert=system: libpq wants verify-full", mode)
		}
	case rootCert == "" && pgHomeFile(".postgresql/root.crt") != "":
		rootCert = pgHomeFile(".postgresql/root.crt")
		if _, err := os.Stat(rootCert); err != nil {
			rootCert = "" // absent: no check, unless the mode asks for one
		}
		fallthrough
	default:
		pem, err := os.ReadFile(rootCert)
		switch {
		case err != nil && verify:
			if rootCert == "" {
				return nil, false, errorf("sslmode %s needs a root certificate: give sslrootcert (a file, or system for the system's roots), or put one in ~/.postgresql/root.crt", mode)
			}
			return nil, false, errorf("sslrootcert: cannot read %s: %v", rootCert, unwrapPathError(err))
		case err != nil:
			rootCert = "" // libpq checks nothing then
		default:
			config.RootCAs = x509.NewCertPool()
			if !config.RootCAs.AppendCertsFromPEM(pem) {
				return nil, false, errorf("sslrootcert: %s holds no PEM certificate", rootCert)
			}
		}
	}
	if mode != "verify-full" {
		// The chain, without the host name: Go verifies both or neither.
		config.InsecureSkipVerify = true
		if rootCert != "" {
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
	}
	// A client certificate, named or in ~/.postgresql, when its file exists.
	certFile, keyFile := p["sslcert"], p["sslkey"]
	if certFile == "" {
		certFile = pgHomeFile(".postgresql/postgresql.crt")
	}
	if keyFile == "" {
		keyFile = pgHomeFile(".postgresql/postgresql.key")
	}
	if _, err := os.Stat(certFile); err != nil || p["sslcertmode"] == "disable" {
		if p["sslcertmode"] == "require" {
			return nil, false, errorf("sslcertmode=require, but no client certificate at %s", certFile)
		}
		return config, direct, nil
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, false, errorf("sslkey: certificate present, but cannot read the private key %s: %v", keyFile, unwrapPathError(err))
	}
	if info, err := os.Stat(keyFile); err == nil && info.Mode().Perm()&0o077 != 0 && !(info.Mode().Perm()&0o037 == 0 && pgOwnedByRoot(info)) {
		return nil, false, errorf("sslkey: private key file %s has group or world access: libpq wants permissions u=rw (0600) or less (u=rw,g=r, 0640, when root owns it)", keyFile)
	}
	if bytes.Contains(keyPEM, []byte("ENCRYPTED")) {
		return nil, false, errorf("sslkey: %s is encrypted, which portpatrol cannot read (sslpassword is not supported): give an unencrypted key", keyFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, false, errorf("sslcert: cannot read %s: %v", certFile, unwrapPathError(err))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, false, errorf("sslcert %s and sslkey %s: %v", certFile, keyFile, err)
	}
	config.Certificates = []tls.Certificate{pair}
	return config, direct, nil
}

// pgCheck makes one attempt as libpq connects: each host in turn (libpq's
// order, or a random one with load_balance_hosts=random) until one is ready
// as target_session_attrs wants. Without a login it is pg_isready: ready
// when a server answers a start-up message with an authentication request
// or an error other than 57P03.
type pgCheck struct {
	hosts           []pgHost
	startup         []byte
	timeout         time.Duration
	login           bool // complete the login: a password is given, or login=true
	user            string
	sslmode         string
	tls             *tls.Config // nil with sslmode=disable
	direct          bool        // sslnegotiation=direct: TLS from the first byte
	attrs           string      // target_session_attrs
	loadBalance     bool
	channelBinding  string
	requireAuth     []string
	requireAuthNot  bool
	passfileWarning string
	query           string // the query property: one statement, read-only
}

func (c pgCheck) check(ctx context.Context) error {
	order := c.hosts
	if c.loadBalance && len(order) > 1 {
		order = slices.Clone(order)
		mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	passes := []string{c.attrs}
	if c.attrs == "prefer-standby" {
		passes = []string{"standby", "any"} // libpq: then any server at all
	}
	var reasons []string
	refused := false // a host that would not tell may be ready: not gone (as anyServer)
	for _, attrs := range passes {
		for _, h := range order {
			err := c.checkHost(ctx, h, attrs)
			if err == nil {
				return nil
			}
			if _, ok := err.(blind); ok || len(order) == 1 && len(passes) == 1 {
				return err
			}
			if _, ok := errors.AsType[unseen](err); ok {
				refused = true
			}
			if r := h.address + ": " + err.Error(); !slices.Contains(reasons, r) {
				reasons = append(reasons, r)
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	err := errors.New(strings.Join(reasons, "; "))
	if refused {
		return unseen{err}
	}
	return err
}

// checkHost is one host's part of the attempt, with sslmode's rules: allow
// logs in without TLS and tries TLS when refused; prefer (the default) the
// other way round, also when the handshake fails; require and verify-* use
// TLS only. A unix socket never uses TLS, as in libpq.
func (c pgCheck) checkHost(ctx context.Context, h pgHost, attrs string) error {
	if !c.login {
		return exchange(ctx, h.network, h.address, c.timeout, nil, func(conn net.Conn) error { return pgTalk(conn, c.startup) })
	}
	plain := func(ctx context.Context) error {
		return exchange(ctx, h.network, h.address, c.timeout, nil, func(conn net.Conn) error { return c.logIn(conn, h, attrs, nil) })
	}
	if h.network == "unix" || c.tls == nil {
		return plain(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.sslmode == "allow" {
		err := plain(ctx)
		if _, refused := errors.AsType[pgStartupRefusal](err); !refused || ctx.Err() != nil {
			return err
		}
		tlsErr, _ := c.overTLS(ctx, h, attrs, false)
		if tlsErr == nil {
			return nil
		}
		return errorf("%v; over TLS then: %v", err, tlsErr)
	}
	optional := c.sslmode == "prefer"
	tlsErr, tryPlain := c.overTLS(ctx, h, attrs, optional)
	if !tryPlain {
		return tlsErr
	}
	err := plain(ctx)
	switch {
	case err == nil:
		return nil
	case err.Error() == tlsErr.Error():
		return c.keepUnseen(err, errorf("%v (over TLS first as well)", err))
	}
	return c.keepUnseen(err, errorf("%v; over TLS first: %v", err, tlsErr))
}

// keepUnseen gives reason the unseen mark of err.
func (c pgCheck) keepUnseen(err, reason error) error {
	if _, ok := errors.AsType[unseen](err); ok {
		return unseen{reason}
	}
	return reason
}

// overTLS logs in over TLS: an SSLRequest first (or, with
// sslnegotiation=direct, TLS at once). tryPlain says whether prefer goes on
// without TLS: the handshake failed, or the server refused the start-up
// over TLS (a pg_hba.conf with hostnossl lines only, say).
func (c pgCheck) overTLS(ctx context.Context, h pgHost, attrs string, optional bool) (err error, tryPlain bool) {
	config := c.tls.Clone()
	config.ServerName = h.name
	err = exchange(ctx, h.network, h.address, c.timeout, nil, func(conn net.Conn) error {
		if !c.direct {
			accepted, err := pgAskTLS(conn)
			switch {
			case err != nil:
				return err
			case !accepted && optional:
				return c.logIn(conn, h, attrs, nil) // a server without TLS
			case !accepted:
				return finalReason{errorf("the server does not accept TLS, which sslmode=%s asks for", c.sslmode)}
			}
		}
		tc := tls.Client(conn, config)
		if err := tc.HandshakeContext(ctx); err != nil {
			tryPlain = optional && ctx.Err() == nil
			reason := handshakeFailed(ctx, err, 0)
			if _, ok := reason.(unseen); !ok && pgTrustFailure(err) {
				reason = unseen{reason}
			}
			return finalReason{reason}
		}
		state := tc.ConnectionState()
		err = c.logIn(tc, h, attrs, &state)
		_, refused := errors.AsType[pgStartupRefusal](err)
		tryPlain = optional && refused
		return err
	})
	return err, tryPlain
}

// pgTrustFailure: the handshake failed on the server's certificate (its
// CA, its name, its dates), or the server refused ours: a refusal, which
// shows the server is there. verify-ca's own check returns x509's errors
// bare, which distrusted (tls.go) does not see.
func pgTrustFailure(err error) bool {
	_, authority := errors.AsType[x509.UnknownAuthorityError](err)
	_, name := errors.AsType[x509.HostnameError](err)
	_, invalid := errors.AsType[x509.CertificateInvalidError](err)
	return authority || name || invalid || distrusted(err)
}

// pgStartupRefusal is an ErrorResponse to the start-up before
// AuthenticationOk: the server refuses the connection as it came
// (pg_hba.conf, the password), which under prefer is tried again without
// TLS (and under allow with). libpq tries again after 57P03 too, which only
// tells the same.
type pgStartupRefusal struct{ error }

func (r pgStartupRefusal) Unwrap() error { return r.error }

// Login (section "Message Flow: Start-up"): the server asks for a password
// in one of three ways, says AuthenticationOk, sends its parameters and
// ReadyForQuery. Any ErrorResponse on the way is the reason.
const (
	pgAuthCleartext      = 3
	pgAuthMD5            = 5
	pgAuthSASL           = 10
	pgAuthSASLContinue   = 11
	pgAuthSASLFinal      = 12
	pgReadyForQuery      = 'Z'
	pgParameterStatus    = 'S'
	pgPasswordMessage    = 'p' // also SASLInitialResponse and SASLResponse
	pgQuery              = 'Q'
	pgEmptyQueryResponse = 'I'
	pgCommandComplete    = 'C'
	pgDataRow            = 'D'
	pgRowDescription     = 'T'
	// pgMaxLoginMessages bounds a login's messages: an authentication
	// exchange, about 15 ParameterStatus, BackendKeyData, notices.
	pgMaxLoginMessages = 64
	// pgQueryWait is how long the empty query after the login may take: a
	// server answers it at once, a paused pooler never.
	pgQueryWait = time.Second
)

// pgAuthNames are require_auth's names of the authentication requests.
var pgAuthNames = map[uint32]string{pgAuthenticationOK: "none", pgAuthCleartext: "password", pgAuthMD5: "md5", pgAuthSASL: "scram-sha-256", 7: "gss", 9: "sspi"}

// logIn logs in as a client would, checks the session as
// target_session_attrs asks, sends an empty query that needs the server
// (not only a pooler in front of it), and ends the session. A timeout names
// the stage it came in, since a pooler answers the start-up itself and
// waits for its server after that. state is the TLS connection's, if any.
func (c pgCheck) logIn(conn io.ReadWriter, h pgHost, attrs string, state *tls.ConnectionState) error {
	if _, err := conn.Write(c.startup); err != nil {
		return err
	}
	stage := ""
	var sasl *scram
	status := map[string]string{}
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
			if r.sqlstate == "28P01" || r.sqlstate == "28000" {
				err = unseen{err} // the server is there, but will not let us see
			}
			if stage != "after authentication" {
				return pgStartupRefusal{err}
			}
			return err
		case pgParameterStatus:
			if name, value, ok := strings.Cut(strings.TrimSuffix(string(body), "\x00"), "\x00"); ok {
				status[name] = value
			}
		case pgReadyForQuery:
			if err := c.sessionAttrs(conn, attrs, status); err != nil {
				return err
			}
			if c.query != "" {
				err = c.readOnlyQuery(conn)
			} else {
				_, _, err = c.simpleQuery(conn, "")
			}
			if err != nil {
				return err
			}
			pgTerminate(conn)
			return nil
		case pgAuthentication:
			if len(body) < 4 {
				return errors.New("not a PostgreSQL server: an authentication request without its code")
			}
			code, data := binary.BigEndian.Uint32(body), body[4:]
			if code == pgAuthSASLContinue || code == pgAuthSASLFinal {
				// the SASL exchange under way
			} else if err := c.authAllowed(code, state, stage != "", sasl != nil && sasl.binding != nil); err != nil {
				return unseen{err}
			}
			if code == pgAuthenticationOK {
				stage = "after authentication"
				continue
			}
			if h.password == "" && code != pgAuthSASLContinue && code != pgAuthSASLFinal {
				reason := errorf("the server asks for a password (authentication method %d): give the password property, one in the connection string, PGPASSWORD or the password file", code)
				if c.passfileWarning != "" {
					reason = errorf("%v (%s)", reason, c.passfileWarning)
				}
				return unseen{reason}
			}
			var reply []byte
			switch code {
			case pgAuthCleartext:
				reply = append([]byte(h.password), 0)
			case pgAuthMD5:
				if len(data) != 4 {
					return errors.New("not a PostgreSQL server: an MD5 request without its 4-byte salt")
				}
				reply = append([]byte(pgMD5(h.password, c.user, data)), 0)
			case pgAuthSASL:
				// A list of NUL-terminated names.
				offers := func(name string) bool {
					return bytes.HasPrefix(data, []byte(name+"\x00")) || bytes.Contains(data, []byte("\x00"+name+"\x00"))
				}
				mechanism := "SCRAM-SHA-256"
				gs2, binding := "n,,", []byte(nil)
				switch {
				case state != nil && c.channelBinding != "disable" && offers("SCRAM-SHA-256-PLUS"):
					mechanism, gs2 = "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,"
					binding = pgEndPoint(state)
				case c.channelBinding == "require":
					return unseen{errors.New("channel binding required, but the server offers no SCRAM-SHA-256-PLUS (it needs TLS and a SCRAM password)")}
				case state != nil:
					gs2 = "y,," // we could bind, the server cannot
				}
				if !offers("SCRAM-SHA-256") && mechanism == "SCRAM-SHA-256" {
					return errorf("the server offers no SASL mechanism portpatrol speaks (want SCRAM-SHA-256): %s", serverText(strings.TrimRight(string(data), "\x00"), 100))
				}
				sasl = newSCRAM(pgSASLprep(h.password))
				sasl.gs2, sasl.binding = gs2, binding
				first := sasl.first()
				reply = append([]byte(mechanism+"\x00"), 0, 0, 0, 0)
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

// authAllowed applies require_auth and channel_binding=require to the
// server's authentication request, as libpq does before answering it.
// answered: a password went before this request; bound: by SCRAM with
// channel binding.
func (c pgCheck) authAllowed(code uint32, state *tls.ConnectionState, answered, bound bool) error {
	name, known := pgAuthNames[code]
	if !known {
		name = strconv.Itoa(int(code))
	}
	if code == pgAuthenticationOK && answered {
		if c.channelBinding == "require" && !bound {
			return errors.New("channel binding required, but the server authenticated the client without it")
		}
		return nil
	}
	if c.channelBinding == "require" && code != pgAuthSASL {
		if state == nil {
			return errors.New("channel binding required, but SSL not in use")
		}
		return errorf("channel binding required, but the server asked for %s authentication, which has none", name)
	}
	if c.requireAuth == nil {
		return nil
	}
	if slices.Contains(c.requireAuth, name) == c.requireAuthNot {
		what := "server requested " + name + " authentication"
		if code == pgAuthenticationOK {
			what = "server did not complete authentication"
		}
		return errorf("require_auth %s failed: %s", strings.Join(c.requireAuth, ","), what)
	}
	return nil
}

// pgEndPoint is the tls-server-end-point channel binding (RFC 5929): the
// hash of the server's certificate, SHA-256 unless its signature uses a
// stronger hash.
func pgEndPoint(state *tls.ConnectionState) []byte {
	if len(state.PeerCertificates) == 0 {
		return nil
	}
	cert := state.PeerCertificates[0]
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		sum := sha512.Sum384(cert.Raw)
		return sum[:]
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		sum := sha512.Sum512(cert.Raw)
		return sum[:]
	}
	sum := sha256.Sum256(cert.Raw)
	return sum[:]
}

// sessionAttrs checks target_session_attrs as libpq does: from the
// in_hot_standby and default_transaction_read_only the server reports
// (PostgreSQL 14 and later), else by asking.
func (c pgCheck) sessionAttrs(conn io.ReadWriter, attrs string, status map[string]string) error {
	switch attrs {
	case "read-write", "read-only":
		readOnly := status["default_transaction_read_only"] == "on" || status["in_hot_standby"] == "on"
		if _, reported := status["in_hot_standby"]; !reported {
			v, _, err := c.simpleQuery(conn, "SHOW transaction_read_only")
			if err != nil {
				return err
			}
			readOnly = v == "on"
		}
		switch {
		case readOnly && attrs == "read-write":
			return errors.New("session is read-only, and target_session_attrs is read-write")
		case !readOnly && attrs == "read-only":
			return errors.New("session is not read-only, and target_session_attrs is read-only")
		}
	case "primary", "standby":
		standby, reported := status["in_hot_standby"]
		if !reported {
			v, _, err := c.simpleQuery(conn, "SELECT pg_catalog.pg_is_in_recovery()")
			if err != nil {
				return err
			}
			standby = map[string]string{"t": "on"}[v]
		}
		switch {
		case standby == "on" && attrs == "primary":
			return errors.New("server is in hot standby mode, and target_session_attrs is primary")
		case standby != "on" && attrs == "standby":
			return errors.New("server is not in hot standby mode, and target_session_attrs wants a standby")
		}
	}
	return nil
}

// simpleQuery runs sql with the simple query protocol (a Query message) and
// returns the first value of the first row, if any, within pgQueryWait: the
// server itself must answer, which a paused pooler does not.
func (c pgCheck) simpleQuery(conn io.ReadWriter, sql string) (first string, hasRow bool, err error) {
	msg := []byte{pgQuery, 0, 0, 0, 0}
	msg = append(append(msg, sql...), 0)
	binary.BigEndian.PutUint32(msg[1:], uint32(len(msg)-1))
	if _, err := conn.Write(msg); err != nil {
		return "", false, err
	}
	if d, ok := conn.(interface{ SetReadDeadline(time.Time) error }); ok {
		// Within the attempt's timeout, which is restored after: exchange
		// still ends the attempt early when it is cancelled.
		d.SetReadDeadline(time.Now().Add(min(pgQueryWait, c.timeout)))
		defer d.SetReadDeadline(time.Now().Add(c.timeout))
	}
	var failure error
	for range pgMaxLoginMessages {
		kind, body, err := readPGMessage(conn, "ENSIZCDTKA")
		if err != nil {
			if os.IsTimeout(err) {
				return "", false, finalReason{errorf("no answer to a query within %v (a paused pooler, or its server down?)", pgQueryWait)}
			}
			return "", false, err
		}
		switch kind {
		case pgErrorResponse:
			r, err := parsePGError(body)
			if err != nil {
				return "", false, err
			}
			failure = errorf("%s: %s", r.sqlstate, r.message)
		case pgDataRow:
			if !hasRow {
				hasRow = true
				first, _ = pgFirstValue(body)
			}
		case pgReadyForQuery:
			return first, hasRow, failure
		}
	}
	return "", false, errorf("no ReadyForQuery in the first %d messages of a query's answer", pgMaxLoginMessages)
}

// pgFirstValue is the first column of a DataRow: Int16 count, then per
// column an Int32 length (-1 for NULL) and the bytes.
func pgFirstValue(row []byte) (value string, null bool) {
	if len(row) < 6 || binary.BigEndian.Uint16(row) == 0 {
		return "", true
	}
	n := int32(binary.BigEndian.Uint32(row[2:]))
	if n < 0 || int(n) > len(row)-6 {
		return "", true
	}
	return string(row[6 : 6+n]), false
}

func pgOwnedByRoot(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}

// Extended query protocol messages (section "Message Formats").
const (
	pgParse           = 'P'
	pgBind            = 'B'
	pgExecute         = 'E'
	pgSync            = 'S'
	pgParseComplete   = '1'
	pgBindComplete    = '2'
	pgNoData          = 'n'
	pgPortalSuspended = 's'
	// pgMaxRow bounds the DataRow of the query property.
	pgMaxRow = 64 << 10
)

// readOnlyQuery runs the query property as one statement in a READ ONLY
// transaction: START TRANSACTION READ ONLY, then the statement with the
// extended protocol (Parse takes one statement only), one row asked for, then
// Sync. A write fails in the server (25006) and the session ends without a
// commit. Ready when the first row's first value is true.
func (c pgCheck) readOnlyQuery(conn io.ReadWriter) error {
	var msg []byte
	add := func(kind byte, parts ...[]byte) {
		start := len(msg)
		msg = append(msg, kind, 0, 0, 0, 0)
		for _, p := range parts {
			msg = append(msg, p...)
		}
		binary.BigEndian.PutUint32(msg[start+1:], uint32(len(msg)-start-1))
	}
	for i, sql := range []string{"START TRANSACTION READ ONLY", c.query} {
		add(pgParse, []byte{0}, []byte(sql), []byte{0, 0, 0}) // unnamed, no parameter types
		add(pgBind, []byte{0, 0}, []byte{0, 0, 0, 0, 0, 0})   // unnamed portal and statement, no formats, parameters or result formats
		rows := []byte{0, 0, 0, 0}
		if i == 1 {
			rows[3] = 1 // one row is enough
		}
		add(pgExecute, []byte{0}, rows)
	}
	add(pgSync)
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	var failure error
	var first string
	var null, hasRow bool
	for range 2 * pgMaxLoginMessages {
		kind, body, err := readPGMessageMax(conn, "ENS12nsCDIZ", pgMaxRow)
		if err != nil {
			if os.IsTimeout(err) {
				return finalReason{errorf("no answer to the query within %v", c.timeout)}
			}
			return err
		}
		switch kind {
		case pgErrorResponse:
			r, err := parsePGError(body)
			if err != nil {
				return err
			}
			if failure == nil {
				failure = errorf("the query failed: %s: %s", r.sqlstate, r.message)
			}
		case pgDataRow:
			if !hasRow {
				hasRow = true
				first, null = pgFirstValue(body)
			}
		case pgReadyForQuery:
			switch {
			case failure != nil:
				return failure
			case !hasRow:
				return errors.New("the query returned no rows")
			case null:
				return errors.New("the first value is false (NULL)")
			case !pgTrue(first):
				return errorf("the first value is false (%s)", quoteString(serverText(first, 40)))
			}
			return nil
		}
	}
	return errorf("no ReadyForQuery in the first %d messages of the query's answer", 2*pgMaxLoginMessages)
}

// pgTrue: a value in text format that is not false, 0 or empty.
func pgTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "f", "false", "0", "no", "off", "n":
		return false
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f == 0 {
		return false
	}
	return true
}
