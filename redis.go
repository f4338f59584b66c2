package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Redis answers on its port while it is still reading its dataset (a PING
// then gets -LOADING), so an open port is not ready: this type asks the
// server, as `redis-cli ping` does.

const (
	redisDefaultPort = "6379"
	// maxRESPLine bounds one reply line, type byte and CRLF included. It is
	// the size of the attempt's read buffer, so a longer line is refused
	// without reading or allocating more; an attempt reads at most two lines.
	maxRESPLine = 1024
)

func init() {
	register("redis", &targetType{
		ready:      "when PING is answered +PONG (after AUTH, when a password is given)",
		stillReady: "still answers PING",
		properties: redisProperties,
		settings:   func() any { return &redisSettings{} },
		finish:     func(s *targetSpec) []error { return redisOf(s).tlsFiles.finish(s) },
		build:      buildRedis,
	})
}

// redisSettings are a redis target's own properties; user and password may
// still be references until the target is built.
type redisSettings struct {
	user     string
	password string
	tlsFiles
}

func redisOf(s *targetSpec) *redisSettings { return s.settings.(*redisSettings) }

var redisProperties = append([]property{
	{name: "user", arg: "NAME", help: "ACL user to AUTH as (needs a password); wins over the address's; may be a reference",
		set: func(s *targetSpec, v string) error {
			if v == "" {
				return errors.New("must not be empty: leave the property out for no user")
			}
			redisOf(s).user = v
			return nil
		}},
	passwordProperty("password to AUTH with; wins over the address's; may be a reference (file:/run/secrets/redis)", func(s *targetSpec) *string { return &redisOf(s).password }),
}, append(tlsProperties(func(s *targetSpec) *tlsFiles { return &redisOf(s).tlsFiles }),
	timeoutProperty("one deadline for connect, TLS and the whole exchange"))...)

// redisAddress is a parsed address: where to connect and what the address
// itself says about TLS, credentials and the database.
type redisAddress struct {
	network  string // "tcp" or "unix"
	address  string // host:port, or the socket path
	tls      bool   // rediss://
	user     string
	password string
	// emptyPassword: redis://user:@host, an error unless the password
	// property gives one.
	emptyPassword bool
	db            int // -1: none given; selected when above 0
	shown         string
}

// parseRedisAddress accepts host, host:port, [v6]:port,
// redis://[[user]:password@]host[:port][/db], rediss://... and
// unix:///path[?db=N] (or unix:/path). Its errors never quote the address,
// which may carry a password or have been read from a reference.
func parseRedisAddress(s string) (*redisAddress, error) {
	if strings.HasPrefix(s, "unix:") {
		return parseRedisSocket(s)
	}
	if scheme, ok := urlScheme(s); ok { // u:pw@h:// has none: quoted, it would show pw
		scheme = strings.ToLower(scheme)
		if scheme != "redis" && scheme != "rediss" {
			return nil, errorf("unknown scheme %s: want host[:port], redis://, rediss:// or unix:///path", quoteString(scheme))
		}
		return parseRedisURL(s)
	}
	if strings.HasPrefix(s, "/") {
		return nil, errors.New("a socket path is written unix:///path/to/redis.sock")
	}
	if strings.ContainsAny(s, "/@?#") {
		return nil, errors.New("want host[:port], redis://[[user]:password@]host[:port][/db], rediss://... or unix:///path")
	}
	addr, err := withDefaultPort(s, redisDefaultPort)
	if err != nil {
		return nil, err
	}
	return &redisAddress{network: "tcp", address: addr, db: -1, shown: addr}, nil
}

func parseRedisURL(s string) (*redisAddress, error) {
	if err := unencodedPassword(s, false); err != nil {
		return nil, err
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL (want redis://[[user]:password@]host[:port][/db])")
	}
	a := &redisAddress{network: "tcp", tls: u.Scheme == "rediss", db: -1, shown: u.Redacted()}
	if u.Hostname() == "" {
		return nil, errorf("the URL has no host (want %s://host[:port])", u.Scheme)
	}
	if err := checkHost(u.Hostname()); err != nil {
		return nil, err
	}
	port := redisDefaultPort
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(p); err != nil {
			return nil, err
		}
		port = p
	}
	a.address = net.JoinHostPort(u.Hostname(), port)
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, errors.New("a redis:// URL takes no ?query or #fragment here: the db goes in the path (redis://host/2), TLS settings in their own flags")
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if a.db, err = parseDB(db); err != nil {
			return nil, err
		}
	}
	if u.User != nil {
		var hasPassword bool
		a.user = u.User.Username()
		a.password, hasPassword = u.User.Password()
		a.emptyPassword = hasPassword && a.password == ""
	}
	return a, nil
}

// parseRedisSocket reads unix:///path and unix:/path, with an optional ?db=N.
func parseRedisSocket(s string) (*redisAddress, error) {
	const want = "want unix:///path/to/redis.sock (an absolute path) with an optional ?db=N"
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.Fragment != "" {
		return nil, errors.New(want)
	}
	if u.User != nil {
		return nil, errors.New("a unix:// address takes no user or password: give them with the user and password properties")
	}
	if err := unixSocketPath(u.Path); err != nil {
		return nil, err
	}
	a := &redisAddress{network: "unix", address: u.Path, db: -1, shown: "unix://" + u.Path}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errors.New(want)
	}
	for key, values := range query {
		if key != "db" || len(values) != 1 {
			return nil, errors.New("the only query parameter of a unix:// address is db, once (unix:///path?db=2)")
		}
		if a.db, err = parseDB(values[0]); err != nil {
			return nil, err
		}
		a.shown += "?db=" + values[0]
	}
	return a, nil
}

func parseDB(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || strings.HasPrefix(v, "+") {
		return 0, errors.New("the database must be a number from 0, e.g. redis://host:6379/0")
	}
	return n, nil
}

func buildRedis(s *targetSpec, address string) (built, []error) {
	var problems []error
	a, err := parseRedisAddress(address)
	if err != nil {
		problems = append(problems, addressError{err})
	}
	r := redisOf(s)
	c := &redisCheck{timeout: s.timeout}
	if a != nil {
		c.network, c.address, c.user, c.password, c.db = a.network, a.address, a.user, a.password, a.db
	}
	// The properties win over the address's user and password.
	if r.user != "" {
		if c.user, err = resolveProperty(s.flag("user"), r.user); err != nil {
			problems = append(problems, err)
		} else if c.user == "" {
			problems = append(problems, errorf("%s: the user is empty", s.flag("user")))
		}
	}
	if r.password != "" {
		if c.password, err = resolveProperty(s.flag("password"), r.password); err != nil {
			problems = append(problems, err)
		} else if c.password == "" {
			problems = append(problems, errorf("%s: the password is empty", s.flag("password")))
		}
	}
	if a != nil && a.emptyPassword && r.password == "" {
		problems = append(problems, addressError{errEmptyPassword})
	} else if c.user != "" && c.password == "" && r.password == "" {
		// AUTH needs a password with a user; with neither given, the error
		// names where the user came from.
		if r.user != "" {
			problems = append(problems, errorf("%s: a user needs a password: set %s too", s.flag("user"), s.flag("password")))
		} else {
			problems = append(problems, addressError{errors.New("a user needs a password: write redis://user:password@host or set the password property")})
		}
	}
	if a != nil && !a.tls {
		for _, p := range []string{"skip-tls-verify", "ca-file", "cert-file", "key-file"} {
			if s.isGiven(p) {
				problems = append(problems, errorf("%s needs a rediss:// address: TLS is only spoken there", s.flag(p)))
			}
		}
	}
	if a != nil && a.tls {
		var errs []error
		c.tls, errs = r.tlsFiles.config(s, hostWithoutPort(a.address))
		problems = append(problems, errs...)
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	b := built{checker: c, address: redactURL(a.shown), pieces: []string{address, a.shown, a.address, hostWithoutPort(a.address), a.user}}
	if c.password != "" {
		b.secrets = []string{c.password}
	}
	return b, nil
}

// redisCheck is ready when the server answers PING with +PONG, after AUTH
// when a password is configured.
type redisCheck struct {
	network, address string
	tls              *tls.Config // nil: plain
	user, password   string
	db               int // selected when above 0
	timeout          time.Duration
}

func (c *redisCheck) check(ctx context.Context) error {
	return exchange(ctx, c.network, c.address, c.timeout, c.tls, c.talk)
}

// notReadyWords are the error codes of a server that is up but cannot serve
// yet (loading, a busy script, a replica without its master, a failed save,
// a cluster slot in migration, a denied replica read). Redis and Valkey word
// the rest of these messages differently, so only the first word counts.
var notReadyWords = []string{"LOADING", "BUSY", "MASTERDOWN", "MISCONF", "TRYAGAIN", "DENIED"}

// talk is one exchange: AUTH when a password is configured, SELECT when the
// address names a database other than 0, PING, QUIT.
func (c *redisCheck) talk(conn net.Conn) error {
	r := bufio.NewReaderSize(conn, maxRESPLine)
	if c.password != "" {
		auth := []string{"AUTH", c.password}
		if c.user != "" {
			auth = []string{"AUTH", c.user, c.password}
		}
		if _, err := conn.Write(respCommand(auth...)); err != nil {
			return err
		}
		reply, err := readRESPReply(r)
		if err != nil {
			return err
		}
		switch {
		case reply.kind == respError && isNotReadyWord(reply.word()):
			return errors.New(reply.text)
		case reply.kind == respError:
			// The whole message, as redis-cli prints it; the target's
			// secrets are hidden from reasons, should one ever echo the
			// password. A refusal is no sign the server is gone.
			return unseen{errorf("AUTH failed: %s", reply.text)}
		case reply.kind != respSimpleString || reply.text != "OK":
			return errorf("unexpected reply to AUTH: %s", reply)
		}
	}
	var up error // nil, or blind: up, and no more can be known
	if c.db > 0 {
		// A database beyond the server's "databases" is an error the app
		// would meet at its first command.
		if _, err := conn.Write(respCommand("SELECT", strconv.Itoa(c.db))); err != nil {
			return err
		}
		reply, err := readRESPReply(r)
		if err != nil {
			return err
		}
		switch {
		case reply.kind == respSimpleString && reply.text == "OK":
		case reply.kind == respError && reply.word() == "NOAUTH" && c.password == "":
			up = errRedisNoAuth
		case reply.kind == respError:
			return redisRefusal(errorf("SELECT %d: %s", c.db, reply.text), reply)
		default:
			return errorf("unexpected reply to SELECT: %s", reply)
		}
	}
	if _, err := conn.Write(respCommand("PING")); err != nil {
		return err
	}
	reply, err := readRESPReply(r)
	if err != nil {
		return err
	}
	switch {
	case reply.kind == respSimpleString && reply.text == "PONG":
	case reply.kind == respError && reply.word() == "NOAUTH" && c.password == "":
		// The server answers, but hides whether it is loading from a client
		// that has not authenticated: up is all that can be known.
		up = errRedisNoAuth
	case reply.kind == respError && isNotReadyWord(reply.word()):
		return errors.New(reply.text)
	default:
		return redisRefusal(errorf("unexpected reply to PING: %s", reply), reply)
	}
	// A polite goodbye; its reply is not waited for, and a failure to send
	// it says nothing about readiness.
	conn.Write(respCommand("QUIT"))
	return up
}

var errRedisNoAuth = blind{"the server answers NOAUTH: whether it is loading, or the database exists, cannot be seen without the password property"}

// redisRefusal marks err unseen when reply refuses the credentials or a
// permission: the server is there but will not tell.
func redisRefusal(err error, reply respReply) error {
	if w := reply.word(); reply.kind == respError && (w == "NOAUTH" || w == "WRONGPASS" || w == "NOPERM") {
		return unseen{err}
	}
	return err
}

func isNotReadyWord(w string) bool {
	for _, n := range notReadyWords {
		if w == n {
			return true
		}
	}
	return false
}

// respCommand encodes a command as clients send it: an array of bulk
// strings, "*<count>\r\n" then "$<length>\r\n<bytes>\r\n" for each argument
// (RESP specification, "Sending commands to a Redis server").
func respCommand(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

// The first byte of a reply names its type (RESP specification, "RESP
// protocol description"). Only simple strings and errors are answers here;
// the others are named in messages.
const (
	respSimpleString = '+'
	respError        = '-'
)

var respTypeNames = map[byte]string{
	':': "an integer", '$': "a bulk string", '*': "an array", '_': "a null", '#': "a boolean",
	',': "a double", '(': "a big number", '!': "a bulk error", '=': "a verbatim string",
	'%': "a map", '~': "a set", '>': "a push", '|': "an attribute",
}

// respReply is one reply line: its type byte and, for a simple string or an
// error, the text after it.
type respReply struct {
	kind byte
	text string
}

// word is an error's code: its first word, e.g. LOADING.
func (r respReply) word() string {
	w, _, _ := strings.Cut(r.text, " ")
	return w
}

func (r respReply) String() string {
	if r.kind == respSimpleString || r.kind == respError {
		return string(r.kind) + r.text
	}
	return respTypeNames[r.kind]
}

// readRESPReply reads one reply line, "<type><text>\r\n", of at most
// maxRESPLine bytes. Simple strings and errors carry their text (control
// bytes and invalid UTF-8 replaced, as it is quoted in reasons); the other
// RESP types are recognised by their first byte and not read further.
// Anything else is not RESP.
func readRESPReply(r *bufio.Reader) (respReply, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return respReply{}, errorf("a reply line longer than %d bytes", maxRESPLine)
	case errors.Is(err, io.EOF) && len(line) > 0:
		return respReply{}, errors.New("the server closed the connection in the middle of a reply")
	case err != nil:
		return respReply{}, err
	}
	kind := line[0]
	if kind != respSimpleString && kind != respError {
		if _, known := respTypeNames[kind]; known {
			return respReply{kind: kind}, nil
		}
		return respReply{}, errorf("not a Redis reply (it starts with %q)", kind)
	}
	text, ok := strings.CutSuffix(string(line[1:]), "\r\n")
	if !ok {
		return respReply{}, errors.New("a reply line that does not end in CRLF")
	}
	return respReply{kind: kind, text: serverText(text, maxRESPLine)}, nil
}
