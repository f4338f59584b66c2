package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
)

// The MongoDB wire protocol (OP_MSG) and BSON (bsonspec.org) are the
// references for the names below. Integers on the wire are little-endian.
const (
	opMsg = 2013
	// maxMongoReply bounds one reply. A hello reply is well under a
	// kilobyte; a large replica set lists its hosts in it.
	maxMongoReply = 64 << 10
	// codeCommandNotFound is what servers before 4.4.2 answer to hello.
	codeCommandNotFound = 59
)

func init() {
	register("mongodb", &targetType{
		ready:      "when a server answers hello as a writable primary or a secondary (with several hosts: as a writable primary)",
		properties: mongoProperties,
		settings:   func() any { return &tlsFiles{} },
		finish:     func(s *targetSpec) []error { return tlsOf(s).finish(s) },
		build:      buildMongo,
	})
}

var mongoProperties = append(tlsProperties(tlsOf),
	timeoutProperty("how long one attempt at a host may take"))

// mongoAddress is a parsed address: the hosts to ask, or the name whose SRV
// records list them.
type mongoAddress struct {
	hosts    []string // host:port
	srv      string   // mongodb+srv://: resolve _mongodb._tcp.<srv> on each attempt
	tls      bool
	user     string
	password string
	shown    string // for logs, the password redacted
}

// parseMongoAddress accepts host, host:port and the connection string forms
// mongodb://[user[:password]@]host[:port][,host[:port]...][/db][?options] and
// mongodb+srv://[user[:password]@]host[/db][?options]. Of the options only
// tls and ssl matter; mongodb+srv implies tls=true unless told otherwise.
// Errors never quote the address, which may hold a password.
func parseMongoAddress(s string) (mongoAddress, error) {
	var a mongoAddress
	scheme, rest, isURI := strings.Cut(s, "://")
	if !isURI {
		host, err := withDefaultPort(s, "27017")
		a.hosts, a.shown = []string{host}, host
		return a, err
	}
	if scheme != "mongodb" && scheme != "mongodb+srv" {
		return a, errors.New("want host[:port], mongodb://host[:port][,host...] or mongodb+srv://host")
	}
	authority, tail, _ := strings.Cut(rest, "/")
	if i := strings.IndexByte(authority, '?'); i >= 0 { // mongodb://host?opts
		authority, tail = authority[:i], authority[i:]
	}
	if strings.Count(authority, "@") > 1 {
		return a, errors.New("more than one @ before the hosts: one user:password@ comes first, and an @ in a password is written %40")
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, password, _ := strings.Cut(authority[:at], ":")
		var err error
		if a.user, err = url.PathUnescape(user); err != nil {
			return a, errors.New("the user name is not valid percent-encoding")
		}
		if a.password, err = url.PathUnescape(password); err != nil {
			return a, errors.New("the password is not valid percent-encoding")
		}
		authority = authority[at+1:]
	}
	_, query, _ := strings.Cut(tail, "?")
	a.tls = scheme == "mongodb+srv"
	opts, err := url.ParseQuery(query)
	if err != nil {
		return a, errors.New("the options after ? are not valid (want name=value&name=value)")
	}
	for _, name := range []string{"tls", "ssl"} {
		switch strings.ToLower(opts.Get(name)) {
		case "":
		case "true":
			a.tls = true
		case "false":
			a.tls = false
		default:
			return a, errorf("option %s must be true or false", name)
		}
	}
	a.shown = redactURL(s)
	if scheme == "mongodb+srv" {
		if strings.ContainsAny(authority, ":,") || authority == "" {
			return a, errors.New("mongodb+srv:// takes one host name without a port: its SRV records list the hosts")
		}
		if strings.Count(authority, ".") < 2 {
			return a, errors.New("mongodb+srv:// needs a host name with at least three parts, e.g. cluster0.example.com")
		}
		a.srv = authority
		return a, checkHost(authority)
	}
	for i, item := range strings.Split(authority, ",") {
		// A zone is %25lo in a URL, as in http://; a bare %lo is taken too.
		if unescaped, err := url.PathUnescape(item); err == nil {
			item = unescaped
		}
		host, err := withDefaultPort(item, "27017")
		if err != nil {
			return a, errorf("host %d: %v", i+1, err)
		}
		a.hosts = append(a.hosts, host)
	}
	return a, nil
}

func buildMongo(s *targetSpec, address string) (built, []error) {
	var problems []error
	a, err := parseMongoAddress(address)
	if err != nil {
		problems = append(problems, addressError{err})
	}
	var tlsConfig *tls.Config
	if a.tls {
		var errs []error
		tlsConfig, errs = tlsOf(s).config(s, "")
		problems = append(problems, errs...)
	} else if *tlsOf(s) != (tlsFiles{}) {
		problems = append(problems, errorf("%s: TLS properties are set but the address does not ask for TLS (add ?tls=true)", s.flag("address")))
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	pieces := []string{address, a.shown, a.user, a.srv}
	for _, h := range a.hosts {
		host, _, _ := net.SplitHostPort(h)
		pieces = append(pieces, h, host)
	}
	b := built{checker: mongoCheck{hosts: a.hosts, srv: a.srv, tls: tlsConfig, timeout: s.timeout}, address: a.shown, pieces: pieces}
	if a.password != "" {
		b.secrets = []string{a.password, url.PathEscape(a.password), url.QueryEscape(a.password)}
	}
	return b, nil
}

// mongoCheck asks each host hello. One host is ready as a writable primary
// or a secondary; of several, one must be a writable primary.
type mongoCheck struct {
	hosts    []string
	srv      string
	tls      *tls.Config
	timeout  time.Duration
	resolver *net.Resolver // for srv; nil is the system's
}

func (c mongoCheck) check(ctx context.Context) error {
	hosts := c.hosts
	if c.srv != "" {
		var err error
		if hosts, err = c.lookupSRV(ctx); err != nil {
			return err
		}
	}
	needPrimary := len(hosts) > 1 || c.srv != ""
	return anyServer(ctx, hosts, func(ctx context.Context, host string) error {
		tlsConfig := c.tls
		if tlsConfig != nil {
			// Each host proves its own name.
			tlsConfig = tlsConfig.Clone()
			tlsConfig.ServerName = hostWithoutPort(host)
		}
		return exchange(ctx, "tcp", host, c.timeout, tlsConfig, func(conn net.Conn) error {
			return mongoHello(conn, needPrimary)
		})
	})
}

// lookupSRV lists the hosts of a mongodb+srv:// address, on every attempt:
// the records may appear late. Each must lie in the domain of the name
// (everything after its first label), as the connection string
// specification requires.
func (c mongoCheck) lookupSRV(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resolver := c.resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	_, records, err := resolver.LookupSRV(ctx, "mongodb", "tcp", c.srv)
	if err != nil {
		return nil, describeNetError(ctx, err, c.timeout)
	}
	_, domain, _ := strings.Cut(c.srv, ".")
	var hosts []string
	for _, r := range records {
		target := strings.TrimSuffix(r.Target, ".")
		if !strings.HasSuffix(target, "."+domain) {
			return nil, errorf("the SRV record for %s names %s, outside %s", c.srv, target, domain)
		}
		hosts = append(hosts, net.JoinHostPort(target, fmt.Sprint(r.Port)))
	}
	if len(hosts) == 0 {
		return nil, errorf("no SRV records for _mongodb._tcp.%s", c.srv)
	}
	return hosts, nil
}

// mongoHello sends hello and decides; a server older than hello gets the
// legacy isMaster on the same connection.
func mongoHello(conn net.Conn, needPrimary bool) error {
	r, err := mongoCommand(conn, 1, "hello")
	if err == nil && !r.ok && r.code == codeCommandNotFound {
		r, err = mongoCommand(conn, 2, "isMaster")
	}
	if err != nil {
		return err
	}
	switch {
	case !r.ok:
		return errorf("hello failed: %s (code %d)", r.errmsg, r.code)
	case r.writable:
		return nil
	case r.secondary && !needPrimary:
		return nil
	case r.secondary:
		return errors.New("a secondary, not a writable primary")
	case r.arbiter:
		return errors.New("an arbiter, neither a writable primary nor a secondary")
	case r.replicaSet:
		return errors.New("a replica set member whose set is not initiated (neither a writable primary nor a secondary)")
	}
	return errors.New("neither a writable primary nor a secondary")
}

// mongoCommand sends {<name>: 1, $db: "admin"} as an OP_MSG with one section
// of kind 0 (the body) and reads the one reply.
func mongoCommand(conn net.Conn, requestID int32, name string) (helloReply, error) {
	doc := make([]byte, 4, 64)
	doc = append(doc, 0x10)           // int32 element
	doc = append(doc, name+"\x00"...) // e_name
	doc = append(doc, 1, 0, 0, 0)     // 1
	doc = append(doc, 0x02)           // string element
	doc = append(doc, "$db\x00"...)   // e_name
	doc = append(doc, 6, 0, 0, 0)     // string length, with its NUL
	doc = append(doc, "admin\x00"...) //
	doc = append(doc, 0)              // end of document
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
	msg := make([]byte, 16, 16+5+len(doc))
	binary.LittleEndian.PutUint32(msg[4:], uint32(requestID))
	binary.LittleEndian.PutUint32(msg[12:], opMsg)
	msg = append(msg, 0, 0, 0, 0) // flagBits
	msg = append(msg, 0)          // section kind 0: body
	msg = append(msg, doc...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	if _, err := conn.Write(msg); err != nil {
		return helloReply{}, err
	}
	reply, err := readMongoMessage(conn)
	if err != nil {
		return helloReply{}, err
	}
	body, err := opMsgBody(reply, requestID)
	if err != nil {
		return helloReply{}, err
	}
	return parseHello(body)
}

// readMongoMessage reads one message, its length checked before allocating.
func readMongoMessage(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(size[:]))
	if n < 16+4+1+5 || n > maxMongoReply { // header, flagBits, a section with an empty document
		return nil, errorf("not a MongoDB reply (declared length %d)", n)
	}
	msg := make([]byte, n)
	copy(msg, size[:])
	if _, err := io.ReadFull(r, msg[4:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// opMsgBody checks the header of an OP_MSG reply and returns the document of
// its kind 0 section.
func opMsgBody(msg []byte, requestID int32) ([]byte, error) {
	if len(msg) < 21 {
		return nil, errors.New("malformed OP_MSG reply (truncated)")
	}
	if op := int32(binary.LittleEndian.Uint32(msg[12:])); op != opMsg {
		return nil, errorf("not an OP_MSG reply (opcode %d): the server may be older than MongoDB 3.6", op)
	}
	if to := int32(binary.LittleEndian.Uint32(msg[8:])); to != requestID {
		return nil, errorf("not a MongoDB reply (responseTo %d, want %d)", to, requestID)
	}
	flags := binary.LittleEndian.Uint32(msg[16:])
	sections := msg[20:]
	if flags&1 != 0 { // checksumPresent: a CRC-32C ends the message
		if len(sections) < 4 {
			return nil, errors.New("malformed OP_MSG reply (truncated)")
		}
		sections = sections[:len(sections)-4]
	}
	for len(sections) > 0 {
		kind := sections[0]
		if len(sections) < 5 {
			break
		}
		size := int(binary.LittleEndian.Uint32(sections[1:]))
		if size < 5 || size > len(sections)-1 {
			break
		}
		switch kind {
		case 0:
			return sections[1 : 1+size], nil
		case 1: // a document sequence: size, identifier, documents
			sections = sections[1+size:]
		default:
			return nil, errorf("malformed OP_MSG reply (section kind %d)", kind)
		}
	}
	return nil, errors.New("malformed OP_MSG reply (no body section)")
}

// helloReply holds the top-level fields of a hello (or isMaster) reply that
// decide readiness.
type helloReply struct {
	ok         bool
	writable   bool // isWritablePrimary, or the legacy ismaster
	secondary  bool
	arbiter    bool // arbiterOnly
	replicaSet bool // isreplicaset: a member whose set is not initiated
	errmsg     string
	code       int32
}

// parseHello walks the top-level elements of one BSON document, reading the
// few it needs and skipping the others by their declared sizes, every one
// checked against what is left.
func parseHello(doc []byte) (helloReply, error) {
	var r helloReply
	bad := errors.New("malformed BSON in the reply")
	if len(doc) < 5 || int(binary.LittleEndian.Uint32(doc)) != len(doc) || doc[len(doc)-1] != 0 {
		return r, bad
	}
	e := doc[4 : len(doc)-1]
	for len(e) > 0 {
		typ := e[0]
		end := bytes.IndexByte(e[1:], 0)
		if end < 0 {
			return r, bad
		}
		name, v := string(e[1:1+end]), e[2+end:]
		n := bsonValueSize(typ, v)
		if n < 0 || n > len(v) {
			return r, bad
		}
		v, e = v[:n], v[n:]
		switch name {
		case "ok":
			switch typ {
			case 0x01: // double
				r.ok = math.Float64frombits(binary.LittleEndian.Uint64(v)) == 1
			case 0x10: // int32
				r.ok = int32(binary.LittleEndian.Uint32(v)) == 1
			case 0x12: // int64
				r.ok = int64(binary.LittleEndian.Uint64(v)) == 1
			case 0x08: // boolean
				r.ok = v[0] == 1
			}
		case "isWritablePrimary", "ismaster":
			r.writable = r.writable || typ == 0x08 && v[0] == 1
		case "secondary":
			r.secondary = typ == 0x08 && v[0] == 1
		case "arbiterOnly":
			r.arbiter = typ == 0x08 && v[0] == 1
		case "isreplicaset":
			r.replicaSet = typ == 0x08 && v[0] == 1
		case "errmsg":
			if typ == 0x02 {
				r.errmsg = serverText(strings.TrimSuffix(string(v[4:]), "\x00"), 200)
			}
		case "code":
			if typ == 0x10 {
				r.code = int32(binary.LittleEndian.Uint32(v))
			}
		}
	}
	return r, nil
}

// bsonValueSize is the size of a value of BSON type typ at the start of v, or
// -1 when it cannot be told (an unknown type, a length past the end).
func bsonValueSize(typ byte, v []byte) int {
	// length reads an int32 length prefix and returns it plus extra, or -1
	// when that would run past the end of v.
	length := func(extra int) int {
		if len(v) < 4 {
			return -1
		}
		n := int(int32(binary.LittleEndian.Uint32(v))) + extra
		if n < 0 || n > len(v) {
			return -1
		}
		return n
	}
	switch typ {
	case 0x06, 0x0A, 0x7F, 0xFF: // undefined, null, max key, min key
		return 0
	case 0x08: // boolean
		return 1
	case 0x10: // int32
		return 4
	case 0x01, 0x09, 0x11, 0x12: // double, UTC datetime, timestamp, int64
		return 8
	case 0x07: // ObjectId
		return 12
	case 0x13: // decimal128
		return 16
	case 0x02, 0x0D, 0x0E: // string, JavaScript code, symbol: int32 length + bytes (with the NUL)
		if n := length(4); n >= 5 && v[n-1] == 0 {
			return n
		}
		return -1
	case 0x03, 0x04, 0x0F: // document, array, code with scope: the int32 counts itself
		if n := length(0); n >= 5 {
			return n
		}
		return -1
	case 0x05: // binary: int32 length, subtype, bytes
		return length(5)
	case 0x0C: // DBPointer: string, then a 12-byte ObjectId
		if n := length(4 + 12); n >= 5+12 {
			return n
		}
		return -1
	case 0x0B: // regular expression: two cstrings
		first := bytes.IndexByte(v, 0)
		if first < 0 {
			return -1
		}
		second := bytes.IndexByte(v[first+1:], 0)
		if second < 0 {
			return -1
		}
		return first + second + 2
	}
	return -1
}
