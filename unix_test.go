package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shortDir is a temporary directory with a path short enough for a socket
// (t.TempDir's can pass sun_path's 108 bytes), readable by every user.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unixListener listens on path until the end of the test.
func unixListener(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestUnixSocketPath(t *testing.T) {
	long := "/" + strings.Repeat("a", maxUnixPath-1)
	for _, tc := range []struct{ path, err string }{
		{"/var/run/app.sock", ""},
		{long, ""},
		{long + "a", "is 108 bytes long; Linux allows at most 107"},
		{"", "empty"},
		{"run/app.sock", "must be absolute"},
		{"/run/a\x00b", "NUL"},
	} {
		err := unixSocketPath(tc.path)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("unixSocketPath(%q) = %v, want %q", tc.path, err, tc.err)
		}
	}
}

// The unix address forms of tcp and http's unix-socket: cutUnixScheme, then
// unixSocketPath. A host between unix:// and the path is named as the
// problem, in words that quote no part of the address.
func TestUnixAddress(t *testing.T) {
	for _, tc := range []struct{ address, path, err string }{
		{"unix:///var/run/app.sock", "/var/run/app.sock", ""},
		{"unix:/var/run/app.sock", "/var/run/app.sock", ""},
		{"unix://host/tmp/x.sock", "", "a unix:// address has no host: write unix:///path"},
		{"unix://run/app.sock", "", "a unix:// address has no host: write unix:///path"},
		{"unix://x.sock", "", "a unix:// address has no host: write unix:///path"},
		{"unix:run/app.sock", "", "the unix socket path must be absolute (unix:///path/to.sock)"},
		{"unix://", "", "the unix socket path is empty (want unix:///path/to.sock)"},
	} {
		path, ok := cutUnixScheme(tc.address)
		if !ok {
			t.Errorf("cutUnixScheme(%q): not taken as a unix address", tc.address)
			continue
		}
		got := ""
		if err := unixSocketPath(path); err != nil {
			got = err.Error()
		} else if path != tc.path {
			got = "path " + path
		}
		if want := tc.err; want == "" && got != "" || want != "" && got != want {
			t.Errorf("%q: got %q, want %q (path %q)", tc.address, got, want, tc.path)
		}
	}
}

func TestTCPUnixSocket(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	up := filepath.Join(dir, "up.sock")
	unixListener(t, up)
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	runPortpatrol(t, nil, "--tcp.a.address=unix://"+up, "--tcp.b.address=unix:"+up, "--timeout=5s").mustExit(t, 0)

	for _, tc := range []struct{ address, reason string }{
		{"unix://" + filepath.Join(dir, "missing.sock"), "no socket at " + filepath.Join(dir, "missing.sock")},
		{"unix://" + regular, regular + " is not a socket"},
		{"unix://" + dir, dir + " is not a socket"},
	} {
		o := runPortpatrol(t, nil, "--tcp.s.address="+tc.address, "--timeout=300ms", "--default-interval=50ms")
		o.mustExit(t, 1)
		if !strings.Contains(o.stderr, `error="`+tc.reason+`"`) {
			t.Errorf("%s: want reason %q in\n%s", tc.address, tc.reason, o.stderr)
		}
	}
}

// A socket file nobody listens on any more, as a crashed server leaves.
func TestTCPUnixSocketStale(t *testing.T) {
	t.Parallel()
	stale := filepath.Join(shortDir(t), "stale.sock")
	l := unixListener(t, stale)
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("the socket file should stay: %v", err)
	}
	o := runPortpatrol(t, nil, "--tcp.s.address=unix://"+stale, "--timeout=300ms", "--default-interval=50ms")
	o.mustExit(t, 1)
	if want := `error="connection refused on ` + stale + `"`; !strings.Contains(o.stderr, want) {
		t.Errorf("want %s in\n%s", want, o.stderr)
	}
}

func TestTCPUnixSocketAppearsLate(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(shortDir(t), "late.sock")
	go func() {
		time.Sleep(500 * time.Millisecond)
		if _, err := net.Listen("unix", sock); err != nil {
			t.Error(err)
		}
	}()
	o := runPortpatrol(t, nil, "--tcp.s.address=unix://"+sock, "--default-interval=50ms", "--timeout=10s")
	o.mustExit(t, 0)
	if !strings.Contains(o.stderr, `error="no socket at `+sock+`"`) || !strings.Contains(o.stderr, "msg=ready") {
		t.Errorf("stderr does not tell the story:\n%s", o.stderr)
	}
}

func TestUnixSocketStartupErrors(t *testing.T) {
	t.Parallel()
	long := "/tmp/" + strings.Repeat("x", 110) + ".sock"
	o := runPortpatrol(t, []string{"PP_SOCK_HOST=unix://secrethost/tmp/x.sock", "PP_SOCK_BARE=/tmp/secret.sock"},
		"--tcp.rel.address=unix:run/app.sock", "--tcp.long.address=unix://"+long,
		"--tcp.host.address=unix://host/tmp/x.sock", "--tcp.bare.address=/tmp/u.sock",
		"--tcp.rhost.address=env:PP_SOCK_HOST", "--tcp.rbare.address=env:PP_SOCK_BARE",
		"--http.h.address=http://localhost/", "--http.h.unix-socket=app.sock", "--http.e.address=http://localhost/", "--http.e.unix-socket=env:PP_NO_SUCH_VAR",
		"--http.u.address=http://localhost/", "--http.u.unix-socket=unix://host/tmp/x.sock",
		"--http.r.address=http://localhost/", "--http.r.unix-socket=env:PP_SOCK_HOST")
	o.mustExit(t, 2)
	for _, secret := range []string{"secrethost", "secret.sock"} {
		if strings.Contains(o.stderr, secret) {
			t.Errorf("a resolved address is quoted (%s):\n%s", secret, o.stderr)
		}
	}
	for _, want := range []string{
		"--tcp.rel.address=unix:run/app.sock: the unix socket path must be absolute",
		"--tcp.host.address=unix://host/tmp/x.sock: a unix:// address has no host: write unix:///path",
		"--tcp.bare.address=/tmp/u.sock: a path alone is not an address: write a unix socket as unix:///path",
		"--tcp.rhost.address=env:PP_SOCK_HOST (resolved): a unix:// address has no host: write unix:///path",
		"--tcp.rbare.address=env:PP_SOCK_BARE (resolved): a path alone is not an address: write a unix socket as unix:///path",
		"--http.u.unix-socket=unix://host/tmp/x.sock: a unix:// address has no host: write unix:///path",
		"--http.r.unix-socket=env:PP_SOCK_HOST (resolved): a unix:// address has no host: write unix:///path",
		"--tcp.long.address=unix://" + long + ": the unix socket path is 120 bytes long; Linux allows at most 107",
		"--http.h.unix-socket=app.sock: the unix socket path must be absolute",
		"--http.e.unix-socket: environment variable PP_NO_SUCH_VAR is not set",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
}

// Permission is the kernel's to grant: portpatrol runs as nobody against a
// socket in a directory only root may enter.
func TestUnixSocketPermissionDenied(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := shortDir(t)
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(private, "app.sock")
	unixListener(t, sock)
	cmd := exec.Command(ppBinary, "--tcp.s.address=unix://"+sock, "--http.h.address=http://localhost/", "--http.h.unix-socket="+sock,
		"--timeout=300ms", "--default-interval=50ms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	o := runCommand(t, cmd)
	o.mustExit(t, 1)
	for _, target := range []string{"s", "h"} {
		if want := `target=` + target + ` type=`; !strings.Contains(o.stderr, want) {
			t.Errorf("no line for %s", target)
		}
	}
	if n := strings.Count(o.stderr, `error="permission denied on `+sock+`"`); n < 2 {
		t.Errorf("want permission denied for both targets:\n%s", o.stderr)
	}
}

// unixHTTPServer serves handler on a unix socket; tlsConfig makes it HTTPS.
func unixHTTPServer(t *testing.T, handler http.Handler, tlsConfig *tls.Config) string {
	t.Helper()
	sock := filepath.Join(shortDir(t), "http.sock")
	srv := httptest.NewUnstartedServer(handler)
	srv.Listener.Close()
	srv.Listener = unixListener(t, sock)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	if tlsConfig != nil {
		srv.TLS = tlsConfig
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return sock
}

func TestHTTPUnixSocket(t *testing.T) {
	t.Parallel()
	sock := unixHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A request in a proxy's form names the whole URL.
		if r.Host != "docker" || !strings.HasPrefix(r.RequestURI, "/_ping") || r.Header.Get("X-Token") != "t0k3n" {
			http.Error(w, "wrong request "+r.Host+r.URL.Path, http.StatusTeapot)
			return
		}
		if r.URL.Query().Get("down") != "" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "OK from the socket")
	}), nil)
	base := []string{"--http.d.unix-socket=" + sock, "--http.d.header=X-Token=t0k3n", "--default-interval=50ms"}

	o := runPortpatrol(t, nil, append(base, "--timeout=5s", "--http.d.address=http://docker/_ping", "--http.d.expected-body-regex=^OK from")...)
	o.mustExit(t, 0)
	if want := "address=\"http://docker/_ping via unix://" + sock + "\""; !strings.Contains(o.stderr, want) {
		t.Errorf("logs should name the socket, want %s:\n%s", want, o.stderr)
	}
	// Proxies are for hosts; a socket is reached directly even when one is set.
	env := []string{"HTTP_PROXY=http://127.0.0.1:1", "http_proxy=http://127.0.0.1:1", "NO_PROXY=", "no_proxy="}
	runPortpatrol(t, env, append(base, "--timeout=5s", "--http.d.address=http://docker/_ping")...).mustExit(t, 0)
	// DOCKER_HOST's form, through a reference.
	runPortpatrol(t, []string{"PP_DOCKER_HOST=unix://" + sock}, "--http.d.address=http://docker/_ping", "--http.d.unix-socket=env:PP_DOCKER_HOST",
		"--http.d.header=X-Token=t0k3n", "--timeout=5s").mustExit(t, 0)

	for _, tc := range []struct {
		args   []string
		reason string
	}{
		{[]string{"--http.d.address=http://docker/_ping?down=1"}, "status 503, want 200"},
		{[]string{"--http.d.address=http://other/_ping"}, "status 418, want 200"},
		{[]string{"--http.d.address=http://docker/_ping", "--http.d.expected-body-regex=^nope"}, "status 200, but the body does not match ^nope"},
	} {
		o := runPortpatrol(t, nil, append(append(base, tc.args...), "--timeout=300ms")...)
		o.mustExit(t, 1)
		if !strings.Contains(o.stderr, `error="`+tc.reason+`"`) {
			t.Errorf("%q: want %q in\n%s", tc.args, tc.reason, o.stderr)
		}
	}
}

func TestHTTPUnixSocketMissing(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(shortDir(t), "docker.sock")
	o := runPortpatrol(t, nil, "--http.d.address=http://docker/_ping", "--http.d.unix-socket="+sock, "--timeout=300ms", "--default-interval=50ms")
	o.mustExit(t, 1)
	if want := `error="no socket at ` + sock + `"`; !strings.Contains(o.stderr, want) {
		t.Errorf("want %s in\n%s", want, o.stderr)
	}
	// Read through a reference, the path is not shown.
	o = runPortpatrol(t, []string{"PP_SOCK=" + sock}, "--http.d.address=http://docker/_ping", "--http.d.unix-socket=env:PP_SOCK", "--timeout=300ms", "--log-level=debug")
	o.mustExit(t, 1)
	if strings.Contains(o.stderr, sock) || !strings.Contains(o.stderr, `error="no socket at [hidden]"`) || !strings.Contains(o.stderr, "via env:PP_SOCK") {
		t.Errorf("a referenced socket path must be hidden:\n%s", o.stderr)
	}
}

// HTTPS over a socket verifies the certificate against the URL's host.
func TestHTTPSUnixSocket(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	sock := unixHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		&tls.Config{Certificates: []tls.Certificate{pki.server}})
	runPortpatrol(t, nil, "--http.s.address=https://api.internal/health", "--http.s.unix-socket="+sock,
		"--http.s.ca-file="+pki.caFile, "--timeout=5s").mustExit(t, 0)
	o := runPortpatrol(t, nil, "--http.s.address=https://other.internal/health", "--http.s.unix-socket="+sock,
		"--http.s.ca-file="+pki.caFile, "--timeout=300ms")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "certificate is valid for localhost, api.internal, not other.internal") {
		t.Errorf("the certificate should be checked against the URL's host:\n%s", o.stderr)
	}
	runPortpatrol(t, nil, "--http.s.address=https://other.internal/health", "--http.s.unix-socket="+sock,
		"--http.s.skip-tls-verify", "--timeout=5s").mustExit(t, 0)
}
