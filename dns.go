package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func init() {
	register("dns", &targetType{
		ready:      "when the name resolves to at least min-records records of record-type, holding every expected value",
		properties: dnsProperties,
		settings:   func() any { return &dnsSettings{} },
		finish:     finishDNS,
		build:      buildDNS,
	})
}

// dnsTypes are the record types a dns target can ask for, by their names on
// the command line.
var dnsTypes = map[string]dnsmessage.Type{
	"A": dnsmessage.TypeA, "AAAA": dnsmessage.TypeAAAA, "ANY-IP": dnsmessage.TypeA,
	"CNAME": dnsmessage.TypeCNAME, "SRV": dnsmessage.TypeSRV, "TXT": dnsmessage.TypeTXT,
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
			if v == "" {
				return errors.New("must not be empty")
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
		problems = append(problems, fmt.Errorf("%s=%d cannot hold with %s=CNAME: a name has at most one CNAME record",
			s.flag("min-records"), d.minRecords, s.flag("record-type")))
	}
	for _, v := range d.expected {
		if _, err := dnsValue(d.recordType, v); err != nil {
			problems = append(problems, fmt.Errorf("%s=%s: %v", s.flag("expected"), v, err))
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
			return "", fmt.Errorf("not an IP address, which an %s record holds", recordType)
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
	if err := checkDNSName(address); err != nil {
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
// bytes, 253 in all, optionally with the final dot (RFC 1035 section 2.3.4).
func checkDNSName(name string) error {
	if _, err := netip.ParseAddr(name); err == nil {
		return errors.New("an IP address, not a name: there is nothing to resolve")
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
	if c.resolver != nil {
		values, err = c.lookupSystem(ctx)
	} else {
		values, err = c.lookupServer(ctx)
	}
	if err != nil {
		return err
	}
	if len(values) < c.minRecords {
		if len(values) == 0 {
			return fmt.Errorf("no %s records", c.what())
		}
		return fmt.Errorf("%d %s records, want at least %d", len(values), c.what(), c.minRecords)
	}
	for _, want := range c.expected {
		found := slices.ContainsFunc(values, func(v string) bool {
			// An SRV value written without a port matches any port.
			return v == want || c.recordType == "SRV" && !strings.Contains(want, ":") && strings.HasPrefix(v, want+":")
		})
		if !found {
			return fmt.Errorf("%s is not among the %d %s records", want, len(values), c.what())
		}
	}
	return nil
}

// lookupSystem asks the system's resolver: search domains and ndots apply,
// so a short Kubernetes name finds its Service.
func (c *dnsCheck) lookupSystem(ctx context.Context) ([]string, error) {
	var values []string
	var err error
	switch c.recordType {
	case "A", "AAAA", "ANY-IP":
		network := map[string]string{"A": "ip4", "AAAA": "ip6", "ANY-IP": "ip"}[c.recordType]
		var ips []netip.Addr
		ips, err = c.resolver.LookupNetIP(ctx, network, c.name)
		for _, ip := range ips {
			values = append(values, ip.Unmap().String())
		}
	case "CNAME":
		// The Go resolver answers with the canonical name, which is the
		// name itself when there is no CNAME record.
		var cname string
		cname, err = c.resolver.LookupCNAME(ctx, c.name)
		if err == nil && dnsName(cname) != dnsName(c.name) {
			values = []string{dnsName(cname)}
		}
	case "SRV":
		var srvs []*net.SRV
		_, srvs, err = c.resolver.LookupSRV(ctx, "", "", c.name)
		for _, s := range srvs {
			values = append(values, dnsName(s.Target)+":"+strconv.Itoa(int(s.Port)))
		}
	case "TXT":
		values, err = c.resolver.LookupTXT(ctx, c.name)
	}
	if err == nil {
		return values, nil
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("no answer within %v", c.timeout)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		// The Go resolver tells NXDOMAIN and an empty answer apart in
		// neither its flags nor its text.
		return nil, fmt.Errorf("no such name, or no %s records (NXDOMAIN or NODATA)", c.what())
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout:
		return nil, fmt.Errorf("no answer within %v", c.timeout)
	case errors.As(err, &dnsErr) && dnsErr.Err == "server misbehaving" && dnsErr.IsTemporary:
		return nil, errors.New("SERVFAIL: the server failed to answer")
	case errors.As(err, &dnsErr) && dnsErr.Err == "server misbehaving":
		return nil, errors.New("the DNS server refused to answer or sent a malformed reply")
	case errors.As(err, &dnsErr):
		return nil, fmt.Errorf("the DNS server answered: %s", dnsErr.Err)
	}
	return nil, describeNetError(ctx, err, c.timeout)
}

// lookupServer asks c.server itself, for ANY-IP A and then AAAA.
func (c *dnsCheck) lookupServer(ctx context.Context) ([]string, error) {
	values, err := c.query(ctx, dnsTypes[c.recordType])
	if err != nil || c.recordType != "ANY-IP" {
		return values, err
	}
	more, err := c.query(ctx, dnsmessage.TypeAAAA)
	return append(values, more...), err
}

// query is one question to c.server: over UDP, and again over TCP when the
// answer did not fit (RFC 1035 section 4.2.1, RFC 7766).
func (c *dnsCheck) query(ctx context.Context, qtype dnsmessage.Type) ([]string, error) {
	name, err := dnsmessage.NewName(strings.TrimSuffix(c.name, ".") + ".")
	if err != nil {
		return nil, err // checked at start-up
	}
	id := uint16(rand.N(1 << 16))
	msg, err := dnsQuery(id, name, qtype)
	if err != nil {
		return nil, err
	}
	var values []string
	truncated := false
	err = exchange(ctx, "udp", c.server, c.timeout, nil, func(conn net.Conn) error {
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return err
			}
			values, truncated, err = parseDNSReply(buf[:n], id, name, qtype)
			if err != errOtherReply {
				return err
			}
			// A stray datagram: keep waiting for ours until the deadline.
		}
	})
	if err != nil || !truncated {
		return values, err
	}
	err = exchange(ctx, "tcp", c.server, c.timeout, nil, func(conn net.Conn) error {
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
		values, _, err = parseDNSReply(reply, id, name, qtype)
		if err == errOtherReply {
			err = errors.New("the reply over TCP answers another query")
		}
		return err
	})
	return values, err
}

// dnsQuery is a standard query with recursion desired.
func dnsQuery(id uint16, name dnsmessage.Name, qtype dnsmessage.Type) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: name, Type: qtype, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	return b.Finish()
}

var errOtherReply = errors.New("a reply to another query")

// maxCNAMEs bounds how long a chain of aliases is followed.
const maxCNAMEs = 16

// parseDNSReply reads the answer to the query (id, name, qtype): the values
// of the records of qtype that belong to name, following the CNAME records
// in the answer. A reply that does not answer this query is errOtherReply;
// one whose TC bit is set says only that it was truncated.
func parseDNSReply(reply []byte, id uint16, name dnsmessage.Name, qtype dnsmessage.Type) (values []string, truncated bool, err error) {
	var p dnsmessage.Parser
	h, err := p.Start(reply)
	if err != nil {
		return nil, false, fmt.Errorf("malformed reply: %v", err)
	}
	if h.ID != id || !h.Response {
		return nil, false, errOtherReply
	}
	q, err := p.Question()
	if err != nil || q.Type != qtype || q.Class != dnsmessage.ClassINET || !strings.EqualFold(q.Name.String(), name.String()) {
		return nil, false, errOtherReply
	}
	if h.Truncated {
		return nil, true, nil
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, false, errors.New("NXDOMAIN: no such name")
	case dnsmessage.RCodeServerFailure:
		return nil, false, errors.New("SERVFAIL: the server failed to answer")
	case dnsmessage.RCodeRefused:
		return nil, false, errors.New("REFUSED: the server refuses to answer")
	default:
		return nil, false, fmt.Errorf("the server answered with rcode %d", h.RCode)
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil, false, fmt.Errorf("malformed reply: %v", err)
	}
	type record struct{ owner, value string }
	var records []record
	aliases := map[string]string{} // owner → the name it is an alias of
	for {
		rh, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("malformed reply: %v", err)
		}
		owner := dnsName(rh.Name.String())
		value, keep := "", true
		switch {
		case rh.Class != dnsmessage.ClassINET:
			keep, err = false, p.SkipAnswer()
		case rh.Type == dnsmessage.TypeCNAME:
			var r dnsmessage.CNAMEResource
			if r, err = p.CNAMEResource(); err == nil {
				aliases[owner] = dnsName(r.CNAME.String())
				value, keep = aliases[owner], qtype == dnsmessage.TypeCNAME
			}
		case rh.Type != qtype:
			keep, err = false, p.SkipAnswer()
		case rh.Type == dnsmessage.TypeA:
			var r dnsmessage.AResource
			if r, err = p.AResource(); err == nil {
				value = netip.AddrFrom4(r.A).String()
			}
		case rh.Type == dnsmessage.TypeAAAA:
			var r dnsmessage.AAAAResource
			if r, err = p.AAAAResource(); err == nil {
				value = netip.AddrFrom16(r.AAAA).Unmap().String()
			}
		case rh.Type == dnsmessage.TypeSRV:
			var r dnsmessage.SRVResource
			if r, err = p.SRVResource(); err == nil {
				value = dnsName(r.Target.String()) + ":" + strconv.Itoa(int(r.Port))
			}
		case rh.Type == dnsmessage.TypeTXT:
			var r dnsmessage.TXTResource
			if r, err = p.TXTResource(); err == nil {
				value = strings.Join(r.TXT, "") // one record's strings are one value
			}
		default:
			keep, err = false, p.SkipAnswer()
		}
		if err != nil {
			return nil, false, fmt.Errorf("malformed reply: %v", err)
		}
		if keep {
			records = append(records, record{owner, value})
		}
	}
	// The records of qtype belong to the end of the alias chain; a CNAME
	// query asks for the first link alone.
	owners := []string{dnsName(name.String())}
	for qtype != dnsmessage.TypeCNAME && len(owners) <= maxCNAMEs {
		next, ok := aliases[owners[len(owners)-1]]
		if !ok || slices.Contains(owners, next) {
			break
		}
		owners = append(owners, next)
	}
	for _, r := range records {
		if slices.Contains(owners, r.owner) && !slices.Contains(values, r.value) {
			values = append(values, r.value)
		}
	}
	return values, false, nil
}
