package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFileAppearsLate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secrets", "db")
	go func() {
		time.Sleep(300 * time.Millisecond)
		os.Mkdir(filepath.Dir(secret), 0o755)
		os.WriteFile(secret, nil, 0o600) // created empty, as a writer does first
		time.Sleep(300 * time.Millisecond)
		os.WriteFile(secret, []byte("password=hunter2-very-secret\n"), 0o600)
	}()
	o := runPortpatrol(t, nil, "--file.db.address="+secret, "--file.db.contains=^password=", "--default-interval=50ms",
		"--timeout=10s", "--log-level=debug", "--", "sh", "-c", "echo started")
	o.mustExit(t, 0)
	for _, want := range []string{
		`error="` + secret + ` does not exist"`,
		`error="the first 1 MiB of ` + secret + ` does not match ^password="`,
		`msg=ready target=db type=file`,
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %s:\n%s", want, o.stderr)
		}
	}
	if o.stdout != "started\n" {
		t.Errorf("the command did not run after the file was ready: stdout %q", o.stdout)
	}
	if strings.Contains(o.stderr, "hunter2") {
		t.Errorf("the file's contents were logged:\n%s", o.stderr)
	}
}

func TestFileReasons(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	empty := filepath.Join(dir, "empty")
	full := filepath.Join(dir, "full")
	fifo := filepath.Join(dir, "fifo")
	sock := filepath.Join(dir, "app.sock")
	for path, data := range map[string]string{empty: "", full: "ready: yes\nsecret-token-42\n"} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	unixListener(t, sock)

	for _, tc := range []struct {
		args   []string
		reason string // "" means ready
	}{
		{[]string{full}, ""},
		{[]string{dir}, ""},
		{[]string{full, "--file.f.type=file", "--file.f.non-empty", "--file.f.contains=(?m)^ready: yes$"}, ""},
		{[]string{dir, "--file.f.type=dir"}, ""},
		{[]string{sock, "--file.f.type=socket"}, ""},
		{[]string{empty, "--file.f.type=FILE"}, ""},
		{[]string{filepath.Join(dir, "missing")}, filepath.Join(dir, "missing") + " does not exist"},
		{[]string{filepath.Join(full, "below")}, filepath.Join(full, "below") + " does not exist"},
		{[]string{dir, "--file.f.type=file"}, dir + " is a directory, want a file"},
		{[]string{full, "--file.f.type=dir"}, full + " is a file, want a directory"},
		{[]string{full, "--file.f.type=socket"}, full + " is a file, want a socket"},
		{[]string{sock, "--file.f.type=file"}, sock + " is a socket, want a file"},
		{[]string{empty, "--file.f.non-empty"}, empty + " is empty"},
		{[]string{dir, "--file.f.non-empty"}, dir + " is a directory, want a file"},
		{[]string{full, "--file.f.contains=^nope"}, "the first 1 MiB of " + full + " does not match ^nope"},
		// A named pipe is never opened for reading, which would wait for a writer.
		{[]string{fifo, "--file.f.contains=x"}, fifo + " is a named pipe, want a file"},
	} {
		args := append([]string{"--file.f.address=" + tc.args[0], "--timeout=300ms", "--default-interval=50ms", "--log-level=debug"}, tc.args[1:]...)
		o := runPortpatrol(t, nil, args...)
		if tc.reason == "" {
			o.mustExit(t, 0)
			continue
		}
		o.mustExit(t, 1)
		if !strings.Contains(o.stderr, `error="`+tc.reason+`"`) {
			t.Errorf("%q: want reason %q in\n%s", tc.args, tc.reason, o.stderr)
		}
		if strings.Contains(o.stderr, "secret-token-42") {
			t.Errorf("%q: the file's contents were logged:\n%s", tc.args, o.stderr)
		}
	}
}

// Relative paths are relative to the working directory.
func TestFileRelativePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "done"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ppBinary, "--file.m.address=done", "--file.m.non-empty", "--timeout=5s")
	cmd.Dir = dir
	runCommand(t, cmd).mustExit(t, 0)
	cmd = exec.Command(ppBinary, "--file.m.address=done", "--timeout=300ms")
	cmd.Dir = t.TempDir()
	o := runCommand(t, cmd)
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="done does not exist"`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// A path read through a reference is not shown in reasons.
func TestFilePathFromReference(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "vault-agent-output")
	o := runPortpatrol(t, []string{"PP_SECRET_PATH=" + missing}, "--file.s.address=env:PP_SECRET_PATH", "--timeout=300ms", "--log-level=debug")
	o.mustExit(t, 1)
	if strings.Contains(o.stderr, missing) || !strings.Contains(o.stderr, `error="[hidden] does not exist"`) {
		t.Errorf("a referenced path must be hidden:\n%s", o.stderr)
	}
}

func TestFileStartupErrors(t *testing.T) {
	t.Parallel()
	nul := filepath.Join(t.TempDir(), "path-with-nul")
	if err := os.WriteFile(nul, []byte("/tmp/a\x00b"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := runPortpatrol(t, []string{"PP_EMPTY= "},
		"--file.a.address=/x", "--file.a.type=dir", "--file.a.non-empty",
		"--file.b.address=/x", "--file.b.type=socket", "--file.b.contains=x",
		"--file.c.address=/x", "--file.c.type=fifo",
		"--file.d.address=/x", "--file.d.contains=(",
		"--file.e.address=env:PP_EMPTY",
		"--file.f.address=file:"+nul,
		"--file.g.address=/x", "--file.g.type=dir", "--file.g.non-empty=false")
	o.mustExit(t, 2)
	for _, want := range []string{
		"--file.a.non-empty cannot hold with --file.a.type=dir: only a file has contents",
		"--file.b.contains cannot hold with --file.b.type=socket: only a file has contents",
		"--file.c.type=fifo: want file, dir, socket or any",
		"--file.d.contains=(: not a valid regular expression",
		"--file.e.address=env:PP_EMPTY (resolved): the path is empty",
		"--file.f.address=file:" + nul + " (resolved): the path holds a NUL byte",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if strings.Contains(o.stderr, "file.g") {
		t.Errorf("non-empty=false with type=dir is no contradiction:\n%s", o.stderr)
	}
}

// Permission is the kernel's to grant: portpatrol runs as nobody.
func TestFilePermissionDenied(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := shortDir(t)
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable")
	if err := os.WriteFile(unreadable, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(private, "file")
	cmd := exec.Command(ppBinary, "--file.a.address="+inside, "--file.b.address="+unreadable, "--file.b.contains=x",
		"--file.c.address="+unreadable, "--timeout=300ms", "--default-interval=50ms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	o := runCommand(t, cmd)
	o.mustExit(t, 1)
	for _, want := range []string{
		`target=a type=file address=` + inside + ` attempt=1 error="permission denied on ` + inside + `"`,
		`target=b type=file address=` + unreadable + ` attempt=1 error="permission denied on ` + unreadable + `"`,
		`msg=ready target=c`, // existing is enough without contents
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %s:\n%s", want, o.stderr)
		}
	}
}

// /proc files say they hold 0 bytes: non-empty reads to know.
func TestFileNonEmptyProc(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil, "--file.p.address=/proc/version", "--file.p.non-empty", "--timeout=5s",
		"--file.q.address=/proc/self/status", "--file.q.non-empty", "--file.q.contains=(?m)^Name:")
	o.mustExit(t, 0)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o = runPortpatrol(t, nil, "--file.e.address="+empty, "--file.e.non-empty", "--timeout=300ms", "--default-interval=50ms")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="`+empty+` is empty"`) {
		t.Errorf("an empty file is still empty:\n%s", o.stderr)
	}
}
