package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"syscall"
)

func init() {
	register("file", &targetType{
		ready:      "when the path exists (and, if asked, is of a type, non-empty, or matches)",
		stillReady: "still exists",
		properties: fileProperties,
		settings:   func() any { return &fileSettings{} },
		finish:     finishFile,
		prepare:    prepareWatch,
		build:      buildFile,
	})
}

type fileSettings struct {
	nonEmpty bool
	contains *regexp.Regexp
	want     string // file, dir, socket or any
}

func fileOf(s *targetSpec) *fileSettings { return s.settings.(*fileSettings) }

var fileProperties = []property{
	{name: "non-empty", def: "false", help: "also require a file of at least one byte",
		set: func(s *targetSpec, v string) (err error) { fileOf(s).nonEmpty, err = parseBool(v); return }},
	{name: "contains", arg: "REGEX", help: "also require the first 1 MiB of the file to match (RE2 syntax)",
		set: func(s *targetSpec, v string) (err error) { fileOf(s).contains, err = compileRegex(v); return }},
	{name: "type", arg: "TYPE", def: "any", help: "what the path must be: file, dir, socket or any",
		set: func(s *targetSpec, v string) error {
			switch v = strings.ToLower(v); v {
			case "file", "dir", "socket", "any":
				fileOf(s).want = v
				return nil
			}
			return errors.New("want file, dir, socket or any")
		}},
}

func finishFile(s *targetSpec) []error {
	f := fileOf(s)
	if f.want != "dir" && f.want != "socket" {
		return nil
	}
	var problems []error
	for _, p := range []string{"non-empty", "contains"} {
		if s.isGiven(p) && (p == "contains" || f.nonEmpty) {
			problems = append(problems, errorf("%s cannot hold with %s=%s: only a file has contents (use type=file or any)",
				s.flag(p), s.flag("type"), f.want))
		}
	}
	return problems
}

func buildFile(s *targetSpec, address string) (built, []error) {
	switch {
	case address == "":
		return built{}, []error{addressError{errors.New("the path is empty")}}
	case strings.IndexByte(address, 0) >= 0:
		return built{}, []error{addressError{errors.New("the path holds a NUL byte")}}
	}
	f := fileOf(s)
	c := fileCheck{path: address, want: f.want, nonEmpty: f.nonEmpty, contains: f.contains}
	return built{checker: c, address: address, pieces: []string{address}}, nil
}

// fileCheck is ready when path exists as what it should be. A relative path
// is relative to the working directory.
type fileCheck struct {
	path     string
	want     string // file, dir, socket or any
	nonEmpty bool
	contains *regexp.Regexp
}

// changes lets the wait see the path appear or change at once (watch.go).
func (c fileCheck) changes() <-chan struct{} { return watchPath(c.path) }

// check runs the file system calls apart, so that a stat stuck on a dead
// network mount cannot keep a signal or the deadline waiting.
func (c fileCheck) check(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- c.look() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errors.New("cancelled")
	}
}

func (c fileCheck) look() error {
	fi, err := os.Stat(c.path) // follows symbolic links, as Kubernetes' projected files need
	if err != nil {
		return c.describe(err)
	}
	if err := c.wantType(fi.Mode()); err != nil {
		return err
	}
	if !c.nonEmpty && c.contains == nil {
		return nil
	}
	// O_NONBLOCK: should the path become a named pipe after the stat,
	// opening it must not wait for a writer.
	f, err := os.OpenFile(c.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return c.describe(err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return c.describe(err)
	}
	if !fi.Mode().IsRegular() {
		return errorf("%s is %s, want a file", c.path, kindOf(fi.Mode()))
	}
	var contents io.Reader = f
	if c.nonEmpty && fi.Size() == 0 {
		// Files of /proc and /sys say 0 and still hold something: only
		// a read tells. The byte read is matched with the rest.
		var first [1]byte
		n, err := f.Read(first[:])
		if n == 0 {
			if err != nil && err != io.EOF {
				return c.describe(err)
			}
			return errorf("%s is empty", c.path)
		}
		contents = io.MultiReader(strings.NewReader(string(first[:n])), f)
	}
	if c.contains == nil {
		return nil
	}
	r := &errorRecorder{r: io.LimitReader(contents, maxBodyRead)}
	if c.contains.MatchReader(bufio.NewReader(r)) {
		return nil
	}
	if r.err != nil {
		return c.describe(r.err)
	}
	// The pattern is the user's own; what the file holds is never shown.
	return errorf("the first 1 MiB of %s does not match %s", c.path, c.contains)
}

// wantType compares what the path is with the type asked for. Contents are
// only a file's: non-empty and contains need one with type any too.
func (c fileCheck) wantType(m fs.FileMode) error {
	var ok bool
	want := c.want
	switch want {
	case "file":
		ok = m.IsRegular()
	case "dir":
		ok, want = m.IsDir(), "directory"
	case "socket":
		ok = m.Type() == fs.ModeSocket
	case "any":
		ok = true
		if c.nonEmpty || c.contains != nil {
			ok, want = m.IsRegular(), "file"
		}
	}
	if ok {
		return nil
	}
	return errorf("%s is %s, want a %s", c.path, kindOf(m), want)
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a file"
	case m.IsDir():
		return "a directory"
	case m.Type() == fs.ModeSocket:
		return "a socket"
	case m.Type() == fs.ModeNamedPipe:
		return "a named pipe"
	case m.Type()&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// describe turns a file system error into a reason naming the path.
func (c fileCheck) describe(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return errorf("%s does not exist", c.path)
	case errors.Is(err, fs.ErrPermission):
		return errorf("permission denied on %s", c.path)
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return errorf("%s: %v", c.path, pe.Err)
	}
	return err
}
