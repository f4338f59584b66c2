// Event sources for paths: file targets and unix sockets offer the wait loop
// a "may have changed" signal (waker, in wait.go) from inotify, so that a
// file renamed into place is seen at once rather than at the next interval.
// The interval stays the fallback: where inotify cannot be had, or on a
// file system that sends no events (NFS, some FUSE mounts), paths are polled.

package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// watchMask is what can change a path's readiness: an entry created or
// renamed in, a file written or its mode changed; an entry deleted or
// renamed away (an inverted target is ready when its path is gone); and
// the watched directory itself removed or moved away, after which the
// watch moves up. IN_ONLYDIR: a directory that became a file in a race is
// not watched.
const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_ATTRIB |
	unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// maxSymlinks is how many symbolic links a path may pass through, as
// Linux's own limit (ELOOP beyond).
const maxSymlinks = 40

// lookout is one directory watched for a path: name is the entry in dir
// on the way to the path (the path's own name, a link's, or the first
// missing directory's). wd is its watch, -1 when it could not be had.
type lookout struct {
	dir, name string
	wd        int32
}

// pathWatch is one target's path and where it is watched from now.
type pathWatch struct {
	path    string
	changed chan struct{}
	looks   []lookout
	woken   bool // by the events being dispatched
	moved   bool // ...and where it is watched from must be worked out again
}

// inotifyWatcher is the run's one inotify instance, shared by every path.
type inotifyWatcher struct {
	mu      sync.Mutex
	log     *logger
	started bool
	fd      int // -1: inotify cannot be had, every path is polled
	paths   []*pathWatch
	refs    map[int32]int // lookouts holding each watch
	warned  bool          // that a watch could not be added: said once
}

var watcher inotifyWatcher

// prepareWatch hands the watcher the run's logger; inotify itself starts
// with the first path watched.
func prepareWatch(log *logger) error {
	watcher.mu.Lock()
	watcher.log = log
	watcher.mu.Unlock()
	return nil
}

// watchPath returns a channel that receives when path may have changed,
// or nil when it cannot be watched: then the target is polled.
func watchPath(path string) <-chan struct{} {
	if path == "" {
		return nil
	}
	if path[0] != '/' {
		// Not filepath.Abs, which would clean a/../b lexically: the
		// walk resolves .. after the links before it, as the kernel does.
		wd, err := unix.Getwd() // os.Getwd's fallbacks cost 2 KB
		if err != nil {
			return nil
		}
		path = wd + "/" + path
	}
	w := &watcher
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.start()
	}
	if w.fd < 0 {
		return nil
	}
	p := &pathWatch{path: path, changed: make(chan struct{}, 1)}
	w.follow(p)
	w.paths = append(w.paths, p)
	return p.changed
}

// start opens the inotify instance. CLOEXEC: the command portpatrol execs
// must not inherit it. NONBLOCK: reads go through the runtime's poller
// rather than holding a thread.
func (w *inotifyWatcher) start() {
	w.started, w.fd, w.refs = true, -1, map[int32]int{}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		w.debug("paths are checked at the interval alone: inotify is not available", "inotify_init1", err)
		return
	}
	w.fd = fd
	go w.read(os.NewFile(uintptr(fd), "inotify"))
}

func (w *inotifyWatcher) debug(msg, call string, err error) {
	if w.log == nil {
		return
	}
	reason := call + ": " + err.Error()
	switch err {
	case unix.EMFILE:
		reason += " (fs.inotify.max_user_instances reached, or the limit of open files)"
	case unix.ENOSPC:
		reason += " (fs.inotify.max_user_watches reached)"
	}
	w.log.Debug(msg, "error", reason)
}

// read hands every batch of events to dispatch until the instance fails,
// which it should not: then the interval alone goes on.
func (w *inotifyWatcher) read(f *os.File) {
	// Room for many events; one needs 16 bytes and a name of up to 256.
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		if err != nil {
			w.mu.Lock()
			w.debug("paths are checked at the interval alone: inotify stopped", "read", err)
			w.mu.Unlock()
			return
		}
		w.dispatch(buf[:n])
	}
}

// dispatch wakes each path that an event concerns, after moving its
// watches when a directory on its way appeared or went: a wake sent
// before the new watch is in place could be followed by a change that
// nobody sees.
func (w *inotifyWatcher) dispatch(buf []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	inotifyEvents(buf, func(wd int32, mask uint32, name []byte) {
		if mask&unix.IN_IGNORED != 0 {
			delete(w.refs, wd) // the kernel dropped the watch: its directory is gone
		}
		for _, p := range w.paths {
			if mask&unix.IN_Q_OVERFLOW != 0 || p.concerns(wd, name) {
				// Writes cannot move a path; anything else may have.
				p.woken = true
				p.moved = p.moved || mask&^(unix.IN_MODIFY|unix.IN_CLOSE_WRITE) != 0
			}
		}
	})
	for _, p := range w.paths {
		if p.moved {
			w.follow(p)
		}
		if p.woken {
			select {
			case p.changed <- struct{}{}:
			default: // a wake is already pending: one attempt covers both
			}
		}
		p.woken, p.moved = false, false
	}
}

// concerns says whether an event on watch wd about entry name (empty: the
// directory itself) is on p's way.
func (p *pathWatch) concerns(wd int32, name []byte) bool {
	for _, l := range p.looks {
		if l.wd == wd && (len(name) == 0 || string(name) == l.name) {
			return true
		}
	}
	return false
}

// follow watches the directories p's path is seen from now. A directory
// may appear or go between looking and watching, so it looks again once
// the watches are in place, until both agree: from then on, every change
// on the way raises an event.
func (w *inotifyWatcher) follow(p *pathWatch) {
	for range 8 {
		want := lookouts(p.path)
		gone := false
		for i := range want {
			wd, err := unix.InotifyAddWatch(w.fd, want[i].dir, watchMask)
			switch {
			case err == nil:
				want[i].wd = int32(wd)
			case err == unix.ENOENT || err == unix.ENOTDIR:
				want[i].wd, gone = -1, true // removed since the look: look again
			default:
				// Watches used up (ENOSPC), a directory we may not read:
				// this way is polled.
				want[i].wd = -1
				if !w.warned {
					w.warned = true
					w.debug("a path is checked at the interval alone: inotify cannot watch a directory on its way", "inotify_add_watch", err)
				}
			}
		}
		same := slices.Equal(want, p.looks)
		for _, l := range want {
			if l.wd >= 0 {
				w.refs[l.wd]++
			}
		}
		w.release(p.looks)
		p.looks = want
		if same && !gone {
			return
		}
	}
	// Still moving after eight looks: the next event looks again, and the
	// interval covers the rest.
}

// release drops looks' holds on their watches, removing a watch no path
// holds any more.
func (w *inotifyWatcher) release(looks []lookout) {
	for _, l := range looks {
		n, ok := w.refs[l.wd]
		switch {
		case !ok: // -1, or dropped by the kernel
		case n > 1:
			w.refs[l.wd] = n - 1
		default:
			delete(w.refs, l.wd)
			unix.InotifyRmWatch(w.fd, uint32(l.wd))
		}
	}
}

// lookouts walks path as the kernel resolves it and returns the
// directories to watch: the one holding the path, or else the deepest
// existing directory on its way (whose next entry is missing, or is not a
// directory). Each symbolic link on the way is watched where it is (it may
// be replaced) and then followed, so that a link whose target appears
// later wakes too; .. after a link is its target's parent, as in the
// kernel. path is absolute.
func lookouts(path string) []lookout {
	var looks []lookout
	dir, rest := "/", path
	links := 0
	for rest != "" {
		var name string
		name, rest = cutComponent(rest)
		switch name {
		case "", ".":
			continue
		case "..":
			dir = parentDir(dir)
			continue
		}
		next := joinPath(dir, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return append(looks, lookout{dir: dir, name: name}) // missing: wait for it here
		}
		if fi.Mode()&os.ModeSymlink != 0 && links < maxSymlinks {
			looks = append(looks, lookout{dir: dir, name: name})
			target, err := os.Readlink(next)
			if err != nil {
				return looks
			}
			links++
			if target != "" && target[0] == '/' {
				dir = "/"
			}
			rest = target + "/" + rest
			continue
		}
		if !fi.IsDir() || rest == "" || onlySlashes(rest) {
			return append(looks, lookout{dir: dir, name: name})
		}
		dir = next
	}
	return looks // the root itself: always there
}

// cutComponent splits the first name off a path.
func cutComponent(s string) (name, rest string) {
	for s != "" && s[0] == '/' {
		s = s[1:]
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func onlySlashes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '/' {
			return false
		}
	}
	return true
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// parentDir is the parent of a directory the walk reached, which holds no
// links: lexical .. is right there.
func parentDir(dir string) string {
	i := len(dir) - 1
	for i > 0 && dir[i] != '/' {
		i--
	}
	if i == 0 {
		return "/"
	}
	return dir[:i]
}

// inotifyEvents calls fn for each event in buf as read(2) returns them
// (inotify(7)): struct inotify_event, whose len counts the NUL-padded name
// after it. A record that claims more than buf holds ends the walk.
func inotifyEvents(buf []byte, fn func(wd int32, mask uint32, name []byte)) {
	for len(buf) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(buf[0:4]))
		mask := binary.NativeEndian.Uint32(buf[4:8])
		n := binary.NativeEndian.Uint32(buf[12:16])
		buf = buf[unix.SizeofInotifyEvent:]
		if uint64(n) > uint64(len(buf)) {
			return
		}
		name := buf[:n]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		buf = buf[n:]
		fn(wd, mask, name)
	}
}
