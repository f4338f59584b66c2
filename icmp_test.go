package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

func TestParseICMPAddress(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"127.0.0.1", "127.0.0.1", ""},
		{"icmp://vm.example.com", "vm.example.com", ""},
		{"::1", "::1", ""},
		{"[::1]", "::1", ""},
		{"icmp://[fe80::1]", "fe80::1", ""},
		{"host_name-1", "host_name-1", ""},
		{"fe80::1%lo", "fe80::1%lo", ""},
		{"[fe80::1%lo]", "fe80::1%lo", ""},
		{"icmp://[fe80::1%lo]", "fe80::1%lo", ""},
		{"127.0.0.1%lo", "", "a zone, as in fe80::1%eth0, follows an IPv6 address only"},
		{"fe80::1%", "", "a zone, as in fe80::1%eth0, follows an IPv6 address only"},
		{"host%lo", "", "a zone, as in fe80::1%eth0, follows an IPv6 address only"},
		{"fe80::1%nonexist0", "", "the zone after % names no network interface"},
		{"host:80", "", "no ports or paths"},
		{"icmp://host/path", "", "no ports or paths"},
		{"http://host", "", "want a host name or IP address"},
		{"bad host", "", "the host has a space in it"},
		{"icmp://", "", "missing host"},
	} {
		got, err := parseICMPAddress(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseICMPAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseICMPAddress(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.err)
		}
	}
}

// reply builds the bytes of an echo reply as a socket would return them.
func reply(t *testing.T, v6 bool, id, seq int, data []byte) []byte {
	t.Helper()
	var typ icmp.Type = ipv4.ICMPTypeEchoReply
	if v6 {
		typ = ipv6.ICMPTypeEchoReply
	}
	b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEchoReplyMatching(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		peer := net.ParseIP("192.0.2.7")
		if v6 {
			peer = net.ParseIP("2001:db8::7")
		}
		token := []byte("0123abcd")
		want := echoRequest{peer: peer, id: 4242, seq: 17, token: token}
		ownRequest := want.marshal(v6)
		for _, tc := range []struct {
			name  string
			b     []byte
			from  net.IP
			match bool
		}{
			{"the reply", reply(t, v6, 4242, 17, token), peer, true},
			{"our own request, as a raw socket on loopback sees it", ownRequest, peer, false},
			{"wrong sequence", reply(t, v6, 4242, 18, token), peer, false},
			{"wrong token", reply(t, v6, 4242, 17, []byte("0123abce")), peer, false},
			{"truncated token", reply(t, v6, 4242, 17, token[:4]), peer, false},
			{"wrong identifier", reply(t, v6, 4243, 17, token), peer, false},
			{"wrong peer", reply(t, v6, 4242, 17, token), net.ParseIP("192.0.2.8"), false},
			{"other family", reply(t, !v6, 4242, 17, token), peer, false},
			{"garbage", []byte{0, 1}, peer, false},
			{"empty", nil, peer, false},
		} {
			if got := want.matches(tc.b, v6, tc.from); got != tc.match {
				t.Errorf("v6=%v %s: matches = %v, want %v", v6, tc.name, got, tc.match)
			}
		}
		// On datagram sockets the kernel rewrites the identifier.
		anyID := want
		anyID.id = -1
		if !anyID.matches(reply(t, v6, 999, 17, token), v6, peer) {
			t.Errorf("v6=%v: a datagram reply with the kernel's identifier must match", v6)
		}
	}
}

// The hand-written echo request is byte for byte what x/net's encoder makes,
// checksum included, for odd and even lengths.
func TestEchoRequestBytes(t *testing.T) {
	for _, token := range []string{"", "a", "tok", "0123abcd", "\xff\xff\xff"} {
		for _, v6 := range []bool{false, true} {
			e := echoRequest{id: 0xfedc, seq: 0x1234, token: []byte(token)}
			var typ icmp.Type = ipv4.ICMPTypeEcho
			if v6 {
				typ = ipv6.ICMPTypeEchoRequest
			}
			want, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: e.id, Seq: e.seq, Data: e.token}}).Marshal(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.marshal(v6); !bytes.Equal(got, want) {
				t.Errorf("token %q v6=%v: marshal = %x, want %x", token, v6, got, want)
			}
		}
	}
}

func TestEchoRequestMessage(t *testing.T) {
	b := echoRequest{id: 7, seq: 9, token: []byte("tok")}.marshal(false)
	m, err := icmp.ParseMessage(protocolICMP, b)
	if err != nil {
		t.Fatal(err)
	}
	echo, ok := m.Body.(*icmp.Echo)
	if m.Type != ipv4.ICMPTypeEcho || !ok || echo.ID != 7 || echo.Seq != 9 || string(echo.Data) != "tok" {
		t.Errorf("request = %+v %+v", m, m.Body)
	}
	if b[2] == 0 && b[3] == 0 {
		t.Error("an ICMPv4 request needs its checksum")
	}
}

func TestICMPRawLoopback(t *testing.T) {
	requirePrivilege(t, os.Geteuid() == 0, "raw ICMP sockets need root")
	raw, err := chooseICMPSocket()
	if err != nil || !raw {
		t.Fatalf("as root chooseICMPSocket = %v, %v; want raw", raw, err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "::1%lo", "localhost"} {
		c := icmpCheck{host: host, readTimeout: time.Second, writeTimeout: time.Second, raw: true, id: 4242}
		if err := c.check(context.Background()); err != nil {
			t.Errorf("ping %s: %v", host, err)
		}
	}
}

// Thousands of attempts leave no descriptor behind.
func TestICMPClosesSockets(t *testing.T) {
	requirePrivilege(t, os.Geteuid() == 0, "raw ICMP sockets need root")
	fds := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	c := icmpCheck{host: "127.0.0.1", readTimeout: time.Second, writeTimeout: time.Second, raw: true, id: 4242}
	before := fds()
	for i := 0; i < 2000; i++ {
		if err := c.check(context.Background()); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if after := fds(); after > before {
		t.Errorf("open descriptors grew from %d to %d over 2000 attempts", before, after)
	}
}

func TestICMPCancelEndsTheRead(t *testing.T) {
	requirePrivilege(t, os.Geteuid() == 0, "raw ICMP sockets need root")
	ns := newNetns(t)
	setSysctl(t, ns, "net/ipv4/icmp_echo_ignore_all", "1")
	// Run the in-process check inside the namespace through the binary: a
	// silent host with a long read timeout, interrupted by the deadline.
	o := runCommand(t, exec.Command("ip", "netns", "exec", ns, ppBinary, "--icmp.lo.address=127.0.0.1",
		"--icmp.lo.read-timeout=60s", "--timeout=500ms"))
	o.mustExit(t, 1)
	if o.elapsed > 10*time.Second {
		t.Errorf("the deadline waited %v for a 60s read", o.elapsed)
	}
}

var netnsCount atomic.Int32

// newNetns makes a network namespace with only loopback, removed at cleanup.
func newNetns(t *testing.T) string {
	t.Helper()
	requirePrivilege(t, os.Geteuid() == 0, "network namespaces need root")
	_, err := exec.LookPath("ip")
	requirePrivilege(t, err == nil, "ip (iproute2) is not installed")
	name := fmt.Sprintf("portpatrol-test-%d-%d", os.Getpid(), netnsCount.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		requirePrivilege(t, false, fmt.Sprintf("ip netns add: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return name
}

func setSysctl(t *testing.T, ns, key, value string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "sh", "-c", fmt.Sprintf("echo '%s' > /proc/sys/%s", value, key))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v: %s", key, value, ns, err, out)
	}
}

// unprivileged runs portpatrol in ns as nobody, with no capabilities at all.
func unprivileged(ns string, args ...string) *exec.Cmd {
	base := []string{"netns", "exec", ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", ppBinary}
	return exec.Command("ip", append(base, args...)...)
}

func requireSetpriv(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("setpriv")
	requirePrivilege(t, err == nil, "setpriv (util-linux) is not installed")
}

func TestICMPUnprivilegedFallback(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	requireSetpriv(t)
	setSysctl(t, ns, "net/ipv4/ping_group_range", "0 2147483647")
	o := runCommand(t, unprivileged(ns, "--log-level=debug", "--icmp.v4.address=127.0.0.1", "--icmp.v6.address=::1", "--timeout=5s"))
	o.mustExit(t, 0)
	if !strings.Contains(o.stderr, "ICMP uses unprivileged datagram sockets") {
		t.Errorf("the fallback should be logged at debug level:\n%s", o.stderr)
	}
	for _, want := range []string{"msg=ready target=v4 type=icmp", "msg=ready target=v6 type=icmp"} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("no %q in\n%s", want, o.stderr)
		}
	}
}

func TestICMPNoPermissionExit2(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	requireSetpriv(t)
	// A fresh namespace starts with ping_group_range "1 0": nobody may ping.
	o := runCommand(t, unprivileged(ns, "--icmp.v4.address=127.0.0.1"))
	o.mustExit(t, 2)
	for _, want := range []string{"CAP_NET_RAW", "net.ipv4.ping_group_range", `which is "1 0"`, "group 65534"} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("the error should mention %q:\n%s", want, o.stderr)
		}
	}
	// With --log-format=json the same error is one JSON object.
	o = runCommand(t, unprivileged(ns, "--log-format=json", "--icmp.v4.address=127.0.0.1"))
	o.mustExit(t, 2)
	lines := strings.Split(strings.TrimSuffix(o.stderr, "\n"), "\n")
	var rec struct{ Level, Msg, Error string }
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil {
		t.Fatalf("want one JSON line, got:\n%s", o.stderr)
	}
	if rec.Level != "ERROR" || rec.Msg != "invalid configuration" || !strings.Contains(rec.Error, "CAP_NET_RAW") {
		t.Errorf("record %+v", rec)
	}
}

// A host that never answers stays not ready; every attempt ends by its
// read timeout, on both socket kinds and both address families.
func TestICMPSilentHost(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	requireSetpriv(t)
	setSysctl(t, ns, "net/ipv4/icmp_echo_ignore_all", "1")
	setSysctl(t, ns, "net/ipv6/icmp/echo_ignore_all", "1")
	setSysctl(t, ns, "net/ipv4/ping_group_range", "0 2147483647")
	args := []string{"--icmp.v4.address=127.0.0.1", "--icmp.v6.address=::1", "--icmp.v4.read-timeout=200ms",
		"--icmp.v6.read-timeout=200ms", "--default-interval=50ms", "--timeout=1200ms"}
	for name, cmd := range map[string]*exec.Cmd{
		"raw":      exec.Command("ip", append([]string{"netns", "exec", ns, ppBinary}, args...)...),
		"datagram": unprivileged(ns, args...),
	} {
		o := runCommand(t, cmd)
		o.mustExit(t, 1)
		for _, target := range []string{"v4", "v6"} {
			want := fmt.Sprintf(`level=ERROR msg="not ready" target=%s type=icmp`, target)
			if !strings.Contains(o.stderr, want) || !strings.Contains(o.stderr, `error="no echo reply within 200ms"`) {
				t.Errorf("%s: want %q with the read timeout as reason:\n%s", name, want, o.stderr)
			}
		}
		// 1.2 s at 200 ms + 50 ms per attempt: four or five attempts each.
		if n := strings.Count(o.stderr, "attempts=4") + strings.Count(o.stderr, "attempts=5"); n != 2 {
			t.Errorf("%s: attempts should each end at the read timeout:\n%s", name, o.stderr)
		}
	}
}

func TestICMPUnresolvableHostIsNotAStartupError(t *testing.T) {
	t.Parallel()
	requirePrivilege(t, os.Geteuid() == 0, "raw ICMP sockets need root")
	o := runPortpatrol(t, nil, "--icmp.x.address=no-such-host.invalid", "--timeout=500ms", "--default-interval=100ms")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "cannot resolve no-such-host.invalid") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// Arbitrary bytes never match and never panic, unless they are exactly a
// reply to the request.
func FuzzEchoReply(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0x10, 0x92, 0, 17, 't', 'o', 'k'}, false)
	f.Add([]byte{129, 0, 0, 0, 0x10, 0x92, 0, 17, 't', 'o', 'k'}, true)
	f.Add([]byte{8, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		want := echoRequest{peer: net.ParseIP("127.0.0.1"), id: 0x1092, seq: 17, token: []byte("tok")}
		if !want.matches(b, v6, want.peer) {
			return
		}
		m, err := icmp.ParseMessage(map[bool]int{false: protocolICMP, true: protocolICMPv6}[v6], b)
		if err != nil {
			t.Fatalf("matched an unparsable message %x", b)
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.Seq != 17 || echo.ID != 0x1092 || string(echo.Data) != "tok" {
			t.Fatalf("matched %x, which is not our reply", b)
		}
	})
}

// A link-local IPv6 address needs its zone, the interface to send on, as
// TCP and HTTP addresses accept it: fe80::1 on lo answers, on a raw socket
// as root and on a datagram socket as nobody.
func TestICMPIPv6Zone(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	requireSetpriv(t)
	if out, err := exec.Command("ip", "-n", ns, "addr", "add", "fe80::1/64", "dev", "lo", "nodad").CombinedOutput(); err != nil {
		t.Fatalf("adding fe80::1 to lo: %v: %s", err, out)
	}
	setSysctl(t, ns, "net/ipv4/ping_group_range", "0 2147483647")
	args := []string{"--icmp.zoned.address=fe80::1%lo", "--icmp.bracketed.address=icmp://[fe80::1%lo]",
		"--icmp.loopback.address=::1%lo", "--default-interval=100ms", "--timeout=3s"}
	for name, cmd := range map[string]*exec.Cmd{
		"raw":      exec.Command("ip", append([]string{"netns", "exec", ns, ppBinary}, args...)...),
		"datagram": unprivileged(ns, args...),
	} {
		o := runCommand(t, cmd)
		// Without its zone an echo to fe80::1 fails on every attempt
		// ("sendto: invalid argument"). A first attempt may also go
		// unanswered while the new namespace settles its link-local
		// route under load, so ready within the timeout is the test.
		if o.code != 0 || strings.Contains(o.stderr, "invalid argument") {
			t.Errorf("%s: exit %d, want every zoned address ready:\n%s", name, o.code, o.stderr)
		}
	}
}
