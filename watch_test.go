package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wakeOnlyFlags are the flags of a run that only a wake can make ready: the next
// attempt by the interval would come long after the deadline.
var wakeOnlyFlags = []string{"--default-interval=1h", "--timeout=10s", "--log-level=debug"}

// livePortpatrol is portpatrol running while the test changes what it waits
// for; the test follows its log to know when to make the next change.
type livePortpatrol struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr strings.Builder
	grew   chan struct{} // stderr has a new line
	closed chan struct{} // stderr is at its end
}

func startLivePortpatrol(t *testing.T, cmd *exec.Cmd) *livePortpatrol {
	t.Helper()
	b := &livePortpatrol{cmd: cmd, grew: make(chan struct{}, 1), closed: make(chan struct{})}
	cmd.Stdout = &b.stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	go func() {
		defer close(b.closed)
		lines := bufio.NewScanner(pipe)
		for lines.Scan() {
			b.mu.Lock()
			b.stderr.WriteString(lines.Text() + "\n")
			b.mu.Unlock()
			select {
			case b.grew <- struct{}{}:
			default:
			}
		}
	}()
	return b
}

func (b *livePortpatrol) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stderr.String()
}

// waitFor returns once the log holds want. portpatrol's own deadline ends
// the wait for a line that never comes.
func (b *livePortpatrol) waitFor(t *testing.T, want string) {
	t.Helper()
	for !strings.Contains(b.log(), want) {
		select {
		case <-b.grew:
		case <-b.closed:
			if !strings.Contains(b.log(), want) {
				t.Fatalf("portpatrol ended before logging %s:\n%s", want, b.log())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s in 30 s:\n%s", want, b.log())
		}
	}
}

func (b *livePortpatrol) wait(t *testing.T) outcome {
	t.Helper()
	<-b.closed
	b.cmd.Wait()
	return outcome{code: b.cmd.ProcessState.ExitCode(), stdout: b.stdout.String(), stderr: b.log()}
}

func startWaitingForWake(t *testing.T, args ...string) *livePortpatrol {
	t.Helper()
	return startLivePortpatrol(t, exec.Command(ppBinary, append(slices.Clone(wakeOnlyFlags), args...)...))
}

// renameIntoPlace writes a file beside path and renames it into place, as a
// writer that must never show a half-written file does.
func renameIntoPlace(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileSeenAtOnceWhenRenamed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "db.env")
	b := startWaitingForWake(t, "--file.s.address="+path, "--", "sh", "-c", "echo started")
	b.waitFor(t, "attempt=1 error=\""+path+" does not exist\"")
	renameIntoPlace(t, path, "PASSWORD=x\n")
	o := b.wait(t)
	o.mustExit(t, 0)
	if o.stdout != "started\n" || !strings.Contains(o.stderr, "msg=ready target=s type=file address="+path+" attempts=2") {
		t.Errorf("want ready at the second attempt, woken by the rename; stdout %q, stderr:\n%s", o.stdout, o.stderr)
	}
}

// A file created empty and written afterwards: the write wakes the wait.
func TestFileSeenAtOnceWhenWritten(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	b := startWaitingForWake(t, "--file.s.address="+path, "--file.s.non-empty")
	b.waitFor(t, "attempt=1 error=\""+path+" does not exist\"")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "error=\""+path+" is empty\"")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("s.3cr3t\n")
	f.Close()
	b.wait(t).mustExit(t, 0)
}

// The watch moves down as each missing directory appears.
func TestFileSeenAtOnceInDirectoriesCreatedLater(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets", "app", "db.env")
	b := startWaitingForWake(t, "--file.s.address="+path)
	b.waitFor(t, "attempt=1 error=")
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "attempt=2 error=")
	if err := os.Mkdir(filepath.Join(dir, "secrets", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "attempt=3 error=")
	renameIntoPlace(t, path, "PASSWORD=x\n")
	b.wait(t).mustExit(t, 0)
}

// The watched directory is removed with the file in it, then both come
// back: the watch moves up, then down again.
func TestFileSeenAtOnceAfterDeletion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sub := filepath.Join(dir, "run")
	path := filepath.Join(sub, "state")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("state: migrating\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startWaitingForWake(t, "--file.s.address="+path, "--file.s.contains=(?m)^state: ready$")
	b.waitFor(t, "attempt=1 error=\"the first 1 MiB of "+path+" does not match")
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "error=\""+path+" does not exist\"")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("state: ready\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.wait(t).mustExit(t, 0)
}

// An inverted target is woken when its path goes: the file deleted or
// renamed away, a directory on its way removed or moved away, a directory
// target removed. Only a wake can end these runs in time.
func TestInvertFileSeenGoneAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		dir  bool // the target is the directory a/b itself
		gone func(root string) error
	}{
		{"deleted", false, func(root string) error { return os.Remove(filepath.Join(root, "a", "b", "lock")) }},
		{"renamed away", false, func(root string) error {
			return os.Rename(filepath.Join(root, "a", "b", "lock"), filepath.Join(root, "lock.old"))
		}},
		{"renamed within", false, func(root string) error {
			return os.Rename(filepath.Join(root, "a", "b", "lock"), filepath.Join(root, "a", "b", "lock.old"))
		}},
		{"parent removed", false, func(root string) error { return os.RemoveAll(filepath.Join(root, "a", "b")) }},
		{"ancestor removed", false, func(root string) error { return os.RemoveAll(filepath.Join(root, "a")) }},
		{"parent moved away", false, func(root string) error {
			return os.Rename(filepath.Join(root, "a", "b"), filepath.Join(root, "b.old"))
		}},
		{"directory removed", true, func(root string) error { return os.Remove(filepath.Join(root, "a", "b")) }},
		{"directory moved away", true, func(root string) error {
			return os.Rename(filepath.Join(root, "a", "b"), filepath.Join(root, "b.old"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			path := filepath.Join(root, "a", "b")
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			if !tc.dir {
				path = filepath.Join(path, "lock")
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b := startWaitingForWake(t, "--file.lock.address="+path, "--file.lock.invert")
			b.waitFor(t, "attempt=1 error=\""+path+" still exists\"")
			if err := tc.gone(root); err != nil {
				t.Fatal(err)
			}
			o := b.wait(t)
			o.mustExit(t, 0)
			if !strings.Contains(o.stderr, "msg=ready target=lock type=file address="+path+" attempts=2") {
				t.Errorf("want ready at the second attempt, woken by the change:\n%s", o.stderr)
			}
		})
	}
}

// A link made before its target: the target's directory is watched too.
func TestFileSeenAtOnceThroughLink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "releases"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "current")
	if err := os.Symlink("releases/v2/config", link); err != nil {
		t.Fatal(err)
	}
	b := startWaitingForWake(t, "--file.s.address="+link, "--file.s.type=file")
	b.waitFor(t, "attempt=1 error=\""+link+" does not exist\"")
	if err := os.Mkdir(filepath.Join(dir, "releases", "v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "attempt=2 error=")
	renameIntoPlace(t, filepath.Join(dir, "releases", "v2", "config"), "ok\n")
	b.wait(t).mustExit(t, 0)
}

// A unix socket appears: tcp and http over it are woken. The socket is
// bound and listening before it is renamed into place: a server that binds
// and only then listens gives inotify nothing to see at the listen.
func TestUnixSocketSeenAtOnce(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	for _, tc := range []struct{ name, flags string }{
		{"tcp", "--tcp.s.address=unix://%s"},
		{"http", "--http.s.address=http://app/health --http.s.unix-socket=%s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(dir, tc.name+".sock")
			args := strings.Fields(strings.ReplaceAll(tc.flags, "%s", sock))
			b := startWaitingForWake(t, args...)
			b.waitFor(t, "attempt=1 error=\"no socket at "+sock+"\"")
			bound := filepath.Join(dir, "."+tc.name+".sock")
			l := unixListener(t, bound)
			go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			if err := os.Rename(bound, sock); err != nil {
				t.Fatal(err)
			}
			b.wait(t).mustExit(t, 0)
		})
	}
}

// The command portpatrol execs does not inherit the inotify descriptor.
func TestInotifyClosedBeforeExec(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ready")
	b := startWaitingForWake(t, "--file.s.address="+path, "--", "sh", "-c", `ls -l /proc/$$/fd`)
	b.waitFor(t, "attempt=1 error=")
	renameIntoPlace(t, path, "")
	o := b.wait(t)
	o.mustExit(t, 0) // woken, so inotify was open
	if strings.Count(o.stdout, " -> ") < 3 {
		t.Fatalf("the command listed no descriptors: %q", o.stdout)
	}
	if strings.Contains(o.stdout, "inotify") {
		t.Errorf("the command inherited the inotify descriptor:\n%s", o.stdout)
	}
}

// Where inotify cannot be had, paths are polled at the interval and one
// debug line says why. The causes are real and the test's alone: in a user
// namespace that an unprivileged user creates, user.max_inotify_instances
// and user.max_inotify_watches are that namespace's own limits; 0 makes
// inotify_init1 fail with EMFILE, or inotify_add_watch with ENOSPC, there,
// while the machine's fs.inotify settings stay as they are.
func TestInotifyUnavailableFallsBackToInterval(t *testing.T) {
	t.Parallel()
	_, err := exec.LookPath("unshare")
	requirePrivilege(t, err == nil, "unshare (util-linux) is not installed")
	var asUser []string
	if os.Geteuid() == 0 {
		requireSetpriv(t)
		asUser = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
	}
	probe := append(slices.Clone(asUser), "unshare", "--user", "--map-root-user", "true")
	out, err := exec.Command(probe[0], probe[1:]...).CombinedOutput()
	requirePrivilege(t, err == nil, "an unprivileged user may not create a user namespace here: "+string(out))
	for _, tc := range []struct{ limit, want string }{
		{"max_inotify_instances", `level=DEBUG msg="paths are checked at the interval alone: inotify is not available" error="inotify_init1: too many open files`},
		{"max_inotify_watches", `level=DEBUG msg="a path is checked at the interval alone: inotify cannot watch a directory on its way" error="inotify_add_watch: no space left on device`},
	} {
		t.Run(tc.limit, func(t *testing.T) {
			t.Parallel()
			dir := shortDir(t) // nobody may look in
			path := filepath.Join(dir, "ready")
			args := append(slices.Clone(asUser), "unshare", "--user", "--map-root-user", "sh", "-c",
				`echo 0 >/proc/sys/user/`+tc.limit+` && exec "$0" "$@"`, ppBinary,
				"--file.s.address="+path, "--default-interval=1s", "--timeout=30s", "--log-level=debug")
			b := startLivePortpatrol(t, exec.Command(args[0], args[1:]...))
			b.waitFor(t, "attempt=1 error=")
			renameIntoPlace(t, path, "")
			o := b.wait(t)
			if strings.Contains(o.stderr, tc.limit) {
				t.Fatalf("the namespace's limit could not be set:\n%s", o.stderr)
			}
			o.mustExit(t, 0)
			if n := strings.Count(o.stderr, tc.want); n != 1 {
				t.Errorf("want one debug line %s, got %d:\n%s", tc.want, n, o.stderr)
			}
			if !strings.Contains(o.stderr, "msg=ready target=s type=file address="+path+" attempts=2") {
				t.Errorf("want ready at the second attempt, after the interval:\n%s", o.stderr)
			}
		})
	}
}

// A Kubernetes projected volume updates its files by swapping a link:
// key -> ..data/key, ..data -> ..<timestamp>.
func TestFileSeenAtOnceWhenLinkSwapped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, version := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, version), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "..v1", "key"), []byte("rev=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"..data": "..v1", "key": "..data/key"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "key")
	b := startWaitingForWake(t, "--file.s.address="+path, "--file.s.contains=rev=2")
	b.waitFor(t, "attempt=1 error=")
	if err := os.WriteFile(filepath.Join(dir, "..v2", "key"), []byte("rev=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	b.wait(t).mustExit(t, 0)
}

func TestLookouts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, d := range []string{"a/b", "k/..2026"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"k/..data": "..2026",      // a Kubernetes projected volume
		"k/key":    "..data/key",  // ...and its file
		"up":       "a/b/../../x", // .. after a real directory
		"abs":      dir + "/a/b/f",
		"loop":     "loop",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	type look struct{ dir, name string }
	for _, tc := range []struct {
		path string
		want []look
	}{
		{"a/b/f", []look{{"a/b", "f"}}},
		{"a/b/c/d/f", []look{{"a/b", "c"}}},
		{"a/file/f", []look{{"a", "file"}}}, // a file where a directory should be
		{"a/./b//f", []look{{"a/b", "f"}}},
		{"a/b/../b/f", []look{{"a/b", "f"}}},
		{"k/key", []look{{"k", "key"}, {"k", "..data"}, {"k/..2026", "key"}}},
		{"up", []look{{"", "up"}, {"", "x"}}},
		{"abs", []look{{"", "abs"}, {"a/b", "f"}}},
	} {
		var got []look
		for _, l := range lookouts(dir + "/" + tc.path) {
			rel, _ := filepath.Rel(dir, l.dir)
			if rel == "." {
				rel = ""
			}
			got = append(got, look{rel, l.name})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.path, got, tc.want)
		}
	}
	if n := len(lookouts(dir + "/loop")); n != maxSymlinks+1 {
		t.Errorf("a link to itself: %d lookouts, want %d", n, maxSymlinks+1)
	}
}

func TestInotifyEvents(t *testing.T) {
	event := func(wd int32, mask uint32, name string, pad int) []byte {
		b := binary.NativeEndian.AppendUint32(nil, uint32(wd))
		b = binary.NativeEndian.AppendUint32(b, mask)
		b = binary.NativeEndian.AppendUint32(b, 0)
		b = binary.NativeEndian.AppendUint32(b, uint32(len(name)+pad))
		return append(append(b, name...), make([]byte, pad)...)
	}
	buf := append(event(1, syscall.IN_CREATE, "db.env", 10), event(2, syscall.IN_DELETE_SELF, "", 0)...)
	buf = append(buf, event(3, syscall.IN_MODIFY, "cut", 1)[:19]...) // claims more than is there
	type ev struct {
		wd   int32
		mask uint32
		name string
	}
	var got []ev
	inotifyEvents(buf, func(wd int32, mask uint32, name []byte) { got = append(got, ev{wd, mask, string(name)}) })
	want := []ev{{1, syscall.IN_CREATE, "db.env"}, {2, syscall.IN_DELETE_SELF, ""}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func FuzzInotifyEvents(f *testing.F) {
	f.Add(append(binary.NativeEndian.AppendUint32(make([]byte, 12), 4), "a\x00\x00\x00"...))
	f.Fuzz(func(t *testing.T, buf []byte) {
		total := 0
		inotifyEvents(buf, func(wd int32, mask uint32, name []byte) {
			total += 16 + len(name)
			if bytes.IndexByte(name, 0) >= 0 {
				t.Fatalf("a name holds a NUL: %q", name)
			}
		})
		if total > len(buf) {
			t.Fatalf("%d bytes of events from %d", total, len(buf))
		}
	})
}
