package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ppBinary is portpatrol built once for the end-to-end tests, in a directory
// every user can read so that tests can run it unprivileged.
var ppBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portpatrol-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	ppBinary = filepath.Join(dir, "portpatrol")
	// -buildvcs=false: inside a git checkout Go would stamp a pseudo-version
	// unless the user's GOFLAGS say otherwise, and TestHelpAndVersion expects
	// the version of a build that stamps none.
	build := exec.Command("go", "build", "-buildvcs=false", "-o", ppBinary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building portpatrol: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	stopKube()
	os.RemoveAll(dir)
	os.Exit(code)
}

type outcome struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	maxRSS         int64 // KiB
}

// runPortpatrol runs the ppBinary to completion (at most 60 s) with extra
// environment variables.
func runPortpatrol(t *testing.T, env []string, args ...string) outcome {
	t.Helper()
	cmd := exec.Command(ppBinary, args...)
	cmd.Env = append(os.Environ(), env...)
	return runCommand(t, cmd)
}

func runCommand(t *testing.T, cmd *exec.Cmd) outcome {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
	}()
	cmd.Wait()
	close(done)
	o := outcome{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String(), time.Since(start), 0}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		o.maxRSS = ru.Maxrss
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("%s died of %v; stderr:\n%s", cmd.Path, ws.Signal(), o.stderr)
	}
	return o
}

func (o outcome) mustExit(t *testing.T, code int) {
	t.Helper()
	if o.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", o.code, code, o.stdout, o.stderr)
	}
}

// closedPort returns a loopback address where nothing listens (yet).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// tcpServer accepts connections on loopback and hands each to handle,
// closing it when handle returns.
func tcpServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().String()
}

// readRequest reads what a client sent, waiting for its first bytes, then
// until it pauses: a fake that closes afterwards sends a FIN, where closing
// with unread bytes would make the kernel send a reset instead.
func readRequest(c net.Conn) {
	buf := make([]byte, 4096)
	for wait := 5 * time.Second; ; wait = 100 * time.Millisecond {
		c.SetReadDeadline(time.Now().Add(wait))
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// silentServer accepts connections and never answers: every attempt against
// it must end by its own timeout.
func silentServer(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	addr := tcpServer(t, func(net.Conn) { <-done })
	t.Cleanup(func() { close(done) })
	return addr
}

// requirePrivilege skips a test locally but fails it in CI, where every
// prerequisite must be present.
func requirePrivilege(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", why)
	}
	t.Skip(why)
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--tcp.x.address=nonsense", "--help"}} {
		o := runPortpatrol(t, nil, args...)
		o.mustExit(t, 0)
		if !strings.Contains(o.stdout, "Usage:") || o.stderr != "" {
			t.Errorf("%q: help must go to stdout alone; stdout %q, stderr %q", args, o.stdout, o.stderr)
		}
	}
	o := runPortpatrol(t, nil, "--version")
	o.mustExit(t, 0)
	if o.stdout != "portpatrol version dev\n" || o.stderr != "" {
		t.Errorf("--version printed %q / %q", o.stdout, o.stderr)
	}
	// An unknown flag or a stray argument is an error beside them too.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus", "--help"}, "portpatrol: unknown flag --bogus"},
		{[]string{"-h", "--bogus"}, "portpatrol: unknown flag --bogus"},
		{[]string{"--version", "extra"}, `portpatrol: unexpected argument "extra"`},
		{[]string{"--tcp.x.address=127.0.0.1:1", "--tcp.x.adress=h", "--version"}, "tcp targets have no property"},
	} {
		o := runPortpatrol(t, nil, tc.args...)
		if o.code != 2 || o.stdout != "" || !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %s", tc.args, o.code, o.stdout, o.stderr, tc.want)
		}
	}
}

func TestVersionFromLdflags(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "portpatrol")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v1.2.3", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	o := runCommand(t, exec.Command(bin, "--version"))
	if o.stdout != "portpatrol version v1.2.3\n" {
		t.Errorf("--version = %q", o.stdout)
	}
}

// Without a version of its own (-X main.version=dev, as ko.yaml sets when
// VERSION is unset), --version reports what Go stamps from git: the tag at
// a tagged commit, a pseudo-version naming the commit otherwise. The sources
// are committed to a throwaway repository, because Go stamps nothing in a
// git worktree (its .git is a file) and a checkout may be dirty or tagged.
func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	_, err := exec.LookPath("git")
	requirePrivilege(t, err == nil, "git is not installed: Go has no version to stamp")
	repo := t.TempDir()
	sources, _ := filepath.Glob("*.go")
	for _, name := range append(sources, "go.mod", "go.sum") {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=portpatrol test", "-c", "user.email=test@portpatrol.test"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "sources")
	version := func() string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "portpatrol")
		// The release flags; on the command line, they win over any GOFLAGS.
		build := exec.Command("go", "build", "-trimpath", "-buildvcs=auto", "-ldflags=-X main.version=dev", "-o", bin, ".")
		build.Dir = repo
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return runCommand(t, exec.Command(bin, "--version")).stdout
	}
	commit := git("rev-parse", "--short=12", "HEAD")
	if got := version(); !regexp.MustCompile(`^portpatrol version v0\.0\.0-\d{14}-` + commit + `\n$`).MatchString(got) {
		t.Errorf("untagged: --version = %q, want the pseudo-version of commit %s", got, commit)
	}
	git("tag", "v1.2.3")
	if got := version(); got != "portpatrol version v1.2.3\n" {
		t.Errorf("tagged v1.2.3: --version = %q, want the tag", got)
	}
}

func TestStartupErrorsExit2(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil, "--tcp.db.address=localhost:99999", "--http.web.address=ftp://x", "--target.pg.address=x", "--icmp.vm.address=h:1")
	o.mustExit(t, 2)
	for _, want := range []string{
		`portpatrol: --target.pg.address: unknown target type "target"`,
		`portpatrol: --tcp.db.address=localhost:99999: the port must be a number from 1 to 65535`,
		`portpatrol: --http.web.address=ftp://x: want an http:// or https:// URL`,
		`portpatrol: --icmp.vm.address=h:1: want a host alone`,
	} {
		if !strings.Contains(o.stderr, want+"") {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if o.stdout != "" {
		t.Errorf("stdout = %q, want nothing", o.stdout)
	}
	o = runPortpatrol(t, nil)
	o.mustExit(t, 2)
	if !strings.Contains(o.stderr, "no targets") {
		t.Errorf("stderr = %q", o.stderr)
	}
}

func TestAddressForms(t *testing.T) {
	t.Parallel()
	l4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	port := strconv.Itoa(l4.Addr().(*net.TCPAddr).Port)
	args := []string{"--tcp.plain.address=127.0.0.1:" + port, "--tcp.scheme.address=tcp://127.0.0.1:" + port, "--tcp.name.address=localhost:" + port}
	if l6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		defer l6.Close()
		args = append(args, "--tcp.v6.address=[::1]:"+strconv.Itoa(l6.Addr().(*net.TCPAddr).Port))
	} else {
		requirePrivilege(t, false, "no IPv6 loopback: "+err.Error())
	}
	runPortpatrol(t, nil, args...).mustExit(t, 0)
}

func TestTCPPortOpensLate(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	go func() {
		time.Sleep(500 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		time.Sleep(5 * time.Second)
		l.Close()
	}()
	o := runPortpatrol(t, nil, "--tcp.db.address="+addr, "--default-interval=50ms")
	o.mustExit(t, 0)
	if !strings.Contains(o.stderr, `error="connection refused"`) || !strings.Contains(o.stderr, "msg=ready") {
		t.Errorf("stderr does not tell the story:\n%s", o.stderr)
	}
}

func TestHTTPBecomesReady(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	o := runPortpatrol(t, nil, "--http.api.address="+srv.URL+"/health", "--default-interval=20ms")
	o.mustExit(t, 0)
	if !strings.Contains(o.stderr, `error="status 503, want 200"`) || !strings.Contains(o.stderr, "attempts=4") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

func TestHTTPExpectedStatusCodes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		code  int
		codes string
		ready bool
	}{
		{204, "200,204", true},
		{204, "200", false},
		{302, "200,301-302", true},
		{303, "200,301-302", false},
		{404, "400-499", true},
		{500, "200-499", false},
	} {
		o := runPortpatrol(t, nil, fmt.Sprintf("--http.w.address=%s/?code=%d", srv.URL, tc.code),
			"--http.w.expected-status-codes="+tc.codes, "--default-interval=50ms", "--timeout=400ms")
		if tc.ready {
			o.mustExit(t, 0)
		} else {
			o.mustExit(t, 1)
			if want := fmt.Sprintf("status %d, want", tc.code); !strings.Contains(o.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
			}
		}
	}
}

func TestHTTPMethodAndHeadersFromReferences(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "api.env")
	if err := os.WriteFile(keyFile, []byte("API_KEY=k-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(fmt.Sprintf("%s %s|%s|%s", r.Method, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.Header.Get("Content-Type")))
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer t0k3n" || r.Header.Get("X-Api-Key") != "k-123" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	o := runPortpatrol(t, []string{"PP_TOKEN=Bearer t0k3n"},
		"--http.w.address="+srv.URL, "--http.w.method=POST",
		"--http.w.header=Authorization=env:PP_TOKEN",
		"--http.w.header=X-Api-Key=file:"+keyFile+"//API_KEY",
		"--http.w.header=Content-Type=application/json",
		"--timeout=2s")
	o.mustExit(t, 0)
	if g := got.Load(); g != "POST Bearer t0k3n|k-123|application/json" {
		t.Errorf("server saw %q", g)
	}
}

func TestHTTPAddressFromReference(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "app.json")
	if err := os.WriteFile(cfg, []byte(`{"services": [{"url": "`+srv.URL+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	runPortpatrol(t, []string{"PP_CFG_DIR=" + filepath.Dir(cfg)}, "--http.w.address=json:$PP_CFG_DIR/app.json//services.0.url").mustExit(t, 0)

	o := runPortpatrol(t, []string{"PP_ADDR=not a url at all"}, "--http.w.address=env:PP_ADDR")
	o.mustExit(t, 2)
	if !strings.Contains(o.stderr, "--http.w.address=env:PP_ADDR (resolved): want an http:// or https:// URL") || strings.Contains(o.stderr, "not a url at all") {
		t.Errorf("a bad resolved address must be reported without its value:\n%s", o.stderr)
	}
}

func TestHTTPProxyFromEnvironment(t *testing.T) {
	t.Parallel()
	var seen atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.String())
		if r.URL.Host != "backend.portpatrol.test" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer proxy.Close()
	// The target's name does not resolve: only a proxy can make it ready.
	o := runPortpatrol(t, []string{"HTTP_PROXY=" + proxy.URL, "http_proxy=" + proxy.URL, "NO_PROXY=", "no_proxy="},
		"--http.w.address=http://backend.portpatrol.test/health", "--timeout=3s")
	o.mustExit(t, 0)
	if s := seen.Load(); s != "http://backend.portpatrol.test/health" {
		t.Errorf("proxy saw %v", s)
	}
	// NO_PROXY sends it direct, where the name does not resolve.
	o = runPortpatrol(t, []string{"HTTP_PROXY=" + proxy.URL, "http_proxy=" + proxy.URL, "NO_PROXY=portpatrol.test", "no_proxy=portpatrol.test"},
		"--http.w.address=http://backend.portpatrol.test/health", "--timeout=500ms", "--default-interval=100ms")
	o.mustExit(t, 1)
}

func TestMultipleTargetsWaitForTheLast(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	late := closedPort(t)
	go func() {
		time.Sleep(700 * time.Millisecond)
		if l, err := net.Listen("tcp", late); err == nil {
			time.Sleep(5 * time.Second)
			l.Close()
		}
	}()
	o := runPortpatrol(t, nil, "--http.web.address="+srv.URL, "--tcp.db.address="+late, "--default-interval=50ms")
	o.mustExit(t, 0)
	webReady := strings.Index(o.stderr, "msg=ready target=web")
	dbReady := strings.Index(o.stderr, "msg=ready target=db")
	all := strings.Index(o.stderr, `msg="all targets ready" targets=2`)
	if webReady < 0 || dbReady < 0 || all < 0 || !(webReady < dbReady && dbReady < all) {
		t.Errorf("want web ready, then db ready, then all:\n%s", o.stderr)
	}
	if o.elapsed < 600*time.Millisecond {
		t.Errorf("exited after %v, before the last target could be ready", o.elapsed)
	}
}

func TestDeadlineExit1(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	down := closedPort(t)
	o := runPortpatrol(t, nil, "--http.up.address="+srv.URL, "--tcp.down.address="+down, "--default-interval=50ms", "--timeout=600ms")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `level=ERROR msg="not ready" target=down type=tcp address=`+down) ||
		!strings.Contains(o.stderr, `error="connection refused"`) || strings.Contains(o.stderr, `ERROR msg="not ready" target=up`) {
		t.Errorf("the deadline report must name the target that was not ready, and only it:\n%s", o.stderr)
	}
	if !strings.Contains(o.stderr, `msg="timeout passed before every target was ready" timeout=600ms not_ready=1`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// A signal must end the wait while an attempt hangs, with 128 + the signal.
func TestSignalsEndAHangingAttempt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}, {syscall.SIGHUP, 129}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			silent := silentServer(t)
			cmd := exec.Command(ppBinary, "--http.hang.address=http://"+silent, "--http.hang.timeout=60s", "--tcp.hang.address="+closedPort(t), "--tcp.hang.interval=60s")
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, &stderr, `msg=waiting target=hang type=http`)
			time.Sleep(200 * time.Millisecond) // let the attempt reach the silent server
			sent := time.Now()
			cmd.Process.Signal(tc.sig)
			cmd.Wait()
			took := time.Since(sent)
			t.Logf("%v ended the wait after %v", tc.sig, took)
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if want := `msg="stopped before every target was ready" signal=`; !strings.Contains(stderr.String(), want) {
				t.Errorf("no %s line; stderr:\n%s", want, stderr.String())
			}
			// Far below the 60 s the hanging attempt and the interval would take.
			if took > 5*time.Second {
				t.Errorf("took %v to stop", took)
			}
			// Like a deadline, a signal leaves the list of what was not ready.
			for _, want := range []string{
				`level=WARN msg="not ready" target=hang type=http address=http://` + silent + ` attempts=0 error="no attempt finished before the wait ended"`,
				`level=WARN msg="not ready" target=hang type=tcp address=`,
				`attempts=1 error="connection refused"`,
			} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("no %s in stderr:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ready.Close()
	target := "--http.w.address=" + ready.URL

	t.Run("keeps the pid and owns stdout", func(t *testing.T) {
		cmd := exec.Command(ppBinary, target, "--", "sh", "-c", `echo "pid=$$"; echo "args=$0 $1" >&2`, "zero", "one")
		o := runCommand(t, cmd)
		o.mustExit(t, 0)
		if want := fmt.Sprintf("pid=%d\n", cmd.Process.Pid); o.stdout != want {
			t.Errorf("stdout = %q, want %q: the command must replace portpatrol and be all of stdout", o.stdout, want)
		}
		if !strings.Contains(o.stderr, "args=zero one") {
			t.Errorf("arguments were not passed through:\n%s", o.stderr)
		}
	})
	t.Run("passes the exit code through", func(t *testing.T) {
		runPortpatrol(t, nil, target, "--", "sh", "-c", "exit 7").mustExit(t, 7)
	})
	t.Run("not run on deadline", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "ran")
		runPortpatrol(t, nil, "--tcp.down.address="+closedPort(t), "--timeout=300ms", "--", "touch", marker).mustExit(t, 1)
		if _, err := os.Stat(marker); err == nil {
			t.Error("the command ran although the deadline passed")
		}
	})
	t.Run("not found", func(t *testing.T) {
		o := runPortpatrol(t, nil, target, "--", "portpatrol-no-such-command")
		o.mustExit(t, 127)
		if !strings.Contains(o.stderr, `command "portpatrol-no-such-command" not found`) {
			t.Errorf("stderr:\n%s", o.stderr)
		}
		runPortpatrol(t, nil, target, "--", "/nonexistent/bin/tool").mustExit(t, 127)
	})
	t.Run("not executable", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "script.sh")
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		o := runPortpatrol(t, nil, target, "--", script)
		o.mustExit(t, 126)
		if !strings.Contains(o.stderr, "cannot be run: permission denied") {
			t.Errorf("stderr:\n%s", o.stderr)
		}
		runPortpatrol(t, nil, target, "--", t.TempDir()).mustExit(t, 126)
	})
	t.Run("bad interpreter", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "script.sh")
		if err := os.WriteFile(script, []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		o := runPortpatrol(t, nil, target, "--", script)
		o.mustExit(t, 127)
		if !strings.Contains(o.stderr, fmt.Sprintf("command %q cannot be run: its interpreter (the #! line) or loader was not found", script)) {
			t.Errorf("stderr:\n%s", o.stderr)
		}
	})
	t.Run("no #! line", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "script.sh")
		if err := os.WriteFile(script, []byte("echo hello\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		o := runPortpatrol(t, nil, target, "--", script)
		o.mustExit(t, 126)
		if !strings.Contains(o.stderr, fmt.Sprintf("command %q cannot be run: not an executable format (a script needs a #! line)", script)) {
			t.Errorf("stderr:\n%s", o.stderr)
		}
	})
}

func TestStdoutStaysClean(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for _, args := range [][]string{
		{"--http.w.address=" + srv.URL, "--log-level=debug"},
		{"--tcp.w.address=" + closedPort(t), "--timeout=200ms", "--log-level=debug", "--default-interval=10ms"},
		{"--tcp.w.address=nope"},
	} {
		o := runPortpatrol(t, nil, args...)
		if o.stdout != "" {
			t.Errorf("%q wrote to stdout: %q", args, o.stdout)
		}
		if o.stderr == "" {
			t.Errorf("%q wrote nothing to stderr", args)
		}
	}
}

func TestJSONLogs(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	o := runPortpatrol(t, nil, "--log-format=json", "--log-level=debug", "--http.w.address="+srv.URL, "--tcp.down.address="+closedPort(t), "--timeout=300ms", "--default-interval=50ms")
	o.mustExit(t, 1)
	lines := strings.Split(strings.TrimSpace(o.stderr), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d lines:\n%s", len(lines), o.stderr)
	}
	msgs := map[string]bool{}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line is not JSON: %q: %v", line, err)
		}
		for _, key := range []string{"time", "level", "msg"} {
			if _, ok := rec[key]; !ok {
				t.Errorf("line lacks %q: %s", key, line)
			}
		}
		msg, _ := rec["msg"].(string)
		msgs[msg] = true
		if msg == "waiting" || msg == "ready" || msg == "not ready" {
			for _, key := range []string{"target", "type", "address"} {
				if _, ok := rec[key]; !ok {
					t.Errorf("target line lacks %q: %s", key, line)
				}
			}
		}
	}
	for _, m := range []string{"waiting", "ready", "not ready"} {
		if !msgs[m] {
			t.Errorf("no %q line in\n%s", m, o.stderr)
		}
	}
}

func TestLogLevels(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	o := runPortpatrol(t, nil, "--log-level=error", "--http.w.address="+srv.URL)
	o.mustExit(t, 0)
	if o.stderr != "" {
		t.Errorf("--log-level=error printed on success:\n%s", o.stderr)
	}
	o = runPortpatrol(t, nil, "--log-level=warn", "--tcp.w.address="+closedPort(t), "--timeout=300ms", "--default-interval=50ms")
	o.mustExit(t, 1)
	if strings.Contains(o.stderr, "level=INFO") || !strings.Contains(o.stderr, "level=WARN") || !strings.Contains(o.stderr, "level=ERROR") {
		t.Errorf("--log-level=warn:\n%s", o.stderr)
	}
	o = runPortpatrol(t, nil, "--log-level=error", "--tcp.w.address="+closedPort(t), "--timeout=300ms", "--default-interval=50ms")
	if strings.Contains(o.stderr, "level=WARN") || !strings.Contains(o.stderr, "level=ERROR") {
		t.Errorf("--log-level=error on deadline:\n%s", o.stderr)
	}
}

// At info level a target that keeps failing logs its first failure and each
// change of reason; debug shows every attempt.
func TestLogVolume(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n := hits.Add(1); {
		case n <= 30:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	args := []string{"--http.w.address=" + srv.URL, "--default-interval=10ms", "--timeout=2s"}

	info := runPortpatrol(t, nil, args...)
	info.mustExit(t, 1)
	attempts := int(hits.Load())
	if attempts < 60 {
		t.Fatalf("only %d attempts in 2 s at a 10 ms interval", attempts)
	}
	warns := strings.Count(info.stderr, `level=WARN msg="not ready"`)
	if warns != 2 || !strings.Contains(info.stderr, "status 503") || !strings.Contains(info.stderr, "status 500") {
		t.Errorf("%d attempts gave %d warnings, want 2 (first failure and one change):\n%s", attempts, warns, info.stderr)
	}
	if lines := strings.Count(info.stderr, "\n"); lines > 6 {
		t.Errorf("%d lines at info level for %d attempts:\n%s", lines, attempts, info.stderr)
	}

	hits.Store(0)
	debug := runPortpatrol(t, nil, append(args, "--log-level=debug")...)
	attempts = int(hits.Load())
	logged := strings.Count(debug.stderr, `msg="not ready" target=w`) - 1 // less the final report
	if logged < attempts-1 || logged > attempts {
		t.Errorf("debug logged %d failed attempts of %d", logged, attempts)
	}
}

// While the same reason persists, a reminder comes at most every 10 s with
// the attempt count and the time waited.
func TestLogReminder(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 12 s")
	}
	t.Parallel()
	o := runPortpatrol(t, nil, "--tcp.w.address="+closedPort(t), "--default-interval=20ms", "--timeout=12s")
	o.mustExit(t, 1)
	if n := strings.Count(o.stderr, `msg="still not ready"`); n != 1 {
		t.Fatalf("%d reminders in 12 s, want 1:\n%s", n, o.stderr)
	}
	reminder := regexp.MustCompile(`msg="still not ready" target=w type=tcp address=\S+ attempts=\d{3,} elapsed=1[01](\.\d+)?s error="connection refused"`)
	if !reminder.MatchString(o.stderr) {
		t.Errorf("no reminder with attempts, elapsed time and reason:\n%s", o.stderr)
	}
	if lines := strings.Count(o.stderr, "\n"); lines != 5 {
		t.Errorf("%d lines, want 5 (waiting, not ready, still not ready, and the deadline report):\n%s", lines, o.stderr)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the process has logged want.
func waitFor(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if strings.Contains(b.String(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q in\n%s", want, b.String())
}

// A deadline no shorter than one attempt leaves no reason behind; the
// summary then says what to change instead of an empty "no attempt".
func TestDeadlineShorterThanAnAttempt(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil, "--redis.r.address="+silentServer(t), "--timeout=500ms")
	o.mustExit(t, 1)
	want := `attempts=0 error="no attempt finished within --timeout=500ms; give --timeout more than the target's timeout"`
	if !strings.Contains(o.stderr, want) {
		t.Errorf("stderr lacks %s:\n%s", want, o.stderr)
	}
}

// The log lines keep the format of log/slog's text and JSON handlers, which
// portpatrol used before it wrote its own: the same quoting and escaping,
// checked here against slog itself for values a reason can hold, but for
// DEL, which is quoted like every other control character.
func TestLoggerWritesWhatSlogWould(t *testing.T) {
	values := []string{
		"", "plain", "two words", "a=b", `say "hi"`, `back\slash`, "tab\there",
		"line\nforged level=ERROR", "\r", "\x1b[31mred", "\x7f", "\x00", "\xff\xfe",
		"caf\u00e9", "\ufffd", "nbsp\u00a0", "\u2028\u2029", "\u200b", "日本",
		"<html>&amp;", "[hidden]", "cannot resolve xn--bcher-kva.test: no such host",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		values = append(values, string(b))
	}
	// slog's time field differs on purpose (milliseconds in both formats).
	dropTime := func(line string) string {
		_, rest, _ := strings.Cut(line, " ")
		return rest
	}
	for _, v := range values {
		var ours, theirs bytes.Buffer
		newLogger(&options{logLevel: levelDebug}, &ours).with("target", v).Warn(v, "attempt", 3, "error", v)
		slog.New(slog.NewTextHandler(&theirs, nil)).With("target", v).Warn(v, "attempt", 3, "error", v)
		switch {
		case strings.Contains(v, "\x7f"):
			// One difference, on purpose: slog leaves DEL, a control
			// character, unquoted.
			if !strings.Contains(ours.String(), "error="+strconv.Quote(v)+"\n") {
				t.Errorf("text for %q leaves DEL unquoted: %q", v, ours.String())
			}
		case dropTime(ours.String()) != dropTime(theirs.String()):
			t.Errorf("text for %q:\n ours   %q\n slog's %q", v, ours.String(), theirs.String())
		}

		ours.Reset()
		theirs.Reset()
		newLogger(&options{logLevel: levelDebug, logFormat: "json"}, &ours).with("target", v).Warn(v, "attempt", 3, "error", v)
		slog.New(slog.NewJSONHandler(&theirs, nil)).With("target", v).Warn(v, "attempt", 3, "error", v)
		var o, s map[string]any
		if err := json.Unmarshal(ours.Bytes(), &o); err != nil || !strings.HasSuffix(ours.String(), "}\n") || strings.Count(ours.String(), "\n") != 1 {
			t.Fatalf("JSON for %q is not one object on one line: %q (%v)", v, ours.String(), err)
		}
		if err := json.Unmarshal(theirs.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		delete(o, "time")
		delete(s, "time")
		if fmt.Sprint(o) != fmt.Sprint(s) {
			t.Errorf("JSON for %q:\n ours   %q\n slog's %q", v, ours.String(), theirs.String())
		}
	}
}

func TestLoggerLevelsAndTime(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(&options{logLevel: levelWarn}, &out)
	log.Debug("d")
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	got := out.String()
	if strings.Contains(got, "msg=d") || strings.Contains(got, "msg=i") || !strings.Contains(got, "level=WARN msg=w\n") || !strings.Contains(got, "level=ERROR msg=e\n") {
		t.Errorf("at warn:\n%s", got)
	}
	if log.enabled(levelInfo) || !log.enabled(levelWarn) {
		t.Error("enabled disagrees with the level")
	}
	stamp := regexp.MustCompile(`^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) `)
	if !stamp.MatchString(got) {
		t.Errorf("the time is not RFC 3339 with milliseconds: %q", got)
	}
	out.Reset()
	newLogger(&options{logFormat: "json"}, &out).Info("i")
	if !regexp.MustCompile(`^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)","level":"INFO","msg":"i"\}\n$`).MatchString(out.String()) {
		t.Errorf("JSON line: %q", out.String())
	}
	out.Reset()
	tricky := "\u2028\n\x01\u0085\u009b\u202e\x7f\U000E0001é"
	newLogger(&options{logFormat: "json"}, &out).Info(tricky)
	if !strings.Contains(out.String(), `"msg":"\u2028\n\u0001\u0085\u009b\u202e\u007f\udb40\udc01é"`) {
		t.Errorf("characters that are not printable are not all escaped: %q", out.String())
	}
	var rec struct{ Msg string }
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil || rec.Msg != tricky {
		t.Errorf("the escaped message reads back as %q (%v), want %q", rec.Msg, err, tricky)
	}
}

// Lines of targets logging at once never interleave, nor do the pairs
// that with adds to one logger leak into another made from the same parent.
func TestLoggerConcurrentLines(t *testing.T) {
	var out bytes.Buffer // the logger serialises its writes
	root := newLogger(&options{logLevel: levelDebug}, &out).with("run", 1)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := root.with("target", strconv.Itoa(i))
			for range 2000 {
				log.Info("attempt", "n", i)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*2000 {
		t.Fatalf("%d lines, want %d", len(lines), 8*2000)
	}
	line := regexp.MustCompile(`^time=(\S+) level=INFO msg=attempt run=1 target=(\d) n=(\d)$`)
	var last string
	for _, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil || m[2] != m[3] {
			t.Fatalf("mixed or malformed line: %q", l)
		}
		// Same zone, fixed width: the text orders as the times do.
		if m[1] < last {
			t.Fatalf("time goes back from %s to %s", last, m[1])
		}
		last = m[1]
	}
}

// --help and --version that cannot be written are not a success.
func TestHelpAndVersionOnAFullDisk(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	// With --probe, 1: a health check knows 0 and 1 only.
	for _, args := range [][]string{{"--help"}, {"--version"}, {"--probe", "--version"}} {
		cmd := exec.Command(ppBinary, args...)
		cmd.Stdout = full
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		want := 2
		if args[0] == "--probe" {
			want = 1
		}
		if code := cmd.ProcessState.ExitCode(); code != want || !strings.Contains(stderr.String(), `msg="cannot write to stdout" error="write /dev/stdout: no space left on device"`) {
			t.Errorf("%s to /dev/full: exit %d, stderr %q; want exit %d and the reason", args, code, stderr.String(), want)
		}
	}
}
