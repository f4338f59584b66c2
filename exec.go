package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func init() {
	register("exec", &targetType{
		ready:      "when the command exits 0 (and, if asked, its output matches)",
		stillReady: "still succeeds",
		properties: []property{
			{name: "output", arg: "REGEX", help: "also require the first 1 MiB of its standard output, without its final line breaks, to match (RE2 syntax)",
				set: func(s *targetSpec, v string) (err error) { s.settings, err = compileRegex(v); return }},
			execTimeout,
		},
		stop:  stopChildren,
		build: buildExec,
	})
}

// execTimeout is longer by default than a connection's: a command often
// starts a runtime and connects itself.
var execTimeout = func() property {
	p := timeoutProperty("how long one run may take; then its process group is killed")
	p.def = "5s"
	return p
}()

// maxReasonLine bounds the line of output quoted in a reason.
const maxReasonLine = 200

func buildExec(s *targetSpec, address string) (built, []error) {
	words, err := splitWords(address)
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	path, _, err := findCommand(words[0])
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	output, _ := s.settings.(*regexp.Regexp)
	c := execCheck{path: path, argv: words, output: output, timeout: s.timeout}
	return built{checker: c, address: address, pieces: []string{address}}, nil
}

// splitWords splits a command line into words as a POSIX shell does (its
// sections 2.2, Quoting, and 2.3, Token Recognition), but runs no shell and
// expands nothing. What a shell would expand or take as an operator is
// refused rather than passed on as text the shell would not have passed.
func splitWords(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	special := func(i int) error {
		return errorf("%q at byte %d would be an operator or an expansion to a shell, and none is run: quote it, or run one (sh -c '…')", line[i], i+1)
	}
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
		case c == '\\':
			if i++; i == len(line) {
				return nil, errors.New("the command line ends in a backslash")
			}
			if line[i] != '\n' { // a backslash and a newline join two lines
				w.WriteByte(line[i])
				inWord = true
			}
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errorf("unterminated single quote at byte %d", i+1)
			}
			w.WriteString(line[i+1 : i+1+end])
			i, inWord = i+1+end, true
		case c == '"':
			start := i
			for i++; i < len(line) && line[i] != '"'; i++ {
				switch line[i] {
				case '$', '`':
					return nil, special(i)
				case '\\':
					// Inside double quotes a backslash escapes only these.
					if i+1 < len(line) && strings.IndexByte("$`\"\\\n", line[i+1]) >= 0 {
						if i++; line[i] == '\n' {
							continue
						}
					}
				}
				w.WriteByte(line[i])
			}
			if i == len(line) {
				return nil, errorf("unterminated double quote at byte %d", start+1)
			}
			inWord = true
		case strings.IndexByte("|&;<>()$`*?[\n", c) >= 0 || !inWord && (c == '#' || c == '~'):
			return nil, special(i)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, errors.New("no command in it")
	}
	return words, nil
}

// execCheck runs a command: ready when it exits 0 and, with output, its
// standard output matches.
type execCheck struct {
	path    string   // found in $PATH at start-up
	argv    []string // the words as written
	output  *regexp.Regexp
	timeout time.Duration
}

func (c execCheck) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	var pipes [2]struct{ r, w *os.File }
	for i := range pipes {
		if pipes[i].r, pipes[i].w, err = os.Pipe(); err != nil {
			return err
		}
		defer pipes[i].r.Close()
	}
	pid, err := startChild(c.path, c.argv, os.Environ(), []uintptr{null.Fd(), pipes[0].w.Fd(), pipes[1].w.Fd()})
	pipes[0].w.Close()
	pipes[1].w.Close()
	if err != nil {
		// It was found at start-up: it is not gone, it cannot be seen.
		return unseen{errorf("cannot be run: %v", err)}
	}
	stdout, stderr := &commandOutput{keep: c.output != nil}, &commandOutput{}
	copied := make(chan bool, 2)
	for i, o := range []*commandOutput{stdout, stderr} {
		go func() { io.Copy(o, pipes[i].r); copied <- true }()
	}
	status := reapChild(ctx, pid)
	// What it left running goes with it. A process that left its group
	// may still hold the output open: it is not waited for.
	syscall.Kill(-pid, syscall.SIGKILL)
	for _, p := range pipes {
		p.r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	}
	<-copied
	<-copied

	line := stderr.lastLine()
	if line == "" {
		line = stdout.lastLine()
	}
	if line != "" {
		line = ": " + line
	}
	switch {
	case ctx.Err() != nil:
		return errorf("did not finish within %v and was killed%s", c.timeout, line)
	case status.Signaled():
		return errorf("killed by signal %v%s", status.Signal(), line)
	case status.ExitStatus() != 0:
		return errorf("exit status %d%s", status.ExitStatus(), line)
	case c.output != nil && !c.output.Match(bytes.TrimRight(stdout.head, "\n")):
		// The pattern is the user's own; the output is not shown.
		return errorf("exit status 0, but the first 1 MiB of its output does not match %s", c.output)
	}
	return nil
}

// commandOutput keeps, of all a command writes, only the first
// maxBodyRead bytes (when keep) and the start of its last non-empty line.
type commandOutput struct {
	keep bool
	head []byte
	line []byte // the line being written, its first bytes
	last []byte // the last complete line that was not blank
}

func (o *commandOutput) Write(p []byte) (int, error) {
	if o.keep {
		o.head = append(o.head, p[:min(len(p), maxBodyRead-len(o.head))]...)
	}
	for _, c := range p {
		switch {
		case c == '\n':
			if len(bytes.TrimSpace(o.line)) > 0 {
				o.last = append(o.last[:0], o.line...)
			}
			o.line = o.line[:0]
		case len(o.line) <= maxReasonLine: // one more, so that serverText marks the cut
			o.line = append(o.line, c)
		}
	}
	return len(p), nil
}

// lastLine is fit to quote in a reason.
func (o *commandOutput) lastLine() string {
	line := bytes.TrimSpace(o.line)
	if len(line) == 0 {
		line = bytes.TrimSpace(o.last)
	}
	return serverText(string(line), maxReasonLine)
}
