package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingHTTP answers every request with status and counts the requests.
func countingHTTP(t *testing.T, status int) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/health", &n
}

// countingTCP accepts and closes connections on loopback and counts them.
func countingTCP(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	addr := tcpServer(t, func(net.Conn) { n.Add(1) })
	return addr, &n
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// A count is read a moment after the exit: the server's accept loop may
// not have run the handler yet.
func wantCount(t *testing.T, what string, n *atomic.Int32, want int32) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	if got := n.Load(); got != want {
		t.Errorf("%s was asked %d times, want %d", what, got, want)
	}
}

func TestProbeHealthyIsSilent(t *testing.T) {
	t.Parallel()
	url, requests := countingHTTP(t, http.StatusOK)
	addr, accepts := countingTCP(t)
	o := runPortpatrol(t, nil, "--probe", "--http.web.address="+url, "--tcp.db.address="+addr)
	o.mustExit(t, 0)
	if o.stdout != "" || o.stderr != "" {
		t.Errorf("a healthy probe printed\nstdout:\n%s\nstderr:\n%s", o.stdout, o.stderr)
	}
	wantCount(t, "the HTTP server", requests, 1)
	wantCount(t, "the TCP server", accepts, 1)
}

// Silence is the default level's: asked for debug lines, a probe says
// which targets were ready, and still asks each once.
func TestProbeDebugSaysReady(t *testing.T) {
	t.Parallel()
	url, requests := countingHTTP(t, http.StatusOK)
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	o := runPortpatrol(t, nil, "--probe", "--log-level=debug", "--http.web.address="+url)
	o.mustExit(t, 0)
	if !strings.Contains(o.stderr, `msg=ready target=web type=http`) || !strings.Contains(o.stderr, `msg="all targets ready" targets=1`) {
		t.Errorf("a healthy probe at debug level does not say so:\n%s", o.stderr)
	}
	wantCount(t, "the HTTP server", requests, 1)
	o = runPortpatrol(t, nil, "--probe", "--log-level=debug", "--http.web.address="+url, "--tcp.db.address="+dead)
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `msg=ready target=web`) || !strings.Contains(o.stderr, `msg="not ready" target=db`) || strings.Contains(o.stderr, "all targets ready") {
		t.Errorf("an unhealthy probe at debug level: want web ready and db not ready:\n%s", o.stderr)
	}
}

// One line per unhealthy target, each asked once, and nothing about the
// healthy one.
func TestProbeUnhealthyOneLineEach(t *testing.T) {
	t.Parallel()
	url, requests := countingHTTP(t, http.StatusServiceUnavailable)
	addr, accepts := countingTCP(t)
	refused := closedPort(t)
	o := runPortpatrol(t, nil, "--probe", "--http.web.address="+url, "--tcp.db.address="+refused, "--tcp.ok.address="+addr)
	o.mustExit(t, 1)
	got := lines(o.stderr)
	if len(got) != 2 || o.stdout != "" {
		t.Fatalf("want two lines on stderr, one per unhealthy target; stdout:\n%s\nstderr:\n%s", o.stdout, o.stderr)
	}
	for _, want := range []string{"target=web type=http", "target=db type=tcp"} {
		found := false
		for _, l := range got {
			if strings.Contains(l, want) && strings.Contains(l, `msg="not ready"`) {
				found = true
				if want == "target=web type=http" && !strings.Contains(l, "503") {
					t.Errorf("the 503 target's line lacks the status: %s", l)
				}
				if want == "target=db type=tcp" && !strings.Contains(l, "connection refused") {
					t.Errorf("the refused target's line lacks the reason: %s", l)
				}
			}
		}
		if !found {
			t.Errorf("no line with %s:\n%s", want, o.stderr)
		}
	}
	if strings.Contains(o.stderr, "target=ok") {
		t.Errorf("the healthy target is mentioned:\n%s", o.stderr)
	}
	wantCount(t, "the 503 server", requests, 1)
	wantCount(t, "the healthy TCP server", accepts, 1)
}

// Docker reserves exit 2 for HEALTHCHECK commands: a probe that cannot
// start says why on stderr and exits 1.
func TestProbeStartupErrorExitsOne(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad address", []string{"--tcp.db.address=nohostport"}, "--tcp.db.address=nohostport"},
		{"unknown flag", []string{"--tcp.db.address=127.0.0.1:1", "--intervall=1s"}, "unknown flag --intervall"},
		{"no targets", nil, "no targets"},
		{"a command", []string{"--tcp.db.address=127.0.0.1:1", "--", "true"}, "--probe with a command after --"},
		{"not a boolean", []string{"--probe=maybe", "--tcp.db.address=127.0.0.1:1"}, "--probe=maybe"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--probe"}, c.args...)
			if c.name == "not a boolean" {
				args = c.args
			}
			o := runPortpatrol(t, nil, args...)
			o.mustExit(t, 1)
			if !strings.Contains(o.stderr, c.want) {
				t.Errorf("stderr lacks %q:\n%s", c.want, o.stderr)
			}
		})
	}
	// The same error without --probe keeps its exit code 2.
	runPortpatrol(t, nil, "--tcp.db.address=nohostport").mustExit(t, 2)
}

// The initContainer's arguments serve the probe: retry settings are
// accepted and do not apply.
func TestProbeIgnoresRetrySettings(t *testing.T) {
	t.Parallel()
	up, upRequests := countingHTTP(t, http.StatusOK)
	down, downRequests := countingHTTP(t, http.StatusServiceUnavailable)
	o := runPortpatrol(t, nil, "--probe",
		"--default-interval=3s", "--default-backoff=exponential", "--default-max-interval=10s",
		"--default-max-attempts=5", "--default-success-threshold=3",
		"--http.up.address="+up, "--http.up.success-threshold=4", "--http.up.interval=5s",
		"--http.down.address="+down, "--http.down.max-attempts=10", "--http.down.interval=4s")
	o.mustExit(t, 1)
	if got := lines(o.stderr); len(got) != 1 || !strings.Contains(got[0], "target=down") {
		t.Errorf("want one line, for down:\n%s", o.stderr)
	}
	if o.elapsed > 2*time.Second {
		t.Errorf("the probe took %v: it paused or retried", o.elapsed)
	}
	wantCount(t, "the healthy server", upRequests, 1)
	wantCount(t, "the 503 server", downRequests, 1)
}

func TestProbeInvert(t *testing.T) {
	t.Parallel()
	gone := closedPort(t)
	o := runPortpatrol(t, nil, "--probe", "--tcp.old.address="+gone, "--tcp.old.invert")
	o.mustExit(t, 0)
	if o.stderr != "" {
		t.Errorf("stderr:\n%s", o.stderr)
	}
	addr, accepts := countingTCP(t)
	o = runPortpatrol(t, nil, "--probe", "--tcp.old.address="+addr, "--tcp.old.invert")
	o.mustExit(t, 1)
	if got := lines(o.stderr); len(got) != 1 || !strings.Contains(got[0], "still accepts connections") {
		t.Errorf("want one line saying the target is still there:\n%s", o.stderr)
	}
	wantCount(t, "the TCP server", accepts, 1)
}

func TestProbeJSON(t *testing.T) {
	t.Parallel()
	url, _ := countingHTTP(t, http.StatusServiceUnavailable)
	refused := closedPort(t)
	o := runPortpatrol(t, nil, "--probe", "--log-format=json", "--http.web.address="+url, "--tcp.db.address="+refused)
	o.mustExit(t, 1)
	got := lines(o.stderr)
	if len(got) != 2 {
		t.Fatalf("want two lines:\n%s", o.stderr)
	}
	targets := map[string]string{}
	for _, l := range got {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("not JSON: %s: %v", l, err)
		}
		if line["level"] != "ERROR" || line["msg"] != "not ready" {
			t.Errorf("line %s: want level ERROR, msg not ready", l)
		}
		target, _ := line["target"].(string)
		targets[target], _ = line["error"].(string)
	}
	if !strings.Contains(targets["web"], "503") || !strings.Contains(targets["db"], "connection refused") {
		t.Errorf("reasons by target: %q", targets)
	}

	o = runPortpatrol(t, nil, "--probe", "--log-format=json", "--tcp.db.address=nohostport")
	o.mustExit(t, 1)
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(o.stderr)), &line); err != nil || line["msg"] != "invalid configuration" {
		t.Errorf("start-up error in JSON: %v\n%s", err, o.stderr)
	}
}

// A server that accepts and never answers: the attempt ends by its own
// timeout, and --timeout bounds the whole probe when it is shorter.
func TestProbeSilentServer(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	addr := tcpServer(t, func(net.Conn) { <-hold })
	o := runPortpatrol(t, nil, "--probe", "--http.web.address=http://"+addr+"/", "--http.web.timeout=300ms")
	o.mustExit(t, 1)
	if o.elapsed < 300*time.Millisecond || o.elapsed > 2*time.Second {
		t.Errorf("the probe took %v, want about the attempt's 300ms", o.elapsed)
	}
	if got := lines(o.stderr); len(got) != 1 || !strings.Contains(got[0], "target=web") {
		t.Errorf("want one line for web:\n%s", o.stderr)
	}

	o = runPortpatrol(t, nil, "--probe", "--timeout=300ms", "--http.web.address=http://"+addr+"/", "--http.web.timeout=10s")
	o.mustExit(t, 1)
	if o.elapsed < 300*time.Millisecond || o.elapsed > 2*time.Second {
		t.Errorf("the probe took %v, want about --timeout's 300ms", o.elapsed)
	}
	if got := lines(o.stderr); len(got) != 1 || !strings.Contains(got[0], "no attempt finished within --timeout=300ms") {
		t.Errorf("want one line for web, naming --timeout:\n%s", o.stderr)
	}
}

// A probe starts no watch: the Kubernetes target lists its object once and
// asks for no watch, although the server would answer one.
func TestProbeStartsNoWatch(t *testing.T) {
	t.Parallel()
	fake := &fakeKube{watch: true, change: make(chan struct{}, 1)}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	kc := writeTestKubeconfig(t, t.TempDir(), srv.URL, "token: x")
	o := runPortpatrol(t, nil, "--probe", "--k8s.m.address=job/m", "--k8s.m.kubeconfig="+kc)
	o.mustExit(t, 1)
	if got := lines(o.stderr); len(got) != 1 || !strings.Contains(got[0], "job/m: not found yet") {
		t.Errorf("want one line, job/m not found yet:\n%s", o.stderr)
	}
	time.Sleep(100 * time.Millisecond) // a request in flight at the exit
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.lists != 1 || len(fake.seen) != 1 {
		t.Errorf("requests %q: want one list and no watch", fake.seen)
	}
}

// A success that carries a note (a missing object taken as ready) is a
// success for a probe too, and a healthy probe stays silent.
func TestProbeIfMissingReady(t *testing.T) {
	t.Parallel()
	fake := &fakeKube{watch: true, change: make(chan struct{}, 1)}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	kc := writeTestKubeconfig(t, t.TempDir(), srv.URL, "token: x")
	o := runPortpatrol(t, nil, "--probe", "--k8s.m.address=job/m", "--k8s.m.if-missing=ready", "--k8s.m.kubeconfig="+kc)
	o.mustExit(t, 0)
	if o.stdout+o.stderr != "" {
		t.Errorf("a healthy probe printed:\n%s%s", o.stdout, o.stderr)
	}
}

// A probe's lines hide secrets as the wait's do: a password in the URL and
// a header value, in the report and in a start-up error.
func TestProbeHidesSecrets(t *testing.T) {
	t.Parallel()
	url, requests := countingHTTP(t, http.StatusServiceUnavailable)
	url = strings.Replace(url, "http://", "http://app:s3cretpw@", 1)
	args := []string{"--probe", "--http.web.address=" + url, "--http.web.header=Authorization=Bearer tok3nvalue"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{args, `msg="not ready"`},
		{append(args, "--http.web.timeout=soon"), "--http.web.timeout=soon"},
	} {
		o := runPortpatrol(t, nil, c.args...)
		o.mustExit(t, 1)
		if !strings.Contains(o.stderr, c.want) {
			t.Errorf("stderr lacks %q:\n%s", c.want, o.stderr)
		}
		for _, secret := range []string{"s3cretpw", "tok3nvalue"} {
			if strings.Contains(o.stdout+o.stderr, secret) {
				t.Errorf("output shows %s:\n%s%s", secret, o.stdout, o.stderr)
			}
		}
	}
	wantCount(t, "the 503 server", requests, 1)
}
