package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func init() {
	register("dns", &targetType{
		ready:      "when the name resolves to at least min-records records of record-type, holding every expected value",
		stillReady: "still resolves",
		properties: dnsProperties,
		settings:   func() any { return &dnsSettings{} },
		finish:     finishDNS,
		build:      buildDNS,
	})
}

// The TYPE and CLASS values a dns target uses (RFC 1035 section 3.2.2 and
// 3.2.4, AAAA in RFC 3596, SRV in RFC 2782).
const (
	dnsTypeA     = 1
	dnsTypeCNAME = 5
	dnsTypeTXT   = 16
	dnsTypeAAAA  = 28
	dnsTypeSRV   = 33
	dnsClassIN   = 1
)

// dnsTypes are the record types a dns target can ask for, by their names on
// the command line.
var dnsTypes = map[string]uint16{
	"A": dnsTypeA, "AAAA": dnsTypeAAAA, "ANY-IP": dnsTypeA,
	"CNAME": dnsTypeCNAME, "SRV": dnsTypeSRV, "TXT": dnsTypeTXT,
}

type dnsSettings struct {
	recordType string // a key of dnsTypes
	expected   []string
	minRecords int
	server     string // host:port; "" asks the system's resolver
}

func dnsOf(s *targetSpec) *dnsSettings { return s.settings.(*dnsSettings) }

var dnsProperties = []property{
	{name: "record-type", arg: "TYPE", def: "ANY-IP", help: "A, AAAA, ANY-IP (A or AAAA), CNAME, SRV or TXT",
		set: func(s *targetSpec, v string) error {
			v = strings.ToUpper(v)
			if _, ok := dnsTypes[v]; !ok {
				return errors.New("want A, AAAA, ANY-IP, CNAME, SRV or TXT")
			}
			dnsOf(s).recordType = v
			return nil
		}},
	{name: "expected", arg: "VALUE", repeatable: true, help: "a value that must be among the answers (an IP, a name, target[:port] for SRV, a TXT string), repeatable",
		set: func(s *targetSpec, v string) error {
			if err := nonEmpty(v); err != nil {
				return err
			}
			dnsOf(s).expected = append(dnsOf(s).expected, v)
			return nil
		}},
	{name: "min-records", arg: "N", def: "1", help: "how many records of the type must be there at least",
		set: func(s *targetSpec, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return errors.New("want a number from 1 to 1000")
			}
			dnsOf(s).minRecords = n
			return nil
		}},
	{name: "server", arg: "HOST[:PORT]", help: "ask this DNS server directly (port 53 by default) instead of the system's resolver",
		set: func(s *targetSpec, v string) (err error) { dnsOf(s).server, err = withDefaultPort(v, "53"); return }},
	timeoutProperty("how long one lookup may take, every query of it included"),
}

func finishDNS(s *targetSpec) []error {
	d := dnsOf(s)
	var problems []error
	if d.recordType == "CNAME" && d.minRecords > 1 {
		problems = append(problems, errorf("%s=%d cannot hold with %s=CNAME: a name has at most one CNAME record",
			s.flag("min-records"), d.minRecords, s.flag("record-type")))
	}
	for _, v := range d.expected {
		if _, err := dnsValue(d.recordType, v); err != nil {
			problems = append(problems, errorf("%s=%s: %v", s.flag("expected"), quoteValue(v), err))
		}
	}
	return problems
}

// dnsValue is the form in which an expected value and an answer are
// compared: addresses as addresses, names in lower case without the final
// dot, SRV records as target:port, TXT strings exactly as they are.
func dnsValue(recordType, v string) (string, error) {
	switch recordType {
	case "A", "AAAA", "ANY-IP":
		ip, err := netip.ParseAddr(v)
		switch ip = ip.Unmap(); {
		case err != nil:
			return "", errorf("not an IP address, which an %s record holds", recordType)
		case recordType == "A" && !ip.Is4():
			return "", errors.New("not an IPv4 address, which an A record holds")
		case recordType == "AAAA" && !ip.Is6():
			return "", errors.New("not an IPv6 address, which an AAAA record holds")
		}
		return ip.String(), nil
	case "SRV":
		if host, port, err := net.SplitHostPort(v); err == nil {
			if err := checkPort(port); err != nil {
				return "", err
			}
			return dnsName(host) + ":" + port, nil
		}
		return dnsName(v), nil
	case "CNAME":
		return dnsName(v), nil
	}
	return v, nil
}

func dnsName(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

func buildDNS(s *targetSpec, address string) (built, []error) {
	d := dnsOf(s)
	if err := checkDNSName(address, s.flag("server")); err != nil {
		return built{}, []error{addressError{err}}
	}
	c := &dnsCheck{name: address, recordType: d.recordType, minRecords: d.minRecords, server: d.server, timeout: s.timeout}
	for _, v := range d.expected {
		v, _ := dnsValue(d.recordType, v) // checked in finishDNS
		c.expected = append(c.expected, v)
	}
	if d.server == "" {
		// The Go resolver reads /etc/resolv.conf (search, ndots) and
		// /etc/hosts as the system's does, and caches no answer.
		c.resolver = &net.Resolver{PreferGo: true}
	}
	return built{checker: c, address: address, pieces: []string{address, dnsName(address)}}, nil
}

// checkDNSName accepts a host name as DNS carries it: labels of 1 to 63
// bytes, 253 in all, optionally with the final dot (RFC 1035 section 2.3.4),
// of letters, digits and hyphens (RFC 1123 section 2.1) and the underscores
// of service names (_pg._tcp, RFC 2782). A URL, a port or a path gets a hint
// that quotes no part of the name, which may have come from a reference;
// serverFlag is the property that takes a server's port.
func checkDNSName(name, serverFlag string) error {
	if _, err := netip.ParseAddr(name); err == nil {
		return errors.New("an IP address, not a name: there is nothing to resolve")
	}
	switch host, port, err := net.SplitHostPort(name); {
	case strings.Contains(name, "://"):
		return errors.New("want a DNS name such as db.example.com, without a scheme like http://")
	case strings.Contains(name, "@"):
		return errors.New("a DNS name has no user or password")
	case err == nil && host != "" && checkPort(port) == nil:
		return errorf("a DNS name has no port; the server to ask is %s=host:port", serverFlag)
	case strings.Contains(name, "/"):
		return errors.New("a DNS name has no path")
	}
	trimmed := strings.TrimSuffix(name, ".")
	if trimmed == "" || len(trimmed) > 253 {
		return errors.New("want a DNS name of 1 to 253 characters, e.g. postgres.default.svc.cluster.local")
	}
	for _, label := range strings.Split(trimmed, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("every label of a DNS name (the parts between dots) must have 1 to 63 characters")
		}
		if strings.IndexFunc(label, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			return errors.New("a DNS name holds no spaces, control or non-ASCII characters")
		}
		if strings.IndexFunc(label, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
		}) >= 0 {
			return errors.New("a DNS name holds only letters, digits, hyphens, underscores and dots")
		}
	}
	return nil
}

// dnsCheck is ready when name has at least minRecords records of
// recordType and every expected value is among them.
type dnsCheck struct {
	name       string
	recordType string
	expected   []string
	minRecords int
	server     string // host:port to ask directly; "" uses resolver
	resolver   *net.Resolver
	timeout    time.Duration
}

// what names the records in reasons.
func (c *dnsCheck) what() string {
	if c.recordType == "ANY-IP" {
		return "A or AAAA"
	}
	return c.recordType
}

func (c *dnsCheck) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var values []string
	var err error
	switch {
	case c.resolver != nil:
		// For ANY-IP Go's resolver asks A and AAAA and keeps the
		// addresses of either; it fails only when neither has any.
		values, err = c.lookupSystem(ctx)
	case c.recordType == "ANY-IP":
		return c.eitherFamily(ctx)
	case c.recordType == "CNAME":
		values, err = c.canonicalName(ctx, c.server, c.name)
	default:
		values, err = c.records(ctx, c.server, c.name, c.recordType)
	}
	if err != nil {
		return err
	}
	return c.judge(values, c.what())
}

// judge tells whether values, records of the type named what, hold
// minRecords and every expected value.
func (c *dnsCheck) judge(values []string, what string) error {
	if len(values) < c.minRecords {
		if len(values) == 0 {
			return errorf("no %s records", what)
		}
		return errorf("%s, want at least %d", countRecords(len(values), what), c.minRecords)
	}
	for _, want := range c.expected {
		found := slices.ContainsFunc(values, func(v string) bool {
			// An SRV value written without a port matches any port.
			return v == want || c.recordType == "SRV" && !strings.Contains(want, ":") && strings.HasPrefix(v, want+":")
		})
		if !found && len(values) == 1 {
			return errorf("%s is not the one %s record", want, what)
		}
		if !found {
			return errorf("%s is not among the %d %s records", want, len(values), what)
		}
	}
	return nil
}

// countRecords says "1 A record" or "3 A records".
func countRecords(n int, what string) string {
	if n == 1 {
		return "1 " + what + " record"
	}
	return strconv.Itoa(n) + " " + what + " records"
}

// eitherFamily asks c.server for the A and the AAAA records at once, so
// that a silent half leaves the other its time. ANY-IP is ready as soon as
// the records come so far, together, hold; a query that failed adds none, so
// an A record is enough where a server refuses AAAA queries (dnsmasq's
// --address without upstream servers does). Otherwise, when a query failed,
// the reason gives each family's own, once when they agree.
func (c *dnsCheck) eitherFamily(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the other query stops once one suffices
	families := [2]string{"A", "AAAA"}
	type answer struct {
		i      int
		values []string
		err    error
	}
	answers := make(chan answer, len(families))
	for i, family := range families {
		go func() {
			values, err := c.records(ctx, c.server, c.name, family)
			answers <- answer{i, values, err}
		}()
	}
	var values [2][]string
	var errs [2]error
	var all []string
	for range families {
		a := <-answers
		values[a.i], errs[a.i] = a.values, a.err
		for _, v := range a.values {
			if !slices.Contains(all, v) { // an IPv4-mapped AAAA record reads as its A record
				all = append(all, v)
			}
		}
		// More records can only help: what holds now holds with the rest.
		if c.judge(all, c.what()) == nil {
			return nil
		}
	}
	if errs == [2]error{} {
		return c.judge(all, c.what())
	}
	for i, family := range families {
		if errs[i] == nil {
			errs[i] = c.judge(values[i], family)
		}
	}
	if errs[0].Error() == errs[1].Error() {
		return errs[0]
	}
	return errorf("A: %v; AAAA: %v", errs[0], errs[1])
}

// lookupSystem asks the system's resolver: search domains and ndots apply,
// so a short Kubernetes name finds its Service.
func (c *dnsCheck) lookupSystem(ctx context.Context) ([]string, error) {
	if c.recordType == "CNAME" {
		return c.systemCanonicalName(ctx)
	}
	values, err := c.lookupGo(ctx, c.name)
	if err == nil {
		return values, nil
	}
	reason := c.systemReason(ctx, err)
	// Go's resolver reads an answer that holds the chain of aliases without
	// the records at its end (dnsmasq's for a --cname whose target is an
	// --address) as no records, and does not ask the end. When the name is
	// an alias, its end, found as for the CNAME type, is asked as written.
	if dnsErr, isDNS := errors.AsType[*net.DNSError](err); isDNS && !dnsErr.IsTimeout && ctx.Err() == nil {
		if end, err := c.systemCanonicalName(ctx); err == nil && len(end) == 1 {
			values, err := c.lookupGo(ctx, end[0]+".")
			if err != nil {
				return nil, errorf("%s is an alias of %s: %v", dnsName(c.name), end[0], c.systemReason(ctx, err))
			}
			return values, nil
		}
	}
	return nil, reason
}

// lookupGo asks Go's resolver for name's records of the type.
func (c *dnsCheck) lookupGo(ctx context.Context, name string) ([]string, error) {
	var values []string
	var err error
	switch c.recordType {
	case "A", "AAAA", "ANY-IP":
		network := map[string]string{"A": "ip4", "AAAA": "ip6", "ANY-IP": "ip"}[c.recordType]
		var ips []netip.Addr
		ips, err = c.resolver.LookupNetIP(ctx, network, name)
		for _, ip := range ips {
			values = append(values, ip.Unmap().String())
		}
	case "SRV":
		var srvs []*net.SRV
		_, srvs, err = c.resolver.LookupSRV(ctx, "", "", name)
		for _, s := range srvs {
			values = append(values, dnsName(s.Target)+":"+strconv.Itoa(int(s.Port)))
		}
	case "TXT":
		values, err = c.resolver.LookupTXT(ctx, name)
	}
	return values, err
}

// systemReason says what a failure of Go's resolver means.
func (c *dnsCheck) systemReason(ctx context.Context, err error) error {
	dnsErr, isDNS := errors.AsType[*net.DNSError](err)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errorf("no answer within %v", c.timeout)
	case isDNS && dnsErr.IsNotFound:
		// The Go resolver tells NXDOMAIN and an empty answer apart in
		// neither its flags nor its text.
		return errorf("no such name, or no %s records (NXDOMAIN or NODATA)", c.what())
	case isDNS && dnsErr.IsTimeout:
		return errorf("no answer within %v", c.timeout)
	case isDNS && dnsErr.Err == "server misbehaving" && dnsErr.IsTemporary:
		return errors.New("SERVFAIL: the server failed to answer")
	case isDNS && dnsErr.Err == "server misbehaving":
		return errors.New("the DNS server refused to answer or sent a malformed reply")
	case isDNS:
		return errorf("the DNS server answered: %s", dnsErr.Err)
	}
	return describeNetError(ctx, err, c.timeout)
}

// records are name's records of recordType (not CNAME), asked of server. An
// answer may hold the chain of aliases from name without the records at its
// end: dnsmasq's does for a --cname whose target is an --address, as does a
// server that could not follow the chain. The end is then asked in turn, as
// RFC 1034's resolver does (section 5.3.3, step 4c), until an answer holds
// the records or ends the chain; glibc and Go's resolver do not, and read
// such an answer as no records. The chain is followed for at most maxCNAMEs
// links, the CNAME type's bound; a loop is an error. An answer that holds
// the whole chain and the records (bind9's) is the only query.
func (c *dnsCheck) records(ctx context.Context, server, name, recordType string) ([]string, error) {
	chain := []string{dnsName(name)}
	for {
		values, aliases, err := c.query(ctx, server, chain[len(chain)-1], dnsTypes[recordType])
		switch end := chain[len(chain)-1]; {
		case len(chain) > 1 && err != nil:
			return nil, errorf("%s is an alias of %s: %v", chain[0], end, err)
		case err != nil || len(values) > 0 || len(chain) == 1 && len(aliases) == 0:
			return values, err
		case len(aliases) == 0:
			return nil, errorf("%s is an alias of %s, which has no %s records", chain[0], end, recordType)
		}
		for _, alias := range aliases {
			if slices.Contains(chain, alias) {
				return nil, errorf("the CNAME records of %s form a loop at %s", chain[0], alias)
			}
			chain = append(chain, alias)
		}
		if len(chain) > 1+maxCNAMEs {
			return nil, errorf("more than %d CNAME records in a row from %s", maxCNAMEs, chain[0])
		}
	}
}

// canonicalName is the end of name's chain of aliases (RFC 1034 section
// 3.6.2), asked of server, as a CNAME record's value; none when name is no
// alias. A CNAME query is answered with the first link alone, or with more
// (bind9's, dnsmasq's), so it is asked again from the last name known until
// a name has no CNAME record: the same end whichever form the answers take.
// Only the first query's failure is a reason: once name is known to be an
// alias, a later query that fails in any way ends the chain at the name it
// asked about, as one without a CNAME record does. dnsmasq without upstream
// servers refuses the CNAME query for a name it holds only an address of;
// a target that does not exist (NXDOMAIN) is still the name a link points
// to, and dig +short shows it as the end.
func (c *dnsCheck) canonicalName(ctx context.Context, server, name string) ([]string, error) {
	chain := []string{dnsName(name)}
	for {
		links, _, err := c.query(ctx, server, chain[len(chain)-1], dnsTypeCNAME)
		if len(chain) > 1 && err != nil || err == nil && len(links) == 0 {
			break
		}
		if err != nil {
			return nil, err
		}
		for _, link := range links {
			if slices.Contains(chain, link) {
				return nil, errorf("the CNAME records of %s form a loop at %s", dnsName(name), link)
			}
			chain = append(chain, link)
		}
		if len(chain) > 1+maxCNAMEs {
			return nil, errorf("more than %d CNAME records in a row from %s", maxCNAMEs, dnsName(name))
		}
	}
	if len(chain) == 1 {
		return nil, nil
	}
	return chain[len(chain)-1:], nil
}

// systemCanonicalName follows the chain of aliases as the system's resolver
// would find the name: /etc/resolv.conf's servers, search list and ndots
// apply. Go's LookupCNAME is not used: it asks for A, AAAA and CNAME records
// at once and takes the first link or the end of a chain of two, whichever
// answer comes first.
func (c *dnsCheck) systemCanonicalName(ctx context.Context) ([]string, error) {
	conf := readResolvConf("/etc/resolv.conf")
	var firstErr error
	for _, name := range conf.names(c.name) {
		// The servers in turn, until one answers: a name that does not
		// exist is an answer, and the next name of the search list is
		// asked; a name that exists ends the search.
		err := error(errNXDOMAIN)
		for _, server := range conf.servers {
			var values []string
			values, err = c.canonicalName(ctx, server, name)
			if err == nil {
				return values, nil
			}
			if err == errNXDOMAIN || ctx.Err() != nil {
				break
			}
		}
		if err != errNXDOMAIN && (firstErr == nil || dnsName(name) == dnsName(c.name)) {
			firstErr = err // the name as written has the last word, as with Go's resolver
		}
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr == nil {
		return nil, errNXDOMAIN
	}
	return nil, firstErr
}

// resolvConf is what a stub resolver reads in /etc/resolv.conf
// (resolv.conf(5)): the servers to ask in order, the search list, and ndots,
// the dots a name needs to be asked as written before the search list.
type resolvConf struct {
	servers, search []string
	ndots           int
}

// readResolvConf reads path as glibc and Go do: without a nameserver line
// (or without the file) the server on this host is asked; the last search
// or domain line counts.
func readResolvConf(path string) resolvConf {
	conf := resolvConf{ndots: 1}
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if ip, err := netip.ParseAddr(f[1]); err == nil {
				conf.servers = append(conf.servers, netip.AddrPortFrom(ip, 53).String())
			}
		case "search", "domain":
			conf.search = f[1:]
		case "options":
			for _, o := range f[1:] {
				if n, err := strconv.Atoi(strings.TrimPrefix(o, "ndots:")); err == nil && strings.HasPrefix(o, "ndots:") {
					conf.ndots = min(max(n, 0), 15) // glibc caps it at 15
				}
			}
		}
	}
	if len(conf.servers) == 0 {
		conf.servers = []string{"127.0.0.1:53", "[::1]:53"}
	}
	return conf
}

// names lists the names to ask for name, in order: as written with a final
// dot; otherwise with each search domain appended, and as written first when
// it has at least ndots dots, last when it has fewer. Names longer than DNS
// allows are left out.
func (conf resolvConf) names(name string) []string {
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	asWritten := strings.Count(name, ".") >= conf.ndots
	var names []string
	if asWritten {
		names = append(names, name)
	}
	for _, domain := range conf.search {
		if full := name + "." + strings.TrimSuffix(domain, "."); len(full) <= 253 && checkDNSName(full, "") == nil {
			names = append(names, full)
		}
	}
	if !asWritten {
		names = append(names, name)
	}
	return names
}

// query is one question to server: over UDP, and again over TCP when the
// answer did not fit (RFC 1035 section 4.2.1, RFC 7766). It returns what
// parseDNSReply reads.
func (c *dnsCheck) query(ctx context.Context, server, name string, qtype uint16) (values, aliases []string, err error) {
	id := uint16(rand.N(1 << 16))
	msg := dnsQuery(id, name, qtype)
	truncated := false
	err = exchange(ctx, "udp", server, c.timeout, nil, func(conn net.Conn) error {
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return err
			}
			values, aliases, truncated, err = parseDNSReply(buf[:n], id, name, qtype)
			if err != errOtherReply {
				return err
			}
			// A stray datagram: keep waiting for ours until the deadline.
		}
	})
	if err != nil || !truncated {
		return values, aliases, err
	}
	answered := false
	err = exchange(ctx, "tcp", server, c.timeout, nil, func(conn net.Conn) error {
		// Over TCP a message is preceded by its length (RFC 1035 section 4.2.2).
		if _, err := conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)); err != nil {
			return err
		}
		var length [2]byte
		if _, err := io.ReadFull(conn, length[:]); err != nil {
			return err
		}
		// At most 65535 bytes, which the two-byte length cannot exceed.
		reply := make([]byte, binary.BigEndian.Uint16(length[:]))
		if _, err := io.ReadFull(conn, reply); err != nil {
			return err
		}
		answered = true
		values, aliases, _, err = parseDNSReply(reply, id, name, qtype)
		if err == errOtherReply {
			err = errors.New("the reply over TCP answers another query")
		}
		return err
	})
	if err != nil && !answered {
		// A bare "connection refused" would read as a server that is down.
		return nil, nil, errorf("the answer over UDP was truncated and the retry over TCP failed: %v", err)
	}
	return values, aliases, err
}

// The header's flag bits (RFC 1035 section 4.1.1): QR, OPCODE (4 bits), AA,
// TC and RD in its third byte; RA, Z (3 bits) and RCODE (4 bits) in its fourth.
const (
	dnsFlagQR = 1 << 15 // a response, not a query
	dnsFlagTC = 1 << 9  // truncated: the message did not fit the datagram
	dnsFlagRD = 1 << 8  // recursion desired
)

// dnsQuery is a standard query (OPCODE 0) with recursion desired for name,
// which checkDNSName accepted: the 12-byte header with QDCOUNT 1, then the
// question: QNAME as labels, each after its length, ended by the root's empty
// label, QTYPE and QCLASS (RFC 1035 sections 4.1.1, 4.1.2, 3.1).
func dnsQuery(id uint16, name string, qtype uint16) []byte {
	msg := make([]byte, 0, 512)
	for _, v := range []uint16{id, dnsFlagRD, 1, 0, 0, 0} { // ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT
		msg = binary.BigEndian.AppendUint16(msg, v)
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		msg = append(append(msg, byte(len(label))), label...)
	}
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, qtype)
	return binary.BigEndian.AppendUint16(msg, dnsClassIN)
}

var (
	errOtherReply = errors.New("a reply to another query")
	errNXDOMAIN   = errors.New("NXDOMAIN: no such name")
)

// maxCNAMEs bounds how long a chain of aliases is followed.
const maxCNAMEs = 16

// parseDNSReply reads the answer to the query (id, name, qtype): the values
// of the records of qtype that belong to name, following the CNAME records
// in the answer, and aliases, the names of the chain of aliases that the
// answer holds, in order from the first link (at most maxCNAMEs, without a
// repeated name); for a CNAME query the values are the aliases. A reply that
// does not answer this query is errOtherReply; one whose TC bit is set says
// only that it was truncated.
func parseDNSReply(reply []byte, id uint16, name string, qtype uint16) (values, aliases []string, truncated bool, err error) {
	r := &dnsReader{msg: reply}
	qdcount, ancount, truncated, err := r.header(id, name, qtype)
	if err != nil || truncated {
		return nil, nil, truncated, err
	}
	for i := 1; i < int(qdcount) && r.err == nil; i++ {
		r.name()
		r.skip(4) // QTYPE, QCLASS
	}
	records, links := r.answers(int(ancount), qtype)
	if r.err != nil {
		return nil, nil, false, errorf("malformed reply: %v", r.err)
	}
	// The records of qtype belong to the end of the alias chain.
	owners := aliasChain(dnsName(name), links)
	if qtype == dnsTypeCNAME {
		return owners[1:], owners[1:], false, nil
	}
	for _, r := range records {
		if slices.Contains(owners, r.owner) && !slices.Contains(values, r.value) {
			values = append(values, r.value)
		}
	}
	return values, owners[1:], false, nil
}

// header reads the header and the first question of a reply to the query
// (id, name, qtype) and turns its RCODE into an error. A reply that does not
// answer this query is errOtherReply; one whose TC bit is set says only that
// it was truncated.
func (r *dnsReader) header(id uint16, name string, qtype uint16) (qdcount, ancount uint16, truncated bool, err error) {
	if len(r.msg) < 12 {
		return 0, 0, false, errorf("malformed reply: %d bytes, shorter than the 12-byte header", len(r.msg))
	}
	replyID, flags, qdcount, ancount := r.uint16(), r.uint16(), r.uint16(), r.uint16()
	r.skip(4) // NSCOUNT, ARCOUNT: the authority and additional sections are not read
	if replyID != id || flags&dnsFlagQR == 0 {
		return 0, 0, false, errOtherReply
	}
	// The question repeats the query's (section 4.1.2); names compare
	// without regard to case (RFC 4343).
	qname, qt, qclass := r.name(), r.uint16(), r.uint16()
	if qdcount == 0 || r.err != nil || qt != qtype || qclass != dnsClassIN || !strings.EqualFold(qname, strings.TrimSuffix(name, ".")+".") {
		return 0, 0, false, errOtherReply
	}
	if flags&dnsFlagTC != 0 {
		return 0, 0, true, nil
	}
	switch rcode := flags & 0xf; rcode { // RCODE (section 4.1.1)
	case 0: // no error
		return qdcount, ancount, false, nil
	case 2: // server failure
		return 0, 0, false, errors.New("SERVFAIL: the server failed to answer")
	case 3: // name error
		return 0, 0, false, errNXDOMAIN
	case 5: // refused
		return 0, 0, false, errors.New("REFUSED: the server refuses to answer")
	default:
		return 0, 0, false, errorf("the server answered with rcode %d", rcode)
	}
}

// dnsRecord is an answer's record of the type asked for, or for a CNAME
// query an alias: its owner's name and its value as text.
type dnsRecord struct{ owner, value string }

// answers reads count resource records (section 4.1.3): NAME, TYPE, CLASS, a
// 4-byte TTL, RDLENGTH and as many bytes of RDATA. It keeps the records of
// qtype, and the CNAME links, owner to the name it is an alias of.
func (r *dnsReader) answers(count int, qtype uint16) (records []dnsRecord, links map[string]string) {
	links = map[string]string{}
	for i := 0; i < count && r.err == nil; i++ {
		owner := dnsName(r.name())
		rtype, class := r.uint16(), r.uint16()
		r.skip(4) // TTL
		rdlength := int(r.uint16())
		end := r.off + rdlength
		if r.err != nil || !r.has(rdlength) {
			break
		}
		value, keep := "", true
		switch {
		case class != dnsClassIN:
			keep = false
		case rtype == dnsTypeCNAME:
			links[owner] = dnsName(r.name())
			value, keep = links[owner], qtype == dnsTypeCNAME
		case rtype != qtype:
			keep = false
		default:
			value, keep = r.rdata(rtype, rdlength, end)
		}
		if !keep {
			r.off = end // a record not read: skipped by its RDLENGTH
		}
		if r.err == nil && r.off != end {
			r.fail("a type %d record's data does not match its RDLENGTH of %d bytes", rtype, rdlength)
		}
		if keep && r.err == nil {
			records = append(records, dnsRecord{owner, value})
		}
	}
	return records, links
}

// rdata reads the RDATA of an A, AAAA, SRV or TXT record, which ends at
// byte end, as text; keep is false for a type that is not read.
func (r *dnsReader) rdata(rtype uint16, rdlength, end int) (value string, keep bool) {
	switch {
	case rtype == dnsTypeA && rdlength == 4:
		return netip.AddrFrom4([4]byte(r.bytes(4))).String(), true
	case rtype == dnsTypeAAAA && rdlength == 16:
		return netip.AddrFrom16([16]byte(r.bytes(16))).Unmap().String(), true
	case rtype == dnsTypeSRV:
		// PRIORITY, WEIGHT, PORT, TARGET (RFC 2782).
		r.skip(4)
		port := r.uint16()
		return dnsName(r.name()) + ":" + strconv.Itoa(int(port)), true
	case rtype == dnsTypeTXT:
		// One or more strings, each after its length byte (section
		// 3.3.14); one record's strings are one value.
		var text []byte
		for r.off < end && r.err == nil {
			text = append(text, r.bytes(int(r.bytes(1)[0]))...)
		}
		return string(text), true
	case rtype == dnsTypeA || rtype == dnsTypeAAAA:
		r.fail("an address record of %d bytes", rdlength)
		return "", true
	}
	return "", false
}

// aliasChain is name followed by the names its CNAME links lead to, in
// order, at most maxCNAMEs links and without a repeated name.
func aliasChain(name string, links map[string]string) []string {
	owners := []string{name}
	for len(owners) <= maxCNAMEs {
		next, ok := links[owners[len(owners)-1]]
		if !ok || slices.Contains(owners, next) {
			break
		}
		owners = append(owners, next)
	}
	return owners
}

// dnsReader reads a DNS message from its start. Every read is checked
// against the message's end; the first failure is kept in err, and later
// reads then return zero values, so a parser reads on and checks err once.
type dnsReader struct {
	msg []byte
	off int
	err error
}

func (r *dnsReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = errorf(format, args...)
	}
}

// has tells whether n more bytes are there, failing when they are not.
func (r *dnsReader) has(n int) bool {
	if r.err == nil && n > len(r.msg)-r.off {
		r.fail("cut short: %d bytes wanted at byte %d of %d", n, r.off, len(r.msg))
	}
	return r.err == nil
}

// bytes reads n bytes; zeros when they are not there.
func (r *dnsReader) bytes(n int) []byte {
	if !r.has(n) {
		return make([]byte, n)
	}
	r.off += n
	return r.msg[r.off-n : r.off]
}

func (r *dnsReader) skip(n int)     { r.bytes(n) }
func (r *dnsReader) uint16() uint16 { return binary.BigEndian.Uint16(r.bytes(2)) }

// dnsMaxPointers bounds the compression pointers one name may follow: a
// compressor replaces a name's tail with a pointer, and a name holds at most
// 127 labels, so no compressor writes more; pointers that only lead to
// pointers, in a loop, end here.
const dnsMaxPointers = 127

// name reads a domain name (RFC 1035 section 3.1) as text with the final
// dot: labels, each after its length byte, ended by the root's empty label
// or by a compression pointer, two bytes 11 and a 14-bit offset in the
// message where the name goes on (section 4.1.4). A pointer may point
// anywhere in the message; the count of pointers and the name's 255-byte
// bound (section 2.3.4) end any loop.
func (r *dnsReader) name() string {
	var text []byte
	off, pointers, length := r.off, 0, 1 // length in wire bytes: the root's label
	for r.err == nil {
		if off >= len(r.msg) {
			r.fail("cut short: a name runs past the end at byte %d", off)
			break
		}
		n := int(r.msg[off])
		switch {
		case n == 0:
			if pointers == 0 {
				r.off = off + 1
			}
			if len(text) == 0 {
				return "."
			}
			return string(text)
		case n&0xc0 == 0xc0:
			if off+1 >= len(r.msg) {
				r.fail("cut short: a compression pointer at byte %d", off)
				break
			}
			if pointers == 0 {
				r.off = off + 2 // the name in place ends with its first pointer
			}
			if pointers++; pointers > dnsMaxPointers {
				r.fail("compression pointers in a loop")
				break
			}
			off = int(binary.BigEndian.Uint16(r.msg[off:]) & 0x3fff)
			if off >= len(r.msg) {
				r.fail("a compression pointer to byte %d of %d", off, len(r.msg))
			}
		case n > 63:
			// Lengths 64 to 191 start with the bits 01 or 10, which
			// are reserved.
			r.fail("a label length of %d, over 63", n)
		case off+1+n > len(r.msg):
			r.fail("cut short: a label of %d bytes at byte %d", n, off)
		default:
			label := r.msg[off+1 : off+1+n]
			if length += 1 + n; length > 255 {
				r.fail("a name longer than 255 bytes")
				break
			}
			if slices.Contains(label, '.') {
				// As text it would read as two labels.
				r.fail("a label holding a dot")
				break
			}
			text = append(append(text, label...), '.')
			off += 1 + n
		}
	}
	return ""
}
