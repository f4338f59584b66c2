package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsServer serves handle over TLS on loopback with the certificate and
// key given, offering protos by ALPN (none when nil).
func tlsServer(t *testing.T, cert, key string, protos []string, handle func(net.Conn)) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: protos}
	return tcpServer(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		handle(tc)
	})
}

// servingFake is grpcFake's SERVING answer on a connection already open.
func servingFake(c net.Conn) {
	c.Write(h2AppendFrame(nil, h2Settings, 0, 0, nil))
	if !readGRPCRequest(c) {
		return
	}
	c.Write(grpcAnswer(fakeOK, fakeMessage([]byte{8, 1}), fakeTrailers))
	io.Copy(io.Discard, c)
}

// A TLS proxy in front of a gRPC server that does not negotiate h2 by ALPN:
// grpc-go refuses it since 1.67, and so does portpatrol, whatever is behind.
func TestGRPCTLSWithoutALPN(t *testing.T) {
	t.Parallel()
	ca, cert, key := testCertificates(t, t.TempDir())
	backend := grpcFake(t, grpcAnswer(fakeOK, fakeMessage([]byte{8, 1}), fakeTrailers), nil)
	proxy := func(c net.Conn) {
		b, err := net.Dial("tcp", backend)
		if err != nil {
			return
		}
		defer b.Close()
		go io.Copy(b, c)
		io.Copy(c, b)
	}
	noALPN := tlsServer(t, cert, key, nil, proxy)
	withALPN := tlsServer(t, cert, key, []string{"h2"}, proxy)
	err := grpcCheckFor(t, "--grpc.p.address=grpcs://"+noALPN, "--grpc.p.ca-file="+ca, "--grpc.p.timeout=3s").check(context.Background())
	want := "the server, or a proxy in front of it, did not negotiate HTTP/2 (ALPN h2); grpc-go clients since 1.67 refuse it"
	if err == nil || err.Error() != want {
		t.Errorf("without ALPN: %v, want %q", err, want)
	}
	if err := grpcCheckFor(t, "--grpc.p.address=grpcs://"+withALPN, "--grpc.p.ca-file="+ca, "--grpc.p.timeout=3s").check(context.Background()); err != nil {
		t.Errorf("with ALPN h2: %v, want ready", err)
	}
	t.Logf("python3-grpcio 1.51 through the proxy without ALPN: %s", pythonClient(t, noALPN, "TLS_CA="+ca))
	if got := pythonClient(t, withALPN, "TLS_CA="+ca); got != "OK 0801" {
		t.Errorf("python3-grpcio through the proxy with ALPN: %q, want OK 0801", got)
	}
}

// python3-grpcio's secure port on a unix socket: a TLS property (or
// tls=true) makes a unix:// address speak TLS; in clear the reason says how
// to ask for TLS.
func TestGRPCRealPythonTLSOverUnixSocket(t *testing.T) {
	t.Parallel()
	dir := nobodyDir(t)
	ca, cert, key := testCertificates(t, dir)
	sock := filepath.Join(dir, "grpc.sock")
	ready, _ := startPythonGRPC(t, "unix://"+sock, true, "TLS_CERT="+cert, "TLS_KEY="+key)
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		err    string // "" means ready; else a part of the reason
		unseen bool
	}{
		{args: []string{"--grpc.py.ca-file=" + ca}},
		{args: []string{"--grpc.py.tls=true", "--grpc.py.ca-file=" + ca, "--grpc.py.server-name=localhost"}},
		{args: []string{"--grpc.py.skip-tls-verify=true"}},
		{args: []string{"--grpc.py.tls=true"}, err: "certificate signed by unknown authority", unseen: true},
		{args: []string{"--grpc.py.ca-file=" + ca, "--grpc.py.server-name=other.test"}, err: "certificate is valid for", unseen: true},
		{args: nil, err: "set --grpc.py.tls=true if it wants TLS"},
	} {
		args := append([]string{"--grpc.py.address=unix://" + sock, "--grpc.py.timeout=5s"}, tc.args...)
		err := grpcCheckFor(t, args...).check(context.Background())
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.err)
		}
		if _, ok := errors.AsType[unseen](err); ok != tc.unseen {
			t.Errorf("%q: %v, unseen %v, want %v", tc.args, err, ok, tc.unseen)
		}
		t.Logf("%q: %v", tc.args, err)
	}
}

// ca-file replaces the system roots for every type that takes it: with the
// system pool holding CA A (SSL_CERT_FILE) and ca-file naming CA B, a
// server signed by A is not trusted. Inverted, that is no sign of absence.
func TestTLSCAFileReplacesSystemRoots(t *testing.T) {
	t.Parallel()
	caA, certA, keyA := testCertificates(t, t.TempDir())
	caB, _, _ := testCertificates(t, t.TempDir())
	grpcAddr := tlsServer(t, certA, keyA, []string{"h2"}, servingFake)
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	pair, err := tls.LoadX509KeyPair(certA, keyA)
	if err != nil {
		t.Fatal(err)
	}
	web.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	web.StartTLS()
	t.Cleanup(web.Close)
	system := []string{"SSL_CERT_FILE=" + caA, "SSL_CERT_DIR=/nonexistent"}
	targets := []string{"--grpc.g.address=grpcs://" + grpcAddr, "--http.h.address=" + web.URL + "/", "--timeout=1s"}

	// The system pool is CA A: trusted without ca-file.
	runPortpatrol(t, system, targets...).mustExit(t, 0)
	// With ca-file CA B, CA A is trusted no more.
	withB := append(targets, "--grpc.g.ca-file="+caB, "--http.h.ca-file="+caB)
	o := runPortpatrol(t, system, withB...)
	o.mustExit(t, 1)
	if n := strings.Count(o.stderr, "certificate signed by unknown authority"); n < 2 {
		t.Errorf("want both targets to name the unknown authority:\n%s", o.stderr)
	}
	// Inverted, a server we do not trust is still there.
	o = runPortpatrol(t, system, append(withB, "--grpc.g.invert", "--http.h.invert")...)
	o.mustExit(t, 1)
	if strings.Contains(o.stderr, "msg=ready") || strings.Count(o.stderr, "certificate signed by unknown authority") < 2 {
		t.Errorf("inverted: want neither target gone, with the trust failure as the reason:\n%s", o.stderr)
	}
	// ca-file CA A alone, without the system pool, is trusted.
	runPortpatrol(t, []string{"SSL_CERT_FILE=/nonexistent", "SSL_CERT_DIR=/nonexistent"},
		append(targets, "--grpc.g.ca-file="+caA, "--http.h.ca-file="+caA)...).mustExit(t, 0)
}

// A refusal is not an absence: an inverted grpc target against a server
// that answers UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND or
// UNIMPLEMENTED keeps waiting; one that answers UNAVAILABLE is gone.
func TestGRPCInvertRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code, reason string
		exit         int
	}{
		{"16", "UNAUTHENTICATED", 1},
		{"7", "PERMISSION_DENIED", 1},
		{"5", "NOT_FOUND", 1},
		{"12", "UNIMPLEMENTED", 1},
		{"14", "UNAVAILABLE", 0},
	} {
		addr := grpcFake(t, fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", tc.code), nil)
		o := runPortpatrol(t, nil, "--grpc.a.address="+addr, "--grpc.a.invert", "--grpc.a.interval=100ms", "--timeout=700ms")
		o.mustExit(t, tc.exit)
		if !strings.Contains(o.stderr, tc.reason) {
			t.Errorf("%s: stderr lacks the reason:\n%s", tc.reason, o.stderr)
		}
	}
}

// grpcTimeoutOf reads the grpc-timeout our request sent (a literal without
// Huffman coding, as hpackLiteral writes it) from a header block.
func grpcTimeoutOf(block []byte) time.Duration {
	i := bytes.Index(block, []byte("grpc-timeout"))
	if i < 0 || i+13 > len(block) {
		return 0
	}
	v := string(block[i+13 : i+13+int(block[i+12])])
	n, _ := strconv.Atoi(v[:len(v)-1])
	return time.Duration(n) * map[byte]time.Duration{'u': time.Microsecond, 'm': time.Millisecond, 'S': time.Second}[v[len(v)-1]]
}

// A server that gives up at the grpc-timeout we sent, as grpc-go does, or
// that never answers: the attempt reads "no answer within T", and the
// connection still ends with our GOAWAY.
func TestGRPCPastTheDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer []byte // at the grpc-timeout; nil: never
	}{
		{"RST_STREAM CANCEL", h2AppendFrame(nil, h2RSTStream, 0, 1, []byte{0, 0, 0, 8})},
		{"DEADLINE_EXCEEDED", fakeHeaders(true, ":status", "200", "content-type", "application/grpc", "grpc-status", "4")},
		{"silent", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			goaway := make(chan bool, 1)
			addr := tcpServer(t, func(c net.Conn) {
				c.Write(h2AppendFrame(nil, h2Settings, 0, 0, nil))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.ReadFull(c, make([]byte, len(h2Preface)))
				sawGoaway := false
				for {
					var head [9]byte
					if _, err := io.ReadFull(c, head[:]); err != nil {
						break
					}
					payload := make([]byte, int(head[0])<<16|int(head[1])<<8|int(head[2]))
					if _, err := io.ReadFull(c, payload); err != nil {
						break
					}
					switch head[3] {
					case h2Headers:
						if tc.answer != nil {
							time.AfterFunc(grpcTimeoutOf(payload), func() { c.Write(tc.answer) })
						}
					case h2GoAway:
						sawGoaway = true
					}
				}
				goaway <- sawGoaway
			})
			for range 3 {
				err := grpcCheckFor(t, "--grpc.f.address="+addr, "--grpc.f.timeout=300ms").check(context.Background())
				if err == nil || err.Error() != "no answer within 300ms" {
					t.Errorf("check = %v, want no answer within 300ms", err)
				}
				if !<-goaway {
					t.Errorf("the connection ended without a GOAWAY")
				}
			}
		})
	}
}

// The server's DEADLINE_EXCEEDED or RST_STREAM CANCEL once the grpc-timeout
// we sent has passed is our own deadline; before it, or another code, is the
// server's reason.
func TestGRPCGaveUpWithUs(t *testing.T) {
	past, now := time.Now().Add(-time.Second), time.Now()
	for _, tc := range []struct {
		err  error
		sent time.Time
		want bool
	}{
		{grpcStatusError{4, ""}, past, true},
		{h2Reset(8), past, true},
		{grpcStatusError{4, ""}, now, false},
		{h2Reset(8), now, false},
		{grpcStatusError{14, ""}, past, false},
		{h2Reset(7), past, false},
		{grpcStatusError{4, ""}, time.Time{}, false},
	} {
		if got := gaveUpWithUs(tc.err, tc.sent, 500*time.Millisecond); got != tc.want {
			t.Errorf("gaveUpWithUs(%v, sent %v ago) = %v, want %v", tc.err, time.Since(tc.sent).Round(time.Millisecond), got, tc.want)
		}
	}
}

// A grpc target on a unix socket wakes by inotify when the socket appears,
// long before its interval.
func TestGRPCUnixSocketWakes(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "grpc.sock")
	cmd := exec.Command(ppBinary, "--grpc.u.address=unix://"+sock, "--grpc.u.interval=1m", "--timeout=20s")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, stderr, "no socket at "+sock)
	// Bound and listening elsewhere, then renamed into place: the wake
	// comes from the rename. (A socket bound in place wakes the wait at
	// bind, before listen; an attempt then can find it refusing, and the
	// interval is the fallback.)
	l, err := net.Listen("unix", sock+".new")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(sock+".new", sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); servingFake(c) }()
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("not ready 10s after the socket appeared (interval 1m):\n%s", stderr.String())
	}
}

// tls=true and TLS properties on the addresses that allow them, and the
// contradictions refused at start-up.
func TestGRPCTLSProperty(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		tls  bool
		name string // the server name to verify
	}{
		{args: []string{"--grpc.a.address=unix:///run/a.sock", "--grpc.a.skip-tls-verify"}, tls: true, name: "localhost"},
		{args: []string{"--grpc.a.address=unix:///run/a.sock", "--grpc.a.tls=true"}, tls: true, name: "localhost"},
		{args: []string{"--grpc.a.address=unix:run/a.sock", "--grpc.a.server-name=grpc.test"}, tls: true, name: "grpc.test"},
		{args: []string{"--grpc.a.address=unix:///run/a.sock"}},
		{args: []string{"--grpc.a.address=svc:1", "--grpc.a.tls=true"}, tls: true, name: "svc"},
		{args: []string{"--grpc.a.address=dns:///svc:1", "--grpc.a.tls=true"}, tls: true, name: "svc"},
		{args: []string{"--grpc.a.address=GRPCS://svc:1"}, tls: true, name: "svc"},
	} {
		c := grpcCheckFor(t, tc.args...)
		if (c.tls != nil) != tc.tls || c.tls != nil && c.tls.ServerName != tc.name {
			t.Errorf("%q: TLS %v, want %v with server name %q", tc.args, c.tls != nil, tc.tls, tc.name)
		}
		if c.tls != nil && (len(c.tls.NextProtos) != 1 || c.tls.NextProtos[0] != "h2") {
			t.Errorf("%q: ALPN %q, want h2", tc.args, c.tls.NextProtos)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--grpc.a.address=grpcs://svc:1", "--grpc.a.tls=false"}, "--grpc.a.tls=false contradicts grpcs://"},
		{[]string{"--grpc.a.address=unix:///a.sock", "--grpc.a.tls=false", "--grpc.a.skip-tls-verify"}, "--grpc.a.tls=false contradicts the TLS properties set"},
		{[]string{"--grpc.a.address=grpc://svc:1", "--grpc.a.tls=true"}, "--grpc.a.tls=true contradicts grpc://, which is cleartext HTTP/2: use grpcs://"},
		{[]string{"--grpc.a.address=svc:1", "--grpc.a.tls=yes"}, "--grpc.a.tls=yes: want true or false"},
		{[]string{"--grpc.a.address=dns://1.1.1.1/svc:1"}, "a DNS server in the address"},
	} {
		o := runPortpatrol(t, nil, tc.args...)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%q: stderr\n%s\nwant %q", tc.args, o.stderr, tc.want)
		}
	}
}

// A TLS handshake that fails on trust is unseen for every type that goes
// through the shared TLS reasons: a server certificate from another CA, one
// for another name, and a server's alert refusing us a client certificate.
func TestTLSTrustFailuresAreUnseen(t *testing.T) {
	t.Parallel()
	caA, certA, keyA := testCertificates(t, t.TempDir())
	caB, _, _ := testCertificates(t, t.TempDir())
	plain := tlsServer(t, certA, keyA, []string{"h2"}, servingFake)
	// A TLS 1.3 server that wants a client certificate says so with an
	// alert after the handshake, at our first read.
	pair, err := tls.LoadX509KeyPair(certA, keyA)
	if err != nil {
		t.Fatal(err)
	}
	mtls := tcpServer(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2"}, ClientAuth: tls.RequireAnyClientCert})
		if tc.Handshake() == nil {
			servingFake(tc)
		}
	})
	// postgres asks for TLS with SSLRequest first; the server says 'S'.
	pg := tcpServer(t, func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 8)); err != nil {
			return
		}
		c.Write([]byte{'S'})
		tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pair}}).Handshake()
	})
	for _, args := range [][]string{
		{"--grpc.a.address=grpcs://" + plain, "--grpc.a.ca-file=" + caB},
		{"--grpc.a.address=grpcs://" + plain, "--grpc.a.ca-file=" + caA, "--grpc.a.server-name=other.test"},
		{"--grpc.a.address=grpcs://" + mtls, "--grpc.a.ca-file=" + caA},
		{"--http.a.address=https://" + plain + "/", "--http.a.ca-file=" + caB},
		{"--http.a.address=https://" + mtls + "/", "--http.a.ca-file=" + caA},
		{"--redis.a.address=rediss://" + plain, "--redis.a.ca-file=" + caB},
		{"--amqp.a.address=amqps://" + plain, "--amqp.a.ca-file=" + caB},
		{"--mongodb.a.address=mongodb://" + plain + "/?tls=true", "--mongodb.a.ca-file=" + caB},
		// One of several servers would not tell: it may be the ready one.
		{"--mongodb.a.address=mongodb://" + closedPort(t) + "," + plain + "/?tls=true", "--mongodb.a.ca-file=" + caB},
		{"--postgres.a.address=postgres://u:pw@" + pg + "/db?sslmode=verify-full&sslrootcert=" + caB},
	} {
		err := checkerFor(t, append(args, "--"+strings.Split(args[0][2:], ".")[0]+".a.timeout=3s")...).check(context.Background())
		if _, ok := errors.AsType[unseen](err); !ok {
			t.Errorf("%q: %v, want an unseen trust failure", args, err)
		}
		t.Logf("%q: %v", args, err)
	}
}

// python3-grpcio's server compressing its replies with gzip, as grpc-go's
// RPCCompressor does: portpatrol asks with grpc-accept-encoding gzip and
// reads the compressed SERVING.
func TestGRPCRealPythonGzip(t *testing.T) {
	t.Parallel()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	ready, _ := startPythonGRPC(t, addr, true, "GZIP=1")
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// What the server sends, seen through a relay that reads the first DATA
	// frame of stream 1. (The C core sends a reply that gzip would not
	// shrink uncompressed, so the server pads it with an unknown field.)
	flag := make(chan byte, 1)
	relay := tcpServer(t, func(c net.Conn) {
		s, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer s.Close()
		go io.Copy(s, c)
		var frames bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := s.Read(buf)
			frames.Write(buf[:n])
			c.Write(buf[:n])
			if f := firstData(frames.Bytes()); f >= 0 {
				flag <- byte(f)
				io.Copy(c, s)
				return
			}
			if err != nil {
				return
			}
		}
	})
	if err := grpcCheckFor(t, "--grpc.py.address="+relay, "--grpc.py.timeout=5s").check(context.Background()); err != nil {
		t.Errorf("check = %v, want ready", err)
	}
	select {
	case f := <-flag:
		if f != 1 {
			t.Errorf("the reply's compressed-flag is %d, want 1: the server did not compress", f)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no DATA frame passed the relay")
	}
}

// firstData is the first byte of the first DATA frame on stream 1 in b
// (the compressed-flag of the message), or -1 when b does not hold it yet.
func firstData(b []byte) int {
	for len(b) >= 9 {
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if len(b) < 9+n {
			return -1
		}
		if b[3] == h2Data && b[8] == 1 && n > 0 {
			return int(b[9])
		}
		b = b[9+n:]
	}
	return -1
}
