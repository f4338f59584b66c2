package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseArgsRetryDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want retry // of target x
	}{
		{"built-in defaults", nil,
			retry{exponential: false, maxInterval: 30 * time.Second, maxAttempts: 0, successThreshold: 1}},
		{"own values",
			[]string{"--tcp.x.backoff=exponential", "--tcp.x.max-interval=5s", "--tcp.x.max-attempts=7", "--tcp.x.success-threshold=3"},
			retry{exponential: true, maxInterval: 5 * time.Second, maxAttempts: 7, successThreshold: 3}},
		// Globals apply to targets without their own values, wherever they stand.
		{"globals after the target",
			[]string{"--default-backoff=exponential", "--default-max-interval=1m", "--default-max-attempts=4", "--default-success-threshold=2"},
			retry{exponential: true, maxInterval: time.Minute, maxAttempts: 4, successThreshold: 2}},
		{"own values beat globals",
			[]string{"--default-backoff=exponential", "--tcp.x.backoff=constant", "--default-max-attempts=4", "--tcp.x.max-attempts=0",
				"--default-success-threshold=2", "--tcp.x.success-threshold=1"},
			retry{exponential: false, maxInterval: 30 * time.Second, maxAttempts: 0, successThreshold: 1}},
		{"backoff in any case", []string{"--tcp.x.backoff=Exponential"},
			retry{exponential: true, maxInterval: 30 * time.Second, successThreshold: 1}},
		// The built-in cap yields to a longer interval rather than failing.
		{"default cap below a long interval", []string{"--tcp.x.interval=2m"},
			retry{maxInterval: 2 * time.Minute, successThreshold: 1}},
		{"cap equal to the interval", []string{"--tcp.x.backoff=exponential", "--tcp.x.interval=3s", "--tcp.x.max-interval=3s"},
			retry{exponential: true, maxInterval: 3 * time.Second, successThreshold: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--tcp.x.address=h:1"}, tc.args...)
			opts, err := parseArgs(args)
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", args, err)
			}
			if got := opts.targets[0].retry; got != tc.want {
				t.Errorf("parseArgs(%q): retry = %+v, want %+v", args, got, tc.want)
			}
		})
	}
}

// Every bad value is a start-up error naming the flag, the value and what
// would be right.
func TestParseArgsRetryErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown backoff", []string{"--tcp.x.backoff=linear"}, "--tcp.x.backoff=linear: want constant or exponential"},
		{"unknown default backoff", []string{"--default-backoff=Linear"}, "--default-backoff=Linear: want constant or exponential"},
		{"cap without exponential backoff", []string{"--tcp.x.max-interval=5s"},
			"--tcp.x.max-interval=5s: only an exponential backoff has a cap; add --tcp.x.backoff=exponential"},
		{"cap with constant backoff", []string{"--default-backoff=exponential", "--tcp.x.backoff=constant", "--tcp.x.max-interval=5s"},
			"--tcp.x.max-interval=5s: only an exponential backoff has a cap"},
		{"cap below own interval", []string{"--tcp.x.backoff=exponential", "--tcp.x.interval=2s", "--tcp.x.max-interval=1s"},
			"--tcp.x.max-interval=1s: below --tcp.x.interval=2s; the cap must be at least the interval"},
		{"cap below default interval", []string{"--default-backoff=exponential", "--default-interval=5s", "--tcp.x.max-interval=1s"},
			"--tcp.x.max-interval=1s: below --default-interval=5s"},
		{"default cap below own interval", []string{"--tcp.x.backoff=exponential", "--tcp.x.interval=5s", "--default-max-interval=2s"},
			"--default-max-interval=2s: below --tcp.x.interval=5s; the cap must be at least the interval (set --tcp.x.max-interval)"},
		{"default cap below default interval", []string{"--default-backoff=exponential", "--default-max-interval=1s", "--default-interval=3s"},
			"--default-max-interval=1s: below --default-interval=3s"},
		// The default cap, as a target's own, is an error where it caps nothing.
		{"default cap with constant backoff", []string{"--default-max-interval=1m"},
			"--default-max-interval=1m0s: only an exponential backoff has a cap, and no target backs off exponentially without its own max-interval; add --default-backoff=exponential"},
		{"default cap below own interval with constant backoff", []string{"--tcp.x.interval=5s", "--default-max-interval=2s"},
			"--default-max-interval=2s: only an exponential backoff has a cap"},
		{"default cap where every target has its own", []string{"--default-backoff=exponential", "--tcp.x.max-interval=5s", "--default-max-interval=1m"},
			"--default-max-interval=1m0s: only an exponential backoff has a cap"},
		{"zero cap", []string{"--tcp.x.max-interval=0s"}, "--tcp.x.max-interval=0s: must be greater than zero"},
		{"bad cap", []string{"--default-max-interval=later"}, "--default-max-interval=later: not a duration"},
		{"negative attempts", []string{"--tcp.x.max-attempts=-1"}, "--tcp.x.max-attempts=-1: must not be negative (0: never give up)"},
		{"negative default attempts", []string{"--default-max-attempts=-3"}, "--default-max-attempts=-3: must not be negative"},
		{"attempts not a number", []string{"--tcp.x.max-attempts=5x"}, "--tcp.x.max-attempts=5x: not a whole number"},
		{"attempts too large", []string{"--tcp.x.max-attempts=99999999999999999999"}, "--tcp.x.max-attempts=99999999999999999999: too large"},
		{"threshold zero", []string{"--tcp.x.success-threshold=0"}, "--tcp.x.success-threshold=0: must be at least 1"},
		{"default threshold zero", []string{"--default-success-threshold=0"}, "--default-success-threshold=0: must be at least 1"},
		{"threshold negative", []string{"--tcp.x.success-threshold=-2"}, "--tcp.x.success-threshold=-2: must be at least 1"},
		{"threshold not a number", []string{"--tcp.x.success-threshold=three"}, "--tcp.x.success-threshold=three: not a whole number"},
		{"repeated", []string{"--tcp.x.backoff=constant", "--tcp.x.backoff=exponential"}, "--tcp.x.backoff is given more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--tcp.x.address=h:1"}, tc.args...)
			_, err := parseArgs(args)
			if err == nil {
				t.Fatalf("parseArgs(%q) succeeded, want an error containing %q", args, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n%s\ndoes not contain %q", err, tc.want)
			}
		})
	}
}

// A global cap below the global interval is one problem, reported once.
func TestParseArgsDefaultCapReportedOnce(t *testing.T) {
	_, err := parseArgs([]string{"--default-backoff=exponential", "--default-max-interval=1s", "--tcp.a.address=h:1", "--tcp.b.address=h:1"})
	if err == nil {
		t.Fatal("want an error")
	}
	if n := strings.Count(err.Error(), "--default-max-interval=1s"); n != 1 {
		t.Errorf("reported %d times, want once:\n%s", n, err)
	}
}

// The pause doubles per failure in a row from the interval, stops at the
// cap, and varies by up to ±10 % around both, spread over that whole range.
func TestPause(t *testing.T) {
	exp := target{interval: 50 * time.Millisecond, retry: retry{exponential: true, maxInterval: 400 * time.Millisecond}}
	for streak, base := range map[int]time.Duration{1: 50, 2: 100, 3: 200, 4: 400, 5: 400, 60: 400, 1000: 400} {
		base *= time.Millisecond
		lo, hi := base-base/10, base+base/10
		var below, above int
		for range 2000 {
			d := exp.pause(streak)
			if d < lo || d > hi {
				t.Fatalf("pause(%d) = %v, want %v ± 10%%", streak, d, base)
			}
			if d < base-base/20 {
				below++
			}
			if d > base+base/20 {
				above++
			}
		}
		// Uniform jitter puts a quarter on each outer half of the range.
		if below < 300 || above < 300 {
			t.Errorf("pause(%d): of 2000 pauses %d are below %v-5%% and %d above +5%%, want about 500 each", streak, below, base, above)
		}
	}
	huge := target{interval: time.Hour, retry: retry{exponential: true, maxInterval: math.MaxInt64}}
	if d := huge.pause(100); d < math.MaxInt64/10*8 || d <= 0 {
		t.Errorf("pause near the largest cap = %v: overflowed", d)
	}
	constant := target{interval: 70 * time.Millisecond, retry: retry{maxInterval: time.Second}}
	for _, streak := range []int{1, 2, 10} {
		if d := constant.pause(streak); d != 70*time.Millisecond {
			t.Errorf("constant pause(%d) = %v, want the interval exactly", streak, d)
		}
	}
}

// recorder is an HTTP server that answers each request with the status
// code status(n) for the n-th request (from 1) and records when each came.
type recorder struct {
	*httptest.Server
	mu    sync.Mutex
	times []time.Time
}

func newRecorder(t *testing.T, status func(n int) int) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		r.times = append(r.times, time.Now())
		n := len(r.times)
		r.mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.times)
}

func always(code int) func(int) int { return func(int) int { return code } }

// jsonRecords decodes the lines of --log-format=json output.
func jsonRecords(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// pausesLogged maps each attempt of target name to the next_attempt_in
// logged after it.
func pausesLogged(t *testing.T, recs []map[string]any, name string) map[int]time.Duration {
	t.Helper()
	pauses := map[int]time.Duration{}
	for _, rec := range recs {
		next, ok := rec["next_attempt_in"].(string)
		if !ok || rec["target"] != name {
			continue
		}
		d, err := time.ParseDuration(next)
		if err != nil {
			t.Fatalf("next_attempt_in=%q: %v", next, err)
		}
		pauses[int(rec["attempt"].(float64))] = d
	}
	return pauses
}

func within(d, base time.Duration, frac float64) bool {
	slack := time.Duration(float64(base) * frac)
	return d >= base-slack-time.Millisecond && d <= base+slack+time.Millisecond // the log rounds to 0.1 ms
}

// An exponential target's attempts, as the server sees them, come after
// pauses that double from the interval and stop at the cap, each varied
// by at most ±10 %; the debug log names each pause.
func TestExponentialBackoffTiming(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, always(http.StatusServiceUnavailable))
	o := runPortpatrol(t, nil, "--http.w.address="+srv.URL, "--http.w.backoff=exponential",
		"--http.w.interval=50ms", "--http.w.max-interval=400ms", "--http.w.max-attempts=8",
		"--log-level=debug", "--log-format=json", "--timeout=30s")
	o.mustExit(t, 1)
	times := srv.requests()
	if len(times) != 8 {
		t.Fatalf("the server saw %d requests, want 8 (max-attempts)", len(times))
	}
	pauses := pausesLogged(t, jsonRecords(t, o.stderr), "w")
	want := []time.Duration{50, 100, 200, 400, 400, 400, 400} // ms, after attempts 1..7
	for i, base := range want {
		base *= time.Millisecond
		attempt := i + 1
		pause, ok := pauses[attempt]
		if !ok {
			t.Fatalf("no next_attempt_in after attempt %d:\n%s", attempt, o.stderr)
		}
		if !within(pause, base, 0.10) {
			t.Errorf("pause after attempt %d = %v, want %v ± 10%%", attempt, pause, base)
		}
		// The server sees at least the pause between two requests; more
		// by the time an attempt takes and scheduling, but never a doubled
		// pause once the cap is reached.
		gap := times[attempt].Sub(times[attempt-1])
		if gap < pause-2*time.Millisecond || gap > pause+150*time.Millisecond {
			t.Errorf("requests %d and %d came %v apart, want the logged pause %v (plus at most 150ms)", attempt, attempt+1, gap, pause)
		}
	}
	if _, ok := pauses[8]; ok {
		t.Errorf("a pause was logged after the last attempt, which gave up")
	}
}

// A change of reason does not reset the backoff; a success does, and the
// pause after a success (on the way to success-threshold) is the interval.
func TestBackoffResets(t *testing.T) {
	t.Parallel()
	script := []int{503, 503, 500, 200, 503, 503, 200, 200}
	srv := newRecorder(t, func(n int) int { return script[min(n, len(script))-1] })
	o := runPortpatrol(t, nil, "--http.w.address="+srv.URL, "--http.w.expected-status-codes=200",
		"--default-backoff=exponential", "--default-interval=20ms", "--http.w.success-threshold=2",
		"--log-level=debug", "--log-format=json", "--timeout=30s")
	o.mustExit(t, 0)
	pauses := pausesLogged(t, jsonRecords(t, o.stderr), "w")
	times := srv.requests()
	if len(times) != len(script) {
		t.Fatalf("%d requests, want %d", len(times), len(script))
	}
	for attempt, base := range map[int]time.Duration{1: 20, 2: 40, 3: 80, 4: 20, 5: 20, 6: 40, 7: 20} {
		base *= time.Millisecond
		pause := pauses[attempt]
		if !within(pause, base, 0.10) {
			t.Errorf("pause after attempt %d (status %d) = %v, want %v ± 10%%", attempt, script[attempt-1], pause, base)
		}
		// And the pause logged is the pause taken.
		if gap := times[attempt].Sub(times[attempt-1]); gap < pause-2*time.Millisecond || gap > pause+150*time.Millisecond {
			t.Errorf("requests %d and %d came %v apart, want the logged pause %v (plus at most 150ms)", attempt, attempt+1, gap, pause)
		}
	}
	if !strings.Contains(o.stderr, `"msg":"ready after 2 successes","target":"w","type":"http"`) {
		t.Errorf("no ready line after 2 successes:\n%s", o.stderr)
	}
}

// With --timeout, a long exponential pause is cut short by the deadline.
func TestDeadlineCutsAPause(t *testing.T) {
	t.Parallel()
	// Attempts at 0 s and 1 s; the next pause (2 s) would run to 3 s.
	o := runPortpatrol(t, nil, "--tcp.w.address="+closedPort(t), "--tcp.w.backoff=exponential", "--tcp.w.interval=1s", "--timeout=1500ms")
	o.mustExit(t, 1)
	if o.elapsed < 1500*time.Millisecond || o.elapsed > 2500*time.Millisecond {
		t.Errorf("exited after %v, want soon after the 1.5s deadline", o.elapsed)
	}
	if !strings.Contains(o.stderr, "attempts=2") || !strings.Contains(o.stderr, `msg="timeout passed before every target was ready" timeout=1.5s`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// The interval runs from the end of an attempt: a slow attempt does not
// eat into the pause after it.
func TestIntervalFromEndOfAttempt(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		time.Sleep(150 * time.Millisecond)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	o := runPortpatrol(t, nil, "--http.w.address="+srv.URL, "--http.w.interval=100ms", "--http.w.max-attempts=4")
	o.mustExit(t, 1)
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 4 {
		t.Fatalf("%d requests, want 4", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 248*time.Millisecond {
			t.Errorf("requests %d and %d came %v apart, want the 150ms answer plus the 100ms interval", i, i+1, gap)
		}
	}
}

// max-attempts ends the run at once, with exit 1 and the deadline report,
// although other targets are still waiting and --timeout is far off. Each
// target gets its own limit: the global one, or its own (0: unlimited).
func TestMaxAttemptsGivesUp(t *testing.T) {
	t.Parallel()
	busy := newRecorder(t, always(http.StatusServiceUnavailable))
	slow := newRecorder(t, always(http.StatusServiceUnavailable))
	o := runPortpatrol(t, nil,
		"--http.busy.address="+busy.URL, "--http.busy.max-attempts=5", "--http.busy.interval=100ms",
		"--http.slow.address="+slow.URL, "--http.slow.interval=10s",
		// Would give up after 3 attempts at 10 ms, long before busy, if
		// --default-max-attempts applied to it.
		"--tcp.refused.address="+closedPort(t), "--tcp.refused.interval=10ms", "--tcp.refused.max-attempts=0",
		"--default-max-attempts=3", "--timeout=30s")
	o.mustExit(t, 1)
	if n := len(busy.requests()); n != 5 {
		t.Errorf("busy saw %d requests, want exactly 5", n)
	}
	if n := len(slow.requests()); n != 1 {
		t.Errorf("slow saw %d requests, want 1 (it was still waiting)", n)
	}
	if o.elapsed > 10*time.Second {
		t.Errorf("exited after %v: it should not wait for the others", o.elapsed)
	}
	for _, want := range []string{
		`level=ERROR msg="not ready" target=busy type=http address=` + busy.URL + ` attempts=5 error="status 503, want 200"`,
		`level=ERROR msg="not ready" target=slow type=http address=` + slow.URL + ` attempts=1 error="status 503, want 200"`,
		`level=ERROR msg="not ready" target=refused type=tcp`,
		`level=ERROR msg="gave up on http target busy after 5 failed attempts" not_ready=3`,
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if strings.Contains(o.stderr, "timeout passed") {
		t.Errorf("the report blames the timeout:\n%s", o.stderr)
	}

	// The global limit alone.
	busy2 := newRecorder(t, always(http.StatusServiceUnavailable))
	o = runPortpatrol(t, nil, "--http.b.address="+busy2.URL, "--default-interval=10ms", "--default-max-attempts=3")
	o.mustExit(t, 1)
	if n := len(busy2.requests()); n != 3 || !strings.Contains(o.stderr, `msg="gave up on http target b after 3 failed attempts"`) {
		t.Errorf("--default-max-attempts=3: %d requests\n%s", n, o.stderr)
	}

	// Only failures count: successes short of success-threshold do not.
	flapping := newRecorder(t, func(n int) int { return []int{503, 200}[(n-1)%2] })
	o = runPortpatrol(t, nil, "--http.f.address="+flapping.URL, "--default-interval=10ms", "--http.f.max-attempts=3", "--http.f.success-threshold=2")
	o.mustExit(t, 1)
	if n := len(flapping.requests()); n != 5 || !strings.Contains(o.stderr, `attempts=5 error="status 503, want 200"`) ||
		!strings.Contains(o.stderr, `msg="gave up on http target f after 3 failed attempts"`) {
		t.Errorf("flapping with max-attempts=3: %d requests, want 5 (3 failures)\n%s", n, o.stderr)
	}
}

// A flapping server is not ready with success-threshold=3 until it stays up
// for three attempts in a row.
func TestSuccessThreshold(t *testing.T) {
	t.Parallel()
	// Up and down in turn for ten requests, then up for good.
	flapping := func(n int) int {
		if n <= 10 && n%2 == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	srv := newRecorder(t, flapping)
	o := runPortpatrol(t, nil, "--http.w.address="+srv.URL, "--http.w.success-threshold=3", "--default-interval=20ms", "--timeout=30s")
	o.mustExit(t, 0)
	if n := len(srv.requests()); n != 13 {
		t.Errorf("%d requests, want 13 (ten flapping, three up)", n)
	}
	if !strings.Contains(o.stderr, `msg="ready after 3 successes" target=w type=http address=`+srv.URL+` attempts=13`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
	// The flapping is one reason at info level, not a line per flap.
	if n := strings.Count(o.stderr, `msg="not ready"`); n != 1 {
		t.Errorf("%d not-ready lines at info, want 1:\n%s", n, o.stderr)
	}

	// Never up twice in a row: never ready; the report says how far it got.
	srv = newRecorder(t, func(n int) int { return flapping(n%10 + 1) })
	o = runPortpatrol(t, nil, "--http.w.address="+srv.URL, "--http.w.success-threshold=2", "--default-interval=20ms", "--timeout=600ms")
	o.mustExit(t, 1)
	if n := len(srv.requests()); n < 6 {
		t.Errorf("only %d requests", n)
	}
	report := regexp.MustCompile(`level=ERROR msg="not ready" target=w type=http address=\S+ attempts=\d+ error="(1 of 2 successes in a row|status 503, want 200)"`)
	if !report.MatchString(o.stderr) {
		t.Errorf("the report lacks the last reason:\n%s", o.stderr)
	}
}

// A thousand targets with exponential backoff, started together, do not
// retry in step: the jitter spreads both the pauses and the attempts.
func TestThousandTargetsSpread(t *testing.T) {
	t.Parallel()
	const n = 1000
	args := []string{"--default-backoff=exponential", "--default-interval=100ms", "--log-level=debug", "--log-format=json", "--timeout=2500ms"}
	refused := closedPort(t)
	for i := range n {
		args = append(args, fmt.Sprintf("--tcp.t%d.address=%s", i, refused))
	}
	o := runPortpatrol(t, nil, args...)
	o.mustExit(t, 1)

	// Per target: when it ended its first and fifth attempt, and the four
	// pauses it chose in between (100, 200, 400 and 800 ms, each ±10 %).
	first, fifth := map[string]time.Time{}, map[string]time.Time{}
	planned := map[string]float64{} // ms
	var fourth []float64            // the pause after the fourth attempt, ms
	for _, rec := range jsonRecords(t, o.stderr) {
		attempt, ok := rec["attempt"].(float64)
		if !ok {
			continue
		}
		name := rec["target"].(string)
		at, err := time.Parse(time.RFC3339Nano, rec["time"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if next, ok := rec["next_attempt_in"].(string); ok && attempt <= 4 {
			d, err := time.ParseDuration(next)
			if err != nil {
				t.Fatal(err)
			}
			ms := float64(d) / float64(time.Millisecond)
			planned[name] += ms
			if attempt == 4 {
				fourth = append(fourth, ms)
			}
		}
		switch attempt {
		case 1:
			first[name] = at
		case 5:
			fifth[name] = at
		}
	}
	var spans, sums []float64
	for name, end := range fifth {
		spans = append(spans, float64(end.Sub(first[name]))/float64(time.Millisecond))
		sums = append(sums, planned[name])
	}
	if len(spans) < n*9/10 || len(fourth) < n*9/10 {
		t.Fatalf("only %d targets reached a fifth attempt and %d a fourth pause", len(spans), len(fourth))
	}

	// The pauses: uniform within ±80 ms of 800 ms, a standard deviation of 46 ms.
	pMean, pSD := meanSD(fourth)
	if slices.Min(fourth) < 719 || slices.Max(fourth) > 881 || pSD < 30 || pSD > 60 {
		t.Errorf("pauses after the fourth failure: %v–%v ms, mean %.0f, sd %.1f; want 720–880 ms with sd near 46",
			slices.Min(fourth), slices.Max(fourth), pMean, pSD)
	}
	// The attempts follow them: the time from a target's first to its
	// fifth attempt is the sum of its four pauses (1.5 s, sd 53 ms) plus the
	// time the attempts and the scheduler took, never less. On a busy
	// machine that time spreads targets too, so the test asks that the
	// pauses explain a fair share of the spread, not all of it: without
	// jitter the sums are all equal and explain none.
	sMean, sSD := meanSD(spans)
	sumMean, sumSD := meanSD(sums)
	r := correlation(spans, sums)
	var early int
	for i := range spans {
		if spans[i] < sums[i]-1 {
			early++
		}
	}
	if early > 0 || sumSD < 35 || !(r > 0.3) {
		t.Errorf("first to fifth attempt: mean %.0f ms, sd %.1f; planned pauses: mean %.0f ms, sd %.1f; correlation %.2f, %d early; "+
			"want the pauses (sd near 53 ms) to drive the spread (correlation above 0.3) and no attempt before its pause",
			sMean, sSD, sumMean, sumSD, r, early)
	}
	t.Logf("pause after the fourth failure: mean %.0f ms, sd %.1f; first to fifth attempt: mean %.0f ms, sd %.1f; planned: sd %.1f; correlation %.2f; densest 20 ms of fifth attempts: %d of %d",
		pMean, pSD, sMean, sSD, sumSD, r, densest(fifth, 20*time.Millisecond), len(fifth))
}

// densest is the largest number of times within any window of width w.
func densest(at map[string]time.Time, w time.Duration) int {
	var ts []time.Time
	for _, t := range at {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i, j := 0, 0; j < len(ts); j++ {
		for ts[j].Sub(ts[i]) > w {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

func correlation(xs, ys []float64) float64 {
	mx, sx := meanSD(xs)
	my, sy := meanSD(ys)
	var c float64
	for i := range xs {
		c += (xs[i] - mx) * (ys[i] - my)
	}
	return c / float64(len(xs)) / (sx * sy)
}

func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)))
}
