package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A target is one server under test: a workbook stage or a peer.
type target struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"` // "select", "kqueue" (a later stage) or "peer"
	Flags   []string `json:"flags,omitempty"`
	Welcome bool     `json:"welcome"` // sends "welcome!\n" to every new client
	Skip    string   `json:"skipped,omitempty"`

	bin    string
	probed bool
}

// peerCommands maps the -peers names to the commands under cmd/.
var peerCommands = map[string]string{"net": "netecho", "gnet": "gnetecho", "epoll": "epollecho"}

// runner carries the state of one benchmark run.
type runner struct {
	plan       plan
	benchDir   string
	workbook   string
	tmp        string
	began      time.Time
	prog       *progress
	results    *Results
	taskset    string          // path of taskset(1), or "" when absent
	strace     string          // path of strace(1), or "" when absent
	counter    *syscallCounter // set up by the first count (perf.go)
	counterWhy string          // why there is none

	mu    sync.Mutex
	procs map[*proc]bool // servers running now, for abort
	dead  bool
}

func newRunner(p plan, mode, benchDir, workbook, tmp string) *runner {
	r := &runner{plan: p, benchDir: benchDir, workbook: workbook, tmp: tmp,
		began: time.Now(), prog: newProgress(os.Stderr), procs: map[*proc]bool{}}
	r.taskset, _ = exec.LookPath("taskset")
	r.strace, _ = exec.LookPath("strace")
	r.results = &Results{Date: r.began.Format("2006-01-02 15:04 MST"), Mode: mode,
		Machine: describeMachine(), Plan: p, OneCore: r.oneCoreMethod(), IdleCPU: "server and load generator both on CPU 0"}
	if !canPin || runtime.NumCPU() < 2 {
		r.results.IdleCPU = "not pinned"
	}
	return r
}

// oneCoreMethod says how "limited to one core" is enforced on this machine.
func (r *runner) oneCoreMethod() string {
	how := "server: GOMAXPROCS=1"
	if r.taskset != "" {
		how += " + taskset -c 0"
	} else {
		how += " (taskset not found: not pinned)"
	}
	if runtime.NumCPU() > 1 && canPin {
		how += "; load generator pinned to the other core(s)"
	}
	return how
}

func (r *runner) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.results.Notes = append(r.results.Notes, msg)
	r.prog.say(msg)
}

// abort stops every server we started and exits: used on a signal and when
// the whole run overstays its time limit.
func (r *runner) abort(why string) {
	r.mu.Lock()
	r.dead = true
	for p := range r.procs {
		p.cmd.Process.Kill()
	}
	r.mu.Unlock()
	r.prog.say("bench: " + why + "; servers stopped")
	os.Exit(1)
}

// buildAll builds the stages from the workbook itself, so the numbers are
// always those of the current code, and the peers from this module.
func (r *runner) buildAll(stages, peers []string) []*target {
	var ts []*target
	binDir := filepath.Join(r.tmp, "bin")
	for _, name := range stages {
		built := name
		if !r.hasStage(name) {
			r.prog.say(name + ": not in the workbook, skipped")
			r.results.Notes = append(r.results.Notes, name+": not in the workbook, skipped")
			continue
		}
		if name == callbackStage {
			r.results.CallbackStage = built
		}
		t := &target{Name: built, Kind: "kqueue"}
		if strings.Contains(built, "select") {
			t.Kind = "select"
		}
		ts = append(ts, t)
		r.prog.say("building " + built)
		t.bin = filepath.Join(binDir, built)
		if err := goBuild(r.workbook, t.bin, "./"+built); err != nil {
			t.Skip = "does not build: " + err.Error()
			continue
		}
		t.Flags = stageFlags(t.bin)
	}
	for _, name := range peers {
		t := &target{Name: name, Kind: "peer"}
		ts = append(ts, t)
		cmd, ok := peerCommands[name]
		if !ok {
			t.Skip = "unknown peer (want net, gnet or epoll)"
			continue
		}
		r.prog.say("building " + cmd)
		t.bin = filepath.Join(binDir, cmd)
		if err := goBuild(r.benchDir, t.bin, "./cmd/"+cmd); err != nil {
			t.Skip = "does not build: " + err.Error()
		}
	}
	for _, t := range ts {
		if t.Skip != "" {
			r.note("%s: skipped, %s", t.Name, t.Skip)
		}
		r.results.Servers = append(r.results.Servers, t)
	}
	return ts
}

// hasStage says whether the workbook has stage directory name.
func (r *runner) hasStage(name string) bool {
	_, err := os.Stat(filepath.Join(r.workbook, name, "main.go"))
	return err == nil
}

func goBuild(dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	msg, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s", firstLine(string(msg), err))
	}
	return nil
}

func firstLine(s string, fallback error) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return fallback.Error()
}

var flagLine = regexp.MustCompile(`(?m)^\s+-(\w+)`)

// stageFlags reads a stage's -h output and returns the flags that make it fit
// for a benchmark: a pool far above the 10 a learner starts with (-max), no
// UNIX socket beside the TCP one (-unix ”), no idle timeout (-idle 0). Asking
// the binary keeps this right as stages gain flags.
func stageFlags(bin string) []string {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	var flags []string
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		switch m[1] {
		case "max":
			flags = append(flags, "-max=20000")
		case "unix":
			flags = append(flags, "-unix=")
		case "idle":
			flags = append(flags, "-idle=0")
		}
	}
	return flags
}

// A proc is one running server.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	log    *os.File
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// start runs a server on a free loopback port and waits for its
// "listening on tcp" line. oneCore runs it with GOMAXPROCS=1 and, where
// taskset exists, pinned to CPU 0.
func (r *runner) start(t *target, phase string, oneCore bool) (*proc, error) {
	args := append([]string{"-addr", "127.0.0.1:0"}, t.Flags...)
	name := t.bin
	env := os.Environ()
	if oneCore {
		env = append(env, "GOMAXPROCS=1")
		if r.taskset != "" {
			args = append([]string{"-c", "0", t.bin}, args...)
			name = r.taskset // taskset execs the server: same process id
		}
	}
	logf, err := os.Create(filepath.Join(r.tmp, "logs", t.Name+"-"+phase+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stderr = logf // a stage logs a line per client: keep it out of the way, but keep it
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), log: logf}
	r.mu.Lock()
	if r.dead {
		r.mu.Unlock()
		logf.Close()
		return nil, fmt.Errorf("aborted")
	}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		logf.Close()
		return nil, err
	}
	r.procs[p] = true
	r.mu.Unlock()

	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on tcp "); ok {
				select {
				case ready <- a:
				default:
				}
			}
		}
		// Keep reading to the end so the server never blocks on stdout.
	}()
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.addr = <-ready:
	case <-p.exited:
		r.stop(p)
		return nil, fmt.Errorf("exited before listening (%v); see %s", cmd.ProcessState, logf.Name())
	case <-time.After(10 * time.Second):
		r.stop(p)
		return nil, fmt.Errorf("no \"listening on tcp\" line within 10s; see %s", logf.Name())
	}
	if !t.probed {
		w, err := probeWelcome(p.addr)
		if err != nil {
			r.stop(p)
			return nil, fmt.Errorf("first client: %v", err)
		}
		t.Welcome, t.probed = w, true
	}
	return p, nil
}

// stop asks a server to shut down as a learner would (SIGTERM) and kills it
// if it has not gone within five seconds.
func (r *runner) stop(p *proc) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.log.Close()
	r.mu.Lock()
	delete(r.procs, p)
	r.mu.Unlock()
}

// rssKiB is the server's resident set size in KiB: VmRSS from
// /proc/PID/status on Linux, ps(1) elsewhere.
func rssKiB(pid int) (int64, error) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			}
		}
		return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	out, err := exec.Command("ps", "-o", "rss=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return 0, fmt.Errorf("ps: %v", err)
	}
	return strconv.ParseInt(string(bytes.TrimSpace(out)), 10, 64)
}

// fitFileLimit raises the soft limit on open files to what the plan needs:
// the most clients held at once (idle clients plus the active one, or the
// busiest throughput step), plus room for probes and the runtime. Where the
// hard limit is lower it drops the steps that cannot fit, and says so.
func fitFileLimit(p *plan) (notes []string, err error) {
	const room = 256
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	hard := uint64(lim.Max) // int64 on some BSDs, uint64 elsewhere
	fits := func(n int) bool { return uint64(n+1+room) <= hard }
	for len(p.IdleConns) > 1 && !fits(slices.Max(p.IdleConns)) {
		notes = append(notes, fmt.Sprintf("skipped %d idle clients: the open-file hard limit is %d (ulimit -Hn)", p.IdleConns[len(p.IdleConns)-1], hard))
		p.IdleConns = p.IdleConns[:len(p.IdleConns)-1]
	}
	for _, cells := range []*[]cell{&p.OneCore, &p.Default} {
		kept := (*cells)[:0]
		for _, c := range *cells {
			if fits(c.Clients) {
				kept = append(kept, c)
			} else {
				notes = append(notes, fmt.Sprintf("skipped the cell of %d clients: the open-file hard limit is %d (ulimit -Hn)", c.Clients, hard))
			}
		}
		*cells = kept
	}
	most := p.OpenClients
	for _, c := range append(slices.Clone(p.OneCore), p.Default...) {
		most = max(most, c.Clients)
	}
	need := uint64(max(slices.Max(p.IdleConns)+1, most) + room)
	if need > hard {
		return notes, fmt.Errorf("need %d open files but the hard limit is %d: raise it (ulimit -Hn)", need, hard)
	}
	if uint64(lim.Cur) >= need {
		return notes, nil
	}
	setLimit(&lim.Cur, need)
	return notes, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func setLimit[T int64 | uint64](field *T, v uint64) { *field = T(v) }

// openFileLimit raises the open-file limit to need, soft and hard, for
// this process and every process it starts from now on, or as far towards
// need as it may: raising the hard limit takes CAP_SYS_RESOURCE (root has it
// outside containers that drop it), and without it the soft limit goes up to
// the hard one. It returns the limit a child now gets.
func openFileLimit(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	// Set the limit even when it is already high enough: Go raises its own
	// soft limit when it starts, but hands a child the soft limit it was
	// started with unless the program has set the limit itself. (perf raises
	// its soft limit to the hard one when it runs out, so for perf the hard
	// limit is the one that counts.)
	if hard := uint64(lim.Max); hard < need {
		raised := lim
		setLimit(&raised.Cur, need)
		setLimit(&raised.Max, need)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return need, nil
		}
		lim.Cur = lim.Max
		return hard, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if uint64(lim.Cur) < need {
		setLimit(&lim.Cur, need)
	}
	return uint64(lim.Cur), syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// loadAverage is the 1-minute load average, where /proc tells it.
func loadAverage() string {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			return f[0]
		}
	}
	return ""
}

// describeMachine names the machine a result came from.
func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "Model name:"); ok {
				m.CPU = strings.TrimSpace(v)
			}
		}
	}
	if m.CPU == "" {
		if out, err := exec.Command("sysctl", "-n", "machdep.cpu.brand_string").Output(); err == nil {
			m.CPU = strings.TrimSpace(string(out))
		}
	}
	m.LoadAtStart = loadAverage()
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}
