package main

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// checker makes one attempt at a target. It must return when ctx ends, and
// its error should read as the reason the target is not ready.
type checker interface {
	check(ctx context.Context) error
}

// target is a checker with what the wait loop and the logs need to know.
type target struct {
	name     string
	kind     string
	address  string // as shown in logs: passwords redacted, references as written
	interval time.Duration
	checker  checker
	hidden   hidden // resolved values and Host headers, never quoted in a reason
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
}

// waitAll checks every target at once until all are ready or ctx ends. It
// returns the targets that were not ready with what they last reported. It
// does not wait for attempts in flight once ctx ends: they are cancelled, and
// the caller is about to exit or exec.
func waitAll(ctx context.Context, targets []target, log *slog.Logger) []notReady {
	ready := make(chan int, len(targets))
	states := make([]*progress, len(targets))
	for i, t := range targets {
		states[i] = &progress{}
		go func() {
			if t.wait(ctx, log.With(t.logAttrs()...), states[i]) {
				ready <- i
			}
		}()
	}
	for pending := len(targets); pending > 0; pending-- {
		select {
		case <-ready:
		case <-ctx.Done():
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
	}
	return nil
}

type notReady struct {
	target   target
	attempts int
	lastErr  string
}

func (t target) logAttrs() []any {
	return []any{"target", t.name, "type", t.kind, "address", t.address}
}

// wait retries one target until an attempt succeeds (true) or ctx ends.
// At info level it logs the first failure, each change of reason and a
// reminder every reminderEvery; at debug level, every attempt.
func (t target) wait(ctx context.Context, log *slog.Logger, st *progress) bool {
	start := time.Now()
	log.Info("waiting", "interval", t.interval.String())
	var lastReason string
	var lastLogged time.Time
	var timer *time.Timer // made on the first failure: most targets never need one
	for attempt := 1; ; attempt++ {
		err := t.checker.check(ctx)
		if ctx.Err() != nil {
			return false // the attempt was cut short; its error says nothing about the target
		}
		now := time.Now()
		elapsed := now.Sub(start)
		if err == nil {
			st.mu.Lock()
			st.ready, st.attempts = true, attempt
			st.mu.Unlock()
			log.Info("ready", "attempts", attempt, "elapsed", roundDuration(elapsed))
			return true
		}
		reason := t.hidden.conceal(err.Error())
		st.mu.Lock()
		st.attempts, st.lastErr = attempt, reason
		st.mu.Unlock()

		switch {
		case reason != lastReason:
			log.Warn("not ready", "attempt", attempt, "error", reason)
			lastReason, lastLogged = reason, now
		case now.Sub(lastLogged) >= reminderEvery:
			log.Warn("still not ready", "attempts", attempt, "elapsed", roundDuration(elapsed), "error", reason)
			lastLogged = now
		default:
			log.Debug("not ready", "attempt", attempt, "error", reason)
		}

		if timer == nil {
			timer = time.NewTimer(t.interval)
		} else {
			timer.Reset(t.interval)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// roundDuration keeps logged durations readable and identical in both log
// formats (slog's JSON handler would print nanoseconds).
func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.String()
}

// hidden is what a target's failure reasons may not quote, longest first so
// that a whole URL is replaced before the host inside it. Built once, at
// start-up, and read on every failed attempt.
type hidden []string

func newHidden(pieces ...string) hidden {
	h := slices.DeleteFunc(slices.Clone(pieces), func(p string) bool { return p == "" })
	slices.SortStableFunc(h, func(a, b string) int { return len(b) - len(a) })
	return h
}

// conceal replaces each piece found in msg with [hidden] where it stands as
// a whole word: hiding host "a" must not turn "no answer" into nonsense.
// Hiding too much is harmless; too little is not.
func (h hidden) conceal(msg string) string {
	for _, p := range h {
		var out strings.Builder
		copied, from := 0, 0
		for {
			j := strings.Index(msg[from:], p)
			if j < 0 {
				break
			}
			i, end := from+j, from+j+len(p)
			whole := (i == 0 || !isWordByte(msg[i-1]) || !isWordByte(p[0])) &&
				(end == len(msg) || !isWordByte(msg[end]) || !isWordByte(p[len(p)-1]))
			if !whole {
				from = i + 1
				continue
			}
			out.WriteString(msg[copied:i])
			out.WriteString("[hidden]")
			copied, from = end, end
		}
		if copied > 0 {
			out.WriteString(msg[copied:])
			msg = out.String()
		}
	}
	return msg
}
