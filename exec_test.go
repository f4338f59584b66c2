package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A file test that fails until the file appears: not ready with the exit
// status, then ready.
func TestExecFileTestBecomesTrue(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "migrated")
	p := startPortpatrol(t, exec.Command(ppBinary, "--exec.m.address=test -f "+marker, "--exec.m.interval=50ms", "--timeout=20s"))
	waitFor(t, p.stderr, `error="exit status 1"`)
	os.WriteFile(marker, nil, 0o644)
	p.exit(t, 0, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "msg=ready target=m type=exec") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
}

// The reason is the exit status or signal and the last line written,
// standard error first.
func TestExecReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ script, want string }{
		{`echo out; echo 'ERROR:  relation "users" does not exist' >&2; echo >&2; exit 3`, `exit status 3: ERROR:  relation \"users\" does not exist"`},
		{`echo only stdout; echo; exit 4`, `exit status 4: only stdout"`},
		{`exit 5`, `error="exit status 5"`},
		{`printf 'no newline at the end' >&2; exit 6`, `exit status 6: no newline at the end"`},
		{`printf 'a\033[31mred\r\n' >&2; exit 7`, `exit status 7: a�[31mred"`},
		{`echo dying >&2; kill -TERM $$`, `killed by signal terminated: dying"`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			o := runPortpatrol(t, nil, "--exec.r.address=sh -c '"+strings.ReplaceAll(tc.script, "'", `'\''`)+"'", "--exec.r.max-attempts=1")
			o.mustExit(t, 1)
			if !strings.Contains(o.stderr, tc.want) {
				t.Errorf("want %s in\n%s", tc.want, o.stderr)
			}
		})
	}
}

// A script whose #! names no interpreter, or that has no #! line, says so,
// as a command after -- does.
func TestExecCannotBeRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"#!/nonexistent/interp\necho hi\n", "cannot be run: its interpreter (the #! line) or loader was not found"},
		{"\x7fELF not really\n", "cannot be run: not an executable format (a script needs a #! line)"},
	} {
		script := filepath.Join(dir, strconv.Itoa(len(tc.body))+".sh")
		os.WriteFile(script, []byte(tc.body), 0o755)
		o := runPortpatrol(t, nil, "--exec.r.address="+script, "--exec.r.max-attempts=1")
		o.mustExit(t, 1)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("want %s in\n%s", tc.want, o.stderr)
		}
	}
}

// A command that writes 200 KB on one line and fails: the reason quotes
// about 200 bytes of it, and the output with --log-format=json too.
func TestExecLargeOutputNotEchoed(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		o := runPortpatrol(t, nil, "--exec.big.address=sh -c 'head -c 200000 /dev/zero | tr \"\\0\" x; head -c 200000 /dev/zero | tr \"\\0\" y >&2; exit 1'",
			"--exec.big.max-attempts=1", "--log-format="+format)
		o.mustExit(t, 1)
		if len(o.stderr) > 2000 || strings.Contains(o.stderr, strings.Repeat("x", 10)) || !strings.Contains(o.stderr, strings.Repeat("y", 200)+"…") ||
			strings.Contains(o.stderr, strings.Repeat("y", 201)) {
			t.Errorf("%s: %d bytes of stderr:\n%.3000s", format, len(o.stderr), o.stderr)
		}
	}
}

// A command that starts a child and sleeps past its timeout: both are
// killed, and the reason says so.
func TestExecTimeoutKillsTheGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "hang")
	os.WriteFile(script, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+dir+"/child\necho $$ > "+dir+"/pid\necho waiting for Godot >&2\nsleep 301\n"), 0o755)
	o := runPortpatrol(t, nil, "--exec.h.address="+script, "--exec.h.timeout=500ms", "--exec.h.max-attempts=1")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="did not finish within 500ms and was killed: waiting for Godot"`) || o.elapsed > 5*time.Second {
		t.Errorf("after %v:\n%s", o.elapsed, o.stderr)
	}
	for _, pid := range readPids(t, dir) {
		if !processGone(pid, 2*time.Second) {
			t.Errorf("process %d still runs after its attempt's timeout", pid)
		}
	}
}

// A command that succeeds and leaves a child running: ready, and the
// child goes with it.
func TestExecLeftoverKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "daemonize")
	os.WriteFile(script, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+dir+"/child\necho $$ > "+dir+"/pid\n"), 0o755)
	o := runPortpatrol(t, nil, "--exec.d.address="+script, "--exec.d.max-attempts=1")
	o.mustExit(t, 0)
	for _, pid := range readPids(t, dir) {
		if !processGone(pid, 2*time.Second) {
			t.Errorf("process %d still runs after its command exited", pid)
		}
	}
}

func readPids(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	for _, f := range []string{"pid", "child"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			t.Fatalf("the command wrote no %s file: %v", f, err)
		}
		pids = append(pids, pid)
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	return pids
}

// A command still running when portpatrol ends, at --timeout or on
// SIGTERM, is killed with what it started.
func TestExecEndsWithPortpatrol(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"deadline", "SIGTERM"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			script := filepath.Join(dir, "hang")
			os.WriteFile(script, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+dir+"/child\necho $$ > "+dir+"/pid.new\nmv "+dir+"/pid.new "+dir+"/pid\nwait\n"), 0o755)
			args := []string{"--exec.h.address=" + script, "--exec.h.timeout=60s"}
			if end == "deadline" {
				o := runPortpatrol(t, nil, append(args, "--timeout=1s")...)
				o.mustExit(t, 1)
			} else {
				p := startPortpatrol(t, exec.Command(ppBinary, append(args, "--timeout=60s")...))
				waitForFile(t, filepath.Join(dir, "pid"))
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.exit(t, 128+int(syscall.SIGTERM), 10*time.Second)
			}
			for _, pid := range readPids(t, dir) {
				if !processGone(pid, 2*time.Second) {
					t.Errorf("process %d still runs after portpatrol ended", pid)
				}
			}
		})
	}
}

// output also requires standard output to match; standard error does not
// count.
func TestExecOutput(t *testing.T) {
	t.Parallel()
	cmd := `--exec.o.address=sh -c 'echo "status: up" ; echo "state: ok" >&2'`
	runPortpatrol(t, nil, cmd, "--exec.o.output=^status: up$").mustExit(t, 0)
	// A Windows-made script ends its lines with CR LF: both are final line breaks.
	runPortpatrol(t, nil, `--exec.o.address=printf 'status: up\r\n'`, "--exec.o.output=^status: up$", "--exec.o.max-attempts=1").mustExit(t, 0)
	for _, re := range []string{"state: ok", "status: down"} {
		o := runPortpatrol(t, nil, cmd, "--exec.o.output="+re, "--exec.o.max-attempts=1")
		o.mustExit(t, 1)
		if want := `error="exit status 0, but the first 1 MiB of its output does not match ` + re + `"`; !strings.Contains(o.stderr, want) {
			t.Errorf("want %s in\n%s", want, o.stderr)
		}
	}
	o := runPortpatrol(t, nil, "--exec.o.address=false", "--exec.o.output=.*", "--exec.o.max-attempts=1")
	o.mustExit(t, 1)
}

// Inverted, the target waits while the command succeeds.
func TestExecInvert(t *testing.T) {
	t.Parallel()
	lock := filepath.Join(t.TempDir(), "lock")
	os.WriteFile(lock, nil, 0o644)
	p := startPortpatrol(t, exec.Command(ppBinary, "--exec.l.address=test -e "+lock, "--exec.l.invert", "--exec.l.interval=50ms", "--timeout=20s"))
	waitFor(t, p.stderr, `error="test -e `+lock+` still succeeds"`)
	os.Remove(lock)
	p.exit(t, 0, 10*time.Second)
	if !strings.Contains(p.stderr.String(), `invert=true seen="exit status 1"`) {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
}

// The words reach the command as a shell would pass them; the command
// prints each in brackets.
func TestExecQuoting(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil, `--exec.q.address=printf '[%s]' plain 'single "quoted" $HOME' "double 'quoted' \$HOME \"\\" back\ slash\\ ''`,
		`--exec.q.output=^\[plain\]\[single "quoted" \$HOME\]\[double 'quoted' \$HOME "\\\]\[back slash\\\]\[\]$`)
	o.mustExit(t, 0)
}

// splitWords against the shell: every line it accepts, sh splits into the
// same words.
func TestSplitWords(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`pg_isready -h db -p 5432`,
		"  tab\tand  spaces  ",
		`a'b'"c"d\ e`,
		`'' "" x`,
		`"a\b\$c\"d\\e\` + "\n" + `f"`,
		`a\` + "\nb",
		`\* \? \[ \$HOME \| \; \# '#' '~' a#b a~b`,
		`"it's" 'say "hi"'`,
		`x=1 y`,
	} {
		got, err := splitWords(line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		out, err := exec.Command(sh, "-c", "set -- "+line+`; for w in "$@"; do printf '%s\0' "$w"; done`).Output()
		if err != nil {
			t.Fatalf("sh on %q: %v", line, err)
		}
		want := strings.Split(string(out), "\x00")
		want = want[:len(want)-1]
		if !slices.Equal(got, want) {
			t.Errorf("%q: got %q, sh says %q", line, got, want)
		}
	}
}

// Bad commands are start-up errors that name the flag.
func TestExecStartupErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plain"), []byte("#!/bin/sh\n"), 0o644)
	for _, tc := range []struct{ address, want string }{
		{"no-such-command-31 --flag", `--exec.x.address="no-such-command-31 --flag": command "no-such-command-31" not found`},
		{filepath.Join(dir, "plain"), `--exec.x.address=` + dir + `/plain: command "` + dir + `/plain" cannot be run: permission denied`},
		{dir, `: command "` + dir + `" cannot be run: is a directory`},
		{`''`, `--exec.x.address='': command "" not found`},
		{"true\nfalse", `'\n' at byte 5 would be an operator`},
		{" ", `--exec.x.address=" ": must not be empty`},
		{`echo 'unterminated`, `--exec.x.address="echo 'unterminated": unterminated quote ' at byte 6`},
		{`echo "unterminated`, `unterminated quote " at byte 6`},
		{`echo trailing\`, `the command line ends in a backslash`},
		{`pg_isready | grep ok`, `'|' at byte 12 would be an operator or an expansion to a shell, and none is run: quote it, or run one (sh -c '…')`},
		{`test -f $HOME/x`, `'$' at byte 9 would be an operator`},
		{`test -f "$HOME/x"`, `'$' at byte 10 would be an operator`},
		{`ls *.ready`, `'*' at byte 4`},
		{`ls ~`, `'~' at byte 4`},
		{`true # comment`, `'#' at byte 6`},
		{`true; false`, `';' at byte 5`},
		{`true > /dev/null`, `'>' at byte 6`},
	} {
		o := runPortpatrol(t, nil, "--exec.x.address="+tc.address)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%q: want %s in\n%s", tc.address, tc.want, o.stderr)
		}
	}
	os.WriteFile(filepath.Join(dir, "nul"), []byte("echo a\x00b"), 0o644)
	if o := runPortpatrol(t, nil, "--exec.x.address=file:"+filepath.Join(dir, "nul")); !strings.Contains(o.stderr, `(resolved): the command line holds a NUL byte`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
	if o := runPortpatrol(t, nil, "--exec.x.address=true", "--exec.x.output=("); !strings.Contains(o.stderr, "--exec.x.output=(: not a valid regular expression") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// Any line splitWords accepts splits again into the same words once each
// word is single-quoted.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`a 'b c' "d\"e" f\ g`, `"\$x" '#'`, "a\\\nb", `x''`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := splitWords(line)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := splitWords(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q: %q, then %q (%v)", line, words, again, err)
		}
	})
}

// As PID 1 (a container's entrypoint), portpatrol inherits the orphans of
// the commands it runs: what a command left running is killed and reaped,
// so that no zombie passes to the command portpatrol execs, which lists the
// children of PID 1 here.
func TestExecReapsOrphansAsPID1(t *testing.T) {
	t.Parallel()
	requirePrivilege(t, os.Geteuid() == 0, "a PID namespace of its own needs root")
	unshare := requireProgram(t, "unshare")
	o := runCommand(t, exec.Command(unshare, "--mount", "--pid", "--fork", "--mount-proc", ppBinary,
		"--exec.x.address=sh -c 'sleep 300 & sleep 300 & exit 0'", "--log-level=warn", "--", "cat", "/proc/1/task/1/children"))
	o.mustExit(t, 0)
	if strings.TrimSpace(o.stdout) != "" {
		t.Errorf("PID 1 has children %q after the wait: zombies passed to the command\n%s", o.stdout, o.stderr)
	}
}
