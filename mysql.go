package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The MySQL client/server protocol, as far as a ping needs it: the server
// speaks first with its handshake, the client logs in, the server answers.
// References are to the MySQL source documentation, "Client/Server Protocol".

// mysqlMaxPacket bounds every packet portpatrol reads. A handshake is about
// 100 bytes and an error message at most 512; a declared length above this is
// not a MySQL server worth reading further.
const mysqlMaxPacket = 4096

// mysqlDefaultUser logs in when neither the address nor --mysql.<id>.user
// names one.
const mysqlDefaultUser = "portpatrol"

// Capability flags (Capabilities Flags, CLIENT_*).
const (
	clientConnectWithDB    = 0x00000008
	clientProtocol41       = 0x00000200
	clientSSL              = 0x00000800
	clientSecureConnection = 0x00008000
	clientPluginAuth       = 0x00080000
)

// First bytes of a reply payload (Generic Response Packets, Authentication
// Methods).
const (
	mysqlOK          = 0x00
	mysqlAuthMore    = 0x01 // Protocol::AuthMoreData
	mysqlAuthSwitch  = 0xfe // Protocol::AuthSwitchRequest
	mysqlErr         = 0xff
	mysqlProtocol10  = 10   // Protocol::HandshakeV10
	mysqlComQuit     = 0x01 // COM_QUIT
	utf8mb4GeneralCI = 45   // character set of the handshake response
	// fastAuthSuccess follows AuthMoreData in caching_sha2_password: an OK
	// packet comes next without a client packet in between.
	fastAuthSuccess = 0x03
	// performFullAuth follows AuthMoreData in caching_sha2_password when the
	// server has no cached hash: it wants the password itself, over TLS or
	// encrypted with its RSA key, which requestPublicKey asks for.
	performFullAuth  = 0x04
	requestPublicKey = 0x02
)

// mysqlMaxAuthRounds bounds the answers to authentication switches.
const mysqlMaxAuthRounds = 4

func init() {
	register("mysql", &targetType{
		ready:      "when the server sends its handshake (protocol 10) and answers a login without password; an error packet instead (1040 too many connections) is not ready; with a password (or login, or query), when the login succeeds and a statement is answered",
		stillReady: "still accepts connections",
		properties: mysqlProperties,
		settings:   func() any { return &mysqlSettings{} },
		finish:     func(s *targetSpec) []error { return mysqlOf(s).tlsFiles.finish(s) },
		build:      buildMySQL,
		addressParams: map[string]string{
			"tls":      "?tls=true in a DSN, ?ssl-mode=REQUIRED in a URL",
			"ssl-mode": "?ssl-mode=REQUIRED in a URL, ?tls=true in a DSN",
			"sslmode":  "?ssl-mode=REQUIRED in a URL, ?tls=true in a DSN",
			"ssl-ca":   "?ssl-ca=/path in a URL, or the ca-file property",
			"ssl-cert": "?ssl-cert=/path in a URL, or the cert-file property",
			"ssl-key":  "?ssl-key=/path in a URL, or the key-file property",
			"socket":   "mysql:///db?socket=/path, or user@unix(/path)/db",
		},
	})
}

var mysqlProperties = append([]property{
	{name: "user", arg: "NAME", help: "user named in the login; it need not exist (default: the address's user, else " + mysqlDefaultUser + ")",
		set: func(s *targetSpec, v string) error {
			if strings.IndexByte(v, 0) >= 0 {
				return errors.New("must not contain a NUL byte")
			}
			if err := nonEmpty(v); err != nil {
				return err
			}
			mysqlOf(s).user = v
			return nil
		}},
	passwordProperty("log in with this password, as the app will; wins over the address's; may be a reference (file:/run/secrets/mysql)", func(s *targetSpec) *string { return &mysqlOf(s).password }),
	{name: "login", def: "false", help: "log in without a password: ready when the account may log in and use the database",
		set: func(s *targetSpec, v string) (err error) { mysqlOf(s).login, err = parseBool(v); return }},
	{name: "query", arg: "SQL", help: "after the login, one read-only statement; ready when its first row's first value is true (not NULL, 0, false or empty); may be a reference (file:/etc/checks/migrated.sql)",
		set: func(s *targetSpec, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("must not be empty")
			}
			mysqlOf(s).query = v
			return nil
		}},
	{name: "server-name", arg: "NAME", help: "TLS server name to verify instead of the address's host",
		set: func(s *targetSpec, v string) error {
			if err := checkHost(v); err != nil {
				return err
			}
			mysqlOf(s).serverName = v
			return nil
		}},
}, append(tlsProperties(func(s *targetSpec) *tlsFiles { return &mysqlOf(s).tlsFiles }),
	timeoutProperty("one deadline for connecting and the whole exchange"))...)

type mysqlSettings struct {
	user       string // from the user property; "" when not given
	password   string // may be a reference until built
	login      bool
	query      string // may be a reference until built
	serverName string
	tlsFiles
}

func mysqlOf(s *targetSpec) *mysqlSettings { return s.settings.(*mysqlSettings) }

// mysqlAddress is a parsed address.
type mysqlAddress struct {
	network  string // "tcp" or "unix"
	address  string // host:port or the socket path
	user     string
	password string
	database string // selected at login, when there is a password
	// emptyPassword: user:@host, an error unless the password property
	// gives one.
	emptyPassword bool
	shown         string // for logs, the password replaced by xxxxx
	pieces        []string
	tls           mysqlTLSMode
	tlsAsked      string // the parameter that set tls, for reasons
	// ssl-ca, ssl-cert and ssl-key of a URL: the properties win.
	files tlsFiles
	url   bool // a mysql:// URL, not a DSN
}

// mysqlTLSMode is how an attempt speaks TLS: the Go driver's tls= and the
// MySQL clients' ssl-mode= mapped onto one scale.
type mysqlTLSMode int

const (
	mysqlTLSUnset      mysqlTLSMode = iota // the address does not say
	mysqlTLSOff                            // tls=false, ssl-mode=DISABLED
	mysqlTLSPreferred                      // tls=preferred, ssl-mode=PREFERRED: when offered, not verified
	mysqlTLSRequired                       // tls=skip-verify, ssl-mode=REQUIRED: not verified
	mysqlTLSVerifyCA                       // ssl-mode=VERIFY_CA: the chain, not the name
	mysqlTLSVerifyFull                     // tls=true, ssl-mode=VERIFY_IDENTITY
)

// mysqlSSLModes are the values of a URL's ssl-mode, any case.
var mysqlSSLModes = map[string]mysqlTLSMode{"DISABLED": mysqlTLSOff, "PREFERRED": mysqlTLSPreferred,
	"REQUIRED": mysqlTLSRequired, "VERIFY_CA": mysqlTLSVerifyCA, "VERIFY_IDENTITY": mysqlTLSVerifyFull}

// mysqlDriverTLS reads the Go driver's tls= value: its booleans, skip-verify
// and preferred. Any other value names a configuration the app registers in
// its own code, which portpatrol cannot see.
func mysqlDriverTLS(v string) (mysqlTLSMode, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return mysqlTLSVerifyFull, nil
	case "false", "0":
		return mysqlTLSOff, nil
	case "skip-verify":
		return mysqlTLSRequired, nil
	case "preferred":
		return mysqlTLSPreferred, nil
	}
	return 0, errorf("tls=%s: want true, false, skip-verify or preferred (a configuration the app registers with mysql.RegisterTLSConfig is set here with the ca-file, cert-file, key-file and server-name properties)", quoteValue(v))
}

func buildMySQL(s *targetSpec, address string) (built, []error) {
	a, err := parseMySQLAddress(address)
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	o := mysqlOf(s)
	if a.emptyPassword && o.password == "" {
		return built{}, []error{addressError{errEmptyPassword}}
	}
	user := o.user
	if user == "" {
		user = a.user
	}
	if user == "" {
		user = mysqlDefaultUser
	}
	c := mysqlCheck{network: a.network, address: a.address, user: user, password: a.password, timeout: s.timeout}
	var problems []error
	if o.password != "" {
		if c.password, err = resolveProperty(s.flag("password"), o.password); err != nil {
			problems = append(problems, err)
		} else if c.password == "" {
			problems = append(problems, errorf("%s: the password is empty", s.flag("password")))
		}
	}
	if o.query != "" {
		if c.query, err = resolveProperty(s.flag("query"), o.query); err != nil {
			problems = append(problems, err)
		} else if c.query = strings.TrimSpace(c.query); c.query == "" || len(c.query) > mysqlMaxQuery {
			problems = append(problems, errorf("%s: want one statement of 1 to %d bytes, got %d", s.flag("query"), mysqlMaxQuery, len(c.query)))
		}
	}
	c.login = c.password != "" || o.login || o.query != ""
	if c.login {
		c.database = a.database
	}
	c.tls, c.tlsPreferred, c.tlsAsked, err = mysqlTLS(s, a)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	b := built{
		checker: c,
		address: redactURL(a.shown), // a DSN's ?params may hold a secret too
		pieces:  append(a.pieces, address, a.shown, a.address),
	}
	if strings.ContainsFunc(a.user, unicode.IsSpace) {
		// app s3cret@tcp(db)/: the "user" may hold a password.
		b.secrets = append(b.secrets, a.user)
	}
	for _, p := range []string{a.password, c.password} {
		if p != "" {
			b.secrets = append(b.secrets, p)
		}
	}
	return b, nil
}

// mysqlTLS is the TLS of an attempt (nil: none), from the address's mode
// and files and the TLS properties, which win. A property given where the
// address says nothing asks for TLS, verified unless skip-tls-verify; a URL
// that says nothing prefers TLS, as the MySQL clients do, and a DSN or a
// bare host:port goes without, as the Go driver does.
func mysqlTLS(s *targetSpec, a mysqlAddress) (cfg *tls.Config, preferred bool, asked string, err error) {
	o := mysqlOf(s)
	props := o.tlsFiles != tlsFiles{} || o.serverName != ""
	mode, asked := a.tls, a.tlsAsked
	switch {
	case mode == mysqlTLSOff && props:
		return nil, false, "", errorf("%s: TLS properties are set but the address turns TLS off (%s)", s.flag("address"), a.tlsAsked)
	case mode == mysqlTLSUnset && props:
		mode, asked = mysqlTLSVerifyFull, "a TLS property"
	case mode == mysqlTLSUnset && a.url:
		mode = mysqlTLSPreferred
	}
	if mode == mysqlTLSUnset || mode == mysqlTLSOff || mode == mysqlTLSPreferred && a.network == "unix" {
		return nil, false, "", nil // the MySQL clients speak no TLS over a socket unless asked to
	}
	files := o.tlsFiles
	if files.caFile == "" {
		files.caFile = a.files.caFile
	}
	if files.certFile == "" && files.keyFile == "" {
		files.certFile, files.keyFile = a.files.certFile, a.files.keyFile
	}
	if (files.certFile == "") != (files.keyFile == "") {
		return nil, false, "", errorf("%s: ssl-cert and ssl-key go together: mutual TLS needs both the certificate and its key", s.flag("address"))
	}
	if files.skipVerify && mode > mysqlTLSRequired {
		mode = mysqlTLSRequired
	}
	name := o.serverName
	if name == "" {
		name = "localhost"
		if a.network == "tcp" {
			name = hostWithoutPort(a.address)
		}
	}
	cfg, errs := files.config(s, name)
	if len(errs) > 0 {
		return nil, false, "", errs[0]
	}
	switch mode {
	case mysqlTLSPreferred, mysqlTLSRequired:
		cfg.InsecureSkipVerify = true
	case mysqlTLSVerifyCA:
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = verifyChainOnly(cfg.RootCAs)
	}
	return cfg, mode == mysqlTLSPreferred, asked, nil
}

// verifyChainOnly checks the server's certificate chain against roots (nil:
// the system's) but not its name, as ssl-mode=VERIFY_CA does.
func verifyChainOnly(roots *x509.CertPool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		var leaf *x509.Certificate
		for i, der := range raw {
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return err
			}
			if i == 0 {
				leaf = cert
			} else {
				opts.Intermediates.AddCert(cert)
			}
		}
		if leaf == nil {
			return errors.New("the server sent no certificate")
		}
		if _, err := leaf.Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{leaf}, Err: err}
		}
		return nil
	}
}

// parseMySQLAddress accepts host[:port], [v6]:port, a mysql:// URL and the
// Go driver's DSN, user:password@tcp(host:port)/db or user@unix(/path)/db.
// Its errors never quote the address, which may hold a password.
func parseMySQLAddress(s string) (mysqlAddress, error) {
	var a mysqlAddress
	var err error
	switch {
	case isURL(s): // a :// after no scheme may be in a DSN's password
		a, err = parseMySQLURL(s)
	case strings.ContainsAny(s, "@(/"):
		a, err = parseMySQLDSN(s)
	default:
		a.network, a.shown = "tcp", s
		a.address, err = withDefaultPort(s, "3306")
		if err == nil {
			a.shown = a.address
			a.pieces = []string{hostWithoutPort(a.address)}
		}
	}
	if err != nil {
		return mysqlAddress{}, err
	}
	if a.network == "unix" {
		if err := unixSocketPath(a.address); err != nil {
			return mysqlAddress{}, err
		}
	}
	if strings.IndexByte(a.user, 0) >= 0 {
		return mysqlAddress{}, errors.New("the user name must not contain a NUL byte")
	}
	return a, nil
}

const mysqlForms = "want host[:port], mysql://[user@]host[:port][/db], mysql:///db?socket=/path, or user@tcp(host:port)/db or user@unix(/path)/db"

// parseMySQLURL reads mysql://[user[:password]@]host[:port][/db][?params];
// the query parameter socket=/path selects a unix socket instead of a host.
func parseMySQLURL(s string) (mysqlAddress, error) {
	scheme, _, _ := strings.Cut(s, "://")
	if scheme != "mysql" && scheme != "mariadb" {
		return mysqlAddress{}, errorf("unknown scheme %s://; %s", scheme, mysqlForms)
	}
	if err := unencodedPassword(s, false); err != nil {
		return mysqlAddress{}, err
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes the whole URL, password included: say less.
		return mysqlAddress{}, errors.New("not a valid URL; " + mysqlForms)
	}
	a := mysqlAddress{shown: u.Redacted(), pieces: urlPieces(u), database: strings.TrimPrefix(u.Path, "/"), url: true}
	if u.User != nil {
		var hasPassword bool
		a.user = u.User.Username()
		a.password, hasPassword = u.User.Password()
		a.emptyPassword = hasPassword && a.password == ""
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return mysqlAddress{}, errors.New("the query is not valid (want ?name=value&...)")
	}
	if v := query.Get("ssl-mode"); query.Has("ssl-mode") {
		mode, ok := mysqlSSLModes[strings.ToUpper(v)]
		if !ok {
			return mysqlAddress{}, errorf("ssl-mode=%s: want DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY", quoteValue(v))
		}
		a.tls, a.tlsAsked = mode, "ssl-mode="+strings.ToUpper(v)
	}
	a.files = tlsFiles{caFile: query.Get("ssl-ca"), certFile: query.Get("ssl-cert"), keyFile: query.Get("ssl-key")}
	if socket := query.Get("socket"); query.Has("socket") {
		if u.Host != "" && u.Hostname() != "localhost" {
			return mysqlAddress{}, errors.New("give a host or ?socket=/path, not both (mysql://localhost/db?socket=/path is fine)")
		}
		a.network, a.address = "unix", socket
		a.pieces = append(a.pieces, socket)
		return a, nil
	}
	if u.Hostname() == "" {
		return mysqlAddress{}, errors.New("missing host (or ?socket=/path for a unix socket)")
	}
	host := u.Hostname()
	if err := checkHost(host); err != nil {
		return mysqlAddress{}, err
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return mysqlAddress{}, checkPort("")
		}
		port = "3306"
	}
	if err := checkPort(port); err != nil {
		return mysqlAddress{}, err
	}
	a.network, a.address = "tcp", net.JoinHostPort(host, port)
	return a, nil
}

// parseMySQLDSN reads the Go MySQL driver's data source name,
// [user[:password]@][tcp[(host[:port])]|unix(path)]/[db][?params]. As in
// the driver, the last / ends the address and the last @ before it ends the
// user and password, so a password may hold @ and /.
func parseMySQLDSN(s string) (mysqlAddress, error) {
	slash := strings.LastIndexByte(s, '/')
	if slash < 0 || strings.Contains(s[slash:], ")") {
		return mysqlAddress{}, errors.New("missing / after the address (the driver's form is user@tcp(host:port)/db or user@unix(/path)/db)")
	}
	left := s[:slash]
	var a mysqlAddress
	netaddr := left
	userinfo := ""
	if at := strings.LastIndexByte(left, '@'); at >= 0 {
		userinfo, netaddr = left[:at], left[at+1:]
	}
	var hasPassword bool
	a.user, a.password, hasPassword = strings.Cut(userinfo, ":")
	a.emptyPassword = hasPassword && a.password == ""
	shownUser := userinfo
	if hasPassword {
		shownUser = a.user + ":xxxxx"
	}
	proto, inner, hasParen := strings.Cut(netaddr, "(")
	if hasParen {
		if !strings.HasSuffix(inner, ")") {
			return mysqlAddress{}, errorf("unclosed %s(: want %s(...) followed by /", proto, proto)
		}
		inner = strings.TrimSuffix(inner, ")")
	}
	var err error
	switch proto {
	case "", "tcp":
		if !hasParen || inner == "" {
			inner = "127.0.0.1" // the driver's default
		}
		a.network = "tcp"
		a.address, err = withDefaultPort(inner, "3306")
	case "unix":
		if !hasParen {
			return mysqlAddress{}, errors.New("unix needs the socket path: unix(/run/mysqld/mysqld.sock)")
		}
		a.network, a.address = "unix", inner
	default:
		if userinfo == "" && strings.Contains(s[slash:], "@") {
			// Not a protocol: the user information, when a / in the
			// password ends the address before the @ (app:pa/ss@db).
			return mysqlAddress{}, errors.New("want tcp(host:port) or unix(/path/to/socket) before the last /, after the user information and an @")
		}
		return mysqlAddress{}, errorf("unknown protocol %s (want tcp(host:port) or unix(/path/to/socket))", quoteString(proto))
	}
	if err != nil {
		return mysqlAddress{}, err
	}
	a.shown = s[slash:]
	if netaddr != "" {
		a.shown = netaddr + a.shown
	}
	if userinfo != "" || strings.Contains(left, "@") {
		a.shown = shownUser + "@" + a.shown
	}
	var params string
	a.database, params, _ = strings.Cut(s[slash+1:], "?")
	query, err := url.ParseQuery(params)
	if err != nil {
		return mysqlAddress{}, errors.New("the DSN's ?params are not valid (want ?name=value&...)")
	}
	if v := query.Get("tls"); query.Has("tls") {
		if a.tls, err = mysqlDriverTLS(v); err != nil {
			return mysqlAddress{}, err
		}
		a.tlsAsked = "tls=" + v
	}
	a.pieces = []string{a.user, inner, s[slash+1:], hostWithoutPort(a.address)}
	if a.password != "" {
		a.pieces = append(a.pieces, a.password)
	}
	return a, nil
}

// mysqlCheck is ready when the server sends its handshake and answers the
// login that follows, whatever the answer; with login (a password,
// login=true or a query), when the login succeeds and a statement is
// answered.
type mysqlCheck struct {
	network, address string
	user             string
	password         string // "" logs in without one, as mysqladmin ping
	database         string // selected at login (with login)
	login            bool
	query            string // run read-only after the login; "": DO 1
	tls              *tls.Config
	tlsPreferred     bool   // TLS only when the server offers it
	tlsAsked         string // what asked for TLS, for reasons
	timeout          time.Duration
}

func (c mysqlCheck) check(ctx context.Context) error {
	start := time.Now()
	err := exchange(ctx, c.network, c.address, c.timeout, nil, func(conn net.Conn) error { return c.talk(conn) })
	clear, ok := err.(mysqlRefusedInClear)
	if !ok {
		return err
	}
	// MariaDB refuses a clear login under require_secure_transport, or
	// for an account that requires SSL, with a plain 1045: the same login
	// over TLS tells whether TLS is what is missing.
	retry := c
	retry.tls = &tls.Config{InsecureSkipVerify: true}
	left := c.timeout - time.Since(start) // one deadline for the attempt, retry included
	if left <= 0 {
		return unseen(clear)
	}
	again := exchange(ctx, c.network, c.address, left, nil, func(conn net.Conn) error { return retry.talk(conn) })
	if se, ok := errors.AsType[mysqlServerError](again); again == nil || ok && se.code != 1045 {
		return unseen{errorf("%v, but the same login over TLS is accepted: the server requires TLS for it (require_secure_transport, or an account that requires SSL); the app needs tls=true in a DSN or ssl-mode=REQUIRED in a URL", clear.error)}
	}
	return unseen(clear)
}

// mysqlRefusedInClear is a 1045 to a login without TLS from a server that
// offers TLS.
type mysqlRefusedInClear struct{ error }

// mysqlRefusals are the error codes of a server that is there but refuses
// the credentials, a permission or a connection: an inverted target keeps waiting
// through them (unseen).
var mysqlRefusals = map[uint16]bool{
	1040: true, // too many connections
	1044: true, // access denied to the database
	1045: true, // access denied
	1129: true, // host blocked after connection errors
	1130: true, // host not allowed to connect
	1142: true, // command denied (a query's table)
	1203: true, // the user has more than max_user_connections
	1143: true, // column denied
	1227: true, // a privilege is needed
	1251: true, // the client does not support the authentication protocol
	1698: true, // access denied (unix_socket and the like)
	1820: true, // the password must be changed first
	1862: true, // the password has expired
	3159: true, // insecure transport under require_secure_transport (MySQL)
}

// mysqlRefusal wraps a server's refusal in unseen and says so plainly
// when the password has expired.
func mysqlRefusal(err error) error {
	se, ok := err.(mysqlServerError)
	if !ok || !mysqlRefusals[se.code] {
		return err
	}
	if se.code == 1820 || se.code == 1862 {
		return unseen{errorf("the password has expired (%v)", se)}
	}
	return unseen{se}
}

// mysqlPing is the exchange without a password.
func mysqlPing(conn io.ReadWriter, user string) error {
	return mysqlCheck{user: user}.talk(conn)
}

// talk is the exchange of one attempt. Without login, it is judged as
// mysqladmin ping would: a handshake means the server is up. It logs in as
// user with no password and waits for the answer before closing, because a
// server counts a handshake left unanswered against max_connect_errors and
// blocks the host (error 1129) when there are too many. With login, the
// login must succeed and a statement be answered.
func (c mysqlCheck) talk(conn io.ReadWriter) error {
	seq, payload, err := readMySQLPacket(conn)
	if err != nil {
		return err
	}
	if seq != 0 {
		return errorf("not a MySQL server: the first packet has sequence number %d, want 0", seq)
	}
	hs, err := parseMySQLHandshake(payload)
	if err != nil {
		return mysqlRefusal(err)
	}
	offersTLS := hs.capabilities&clientSSL != 0
	seq = 1
	if c.tls != nil && !offersTLS && !c.tlsPreferred {
		// Answered all the same, without the password, before leaving: a
		// handshake left unanswered counts against max_connect_errors.
		mysqlCheck{user: c.user}.logIn(conn, hs, seq, false)
		// The server answered: there, but it will not tell (unseen).
		return unseen{errorf("the server does not offer TLS, which %s asks for", c.tlsAsked)}
	}
	if c.tls != nil && offersTLS {
		if conn, err = mysqlStartTLS(conn, hs, c.tls); err != nil {
			return err
		}
		seq = 2
	}
	return c.logIn(conn, hs, seq, offersTLS)
}

// logIn sends the login (HandshakeResponse41) with sequence number seq and
// reads its answer.
func (c mysqlCheck) logIn(conn io.ReadWriter, hs mysqlHandshake, seq byte, offersTLS bool) error {
	_, inTLS := conn.(*tls.Conn)
	method, scramble := hs.authPlugin, hs.scramble
	if _, err := conn.Write(mysqlLogin(hs, seq, inTLS, c.user, c.authResponse(method, scramble), c.database)); err != nil {
		return err
	}
	// The server is up now, but leaving before the login has its answer
	// counts against max_connect_errors as well, also in the middle of an
	// authentication method switch (seen with MariaDB 10.11). So answer
	// each switch, a few rounds at most.
	for round := 1; ; round++ {
		var payload []byte
		var err error
		seq, payload, err = readMySQLPacket(conn)
		if err != nil {
			return err
		}
		if len(payload) == 0 {
			return errors.New("not a MySQL server: an empty reply to the login")
		}
		switch payload[0] {
		case mysqlOK:
			if c.login {
				if err = c.afterLogin(conn); os.IsTimeout(err) {
					return finalReason{errorf("no answer to a statement within %v after the login (a proxy whose server is gone?)", c.timeout)}
				}
			}
			// Say goodbye, as a client does, rather than drop the
			// connection (which the server counts as an aborted client).
			if _, werr := conn.Write([]byte{1, 0, 0, 0, mysqlComQuit}); err == nil {
				err = werr
			}
			return err
		case mysqlErr:
			if c.password != "" && method != "" && !mysqlSpeaks(method) {
				// The refusal would read like a wrong password.
				return unseen{errMySQLMethod(method)}
			}
			refusal := parseMySQLError(payload)
			if se, ok := refusal.(mysqlServerError); ok && se.code == 1045 && c.login && offersTLS && !inTLS {
				return mysqlRefusedInClear{refusal}
			}
			if c.login {
				return mysqlRefusal(refusal)
			}
			// Access denied, say: the server is up.
			return blind{fmt.Sprintf("the login without a password was refused (%v), which means the server is up; give the password property (or login=true) to wait until the app's account may log in", refusal)}
		case mysqlAuthSwitch, mysqlAuthMore:
			if round == mysqlMaxAuthRounds {
				if c.login {
					return unseen{errorf("no answer to the login after %d rounds of authentication", round)}
				}
				return nil
			}
			if payload[0] == mysqlAuthMore && len(payload) == 2 && payload[1] == fastAuthSuccess {
				continue // the server sends OK next, unasked
			}
			var response []byte
			switch {
			case c.password == "":
				// An answer that carries no password, shaped as the method
				// expects: a malformed one counts as a connection error too.
				response = mysqlAuthResponse(payload)
			case payload[0] == mysqlAuthSwitch:
				m, data, _ := bytes.Cut(payload[1:], []byte{0})
				method, scramble = string(m), bytes.TrimSuffix(data, []byte{0})
				response = c.authResponse(method, scramble)
				if !mysqlSpeaks(method) {
					// Well-formed, so that the server answers rather than
					// count a connection error; it cannot succeed.
					response = mysqlAuthResponse(payload)
				}
			case len(payload) == 2 && payload[1] == performFullAuth && method == "caching_sha2_password" && inTLS:
				response = append([]byte(c.password), 0) // over TLS, the password itself
			case len(payload) == 2 && payload[1] == performFullAuth && method == "caching_sha2_password":
				response = []byte{requestPublicKey} // no TLS: encrypt with the server's key
			case method == "caching_sha2_password" && bytes.Contains(payload, []byte("PUBLIC KEY-----")):
				if response, err = mysqlEncryptPassword(c.password, scramble, payload[1:]); err != nil {
					return unseen{err} // the server is there, its key unusable
				}
			case method != "" && !mysqlSpeaks(method):
				return unseen{errMySQLMethod(method)}
			default:
				return errorf("not a MySQL server: unexpected authentication data for %s", serverText(method, 64))
			}
			if _, err := conn.Write(mysqlPacketOf(seq+1, response)); err != nil {
				return err
			}
		default:
			return errorf("not a MySQL server: unexpected reply 0x%02x to the login", payload[0])
		}
	}
}

// mysqlStartTLS sends an SSLRequest (Protocol::SSLRequest: the first 32
// bytes of the login, with CLIENT_SSL, sequence 1) and makes the TLS
// handshake; the login follows inside.
func mysqlStartTLS(conn io.ReadWriter, hs mysqlHandshake, cfg *tls.Config) (io.ReadWriter, error) {
	nc, ok := conn.(net.Conn)
	if !ok {
		return nil, errors.New("TLS needs a network connection")
	}
	request := mysqlLogin(hs, 1, true, "", nil, "")[:4+32]
	request[0], request[1], request[2] = 32, 0, 0
	if _, err := nc.Write(request); err != nil {
		return nil, err
	}
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		if os.IsTimeout(err) {
			return nil, err // exchange says within what
		}
		// A failure on trust comes back unseen: there, but not the server
		// the app trusts.
		return nil, finalReason{handshakeFailed(context.Background(), err, 0)}
	}
	return tc, nil
}

// mysqlMethods are the authentication plugins authResponse speaks.
const mysqlMethods = "mysql_native_password, caching_sha2_password and mysql_clear_password"

func errMySQLMethod(method string) error {
	return errorf("the server asks for the authentication plugin %s, which portpatrol does not support (it supports %s)", serverText(method, 64), mysqlMethods)
}

func mysqlSpeaks(method string) bool {
	switch method {
	case "mysql_native_password", "caching_sha2_password", "mysql_clear_password":
		return true
	}
	return false
}

// authResponse is the login's answer to method's challenge: the password
// scrambled as the method says, or nothing without a password or for a
// method portpatrol does not speak (the server then switches to one).
func (c mysqlCheck) authResponse(method string, scramble []byte) []byte {
	if c.password == "" {
		return nil
	}
	switch method {
	case "mysql_native_password":
		return mysqlScrambled(sha1.New, c.password, scramble, true)
	case "caching_sha2_password":
		return mysqlScrambled(sha256.New, c.password, scramble, false)
	case "mysql_clear_password":
		return append([]byte(c.password), 0)
	}
	return nil
}

// mysqlScrambled is the password proven without sending it, H being SHA-1
// for mysql_native_password and SHA-256 for caching_sha2_password:
// H(password) XOR H(scramble + H(H(password))), or with H(H(password))
// first for caching_sha2_password.
func mysqlScrambled(newHash func() hash.Hash, password string, scramble []byte, scrambleFirst bool) []byte {
	sum := func(a, b []byte) []byte {
		h := newHash()
		h.Write(a)
		h.Write(b)
		return h.Sum(nil)
	}
	h1 := sum([]byte(password), nil)
	h2 := sum(h1, nil)
	h3 := sum(h2, scramble)
	if scrambleFirst {
		h3 = sum(scramble, h2)
	}
	for i := range h1 {
		h1[i] ^= h3[i]
	}
	return h1
}

// mysqlEncryptPassword is caching_sha2_password's full authentication
// without TLS: the password and a NUL, XORed with the scramble (repeated),
// encrypted with RSA-OAEP (SHA-1) under the server's public key, as MySQL 8
// clients do.
func mysqlEncryptPassword(password string, scramble, keyPEM []byte) ([]byte, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("caching_sha2_password: the server's public key is not PEM")
	}
	var key *rsa.PublicKey
	if k, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		key, _ = k.(*rsa.PublicKey)
	} else if k, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		key = k
	}
	if key == nil || len(scramble) == 0 {
		return nil, errors.New("caching_sha2_password: the server's public key is not an RSA key")
	}
	plain := append([]byte(password), 0)
	for i := range plain {
		plain[i] ^= scramble[i%len(scramble)]
	}
	out, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, key, plain, nil)
	if err != nil {
		return nil, errorf("caching_sha2_password: %v", err)
	}
	return out, nil
}

// mysqlPacketOf frames payload as a packet with sequence number seq.
func mysqlPacketOf(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// readMySQLPacket reads one packet: a 3-byte little-endian payload length, a
// sequence number, then the payload (MySQL Packets). The length is checked
// against mysqlMaxPacket before anything is allocated.
func readMySQLPacket(r io.Reader) (seq byte, payload []byte, err error) {
	return readMySQLPacketMax(r, mysqlMaxPacket)
}

func readMySQLPacketMax(r io.Reader, limit int) (seq byte, payload []byte, err error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, nil, err
	}
	n := int(header[0]) | int(header[1])<<8 | int(header[2])<<16
	if n > limit {
		return 0, nil, mysqlTooLong{n, limit}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return header[3], payload, nil
}

// mysqlTooLong is a packet that declares more than portpatrol reads.
type mysqlTooLong struct{ n, limit int }

func (e mysqlTooLong) Error() string {
	return fmt.Sprintf("not a MySQL server: a packet declares %d bytes (more than %d)", e.n, e.limit)
}

// mysqlHandshake is what a login needs from Protocol::HandshakeV10.
type mysqlHandshake struct {
	capabilities uint32
	authPlugin   string
	scramble     []byte // auth-plugin-data, both parts, without the final NUL
}

// mysqlServerError is an ERR packet: the reason a server refused.
type mysqlServerError struct {
	code    uint16
	message string
}

func (e mysqlServerError) Error() string {
	return fmt.Sprintf("error %d: %s", e.code, e.message)
}

// parseMySQLHandshake reads the server's first packet: HandshakeV10, or an
// ERR packet (too many connections, host blocked) returned as
// mysqlServerError.
func parseMySQLHandshake(p []byte) (mysqlHandshake, error) {
	var hs mysqlHandshake
	if len(p) == 0 {
		return hs, errors.New("not a MySQL server: an empty first packet")
	}
	switch p[0] {
	case mysqlErr:
		return hs, parseMySQLError(p)
	case mysqlProtocol10:
	default:
		return hs, errorf("not a MySQL server: protocol version %d, want %d", p[0], mysqlProtocol10)
	}
	truncated := errors.New("not a MySQL server: a truncated handshake")
	rest := p[1:]
	end := bytes.IndexByte(rest, 0)
	if end < 0 {
		return hs, truncated
	}
	rest = rest[end+1:]
	// thread id (4), auth-plugin-data-part-1 (8), filler (1), capability_flags_1 (2)
	if len(rest) < 15 {
		return hs, truncated
	}
	hs.capabilities = uint32(binary.LittleEndian.Uint16(rest[13:15]))
	hs.scramble = append([]byte(nil), rest[4:12]...)
	rest = rest[15:]
	if len(rest) == 0 {
		return hs, nil // a pre-4.1 server stops here
	}
	// character_set (1), status_flags (2), capability_flags_2 (2),
	// auth_plugin_data_len (1), reserved (10)
	if len(rest) < 16 {
		return hs, truncated
	}
	hs.capabilities |= uint32(binary.LittleEndian.Uint16(rest[3:5])) << 16
	authDataLen := int(rest[5])
	rest = rest[16:]
	if hs.capabilities&clientSecureConnection != 0 {
		// auth-plugin-data-part-2: $len = MAX(13, auth_plugin_data_len - 8)
		n := max(13, authDataLen-8)
		if len(rest) < n {
			return hs, truncated
		}
		hs.scramble = append(hs.scramble, rest[:n-1]...) // without its NUL
		rest = rest[n:]
	}
	if hs.capabilities&clientPluginAuth != 0 {
		// auth_plugin_name, NUL-terminated; some servers leave out the NUL.
		if end := bytes.IndexByte(rest, 0); end >= 0 {
			rest = rest[:end]
		}
		hs.authPlugin = serverText(string(rest), 200)
	}
	return hs, nil
}

// parseMySQLError reads an ERR_Packet: 0xff, error_code (2), then with
// CLIENT_PROTOCOL_41 '#' and a 5-byte sql_state, then the message. A server
// refusing before the handshake does not know the client's capabilities, so
// the '#' marker may or may not be there.
func parseMySQLError(p []byte) error {
	if len(p) < 3 {
		return errors.New("not a MySQL server: a truncated error packet")
	}
	code := binary.LittleEndian.Uint16(p[1:3])
	msg := p[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		msg = msg[6:]
	}
	return mysqlServerError{code: code, message: serverText(string(msg), 200)}
}

// mysqlLogin is a Protocol::HandshakeResponse41 packet (sequence seq) for
// user with auth (empty without a password), selecting database when one is
// given.
func mysqlLogin(hs mysqlHandshake, seq byte, ssl bool, user string, auth []byte, database string) []byte {
	flags := uint32(clientProtocol41 | clientSecureConnection)
	if ssl {
		flags |= clientSSL
	}
	if hs.capabilities&clientPluginAuth != 0 {
		flags |= clientPluginAuth
	}
	if database != "" {
		flags |= clientConnectWithDB
	}
	p := make([]byte, 4, 4+32+len(user)+2+len(auth)+len(database)+len(hs.authPlugin)+2)
	p = binary.LittleEndian.AppendUint32(p, flags)
	p = binary.LittleEndian.AppendUint32(p, 1<<24) // max_packet_size
	p = append(p, utf8mb4GeneralCI)
	p = append(p, make([]byte, 23)...) // filler
	p = append(p, user...)
	p = append(p, 0)
	p = append(p, byte(len(auth))) // auth_response_length (CLIENT_SECURE_CONNECTION)
	p = append(p, auth...)
	if database != "" {
		p = append(append(p, database...), 0)
	}
	if flags&clientPluginAuth != 0 {
		// Name the server's own method, so that an empty response needs
		// no AuthSwitchRequest for an account without a password.
		p = append(p, hs.authPlugin...)
		p = append(p, 0)
	}
	n := len(p) - 4
	p[0], p[1], p[2], p[3] = byte(n), byte(n>>8), byte(n>>16), seq
	return p
}

// mysqlAuthResponse answers an AuthSwitchRequest (0xfe, the method's name,
// NUL, its data) or AuthMoreData as a client without a password would. An
// empty response means "no password" to most methods; client_ed25519 must
// get a 64-byte signature, and all zeros is one that cannot verify.
func mysqlAuthResponse(request []byte) []byte {
	if request[0] == mysqlAuthSwitch {
		method, _, _ := bytes.Cut(request[1:], []byte{0})
		if string(method) == "client_ed25519" {
			return make([]byte, 64)
		}
	}
	return nil
}

// After the login (COM_QUERY, Text Resultset).
const (
	mysqlComQuery = 0x03
	mysqlEOF      = 0xfe // an EOF_Packet when shorter than 9 bytes
	mysqlNull     = 0xfb // a NULL value in a row
	// mysqlMaxQuery bounds the query property.
	mysqlMaxQuery = 64 << 10
	// mysqlMaxResultPacket bounds the first row of a query's result (the
	// other packets are bounded by mysqlMaxPacket): a longer one is refused
	// rather than read.
	mysqlMaxResultPacket = 64 << 10
	// mysqlMaxColumns is MySQL's own limit on a table's columns.
	mysqlMaxColumns = 4096
)

// afterLogin makes the round trip that shows the account can work: a proxy
// whose server is gone, or MariaDB's sandbox for an expired password
// (1820), fails here. With a query, it runs read-only in a transaction:
// without CLIENT_MULTI_STATEMENTS the server takes one statement only, and
// refuses a write in a READ ONLY transaction (1792); the transaction ends
// with the connection, changing nothing.
func (c mysqlCheck) afterLogin(conn io.ReadWriter) error {
	if c.query == "" {
		return mysqlRefusal(mysqlStatement(conn, "DO 1"))
	}
	if err := mysqlStatement(conn, "START TRANSACTION READ ONLY"); err != nil {
		return mysqlRefusal(err)
	}
	if _, err := conn.Write(mysqlPacketOf(0, append([]byte{mysqlComQuery}, c.query...))); err != nil {
		return err
	}
	return mysqlRefusal(readMySQLResult(conn))
}

// mysqlStatement runs sql, which answers with an OK packet.
func mysqlStatement(conn io.ReadWriter, sql string) error {
	if _, err := conn.Write(mysqlPacketOf(0, append([]byte{mysqlComQuery}, sql...))); err != nil {
		return err
	}
	_, p, err := readMySQLPacket(conn)
	switch {
	case err != nil:
		return err
	case len(p) > 0 && p[0] == mysqlOK:
		return nil
	case len(p) > 0 && p[0] == mysqlErr:
		return parseMySQLError(p)
	}
	return errorf("not a MySQL server: no OK packet after %s", sql)
}

// readMySQLResult reads the reply to a query as far as its first row, and
// is nil when that row's first value is true. A text resultset is a column
// count, that many column definitions, an EOF packet, the rows, and an EOF
// packet; an ERR packet may come instead of any of them.
func readMySQLResult(r io.Reader) error {
	next := func(limit int) ([]byte, error) {
		_, p, err := readMySQLPacketMax(r, limit)
		switch {
		case err != nil:
			return nil, err
		case len(p) == 0:
			return nil, errors.New("not a MySQL server: an empty packet in a result")
		case p[0] == mysqlErr:
			return nil, parseMySQLError(p)
		}
		return p, nil
	}
	p, err := next(mysqlMaxPacket)
	if err != nil {
		return err
	}
	if p[0] == mysqlOK {
		return errors.New("no rows (the statement returns no result set)")
	}
	columns, rest, ok := mysqlLenEnc(p)
	if !ok || len(rest) != 0 || columns == 0 || columns > mysqlMaxColumns {
		return errors.New("not a MySQL server: a result without a valid column count")
	}
	for range columns + 1 { // the column definitions, then EOF
		if p, err = next(mysqlMaxPacket); err != nil {
			return err
		}
	}
	if !mysqlIsEOF(p) {
		return errors.New("not a MySQL server: no EOF packet after the column definitions")
	}
	if p, err = next(mysqlMaxResultPacket); err != nil {
		if long, ok := err.(mysqlTooLong); ok {
			// A MySQL server all the same, which answered: there (unseen),
			// but its answer is past the bound.
			return unseen{errorf("the first row is %d bytes, more than portpatrol reads (%d KiB): select a smaller value", long.n, long.limit>>10)}
		}
		return err
	}
	if mysqlIsEOF(p) {
		return errors.New("no rows")
	}
	if p[0] == mysqlNull {
		return errors.New("the first value is false (NULL)")
	}
	n, rest, ok := mysqlLenEnc(p)
	if !ok || n > uint64(len(rest)) {
		return errors.New("not a MySQL server: a truncated row")
	}
	if v := string(rest[:n]); mysqlFalse(v) {
		return errorf("the first value is false (%s)", quoteString(serverText(v, 40)))
	}
	return nil
}

func mysqlIsEOF(p []byte) bool { return p[0] == mysqlEOF && len(p) < 9 }

// mysqlLenEnc reads a length-encoded integer (Protocol::LengthEncodedInteger)
// and returns what follows it; NULL (0xfb) and 0xff are not integers.
func mysqlLenEnc(p []byte) (uint64, []byte, bool) {
	if len(p) == 0 {
		return 0, nil, false
	}
	var size int
	switch p[0] {
	case 0xfc:
		size = 2
	case 0xfd:
		size = 3
	case 0xfe:
		size = 8
	case mysqlNull, 0xff:
		return 0, nil, false
	default:
		return uint64(p[0]), p[1:], true
	}
	if len(p) < 1+size {
		return 0, nil, false
	}
	var b [8]byte
	copy(b[:], p[1:1+size])
	return binary.LittleEndian.Uint64(b[:]), p[1+size:], true
}

// mysqlFalse is a first value that does not make a query ready: empty,
// false, a number equal to 0, or a BIT value of zero bytes (the text
// protocol sends BIT(1) as the raw byte).
func mysqlFalse(v string) bool {
	if strings.Trim(v, "\x00") == "" || strings.EqualFold(v, "false") {
		return true
	}
	f, err := strconv.ParseFloat(v, 64)
	return err == nil && f == 0
}
