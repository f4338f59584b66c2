package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// The database types side by side with the others, as an initContainer
// runs them: real PostgreSQL, MariaDB and Redis with passwords from the
// environment and the address, JSON logs, a deadline, and the command run
// in portpatrol's place once every target is ready.
func TestRealServersTogether(t *testing.T) {
	t.Parallel()
	primary, _ := newPGServers(t)
	primary.start(t)
	primary.sql(t, "CREATE ROLE app LOGIN PASSWORD 'PgS3cret'")
	primary.sql(t, "CREATE DATABASE orders OWNER app")
	db := startMariaDB(t, "", "127.0.0.1")
	db.sql(t, "CREATE DATABASE shop; CREATE USER app@localhost IDENTIFIED BY 'MyS3cret'; GRANT ALL ON shop.* TO app@localhost")
	cache := startRedis(t, "requirepass Red1sS3cret")
	marker := filepath.Join(t.TempDir(), "migrated")
	if err := os.WriteFile(marker, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"DATABASE_URL=postgresql://app:PgS3cret@" + primary.addr() + "/orders?sslmode=disable",
		"REDIS_PASSWORD=Red1sS3cret",
	}
	o := runPortpatrol(t, env,
		"--postgres.db.address=env:DATABASE_URL",
		"--mysql.legacy.address=app:MyS3cret@tcp(127.0.0.1:"+strconv.Itoa(db.port)+")/shop?parseTime=true",
		"--redis.cache.address="+cache.addr, "--redis.cache.password=env:REDIS_PASSWORD",
		"--tcp.port.address="+cache.addr,
		"--file.migrated.address="+marker, "--file.migrated.non-empty",
		"--log-format=json", "--log-level=debug", "--timeout=60s",
		"--", "sh", "-c", "echo started")
	o.mustExit(t, 0)
	if o.stdout != "started\n" {
		t.Errorf("stdout %q, want the command's own output", o.stdout)
	}
	ready := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(o.stderr), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("a stderr line is not JSON: %q", line)
		}
		if entry["msg"] == "ready" {
			ready[entry["target"].(string)] = true
		}
	}
	for _, name := range []string{"db", "legacy", "cache", "port", "migrated"} {
		if !ready[name] {
			t.Errorf("target %s was not logged ready:\n%s", name, o.stderr)
		}
	}
	for _, secret := range []string{"PgS3cret", "MyS3cret", "Red1sS3cret"} {
		if strings.Contains(o.stderr, secret) {
			t.Errorf("the output shows the password %s:\n%s", secret, o.stderr)
		}
	}
}
