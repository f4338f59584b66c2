package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
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
		ready:      "when the server sends its handshake (protocol 10) and answers a login without password; an error packet instead (1040 too many connections) is not ready; with a password, when the login succeeds",
		stillReady: "still accepts connections",
		properties: []property{
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
			{name: "password", arg: "PASSWORD", secret: true, help: "log in with this password, as the app will; wins over the address's; may be a reference (file:/run/secrets/mysql)",
				set: func(s *targetSpec, v string) error {
					if v == "" {
						return errors.New("must not be empty: leave the property out for no password")
					}
					mysqlOf(s).password = v
					return nil
				}},
			timeoutProperty("one deadline for connecting and the whole exchange"),
		},
		settings: func() any { return &mysqlSettings{} },
		build:    buildMySQL,
	})
}

type mysqlSettings struct {
	user     string // from the user property; "" when not given
	password string // may be a reference until built
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
}

func buildMySQL(s *targetSpec, address string) (built, []error) {
	a, err := parseMySQLAddress(address)
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	if a.emptyPassword && mysqlOf(s).password == "" {
		return built{}, []error{addressError{errEmptyPassword}}
	}
	user := mysqlOf(s).user
	if user == "" {
		user = a.user
	}
	if user == "" {
		user = mysqlDefaultUser
	}
	c := mysqlCheck{network: a.network, address: a.address, user: user, password: a.password, timeout: s.timeout}
	if p := mysqlOf(s).password; p != "" {
		if c.password, err = resolveProperty(s.flag("password"), p); err != nil {
			return built{}, []error{err}
		} else if c.password == "" {
			return built{}, []error{errorf("%s: the password is empty", s.flag("password"))}
		}
	}
	if c.password != "" {
		c.database = a.database
	}
	b := built{
		checker: c,
		address: redactURL(a.shown), // a DSN's ?params may hold a secret too
		pieces:  append(a.pieces, address, a.shown, a.address),
	}
	for _, p := range []string{a.password, c.password} {
		if p != "" {
			b.secrets = append(b.secrets, p)
		}
	}
	return b, nil
}

// parseMySQLAddress accepts host[:port], [v6]:port, a mysql:// URL and the
// Go driver's DSN, user:password@tcp(host:port)/db or user@unix(/path)/db.
// Its errors never quote the address, which may hold a password.
func parseMySQLAddress(s string) (mysqlAddress, error) {
	var a mysqlAddress
	var err error
	switch {
	case strings.Contains(s, "://"):
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
	a := mysqlAddress{shown: u.Redacted(), pieces: urlPieces(u), database: strings.TrimPrefix(u.Path, "/")}
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
	a.database, _, _ = strings.Cut(s[slash+1:], "?")
	a.pieces = []string{a.user, inner, s[slash+1:], hostWithoutPort(a.address)}
	if a.password != "" {
		a.pieces = append(a.pieces, a.password)
	}
	return a, nil
}

// mysqlCheck is ready when the server sends its handshake and answers the
// login that follows, whatever the answer; with a password, when the login
// succeeds.
type mysqlCheck struct {
	network, address string
	user             string
	password         string // "" logs in without one, as mysqladmin ping
	database         string // selected at login (with a password)
	timeout          time.Duration
}

func (c mysqlCheck) check(ctx context.Context) error {
	return exchange(ctx, c.network, c.address, c.timeout, nil, func(conn net.Conn) error { return c.talk(conn) })
}

// mysqlPing is the exchange without a password.
func mysqlPing(conn io.ReadWriter, user string) error {
	return mysqlCheck{user: user}.talk(conn)
}

// talk is the exchange of one attempt. Without a password, it is judged as
// mysqladmin ping would: a handshake means the server is up. It logs in as
// user with no password and waits for the answer before closing, because a
// server counts a handshake left unanswered against max_connect_errors and
// blocks the host (error 1129) when there are too many. With a password,
// the login must succeed.
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
		return err
	}
	method, scramble := hs.authPlugin, hs.scramble
	if _, err := conn.Write(mysqlLogin(hs, c.user, c.authResponse(method, scramble), c.database)); err != nil {
		return err
	}
	// The server is up now, but leaving before the login has its answer
	// counts against max_connect_errors as well, also in the middle of an
	// authentication method switch (seen with MariaDB 10.11). So answer
	// each switch, a few rounds at most.
	for round := 1; ; round++ {
		seq, payload, err = readMySQLPacket(conn)
		if err != nil {
			return err
		}
		if len(payload) == 0 {
			return errors.New("not a MySQL server: an empty reply to the login")
		}
		switch payload[0] {
		case mysqlOK:
			// Logged in: say goodbye, as a client does, rather than drop
			// the connection (which the server counts as an aborted client).
			_, err := conn.Write([]byte{1, 0, 0, 0, mysqlComQuit})
			return err
		case mysqlErr:
			if c.password != "" && method != "" && !mysqlSpeaks(method) {
				// The refusal would read like a wrong password.
				return errMySQLMethod(method)
			}
			if c.password != "" {
				return parseMySQLError(payload)
			}
			// Access denied, say: the server is up.
			return blind{fmt.Sprintf("the login without a password was refused (%v), which means the server is up; give the password property to wait until the app's account may log in", parseMySQLError(payload))}
		case mysqlAuthSwitch, mysqlAuthMore:
			if round == mysqlMaxAuthRounds {
				if c.password != "" {
					return errorf("no answer to the login after %d rounds of authentication", round)
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
			case len(payload) == 2 && payload[1] == performFullAuth && method == "caching_sha2_password":
				response = []byte{requestPublicKey} // no TLS: encrypt with the server's key
			case method == "caching_sha2_password" && bytes.Contains(payload, []byte("PUBLIC KEY-----")):
				if response, err = mysqlEncryptPassword(c.password, scramble, payload[1:]); err != nil {
					return err
				}
			case method != "" && !mysqlSpeaks(method):
				return errMySQLMethod(method)
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
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, nil, err
	}
	n := int(header[0]) | int(header[1])<<8 | int(header[2])<<16
	if n > mysqlMaxPacket {
		return 0, nil, errorf("not a MySQL server: a packet declares %d bytes (more than %d)", n, mysqlMaxPacket)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return header[3], payload, nil
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

// mysqlLogin is a Protocol::HandshakeResponse41 packet (sequence 1) for
// user with auth (empty without a password), selecting database when one is
// given.
func mysqlLogin(hs mysqlHandshake, user string, auth []byte, database string) []byte {
	flags := uint32(clientProtocol41 | clientSecureConnection)
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
	p[0], p[1], p[2], p[3] = byte(n), byte(n>>8), byte(n>>16), 1
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
