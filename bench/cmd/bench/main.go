// Command bench is the workbook's load generator. It builds the stages from
// the workbook itself and three peer servers from this module, then measures
// them side by side, after the method of libevent's bench:
//
//  1. idle load: ping-pong round-trip time of one active client while N
//     other clients sit idle (select scans all N on every call, kqueue
//     reports only the ready ones);
//  2. throughput and CPU per echo: closed-loop echo with many clients from
//     a one-thread event-loop generator, with each server on one core and
//     on its default settings, and what the server, the generator and the
//     rest of the machine spent meanwhile;
//  3. server memory per idle connection (resident set before and after);
//  4. system calls per echoed message, from the kernel's tracepoint
//     counters (perf), or strace where perf cannot count;
//  5. open-loop latency: a fixed rate per client, each response timed from
//     when its message was due.
//
// It prints tables, writes results.json, one CSV per experiment and PNG
// charts, and reports progress on stderr while it runs. See README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// plan is what one mode measures. Quick mode is a smoke test: same code
// paths, small numbers, no claims.
type plan struct {
	IdleConns     []int         // idle-load steps, N idle clients each
	IdleWindow    time.Duration // ping-pong time of one window ...
	IdleWindows   int           // ... and windows per step (median over all of them)
	OneCore       []cell        // throughput cells with the server on one core
	Default       []cell        // throughput cells with default settings
	LoadTime      time.Duration // throughput: measured time per cell and round
	Rounds        int           // rounds, each server once per round, for throughput and open loop
	Warmup        time.Duration // discarded before every measurement
	OpenClients   int           // open loop: clients ...
	OpenRates     []float64     // ... at these fractions of the slowest server's closed-loop rate
	OpenTime      time.Duration // measured time per rate and round
	SyscallConns  int           // system-call count: clients ...
	SyscallMsgs   int           // ... round trips each ...
	SyscallReps   int           // ... counted this many times
	SyscallEvents string        // the perf events counted
	Timeout       time.Duration // the whole run gives up after this
}

// A cell is one throughput measurement: so many clients, messages of so
// many bytes.
type cell struct {
	Clients int `json:"clients"`
	Size    int `json:"message_bytes"`
}

var plans = map[string]plan{
	"full": {
		IdleConns: []int{0, 100, 1000, 10000}, IdleWindow: 500 * time.Millisecond, IdleWindows: 5,
		OneCore: []cell{{50, 64}, {300, 64}, {1000, 64}}, Default: []cell{{50, 64}, {300, 64}},
		LoadTime: 1500 * time.Millisecond, Rounds: 5, Warmup: 300 * time.Millisecond,
		OpenClients: 300, OpenRates: []float64{0.25, 0.5, 0.75, 1}, OpenTime: time.Second,
		SyscallConns: 10, SyscallMsgs: 500, SyscallReps: 5, SyscallEvents: "syscalls:sys_enter_*",
		Timeout: 25 * time.Minute,
	},
	"quick": {
		IdleConns: []int{0, 100}, IdleWindow: 100 * time.Millisecond, IdleWindows: 2,
		OneCore: []cell{{50, 64}, {20, 4096}}, Default: []cell{{50, 64}},
		LoadTime: 150 * time.Millisecond, Rounds: 1, Warmup: 50 * time.Millisecond,
		OpenClients: 20, OpenRates: []float64{0.5, 1}, OpenTime: 150 * time.Millisecond,
		SyscallConns: 4, SyscallMsgs: 200, SyscallReps: 1, SyscallEvents: quickSyscallEvents,
		Timeout: 3 * time.Minute,
	},
}

// quickSyscallEvents are the tracepoints quick mode counts: the calls an
// echo server makes per message. Each tracepoint perf opens costs the
// kernel tens of milliseconds to set up and as many to tear down; all 300
// and more of them take the better part of a minute.
const quickSyscallEvents = "syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait," +
	"syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_ioctl,syscalls:sys_enter_futex," +
	"syscalls:sys_enter_nanosleep,syscalls:sys_enter_pselect6,syscalls:sys_enter_select"

// benchStages is the one list of the workbook stages the benchmark
// measures, in the workbook's order. A stage missing from the workbook is
// skipped with one line.
var benchStages = []string{"01-select", "02-kqueue-basic", "06-udata", "07-send-queue", "10-callbacks", "11-multi-loop"}

// callbackStage is the one-loop callback stage the CPU-per-echo goal is
// about (11-multi-loop is measured beside it).
const callbackStage = "10-callbacks"

// experiments are the names -only takes, in the order they run.
var experiments = []string{"idle", "syscalls", "throughput", "openloop"}

const defaultPeers = "net,gnet,epoll"

func main() {
	mode := flag.String("mode", "full", "`full` (about 15 minutes on two CPUs) or quick (under a minute, a smoke test)")
	stages := flag.String("stages", strings.Join(benchStages, ","), "workbook stages to measure, comma-separated")
	peers := flag.String("peers", defaultPeers, "peer servers to measure, comma-separated (net, gnet, epoll)")
	only := flag.String("only", strings.Join(experiments, ","), "experiments to run, comma-separated")
	out := flag.String("out", "", "results `directory` (default runs/full, or runs/quick in quick mode; make bench-record gives results)")
	workbook := flag.String("workbook", "", "workbook root `directory` (default: the parent of the bench module)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected argument %q (see -h)\n", flag.Arg(0))
		os.Exit(2)
	}
	if err := run(*mode, *stages, *peers, *only, *out, *workbook); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(mode, stages, peers, only, out, workbook string) error {
	p, ok := plans[mode]
	if !ok {
		return fmt.Errorf("unknown -mode %q: want full or quick", mode)
	}
	exps := map[string]bool{}
	for _, e := range split(only) {
		if !slices.Contains(experiments, e) {
			return fmt.Errorf("unknown experiment %q in -only", e)
		}
		exps[e] = true
	}
	benchDir, err := findBenchDir()
	if err != nil {
		return err
	}
	if workbook == "" {
		workbook = filepath.Dir(benchDir)
	}
	// A run writes into runs/, which git ignores, so that measuring on
	// another machine never changes the committed results/: only -out
	// results (make bench-record) replaces those. Scratch space (binaries,
	// server logs, strace output) is in runs/ too.
	if out == "" {
		out = filepath.Join(benchDir, "runs", mode)
	}
	tmp := filepath.Join(benchDir, "runs", "tmp")
	if err := os.MkdirAll(filepath.Join(tmp, "logs"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	limitNotes, err := fitFileLimit(&p)
	if err != nil {
		return err
	}

	r := newRunner(p, mode, benchDir, workbook, tmp)
	for _, n := range limitNotes {
		r.note("%s", n)
	}
	// Bounded in time whatever happens, and no server outlives us.
	watchdog := time.AfterFunc(p.Timeout, func() { r.abort(fmt.Sprintf("gave up after %v", p.Timeout)) })
	defer watchdog.Stop()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if s, ok := <-sig; ok {
			r.abort(s.String())
		}
	}()

	res := r.results
	res.Command = strings.Join(append([]string{"bench"}, os.Args[1:]...), " ")
	res.Commit = workbookCommit(workbook)
	targets := r.buildAll(split(stages), split(peers))
	meter := startCPUMeter() // after the builds: compiling is ours, but not measuring
	r.prog.setTotal(countSteps(p, exps, targets))
	for _, t := range targets {
		if t.Skip != "" {
			continue
		}
		if exps["idle"] {
			r.idleLoad(t)
		}
	}
	if exps["syscalls"] {
		r.syscalls(targets)
	}
	if exps["throughput"] {
		r.throughputs(targets)
	}
	if exps["openloop"] {
		r.openLoops(targets)
	}
	r.prog.finish()
	watchdog.Stop() // the measuring is over
	res.Machine.OtherWork = meter.others(res.Machine.Cores)
	res.Elapsed = time.Since(r.began).Round(100 * time.Millisecond).String()
	evaluateGoals(res)

	printTable(os.Stdout, res)
	files, err := writeResults(out, res)
	if err != nil {
		return err
	}
	// The same tables as a file beside the data, for the README to quote.
	var report strings.Builder
	printTable(&report, res)
	name := filepath.Join(out, "report.txt")
	if err := os.WriteFile(name, []byte(strings.TrimPrefix(report.String(), "\n")), 0o644); err != nil {
		return err
	}
	files = append(files, name)
	charts, err := writeCharts(out, res)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", strings.Join(append(files, charts...), ", "))
	return nil
}

// workbookCommit names the code measured: the workbook's commit, marked
// "+changes" when the working tree differs from it.
func workbookCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += "+changes"
	}
	return commit
}

// countSteps is the number of progress steps the run will take: one per
// idle-load level, system-call count, throughput cell and open-loop rate,
// for every server.
func countSteps(p plan, exps map[string]bool, targets []*target) int {
	per := 0
	if exps["idle"] {
		per += len(p.IdleConns)
	}
	if exps["syscalls"] {
		per += p.SyscallReps
	}
	if exps["throughput"] {
		per += p.Rounds * (len(p.OneCore) + len(p.Default))
	}
	if exps["openloop"] {
		per += p.Rounds * len(p.OpenRates)
	}
	n := 0
	for _, t := range targets {
		if t.Skip == "" {
			n += per
		}
	}
	return n
}

// findBenchDir walks up from the working directory to this module's go.mod,
// so the tool runs from bench/ or any directory below it.
func findBenchDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/kqueue-workbook/workbook/bench\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run me inside the bench module (cd bench)")
		}
		dir = parent
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
