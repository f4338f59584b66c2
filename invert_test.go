package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// An old server that stops listening after three connections: the inverted
// target is not ready while it accepts, and ready on the first attempt after
// it closed.
func TestInvertListenerCloses(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			if accepted.Add(1) == 3 {
				l.Close()
				return
			}
		}
	}()
	o := runPortpatrol(t, nil, "--tcp.old.address="+addr, "--tcp.old.invert", "--tcp.old.interval=50ms", "--log-format=json", "--timeout=30s")
	o.mustExit(t, 0)
	var waiting, still, ready map[string]any
	for _, rec := range jsonRecords(t, o.stderr) {
		switch rec["msg"] {
		case "waiting":
			waiting = rec
		case "not ready":
			still = rec
		case "ready":
			ready = rec
		}
	}
	if waiting["invert"] != "true" || ready == nil || ready["invert"] != "true" || ready["seen"] != "connection refused" {
		t.Errorf("the waiting and ready lines do not show invert and what was seen:\n%s", o.stderr)
	}
	if still == nil || still["error"] != addr+" still accepts connections" {
		t.Errorf("the reason while waiting:\n%s", o.stderr)
	}
	// Every attempt but the last was accepted; one more may have reached
	// the listen queue just before the close, and still counts as there.
	attempts, n := int(ready["attempts"].(float64)), int(accepted.Load())
	if attempts != n+1 && attempts != n+2 {
		t.Errorf("ready at attempt %d after %d accepted: want the first attempt after the close", attempts, n)
	}
}

// A lock file that is removed.
func TestInvertFileRemoved(t *testing.T) {
	t.Parallel()
	lock := filepath.Join(t.TempDir(), "migration.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, exited := startPortpatrolUntil(t, `error="`+lock+` still exists"`, "--file.lock.address="+lock, "--file.lock.invert", "--file.lock.interval=50ms", "--timeout=30s")
	os.Remove(lock)
	if err := <-exited; err != nil || !strings.Contains(out.String(), "msg=ready target=lock") {
		t.Errorf("%v:\n%s", err, out.String())
	}
}

// A target that keeps answering is never gone: the deadline ends the wait,
// with the reason it was still there; max-attempts and success-threshold
// count the same way as without invert.
func TestInvertKeepsAnswering(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, always(http.StatusOK))
	o := runPortpatrol(t, nil, "--http.old.address="+srv.URL, "--http.old.invert", "--default-interval=50ms", "--timeout=1s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `level=ERROR msg="not ready" target=old type=http address=`+srv.URL) ||
		!strings.Contains(o.stderr, `error="`+srv.URL+` still answers as expected"`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}

	o = runPortpatrol(t, nil, "--http.old.address="+srv.URL, "--http.old.invert", "--http.old.max-attempts=3", "--default-interval=20ms", "--timeout=30s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "gave up on http target old after 3 failed attempts") {
		t.Errorf("max-attempts:\n%s", o.stderr)
	}

	// Gone and back in turn for ten requests, then gone for good: two gone
	// in a row first come at requests 10 and 11.
	srv = newRecorder(t, func(n int) int {
		if n <= 10 && n%2 == 1 {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	o = runPortpatrol(t, nil, "--http.old.address="+srv.URL, "--http.old.invert", "--http.old.success-threshold=2", "--default-interval=20ms", "--timeout=30s")
	o.mustExit(t, 0)
	if n := len(srv.requests()); n != 11 || !strings.Contains(o.stderr, `msg="ready after 2 successes" target=old type=http address=`+srv.URL+` attempts=11 elapsed=`) {
		t.Errorf("%d requests, want 11:\n%s", n, o.stderr)
	}
}

// Start-up errors are not "gone": an inverted target with a bad address or
// a bad invert value is a configuration error.
func TestInvertStartupErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tcp.old.address=127.0.0.1", "--tcp.old.invert"}, "--tcp.old.address=127.0.0.1: "},
		{[]string{"--tcp.old.address=127.0.0.1:1", "--tcp.old.invert=maybe"}, "--tcp.old.invert=maybe: want true or false"},
		{[]string{"--tcp.old.address=127.0.0.1:1", "--default-invert"}, "--default-invert"},
	} {
		o := runPortpatrol(t, nil, tc.args...)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%q: stderr lacks %q:\n%s", tc.args, tc.want, o.stderr)
		}
	}
}

// signalWriter collects output and closes seen once it holds want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.seen != nil && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
		w.seen = nil
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startPortpatrolUntil starts portpatrol and returns once its output holds
// want, so that the test changes the target only after portpatrol saw it
// there; exited receives how it ended (the --timeout given bounds it).
func startPortpatrolUntil(t *testing.T, want string, args ...string) (*signalWriter, <-chan error) {
	t.Helper()
	seen := make(chan struct{})
	out := &signalWriter{want: want, seen: seen}
	cmd := exec.Command(ppBinary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-seen:
	case err := <-exited:
		t.Fatalf("portpatrol ended (%v) before its output held %q:\n%s", err, want, out.String())
	}
	return out, exited
}

// A real PostgreSQL stopped with pg_ctl stop: the inverted postgres target
// waits while the server accepts, and is ready once it stops: refusing
// connections, or already rejecting them as it shuts down.
func TestInvertPostgresStopped(t *testing.T) {
	t.Parallel()
	primary, _ := newPGServers(t)
	primary.start(t)
	// A server still starting up (57P03) is not ready, so inverted it
	// would count as gone: wait until it is ready first.
	runPortpatrol(t, nil, "--postgres.db.address="+primary.addr(), "--timeout=60s").mustExit(t, 0)
	out, exited := startPortpatrolUntil(t, primary.addr()+" still accepts connections",
		"--postgres.old.address="+primary.addr(), "--postgres.old.invert", "--postgres.old.interval=100ms", "--timeout=60s")
	primary.tool(t, "pg_ctl", "stop", "-D", primary.data, "-m", "fast")
	if err := <-exited; err != nil {
		t.Fatalf("portpatrol: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "msg=ready target=old type=postgres address="+primary.addr()) ||
		!regexp.MustCompile(`invert=true seen="(connection refused|.*shutting down \(SQLSTATE 57P03\))"`).MatchString(out.String()) {
		t.Errorf("stderr:\n%s", out.String())
	}
}
