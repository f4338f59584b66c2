// portpatrol waits until what a program depends on is ready to serve (ports,
// HTTP endpoints, hosts, the servers asked in their own protocols, sockets,
// files, DNS records, Kubernetes objects), then exits 0 or replaces itself
// with the program. main.go wires the stages: flags.go reads the targets,
// resolve.go their references, each type's file makes one attempt, wait.go
// retries them until ready or the deadline, and run decides the exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Exit codes, also listed in the help text and the README.
const (
	exitReady         = 0
	exitDeadline      = 1
	exitUsage         = 2
	exitNotExecutable = 126
	exitNotFound      = 127
)

var errDeadline = errors.New("deadline passed")

// interrupted is the cancellation cause when a signal ends the wait.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return "received " + i.sig.String() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(args)
	// An unknown flag or a stray argument is an error even beside --help or
	// --version: the command line is not what its writer thinks it is.
	if (opts.help || opts.version) && err == nil {
		return printHelpOrVersion(opts, stdout, stderr)
	}

	// Build what parsed, even after flag errors, so that one run lists every
	// problem: a bad flag and a bad address of another target alike.
	log := newLogger(opts, stderr)
	typeLog := log
	if opts.probe && !log.enabled(levelDebug) {
		// A probe is silent but for its targets' reasons: what a type says
		// on the side (a watch refused) is for a wait that goes on, or for
		// someone who asked for debug lines.
		typeLog = newLogger(&options{logLevel: levelError + 1}, io.Discard)
	}
	targets, buildErr := buildTargets(opts.targets, typeLog)
	if err = errors.Join(err, buildErr); err != nil {
		return startupFailed(stderr, opts, err, exitUsage)
	}
	var commandPath string
	if len(opts.command) > 0 {
		var code int
		if commandPath, code, err = findCommand(opts.command[0]); err != nil {
			return startupFailed(stderr, opts, err, code)
		}
	}

	ctx, stop := waitContext(opts)
	defer stop()
	var left []notReady
	var why error
	if opts.probe {
		left, why = probeAll(ctx, targets, log)
	} else {
		left, why = waitAll(ctx, targets, log)
	}
	// Whatever ended the wait, the process ends next: by exit or by exec.
	for _, tt := range targetTypes {
		if tt.stop != nil {
			tt.stop()
		}
	}
	switch {
	case len(left) > 0:
		return reportNotReady(opts, log, left, why)
	case opts.probe:
		log.Debug("all targets ready", "targets", len(targets))
		return exitReady // else silent: Docker stores every probe's output
	}
	log.Info("all targets ready", "targets", len(targets))
	if commandPath == "" {
		return exitReady
	}
	return execCommand(opts, log, stderr, commandPath)
}

func printHelpOrVersion(opts *options, stdout, stderr io.Writer) int {
	text := usage()
	if !opts.help {
		text = "portpatrol version " + versionString() + "\n"
	}
	// A script that reads the version must not take an empty answer (a
	// full disk, a closed pipe) for a successful one.
	if _, err := io.WriteString(stdout, text); err != nil {
		newLogger(opts, stderr).Error("cannot write to stdout", "error", err.Error())
		if opts.probe {
			return exitDeadline // a health check knows 0 and 1 only
		}
		return exitUsage
	}
	return exitReady
}

// waitContext is the wait's context: it ends by a signal (SIGINT, SIGTERM,
// SIGHUP: interrupted) or by --timeout (errDeadline).
func waitContext(opts *options) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	signals := make(chan os.Signal, 1)
	go func() {
		// The log's local time zone is read from a file: here, that is
		// off the path to the first attempt, which start-up waits on.
		_ = time.Local.String()
		if sig, ok := (<-signals).(syscall.Signal); ok {
			cancel(interrupted{sig})
		}
	}()
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if opts.timeout <= 0 {
		return ctx, func() { cancel(nil) }
	}
	ctx, stop := context.WithTimeoutCause(ctx, opts.timeout, errDeadline)
	return ctx, func() { stop(); cancel(nil) }
}

// reportNotReady logs each target that was not ready with its last reason,
// then what ended the wait, and returns the exit code.
func reportNotReady(opts *options, log *logger, left []notReady, why error) int {
	sig, signalled := errors.AsType[interrupted](why)
	_, gaveUpEarly := why.(gaveUp)
	notReady := log.Error
	if signalled {
		notReady = log.Warn // a stop that was asked for, not a failed wait
	}
	for _, n := range left {
		reason := n.lastErr
		switch {
		case reason != "":
		case gaveUpEarly, signalled:
			reason = "no attempt finished before the wait ended"
		default:
			// The first attempt was still running: a deadline no longer
			// than one attempt's timeout leaves nothing to report.
			reason = "no attempt finished within --timeout=" + opts.timeout.String() +
				"; give --timeout more than the target's timeout"
		}
		if opts.probe { // one short line per target: docker inspect keeps them
			notReady("not ready", append(n.target.logAttrs(), "error", reason)...)
			continue
		}
		notReady("not ready", append(n.target.logAttrs(), "attempts", n.attempts, "error", reason)...)
	}
	switch {
	case opts.probe:
		return exitDeadline // a health check knows 0 and 1 only
	case signalled:
		log.Warn("stopped before every target was ready", "signal", sig.sig.String(), "not_ready", len(left))
		return 128 + int(sig.sig)
	case gaveUpEarly:
		log.Error(why.Error(), "not_ready", len(left))
		return exitDeadline
	}
	log.Error("timeout passed before every target was ready", "timeout", opts.timeout.String(), "not_ready", len(left))
	return exitDeadline
}

// execCommand replaces portpatrol with the command; it returns only when
// the command cannot be run.
func execCommand(opts *options, log *logger, stderr io.Writer, path string) int {
	signal.Reset(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	log.Debug("running command", "command", opts.command[0])
	// Exec, not a child process: the command keeps our pid and receives
	// signals directly, as an ENTRYPOINT must.
	err := syscall.Exec(path, opts.command, os.Environ())
	// A missing interpreter is 127, as in the shells.
	code := exitNotExecutable
	err, notFound := whyNotRun(err)
	if notFound {
		code = exitNotFound
	}
	return startupFailed(stderr, opts, errorf("command %s cannot be run: %v", quoteString(opts.command[0]), err), code)
}

// buildTargets resolves every reference and builds each target's checker,
// reporting all problems at once.
func buildTargets(specs []*targetSpec, log *logger) ([]target, error) {
	var problems []error
	prepared := map[*targetType]bool{}
	targets := make([]target, 0, len(specs)) // no garbage from growing: a target is large
	for _, s := range specs {
		if tt := targetTypes[s.kind]; tt.prepare != nil && !prepared[tt] {
			prepared[tt] = true
			if err := tt.prepare(log); err != nil {
				problems = append(problems, err)
			}
		}
		if s.address == "" {
			continue // already reported as missing
		}
		t, errs := buildTarget(s)
		problems = append(problems, errs...)
		targets = append(targets, t)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return targets, nil
}

// built is what a type makes of one target: its checker, and how the target
// may be shown.
type built struct {
	checker checker
	address string   // as logs show a literal address: passwords redacted
	pieces  []string // of the resolved address: hidden in reasons when it was a reference
	secrets []string // always hidden in reasons: header values, passwords
	where   []any    // attributes for the "waiting" line: where the type looks (a namespace, a cluster)
}

// addressError is a type's complaint about an address; buildTarget adds the
// flag and the address as it may be shown.
type addressError struct{ error }

func buildTarget(s *targetSpec) (target, []error) {
	written := s.address
	address, resolveErr := resolve(written)
	if resolveErr != nil { // the flag's name is built only when needed: a thousand targets add up
		resolveErr = errorf("%s: %v", s.flag("address"), resolveErr)
	}
	// An address never starts or ends in white space; an environment
	// variable filled from a Secret often ends in a newline.
	address = strings.TrimSpace(address)
	// Build even when the address could not be read, so that the target's
	// other problems are reported in the same run.
	b, errs := targetTypes[s.kind].build(s, address)
	if resolveErr != nil {
		errs = slices.DeleteFunc(errs, func(err error) bool {
			_, ok := errors.AsType[addressError](err)
			return ok
		})
		errs = append([]error{resolveErr}, errs...)
	}
	referenced := isReference(written)
	for i, err := range errs {
		if ae, ok := errors.AsType[addressError](err); ok {
			// A resolved value is not shown: it may be a secret read from a file.
			shown := quoteValue(redactURL(written))
			if referenced {
				shown = quoteValue(written) + " (resolved)"
			}
			errs[i] = errorf("%s=%s: %v", s.flag("address"), shown, ae.error)
		}
	}
	if len(errs) > 0 {
		return target{}, errs
	}
	t := target{name: s.name, kind: s.kind, interval: s.interval, retry: s.retry, checker: b.checker, address: b.address, invert: s.invert, where: b.where}
	if t.stillReady = targetTypes[s.kind].stillReady; t.stillReady == "" {
		t.stillReady = "is still ready"
	}
	pieces := b.pieces
	if referenced {
		// Logs name the reference, and reasons lose every part of its value.
		t.address = redactURL(written)
	} else {
		pieces = nil
	}
	t.hidden = newHidden(append(pieces, b.secrets...)...)
	return t, nil
}

// findCommand locates the command to exec before the wait starts, so a typo
// fails at once instead of after every target became ready.
func findCommand(name string) (string, int, error) {
	path, err := exec.LookPath(name)
	switch {
	case err == nil:
		return path, 0, nil
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return "", exitNotFound, errorf("command %s not found", quoteString(redactURL(name))) // a URL with a password, curl forgotten
	}
	if e, ok := errors.AsType[*exec.Error](err); ok {
		err = e.Err
	}
	return "", exitNotExecutable, errorf("command %s cannot be run: %v", quoteString(redactURL(name)), err)
}

// startupFailed prints every problem on its own line: in the log format
// asked for, so that with --log-format=json every line of stderr is a JSON
// object, and with control characters escaped, so that no value can start a
// line of its own or reach the terminal as an escape code.
func startupFailed(stderr io.Writer, opts *options, err error, code int) int {
	msg := "invalid configuration"
	if code != exitUsage {
		msg = "cannot run the command"
	}
	if opts.probe && code == exitUsage {
		code = exitDeadline // Docker reserves 2 for HEALTHCHECK commands
	}
	problems := splitProblems(err)
	if opts.logFormat == "json" {
		log := newLogger(opts, stderr)
		for _, p := range problems {
			log.Error(msg, "error", escapeControls(p.Error()))
		}
		return code
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, "portpatrol:", escapeControls(p.Error()))
	}
	if msg == "invalid configuration" {
		fmt.Fprintln(stderr, "portpatrol: see portpatrol --help")
	}
	return code
}

// splitProblems undoes errors.Join, nested or not, into single problems.
func splitProblems(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		parts := joined.Unwrap()
		texts := make([]string, len(parts))
		for i, p := range parts {
			texts[i] = p.Error()
		}
		// Only a join reads as its parts one per line; fmt.Errorf with two
		// %w also unwraps to several errors but is one problem.
		if strings.Join(texts, "\n") == err.Error() {
			var out []error
			for _, p := range parts {
				out = append(out, splitProblems(p)...)
			}
			return out
		}
	}
	return []error{err}
}

// escapeControls writes every character that is not printable (line breaks,
// escape codes, invalid UTF-8) as a Go escape: the last line of defence for
// a value that reached a message without quoteValue.
func escapeControls(s string) string {
	printable := func(r rune) bool { return r != utf8.RuneError && strconv.IsPrint(r) }
	if strings.IndexFunc(s, func(r rune) bool { return !printable(r) }) < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case printable(r):
			b.WriteString(s[:size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[size:]
	}
	return b.String()
}
