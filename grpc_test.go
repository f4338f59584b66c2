package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func grpcCheckFor(t *testing.T, args ...string) *grpcCheck {
	t.Helper()
	return checkerFor(t, args...).(*grpcCheck)
}

func TestParseGRPCAddress(t *testing.T) {
	for _, tc := range []struct {
		in, network, address string
		tls                  bool
		err                  string
	}{
		{in: "localhost:50051", network: "tcp", address: "localhost:50051"},
		{in: "grpc://10.0.0.1:9090", network: "tcp", address: "10.0.0.1:9090"},
		{in: "grpc://svc:9090/", network: "tcp", address: "svc:9090"},
		{in: "grpcs://api.example.com:443", network: "tcp", address: "api.example.com:443", tls: true},
		{in: "[::1]:50051", network: "tcp", address: "[::1]:50051"},
		{in: "grpcs://[::1]:8443", network: "tcp", address: "[::1]:8443", tls: true},
		{in: "unix:///run/app/grpc.sock", network: "unix", address: "/run/app/grpc.sock"},
		// The forms grpc-go takes, and a scheme in any case.
		{in: "dns:///orders.svc:50051", network: "tcp", address: "orders.svc:50051"},
		{in: "dns:orders.svc:50051", network: "tcp", address: "orders.svc:50051"},
		{in: "DNS:///[::1]:50051", network: "tcp", address: "[::1]:50051"},
		{in: "GRPCS://svc:443", network: "tcp", address: "svc:443", tls: true},
		{in: "Grpc://svc:80", network: "tcp", address: "svc:80"},
		{in: "unix:run/grpc.sock", network: "unix", address: "run/grpc.sock"},
		{in: "unix:/run/grpc.sock", network: "unix", address: "/run/grpc.sock"},
		{in: "UNIX:///run/grpc.sock", network: "unix", address: "/run/grpc.sock"},
		{in: "dns://8.8.8.8/svc:80", err: "a DNS server in the address (dns://server/host:port) is not supported"},
		{in: "dns:///svc", err: "the port is missing"},
		{in: "unix:", err: "the unix socket path is empty"},
		{in: "localhost", err: "the port is missing: gRPC has no default port"},
		{in: "grpc://svc", err: "the port is missing"},
		{in: "::1", err: "the port is missing"},
		{in: "[::1]", err: "the port is missing"},
		{in: "svc:0", err: "the port must be a number from 1 to 65535"},
		{in: "http://svc:80", err: "want host:port, dns:///host:port, grpc://host:port, grpcs://host:port (TLS) or unix:///path"},
		{in: "grpc://u:pw@svc:80", err: "a grpc address has no user or password"},
		{in: "grpc://svc:80/grpc.health.v1.Health/Check", err: "want host:port without a path"},
		{in: "/run/app.sock", err: "write a unix socket as unix:///path"},
		{in: "unix://host/x.sock", err: "a unix:// address has no host"},
		{in: ":50051", err: "missing host before the port"},
		{in: "bad host:1", err: "the host has a space in it"},
	} {
		network, address, useTLS, err := parseGRPCAddress(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseGRPCAddress(%q): %v, want error %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || network != tc.network || address != tc.address || useTLS != tc.tls {
			t.Errorf("parseGRPCAddress(%q) = %q, %q, %v, %v; want %q, %q, %v", tc.in, network, address, useTLS, err, tc.network, tc.address, tc.tls)
		}
	}
}

func TestGRPCStartupErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--grpc.a.address=localhost"}, `--grpc.a.address=localhost: the port is missing: gRPC has no default port (want host:port, IPv6 as [::1]:port)`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.header=grpc-timeout=1S"}, `--grpc.a.header=…: header "grpc-timeout" is reserved: pseudo-headers, content-type, te and grpc-* are set by the call itself`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.header=:authority=x"}, `header ":authority" is reserved`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.header=Content-Type=x"}, `header "content-type" is reserved`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.header=TE=x"}, `header "te" is reserved`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.header=connection=close"}, `header "connection" cannot be sent over HTTP/2`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.header=x-token"}, `want NAME=VALUE`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.header=x-token= "}, `--grpc.a.header: the value of x-token is empty`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.header=x-token=env:PP_GRPC_UNSET_TOKEN"}, `--grpc.a.header x-token: `},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.ca-file=/ca.pem"}, `--grpc.a.address: TLS properties are set but the address does not ask for TLS (use grpcs://, or --grpc.a.tls=true)`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.server-name=svc"}, `TLS properties are set but the address does not ask for TLS`},
		{[]string{"--grpc.a.address=grpcs://svc:1", "--grpc.a.cert-file=/c.pem"}, `--grpc.a.cert-file and --grpc.a.key-file go together`},
		{[]string{"--grpc.a.address=grpcs://svc:1", "--grpc.a.ca-file=/nonexistent/ca.pem"}, `--grpc.a.ca-file: cannot read /nonexistent/ca.pem`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.authority=a b"}, `--grpc.a.authority`},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.timeout=0s"}, `--grpc.a.timeout`},
	} {
		o := runPortpatrol(t, nil, tc.args...)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%q: stderr\n%s\nwant %q", tc.args, o.stderr, tc.want)
		}
	}
	// A header's value is never echoed, not even a rejected one.
	o := runPortpatrol(t, nil, "--grpc.a.address=svc", "--grpc.a.header=authorization=Bearer Sekr3tT0ken\nx", "--grpc.a.header=grpc-x=Sekr3tT0ken")
	o.mustExit(t, 2)
	if strings.Contains(o.stderr, "Sekr3t") {
		t.Errorf("stderr shows a header value:\n%s", o.stderr)
	}
}

func TestGRPCTimeout(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{987654 * time.Microsecond, "987654u"},
		{time.Second, "1000000u"},
		{100 * time.Second, "100000m"},
		{30 * time.Hour, "108000S"},
		{5000 * time.Hour, "18000000S"},
		{100000 * time.Hour, "6000000M"},
		{0, "1u"},
		{-time.Second, "1u"},
	} {
		if got := grpcTimeout(tc.d); got != tc.want {
			t.Errorf("grpcTimeout(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestGRPCHealthRequest(t *testing.T) {
	if got := grpcHealthRequest(""); len(got) != 0 {
		t.Errorf("empty service: % x, want nothing (proto3 leaves a default out)", got)
	}
	long := strings.Repeat("s", 200)
	want := append([]byte{0x0a, 0xc8, 0x01}, long...)
	if got := grpcHealthRequest(long); !bytes.Equal(got, want) {
		t.Errorf("200-byte service: % x, want % x", got[:4], want[:4])
	}
}

func TestDecodeHealthReply(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    string // hex
		status int
		err    string
	}{
		{"SERVING", "0801", 1, ""},
		{"NOT_SERVING", "0802", 2, ""},
		{"empty is UNKNOWN", "", 0, ""},
		{"last field 1 wins", "08020801", 1, ""},
		{"unknown varint", "10ffffffffffffffffff010801", 1, ""},
		{"unknown fixed64", "1901020304050607080801", 1, ""},
		{"unknown string", "1a0568656c6c6f0801", 1, ""},
		{"unknown fixed32", "1d010203040801", 1, ""},
		{"group holding a field 1", "2308022408010802", 2, ""},
		{"nested groups", "23" + "2b" + "0805" + "2c" + "24" + "0801", 1, ""},
		{"negative enum", "08ffffffffffffffffff01", -1, ""},
		{"status as a string", "0a0101", 0, "its status has wire type 2"},
		{"field number 0", "0001", 0, "a bad field number"},
		{"cut varint", "08ff", 0, "a bad varint"},
		{"overlong varint", "08ffffffffffffffffffff01", 0, "a bad varint"},
		{"string beyond the end", "1a050102", 0, "a length beyond its end"},
		{"fixed32 cut", "1d0102", 0, "a field beyond its end"},
		{"group never ends", "230801", 0, "a group never ends"},
		{"end without start", "24", 0, "a group ends that never started"},
		{"groups crossed", "232b2428", 0, "a group ends that never started"},
		{"wire type 6", "0e", 0, "wire type 6"},
	} {
		b, _ := hexBytes(tc.msg)
		status, err := decodeHealthReply(b)
		switch {
		case tc.err == "" && (err != nil || status != tc.status):
			t.Errorf("%s: %d, %v; want %d", tc.name, status, err, tc.status)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %d, %v; want error %q", tc.name, status, err, tc.err)
		}
	}
}

func hexBytes(s string) ([]byte, error) {
	b := make([]byte, len(s)/2)
	for i := range b {
		n, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		b[i] = byte(n)
	}
	return b, nil
}

// Frames for the fake servers.

func fakeHeaders(endStream bool, fields ...string) []byte {
	var block []byte
	for i := 0; i < len(fields); i += 2 {
		block = hpackLiteral(block, 0, fields[i], fields[i+1])
	}
	flags := byte(h2FlagEndHeaders)
	if endStream {
		flags |= h2FlagEndStream
	}
	return h2AppendFrame(nil, h2Headers, flags, 1, block)
}

func fakeMessage(msg []byte) []byte {
	return h2AppendFrame(nil, h2Data, 0, 1, append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...))
}

var (
	fakeOK       = fakeHeaders(false, ":status", "200", "content-type", "application/grpc")
	fakeGzipOK   = fakeHeaders(false, ":status", "200", "content-type", "application/grpc", "grpc-encoding", "gzip")
	fakeTrailers = fakeHeaders(true, "grpc-status", "0")
)

// fakeBigHeaders are response headers with n bytes of metadata, in a
// HEADERS frame and CONTINUATION frames of at most 16 KiB.
func fakeBigHeaders(n int) []byte {
	block := hpackLiteral(hpackLiteral(hpackLiteral(nil, 0, ":status", "200"), 0, "content-type", "application/grpc"), 0, "x-big", strings.Repeat("a", n))
	first, rest := block[:h2MaxFrame], block[h2MaxFrame:]
	return grpcAnswer(h2AppendFrame(nil, h2Headers, 0, 1, first), h2AppendFrame(nil, h2Continuation, h2FlagEndHeaders, 1, rest))
}

// fakeGzipMessage is a reply message compressed as grpc-encoding gzip
// sends it: compressed-flag 1, then the gzip stream's length and bytes.
func fakeGzipMessage(msg ...byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(msg)
	zw.Close()
	return h2AppendFrame(nil, h2Data, 0, 1, append(binary.BigEndian.AppendUint32([]byte{1}, uint32(z.Len())), z.Bytes()...))
}

func grpcAnswer(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// readGRPCRequest reads a client's preface and frames until its request
// ends (END_STREAM on stream 1), as a server would before answering.
func readGRPCRequest(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	preface := make([]byte, len(h2Preface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != h2Preface {
		return false
	}
	for {
		var head [9]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return false
		}
		n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			return false
		}
		if binary.BigEndian.Uint32(head[5:]) == 1 && head[4]&h2FlagEndStream != 0 && (head[3] == h2Data || head[3] == h2Headers) {
			return true
		}
	}
}

// grpcFake is an HTTP/2 server that sends its SETTINGS, reads the request,
// then writes answer (or runs serve) and reads until the client closes.
func grpcFake(t *testing.T, answer []byte, serve func(c net.Conn)) string {
	return tcpServer(t, func(c net.Conn) {
		c.Write(h2AppendFrame(nil, h2Settings, 0, 0, nil))
		if !readGRPCRequest(c) {
			return
		}
		c.Write(answer)
		if serve != nil {
			serve(c)
		}
		io.Copy(io.Discard, c)
	})
}

// pythonClient calls Health/Check once on addr with python3-grpcio and
// returns its one line: "OK <reply hex>" or "ERROR <code> <details>".
func pythonClient(t *testing.T, addr string, env ...string) string {
	t.Helper()
	python := requireProgram(t, "/usr/bin/python3")
	cmd := exec.Command(python, filepath.Join("testdata", "grpc", "health_client.py"), addr)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // the C core logs there, e.g. a GOAWAY's debug data
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("health_client.py: %v\n%s%s", err, out, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// Every fake is also asked by python3-grpcio's client: what portpatrol
// reads from it must be what a real gRPC client reads.
func TestGRPCFakeServers(t *testing.T) {
	t.Parallel()
	endless := func(c net.Conn) {
		frame := h2AppendFrame(nil, 0xf0, 0, 0, make([]byte, 16384)) // an extension frame type, to be ignored
		for {
			if _, err := c.Write(frame); err != nil {
				return
			}
		}
	}
	for _, tc := range []struct {
		name   string
		answer []byte
		serve  func(net.Conn)
		raw    func(net.Conn) // instead of the HTTP/2 fake
		err    string         // "" means ready
		unseen bool           // a refusal: an inverted target is not gone
		python string         // prefix of the Python client's line
	}{
		{name: "SERVING", answer: grpcAnswer(fakeOK, fakeMessage([]byte{8, 1}), fakeTrailers), python: "OK 0801"},
		{name: "NOT_SERVING", answer: grpcAnswer(fakeOK, fakeMessage([]byte{8, 2}), fakeTrailers), err: "NOT_SERVING", python: "OK 0802"},
		{name: "SERVICE_UNKNOWN", answer: grpcAnswer(fakeOK, fakeMessage([]byte{8, 3}), fakeTrailers), err: "SERVICE_UNKNOWN", python: "OK 0803"},
		{name: "unknown fields", answer: grpcAnswer(fakeOK, fakeMessage([]byte{0x10, 5, 0x1a, 2, 'h', 'i', 0x1d, 1, 2, 3, 4, 0x23, 0x08, 0x02, 0x24, 0x08, 0x01}), fakeTrailers), python: "OK 1005"},
		{name: "PING and a graceful GOAWAY before the answer",
			answer: grpcAnswer(h2AppendFrame(nil, h2Ping, 0, 0, make([]byte, 8)), h2AppendFrame(nil, h2GoAway, 0, 0, []byte{0, 0, 0, 1, 0, 0, 0, 0}),
				fakeOK, fakeMessage([]byte{8, 1}), fakeTrailers), python: "OK 0801"},
		{name: "UNAVAILABLE trailers only", answer: fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", "14", "grpc-message", "shutting%20down"),
			err: "UNAVAILABLE (shutting down)", python: "ERROR UNAVAILABLE shutting down"},
		{name: "NOT_FOUND", answer: fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", "5", "grpc-message", "unknown service"),
			err: `NOT_FOUND (unknown service): the health service does not know service "" (not registered yet, or misspelt)`, unseen: true, python: "ERROR NOT_FOUND unknown service"},
		{name: "UNAUTHENTICATED", answer: fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", "16", "grpc-message", "bad%20token"),
			err: "UNAUTHENTICATED (bad token)", unseen: true, python: "ERROR UNAUTHENTICATED bad token"},
		{name: "PERMISSION_DENIED", answer: fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", "7"),
			err: "PERMISSION_DENIED", unseen: true, python: "ERROR PERMISSION_DENIED"},
		// grpc-go's RPCCompressor: the reply gzipped, whatever the client asked.
		{name: "gzip", answer: grpcAnswer(fakeGzipOK, fakeGzipMessage(8, 1), fakeTrailers), python: "OK 0801"},
		{name: "gzip NOT_SERVING", answer: grpcAnswer(fakeGzipOK, fakeGzipMessage(8, 2), fakeTrailers), err: "NOT_SERVING", python: "OK 0802"},
		{name: "gzip bomb", answer: grpcAnswer(fakeGzipOK, fakeGzipMessage(make([]byte, grpcMaxRead+1)...), fakeTrailers),
			err: "the server's gzip reply decompresses to more than 64 KiB"},
		{name: "gzip that is not", answer: grpcAnswer(fakeGzipOK, h2AppendFrame(nil, h2Data, 0, 1, []byte{1, 0, 0, 0, 2, 8, 1}), fakeTrailers),
			err: "the server's gzip reply is not gzip", python: "ERROR UNKNOWN Unexpected error decompressing"},
		{name: "deflate", answer: grpcAnswer(fakeHeaders(false, ":status", "200", "content-type", "application/grpc", "grpc-encoding", "deflate"),
			h2AppendFrame(nil, h2Data, 0, 1, []byte{1, 0, 0, 0, 2, 8, 1}), fakeTrailers),
			err: `the server compressed its reply with "deflate", though the call accepts gzip alone`},
		{name: "compressed-flag 2", answer: grpcAnswer(fakeOK, h2AppendFrame(nil, h2Data, 0, 1, []byte{2, 0, 0, 0, 2, 8, 1}), fakeTrailers),
			err: "the reply message has compressed-flag 2, neither 0 nor 1"},
		// 20 KiB of metadata: portpatrol's own limit, not the server's fault.
		{name: "header block over the limit", answer: grpcAnswer(fakeBigHeaders(20<<10), fakeMessage([]byte{8, 1}), fakeTrailers),
			err: "the server sent a header block larger than 16 KiB, portpatrol's limit (sent as SETTINGS_MAX_HEADER_LIST_SIZE)"},
		{name: "UNIMPLEMENTED", answer: fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", "12"),
			err: "UNIMPLEMENTED: the server has no grpc.health.v1.Health service; a tcp target waits for its port", unseen: true, python: "ERROR UNIMPLEMENTED"},
		{name: "an unknown code", answer: fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", "42"),
			err: "gRPC status 42", python: "ERROR UNKNOWN"},
		{name: "HTTP 503", answer: fakeHeaders(true, ":status", "503", "content-type", "text/plain"),
			err: "the server answered HTTP status 503, not a gRPC call's 200", python: "ERROR UNAVAILABLE"},
		{name: "HTML", answer: grpcAnswer(fakeHeaders(false, ":status", "200", "content-type", "text/html"), h2AppendFrame(nil, h2Data, h2FlagEndStream, 1, []byte("<html>"))),
			err: `the server answered with content-type "text/html", not application/grpc`, python: "ERROR UNKNOWN"},
		{name: "no grpc-status", answer: grpcAnswer(fakeOK, fakeMessage([]byte{8, 1}), fakeHeaders(true, "x-y", "z")),
			// python3-grpcio 1.51's client dies of SIGILL on this answer.
			err: "the call ended without a grpc-status"},
		{name: "RST_STREAM", answer: h2AppendFrame(nil, h2RSTStream, 0, 1, []byte{0, 0, 0, 7}),
			err: "the server reset the call with RST_STREAM REFUSED_STREAM", python: "ERROR UNAVAILABLE"},
		{name: "GOAWAY", answer: h2AppendFrame(nil, h2GoAway, 0, 0, append([]byte{0, 0, 0, 0, 0, 0, 0, 11}, "too_many_pings"...)),
			err: "the server closed the connection with GOAWAY ENHANCE_YOUR_CALM (too_many_pings)", python: "ERROR UNAVAILABLE"},
		{name: "closed mid-call", answer: fakeOK, serve: func(c net.Conn) { readRequest(c); c.Close() },
			err: "the server closed the connection before the call ended", python: "ERROR"},
		{name: "closed after a graceful GOAWAY", answer: grpcAnswer(h2AppendFrame(nil, h2GoAway, 0, 0, []byte{0, 0, 0, 1, 0, 0, 0, 0}), fakeOK),
			serve: func(c net.Conn) { readRequest(c); c.Close() },
			err:   "the server closed the connection before the call ended, after GOAWAY NO_ERROR", python: "ERROR"},
		{name: "compressed", answer: grpcAnswer(fakeOK, h2AppendFrame(nil, h2Data, 0, 1, []byte{1, 0, 0, 0, 2, 8, 1}), fakeTrailers),
			// The C core reads a compressed flag without grpc-encoding as
			// identity; grpc-go refuses it, as PROTOCOL-HTTP2.md asks.
			err: "the server compressed its reply without naming its grpc-encoding", python: "OK 0801"},
		{name: "2 GiB message", answer: grpcAnswer(fakeOK, h2AppendFrame(nil, h2Data, 0, 1, []byte{0, 0x80, 0, 0, 0, 8, 1})),
			// The C core waits for the 2 GiB to arrive.
			err: "the server declared a reply message of 2147483648 bytes, more than 64 KiB", python: "ERROR DEADLINE_EXCEEDED"},
		{name: "endless frames", serve: endless,
			err: "the server sent more than 64 KiB, portpatrol's limit for one call, without ending it", python: "ERROR DEADLINE_EXCEEDED"},
		{name: "HTTP/1.1", raw: func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		}, err: "the server spoke HTTP/1.1, not gRPC: use grpcs:// if it wants TLS", python: "ERROR UNAVAILABLE"},
		// Fewer bytes than a frame header, then the close.
		{name: "HTTP/1.0 cut short", raw: func(c net.Conn) { readRequest(c); c.Write([]byte("HTTP/1.0")) },
			err: "the server spoke HTTP/1.0, not gRPC: use grpcs:// if it wants TLS", python: "ERROR UNAVAILABLE"},
		{name: "a TLS alert", raw: func(c net.Conn) { readRequest(c); c.Write([]byte{0x15, 3, 3, 0, 2, 2, 0x28}) },
			err: "the server answered with a TLS alert, not HTTP/2: use grpcs://", python: "ERROR UNAVAILABLE"},
		{name: "not HTTP", raw: func(c net.Conn) { readRequest(c); c.Write([]byte("Oops")) },
			err: `the server did not speak HTTP/2, as a gRPC server does: it sent "Oops"`, python: "ERROR UNAVAILABLE"},
		// A server that reads no more than a line closes with a reset:
		// what it wrote before still counts.
		{name: "not HTTP, then a reset", raw: func(c net.Conn) { c.Read(make([]byte, 16)); c.Write([]byte("Oops")) },
			err: `the server did not speak HTTP/2, as a gRPC server does: it sent "Oops"`, python: "ERROR UNAVAILABLE"},
		{name: "SSH", raw: func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2p1\r\n")); readRequest(c) },
			err: `the server did not speak HTTP/2, as a gRPC server does: it sent "SSH-2.0-O"…`, python: "ERROR UNAVAILABLE"},
		{name: "binary", raw: func(c net.Conn) { c.Write([]byte("J\x00\x00\x00\n5.7.44\x00")); readRequest(c) },
			err: `the server did not speak HTTP/2, as a gRPC server does: it sent "J\x00\x00\x00\n5.7."…`, python: "ERROR UNAVAILABLE"},
		{name: "silent", raw: func(c net.Conn) { io.Copy(io.Discard, c) },
			err: "no answer within 2s", python: "ERROR DEADLINE_EXCEEDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var addr string
			if tc.raw != nil {
				addr = tcpServer(t, tc.raw)
			} else {
				addr = grpcFake(t, tc.answer, tc.serve)
			}
			err := grpcCheckFor(t, "--grpc.f.address="+addr, "--grpc.f.timeout=2s").check(context.Background())
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Errorf("check = %v, want %q", err, tc.err)
			}
			if _, ok := errors.AsType[unseen](err); ok != tc.unseen {
				t.Errorf("check = %v, unseen %v, want %v", err, ok, tc.unseen)
			}
			if tc.python == "" {
				return
			}
			if got := pythonClient(t, addr); !strings.HasPrefix(got, tc.python) {
				t.Errorf("python3-grpcio's client: %q, want %q", got, tc.python)
			}
		})
	}
}

// The address is logged as written, as every type's is, not in the form
// it was read into.
func TestGRPCLogsTheAddressAsWritten(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	o := runPortpatrol(t, nil, "--grpc.a.address="+addr, "--grpc.b.address=grpc://"+addr+"/", "--grpc.c.address=unix:///nonexistent.sock", "--timeout=300ms")
	o.mustExit(t, 1)
	for _, want := range []string{"target=a type=grpc address=" + addr + " ", "target=b type=grpc address=grpc://" + addr + "/ ", "target=c type=grpc address=unix:///nonexistent.sock "} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
}

// The frame reader and the message decoder take anything a server sends:
// a reason or a status, never a panic, never more than 64 KiB read.
func FuzzGRPCReply(f *testing.F) {
	f.Add(grpcAnswer(h2AppendFrame(nil, h2Settings, 0, 0, nil), fakeOK, fakeMessage([]byte{8, 1}), fakeTrailers))
	f.Add(grpcAnswer(h2AppendFrame(nil, h2Settings, 0, 0, nil), h2AppendFrame(nil, h2GoAway, 0, 0, []byte{0, 0, 0, 1, 0, 0, 0, 0}),
		fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", "5")))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	f.Add([]byte("HTTP/1."))
	f.Add([]byte("SSH-2.0-OpenSSH\r\n"))
	f.Add([]byte{0x15, 3, 3, 0, 2, 2, 0x28})
	f.Add(grpcAnswer(h2AppendFrame(nil, h2Settings, 0, 0, nil), fakeGzipOK, fakeGzipMessage(8, 1), fakeTrailers))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data)}
		readHealthReply(r, io.Discard, false, "use grpcs://")
		if r.n > grpcMaxRead {
			t.Fatalf("read %d bytes", r.n)
		}
	})
}

func FuzzHealthReply(f *testing.F) {
	f.Add([]byte{8, 1})
	f.Add([]byte{0x23, 0x08, 0x02, 0x24, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeHealthReply(data)
	})
}

// startPythonGRPC starts testdata/grpc/health_server.py as nobody on
// address; with health, it answers NOT_SERVING until the returned ready
// file exists and logs every call to the returned log file.
func startPythonGRPC(t *testing.T, address string, health bool, env ...string) (ready, log string) {
	t.Helper()
	requireRoot(t)
	python := requireProgram(t, "/usr/bin/python3")
	dir := nobodyDir(t)
	script, err := os.ReadFile(filepath.Join("testdata", "grpc", "health_server.py"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "health_server.py"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(dir, "health_server.py"), address}
	ready, log = filepath.Join(dir, "ready"), filepath.Join(dir, "calls.log")
	if health {
		args = append(args, ready, log)
	}
	cmd := asNobody(exec.Command(python, args...))
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	startServer(t, cmd)
	waitFor(t, out, "listening")
	return ready, log
}

// A real python3-grpcio server answers NOT_SERVING until a file appears:
// portpatrol waits, with several other types, sends its metadata, service
// and grpc-timeout, and never prints the metadata's value.
func TestGRPCRealPython(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ready, log := startPythonGRPC(t, addr, true)
	web := tcpServer(t, func(c net.Conn) { readRequest(c); c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) })
	cmd := exec.Command(ppBinary, "--grpc.orders.address=grpc://"+addr, "--grpc.orders.interval=200ms",
		"--grpc.orders.service=shop.Orders", "--grpc.orders.header=Authorization=env:GRPC_TOKEN",
		"--http.web.address=http://"+web+"/", "--tcp.port.address="+addr,
		"--log-format=json", "--log-level=debug", "--timeout=30s", "--", "sh", "-c", "echo started")
	cmd.Env = append(os.Environ(), "GRPC_TOKEN=Bearer Sekr3tT0ken")
	var stdout bytes.Buffer
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stderr, `"error":"NOT_SERVING"`)
	before := stderr.String()
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still waiting:\n%s", stderr.String())
	}
	all := stderr.String()
	if stdout.String() != "started\n" {
		t.Errorf("stdout %q, want the command's own", stdout.String())
	}
	// Ready at the first attempt that started after the file appeared: at
	// most the attempt already under way saw NOT_SERVING.
	if n := strings.Count(all[len(before):], `"error":"NOT_SERVING"`); n > 1 {
		t.Errorf("%d attempts said NOT_SERVING after the file appeared:\n%s", n, all)
	}
	for _, line := range strings.Split(strings.TrimSpace(all), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("a stderr line is not JSON: %q", line)
		}
	}
	for _, name := range []string{"orders", "web", "port"} {
		if !strings.Contains(all, `"msg":"ready","target":"`+name+`"`) {
			t.Errorf("%s was not logged ready:\n%s", name, all)
		}
	}
	if strings.Contains(all+stdout.String(), "Sekr3t") {
		t.Errorf("the output shows the header's value:\n%s", all)
	}
	// What the server saw.
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var last struct {
		Request       string
		Metadata      map[string]string
		TimeRemaining *float64 `json:"time_remaining"`
	}
	lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if want := "0a0b" + bytesHex("shop.Orders"); last.Request != want {
		t.Errorf("request %s, want %s", last.Request, want)
	}
	if got := last.Metadata["authorization"]; got != "Bearer Sekr3tT0ken" {
		t.Errorf("authorization metadata %q, want the token", got)
	}
	if !strings.HasPrefix(last.Metadata["user-agent"], "portpatrol/") {
		t.Errorf("user-agent %q", last.Metadata["user-agent"])
	}
	// grpc-timeout: what is left of the 1s attempt deadline.
	if tr := last.TimeRemaining; tr == nil || *tr <= 0 || *tr > 1 {
		t.Errorf("the server's time remaining is %v, want what is left of 1s", tr)
	}
}

func bytesHex(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		b.WriteString(strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&15, 16))
	}
	return b.String()
}

// A server without the health service, on a unix socket: UNIMPLEMENTED,
// with the advice to wait for its port instead.
func TestGRPCRealPythonWithoutHealth(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(nobodyDir(t), "grpc.sock")
	startPythonGRPC(t, "unix://"+sock, false)
	err := grpcCheckFor(t, "--grpc.py.address=unix://"+sock, "--grpc.py.timeout=5s").check(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "UNIMPLEMENTED") || !strings.Contains(err.Error(), "the server has no grpc.health.v1.Health service; a tcp target waits for its port") {
		t.Errorf("check = %v, want the UNIMPLEMENTED reason", err)
	}
	t.Logf("python3-grpcio without a health service: %v", err)
}

// testCertificates writes a CA and a server certificate for 127.0.0.1 signed
// by it into dir, readable by the unprivileged server.
func testCertificates(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portpatrol test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "etcd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: []string{"etcd.test", "localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{ca: {Type: "CERTIFICATE", Bytes: caDER},
		cert: {Type: "CERTIFICATE", Bytes: srvDER}, key: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// startEtcd starts Debian's etcd as nobody on free loopback ports, its
// client port with TLS when cert and key are given, and returns host:port.
func startEtcd(t *testing.T, cert, key string) string {
	t.Helper()
	requireRoot(t)
	etcd := requireProgram(t, "/usr/bin/etcd", "etcd")
	dir := nobodyDir(t)
	client := "127.0.0.1:" + strconv.Itoa(freePort(t))
	peer := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	scheme := "http://"
	args := []string{"--name=pp", "--data-dir=" + filepath.Join(dir, "data"), "--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer, "--initial-cluster=pp=" + peer}
	if cert != "" {
		scheme = "https://"
		args = append(args, "--cert-file="+cert, "--key-file="+key)
	}
	args = append(args, "--listen-client-urls="+scheme+client, "--advertise-client-urls="+scheme+client)
	cmd := asNobody(exec.Command(etcd, args...))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	startServer(t, cmd)
	waitForPort(t, client, 30*time.Second)
	return client
}

// etcd (grpc-go) registers the health service for "": ready over h2c;
// another service is NOT_FOUND.
func TestGRPCRealEtcd(t *testing.T) {
	t.Parallel()
	addr := startEtcd(t, "", "")
	var err error
	for range 100 { // until etcd has joined its one-member cluster
		if err = grpcCheckFor(t, "--grpc.etcd.address="+addr, "--grpc.etcd.timeout=5s").check(context.Background()); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("etcd over h2c: %v", err)
	}
	err = grpcCheckFor(t, "--grpc.etcd.address=grpc://"+addr, "--grpc.etcd.service=shop.Orders", "--grpc.etcd.timeout=5s").check(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "NOT_FOUND") || !strings.Contains(err.Error(), `does not know service "shop.Orders" (not registered yet, or misspelt)`) {
		t.Errorf("unknown service: %v, want the NOT_FOUND reason", err)
	}
	t.Logf("etcd, unknown service: %v", err)
	err = grpcCheckFor(t, "--grpc.etcd.address=grpcs://"+addr, "--grpc.etcd.timeout=5s").check(context.Background())
	if err == nil {
		t.Errorf("grpcs:// to etcd's cleartext port was ready")
	}
	t.Logf("etcd, grpcs:// to a cleartext port: %v", err)
}

// etcd with TLS: ready over grpcs:// with the test's CA; without it, a
// certificate reason; grpc:// to the TLS port is not ready either.
func TestGRPCRealEtcdTLS(t *testing.T) {
	t.Parallel()
	dir := nobodyDir(t)
	ca, cert, key := testCertificates(t, dir)
	addr := startEtcd(t, cert, key)
	var err error
	for range 100 {
		if err = grpcCheckFor(t, "--grpc.etcd.address=grpcs://"+addr, "--grpc.etcd.ca-file="+ca, "--grpc.etcd.timeout=5s").check(context.Background()); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("etcd over TLS with the CA: %v", err)
	}
	// The certificate names etcd.test; the authority picks the name to verify.
	err = grpcCheckFor(t, "--grpc.etcd.address=grpcs://"+addr, "--grpc.etcd.ca-file="+ca, "--grpc.etcd.server-name=etcd.test").check(context.Background())
	if err != nil {
		t.Errorf("server-name etcd.test: %v", err)
	}
	err = grpcCheckFor(t, "--grpc.etcd.address=grpcs://"+addr, "--grpc.etcd.ca-file="+ca, "--grpc.etcd.server-name=other.test").check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("server-name other.test: %v, want a certificate reason", err)
	}
	err = grpcCheckFor(t, "--grpc.etcd.address=grpcs://"+addr).check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("without the CA: %v, want a certificate reason", err)
	}
	t.Logf("etcd over TLS without the CA: %v", err)
	err = grpcCheckFor(t, "--grpc.etcd.address=grpc://"+addr, "--grpc.etcd.timeout=5s").check(context.Background())
	if err == nil || err.Error() != "the server closed the connection before it answered: use grpcs:// if it wants TLS" {
		t.Errorf("grpc:// to etcd's TLS port: %v, want the advice to use grpcs://", err)
	}
	t.Logf("etcd, grpc:// to a TLS port: %v", err)
}

// The client acknowledges the server's SETTINGS and PING (RFC 9113 sections
// 6.5.3, 6.7) and ends the connection with a GOAWAY.
func TestGRPCAcknowledgesAndSaysGoodbye(t *testing.T) {
	seen := make(chan string, 1)
	addr := tcpServer(t, func(c net.Conn) {
		c.Write(grpcAnswer(h2AppendFrame(nil, h2Settings, 0, 0, []byte{0, 3, 0, 0, 0, 100}), h2AppendFrame(nil, h2Ping, 0, 0, []byte("pingpong"))))
		if !readGRPCRequest(c) {
			return
		}
		var got []string
		answered := false
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var head [9]byte
			if _, err := io.ReadFull(c, head[:]); err != nil {
				break
			}
			payload := make([]byte, int(head[0])<<16|int(head[1])<<8|int(head[2]))
			if _, err := io.ReadFull(c, payload); err != nil {
				break
			}
			switch {
			case head[3] == h2Settings && head[4] == h2FlagAck:
				got = append(got, "SETTINGS ACK")
			case head[3] == h2Ping && head[4] == h2FlagAck && string(payload) == "pingpong":
				got = append(got, "PING ACK")
			case head[3] == h2GoAway:
				got = append(got, "GOAWAY")
			}
			if len(got) == 2 && !answered {
				c.Write(grpcAnswer(fakeOK, fakeMessage([]byte{8, 1}), fakeTrailers))
				answered = true
			}
		}
		seen <- strings.Join(got, ", ")
	})
	if err := grpcCheckFor(t, "--grpc.f.address="+addr, "--grpc.f.timeout=5s").check(context.Background()); err != nil {
		t.Errorf("check = %v, want ready", err)
	}
	if got, want := <-seen, "SETTINGS ACK, PING ACK, GOAWAY"; got != want {
		t.Errorf("the client sent %s, want %s", got, want)
	}
}

// A frame declared past the 64 KiB budget is refused before it is read.
func TestGRPCReadBudget(t *testing.T) {
	filler := h2AppendFrame(nil, 0xf0, 0, 0, make([]byte, 16384))
	r := &countingReader{r: bytes.NewReader(grpcAnswer(h2AppendFrame(nil, h2Settings, 0, 0, nil), filler, filler, filler, filler, filler))}
	_, err := readHealthReply(r, io.Discard, false, "use grpcs://")
	if err != errTooMuch || r.n > grpcMaxRead {
		t.Errorf("read %d bytes, then %v; want at most %d bytes and %q", r.n, err, grpcMaxRead, errTooMuch)
	}
}
