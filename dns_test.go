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
	"_pg._tcp.x.test. SRV": {records: srvRecords("_pg._tcp.x.test.", 3)},
	"txt.x.test. TXT":      {records: []dnsmessage.Resource{rr("txt.x.test.", &dnsmessage.TXTResource{TXT: []string{"v=ready"}})}},
}

var dnsmasqZone = []string{
	"--local=/x.test/", // answer x.test alone; unknown names are NXDOMAIN
	"--host-record=web.x.test,127.0.0.2,::2",
	"--cname=alias.x.test,web.x.test",
	"--srv-host=_pg._tcp.x.test,pg-0.x.test,5432,0,10",
	"--srv-host=_pg._tcp.x.test,pg-1.x.test,5432,0,10",
	"--srv-host=_pg._tcp.x.test,pg-2.x.test,5432,0,10",
	"--txt-record=txt.x.test,v=ready",
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
	{[]string{"_pg._tcp.x.test", "--dns.d.record-type=SRV", "--dns.d.min-records=3", "--dns.d.expected=pg-1.x.test:5432", "--dns.d.expected=pg-2.x.test"}, ""},
	{[]string{"txt.x.test", "--dns.d.record-type=TXT", "--dns.d.expected=v=ready"}, ""},
	{[]string{"_pg._tcp.x.test", "--dns.d.record-type=SRV", "--dns.d.min-records=4"}, "3 SRV records, want at least 4"},
	{[]string{"_pg._tcp.x.test", "--dns.d.record-type=SRV", "--dns.d.expected=pg-1.x.test:5433"}, "pg-1.x.test:5433 is not among the 3 SRV records"},
	{[]string{"web.x.test", "--dns.d.record-type=A", "--dns.d.expected=127.0.0.9"}, "127.0.0.9 is not among the 1 A records"},
	{[]string{"web.x.test", "--dns.d.record-type=CNAME"}, "no CNAME records"},
	{[]string{"txt.x.test", "--dns.d.record-type=TXT", "--dns.d.expected=V=READY"}, "V=READY is not among the 1 TXT records"},
	{[]string{"missing.x.test"}, "NXDOMAIN: no such name"},
	{[]string{"missing.x.test", "--dns.d.record-type=SRV"}, "NXDOMAIN: no such name"},
}

func runDNSCases(t *testing.T, server string, cases []struct {
	args   []string
	reason string
}) {
	t.Helper()
	for _, tc := range cases {
		args := append([]string{"--dns.d.address=" + tc.args[0], "--dns.d.server=" + server, "--default-interval=50ms", "--timeout=2s"}, tc.args[1:]...)
		if tc.reason != "" {
			args = append(args, "--dns.d.timeout=300ms")
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
	server := fakeDNS(t, map[string]fakeAnswer{
		"fail.x.test. A":    {rcode: dnsmessage.RCodeServerFailure},
		"refused.x.test. A": {rcode: dnsmessage.RCodeRefused},
		"silent.x.test. A":  {silent: true},
		"junk.x.test. A":    {garbage: []byte{1, 2, 3}},
		"other.x.test. A":   {garbage: valid}, // a reply to a query never asked: waited past
		"many.x.test. SRV":  {truncate: true, records: srvRecords("many.x.test.", 100)},
		"v4.x.test. A":      {records: []dnsmessage.Resource{rr("v4.x.test.", &dnsmessage.AResource{A: [4]byte{10, 0, 0, 1}})}},
	})
	runDNSCases(t, server, []struct {
		args   []string
		reason string
	}{
		{[]string{"fail.x.test", "--dns.d.record-type=A"}, "SERVFAIL: the server failed to answer"},
		{[]string{"refused.x.test", "--dns.d.record-type=A"}, "REFUSED: the server refuses to answer"},
		{[]string{"silent.x.test", "--dns.d.record-type=A"}, "no answer within 300ms"},
		{[]string{"other.x.test", "--dns.d.record-type=A"}, "no answer within 300ms"},
		{[]string{"junk.x.test", "--dns.d.record-type=A"}, "malformed reply: unpacking header: bits: insufficient data for base length type"},
		// Over UDP the answer does not fit; over TCP it does.
		{[]string{"many.x.test", "--dns.d.record-type=SRV", "--dns.d.min-records=100", "--dns.d.expected=pg-99.x.test:5432"}, ""},
		// ANY-IP: the A record suffices; AAAA's NODATA is no failure.
		{[]string{"v4.x.test", "--dns.d.expected=10.0.0.1"}, ""},
		{[]string{"v4.x.test", "--dns.d.record-type=AAAA"}, "no AAAA records"},
	})
	// A server that is not there: the kernel's refusal, not a hang.
	o := runPortpatrol(t, nil, "--dns.d.address=x.test", "--dns.d.server="+closedPort(t), "--timeout=300ms")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="connection refused"`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
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
		"--timeout=20s")
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
		{[]string{"web", "--dns.d.record-type=A", "--dns.d.min-records=2"}, "1 A records, want at least 2"},
	} {
		o := run(append([]string{"--dns.d.address=" + tc.args[0], "--timeout=1s"}, tc.args[1:]...)...)
		if o.code != 1 || !strings.Contains(o.stderr, `error="`+tc.reason+`"`) {
			t.Errorf("%q: exit %d, want 1 with reason %q:\n%s", tc.args, o.code, tc.reason, o.stderr)
		}
	}
}

func TestDNSStartupErrors(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil,
		"--dns.a.address=1.2.3.4",
		"--dns.b.address=a..b",
		"--dns.c.address="+strings.Repeat("a", 64)+".test",
		"--dns.d.address=x.test", "--dns.d.record-type=MX",
		"--dns.e.address=x.test", "--dns.e.record-type=A", "--dns.e.expected=::1",
		"--dns.f.address=x.test", "--dns.f.record-type=CNAME", "--dns.f.min-records=2",
		"--dns.g.address=x.test", "--dns.g.min-records=0",
		"--dns.h.address=x.test", "--dns.h.server=127.0.0.1:99999",
		"--dns.i.address=x.test", "--dns.i.expected=not-an-ip",
		"--dns.j.address=x.test", "--dns.j.record-type=srv", "--dns.j.expected=a.test:0")
	o.mustExit(t, 2)
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
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
}

// The parser takes what a stray or hostile server sends: a bounded answer
// or an error, never a panic.
func TestParseDNSReply(t *testing.T) {
	name := dnsmessage.MustNewName("web.x.test.")
	q := dnsmessage.Question{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
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
			Answers: []dnsmessage.Resource{a("c.test.", 3), cname("b.test.", "c.test."), cname("web.x.test.", "b.test.")}}, "10.0.0.3"},
		{"loop", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
			Answers: []dnsmessage.Resource{cname("web.x.test.", "b.test."), cname("b.test.", "web.x.test.")}}, ""},
		{"wrong id", dnsmessage.Message{Header: dnsmessage.Header{ID: 8, Response: true}, Questions: []dnsmessage.Question{q}}, "a reply to another query"},
		{"a query, not a reply", dnsmessage.Message{Header: dnsmessage.Header{ID: 7}, Questions: []dnsmessage.Question{q}}, "a reply to another query"},
		{"another question", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true},
			Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("x.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}, "a reply to another query"},
		{"no question", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}}, "a reply to another query"},
		{"nxdomain", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true, RCode: dnsmessage.RCodeNameError}, Questions: []dnsmessage.Question{q}}, "NXDOMAIN: no such name"},
		{"other rcode", dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true, RCode: dnsmessage.RCodeNotImplemented}, Questions: []dnsmessage.Question{q}}, "the server answered with rcode 4"},
	} {
		values, _, err := parseDNSReply(pack(tc.msg), 7, name, dnsmessage.TypeA)
		got := strings.Join(values, " ")
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	whole := pack(dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q}, Answers: []dnsmessage.Resource{a("web.x.test.", 1)}})
	for cut := range len(whole) {
		if _, _, err := parseDNSReply(whole[:cut], 7, name, dnsmessage.TypeA); err == nil {
			t.Errorf("a reply cut to %d of %d bytes was accepted", cut, len(whole))
		}
	}
}

func FuzzParseDNSReply(f *testing.F) {
	name := dnsmessage.MustNewName("web.x.test.")
	q := dnsmessage.Question{Name: name, Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET}
	seed, _ := (&dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q},
		Answers: append(srvRecords("web.x.test.", 3), rr("web.x.test.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("_pg._tcp.x.test.")}))}).Pack()
	f.Add(seed)
	f.Add(seed[:40])
	f.Add([]byte{0, 7, 0x80, 0, 0, 1, 0, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, reply []byte) {
		values, _, err := parseDNSReply(reply, 7, name, dnsmessage.TypeSRV)
		if err != nil && len(values) > 0 {
			t.Errorf("values %q with error %v", values, err)
		}
		if len(values) > len(reply)/11 { // every record takes at least 11 bytes
			t.Errorf("%d values from %d bytes", len(values), len(reply))
		}
	})
}
