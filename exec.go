package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

func init() {
	register("exec", &targetType{
		ready:      "when the command exits 0 (and, if asked, its output matches)",
		stillReady: "still succeeds",
		properties: []property{
			{name: "output", arg: "REGEX", help: "also require the first 1 MiB of its standard output, without its final line breaks (LF or CR LF), to match (RE2 syntax); ^ and $ match at its ends unless (?m)",
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
	if strings.IndexByte(address, 0) >= 0 { // from a reference: no argument can hold one
		err = errors.New("the command line holds a NUL byte")
	}
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	path, _, err := findCommand(words[0])
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	output, _ := s.settings.(*regexp.Regexp)
	c := execCheck{path: path, argv: words, output: output, timeout: s.timeout}
	return built{checker: c, address: redactWords(address), pieces: []string{address}}, nil
}

// splitWords splits a command line into words as a POSIX shell does (its
// sections 2.2, Quoting, and 2.3, Token Recognition), but runs no shell and
// expands nothing. What a shell would expand or take as an operator is
// refused rather than passed on as text the shell would not have passed.
func splitWords(line string) ([]string, error) {
	var words []string
	var w []byte
	inWord := false
	var quote byte // the quote the scan is inside of, or 0
	opened := 0    // where it opened
	for i := 0; i < len(line); i++ {
		c := line[i]
		literal := true // c is part of the word
		switch {
		case quote == '\'' && c != '\'', quote == '"' && strings.IndexByte("\"\\$`", c) < 0:
		case c == quote:
			quote, literal = 0, false
		case quote == '"' && c == '\\':
			// Inside double quotes a backslash escapes only these.
			if i+1 < len(line) && strings.IndexByte("$`\"\\\n", line[i+1]) >= 0 {
				i++
				c = line[i]
			}
			literal = c != '\n'
		case c == ' ' || c == '\t':
			if inWord {
				words, w, inWord = append(words, string(w)), w[:0], false
			}
			continue
		case c == '\'' || c == '"':
			quote, opened, literal = c, i, false
		case c == '\\':
			if i++; i == len(line) {
				return nil, errors.New("the command line ends in a backslash")
			}
			if c = line[i]; c == '\n' {
				continue // a backslash and a newline join two lines
			}
		case quote != 0 || strings.IndexByte("|&;<>()$`*?[\n", c) >= 0 || !inWord && (c == '#' || c == '~'):
			return nil, errorf("%q at byte %d would be an operator or an expansion to a shell, and none is run: quote it, or run one (sh -c '…')", c, i+1)
		}
		if literal {
			w = append(w, c)
		}
		inWord = true
	}
	switch {
	case quote != 0:
		return nil, errorf("unterminated quote %c at byte %d", quote, opened+1)
	case inWord:
		words = append(words, string(w))
	case len(words) == 0:
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
	null, err0 := os.Open(os.DevNull)
	outR, outW, err1 := os.Pipe()
	errR, errW, err2 := os.Pipe()
	pid, err := 0, cmp.Or(err0, err1, err2)
	if err == nil {
		pid, err = startChild(c.path, c.argv, os.Environ(), []uintptr{null.Fd(), outW.Fd(), errW.Fd()})
	}
	for _, f := range []*os.File{null, outW, errW} {
		f.Close() // nil when not opened: then an error, and no panic
	}
	if err != nil {
		outR.Close()
		errR.Close()
		// It was found at start-up: it is not gone, it cannot be seen.
		reason, _ := whyNotRun(err)
		return unseen{errorf("cannot be run: %v", reason)}
	}
	stdout, stderr := &commandOutput{keep: c.output != nil}, &commandOutput{}
	copied := make(chan bool, 2)
	go stdout.readAll(outR, copied)
	go stderr.readAll(errR, copied)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	status := reapChild(ctx, pid)
	timedOut := ctx.Err() != nil
	cancel()
	// A process that left its group may still hold the output open: it is
	// not waited for.
	outR.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	errR.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
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
	case timedOut:
		return errorf("did not finish within %v and was killed%s", c.timeout, line)
	case status.Signaled():
		return errorf("killed by signal %v%s", status.Signal(), line)
	case status.ExitStatus() != 0:
		return errorf("exit status %d%s", status.ExitStatus(), line)
	case c.output != nil && !c.output.Match(bytes.TrimRight(stdout.head, "\r\n")):
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

// readAll reads r to its end, or its read deadline, and closes it.
func (o *commandOutput) readAll(r *os.File, done chan<- bool) {
	io.Copy(o, r)
	r.Close()
	done <- true
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
