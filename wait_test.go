package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// drip writes prefix, then one byte every 50 ms until the peer leaves.
func drip(prefix string) func(net.Conn) {
	return func(c net.Conn) {
		io.Copy(io.Discard, io.LimitReader(c, 0))
		if _, err := io.WriteString(c, prefix); err != nil {
			return
		}
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}
}

// Every hostile peer fails attempts by their timeout (or at once), and a
// signal still ends the process promptly in the middle of such an attempt.
func TestHostilePeers(t *testing.T) {
	t.Parallel()
	silent := silentServer(t)
	for _, tc := range []struct {
		name   string
		args   []string
		reason string
	}{
		{"accepts and never answers", []string{"--http.h.address=http://" + silent}, "no answer within 300ms"},
		{"never completes the TLS handshake", []string{"--http.h.address=https://" + silent}, "no answer within 300ms"},
		{"drips its headers", []string{"--http.h.address=http://" + tcpServer(t, func(c net.Conn) {
			readRequest(c)
			drip("HTTP/1.1 200 OK\r\nX-Slow: ")(c)
		})}, "no answer within 300ms"},
		{"drips an endless body", []string{"--http.h.expected-body-regex=never", "--http.h.address=http://" + tcpServer(t, func(c net.Conn) {
			readRequest(c)
			drip("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")(c)
		})}, "reading the body failed: no answer within 300ms"},
		{"closes in the middle of the headers", []string{"--http.h.address=http://" + tcpServer(t, func(c net.Conn) {
			readRequest(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
		})}, "the server sent a malformed header line"},
		{"answers with garbage", []string{"--http.h.address=http://" + tcpServer(t, func(c net.Conn) {
			readRequest(c)
			io.WriteString(c, "\x16\x03\x01 this is not HTTP\r\n\r\n")
		})}, "the server's reply is not HTTP"},
		{"redirects in a loop", []string{"--http.h.address=http://" + tcpServer(t, func(c net.Conn) {
			readRequest(c)
			io.WriteString(c, "HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n")
		})}, "redirect loop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--http.h.timeout=300ms", "--default-interval=10ms"}, tc.args...)
			cmd := exec.Command(ppBinary, args...)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, &stderr, tc.reason)
			time.Sleep(150 * time.Millisecond) // most likely inside the next attempt now
			sent := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			if took := time.Since(sent); took > 2*time.Second || cmd.ProcessState.ExitCode() != 143 {
				t.Errorf("SIGTERM: exit %d after %v, want 143 promptly\n%s", cmd.ProcessState.ExitCode(), took, stderr.String())
			}
		})
	}
}

// openFDs counts the descriptors a process holds.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// Thousands of failed attempts leave no descriptor behind in the process.
func TestLongWaitKeepsDescriptorsFlat(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	// Several targets of each kind at the shortest interval allowed, 10ms,
	// make thousands of attempts in the few seconds watched.
	args := []string{"--log-level=debug", "--default-interval=10ms", "--timeout=4s"}
	for i := range 5 {
		args = append(args, fmt.Sprintf("--tcp.refused%d.address=%s", i, closedPort(t)), fmt.Sprintf("--http.busy%d.address=%s", i, srv.URL))
	}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		ns := newNetns(t)
		setSysctl(t, ns, "net/ipv4/icmp_echo_ignore_all", "1")
		// The namespace has its own loopback: the HTTP server is out of reach
		// there, so it runs outside and ICMP inside, in two processes.
		icmpArgs := []string{"netns", "exec", ns, ppBinary, "--log-level=debug", "--default-interval=10ms", "--timeout=4s"}
		for i := range 5 {
			icmpArgs = append(icmpArgs, fmt.Sprintf("--icmp.silent%d.address=127.0.0.1", i), fmt.Sprintf("--icmp.silent%d.read-timeout=1ms", i))
		}
		icmpCmd := exec.Command("ip", icmpArgs...)
		checkFlat(t, icmpCmd, "icmp", 1000, 5)
	} else {
		requirePrivilege(t, false, "ICMP in a silent namespace needs root")
	}
	cmd = exec.Command(ppBinary, args...)
	checkFlat(t, cmd, "tcp+http", 2000, 10)
}

// checkFlat watches the descriptors of cmd, whose targets may each hold one
// socket at the moment of a sample.
func checkFlat(t *testing.T, cmd *exec.Cmd, what string, minAttempts, targets int) {
	t.Helper()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	early := openFDs(t, cmd.Process.Pid)
	time.Sleep(2500 * time.Millisecond)
	late := openFDs(t, cmd.Process.Pid)
	cmd.Wait()
	attempts := strings.Count(stderr.String(), `msg="not ready"`)
	t.Logf("%s: %d failed attempts; %d descriptors after 1 s, %d after 3.5 s", what, attempts, early, late)
	if attempts < minAttempts {
		t.Errorf("%s: only %d attempts", what, attempts)
	}
	if late > early+targets {
		t.Errorf("%s: descriptors grew from %d to %d", what, early, late)
	}
}

// Each checker leaves no goroutine and no descriptor behind after thousands
// of failed attempts.
func TestAttemptsLeaveNothingBehind(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	checkers := map[string]checker{
		"tcp":  tcpCheck{address: closedPort(t), timeout: time.Second},
		"http": httpCheckFor(t, "--http.w.address="+srv.URL),
	}
	for name, c := range checkers {
		c.check(context.Background()) // warm up lazily started runtime goroutines
		fds, goroutines := openFDs(t, os.Getpid()), runtime.NumGoroutine()
		for range 3000 {
			if err := c.check(context.Background()); err == nil {
				t.Fatalf("%s: the attempt succeeded", name)
			}
		}
		// Transport goroutines of the last connections, and the test server's
		// side of them, may need a moment to close on a loaded machine.
		deadline := time.Now().Add(2 * time.Second)
		for (runtime.NumGoroutine() > goroutines || openFDs(t, os.Getpid()) > fds) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if g := runtime.NumGoroutine(); g > goroutines {
			t.Errorf("%s: goroutines grew from %d to %d over 3000 attempts", name, goroutines, g)
		}
		if f := openFDs(t, os.Getpid()); f > fds {
			t.Errorf("%s: descriptors grew from %d to %d over 3000 attempts", name, fds, f)
		}
	}
}

// 1000 targets in one process become ready together.
func TestThousandTargets(t *testing.T) {
	t.Parallel()
	addr := tcpServer(t, func(net.Conn) {})
	args := []string{"--timeout=20s"}
	for i := range 1000 {
		args = append(args, fmt.Sprintf("--tcp.t%d.address=%s", i, addr))
	}
	o := runPortpatrol(t, nil, args...)
	o.mustExit(t, 0)
	if n := strings.Count(o.stderr, "msg=ready"); n != 1000 || !strings.Contains(o.stderr, `msg="all targets ready" targets=1000`) {
		t.Errorf("%d targets reported ready", n)
	}
	t.Logf("1000 targets ready in %v, peak RSS %d KiB", o.elapsed, o.maxRSS)
}

func TestConceal(t *testing.T) {
	for _, tc := range []struct {
		msg    string
		pieces []string
		want   string
	}{
		{"cannot resolve db.example: no such host", []string{"db.example"}, "cannot resolve [hidden]: no such host"},
		// A one-letter host stays out of the words it happens to be part of.
		{"no answer within 1s", []string{"a"}, "no answer within 1s"},
		{"dbx refused db", []string{"db"}, "dbx refused [hidden]"},
		// Longest first: the whole URL goes, not just its host.
		{"redirect loop: http://h:81/p-1?t=2 was already requested", []string{"h", "http://h:81/p-1?t=2", "/p-1"},
			"redirect loop: [hidden] was already requested"},
		{"redirect loop: http://h:81/p-1 was already requested", []string{"h:81", "/p-1"},
			"redirect loop: http://[hidden][hidden] was already requested"},
		{"x509: certificate is valid for a.test, not vhost.test", []string{"vhost.test", "vhost"},
			"x509: certificate is valid for a.test, not [hidden]"},
		{"status 503, want 200", []string{"", "20"}, "status 503, want 200"},
		{"nothing to hide", nil, "nothing to hide"},
	} {
		if got := newHidden(tc.pieces...).conceal(tc.msg); got != tc.want {
			t.Errorf("conceal(%q, %q) = %q, want %q", tc.msg, tc.pieces, got, tc.want)
		}
	}
}

// passedDeadline is a wait whose deadline has passed while its own timer has
// not fired yet: the moment when an attempt, timed to the same deadline, has
// already given up.
// Its Done closes a little later, as the lagging timer would.
type passedDeadline struct {
	context.Context
	done <-chan time.Time
}

func (passedDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }
func (p passedDeadline) Done() <-chan struct{} {
	c := make(chan struct{})
	go func() { <-p.done; close(c) }()
	return c
}

type failingChecker struct{}

func (failingChecker) check(context.Context) error { return errors.New("no answer within 1s") }

// An attempt that ends after the wait did is not a reason: it is neither
// logged nor kept as the target's last word.
func TestAttemptAtTheDeadlineSaysNothing(t *testing.T) {
	var logs bytes.Buffer
	log := newLogger(&options{logLevel: levelDebug}, &logs)
	tg := target{name: "db", kind: "tcp", interval: time.Second, checker: failingChecker{}}
	st := &progress{}
	if tg.wait(passedDeadline{context.Background(), time.After(50 * time.Millisecond)}, log, st) {
		t.Fatal("wait reported ready")
	}
	if st.lastErr != "" || strings.Contains(logs.String(), "not ready") {
		t.Errorf("an attempt that ended at the deadline was reported: last error %q, logs:\n%s", st.lastErr, logs.String())
	}
}

// stuckChecker's attempts never end on their own: a server that accepts and
// stays silent under a long timeout.
type stuckChecker struct{ release <-chan struct{} }

func (c stuckChecker) check(context.Context) error { <-c.release; return errors.New("released") }

// The end of the wait ends it at once, however long the pause or the attempt
// a target is in, whether it comes while the targets pause or before the
// first pause begins. Targets are not interrupted: waitAll leaves them.
func TestEndOfWaitDoesNotWaitForTargets(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	for _, after := range []time.Duration{0, time.Millisecond, 50 * time.Millisecond} {
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(after, func() { cancel(errDeadline) })
		targets := []target{
			{name: "pausing", kind: "tcp", interval: time.Hour, checker: failingChecker{}},
			{name: "trying", kind: "tcp", interval: time.Second, checker: stuckChecker{release}},
		}
		type result struct {
			left []notReady
			why  error
		}
		done := make(chan result)
		go func() {
			left, why := waitAll(ctx, targets, newLogger(&options{logLevel: levelError}, io.Discard))
			done <- result{left, why}
		}()
		select {
		case r := <-done:
			if len(r.left) != 2 || r.why != errDeadline {
				t.Errorf("ended after %v: %d targets left, cause %v; want both, %v", after, len(r.left), r.why, errDeadline)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ended after %v: waitAll still waiting 10s later", after)
		}
	}
}

func TestRoundDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0ms"},
		{3 * time.Microsecond, "0ms"},
		{457177 * time.Nanosecond, "0.46ms"},
		{999 * time.Microsecond, "1ms"},
		{13449 * time.Microsecond, "13.4ms"},
		{16021 * time.Millisecond, "16.02s"},
		{65 * time.Second, "1m5s"},
	} {
		if got := roundDuration(c.d); got != c.want {
			t.Errorf("roundDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestGaveUpNamesTypeAndCounts(t *testing.T) {
	tg := target{name: "db", kind: "postgres"}
	for _, c := range []struct {
		failures int
		want     string
	}{
		{1, "gave up on postgres target db after 1 failed attempt"},
		{5, "gave up on postgres target db after 5 failed attempts"},
	} {
		if got := (gaveUp{tg, c.failures, ""}).Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

// wakingChecker fails until ready is set; its changes channel is fed by the
// test, as inotify or a watch would feed it.
type wakingChecker struct {
	ready    *atomic.Bool
	attempts *atomic.Int32
	changed  chan struct{}
}

func (c wakingChecker) check(context.Context) error {
	c.attempts.Add(1)
	if c.ready.Load() {
		return nil
	}
	return errors.New("not yet")
}

func (c wakingChecker) changes() <-chan struct{} { return c.changed }

// A change ends the pause at once, an hour-long interval notwithstanding;
// a checker that never wakes is still retried at its interval.
func TestChangeEndsThePause(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		wake     bool
	}{
		{"woken", time.Hour, true},
		{"never woken, polled", 20 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wakingChecker{new(atomic.Bool), new(atomic.Int32), make(chan struct{}, 1)}
			targets := []target{{name: "w", kind: "file", interval: tc.interval, retry: retry{successThreshold: 1}, checker: c}}
			done := make(chan []notReady)
			go func() {
				left, _ := waitAll(context.Background(), targets, newLogger(&options{logLevel: levelError}, io.Discard))
				done <- left
			}()
			for c.attempts.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // well into the pause
			c.ready.Store(true)
			if tc.wake {
				c.changed <- struct{}{}
			}
			select {
			case left := <-done:
				if len(left) != 0 {
					t.Errorf("left %v, want none", left)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("not ready 10s after the change (%d attempts)", c.attempts.Load())
			}
		})
	}
}

// A storm of changes cannot start attempts more often than every
// minWakeGap: the loop must not spin.
func TestChangeStormIsBounded(t *testing.T) {
	c := wakingChecker{new(atomic.Bool), new(atomic.Int32), make(chan struct{}, 1)}
	targets := []target{{name: "w", kind: "file", interval: time.Hour, retry: retry{successThreshold: 1}, checker: c}}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case c.changed <- struct{}{}:
			default:
			}
			runtime.Gosched()
		}
	}()
	ctx, cancel := context.WithCancelCause(context.Background())
	go waitAll(ctx, targets, newLogger(&options{logLevel: levelError}, io.Discard))
	const span = 300 * time.Millisecond
	time.Sleep(span)
	n := c.attempts.Load()
	close(stop)
	cancel(errDeadline)
	if limit := int32(span/minWakeGap) + 2; n > limit {
		t.Errorf("%d attempts in %v of constant changes, want at most %d", n, span, limit)
	}
	if n < 2 {
		t.Errorf("%d attempts in %v of constant changes with an hour's interval: changes did not wake the target", n, span)
	}
}

// blindChecker is up on a reply that cannot see further.
type blindChecker struct{ note string }

func (c blindChecker) check(context.Context) error { return blind(c) }

// isReady is what the wait loop counts as a success: no error, or a blind one.
func isReady(err error) bool {
	_, ok := err.(blind)
	return err == nil || ok
}

// A target up on a reply that cannot see further is ready, and says so at
// debug level only, with its note and without a hidden value.
func TestBlindSuccessIsReadyWithADebugNote(t *testing.T) {
	for _, level := range []logLevel{levelDebug, levelInfo} {
		var out bytes.Buffer
		targets := []target{{name: "t", kind: "tcp", interval: time.Hour, retry: retry{successThreshold: 1},
			checker: blindChecker{"asked for a password by s3cret-host"}, hidden: newHidden("s3cret-host")}}
		left, why := waitAll(context.Background(), targets, newLogger(&options{logLevel: level}, &out))
		if len(left) != 0 || why != nil {
			t.Fatalf("level %v: %d targets left (%v), want ready", level, len(left), why)
		}
		log := out.String()
		note := `note="asked for a password by [hidden]"`
		if level == levelDebug && !strings.Contains(log, `msg="up, but the check cannot see further"`) || level == levelDebug != strings.Contains(log, note) {
			t.Errorf("level %v: log\n%s\nwant the note %s at debug level only", level, log, note)
		}
		if strings.Contains(log, "s3cret-host") || !strings.Contains(log, "msg=ready") {
			t.Errorf("level %v: log\n%s", level, log)
		}
	}
}

// A blind success is a success for an inverted target too: the server is
// still there, so it is not gone.
func TestInvertedBlindSuccessIsStillThere(t *testing.T) {
	targets := []target{{name: "b", kind: "postgres", address: "db:5432", interval: 10 * time.Millisecond,
		retry: retry{successThreshold: 1, maxAttempts: 3}, invert: true, stillReady: "still accepts connections", checker: blindChecker{"asks for a password"}}}
	left, why := waitAll(context.Background(), targets, newLogger(&options{logLevel: levelError}, io.Discard))
	if len(left) != 1 || left[0].lastErr != "db:5432 still accepts connections" {
		t.Fatalf("left %+v (%v), want the target given up as still there", left, why)
	}
}

// finalChecker's target reached a state it will not leave.
type finalChecker struct{}

func (finalChecker) check(context.Context) error {
	return finalError{errors.New("job/migrate: failed: BackoffLimitExceeded")}
}

// A target that failed for good is given up at its first failure, whatever
// its max-attempts, and the others are not waited for.
func TestFinalErrorGivesUpAtOnce(t *testing.T) {
	targets := []target{
		{name: "migrate", kind: "k8s", interval: time.Hour, checker: finalChecker{}},
		{name: "other", kind: "tcp", interval: time.Hour, checker: failingChecker{}},
	}
	done := make(chan error)
	go func() {
		_, why := waitAll(context.Background(), targets, newLogger(&options{logLevel: levelError}, io.Discard))
		done <- why
	}()
	select {
	case why := <-done:
		want := "gave up on k8s target migrate: job/migrate: failed: BackoffLimitExceeded"
		if g, ok := why.(gaveUp); !ok || why.Error() != want || g.final == "" {
			t.Errorf("why = %v, want %q", why, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting after 10s: the failed target was retried")
	}
}
