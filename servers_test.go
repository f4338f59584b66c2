package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Helpers for tests that start a real server from a Debian package: as an
// unprivileged user, on a free loopback port, in a temporary directory.

// nobody is the user the real servers run as.
const nobody = 65534

// requireProgram finds a server program, on PATH or by a glob such as
// /usr/lib/postgresql/*/bin/initdb. Missing, it skips the test, or fails it
// when CI=true, where .ci/run must have installed it.
func requireProgram(t *testing.T, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if matches, _ := filepath.Glob(name); len(matches) > 0 {
			return matches[len(matches)-1]
		}
	}
	requirePrivilege(t, false, "the server program "+names[0]+" is not installed (.ci/run installs it)")
	return ""
}

// requireRoot: only root can start a server as another user.
func requireRoot(t *testing.T) {
	t.Helper()
	requirePrivilege(t, os.Geteuid() == 0, "starting a real server as an unprivileged user needs root")
}

// nobodyDir is a fresh directory that the unprivileged server owns, removed
// at the end of the test.
func nobodyDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "portpatrol-server-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asNobody makes cmd run as the unprivileged user, in its own process group
// so that stopping it stops its children too.
func asNobody(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody},
		Setpgid:    true,
	}
	return cmd
}

// startServer starts cmd (already set up with asNobody) and stops its whole
// process group at the end of the test.
func startServer(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(closedPort(t))
	n, _ := strconv.Atoi(port)
	return n
}

// waitForPort waits until something accepts on addr, for servers whose
// readiness the test must not judge with portpatrol itself.
func waitForPort(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing accepted on %s within %v", addr, within)
}
