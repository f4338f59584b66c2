package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeAnswer is how the fake DNS server answers one name and type.
type fakeAnswer struct {
	rcode    dnsmessage.RCode
	records  []dnsmessage.Resource
	silent   bool // no reply at all
	garbage  []byte
	truncate bool // over UDP only the header with TC set; the records over TCP
}

// fakeDNS answers from zone (keyed "name. TYPE", e.g. "web.x.test. A") on
// one loopback port over UDP and TCP; names it lacks are NXDOMAIN.
func fakeDNS(t *testing.T, zone map[string]fakeAnswer) string {
	t.Helper()
	var udp net.PacketConn
	var tcp net.Listener
	for range 20 { // the same port free for both protocols
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if tcp, err = net.Listen("tcp", u.LocalAddr().String()); err == nil {
			udp = u
			break
		}
		u.Close()
	}
	if udp == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	t.Cleanup(func() { udp.Close(); tcp.Close() })
	answer := func(query []byte, overTCP bool) []byte {
		var p dnsmessage.Parser
		h, err := p.Start(query)
		if err != nil {
			return nil
		}
		q, err := p.Question()
		if err != nil {
			return nil
		}
		a, ok := zone[strings.ToLower(q.Name.String())+" "+strings.TrimPrefix(q.Type.String(), "Type")]
		switch {
		case !ok:
			a = fakeAnswer{rcode: dnsmessage.RCodeNameError}
			for key := range zone { // the name exists with other types: NODATA
				if strings.HasPrefix(key, strings.ToLower(q.Name.String())+" ") {
					a = fakeAnswer{}
				}
			}
		case a.silent:
			return nil
		case a.garbage != nil:
			return a.garbage
		}
		reply := dnsmessage.Message{
			Header:    dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: a.rcode},
			Questions: []dnsmessage.Question{q},
		}
		if a.truncate && !overTCP {
			reply.Header.Truncated = true
		} else {
			reply.Answers = a.records
		}
		b, err := reply.Pack()
		if err != nil {
			t.Errorf("packing the fake reply: %v", err)
		}
		return b
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := answer(buf[:n], false); reply != nil {
				udp.WriteTo(reply, from)
			}
		}
	}()
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var length [2]byte
				if _, err := io.ReadFull(c, length[:]); err != nil {
					return
				}
				query := make([]byte, binary.BigEndian.Uint16(length[:]))
				if _, err := io.ReadFull(c, query); err != nil {
					return
				}
				if reply := answer(query, true); reply != nil {
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(reply))), reply...))
				}
			}()
		}
	}()
	return udp.LocalAddr().String()
}

func rr(name string, body dnsmessage.ResourceBody) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: 0}, Body: body}
}

func srvRecords(owner string, n int) []dnsmessage.Resource {
	var out []dnsmessage.Resource
	for i := range n {
		out = append(out, rr(owner, &dnsmessage.SRVResource{Priority: 0, Weight: 10, Port: 5432,
			Target: dnsmessage.MustNewName(fmt.Sprintf("pg-%d.x.test.", i))}))
	}
	return out
}

// The records both the fake and dnsmasq serve, for the cases both must
// agree on.
var fakeZone = map[string]fakeAnswer{
	"web.x.test. A":       {records: []dnsmessage.Resource{rr("web.x.test.", &dnsmessage.AResource{A: [4]byte{127, 0, 0, 2}})}},
	"web.x.test. AAAA":    {records: []dnsmessage.Resource{rr("web.x.test.", &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("::2").As16()})}},
	"alias.x.test. CNAME": {records: []dnsmessage.Resource{rr("alias.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("web.x.test.")})}},
	"alias.x.test. A": {records: []dnsmessage.Resource{
		rr("alias.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("web.x.test.")}),
		rr("web.x.test.", &dnsmessage.AResource{A: [4]byte{127, 0, 0, 2}}),
	}},
	// A chain of two aliases; a CNAME query is answered with its first
	// link alone, as a recursive server does.
	"chain.x.test. CNAME": {records: []dnsmessage.Resource{rr("chain.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("alias.x.test.")})}},
	"chain.x.test. A": {records: []dnsmessage.Resource{
		rr("chain.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("alias.x.test.")}),
		rr("alias.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("web.x.test.")}),
		rr("web.x.test.", &dnsmessage.AResource{A: [4]byte{127, 0, 0, 2}}),
	}},
	"_pg._tcp.x.test. SRV": {records: srvRecords("_pg._tcp.x.test.", 3)},
	"txt.x.test. TXT":      {records: []dnsmessage.Resource{rr("txt.x.test.", &dnsmessage.TXTResource{TXT: []string{"v=ready"}})}},
	// More than a 512-byte datagram holds: truncated over UDP, whole over TCP.
	"many.x.test. SRV": {truncate: true, records: srvRecords("many.x.test.", 40)},
	// An A record and a REFUSED AAAA query: dnsmasq's answer for a name
	// of --address=/v4.test/127.0.0.3 without upstream servers.
	"a.v4.test. A":    {records: []dnsmessage.Resource{rr("a.v4.test.", &dnsmessage.AResource{A: [4]byte{127, 0, 0, 3}})}},
	"a.v4.test. AAAA": {rcode: dnsmessage.RCodeRefused},
	// A chain whose end is such a name: dnsmasq refuses the CNAME query
	// for a.v4.test, the last link's target, as it does the AAAA one.
	"refchain.x.test. CNAME": {records: []dnsmessage.Resource{rr("refchain.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("refalias.x.test.")})}},
	"refalias.x.test. CNAME": {records: []dnsmessage.Resource{rr("refalias.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("a.v4.test.")})}},
	"a.v4.test. CNAME":       {rcode: dnsmessage.RCodeRefused},
	// dnsmasq answers a query of any other type for such a chain with its
	// links alone, without the end's records: the end is asked in turn.
	"refchain.x.test. A": {records: []dnsmessage.Resource{
		rr("refchain.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("refalias.x.test.")}),
		rr("refalias.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("a.v4.test.")}),
	}},
	// The same with a.v4.test's domain outside x.test, as a new user
	// wrote it: --address=/db.test/127.0.0.5 --cname=chain.test,alias.test
	// --cname=alias.test,db.test.
	"chain.test. CNAME": {records: []dnsmessage.Resource{rr("chain.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("alias.test.")})}},
	"alias.test. CNAME": {records: []dnsmessage.Resource{rr("alias.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("db.test.")})}},
	"db.test. CNAME":    {rcode: dnsmessage.RCodeRefused},
	"chain.test. A":     {records: dnsmasqChain},
	"chain.test. AAAA":  {records: dnsmasqChain},
	"chain.test. TXT":   {records: dnsmasqChain},
	"db.test. A":        {records: []dnsmessage.Resource{rr("db.test.", &dnsmessage.AResource{A: [4]byte{127, 0, 0, 5}})}},
	"db.test. AAAA":     {rcode: dnsmessage.RCodeRefused},
	"db.test. TXT":      {rcode: dnsmessage.RCodeRefused},
	// A chain whose end has no records of the type, and one whose end
	// does not exist.
	"alias.x.test. TXT":    {records: []dnsmessage.Resource{rr("alias.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("web.x.test.")})}},
	"dangle.x.test. CNAME": {records: []dnsmessage.Resource{rr("dangle.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("nothere.x.test.")})}},
	"dangle.x.test. A":     {records: []dnsmessage.Resource{rr("dangle.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("nothere.x.test.")})}},
}

// dnsmasqChain is dnsmasq's answer for chain.test of a type other than
// CNAME: the two links, not db.test's records.
var dnsmasqChain = []dnsmessage.Resource{
	rr("chain.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("alias.test.")}),
	rr("alias.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("db.test.")}),
}

var dnsmasqZone = []string{
	"--local=/x.test/", // answer x.test alone; unknown names are NXDOMAIN
	"--host-record=web.x.test,127.0.0.2,::2",
	"--cname=alias.x.test,web.x.test",
	"--cname=chain.x.test,alias.x.test",
	"--srv-host=_pg._tcp.x.test,pg-0.x.test,5432,0,10",
	"--srv-host=_pg._tcp.x.test,pg-1.x.test,5432,0,10",
	"--srv-host=_pg._tcp.x.test,pg-2.x.test,5432,0,10",
	"--txt-record=txt.x.test,v=ready",
	"--address=/v4.test/127.0.0.3",
	"--cname=refalias.x.test,a.v4.test",
	"--cname=refchain.x.test,refalias.x.test",
	"--address=/db.test/127.0.0.5",
	"--cname=chain.test,alias.test",
	"--cname=alias.test,db.test",
	"--cname=dangle.x.test,nothere.x.test",
}

func init() {
	for i := range 40 {
		dnsmasqZone = append(dnsmasqZone, fmt.Sprintf("--srv-host=many.x.test,pg-%d.x.test,5432,0,10", i))
	}
}

// sharedDNSCases hold for the fake and for dnsmasq alike: "" means ready.
var sharedDNSCases = []struct {
	args   []string
	reason string
}{
	{[]string{"web.x.test", "--dns.d.record-type=A", "--dns.d.expected=127.0.0.2"}, ""},
	{[]string{"web.x.test", "--dns.d.record-type=aaaa", "--dns.d.expected=0:0::2"}, ""},
	{[]string{"web.x.test", "--dns.d.min-records=2", "--dns.d.expected=127.0.0.2", "--dns.d.expected=::2"}, ""},
	{[]string{"web.x.test.", "--dns.d.record-type=A"}, ""},
	{[]string{"alias.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=WEB.x.test."}, ""},
	{[]string{"alias.x.test", "--dns.d.record-type=A", "--dns.d.expected=127.0.0.2"}, ""},
	// The canonical name is the end of the chain, not its first link.
	{[]string{"chain.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=web.x.test"}, ""},
	{[]string{"chain.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=alias.x.test"}, "alias.x.test is not the one CNAME record"},
	{[]string{"chain.x.test", "--dns.d.record-type=A", "--dns.d.expected=127.0.0.2"}, ""},
	{[]string{"_pg._tcp.x.test", "--dns.d.record-type=SRV", "--dns.d.min-records=3", "--dns.d.expected=pg-1.x.test:5432", "--dns.d.expected=pg-2.x.test"}, ""},
	{[]string{"txt.x.test", "--dns.d.record-type=TXT", "--dns.d.expected=v=ready"}, ""},
	{[]string{"many.x.test", "--dns.d.record-type=SRV", "--dns.d.min-records=40", "--dns.d.expected=pg-39.x.test:5432"}, ""},
	{[]string{"_pg._tcp.x.test", "--dns.d.record-type=SRV", "--dns.d.min-records=4"}, "3 SRV records, want at least 4"},
	{[]string{"_pg._tcp.x.test", "--dns.d.record-type=SRV", "--dns.d.expected=pg-1.x.test:5433"}, "pg-1.x.test:5433 is not among the 3 SRV records"},
	{[]string{"web.x.test", "--dns.d.record-type=A", "--dns.d.expected=127.0.0.9"}, "127.0.0.9 is not the one A record"},
	{[]string{"web.x.test", "--dns.d.record-type=CNAME"}, "no CNAME records"},
	{[]string{"txt.x.test", "--dns.d.record-type=TXT", "--dns.d.expected=V=READY"}, "V=READY is not the one TXT record"},
	{[]string{"missing.x.test"}, "NXDOMAIN: no such name"},
	{[]string{"missing.x.test", "--dns.d.record-type=SRV"}, "NXDOMAIN: no such name"},
	// ANY-IP is A or AAAA: a refused AAAA query does not stand in the way
	// of an A record, but is named when the A records do not suffice.
	{[]string{"a.v4.test"}, ""},
	{[]string{"a.v4.test", "--dns.d.expected=127.0.0.3"}, ""},
	{[]string{"a.v4.test", "--dns.d.expected=::3"}, "A: ::3 is not the one A record; AAAA: REFUSED: the server refuses to answer"},
	{[]string{"a.v4.test", "--dns.d.min-records=2"}, "A: 1 A record, want at least 2; AAAA: REFUSED: the server refuses to answer"},
	{[]string{"web.x.test", "--dns.d.expected=127.0.0.9"}, "127.0.0.9 is not among the 2 A or AAAA records"},
	// A refused query for a link's target ends the chain there: that
	// target is the canonical name. Refused for the name asked, it is the
	// reason.
	{[]string{"refchain.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=a.v4.test"}, ""},
	{[]string{"refalias.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=a.v4.test"}, ""},
	{[]string{"refchain.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=refalias.x.test"}, "refalias.x.test is not the one CNAME record"},
	{[]string{"a.v4.test", "--dns.d.record-type=CNAME"}, "REFUSED: the server refuses to answer"},
	// An answer that holds the chain without the end's records: the end
	// is asked for them in turn.
	{[]string{"refchain.x.test", "--dns.d.record-type=A", "--dns.d.expected=127.0.0.3"}, ""},
	{[]string{"chain.test", "--dns.d.record-type=A", "--dns.d.expected=127.0.0.5"}, ""},
	{[]string{"chain.test", "--dns.d.expected=127.0.0.5"}, ""},
	{[]string{"chain.test", "--dns.d.record-type=CNAME", "--dns.d.expected=db.test"}, ""},
	{[]string{"chain.test", "--dns.d.record-type=AAAA"}, "chain.test is an alias of db.test: REFUSED: the server refuses to answer"},
	{[]string{"chain.test", "--dns.d.record-type=TXT"}, "chain.test is an alias of db.test: REFUSED: the server refuses to answer"},
	{[]string{"chain.test", "--dns.d.expected=::5"}, "A: ::5 is not the one A record; AAAA: chain.test is an alias of db.test: REFUSED: the server refuses to answer"},
	{[]string{"alias.x.test", "--dns.d.record-type=TXT"}, "alias.x.test is an alias of web.x.test, which has no TXT records"},
	{[]string{"dangle.x.test", "--dns.d.record-type=A"}, "dangle.x.test is an alias of nothere.x.test: NXDOMAIN: no such name"},
}

func runDNSCases(t *testing.T, server string, cases []struct {
	args   []string
	reason string
}) {
	t.Helper()
	for _, tc := range cases {
		args := append([]string{"--dns.d.address=" + tc.args[0], "--dns.d.server=" + server, "--default-interval=50ms", "--timeout=2s"}, tc.args[1:]...)
		if tc.reason != "" {
			// Short enough for a second attempt within the 2s, long
			// enough that a busy machine's server answers each one:
			// the reason must read the same every time.
			args = append(args, "--dns.d.timeout=1s")
		}
		o := runPortpatrol(t, nil, args...)
		if tc.reason == "" {
			if o.code != 0 {
				t.Errorf("%q: exit %d, want ready:\n%s", tc.args, o.code, o.stderr)
			}
			continue
		}
		if o.code != 1 || !strings.Contains(o.stderr, `error="`+tc.reason+`"`) {
			t.Errorf("%q: exit %d, want 1 with reason %q:\n%s", tc.args, o.code, tc.reason, o.stderr)
		}
		// Every attempt failed the same way: one warning, not one per attempt.
		if n := strings.Count(o.stderr, `level=WARN msg="not ready"`); n != 1 {
			t.Errorf("%q: %d different reasons, want 1 stable one:\n%s", tc.args, n, o.stderr)
		}
	}
}

func TestDNSFakeServer(t *testing.T) {
	t.Parallel()
	runDNSCases(t, fakeDNS(t, fakeZone), sharedDNSCases)
}

// The same cases against a real DNS server show the fake is no fake of a
// misreading.
func TestDNSRealDnsmasq(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dnsmasq := requireProgram(t, "dnsmasq", "/usr/sbin/dnsmasq")
	port := freePort(t)
	server := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(dnsmasq, append([]string{"--no-daemon", "--conf-file=/dev/null", "--pid-file=", "--port=" + strconv.Itoa(port),
		"--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts"}, dnsmasqZone...)...)
	cmd.Dir = nobodyDir(t)
	startServer(t, asNobody(cmd))
	waitForPort(t, server, 30*time.Second)
	runDNSCases(t, server, sharedDNSCases)
}

func TestDNSFakeServerFailures(t *testing.T) {
	t.Parallel()
	valid, _ := (&dnsmessage.Message{Header: dnsmessage.Header{ID: 1, Response: true}}).Pack()
	zone := map[string]fakeAnswer{
		"fail.x.test. A":       {rcode: dnsmessage.RCodeServerFailure},
		"refused.x.test. A":    {rcode: dnsmessage.RCodeRefused},
		"silent.x.test. A":     {silent: true},
		"junk.x.test. A":       {garbage: []byte{1, 2, 3}},
		"other.x.test. A":      {garbage: valid}, // a reply to a query never asked: waited past
		"many.x.test. SRV":     {truncate: true, records: srvRecords("many.x.test.", 100)},
		"v4.x.test. A":         {records: []dnsmessage.Resource{rr("v4.x.test.", &dnsmessage.AResource{A: [4]byte{10, 0, 0, 1}})}},
		"refused.x.test. AAAA": {rcode: dnsmessage.RCodeRefused},
		"mixed.x.test. A":      {rcode: dnsmessage.RCodeNameError},
		"mixed.x.test. AAAA":   {rcode: dnsmessage.RCodeRefused},
		"slow4.x.test. A":      {silent: true},
		"slow4.x.test. AAAA":   {records: []dnsmessage.Resource{rr("slow4.x.test.", &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("::5").As16()})}},
		"mapped.x.test. A":     {records: []dnsmessage.Resource{rr("mapped.x.test.", &dnsmessage.AResource{A: [4]byte{10, 0, 0, 1}})}},
		"mapped.x.test. AAAA":  {records: []dnsmessage.Resource{rr("mapped.x.test.", &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("::ffff:10.0.0.1").As16()})}},
		// A CNAME answer with the whole chain, one whose end does not
		// exist, and a loop.
		"whole.x.test. CNAME": {records: []dnsmessage.Resource{
			rr("whole.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("alias.x.test.")}),
			rr("alias.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("end.x.test.")}),
		}},
		"end.x.test. A":          {records: []dnsmessage.Resource{rr("end.x.test.", &dnsmessage.AResource{A: [4]byte{10, 0, 0, 1}})}},
		"dangling.x.test. CNAME": {records: []dnsmessage.Resource{rr("dangling.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("gone.x.test.")})}},
		"loop1.x.test. CNAME":    {records: []dnsmessage.Resource{rr("loop1.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("loop2.x.test.")})}},
		"loop2.x.test. CNAME":    {records: []dnsmessage.Resource{rr("loop2.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("loop1.x.test.")})}},
		// A link's target whose CNAME query fails or goes unanswered.
		"sfchain.x.test. CNAME":   {records: []dnsmessage.Resource{rr("sfchain.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("fail.x.test.")})}},
		"fail.x.test. CNAME":      {rcode: dnsmessage.RCodeServerFailure},
		"slowchain.x.test. CNAME": {records: []dnsmessage.Resource{rr("slowchain.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("silent.x.test.")})}},
		"silent.x.test. CNAME":    {silent: true},
		// Answers to A queries that hold links alone: a loop over two
		// answers, and an end that never answers.
		"loop1.x.test. A":   {records: []dnsmessage.Resource{rr("loop1.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("loop2.x.test.")})}},
		"loop2.x.test. A":   {records: []dnsmessage.Resource{rr("loop2.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("loop1.x.test.")})}},
		"slowend.x.test. A": {records: []dnsmessage.Resource{rr("slowend.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("silent.x.test.")})}},
		// bind9's answer: the chain and the end's records at once, so the
		// end, which would not answer, is not asked.
		"bind.x.test. A": {records: []dnsmessage.Resource{
			rr("bind.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("quiet.x.test.")}),
			rr("quiet.x.test.", &dnsmessage.AResource{A: [4]byte{10, 0, 0, 7}}),
		}},
		"quiet.x.test. A": {silent: true},
	}
	// A chain of 17 links, one per answer: hop0 → hop1 → … → hop17, which
	// has the A record.
	for i := range 17 {
		owner := fmt.Sprintf("hop%d.x.test.", i)
		zone[owner+" A"] = fakeAnswer{records: []dnsmessage.Resource{rr(owner, &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(fmt.Sprintf("hop%d.x.test.", i+1))})}}
	}
	zone["hop17.x.test. A"] = fakeAnswer{records: []dnsmessage.Resource{rr("hop17.x.test.", &dnsmessage.AResource{A: [4]byte{10, 0, 0, 17}})}}
	server := fakeDNS(t, zone)
	runDNSCases(t, server, []struct {
		args   []string
		reason string
	}{
		{[]string{"fail.x.test", "--dns.d.record-type=A"}, "SERVFAIL: the server failed to answer"},
		{[]string{"refused.x.test", "--dns.d.record-type=A"}, "REFUSED: the server refuses to answer"},
		{[]string{"silent.x.test", "--dns.d.record-type=A"}, "no answer within 1s"},
		{[]string{"other.x.test", "--dns.d.record-type=A"}, "no answer within 1s"},
		{[]string{"junk.x.test", "--dns.d.record-type=A"}, "malformed reply: 3 bytes, shorter than the 12-byte header"},
		// Over UDP the answer does not fit; over TCP it does.
		{[]string{"many.x.test", "--dns.d.record-type=SRV", "--dns.d.min-records=100", "--dns.d.expected=pg-99.x.test:5432"}, ""},
		// ANY-IP: the A record suffices; AAAA's NODATA is no failure.
		{[]string{"v4.x.test", "--dns.d.expected=10.0.0.1"}, ""},
		{[]string{"v4.x.test", "--dns.d.record-type=AAAA"}, "no AAAA records"},
		{[]string{"v4.x.test", "--dns.d.expected=10.0.0.2"}, "10.0.0.2 is not the one A or AAAA record"},
		// ANY-IP: each half's reason when they differ, one when they agree.
		{[]string{"refused.x.test"}, "REFUSED: the server refuses to answer"},
		{[]string{"mixed.x.test"}, "A: NXDOMAIN: no such name; AAAA: REFUSED: the server refuses to answer"},
		// Both are asked at once: a silent A query leaves AAAA its time.
		{[]string{"slow4.x.test", "--dns.d.expected=::5"}, ""},
		// Nor does it wait for the silent one once the AAAA records
		// suffice: a 5s attempt would outlast the 2s wait.
		{[]string{"slow4.x.test", "--dns.d.expected=::5", "--dns.d.timeout=5s"}, ""},
		{[]string{"slow4.x.test", "--dns.d.expected=::6"}, "A: no answer within 1s; AAAA: ::6 is not the one AAAA record"},
		// The same address as A and as IPv4-mapped AAAA is one record.
		{[]string{"mapped.x.test", "--dns.d.min-records=2"}, "1 A or AAAA record, want at least 2"},
		{[]string{"whole.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=end.x.test"}, ""},
		{[]string{"dangling.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=gone.x.test"}, ""},
		{[]string{"loop1.x.test", "--dns.d.record-type=CNAME"}, "the CNAME records of loop1.x.test form a loop at loop1.x.test"},
		{[]string{"end.x.test", "--dns.d.record-type=CNAME"}, "no CNAME records"},
		{[]string{"gone.x.test", "--dns.d.record-type=CNAME"}, "NXDOMAIN: no such name"},
		// A failed query after the first ends the chain at the name it
		// asked about; the first query's failure is the reason.
		{[]string{"sfchain.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=fail.x.test"}, ""},
		{[]string{"slowchain.x.test", "--dns.d.record-type=CNAME", "--dns.d.expected=silent.x.test"}, ""},
		{[]string{"fail.x.test", "--dns.d.record-type=CNAME"}, "SERVFAIL: the server failed to answer"},
		{[]string{"silent.x.test", "--dns.d.record-type=CNAME"}, "no answer within 1s"},
		// Answers that hold links alone: the end is asked in turn, at most
		// 16 links away, the chain's loop and the end's silence named.
		{[]string{"loop1.x.test", "--dns.d.record-type=A"}, "the CNAME records of loop1.x.test form a loop at loop1.x.test"},
		{[]string{"slowend.x.test", "--dns.d.record-type=A"}, "slowend.x.test is an alias of silent.x.test: no answer within 1s"},
		{[]string{"bind.x.test", "--dns.d.record-type=A", "--dns.d.expected=10.0.0.7"}, ""},
		{[]string{"hop1.x.test", "--dns.d.record-type=A", "--dns.d.expected=10.0.0.17"}, ""},
		{[]string{"hop0.x.test", "--dns.d.record-type=A"}, "more than 16 CNAME records in a row from hop0.x.test"},
	})
	// A server that is not there: the kernel's refusal, not a hang.
	o := runPortpatrol(t, nil, "--dns.d.address=x.test", "--dns.d.server="+closedPort(t), "--timeout=300ms")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="connection refused"`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// A truncated answer whose retry over TCP is refused says both: a bare
// "connection refused" would read as a server that is down.
func TestDNSTruncatedAndTCPRefused(t *testing.T) {
	t.Parallel()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	if tcp, err := net.Listen("tcp", udp.LocalAddr().String()); err == nil {
		tcp.Close() // the port is closed for TCP either way
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			reply, _ := (&dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, Truncated: true},
				Questions: []dnsmessage.Question{q}}).Pack()
			udp.WriteTo(reply, from)
		}
	}()
	runDNSCases(t, udp.LocalAddr().String(), []struct {
		args   []string
		reason string
	}{
		{[]string{"many.x.test", "--dns.d.record-type=SRV"}, "the answer over UDP was truncated and the retry over TCP failed: connection refused"},
	})
}

// Without server, the system's resolver answers: resolv.conf's search list
// turns a short name into a full one, as Kubernetes' does. ip netns exec
// puts /etc/netns/NAME/resolv.conf in place of /etc/resolv.conf, and a real
// dnsmasq answers on port 53 inside the namespace.
func TestDNSSystemResolver(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	dnsmasq := requireProgram(t, "dnsmasq", "/usr/sbin/dnsmasq")
	etc := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 127.0.0.1\nsearch svc.x.test x.test\noptions ndots:5 timeout:1 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// dnsmasq runs as nobody, which may bind port 53 in this namespace alone.
	requireSetpriv(t)
	setSysctl(t, ns, "net/ipv4/ip_unprivileged_port_start", "0")
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--pid-file=", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts"},
		dnsmasqZone...)...)
	cmd.Dir = nobodyDir(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // startServer stops the group
	startServer(t, cmd)
	run := func(args ...string) outcome {
		return runCommand(t, exec.Command("ip", append([]string{"netns", "exec", ns, ppBinary, "--default-interval=50ms"}, args...)...))
	}
	o := run("--dns.short.address=web", "--dns.short.expected=127.0.0.2", "--dns.short.expected=::2",
		"--dns.srv.address=_pg._tcp", "--dns.srv.record-type=SRV", "--dns.srv.min-records=3",
		"--dns.txt.address=txt.x.test.", "--dns.txt.record-type=TXT", "--dns.txt.expected=v=ready",
		"--dns.cname.address=alias.x.test.", "--dns.cname.record-type=CNAME", "--dns.cname.expected=web.x.test",
		// The canonical name of a chain of two is its end; a short name
		// finds it through the search list.
		"--dns.chain.address=chain.x.test.", "--dns.chain.record-type=CNAME", "--dns.chain.expected=web.x.test",
		"--dns.short-chain.address=chain", "--dns.short-chain.record-type=CNAME", "--dns.short-chain.expected=web.x.test",
		// dnsmasq refuses the CNAME query for the end, a.v4.test.
		"--dns.refused-end.address=refchain", "--dns.refused-end.record-type=CNAME", "--dns.refused-end.expected=a.v4.test",
		// Go's resolver asks A and AAAA and keeps the addresses of either:
		// the REFUSED AAAA query does not hide the A record.
		"--dns.v4.address=a.v4.test.", "--dns.v4.expected=127.0.0.3",
		// Go's resolver takes dnsmasq's answer of links alone, without
		// the end's records, as no records: the end is asked in turn.
		"--dns.alias-end.address=chain.test.", "--dns.alias-end.record-type=A", "--dns.alias-end.expected=127.0.0.5",
		"--dns.short-alias-end.address=refchain", "--dns.short-alias-end.expected=127.0.0.3",
		"--timeout=20s")
	o.mustExit(t, 0)
	// Every time, now that dnsmasq answers: ten lookups in a row agree, and
	// one that did not would end the run.
	o = run("--dns.chain.address=chain.x.test.", "--dns.chain.record-type=CNAME", "--dns.chain.expected=web.x.test",
		"--dns.chain.success-threshold=10", "--dns.chain.max-attempts=1", "--dns.chain.interval=10ms", "--timeout=20s")
	o.mustExit(t, 0)
	for _, tc := range []struct {
		args   []string
		reason string
	}{
		{[]string{"missing.x.test."}, "no such name, or no A or AAAA records (NXDOMAIN or NODATA)"},
		{[]string{"web.x.test.", "--dns.d.record-type=TXT"}, "no such name, or no TXT records (NXDOMAIN or NODATA)"},
		// The search list ends with the name as it is, which dnsmasq
		// without upstream servers refuses.
		{[]string{"missing"}, "the DNS server refused to answer or sent a malformed reply"},
		{[]string{"web.x.test.", "--dns.d.record-type=CNAME"}, "no CNAME records"},
		{[]string{"web", "--dns.d.record-type=CNAME"}, "no CNAME records"},
		{[]string{"chain.x.test.", "--dns.d.record-type=CNAME", "--dns.d.expected=alias.x.test"}, "alias.x.test is not the one CNAME record"},
		{[]string{"missing.x.test.", "--dns.d.record-type=CNAME"}, "NXDOMAIN: no such name"},
		{[]string{"missing", "--dns.d.record-type=CNAME"}, "REFUSED: the server refuses to answer"},
		{[]string{"web", "--dns.d.record-type=A", "--dns.d.min-records=2"}, "1 A record, want at least 2"},
		{[]string{"a.v4.test.", "--dns.d.expected=::3"}, "::3 is not the one A or AAAA record"},
		{[]string{"chain.test.", "--dns.d.record-type=AAAA"}, "chain.test is an alias of db.test: the DNS server refused to answer or sent a malformed reply"},
		{[]string{"dangle.x.test.", "--dns.d.record-type=A"}, "dangle.x.test is an alias of nothere.x.test: no such name, or no A records (NXDOMAIN or NODATA)"},
	} {
		o := run(append([]string{"--dns.d.address=" + tc.args[0], "--timeout=1s"}, tc.args[1:]...)...)
		if o.code != 1 || !strings.Contains(o.stderr, `error="`+tc.reason+`"`) {
			t.Errorf("%q: exit %d, want 1 with reason %q:\n%s", tc.args, o.code, tc.reason, o.stderr)
		}
	}
}

func TestDNSStartupErrors(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, []string{"PP_DNS_URL=https://secret.x.test/"},
		"--dns.a.address=1.2.3.4",
		"--dns.b.address=a..b",
		"--dns.c.address="+strings.Repeat("a", 64)+".test",
		"--dns.d.address=x.test", "--dns.d.record-type=MX",
		"--dns.e.address=x.test", "--dns.e.record-type=A", "--dns.e.expected=::1",
		"--dns.f.address=x.test", "--dns.f.record-type=CNAME", "--dns.f.min-records=2",
		"--dns.g.address=x.test", "--dns.g.min-records=0",
		"--dns.h.address=x.test", "--dns.h.server=127.0.0.1:99999",
		"--dns.i.address=x.test", "--dns.i.expected=not-an-ip",
		"--dns.j.address=x.test", "--dns.j.record-type=srv", "--dns.j.expected=a.test:0",
		"--dns.k.address=http://a.x.test",
		"--dns.l.address=a.x.test:53",
		"--dns.m.address=a.x.test/path",
		"--dns.n.address=a!.x.test",
		"--dns.o.address=env:PP_DNS_URL",
		"--dns.ok.address=_pg._tcp.x.test.", "--dns.ok.record-type=SRV")
	o.mustExit(t, 2)
	if strings.Contains(o.stderr, "secret") {
		t.Errorf("a resolved address is quoted:\n%s", o.stderr)
	}
	if strings.Contains(o.stderr, "--dns.ok.") {
		t.Errorf("an SRV name with underscores and a final dot is a valid name:\n%s", o.stderr)
	}
	for _, want := range []string{
		"--dns.a.address=1.2.3.4: an IP address, not a name",
		"--dns.b.address=a..b: every label of a DNS name",
		"--dns.c.address=" + strings.Repeat("a", 64) + ".test: every label",
		"--dns.d.record-type=MX: want A, AAAA, ANY-IP, CNAME, SRV or TXT",
		"--dns.e.expected=::1: not an IPv4 address",
		"--dns.f.min-records=2 cannot hold with --dns.f.record-type=CNAME",
		"--dns.g.min-records=0: want a number from 1 to 1000",
		"--dns.h.server=127.0.0.1:99999: the port must be a number from 1 to 65535",
		"--dns.i.expected=not-an-ip: not an IP address",
		"--dns.j.expected=a.test:0: the port must be",
		"--dns.k.address=http://a.x.test: want a DNS name such as db.example.com, without a scheme like http://",
		"--dns.l.address=a.x.test:53: a DNS name has no port; the server to ask is --dns.l.server=host:port",
		"--dns.m.address=a.x.test/path: a DNS name has no path",
		"--dns.n.address=a!.x.test: a DNS name holds only letters, digits, hyphens, underscores and dots",
		"--dns.o.address=env:PP_DNS_URL (resolved): want a DNS name such as db.example.com, without a scheme like http://",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
}

// The parser takes what a stray or hostile server sends: a bounded answer
// or an error, never a panic.
func TestParseDNSReply(t *testing.T) {
	name := "web.x.test."
	q := dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	pack := func(m dnsmessage.Message) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := func(owner string, ip byte) dnsmessage.Resource {
		return rr(owner, &dnsmessage.AResource{A: [4]byte{10, 0, 0, ip}})
	}
	cname := func(owner, target string) dnsmessage.Resource {
		return rr(owner, &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)})
	}
	for _, tc := range []struct {
		name string
		msg  dnsmessage.Message
		want string
	}{
		{"plain", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
			Answers: []dnsmessage.Resource{a("web.x.test.", 1), a("WEB.X.TEST.", 2), a("web.x.test.", 1)}}, "10.0.0.1 10.0.0.2"},
		{"records of another owner are not ours", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
			Answers: []dnsmessage.Resource{a("evil.test.", 1)}}, ""},
		{"chain", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
			Answers: []dnsmessage.Resource{a("c.test.", 3), cname("b.test.", "c.test."), cname("web.x.test.", "b.test.")}}, "10.0.0.3 via b.test c.test"},
		// dnsmasq's answer for a --cname whose target is an --address.
		{"links alone", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
			Answers: []dnsmessage.Resource{cname("web.x.test.", "b.test."), cname("b.test.", "c.test.")}}, " via b.test c.test"},
		{"links of another owner are not ours", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
			Answers: []dnsmessage.Resource{cname("evil.test.", "b.test.")}}, ""},
		{"loop", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
			Answers: []dnsmessage.Resource{cname("web.x.test.", "b.test."), cname("b.test.", "web.x.test.")}}, " via b.test"},
		{"wrong id", dnsmessage.Message{Header: dnsmessage.Header{ID: 8, Response: true}, Questions: []dnsmessage.Question{q}}, "a reply to another query"},
		{"a query, not a reply", dnsmessage.Message{Header: dnsmessage.Header{ID: 7}, Questions: []dnsmessage.Question{q}}, "a reply to another query"},
		{"another question", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true},
			Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("x.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}, "a reply to another query"},
		{"no question", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}}, "a reply to another query"},
		{"nxdomain", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true, RCode: dnsmessage.RCodeNameError}, Questions: []dnsmessage.Question{q}}, "NXDOMAIN: no such name"},
		{"other rcode", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true, RCode: dnsmessage.RCodeNotImplemented}, Questions: []dnsmessage.Question{q}}, "the server answered with rcode 4"},
	} {
		values, aliases, _, err := parseDNSReply(pack(tc.msg), 7, name, dnsTypeA)
		got := strings.Join(values, " ")
		if len(aliases) > 0 {
			got += " via " + strings.Join(aliases, " ")
		}
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	whole := pack(dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q}, Answers: []dnsmessage.Resource{a("web.x.test.", 1)}})
	for cut := range len(whole) {
		if _, _, _, err := parseDNSReply(whole[:cut], 7, name, dnsTypeA); err == nil {
			t.Errorf("a reply cut to %d of %d bytes was accepted", cut, len(whole))
		}
	}
}

// wireReply is a reply by hand to query 7 for web.x.test. of qtype:
// the header, the question at byte 12 (its "x.test." at byte 16), and the
// answer records from byte 28 on, with the ANCOUNT given.
func wireReply(qtype uint16, ancount byte, answers ...string) []byte {
	msg := []byte{0, 7, 0x81, 0x80, 0, 1, 0, ancount, 0, 0, 0, 0,
		3, 'w', 'e', 'b', 1, 'x', 4, 't', 'e', 's', 't', 0, 0, byte(qtype), 0, dnsClassIN}
	return append(msg, strings.Join(answers, "")...)
}

// wireRecord is a resource record of class IN with a TTL of 60 and an
// RDLENGTH that fits rdata.
func wireRecord(owner string, rtype uint16, rdata string) string {
	return owner + string([]byte{0, byte(rtype), 0, dnsClassIN, 0, 0, 0, 60, 0, byte(len(rdata))}) + rdata
}

// The parser against replies written byte by byte: compression pointers,
// cut and oversized fields, each read where the specification puts it.
func TestParseDNSReplyWire(t *testing.T) {
	ip1, ip2 := "\x0a\x00\x00\x01", "\x0a\x00\x00\x02"
	label63 := "\x3f" + strings.Repeat("a", 63)
	// chain is an A record whose owner is a pointer to the last of n more
	// pointers after it, each to the one before, the first to the question.
	chain := func(n int) []byte {
		at := func(off int) string { return string(binary.BigEndian.AppendUint16(nil, uint16(0xc000|off))) }
		pointers := at(12)
		for i := 1; i < n; i++ {
			pointers += at(44 + 2*(i-1))
		}
		return wireReply(dnsTypeA, 1, wireRecord(at(44+2*(n-1)), dnsTypeA, ip1), pointers)
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		reply []byte
		want  string
	}{
		{"pointer to the question's name", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\xc0\x0c", dnsTypeA, ip1)), "10.0.0.1"},
		{"a label, then a pointer to the question's x.test.", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\x03WEB\xc0\x10", dnsTypeA, ip1)), "10.0.0.1"},
		{"pointer to a pointer", dnsTypeA, wireReply(dnsTypeA, 2, wireRecord("\xc0\x0c", dnsTypeA, ip1), wireRecord("\xc0\x1c", dnsTypeA, ip2)), "10.0.0.1 10.0.0.2"},
		// The first record ends at byte 44, where the name it points to
		// lies after the answers; the std library's resolver follows such
		// pointers too.
		{"pointer forward", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\xc0\x2c", dnsTypeA, ip1), "\x03web\x01x\x04test\x00"), "10.0.0.1"},
		{"127 pointers", dnsTypeA, chain(126), "10.0.0.1"},
		{"128 pointers", dnsTypeA, chain(127), "malformed reply: compression pointers in a loop"},
		{"pointer to itself", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\xc0\x1c", dnsTypeA, ip1)), "malformed reply: compression pointers in a loop"},
		{"two pointers to each other", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\xc0\x2c", dnsTypeA, ip1), "\xc0\x1c"), "malformed reply: compression pointers in a loop"},
		{"a label and a pointer back to it", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\x01a\xc0\x1c", dnsTypeA, ip1)), "malformed reply: a name longer than 255 bytes"},
		{"pointer past the end", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\xc0\xff", dnsTypeA, ip1)), "malformed reply: a compression pointer to byte 255 of 44"},
		{"pointer with its second byte cut", dnsTypeA, wireReply(dnsTypeA, 1, "\xc0"), "malformed reply: cut short: a compression pointer at byte 28"},
		{"label cut", dnsTypeA, wireReply(dnsTypeA, 1, "\x05we"), "malformed reply: cut short: a label of 5 bytes at byte 28"},
		{"name without its end", dnsTypeA, wireReply(dnsTypeA, 1, "\x03web"), "malformed reply: cut short: a name runs past the end at byte 32"},
		{"label of 64 bytes", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\x40"+strings.Repeat("a", 64)+"\x00", dnsTypeA, ip1)), "malformed reply: a label length of 64, over 63"},
		{"label length 0x80", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\x80\x00", dnsTypeA, ip1)), "malformed reply: a label length of 128, over 63"},
		{"name of 255 bytes, another owner", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord(label63+label63+label63+"\x3d"+strings.Repeat("a", 61)+"\x00", dnsTypeA, ip1)), ""},
		{"name of 256 bytes", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord(label63+label63+label63+"\x3e"+strings.Repeat("a", 62)+"\x00", dnsTypeA, ip1)), "malformed reply: a name longer than 255 bytes"},
		{"label holding a dot", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\x05web.x\x04test\x00", dnsTypeA, ip1)), "malformed reply: a label holding a dot"},
		{"RDATA cut", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\xc0\x0c", dnsTypeA, ip1)[:14]), "malformed reply: cut short: 4 bytes wanted at byte 40 of 42"},
		{"A of 3 bytes", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\xc0\x0c", dnsTypeA, "\x0a\x00\x00")), "malformed reply: an address record of 3 bytes"},
		{"AAAA of 4 bytes", dnsTypeAAAA, wireReply(dnsTypeAAAA, 1, wireRecord("\xc0\x0c", dnsTypeAAAA, ip1)), "malformed reply: an address record of 4 bytes"},
		{"AAAA", dnsTypeAAAA, wireReply(dnsTypeAAAA, 1, wireRecord("\xc0\x0c", dnsTypeAAAA, "\x20\x01\x0d\xb8"+strings.Repeat("\x00", 11)+"\x01")), "2001:db8::1"},
		{"AAAA of a mapped IPv4 address", dnsTypeAAAA, wireReply(dnsTypeAAAA, 1, wireRecord("\xc0\x0c", dnsTypeAAAA, strings.Repeat("\x00", 10)+"\xff\xff"+ip1)), "10.0.0.1"},
		{"fewer records than ANCOUNT", dnsTypeA, wireReply(dnsTypeA, 2, wireRecord("\xc0\x0c", dnsTypeA, ip1)), "malformed reply: cut short: a name runs past the end at byte 44"},
		{"another type and class skipped by RDLENGTH", dnsTypeA, wireReply(dnsTypeA, 3,
			wireRecord("\xc0\x0c", 99, "\xc0"),
			"\xc0\x0c\x00\x01\x00\x03\x00\x00\x00\x3c\x00\x04"+ip2, // class CH
			wireRecord("\xc0\x0c", dnsTypeA, ip1)), "10.0.0.1"},
		{"skipped RDATA cut", dnsTypeA, wireReply(dnsTypeA, 1, wireRecord("\xc0\x0c", 99, "abc")[:14]), "malformed reply: cut short: 3 bytes wanted at byte 40 of 42"},
		{"TXT strings of a record are one value", dnsTypeTXT, wireReply(dnsTypeTXT, 2,
			wireRecord("\xc0\x0c", dnsTypeTXT, "\x02v=\x05ready"), wireRecord("\xc0\x0c", dnsTypeTXT, "\x00")), "v=ready "},
		{"TXT string past RDLENGTH", dnsTypeTXT, wireReply(dnsTypeTXT, 1, "\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x03\x05abcde"),
			"malformed reply: a type 16 record's data does not match its RDLENGTH of 3 bytes"},
		{"TXT string cut", dnsTypeTXT, wireReply(dnsTypeTXT, 1, wireRecord("\xc0\x0c", dnsTypeTXT, "\x05abc")), "malformed reply: cut short: 5 bytes wanted at byte 41 of 44"},
		{"SRV with a compressed target", dnsTypeSRV, wireReply(dnsTypeSRV, 1, wireRecord("\xc0\x0c", dnsTypeSRV, "\x00\x01\x00\x0a\x15\x38\x04pg-0\xc0\x10")), "pg-0.x.test:5432"},
		{"SRV of the root: no service", dnsTypeSRV, wireReply(dnsTypeSRV, 1, wireRecord("\xc0\x0c", dnsTypeSRV, "\x00\x00\x00\x00\x00\x00\x00")), ":0"},
		{"SRV with bytes after its target", dnsTypeSRV, wireReply(dnsTypeSRV, 1, wireRecord("\xc0\x0c", dnsTypeSRV, "\x00\x01\x00\x0a\x15\x38\xc0\x10\x00")),
			"malformed reply: a type 33 record's data does not match its RDLENGTH of 9 bytes"},
		{"SRV cut", dnsTypeSRV, wireReply(dnsTypeSRV, 1, wireRecord("\xc0\x0c", dnsTypeSRV, "\x00\x01\x00")), "malformed reply: cut short: 4 bytes wanted at byte 40 of 43"},
		{"CNAME chain through pointers", dnsTypeA, wireReply(dnsTypeA, 2,
			wireRecord("\xc0\x0c", dnsTypeCNAME, "\x05alias\xc0\x10"), wireRecord("\xc0\x28", dnsTypeA, ip2)), "10.0.0.2"},
		{"CNAME query answered with a chain", dnsTypeCNAME, wireReply(dnsTypeCNAME, 2,
			wireRecord("\xc0\x0c", dnsTypeCNAME, "\x05alias\xc0\x10"), wireRecord("\xc0\x28", dnsTypeCNAME, "\x03end\xc0\x10")), "alias.x.test end.x.test"},
		{"CNAME query answered with a loop", dnsTypeCNAME, wireReply(dnsTypeCNAME, 2,
			wireRecord("\xc0\x0c", dnsTypeCNAME, "\x05alias\xc0\x10"), wireRecord("\xc0\x28", dnsTypeCNAME, "\xc0\x0c")), "alias.x.test"},
		{"CNAME past its RDLENGTH", dnsTypeCNAME, wireReply(dnsTypeCNAME, 1, "\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x02\x01a\x00"),
			"malformed reply: a type 5 record's data does not match its RDLENGTH of 2 bytes"},
		{"truncated", dnsTypeA, append([]byte{0, 7, 0x83, 0x80}, wireReply(dnsTypeA, 0)[4:]...), "truncated"},
		{"question cut", dnsTypeA, wireReply(dnsTypeA, 0)[:20], "a reply to another query"},
		{"question in upper case", dnsTypeA, append(wireReply(dnsTypeA, 0)[:13], append([]byte("WEB"), wireReply(dnsTypeA, 0)[16:]...)...), ""},
		{"question of another class", dnsTypeA, append(wireReply(dnsTypeA, 0)[:27], 3), "a reply to another query"},
	} {
		values, _, truncated, err := parseDNSReply(tc.reply, 7, "web.x.test", tc.qtype)
		got := strings.Join(values, " ")
		switch {
		case err != nil:
			got = err.Error()
		case truncated:
			got = "truncated"
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The query as an independent decoder reads it.
func TestDNSQuery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		qtype uint16
	}{
		{"Web.x.test", dnsTypeA},
		{"_pg._tcp.x.test.", dnsTypeSRV},
		{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61), dnsTypeTXT},
	} {
		var m dnsmessage.Message
		if err := m.Unpack(dnsQuery(0xbeef, tc.name, tc.qtype)); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want := dnsmessage.Message{Header: dnsmessage.Header{ID: 0xbeef, RecursionDesired: true},
			Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(strings.TrimSuffix(tc.name, ".") + "."), Type: dnsmessage.Type(tc.qtype), Class: dnsmessage.ClassINET}}}
		if got, want := fmt.Sprintf("%+v", m), fmt.Sprintf("%+v", want); got != want {
			t.Errorf("%s: got %s, want %s", tc.name, got, want)
		}
	}
}

func TestCheckDNSName(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	long := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61) // 253 characters, 255 bytes on the wire
	for _, tc := range []struct {
		name, want string
	}{
		{"web.x.test", ""},
		{"web.x.test.", ""},
		{label63 + ".test", ""},
		{long, ""},
		{long + ".", ""},
		{strings.Repeat("a", 64) + ".test", "every label of a DNS name (the parts between dots) must have 1 to 63 characters"},
		{long + "b", "want a DNS name of 1 to 253 characters, e.g. postgres.default.svc.cluster.local"},
		{"a..b", "every label of a DNS name (the parts between dots) must have 1 to 63 characters"},
		{".x.test", "every label of a DNS name (the parts between dots) must have 1 to 63 characters"},
		{".", "want a DNS name of 1 to 253 characters, e.g. postgres.default.svc.cluster.local"},
		{"we b.test", "a DNS name holds no spaces, control or non-ASCII characters"},
		{"10.0.0.1", "an IP address, not a name: there is nothing to resolve"},
		{"_pg._tcp.x.test", ""},
		{"_pg._tcp.x.test.", ""},
		{"Web-1.X.test", ""},
		{"http://web.x.test", "want a DNS name such as db.example.com, without a scheme like http://"},
		{"dns://10.0.0.1/web.x.test", "want a DNS name such as db.example.com, without a scheme like http://"},
		{"web.x.test:53", "a DNS name has no port; the server to ask is --dns.d.server=host:port"},
		{"10.0.0.1:53", "a DNS name has no port; the server to ask is --dns.d.server=host:port"},
		{"[::1]:53", "a DNS name has no port; the server to ask is --dns.d.server=host:port"},
		{"web.x.test/health", "a DNS name has no path"},
		{"user@web.x.test", "a DNS name has no user or password"},
		{"web.x.test:abc", "a DNS name holds only letters, digits, hyphens, underscores and dots"},
		{"web*.x.test", "a DNS name holds only letters, digits, hyphens, underscores and dots"},
		{"web.x.test\t", "a DNS name holds no spaces, control or non-ASCII characters"},
		{"wéb.x.test", "a DNS name holds no spaces, control or non-ASCII characters"},
	} {
		got := ""
		if err := checkDNSName(tc.name, "--dns.d.server"); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzParseDNSReply(f *testing.F) {
	name := "web.x.test."
	types := []uint16{dnsTypeA, dnsTypeAAAA, dnsTypeCNAME, dnsTypeSRV, dnsTypeTXT}
	q := dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET}
	seed, _ := (&dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
		Answers: append(srvRecords("web.x.test.", 3), rr("web.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("_pg._tcp.x.test.")}))}).Pack()
	f.Add(seed, uint8(3))
	f.Add(seed[:40], uint8(3))
	f.Add([]byte{0, 7, 0x80, 0, 0, 1, 0, 0xff, 0, 0, 0, 0}, uint8(0))
	f.Add(wireReply(dnsTypeA, 3, wireRecord("\xc0\x0c", dnsTypeCNAME, "\x05alias\xc0\x10"), wireRecord("\xc0\x28", dnsTypeA, "\x0a\x00\x00\x01"),
		wireRecord("\xc0\x28", 99, "\x03abc")), uint8(0))
	f.Add(wireReply(dnsTypeAAAA, 1, wireRecord("\x03web\xc0\x10", dnsTypeAAAA, strings.Repeat("\x01", 16))), uint8(1))
	f.Add(wireReply(dnsTypeCNAME, 1, wireRecord("\xc0\x2c", dnsTypeCNAME, "\xc0\x0c"), "\x03web\x01x\x04test\x00"), uint8(2))
	f.Add(wireReply(dnsTypeTXT, 1, wireRecord("\xc0\x0c", dnsTypeTXT, "\x02v=\x05ready")), uint8(4))
	f.Fuzz(func(t *testing.T, reply []byte, which uint8) {
		values, aliases, _, err := parseDNSReply(reply, 7, name, types[int(which)%len(types)])
		if err != nil && len(values)+len(aliases) > 0 {
			t.Errorf("values %q, aliases %q with error %v", values, aliases, err)
		}
		// The chain the end of which records asks in turn: bounded, and
		// without a name twice, nor the name asked.
		if len(aliases) > maxCNAMEs {
			t.Errorf("%d aliases, more than %d", len(aliases), maxCNAMEs)
		}
		for i, a := range aliases {
			if a == dnsName(name) || slices.Contains(aliases[:i], a) {
				t.Errorf("aliases %q repeat %s", aliases, a)
			}
		}
		if len(values) > len(reply)/11 { // every record takes at least 11 bytes
			t.Errorf("%d values from %d bytes", len(values), len(reply))
		}
	})
}

// resolv.conf as a stub resolver reads it, and the names its search list
// and ndots make of a name.
func TestResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("# a comment\nnameserver 10.96.0.10\nnameserver fe80::1%lo\nnameserver not-an-ip\n"+
		"domain old.test\nsearch default.svc.cluster.local svc.cluster.local.\noptions rotate ndots:2 timeout:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := readResolvConf(path)
	if got, want := fmt.Sprint(conf), "{[10.96.0.10:53 [fe80::1%lo]:53] [default.svc.cluster.local svc.cluster.local.] 2}"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, tc := range []struct{ name, want string }{
		{"db", "db.default.svc.cluster.local db.svc.cluster.local db"},
		{"db.ns", "db.ns.default.svc.cluster.local db.ns.svc.cluster.local db.ns"},
		{"db.ns.svc", "db.ns.svc db.ns.svc.default.svc.cluster.local db.ns.svc.svc.cluster.local"},
		{"db.", "db."},
		// Longer than 253 with either search domain: as written alone.
		{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 50),
			strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 50)},
	} {
		if got := strings.Join(conf.names(tc.name), " "); got != tc.want {
			t.Errorf("names(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got, want := fmt.Sprint(readResolvConf(filepath.Join(t.TempDir(), "none"))), "{[127.0.0.1:53 [::1]:53] [] 1}"; got != want {
		t.Errorf("without the file: got %s, want %s", got, want)
	}
}
