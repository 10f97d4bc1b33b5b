package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A syscallCounter counts a server's system calls, all threads, while some
// work runs. Where perf(1) can read the kernel's syscall tracepoints
// (syscalls:sys_enter_*), it uses those: each is a counter the kernel bumps
// on entry to the call, which costs the traced process almost nothing and
// leaves its timing alone. Otherwise it falls back on strace -c, which
// stops the process at every call: that slows each call by microseconds,
// so anything that depends on timing (how often a speculative read finds
// data, how often the runtime parks a thread) is counted differently.
type syscallCounter struct {
	perf   string // perf(1), when it can count tracepoints here
	strace string // strace(1), the fallback
	events int    // how many sys_enter tracepoints there are
	tmp    string
	seq    int
}

func (c *syscallCounter) method(events string) string {
	if c.perf != "" {
		if events != "syscalls:sys_enter_*" {
			events = fmt.Sprintf("%d tracepoints", len(strings.Split(events, ",")))
		}
		return "perf stat -e '" + events + "'"
	}
	return "strace -c -f -p PID (distorts the counts: see README)"
}

// syscallCounter sets up the counter once per run, and says why not when
// there is none.
func (r *runner) syscallCounter() (*syscallCounter, string) {
	if r.counter != nil || r.counterWhy != "" {
		return r.counter, r.counterWhy
	}
	if runtime.GOOS != "linux" {
		r.counterWhy = "system calls are counted on Linux only (perf or strace): skipped"
		return nil, r.counterWhy
	}
	c := &syscallCounter{tmp: r.tmp}
	if perf, err := exec.LookPath("perf"); err == nil {
		if n, why := syscallTracepoints(); n > 0 {
			probe := exec.Command(perf, "stat", "-x", ",", "-e", "syscalls:sys_enter_getpid", "--", "true")
			if out, err := probe.CombinedOutput(); err == nil {
				c.perf, c.events = perf, n
			} else {
				r.note("perf cannot count tracepoints here (%s); falling back on strace", firstLine(string(out), err))
			}
		} else {
			r.note("perf: %s; falling back on strace", why)
		}
	} else {
		r.note("perf not installed (Debian: apt-get install linux-perf); falling back on strace")
	}
	if c.perf == "" {
		if s, err := exec.LookPath("strace"); err == nil {
			c.strace = s
			r.note("system calls counted with strace, which slows every call: the counts are distorted (see README)")
		} else {
			r.counterWhy = "neither perf nor strace can count system calls here: skipped"
			return nil, r.counterWhy
		}
	}
	r.counter = c
	return c, ""
}

// syscallTracepoints counts the sys_enter tracepoints in tracefs, mounting
// tracefs first if it is not (which needs root).
func syscallTracepoints() (int, string) {
	dirs := []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}
	count := func() int {
		for _, d := range dirs {
			if m, _ := filepath.Glob(filepath.Join(d, "events/syscalls/sys_enter_*")); len(m) > 0 {
				return len(m)
			}
		}
		return 0
	}
	if n := count(); n > 0 {
		return n, ""
	}
	if os.Geteuid() != 0 {
		return 0, "tracefs is not mounted, and mounting it needs root"
	}
	if out, err := exec.Command("mount", "-t", "tracefs", "nodev", dirs[0]).CombinedOutput(); err != nil {
		return 0, "mount tracefs: " + firstLine(string(out), err)
	}
	if n := count(); n > 0 {
		return n, ""
	}
	return 0, "no syscall tracepoints in tracefs (kernel without CONFIG_FTRACE_SYSCALLS?)"
}

// A perfSession is one perf stat attached to several servers at once,
// printing the counts of all of them together every interval. Opening and
// closing a tracepoint counter takes the kernel tens of milliseconds on a
// busy virtual machine, several hundred of them half a minute, so the whole
// experiment shares one session where the open-file limit allows it (see
// perfFiles), and as few as fit otherwise. Only one server is busy at a time and the
// others make next to no calls, so each burst of activity in the intervals
// is one run of one server; runs are separated by quiet gaps.
type perfSession struct {
	cmd    *exec.Cmd
	exited chan error
	out    string
	stderr bytes.Buffer
}

const perfInterval = 200 * time.Millisecond

// perThread is how many counters perf opens per thread for events: one per
// tracepoint.
func (c *syscallCounter) perThread(events string) int {
	if events == "syscalls:sys_enter_*" {
		return c.events
	}
	return len(strings.Split(events, ","))
}

// perfFiles is how many file descriptors a perf session needs for servers
// of so many threads each. perf opens one counter, a descriptor, per
// tracepoint and thread, so all 360 or so tracepoints on nine servers of six
// to nine threads come to over 23,000. Threads started after perf has
// attached inherit the counters without new descriptors; the room of one
// thread per server is for one started while perf attaches, the 64 for
// perf's own files.
func perfFiles(threads []int, perThread int) uint64 {
	n := 64
	for _, t := range threads {
		n += perThread * (t + 1)
	}
	return uint64(n)
}

// perfGroups splits servers, given their thread counts, into groups whose
// perf sessions each fit in limit open files, filling each group in order
// before starting the next. A server that does not fit even alone is left
// out and returned in tooBig.
func perfGroups(threads []int, perThread int, limit uint64) (groups [][]int, tooBig []int) {
	var cur []int
	var curThreads []int
	for i, t := range threads {
		if perfFiles([]int{t}, perThread) > limit {
			tooBig = append(tooBig, i)
			continue
		}
		if perfFiles(append(slices.Clone(curThreads), t), perThread) > limit {
			groups = append(groups, cur)
			cur, curThreads = nil, nil
		}
		cur = append(cur, i)
		curThreads = append(curThreads, t)
	}
	if cur != nil {
		groups = append(groups, cur)
	}
	return groups, tooBig
}

// startSession attaches perf to every process in pids and waits until it
// has opened its counters.
func (c *syscallCounter) startSession(pids []int, events string) (*perfSession, error) {
	c.seq++
	s := &perfSession{out: filepath.Join(c.tmp, fmt.Sprintf("perf-%d.csv", c.seq)), exited: make(chan error, 1)}
	var list []string
	want := 0
	for _, p := range pids {
		list = append(list, strconv.Itoa(p))
		want += threads(p)
	}
	want *= c.perThread(events)
	s.cmd = exec.Command(c.perf, "stat", "-I", strconv.Itoa(int(perfInterval/time.Millisecond)), "-x", ",", "-e", events,
		"-p", strings.Join(list, ","), "-o", s.out)
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.exited <- s.cmd.Wait() }()
	if err := waitAttached(s.cmd.Process.Pid, want, s.exited); err != nil {
		s.stop()
		return nil, fmt.Errorf("%v: %s", err, firstLine(s.stderr.String(), errors.New("nothing on stderr")))
	}
	time.Sleep(2 * perfInterval) // a quiet start
	return s, nil
}

// stop ends the session and returns the counts of each interval, in order.
func (s *perfSession) stop() ([]map[string]int64, error) {
	s.cmd.Process.Signal(os.Interrupt) // perf stat prints what it has and exits
	select {
	case err := <-s.exited:
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()) {
			return nil, err
		}
	case <-time.After(90 * time.Second):
		s.cmd.Process.Kill()
		return nil, errors.New("perf did not stop within 90s")
	}
	b, err := os.ReadFile(s.out)
	if err != nil {
		return nil, err
	}
	return parsePerfIntervals(string(b))
}

// bursts splits the intervals into runs of activity separated by quiet
// ones, and adds up each run. Quiet is fewer than burstMin write-like calls:
// an idle Go server still writes now and then (the runtime wakes its
// network poller through an eventfd), an echo run writes thousands.
func bursts(intervals []map[string]int64) []map[string]int64 {
	const burstMin = 20
	var out []map[string]int64
	var cur map[string]int64
	for _, iv := range intervals {
		active := iv["write"]+iv["writev"]+iv["sendto"]+iv["sendmsg"] >= burstMin
		if !active {
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		if cur == nil {
			cur = map[string]int64{}
		}
		for k, v := range iv {
			cur[k] += v
		}
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// count runs work while strace counts pid's system calls, by name.
func (c *syscallCounter) count(pid int, work func() error) (map[string]int64, error) {
	c.seq++
	return straceCount(c.strace, filepath.Join(c.tmp, fmt.Sprintf("strace-%d-%d.txt", pid, c.seq)), pid, work)
}

// waitAttached waits until perf has opened a counter for every tracepoint
// and thread (or has stopped opening more for a second), so that no call
// goes uncounted.
func waitAttached(perfPid, want int, exited chan error) error {
	deadline := time.Now().Add(90 * time.Second)
	last, same := -1, 0
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("perf exited before counting: %v", err)
		default:
		}
		n := perfEvents(perfPid)
		if n >= want {
			return nil
		}
		if n > 0 && n == last {
			if same++; same >= 20 {
				return nil
			}
		} else {
			same = 0
		}
		last = n
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("perf did not attach within 90s")
}

// perfEvents counts the perf_event descriptors process pid holds.
func perfEvents(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.Contains(l, "perf_event") {
			n++
		}
	}
	return n
}

// threads is the number of threads of process pid.
func threads(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(ents) == 0 {
		return 1
	}
	return len(ents)
}

// parsePerfIntervals reads perf stat -I -x, output: one line per event and
// interval, "time,count,unit,event,run time,percentage,...", comment lines
// starting with '#', and "<not counted>" where an event could not be read.
func parsePerfIntervals(s string) ([]map[string]int64, error) {
	var out []map[string]int64
	last := ""
	seen := false
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 4 || strings.HasPrefix(line, "#") {
			continue
		}
		name, ok := strings.CutPrefix(f[3], "syscalls:sys_enter_")
		if !ok {
			continue
		}
		seen = true
		if f[0] != last {
			out = append(out, map[string]int64{})
			last = f[0]
		}
		if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n > 0 {
			out[len(out)-1][name] += n
		}
	}
	if !seen {
		return nil, fmt.Errorf("perf stat wrote no syscall counts: %q", firstLine(s, errors.New("empty output")))
	}
	return out, nil
}
