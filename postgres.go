package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
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
	pgReadyForQuery   = 'Z'
	pgParameterStatus = 'S'
	// pgMaxLoginMessages bounds a login's messages: an authentication
	// exchange, about 15 ParameterStatus, BackendKeyData, notices.
	pgMaxLoginMessages = 64
)

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
