// portpatrol waits until network dependencies (TCP ports, HTTP endpoints,
// ICMP hosts) are ready, then exits 0 or replaces itself with a command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

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
	switch {
	case opts.help:
		fmt.Fprint(stdout, usage())
		return exitReady
	case opts.version:
		fmt.Fprintln(stdout, "portpatrol version", versionString())
		return exitReady
	}

	// Build what parsed, even after flag errors, so that one run lists every
	// problem: a bad flag and a bad address of another target alike.
	log := newLogger(opts, stderr)
	targets, buildErr := buildTargets(opts.targets, log)
	if err = errors.Join(err, buildErr); err != nil {
		return startupFailed(stderr, err, exitUsage)
	}
	var commandPath string
	if len(opts.command) > 0 {
		var code int
		if commandPath, code, err = findCommand(opts.command[0]); err != nil {
			return startupFailed(stderr, err, code)
		}
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		if sig, ok := (<-signals).(syscall.Signal); ok {
			cancel(interrupted{sig})
		}
	}()
	if opts.timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, opts.timeout, errDeadline)
		defer stop()
	}

	left := waitAll(ctx, targets, log)
	if len(left) > 0 {
		var sig interrupted
		if errors.As(context.Cause(ctx), &sig) {
			log.Warn("stopped before every target was ready", "signal", sig.sig.String(), "not_ready", len(left))
			return 128 + int(sig.sig)
		}
		for _, n := range left {
			reason := n.lastErr
			if reason == "" {
				reason = "no attempt finished"
			}
			log.Error("not ready", append(n.target.logAttrs(), "attempts", n.attempts, "error", reason)...)
		}
		log.Error("timeout passed before every target was ready", "timeout", opts.timeout.String(), "not_ready", len(left))
		return exitDeadline
	}

	log.Info("all targets ready", "targets", len(targets))
	if commandPath == "" {
		return exitReady
	}
	signal.Reset(syscall.SIGINT, syscall.SIGTERM)
	log.Debug("running command", "command", opts.command[0])
	// Exec, not a child process: the command keeps our pid and receives
	// signals directly, as an ENTRYPOINT must.
	err = syscall.Exec(commandPath, opts.command, os.Environ())
	code := exitNotExecutable
	if errors.Is(err, syscall.ENOENT) {
		code = exitNotFound
	}
	return startupFailed(stderr, fmt.Errorf("cannot run %s: %v", opts.command[0], err), code)
}

// buildTargets resolves every reference and builds each target's checker,
// reporting all problems at once.
func buildTargets(specs []*targetSpec, log *slog.Logger) ([]target, error) {
	var problems []error
	icmpRaw := false
	if slices.ContainsFunc(specs, func(s *targetSpec) bool { return s.kind == "icmp" }) {
		var err error
		if icmpRaw, err = chooseICMPSocket(); err != nil {
			problems = append(problems, err)
		} else if icmpRaw {
			log.Debug("ICMP uses raw sockets")
		} else {
			log.Debug("ICMP uses unprivileged datagram sockets: raw sockets are not permitted")
		}
	}
	var targets []target
	for _, s := range specs {
		if s.address == "" {
			continue // already reported as missing
		}
		t, errs := buildTarget(s, icmpRaw)
		problems = append(problems, errs...)
		targets = append(targets, t)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return targets, nil
}

func buildTarget(s *targetSpec, icmpRaw bool) (target, []error) {
	written := s.address
	if errs := resolveSpec(s); len(errs) > 0 {
		return target{}, errs
	}
	referenced := isReference(written)
	t := target{name: s.name, kind: s.kind, interval: s.interval}
	var pieces []string     // of the address: hidden when it was a reference
	var hostHeader []string // always hidden: a header value
	var err error
	switch s.kind {
	case "tcp":
		var addr string
		if addr, err = parseTCPAddress(s.address); err == nil {
			t.address, t.checker = addr, tcpCheck{address: addr, timeout: s.timeout}
			host, _, _ := net.SplitHostPort(addr)
			pieces = []string{s.address, addr, host}
		}
	case "http":
		u, perr := parseHTTPAddress(s.address)
		if err = perr; err == nil {
			t.address = u.Redacted()
			c, cerr := newHTTPCheck(s, u)
			if cerr != nil {
				return target{}, []error{cerr} // already names its flag
			}
			t.checker = c
			pieces = append([]string{s.address}, urlPieces(u)...)
			if c.host != "" {
				// A Host header is a header value: it must not surface
				// through a TLS error that names the server it expected.
				hostHeader = []string{c.host, hostWithoutPort(c.host)}
			}
		}
	case "icmp":
		var host string
		if host, err = parseICMPAddress(s.address); err == nil {
			t.address, t.checker = host, icmpCheck{host: host, readTimeout: s.readTimeout, writeTimeout: s.writeTimeout, raw: icmpRaw, id: os.Getpid() & 0xffff}
			pieces = []string{s.address, host}
		}
	}
	if err != nil {
		// A resolved value is not shown: it may be a secret read from a file.
		shown := redactURL(written)
		if referenced {
			shown = written + " (resolved)"
		}
		return target{}, []error{fmt.Errorf("%s=%s: %v", s.flag("address"), shown, err)}
	}
	if referenced {
		// Logs name the reference, and reasons lose every part of its value.
		t.address = redactURL(written)
	} else {
		pieces = nil
	}
	t.hidden = newHidden(append(pieces, hostHeader...)...)
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
		return "", exitNotFound, fmt.Errorf("command %q not found", name)
	}
	var e *exec.Error
	if errors.As(err, &e) {
		err = e.Err
	}
	return "", exitNotExecutable, fmt.Errorf("command %q cannot be run: %v", name, err)
}

func newLogger(opts *options, w io.Writer) *slog.Logger {
	ho := &slog.HandlerOptions{Level: opts.logLevel}
	if opts.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// startupFailed prints every problem on its own line.
func startupFailed(stderr io.Writer, err error, code int) int {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(stderr, "portpatrol:", line)
	}
	if code == exitUsage {
		fmt.Fprintln(stderr, "portpatrol: see portpatrol --help")
	}
	return code
}

// versionString falls back to the module version that go install records
// when no version was set at build time.
func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
