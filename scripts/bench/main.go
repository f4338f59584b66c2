// bench measures the release binary of portpatrol against floor programs in
// the same run and prints each figure beside its budget with PASS or MISS.
// It only reports, it never fails: scripts/bench.sh builds the binaries and
// passes their paths.
//
//	bench -portpatrol PATH -dialonce PATH -dialmany PATH -poller PATH -imports PATH
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

var (
	portpatrol      = flag.String("portpatrol", "dist/portpatrol", "release binary")
	portpatrolPlain = flag.String("portpatrol-plain", "dist/portpatrol-plain", "release binary built without -gcflags")
	dialonce        = flag.String("dialonce", "dist/dialonce", "start-up floor")
	dialmany        = flag.String("dialmany", "dist/dialmany", "floor for 1000 targets: one dial per address from goroutines")
	poller          = flag.String("poller", "dist/poller", "idle-cost floor")
	imports         = flag.String("imports", "dist/imports", "start-up floor plus the packages portpatrol must link")
	maxrss          = flag.String("maxrss", "dist/maxrss", "runs a command from a small process, for a peak RSS of its own")
	runs            = flag.Int("runs", 200, "runs of the start-up comparison")
)

func main() {
	flag.Parse()
	fmt.Printf("%-42s %-10s %-28s %-22s %s\n", "measure", "figure", "against", "budget", "")
	startup()
	probe()
	idle()
	thousand()
	size()
	latency()
	fileLatency()
	fmt.Printf("\nbudgets: %d PASS, %d MISS\n", passed, missed)
	for _, m := range misses {
		fmt.Println("  MISS:", m)
	}
}

var (
	passed, missed int
	misses         []string
)

// budget prints a measure with what it is compared against, its budget and
// PASS or MISS, so that the verdicts can be read at a glance.
func budget(measure, figure, against, limit string, ok bool) {
	verdict := "PASS"
	if !ok {
		verdict = "MISS"
	}
	fmt.Printf("%-42s %-10s %-28s %-22s %s\n", measure, figure, against, limit, verdict)
	if ok {
		passed++
	} else {
		missed++
		if against != "" {
			figure += " (" + against + ")"
		}
		misses = append(misses, measure+": "+figure+", budget "+limit)
	}
}

// info prints a figure that has no budget: a floor or a reference.
func info(measure, figure string) {
	fmt.Printf("%-42s %-10s\n", measure, figure)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

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

// runSmall runs a command through maxrss: its peak RSS is then its own,
// not this large process's, which the kernel would hand down at exec. The
// wall time is maxrss's, from fork to exit.
func runSmall(name string, args ...string) result {
	out, err := exec.Command(*maxrss, append([]string{name}, args...)...).Output()
	var r result
	var wall, code int64
	if _, scanErr := fmt.Sscan(string(out), &r.rssKiB, &wall, &code); err != nil || scanErr != nil {
		panic(fmt.Sprintf("maxrss %s: %v %v", name, err, scanErr))
	}
	r.wall, r.success = time.Duration(wall), code == 0
	return r
}

func median[T int64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// startup compares start-up to ready with the imports floor, which links
// the packages portpatrol must carry: the budget is what portpatrol's own
// code adds. dialonce, the bare floor, is shown for scale.
func startup() {
	addr := listen()
	var pp, bare, linked []time.Duration
	for range *runs { // interleaved, so drift in the machine hits all alike
		r := run(*portpatrol, "--tcp.x.address="+addr)
		f := run(*dialonce, addr)
		l := run(*imports, addr)
		if !r.success || !f.success || !l.success {
			panic("start-up run failed")
		}
		pp, bare, linked = append(pp, r.wall), append(bare, f.wall), append(linked, l.wall)
	}
	ratio := float64(median(pp)) / float64(median(linked))
	budget("start-up to ready, one TCP target", ms(median(pp)),
		fmt.Sprintf("imports %s: %.2fx", ms(median(linked)), ratio), "<= 1.30x imports", ratio <= 1.30)
	info("  floor: dialonce (median wall)", ms(median(bare)))
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
	for range 7 { // interleaved; the median of 7, as one run moves by ±5 % on a shared machine
		pp = append(pp, run(*portpatrol, ppArgs...).cpu)
		floor = append(floor, run(*poller, append([]string{"100ms", "5s"}, addrs...)...).cpu)
	}
	ratio := float64(median(pp)) / float64(median(floor))
	budget("idle CPU: 100 refused targets, 100ms, 5s", ms(median(pp)),
		fmt.Sprintf("poller %s: %.2fx", ms(median(floor)), ratio), "<= 1.10x poller", ratio <= 1.10)
}

// probe compares a health check (--probe) of a local HTTP endpoint with
// curl -fsS on the same endpoint, which is what an image with a shell would
// run instead.
func probe() {
	curl, err := exec.LookPath("curl")
	if err != nil {
		panic("curl is needed to measure --probe against it: " + err.Error())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(l, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := "http://" + l.Addr().String() + "/healthz"
	var pp, c []time.Duration
	var rss []int64
	for range 31 { // interleaved, so drift in the machine hits both alike
		r := runSmall(*portpatrol, "--probe", "--http.app.address="+url)
		f := runSmall(curl, "-fsS", url)
		if !r.success || !f.success {
			panic("a probe of a healthy endpoint failed")
		}
		pp, c, rss = append(pp, r.wall), append(c, f.wall), append(rss, r.rssKiB)
	}
	ratio := float64(median(pp)) / float64(median(c))
	budget("--probe, healthy HTTP endpoint: wall", ms(median(pp)),
		fmt.Sprintf("curl -fsS %s: %.2fx", ms(median(c)), ratio), "<= 1.00x curl", ratio <= 1.00)
	m := median(rss)
	budget("--probe, healthy HTTP endpoint: peak RSS", fmt.Sprintf("%.1f MB", float64(m)/1024), "", "<= 12 MB", m <= 12*1024)
}

// thousand measures 1000 ready targets against dialmany, which dials the
// same 1000 addresses once each from as many goroutines: the least any Go
// program pays for them.
func thousand() {
	addr := listen()
	args := []string{"--timeout=30s", "--log-level=error"}
	var addrs []string
	for i := range 1000 {
		args = append(args, "--tcp.t"+strconv.Itoa(i)+".address="+addr)
		addrs = append(addrs, addr)
	}
	var walls []time.Duration
	var rss, floor []int64
	for range 15 {
		r := runSmall(*portpatrol, args...)
		f := runSmall(*dialmany, addrs...)
		if !r.success || !f.success {
			panic("1000 targets did not become ready")
		}
		walls, rss, floor = append(walls, r.wall), append(rss, r.rssKiB), append(floor, f.rssKiB)
	}
	w, m, fm := median(walls), median(rss), median(floor)
	budget("1000 ready TCP targets: wall (median)", fmt.Sprintf("%.3f s", w.Seconds()), "", "<= 0.15 s", w <= 150*time.Millisecond)
	budget("1000 ready TCP targets: peak RSS (median)", fmt.Sprintf("%.1f MB", float64(m)/1024),
		fmt.Sprintf("dialmany %.1f MB: %.2fx", float64(fm)/1024, float64(m)/float64(fm)), "<= 18.5 MB", m <= 18*1024+512)
}

func size() {
	st, err := os.Stat(*portpatrol)
	if err != nil {
		panic(err)
	}
	ref, err := os.Stat(*imports)
	if err != nil {
		panic(err)
	}
	mb, refMB := float64(st.Size())/1e6, float64(ref.Size())/1e6
	info("release binary (README's flags)", fmt.Sprintf("%.2f MB, %.3fx imports", mb, mb/refMB))
	// The budget is the plain build, as go install and a user's go build
	// make it, without the README's -gcflags.
	plain, err := os.Stat(*portpatrolPlain)
	if err != nil {
		panic(err)
	}
	pmb := float64(plain.Size()) / 1e6
	budget("plain go build, no -gcflags", fmt.Sprintf("%d B", plain.Size()),
		fmt.Sprintf("imports %.2f MB: %.3fx", refMB, pmb/refMB), "<= 1.25x imports", pmb/refMB <= 1.25)
	// The original PortPatrol's release binary, for scale.
	info("  the original PortPatrol, for scale", fmt.Sprintf("7233698 B: plain build is %.3fx", float64(plain.Size())/7233698))
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
	budget("detection latency, 100ms interval (worst)", ms(worst), "median "+ms(median(lat))+", 25 runs",
		"<= interval + 5 ms", worst <= interval+5*time.Millisecond)
}

// fileLatency renames a file into place at a random moment and times how
// long portpatrol takes to exit 0 after that, with a 10s interval: only
// inotify can see it in time; a poller at that interval takes about 5 s on
// average.
func fileLatency() {
	const interval = 10 * time.Second
	dir, err := os.MkdirTemp("", "bench-file-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	var lat []time.Duration
	for i := range 20 {
		path := filepath.Join(dir, "ready"+strconv.Itoa(i))
		cmd := exec.Command(*portpatrol, "--file.x.address="+path, "--default-interval="+interval.String(), "--log-level=error")
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		time.Sleep(200*time.Millisecond + rand.N(500*time.Millisecond))
		if err := os.WriteFile(path+".tmp", []byte("ready\n"), 0o644); err != nil {
			panic(err)
		}
		renamed := time.Now()
		if err := os.Rename(path+".tmp", path); err != nil {
			panic(err)
		}
		if err := cmd.Wait(); err != nil {
			panic("the file target did not become ready: " + err.Error())
		}
		lat = append(lat, time.Since(renamed))
	}
	m := median(lat)
	budget("file renamed in, 10s interval (median)", ms(m), "worst "+ms(slices.Max(lat))+"; poller ~5 s",
		"<= 10 ms", m <= 10*time.Millisecond)
}
