// maxrss runs a command and prints its peak RSS in KiB, its wall time in
// nanoseconds and its exit code. It exists because of how Linux counts a
// child's peak RSS: at exec, the child takes over the high-water mark of
// the memory it leaves, and a Go parent's child leaves the parent's own
// (os/exec starts it with CLONE_VM), so a large parent such as the bench
// raises every figure below its own size. Started from this small program,
// a command's figure is its own.
//
//	maxrss COMMAND [ARGS...]
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		panic(err)
	}
	fd := devnull.Fd()
	start := time.Now()
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{fd, fd, fd},
	})
	if err != nil {
		panic(err)
	}
	var status syscall.WaitStatus
	var ru syscall.Rusage
	if _, err := syscall.Wait4(pid, &status, 0, &ru); err != nil {
		panic(err)
	}
	wall := time.Since(start)
	fmt.Println(ru.Maxrss, wall.Nanoseconds(), status.ExitStatus())
}
