// bench measures the release binary of portpatrol against floor programs in
// the same run and prints each figure beside its budget. It only reports:
// scripts/bench.sh builds the binaries and passes their paths.
//
//	bench -portpatrol PATH -dialonce PATH -poller PATH -imports PATH
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"
)

var (
	portpatrol = flag.String("portpatrol", "dist/portpatrol", "release binary")
	dialonce   = flag.String("dialonce", "dist/dialonce", "start-up floor")
	poller     = flag.String("poller", "dist/poller", "idle-cost floor")
	imports    = flag.String("imports", "dist/imports", "start-up floor plus the packages portpatrol must link")
	runs       = flag.Int("runs", 200, "runs of the start-up comparison")
)

func main() {
	flag.Parse()
	fmt.Printf("%-44s %14s %14s %10s\n", "measure", "figure", "budget", "")
	startup()
	idle()
	thousand()
	size()
	latency()
}

func report(measure, figure, budget string, ok bool) {
	verdict := "ok"
	if !ok {
		verdict = "MISSED"
	}
	fmt.Printf("%-44s %14s %14s %10s\n", measure, figure, budget, verdict)
}

// listen accepts and closes connections until the program ends.
func listen() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

func closedAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type result struct {
	wall    time.Duration
	cpu     time.Duration
	rssKiB  int64
	success bool
}

func run(name string, args ...string) result {
	cmd := exec.Command(name, args...)
	start := time.Now()
	err := cmd.Run()
	r := result{wall: time.Since(start), success: err == nil}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.rssKiB = ru.Maxrss
	}
	return r
}

func median[T int64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func startup() {
	addr := listen()
	var pp, floor, linked []time.Duration
	for range *runs { // interleaved, so drift in the machine hits all alike
		r := run(*portpatrol, "--tcp.x.address="+addr)
		f := run(*dialonce, addr)
		l := run(*imports, addr)
		if !r.success || !f.success || !l.success {
			panic("start-up run failed")
		}
		pp, floor, linked = append(pp, r.wall), append(floor, f.wall), append(linked, l.wall)
	}
	ratio := float64(median(pp)) / float64(median(floor))
	report("start-up to ready (median wall)", median(pp).Round(time.Microsecond).String(), "", true)
	report("  floor: dial once and exit", median(floor).Round(time.Microsecond).String(), "", true)
	report("  ratio", fmt.Sprintf("%.2fx", ratio), "<= 1.40x", ratio <= 1.4)
	// Not a budget: the share of the ratio that linking the required
	// packages costs before any portpatrol code runs.
	report("  reference: floor + required packages", median(linked).Round(time.Microsecond).String(), "", true)
	report("  reference ratio", fmt.Sprintf("%.2fx", float64(median(linked))/float64(median(floor))), "", true)
}

func idle() {
	var addrs []string
	for range 100 {
		addrs = append(addrs, closedAddr())
	}
	ppArgs := []string{"--timeout=5s", "--default-interval=100ms", "--log-level=error"}
	for i, a := range addrs {
		ppArgs = append(ppArgs, "--tcp.t"+strconv.Itoa(i)+".address="+a)
	}
	var pp, floor []time.Duration
	for range 5 {
		pp = append(pp, run(*portpatrol, ppArgs...).cpu)
		floor = append(floor, run(*poller, append([]string{"100ms", "5s"}, addrs...)...).cpu)
	}
	ratio := float64(median(pp)) / float64(median(floor))
	report("idle: 100 refused targets, 100ms, 5s (CPU)", median(pp).Round(time.Millisecond).String(), "", true)
	report("  floor: silent poller", median(floor).Round(time.Millisecond).String(), "", true)
	report("  ratio", fmt.Sprintf("%.2fx", ratio), "<= 1.10x", ratio <= 1.1)
}

func thousand() {
	addr := listen()
	args := []string{"--timeout=30s", "--log-level=error"}
	for i := range 1000 {
		args = append(args, "--tcp.t"+strconv.Itoa(i)+".address="+addr)
	}
	var walls []time.Duration
	var rss []int64
	for range 15 {
		r := run(*portpatrol, args...)
		if !r.success {
			panic("1000 targets did not become ready")
		}
		walls, rss = append(walls, r.wall), append(rss, r.rssKiB)
	}
	w, m := median(walls), median(rss)
	report("1000 ready TCP targets: wall (median)", w.Round(time.Millisecond).String(), "<= 150ms", w <= 150*time.Millisecond)
	report("1000 ready TCP targets: peak RSS (median)", fmt.Sprintf("%.1f MB", float64(m)/1024), "<= 16 MB", m <= 16*1024)
}

func size() {
	st, err := os.Stat(*portpatrol)
	if err != nil {
		panic(err)
	}
	mb := float64(st.Size()) / 1e6
	report("release binary, linux/amd64", fmt.Sprintf("%.2f MB", mb), "<= 6.00 MB", mb <= 6.0)
	if st, err = os.Stat(*imports); err != nil {
		panic(err)
	}
	report("  reference: required packages alone", fmt.Sprintf("%.2f MB", float64(st.Size())/1e6), "", true)
}

// latency opens a port at a random moment and times how long portpatrol
// takes to exit 0 after that, with a 100ms interval.
func latency() {
	const interval = 100 * time.Millisecond
	var lat []time.Duration
	for range 25 {
		addr := closedAddr()
		cmd := exec.Command(*portpatrol, "--tcp.x.address="+addr, "--default-interval="+interval.String(), "--log-level=error")
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		time.Sleep(200*time.Millisecond + rand.N(500*time.Millisecond))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			panic(err)
		}
		opened := time.Now()
		cmd.Wait()
		lat = append(lat, time.Since(opened))
		l.Close()
	}
	worst := slices.Max(lat)
	report("detection latency, 100ms interval (median)", median(lat).Round(100*time.Microsecond).String(), "", true)
	report("detection latency, 100ms interval (worst)", worst.Round(100*time.Microsecond).String(), "<= 105ms", worst <= interval+5*time.Millisecond)
}
