package main

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"
)

// The commands portpatrol runs (exec targets) each lead a process group of
// their own, so that a timeout kills what they started too, and are
// recorded while they run: an attempt does not end with the run (see
// target.wait), and stopChildren kills every group still running when
// portpatrol exits or execs its command, which must inherit neither a
// process nor a zombie. syscall.ForkExec rather than os/exec or
// os.StartProcess, which would cost the binary about 90 KB or 50 KB more.
var children struct {
	sync.Mutex
	pids    map[int]bool
	stopped bool // no child starts any more
}

// startChild starts path with argv and env in a new process group, its
// standard input, output and error on files.
func startChild(path string, argv, env []string, files []uintptr) (int, error) {
	children.Lock()
	defer children.Unlock()
	if children.stopped {
		return 0, errors.New("portpatrol is ending")
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: files, Sys: &syscall.SysProcAttr{Setpgid: true}})
	if err == nil {
		if children.pids == nil {
			children.pids = map[int]bool{}
		}
		children.pids[pid] = true
	}
	return pid, err
}

// reapChild waits until the child pid has exited, killing its process
// group once ctx ends. Its exit is read under the lock stopChildren kills
// under; it polls rather than blocking in wait4, which could not be
// interrupted at ctx's end. Then it kills what the child left running in
// its group, and reaps those of them that came to portpatrol: when it is
// PID 1 (in a container) or a subreaper, a command's orphans are its
// children, and would stay zombies, and pass to the command it execs.
// Otherwise wait4 finds no child in the group at once. (The group's id is
// not reused while any of it is left, so the kill reaches only it.)
func reapChild(ctx context.Context, pid int) syscall.WaitStatus {
	var status syscall.WaitStatus
	for pause := time.Millisecond; ; pause = min(2*pause, 20*time.Millisecond) {
		children.Lock()
		if ctx.Err() != nil {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
		done, err := syscall.Wait4(pid, &status, syscall.WNOHANG, nil)
		children.Unlock()
		if done == pid || err != nil && err != syscall.EINTR {
			break
		}
		time.Sleep(pause)
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if _, err := syscall.Wait4(-pid, nil, syscall.WNOHANG, nil); err != nil && err != syscall.EINTR {
			break // ECHILD: none of the group is portpatrol's child any more
		}
	}
	children.Lock()
	delete(children.pids, pid)
	children.Unlock()
	return status
}

// stopChildren kills every running child's process group and lets their
// goroutines reap them (for at most a second). It is a type's stop.
func stopChildren() {
	children.Lock()
	children.stopped = true
	for pid := range children.pids {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	children.Unlock()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		children.Lock()
		left := len(children.pids)
		children.Unlock()
		if left == 0 {
			return
		}
	}
}

// whyNotRun names what is wrong with a command that was found but could
// not be run; notFound is true for a missing interpreter or loader, which
// the shells report as not found (127).
func whyNotRun(err error) (reason error, notFound bool) {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return errors.New("its interpreter (the #! line) or loader was not found"), true
	case errors.Is(err, syscall.ENOEXEC):
		return errors.New("not an executable format (a script needs a #! line)"), false
	}
	return err, false
}
