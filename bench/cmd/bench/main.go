// Command bench is the workbook's load generator. It builds the stages from
// the workbook itself and three peer servers from this module, then measures
// them side by side, after the method of libevent's bench:
//
//  1. idle load: ping-pong round-trip time of one active client while N
//     other clients sit idle (select scans all N on every call, kqueue
//     reports only the ready ones);
//  2. throughput: closed-loop echo with many clients, with each server on
//     its default settings and limited to one core;
//  3. server memory per idle connection (resident set before and after);
//  4. system calls per echoed message, counted by strace when it is there.
//
// It prints a table, writes results.json, one CSV per experiment and two PNG
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
	"strings"
	"syscall"
	"time"
)

// plan is what one mode measures. Quick mode is a smoke test: same code
// paths, small numbers, no claims.
type plan struct {
	IdleConns   []int         // idle-load steps, N idle clients each
	IdleTime    time.Duration // ping-pong time measured per step ...
	IdleWindows int           // ... in this many windows (the quietest counts)
	Clients     []int         // throughput: concurrent clients
	Sizes       []int         // throughput: message sizes in bytes
	LoadTime    time.Duration // throughput: measured time per cell and round
	Rounds      int           // throughput: rounds, each server once per round (median reported)
	Warmup      time.Duration // discarded before every measurement
	StraceConns int           // syscall count: clients ...
	StraceMsgs  int           // ... and round trips each
	Timeout     time.Duration // the whole run gives up after this
}

var plans = map[string]plan{
	"full": {
		IdleConns: []int{0, 100, 1000, 10000}, IdleTime: 2 * time.Second, IdleWindows: 5,
		Clients: []int{50, 300, 1000}, Sizes: []int{64, 4096}, LoadTime: 500 * time.Millisecond, Rounds: 3,
		Warmup: 250 * time.Millisecond, StraceConns: 10, StraceMsgs: 1000, Timeout: 20 * time.Minute,
	},
	"quick": {
		IdleConns: []int{0, 100, 1000}, IdleTime: 250 * time.Millisecond, IdleWindows: 1,
		Clients: []int{50}, Sizes: []int{64, 4096}, LoadTime: 250 * time.Millisecond, Rounds: 1,
		Warmup: 50 * time.Millisecond, StraceConns: 4, StraceMsgs: 200, Timeout: 3 * time.Minute,
	},
}

const (
	defaultStages = "01-select,02-kqueue-basic,06-udata,07-callbacks"
	defaultPeers  = "net,gnet,epoll"
)

func main() {
	mode := flag.String("mode", "full", "`full` (a few minutes) or quick (under a minute, a smoke test)")
	stages := flag.String("stages", defaultStages, "workbook stages to measure, comma-separated")
	peers := flag.String("peers", defaultPeers, "peer servers to measure, comma-separated (net, gnet, epoll)")
	only := flag.String("only", "idle,throughput,syscalls", "experiments to run, comma-separated")
	out := flag.String("out", "", "results `directory` (default results, or results/quick in quick mode)")
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
		if e != "idle" && e != "throughput" && e != "syscalls" {
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
	if out == "" {
		out = filepath.Join(benchDir, "results")
		if mode == "quick" {
			out = filepath.Join(out, "quick")
		}
	}
	// Scratch space (binaries, server logs, strace output) lives where the
	// workbook's .gitignore already ignores it.
	tmp := filepath.Join(benchDir, "results", "tmp")
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
		if exps["syscalls"] {
			r.syscalls(t)
		}
	}
	if exps["throughput"] {
		r.throughputs(targets)
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
// idle-load level, throughput cell and strace count, for every server.
func countSteps(p plan, exps map[string]bool, targets []*target) int {
	per := 0
	if exps["idle"] {
		per += len(p.IdleConns)
	}
	if exps["throughput"] {
		per += 2 * p.Rounds * len(p.Clients) * len(p.Sizes)
	}
	if exps["syscalls"] {
		per++
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
