package main

import (
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
		addressParams: map[string]string{
			"sslmode":              "?sslmode=require in a URL, sslmode=require in a keyword/value string",
			"sslrootcert":          "?sslrootcert=/path in a URL, sslrootcert=/path in a keyword/value string",
			"sslcert":              "?sslcert=/path in a URL, sslcert=/path in a keyword/value string",
			"sslkey":               "?sslkey=/path in a URL, sslkey=/path in a keyword/value string",
			"target_session_attrs": "?target_session_attrs=read-write in a URL, or in a keyword/value string",
			"channel_binding":      "?channel_binding=require in a URL, or in a keyword/value string",
			"connect_timeout":      "?connect_timeout=10 in a URL, or in a keyword/value string; or the timeout property",
		},
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
	{name: "database", arg: "NAME", aliases: []string{"dbname", "db"}, help: "database named in the start-up message; may be a reference (default: the connection string's, else PGDATABASE, else the user)",
		set: func(s *targetSpec, v string) error { pgOf(s).database = v; return nonEmpty(v) }},
	passwordProperty("log in with this password, as the app will; wins over the connection string's; may be a reference (file:/run/secrets/pg)", func(s *targetSpec) *string { return &pgOf(s).password }),
	{name: "login", def: "false", help: "log in without a password (trust): ready when the role may use the database",
		set: func(s *targetSpec, v string) (err error) { pgOf(s).login, err = parseBool(v); return }},
	{name: "query", arg: "SQL", help: "after the login (it implies one), run this one statement read-only: ready when its first row's first value is true; may be a reference (file:/etc/checks/migrated.sql)",
		set: func(s *targetSpec, v string) error { pgOf(s).query = v; return nonEmpty(v) }},
	timeoutProperty("one deadline for connecting and the whole exchange (connect_timeout caps it)"),
}

func buildPostgres(s *targetSpec, address string) (built, []error) {
	var problems []error
	params, err := parsePGAddress(address)
	if _, ok := errors.AsType[pgKeywordError](err); ok {
		problems = append(problems, errorf("%s (a keyword/value string, not shown: it may hold a password): %v", s.flag("address"), err))
		params = pgParams{}
	} else if err != nil {
		problems = append(problems, addressError{err})
		params = pgParams{}
	}
	var secrets []string
	if pw, ok := params["password"]; ok {
		secrets = append(secrets, pw) // the string's, even when the property wins
	}
	secrets, problems = pgResolveNames(s, params, secrets, problems)
	if len(problems) > 0 {
		return built{}, problems
	}
	query, err := pgResolveQuery(s)
	if err != nil {
		return built{}, []error{err}
	}
	params.withEnvironment(os.Getenv)
	c, err := newPGCheck(params, pgOf(s).login || query != "", s.timeout)
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	c.query = query
	return pgBuilt(c, address, params, secrets), nil
}

// pgResolveNames resolves the user, database and password properties into
// params, where they win over the connection string's. A value read
// through a reference is a secret.
func pgResolveNames(s *targetSpec, params pgParams, secrets []string, problems []error) ([]string, []error) {
	o := pgOf(s)
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
	return secrets, problems
}

// pgResolveQuery resolves the query property: one statement, or "".
func pgResolveQuery(s *targetSpec) (string, error) {
	o := pgOf(s)
	if o.query == "" {
		return "", nil
	}
	v, err := resolveProperty(s.flag("query"), o.query)
	switch {
	case err != nil:
		return "", err
	case strings.TrimSpace(v) == "" || strings.IndexByte(v, 0) >= 0:
		return "", errorf("%s: want one SQL statement, not empty and without NUL bytes", s.flag("query"))
	}
	return v, nil
}

// pgBuilt is the built target: the check, the address as logs show it, its
// pieces (hidden when the address was a reference), and every password.
func pgBuilt(c pgCheck, address string, params pgParams, secrets []string) built {
	for _, h := range c.hosts {
		secrets = append(secrets, h.password)
	}
	shown := redactURL(address)
	pieces := []string{address, shown, params["user"], params["dbname"], params["host"], params["hostaddr"]}
	for _, h := range c.hosts {
		pieces = append(pieces, h.address, h.name)
	}
	empty := func(s string) bool { return s == "" }
	return built{checker: c, address: shown, pieces: slices.DeleteFunc(pieces, empty), secrets: slices.DeleteFunc(secrets, empty)}
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
	case isURL(s): // a :// after no scheme may be in a password (u:pw@h://)
		scheme, _, _ := strings.Cut(s, "://")
		return nil, errorf("unknown scheme %s: want postgres:// or postgresql://, host:port, a keyword/value string or a socket directory", quoteString(serverText(scheme, 40)))
	case strings.Contains(s, "=") || strings.ContainsAny(s, " \t\n\r\f\v"):
		// libpq reads every string but a URL as keyword/value: one
		// with white space is no host (password s3cr3t).
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
	c := pgCheck{timeout: timeout, login: login, user: p["user"]}
	if c.user == "" {
		c.user = "postgres"
	}
	database := p["dbname"]
	if database == "" {
		database = c.user
	}
	if err := checkPGChoices(p); err != nil {
		return c, err
	}
	if err := c.setOptions(p); err != nil {
		return c, err
	}
	if err := c.setHosts(p, database); err != nil {
		return c, err
	}
	if slices.ContainsFunc(c.hosts, func(h pgHost) bool { return h.network == "tcp" }) {
		// libpq reads these when it sets up a TCP socket only.
		for _, key := range []string{"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"} {
			if _, ok := p[key]; ok {
				if _, err := pgInteger(p, key); err != nil {
					return c, err
				}
			}
		}
		c.socketErr = pgKeepaliveError(p)
	}
	if pw, ok := p["password"]; ok && pw == "" && p[pgEmptyPassword] != "" {
		return c, errors.New(p[pgEmptyPassword])
	}
	if c.attrs != "any" {
		c.login = true
	}
	c.startup = pgStartupMessage(c.user, database, pgStartupParameters(p)...)
	var err error
	if c.tls, c.direct, err = pgTLSConfig(p); err != nil {
		return c, err
	}
	c.sslmode = pgSSLMode(p)
	return c, nil
}

// pgChoices are the parameters with a set of values.
var pgChoices = []struct {
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
}

func checkPGChoices(p pgParams) error {
	for _, opt := range pgChoices {
		v, ok := p[opt.key]
		if !ok {
			continue
		}
		if !slices.Contains(opt.values, v) {
			last := len(opt.values) - 1
			return errorf("%s %s: want %s or %s", opt.key, quoteString(serverText(v, 40)), strings.Join(opt.values[:last], ", "), opt.values[last])
		}
	}
	return nil
}

// setOptions reads the parameters that shape the attempt, refusing those
// portpatrol cannot honour as the app's libpq would.
func (c *pgCheck) setOptions(p pgParams) error {
	if p["service"] != "" {
		return errors.New("service: portpatrol does not read libpq's connection service file: give the service's parameters in the string itself")
	}
	if p["gssencmode"] == "require" {
		return errors.New("gssencmode=require: portpatrol has no GSSAPI, so it cannot see what the app would (use prefer or disable)")
	}
	c.attrs, c.loadBalance, c.channelBinding = p["target_session_attrs"], p["load_balance_hosts"] == "random", p["channel_binding"]
	if c.attrs == "" {
		c.attrs = "any"
	}
	if ra := p["require_auth"]; ra != "" {
		var err error
		if c.requireAuth, c.requireAuthNot, err = parseRequireAuth(ra); err != nil {
			return err
		}
	}
	if _, ok := p["connect_timeout"]; ok {
		n, err := pgInteger(p, "connect_timeout")
		if err != nil {
			return err
		}
		if n > 0 {
			// libpq waits at least 2 s per host.
			c.timeout = min(c.timeout, time.Duration(max(n, 2))*time.Second)
		}
	}
	return nil
}

// pgInteger reads an integer parameter as libpq's parse_int_param does: an
// int, with white space around it allowed, and nothing else (not even
// empty).
func pgInteger(p pgParams, key string) (int, error) {
	v := p[key]
	n, err := strconv.ParseInt(strings.Trim(v, " \t\n\r\f\v"), 10, 32)
	if err != nil {
		return 0, errorf("invalid integer value %s for connection option %s: libpq wants a whole number", quoteString(serverText(v, 40)), quoteString(key))
	}
	return int(n), nil
}

// pgKeepalives are libpq's keepalive settings with the socket option each
// sets and the largest value Linux takes (tcp(7)); the least is 1.
var pgKeepalives = []struct {
	key, option string
	max         int
}{
	{"keepalives_idle", "TCP_KEEPIDLE", 32767},
	{"keepalives_interval", "TCP_KEEPINTVL", 32767},
	{"keepalives_count", "TCP_KEEPCNT", 127},
}

// pgKeepaliveError is the error libpq meets on every TCP connection when a
// keepalive setting is one the kernel refuses: libpq sets them (keepalives
// is on unless 0), a negative value as 0, and fails the connection when
// setsockopt does. nil when they are fine.
func pgKeepaliveError(p pgParams) error {
	if on, given := p["keepalives"]; given {
		if n, _ := pgInteger(p, "keepalives"); n == 0 && strings.TrimSpace(on) != "" {
			return nil
		}
	}
	for _, k := range pgKeepalives {
		if _, given := p[k.key]; !given {
			continue
		}
		n, _ := pgInteger(p, k.key)
		if n < 1 || n > k.max {
			return errorf("setsockopt(%s) failed: invalid argument (%s=%d; libpq fails the connection, and so would the app)", k.option, k.key, n)
		}
	}
	return nil
}

// setHosts pairs the host, hostaddr and port lists into the hosts to try,
// each with its password: the string's, else the password file's.
func (c *pgCheck) setHosts(p pgParams, database string) error {
	names, addrs, ports, n, err := pgHostLists(p)
	if err != nil {
		return err
	}
	passfile := p["passfile"]
	if passfile == "" {
		passfile = pgHomeFile(".pgpass")
	}
	var warnings []string
	for i := range n {
		h, port, err := pgHostAt(names, addrs, ports, i)
		if err != nil {
			return err
		}
		h.password = p["password"]
		if _, given := p["password"]; !given && passfile != "" {
			matchHost := h.name
			if matchHost == "/var/run/postgresql" { // Debian's libpq's default socket directory
				matchHost = "localhost"
			}
			pw, warning := pgPassfilePassword(passfile, matchHost, port, database, c.user)
			if warning != "" {
				// No password, as for libpq: pg_isready's verdict
				// without login=true, and the warning in the reason.
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
	c.passfileWarning = strings.Join(warnings, "; ")
	return nil
}

// pgHostLists are the host, hostaddr and port lists, and how many hosts
// they name: lists that pair up, or a port list of one for all.
func pgHostLists(p pgParams) (names, addrs, ports []string, n int, err error) {
	split := func(key string) []string {
		if v, ok := p[key]; ok {
			return strings.Split(v, ",")
		}
		return nil
	}
	names, addrs, ports = split("host"), split("hostaddr"), split("port")
	n = max(len(names), len(addrs))
	switch {
	case n == 0:
		err = errors.New("missing host: name one (host=db, postgres://db), or a socket directory (host=/run/postgresql)")
	case names != nil && addrs != nil && len(names) != len(addrs):
		err = errorf("could not match %d host names to %d hostaddr values", len(names), len(addrs))
	case len(ports) > 1 && len(ports) != n:
		err = errorf("could not match %d port numbers to %d hosts", len(ports), n)
	}
	return names, addrs, ports, n, err
}

// pgHostAt is the i-th host of the lists, and its port: at its hostaddr if
// one is given, else at its socket directory or host name.
func pgHostAt(names, addrs, ports []string, i int) (h pgHost, port string, err error) {
	var name, addr string
	if names != nil {
		name = pgListAt(names, i)
	}
	if addrs != nil {
		addr = pgListAt(addrs, i)
	}
	if ports != nil {
		port = strings.TrimSpace(pgListAt(ports, i))
	}
	if port == "" {
		port = pgDefaultPort
	}
	if err := checkPort(port); err != nil {
		return h, port, err
	}
	h.name = name
	switch {
	case addr != "":
		if _, err := netip.ParseAddr(addr); err != nil {
			return h, port, errors.New("hostaddr: want an IP address (a name goes in host)")
		}
		h.network, h.address = "tcp", net.JoinHostPort(addr, port)
		if name == "" {
			h.name = addr
		}
	case strings.HasPrefix(name, "/"):
		h.network, h.address = "unix", filepath.Join(name, ".s.PGSQL."+port)
		if err := unixSocketPath(h.address); err != nil {
			return h, port, err
		}
	case name == "":
		return h, port, errors.New("missing host: an empty host in the list")
	default:
		if err := checkHost(name); err != nil {
			return h, port, err
		}
		h.network, h.address = "tcp", net.JoinHostPort(name, port)
	}
	return h, port, nil
}

// pgStartupParameters are the StartupMessage's parameters after user and
// database, as libpq sends them.
func pgStartupParameters(p pgParams) [][2]string {
	app := p["application_name"]
	if app == "" {
		app = "portpatrol"
	}
	extra := [][2]string{{"application_name", app}}
	for _, key := range []string{"options", "client_encoding", "replication"} {
		if v := p[key]; v != "" && !(key == "client_encoding" && v == "auto") {
			extra = append(extra, [2]string{key, v})
		}
	}
	return extra
}

// pgTalk is one start-up exchange: the start-up message, one reply, and a
// graceful end. No password is ever sent, since the answer comes before
// one is asked for.
func pgTalk(conn io.ReadWriter, startup []byte) error {
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
	socketErr       error  // a keepalive setting the kernel refuses: every TCP attempt fails
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

// checkHost is one host's part of the attempt, with sslmode's rules, with
// a login or without (pg_isready too negotiates TLS): allow starts without
// TLS and tries TLS when a login is refused; prefer (the default) the other
// way round, also when the handshake fails; require and verify-* use TLS
// only. A unix socket never uses TLS, as in libpq.
func (c pgCheck) checkHost(ctx context.Context, h pgHost, attrs string) error {
	if h.network == "tcp" && c.socketErr != nil {
		return unseen{c.socketErr} // nothing was asked of the server
	}
	plain := func(ctx context.Context) error {
		return exchange(ctx, h.network, h.address, c.timeout, nil, func(conn net.Conn) error { return c.session(conn, h, attrs, nil) })
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
	if _, ok := err.(blind); ok || err == nil {
		return err
	}
	switch {
	case err.Error() == tlsErr.Error():
		return c.keepUnseen(err, errorf("%v (over TLS first as well)", err))
	}
	return c.keepUnseen(err, errorf("%v; over TLS first: %v", err, tlsErr))
}

// session is what follows on a connection once TLS is settled (state is
// the TLS connection's, if any): a login, or without one pg_isready's
// start-up exchange, which libpq makes over TLS as sslmode says too.
func (c pgCheck) session(conn io.ReadWriter, h pgHost, attrs string, state *tls.ConnectionState) error {
	if c.login {
		return c.logIn(conn, h, attrs, state)
	}
	err := pgTalk(conn, c.startup)
	if err == errPGPasswordAsked && c.passfileWarning != "" {
		return blind{errPGPasswordAsked.note + " (" + c.passfileWarning + ")"}
	}
	return err
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
	l := &pgLogin{pgCheck: c, conn: conn, host: h, state: state, status: map[string]string{}}
	for range pgMaxLoginMessages {
		kind, body, err := readPGMessage(conn, "RENSKvZ")
		if err != nil {
			if l.stage != "" && os.IsTimeout(err) {
				return finalReason{errorf("no ReadyForQuery within %v %s", c.timeout, l.stage)}
			}
			return err
		}
		switch kind {
		case pgErrorResponse:
			return l.errorResponse(body)
		case pgParameterStatus:
			l.parameterStatus(body)
		case pgReadyForQuery:
			return c.readyForQuery(conn, attrs, l.status)
		case pgAuthentication:
			if err := l.authentication(body); err != nil {
				return err
			}
		}
		// BackendKeyData, notices: on to ReadyForQuery.
	}
	return errorf("no ReadyForQuery in the first %d messages of the login", pgMaxLoginMessages)
}

// pgLogin is what a login remembers between the server's messages.
type pgLogin struct {
	pgCheck
	conn   io.ReadWriter
	host   pgHost
	state  *tls.ConnectionState // the TLS connection's, if any
	stage  string               // "", after the password was sent, after authentication
	sasl   *scram               // the SCRAM exchange under way, if any
	status map[string]string    // the ParameterStatus values
}

// errorResponse is the reason a login ends: 57P03 is not up; a refusal
// before AuthenticationOk may be tried again as sslmode says.
func (l *pgLogin) errorResponse(body []byte) error {
	r, err := parsePGError(body)
	if err != nil {
		return err
	}
	if err := r.verdict(); err != nil {
		return err // 57P03: not up, over TLS or not
	}
	err = errorf("login refused: %s (SQLSTATE %s)", r.message, r.sqlstate)
	if r.sqlstate == "28P01" || r.sqlstate == "28000" || pgBouncerRefusal(r) {
		err = unseen{err} // the server is there, but will not let us see
	}
	if l.stage != "after authentication" {
		return pgStartupRefusal{err}
	}
	return err
}

// pgBouncerRefusal: PgBouncer (1.18) refuses a login with SQLSTATE 08P01,
// a protocol violation, where PostgreSQL says 28P01, 28000 or 3D000: a
// wrong password ("SASL authentication failed", "password authentication
// failed"), an unknown user or database ("no such user", "no such
// database: X"), or its hba file ("not allowed").
func pgBouncerRefusal(r pgReply) bool {
	m := r.message
	return r.sqlstate == "08P01" && (strings.Contains(m, "authentication failed") || strings.HasPrefix(m, "no such user") ||
		strings.HasPrefix(m, "no such database") || m == "not allowed")
}

// parameterStatus keeps a setting the server reports (name and value, each
// NUL-terminated), for target_session_attrs.
func (l *pgLogin) parameterStatus(body []byte) {
	if name, value, ok := strings.Cut(strings.TrimSuffix(string(body), "\x00"), "\x00"); ok {
		l.status[name] = value
	}
}

// readyForQuery: the session is set up. Check it as target_session_attrs
// asks, run the query (the query property's, else an empty one), and end it.
func (c pgCheck) readyForQuery(conn io.ReadWriter, attrs string, status map[string]string) error {
	if err := c.sessionAttrs(conn, attrs, status); err != nil {
		return err
	}
	var err error
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
}
