package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
)

const (
	protocolICMP   = 1
	protocolICMPv6 = 58
)

func init() {
	register("icmp", &targetType{
		ready:      "when the host answers an echo request (ping)",
		stillReady: "still answers pings",
		properties: icmpProperties,
		settings:   func() any { return &icmpSettings{} },
		prepare:    prepareICMP,
		build:      buildICMP,
	})
}

type icmpSettings struct {
	readTimeout  time.Duration
	writeTimeout time.Duration
}

func icmpOf(s *targetSpec) *icmpSettings { return s.settings.(*icmpSettings) }

var icmpProperties = []property{
	{name: "read-timeout", arg: "DURATION", def: "1s", help: "how long to wait for the echo reply",
		set: func(s *targetSpec, v string) (err error) {
			icmpOf(s).readTimeout, err = parsePositiveDuration(v)
			return
		}},
	{name: "write-timeout", arg: "DURATION", def: "1s", help: "how long resolving and sending the echo request may take",
		set: func(s *targetSpec, v string) (err error) {
			icmpOf(s).writeTimeout, err = parsePositiveDuration(v)
			return
		}},
}

// icmpRaw is the process's choice of socket, made once by prepareICMP.
var icmpRaw bool

func prepareICMP(log *logger) error {
	var err error
	if icmpRaw, err = chooseICMPSocket(); err != nil {
		return err
	}
	if icmpRaw {
		log.Debug("ICMP uses raw sockets")
	} else {
		log.Debug("ICMP uses unprivileged datagram sockets: raw sockets are not permitted")
	}
	return nil
}

func buildICMP(s *targetSpec, address string) (built, []error) {
	host, err := parseICMPAddress(address)
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	o := icmpOf(s)
	c := icmpCheck{host: host, readTimeout: o.readTimeout, writeTimeout: o.writeTimeout, raw: icmpRaw, id: os.Getpid() & 0xffff}
	return built{checker: c, address: host, pieces: []string{address, host}}, nil
}

// icmpCheck is ready when the host answers an echo request.
type icmpCheck struct {
	host         string // hostname or IP, resolved on every attempt
	readTimeout  time.Duration
	writeTimeout time.Duration
	raw          bool // raw socket (CAP_NET_RAW) or unprivileged datagram socket
	id           int  // echo identifier on raw sockets: the process's, set once
}

// icmpSeq numbers echo requests across all targets of the process, so that
// concurrent targets on raw sockets never accept each other's replies.
var icmpSeq atomic.Uint32

// parseICMPAddress accepts a hostname, an IPv4 or IPv6 address (bare or in
// brackets), optionally written as icmp://host.
func parseICMPAddress(s string) (string, error) {
	host := strings.TrimPrefix(s, "icmp://")
	if strings.Contains(host, "://") {
		return "", errors.New("want a host name or IP address, optionally as icmp://host")
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	// A zone names the interface a link-local address is on: fe80::1%eth0.
	if _, err := netip.ParseAddr(host); err != nil && strings.ContainsAny(host, "/:") && !strings.Contains(host, "%") {
		return "", errors.New("want a host alone: ICMP has no ports or paths")
	}
	return host, checkHost(host)
}

// chooseICMPSocket decides, once per process, whether echo requests go out
// on raw sockets or on unprivileged datagram ("ping") sockets.
func chooseICMPSocket() (raw bool, err error) {
	rawErr := probeICMP("ip4:icmp", "ip6:ipv6-icmp")
	if rawErr == nil {
		return true, nil
	}
	if !errors.Is(rawErr, syscall.EPERM) && !errors.Is(rawErr, syscall.EACCES) {
		return false, errorf("cannot open an ICMP socket: %v", rawErr)
	}
	dgramErr := probeICMP("udp4", "udp6")
	if dgramErr == nil {
		return false, nil
	}
	groups, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	return false, errorf("ICMP targets need one of two permissions, and this process has neither: "+
		"a raw socket needs the CAP_NET_RAW capability (%v), "+
		"and unprivileged ping needs group %d inside net.ipv4.ping_group_range, which is %q (%v). "+
		"Either add the capability (Kubernetes: securityContext.capabilities.add: [NET_RAW]) "+
		"or allow the group (sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"; Kubernetes: securityContext.sysctls)",
		unwrapSyscall(rawErr), os.Getgid(), strings.Join(strings.Fields(string(groups)), " "), unwrapSyscall(dgramErr))
}

// probeICMP opens and closes a socket of network4, or of network6 on a host
// without IPv4.
func probeICMP(network4, network6 string) error {
	c, err := icmp.ListenPacket(network4, "0.0.0.0")
	if errors.Is(err, syscall.EAFNOSUPPORT) {
		c, err = icmp.ListenPacket(network6, "::")
	}
	if err != nil {
		return err
	}
	return c.Close()
}

func unwrapSyscall(err error) error {
	if se, ok := errors.AsType[*os.SyscallError](err); ok {
		return se.Err
	}
	return err
}

func (c icmpCheck) check(ctx context.Context) error {
	lookupCtx, cancel := context.WithTimeout(ctx, c.writeTimeout)
	ip, zone, err := lookupIP(lookupCtx, c.host)
	cancel()
	if err != nil {
		return describeNetError(lookupCtx, err, c.writeTimeout)
	}
	v6 := ip.To4() == nil

	network, local := "ip4:icmp", "0.0.0.0"
	var dst net.Addr = &net.IPAddr{IP: ip, Zone: zone}
	switch {
	case v6 && c.raw:
		network, local = "ip6:ipv6-icmp", "::"
	case v6:
		network, local, dst = "udp6", "::", &net.UDPAddr{IP: ip, Zone: zone}
	case !c.raw:
		network, dst = "udp4", &net.UDPAddr{IP: ip}
	}
	conn, err := icmp.ListenPacket(network, local)
	if err != nil {
		return errorf("cannot open an ICMP socket: %v", unwrapSyscall(err))
	}
	defer conn.Close()
	// A cancelled wait must not sit out the read timeout.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	want := echoRequest{peer: ip, id: c.id, seq: int(icmpSeq.Add(1) & 0xffff)}
	want.token = binary.BigEndian.AppendUint64(nil, rand.Uint64())
	if !c.raw {
		want.id = -1 // the kernel replaces the identifier with its own on datagram sockets
	}
	msg := want.marshal(v6)
	conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if _, err := conn.WriteTo(msg, dst); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errorf("cannot send echo request: %v", describeNetError(ctx, err, c.writeTimeout))
	}

	conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if os.IsTimeout(err) {
				return errorf("no echo reply within %v", c.readTimeout)
			}
			return errorf("reading echo reply: %v", unwrapSyscall(err))
		}
		// Anything else is skipped: other processes' pings, and on a raw
		// socket on loopback even our own request.
		if want.matches(buf[:n], v6, peerIP(from)) {
			return nil
		}
	}
}

// lookupIP resolves host, preferring IPv4 when it has both. An address's
// zone (fe80::1%eth0) comes back apart: net.IP cannot hold it.
func lookupIP(ctx context.Context, host string) (net.IP, string, error) {
	addr, zone, _ := strings.Cut(host, "%")
	if ip := net.ParseIP(addr); ip != nil {
		return ip, zone, nil
	}
	addrs, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return nil, "", err
	}
	for _, a := range addrs {
		if a.To4() != nil {
			return a, "", nil
		}
	}
	return addrs[0], "", nil
}

func peerIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP
	case *net.UDPAddr:
		return a.IP
	}
	return nil
}

// echoRequest is what one attempt sent, and so what its reply must carry.
type echoRequest struct {
	peer  net.IP
	id    int // -1: any identifier
	seq   int
	token []byte
}

// An echo message (RFC 792; ICMPv6: RFC 4443 section 4) is the type, code 0,
// the checksum, the identifier, the sequence number and the data.
const (
	icmpEchoReply     = 0
	icmpEchoRequest   = 8
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
	icmpEchoHeader    = 8
)

func (e echoRequest) marshal(v6 bool) []byte {
	typ := byte(icmpEchoRequest)
	if v6 {
		typ = icmpv6EchoRequest
	}
	id := max(e.id, 0)
	b := append([]byte{typ, 0, 0, 0, byte(id >> 8), byte(id), byte(e.seq >> 8), byte(e.seq)}, e.token...)
	if !v6 {
		// The kernel fills in the ICMPv6 checksum: it covers a pseudo-header
		// of addresses that only the kernel knows for sure.
		binary.BigEndian.PutUint16(b[2:], internetChecksum(b))
	}
	return b
}

// internetChecksum is the ones' complement of the ones' complement sum of
// b's 16-bit words (RFC 1071).
func internetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		sum += uint32(b[i]) << 8
		if i+1 < len(b) {
			sum += uint32(b[i+1])
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// matches reports whether b, an ICMP message received from `from`, is the
// echo reply to e.
func (e echoRequest) matches(b []byte, v6 bool, from net.IP) bool {
	replyType := byte(icmpEchoReply)
	if v6 {
		replyType = icmpv6EchoReply
	}
	if len(b) < icmpEchoHeader || b[0] != replyType || b[1] != 0 || !from.Equal(e.peer) {
		return false
	}
	id, seq := int(binary.BigEndian.Uint16(b[4:])), int(binary.BigEndian.Uint16(b[6:]))
	return seq == e.seq && (e.id < 0 || id == e.id) && bytes.Equal(b[icmpEchoHeader:], e.token)
}
