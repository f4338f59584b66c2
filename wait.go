package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// checker makes one attempt at a target. It must return by its own timeout,
// or earlier when ctx ends, and its error should read as the reason the
// target is not ready.
type checker interface {
	check(ctx context.Context) error
}

// waker is a checker whose target can say when it may have changed (a file
// appeared, a watched object was written), so that the pause after a failed
// attempt ends then rather than at the interval. The interval stays the
// fallback: a waker that never wakes is polled as any other checker.
type waker interface {
	checker
	// changes is called once per run, before the first attempt. The
	// channel receives when the target may have changed; a send must not
	// block (a buffer of one, sent to with select and default), so a burst
	// of changes reads as one.
	changes() <-chan struct{}
}

// blind is a success that could not see everything: a checker returns it
// (as an error, so that it carries its note) when the server answered as a
// ready one does but the answer hides what a login would show, such as
// NOAUTH or a password request. The wait counts it as a success and logs
// the note at debug level.
type blind struct{ note string }

func (b blind) Error() string { return b.note }

// noted is a success whose ready line must say how it was reached (a
// missing object taken as ready): the wait counts it as a success and logs
// the note with "ready".
type noted struct{ note string }

func (n noted) Error() string { return n.note }

// unseen is a failed attempt that saw nothing of the target: the server
// would not say (the credentials were refused, or lacked a permission). A
// checker wraps its reason in it; the target is not ready, and for an
// inverted target that is no sign it is gone either: it keeps waiting, with
// that reason.
type unseen struct{ error }

func (e unseen) Unwrap() error { return e.error }

// minWakeGap is the least time from the start of one attempt to the start
// of the next when a change cuts a pause short: a storm of events must not
// turn the wait into a busy loop.
const minWakeGap = 10 * time.Millisecond

// target is a checker with what the wait loop and the logs need to know.
type target struct {
	name     string
	kind     string
	address  string // as shown in logs: passwords redacted, references as written
	interval time.Duration
	retry    retry
	checker  checker
	hidden   hidden // resolved values and Host headers, never quoted in a reason
	invert   bool   // ready when an attempt is not: the target is gone
	where    []any  // attributes the "waiting" line adds: where the type looks
	// stillReady ends the reason an inverted target is not ready yet:
	// "<address> still accepts connections".
	stillReady string
}

// retry is how a target is retried beyond its interval; one policy for
// every type, set by the common properties and the --default-* flags.
type retry struct {
	exponential      bool          // the pause doubles after each failure in a row
	maxInterval      time.Duration // caps an exponential pause (0 on a spec: not given)
	maxAttempts      int           // failed attempts before giving up; 0: never
	successThreshold int           // successes in a row that make the target ready (0 on a spec: not given)
}

// defaultMaxInterval caps an exponential pause when no flag sets the cap.
const defaultMaxInterval = 30 * time.Second

// pause is how long to wait after the streak-th failure in a row: the
// interval, or for exponential backoff interval·2^(streak-1) up to the cap,
// varied by up to ±10 % so that many targets started together do not retry
// in step.
func (t target) pause(streak int) time.Duration {
	d := t.interval
	if !t.retry.exponential {
		return d
	}
	for i := 1; i < streak && d < t.retry.maxInterval; i++ {
		d = min(2*d, t.retry.maxInterval)
		if d < 0 { // overflow of a cap close to the largest duration
			d = t.retry.maxInterval
		}
	}
	if p := d - d/10 + rand.N(d/5+1); p > 0 {
		return p
	}
	return d // the jitter overflowed a cap close to the largest duration
}

// reminderEvery bounds the log volume while a target keeps failing the same way.
const reminderEvery = 10 * time.Second

// progress is what one target's goroutine has seen so far; the collecting
// loop reads it when the wait ends early.
type progress struct {
	mu       sync.Mutex
	ready    bool
	attempts int
	lastErr  string
	final    bool // lastErr came from a finalError
}

// finalError is a reason a checker gives when its target reached a state it
// will not leave (a Job that failed): the target is given up at once, as if
// its max-attempts were used up.
type finalError struct{ error }

func (e finalError) Unwrap() error { return e.error }

// gaveUp ends the wait when a target used up its max-attempts or failed for
// good: every target must be ready, so waiting for the others is pointless.
type gaveUp struct {
	target   target
	failures int
	final    string // the reason of a finalError; "" when max-attempts ran out
}

func (g gaveUp) Error() string {
	if g.final != "" {
		return fmt.Sprintf("gave up on %s target %s: %s", g.target.kind, g.target.name, g.final)
	}
	attempts := "attempts"
	if g.failures == 1 {
		attempts = "attempt"
	}
	return fmt.Sprintf("gave up on %s target %s after %d failed %s", g.target.kind, g.target.name, g.failures, attempts)
}

// waitAll checks every target at once until all are ready, ctx ends or a
// target is given up. It returns the targets that were not ready with what
// they last reported, and why the wait ended early: the cause of ctx or a
// gaveUp. It does not wait for targets in an attempt or a pause when it ends
// early: they are left to finish it and stop, and the caller is about to
// exit.
func waitAll(ctx context.Context, targets []target, log *logger) ([]notReady, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan int, len(targets)) // a target that is ready or given up
	states := make([]*progress, len(targets))
	for i := range targets {
		states[i] = &progress{}
		go func() {
			// targets[i], not a loop variable: a closure would copy the
			// target to the heap, and a thousand targets add up.
			t := &targets[i]
			tl := log
			if log.enabled(levelWarn) { // the least a target logs at
				tl = log.with(t.logAttrs()...)
			}
			if t.wait(ctx, tl, states[i]) {
				ended <- i
			}
		}()
	}
	left := func() []notReady {
		var left []notReady
		for i, st := range states {
			st.mu.Lock()
			if !st.ready {
				left = append(left, notReady{targets[i], st.attempts, st.lastErr})
			}
			st.mu.Unlock()
		}
		return left
	}
	for pending := len(targets); pending > 0; pending-- {
		select {
		case i := <-ended:
			st := states[i]
			st.mu.Lock()
			ready, final, reason := st.ready, st.final, st.lastErr
			st.mu.Unlock()
			if final {
				return left(), gaveUp{targets[i], 0, reason}
			}
			if !ready {
				return left(), gaveUp{targets[i], targets[i].retry.maxAttempts, ""}
			}
		case <-ctx.Done():
			return left(), context.Cause(ctx)
		}
	}
	return nil, nil
}

type notReady struct {
	target   target
	attempts int
	lastErr  string
}

func (t target) logAttrs() []any {
	return []any{"target", t.name, "type", t.kind, "address", t.address}
}

// wait retries one target until it is ready (true), its max-attempts are
// used up (true, not ready) or ctx ends (false). Pauses are measured from the
// end of the previous attempt. At info level it logs the first failure, each
// change of reason and a reminder every reminderEvery; at debug level, every
// attempt and the pause chosen after it.
//
// Neither an attempt nor a pause is tied to ctx: when the wait ends early
// (the deadline, a signal, a target given up), waitAll returns at once
// without the targets still at work, and the process exits or reports. An
// attempt ends by its own timeout, and a target learns of ctx's end after
// the attempt or pause it was in. Tying every attempt and pause to the
// shared ctx cost about 5 % more CPU with 100 failing targets.
func (t target) wait(ctx context.Context, log *logger, st *progress) bool {
	if log.enabled(levelInfo) { // the attributes cost allocations even when not written
		log.Info("waiting", append(t.retryAttrs(), t.where...)...)
	}
	w := &waiting{target: t, log: log, st: st, start: time.Now(), debug: log.enabled(levelDebug)}
	var changed <-chan struct{}
	if wk, ok := t.checker.(waker); ok {
		changed = wk.changes()
	}
	for attempt := 1; ; attempt++ {
		// A change seen before the attempt starts is covered by it; one
		// that arrives during the attempt ends the pause after it.
		select {
		case <-changed:
		default:
		}
		began := time.Now()
		seen, err := w.attempt(attempt)
		now := time.Now()
		// An attempt that ends after the wait did comes too late to count.
		// At the deadline, ctx's timer may not have fired yet: the clock
		// decides, not ctx.Err alone.
		if deadline, ok := ctx.Deadline(); ctx.Err() != nil || ok && !now.Before(deadline) {
			return false
		}
		var pause time.Duration
		var done bool
		if err == nil {
			pause, done = w.succeeded(attempt, now, seen)
		} else {
			pause, done = w.failed(attempt, now, err)
		}
		if done {
			return true
		}
		if changed == nil {
			time.Sleep(pause)
		} else {
			pauseUntilChange(pause, changed, began)
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

// waiting is what one target's wait has counted so far.
type waiting struct {
	target
	log   *logger
	st    *progress
	start time.Time
	debug bool // the log writes debug lines
	// failures counts toward max-attempts; streak (failures in a row) sets
	// the backoff; successes (in a row) toward success-threshold.
	failures, streak, successes int
	lastReason                  string
	lastLogged                  time.Time
	note                        string // of the last attempt, a noted success
}

// attempt makes one attempt; for an inverted target, an attempt that fails
// is the success, and seen is why it counts as gone.
func (w *waiting) attempt(attempt int) (seen string, err error) {
	o := w.target.attempt()
	if o.blind != "" && w.debug {
		w.log.Debug("up, but the check cannot see further", "attempt", attempt, "note", w.hidden.conceal(o.blind))
	}
	w.note = o.note
	return o.seen, o.err
}

// attemptOutcome is one attempt as the wait and the probe both count it.
type attemptOutcome struct {
	err   error  // nil: a success (for an inverted target: it is gone)
	blind string // a success that could not see further: why
	note  string // a success whose ready line says how it was reached
	seen  string // an inverted target's failed attempt: why it counts as gone
}

// attempt makes one attempt: a blind or noted success is a success, and for
// an inverted target an attempt that fails is, unless it saw nothing.
func (t target) attempt() attemptOutcome {
	var o attemptOutcome
	err := t.checker.check(context.Background())
	switch e := err.(type) {
	case blind:
		o.blind, err = e.note, nil
	case noted:
		o.note, err = e.note, nil
	}
	if t.invert {
		if err != nil {
			o.seen = t.hidden.conceal(err.Error())
		}
		err = t.stillThere(err)
	}
	o.err = err
	return o
}

// succeeded counts a successful attempt: the target is ready (done) once
// the successes in a row reach its success-threshold.
func (w *waiting) succeeded(attempt int, now time.Time, seen string) (pause time.Duration, done bool) {
	w.successes, w.streak = w.successes+1, 0
	if w.successes >= w.retry.successThreshold {
		w.st.mu.Lock()
		w.st.ready, w.st.attempts = true, attempt
		w.st.mu.Unlock()
		msg := "ready"
		if w.successes > 1 {
			msg = fmt.Sprintf("ready after %d successes", w.successes)
		}
		if w.log.enabled(levelInfo) {
			attrs := []any{"attempts", attempt, "elapsed", roundDuration(now.Sub(w.start))}
			if w.invert {
				attrs = append(attrs, "invert", "true", "seen", seen)
			}
			if w.note != "" {
				attrs = append(attrs, "note", w.hidden.conceal(w.note))
			}
			w.log.Info(msg, attrs...)
		}
		return 0, true
	}
	// What the deadline report says if the target goes no further.
	reason := fmt.Sprintf("%d of %d successes in a row", w.successes, w.retry.successThreshold)
	w.st.mu.Lock()
	w.st.attempts, w.st.lastErr = attempt, reason
	w.st.mu.Unlock()
	if w.debug {
		w.log.Debug("up", "attempt", attempt, "successes", w.successes, "next_attempt_in", roundDuration(w.interval))
	}
	return w.interval, false
}

// failed counts a failed attempt and logs it: the first failure, a change
// of reason, a reminder; done is true when the target is given up.
func (w *waiting) failed(attempt int, now time.Time, err error) (pause time.Duration, done bool) {
	w.successes, w.streak, w.failures = 0, w.streak+1, w.failures+1
	reason := w.hidden.conceal(err.Error())
	_, final := errors.AsType[finalError](err)
	w.st.mu.Lock()
	w.st.attempts, w.st.lastErr, w.st.final = attempt, reason, final
	w.st.mu.Unlock()
	giveUp := final || w.retry.maxAttempts > 0 && w.failures >= w.retry.maxAttempts
	var next []any // the pause, at debug level
	if !giveUp {
		pause = w.pause(w.streak)
		if w.debug {
			next = []any{"next_attempt_in", roundDuration(pause)}
		}
	}
	switch {
	case reason != w.lastReason:
		w.log.Warn("not ready", append([]any{"attempt", attempt, "error", reason}, next...)...)
		w.lastReason, w.lastLogged = reason, now
	case now.Sub(w.lastLogged) >= reminderEvery:
		w.log.Warn("still not ready", append([]any{"attempts", attempt, "elapsed", roundDuration(now.Sub(w.start)), "error", reason}, next...)...)
		w.lastLogged = now
	case w.debug:
		w.log.Debug("not ready", append([]any{"attempt", attempt, "error", reason}, next...)...)
	}
	return pause, giveUp
}

// stillThere turns an attempt around for an inverted target: one that
// failed finds the target gone, unless it saw nothing of it: a refusal
// (unseen), or a TLS handshake that failed on trust or name, which every
// type's TLS reasons mark unseen and which is caught here too when a type
// passes Go's own error on. One that succeeded is the reason to keep
// waiting, in the type's words.
func (t target) stillThere(err error) error {
	if _, ok := errors.AsType[unseen](err); ok || distrusted(err) {
		return err
	}
	if err != nil {
		return nil
	}
	return errors.New(t.address + " " + t.stillReady)
}

// pauseUntilChange waits out pause, or less when changed receives, but
// never ends before minWakeGap after the attempt began. A plain sleep is
// cheaper, and kept for checkers that cannot wake.
func pauseUntilChange(pause time.Duration, changed <-chan struct{}, began time.Time) {
	timer := time.NewTimer(pause)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-changed:
		time.Sleep(time.Until(began.Add(minWakeGap)))
	}
}

// retryAttrs describe the policy in the "waiting" line, naming only what
// differs from a plain retry at the interval.
func (t target) retryAttrs() []any {
	attrs := []any{"interval", t.interval.String()}
	if t.retry.exponential {
		attrs = append(attrs, "backoff", "exponential", "max_interval", t.retry.maxInterval.String())
	}
	if t.retry.maxAttempts > 0 {
		attrs = append(attrs, "max_attempts", t.retry.maxAttempts)
	}
	if t.retry.successThreshold > 1 {
		attrs = append(attrs, "success_threshold", t.retry.successThreshold)
	}
	if t.invert {
		attrs = append(attrs, "invert", "true")
	}
	return attrs
}

// roundDuration keeps logged durations readable and identical in both log
// formats.
func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	// Not Duration's "457.177µs": milliseconds, in ASCII, like the rest.
	return strconv.FormatFloat(float64(d.Round(10*time.Microsecond))/1e6, 'f', -1, 64) + "ms"
}
