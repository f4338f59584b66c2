// Probe mode (--probe): one attempt per target, for the health check of an
// image that has no shell and no curl (Docker HEALTHCHECK, compose
// healthcheck, Kubernetes exec probes).

package main

import "context"

// probeAll makes one attempt at every target, all at once, with no pause
// and no retry, and returns the targets that were not ready with their
// reason. When ctx ends first (--timeout, a signal), the targets still in
// their attempt are returned without a reason, as waitAll returns them.
// Watches are not started: nothing waits for a change. Ready targets are
// logged at debug level only.
func probeAll(ctx context.Context, targets []target, log *logger) ([]notReady, error) {
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(targets))
	for i := range targets {
		go func() { results <- result{i, targets[i].attempt().err} }()
	}
	errs := make([]error, len(targets))
	done := make([]bool, len(targets))
	var cause error
collect:
	for range targets {
		select {
		case r := <-results:
			done[r.i], errs[r.i] = true, r.err
		case <-ctx.Done():
			cause = context.Cause(ctx)
			break collect
		}
	}
	var left []notReady
	for i, t := range targets {
		switch {
		case !done[i]:
			left = append(left, notReady{t, 0, ""})
		case errs[i] != nil:
			left = append(left, notReady{t, 1, t.hidden.conceal(errs[i].Error())})
		default:
			log.Debug("ready", t.logAttrs()...)
		}
	}
	return left, cause
}
