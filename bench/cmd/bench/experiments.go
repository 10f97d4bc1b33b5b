package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// idleLoad is experiment 1, with experiment 3 (memory) riding along: one
// active client plays ping-pong while the number of idle clients grows. A
// server that looks at every watched descriptor on each call (select) slows
// down as N grows; one that is told only about the ready ones (kqueue, epoll)
// does not. The resident set before the idle clients and after the last
// step, divided by N, is the memory one idle client costs the server.
//
// Server and load generator share CPU 0 (the server inherits our CPU set).
// Left free, each round trip either stays on one CPU or wakes the other
// one, and on a virtual machine the two differ by tens of microseconds,
// which would drown the difference this experiment is about.
func (r *runner) idleLoad(t *target) {
	steps := r.plan.IdleConns
	r.prog.step(t.Name, "idle load: N=0")
	settle()
	restore := pinOnly(0)
	defer restore()
	p, err := r.start(t, "idle", false)
	if err != nil {
		r.note("%s: idle load not measured: %v", t.Name, err)
		r.prog.skip(len(steps) - 1)
		return
	}
	defer r.stop(p)
	active, err := dial(p.addr, t.Welcome)
	if err != nil {
		r.note("%s: idle load not measured: active client: %v", t.Name, err)
		r.prog.skip(len(steps) - 1)
		return
	}
	defer active.Close()

	var idle []net.Conn
	defer func() { closeAll(idle) }()
	var rssBefore int64
	for i, n := range steps {
		if i > 0 {
			r.prog.step(t.Name, fmt.Sprintf("idle load: N=%d", n))
		}
		res := IdleResult{Server: t.Name, Kind: t.Kind, Idle: n}
		more, err := openMany(p.addr, t.Welcome, n-len(idle))
		idle = append(idle, more...)
		if err != nil {
			res.Limit = fmt.Sprintf("held %d idle clients, then: %v", len(idle), err)
			res.Held = len(idle)
			if !p.alive() {
				res.Limit += " (the server exited)"
			}
			if why := refusal(p.log.Name()); why != "" {
				res.Limit += "; server log: " + why
			}
			r.results.Idle = append(r.results.Idle, res)
			last := steps[len(steps)-1]
			r.results.Memory = append(r.results.Memory, MemoryResult{Server: t.Name, Kind: t.Kind, Conns: last,
				Note: fmt.Sprintf("cannot hold %d clients (%d at most here)", last, len(idle))})
			r.prog.skip(len(steps) - 1 - i)
			return
		}
		if err := r.idleWindows(active, &res); err != nil {
			res.Limit = fmt.Sprintf("active client failed with %d idle: %v", n, err)
			r.results.Idle = append(r.results.Idle, res)
			r.prog.skip(len(steps) - 1 - i)
			return
		}
		r.results.Idle = append(r.results.Idle, res)

		rss, err := rssKiB(p.pid())
		switch {
		case err != nil:
			if n == steps[len(steps)-1] {
				r.note("%s: memory not measured: %v", t.Name, err)
			}
		case n == 0:
			rssBefore = rss
		case n == steps[len(steps)-1] && rssBefore > 0:
			r.results.Memory = append(r.results.Memory, MemoryResult{
				Server: t.Name, Kind: t.Kind, Conns: n, RSSBeforeKiB: rssBefore, RSSAfterKiB: rss,
				BytesPerConn: float64(rss-rssBefore) * 1024 / float64(n)})
		}
	}
}

// idleWindows times the active client's ping-pong in plan.IdleWindows
// windows after a warm-up. The figures are the median over the windows of
// each window's p50 and p99, with the lowest and highest beside them: the
// spread says how far one window is from the next on this machine, and a
// gap between two groups of windows is reported as bimodal.
func (r *runner) idleWindows(active net.Conn, res *IdleResult) error {
	var p50s, p99s []float64
	for i := range r.plan.IdleWindows {
		warmup := r.plan.Warmup
		if i > 0 {
			warmup = 0
		}
		h, err := pingPong(active, newWindow(warmup, r.plan.IdleWindow))
		if err != nil {
			return err
		}
		res.RoundTrips += h.TotalCount()
		p50s = append(p50s, micros(h.ValueAtQuantile(50)))
		p99s = append(p99s, micros(h.ValueAtQuantile(99)))
	}
	res.Windows = p50s
	res.P50 = spreadOf(p50s)
	res.P99 = spreadOf(p99s)
	res.Bimodal = bimodal(p50s)
	return nil
}

// refusal finds the line in a server's log where it first turned a client
// away, so a limit is reported in the server's own words.
func refusal(logName string) string {
	b, err := os.ReadFile(logName)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if l := strings.ToLower(line); strings.Contains(l, "refus") || strings.Contains(l, "full") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// A sample is one throughput cell of one server in one round.
type sample struct {
	Round      int     `json:"round"`
	RPS        float64 `json:"requests_per_s"`
	CPUPerEcho float64 `json:"server_cpu_us_per_echo"`
	cellCPU
	Limit string `json:"limit"`
	hist  *hdrhistogram.Histogram
}

type cellKey struct {
	server string
	cores  string
	cell   cell
}

// throughputs is experiment 2: closed-loop echo from the event-loop
// generator, first with each server limited to one core and the generator on
// the other one, then with default settings, both sharing the machine. The
// servers take turns: each round starts every server once and measures
// each of its cells once; figures are the median over the rounds with the
// lowest and highest beside them. Whatever disturbs the machine for a few
// seconds then costs one sample of several servers, not every sample of one.
func (r *runner) throughputs(targets []*target) {
	samples := map[cellKey][]sample{}
	notes := map[cellKey]string{}
	for _, mode := range []struct {
		cores   string
		oneCore bool
		cells   []cell
	}{{"one core", true, r.plan.OneCore}, {"default", false, r.plan.Default}} {
		for round := range r.plan.Rounds {
			for _, t := range targets {
				if t.Skip == "" {
					r.throughputRound(t, mode.cores, mode.oneCore, mode.cells, round, samples, notes)
				}
			}
		}
		for _, t := range targets {
			if t.Skip != "" {
				continue
			}
			for _, c := range mode.cells {
				k := cellKey{t.Name, mode.cores, c}
				r.results.Throughput = append(r.results.Throughput, summarize(k, samples[k], notes[k], t.Kind, oneLoop(t)))
			}
		}
	}
	r.results.CPURatios = cpuRatios(r.results.CallbackStage, samples, r.plan)
}

// oneLoop says whether a server runs its echo loop on one thread, so that
// one CPU is all it can use, whatever the machine has.
func oneLoop(t *target) bool { return t.Kind != "peer" || t.Name == "epoll" }

// throughputRound starts one server and measures each cell once.
func (r *runner) throughputRound(t *target, cores string, oneCore bool, cells []cell, round int, samples map[cellKey][]sample, notes map[cellKey]string) {
	phase := "throughput"
	if oneCore {
		phase = "throughput-1core"
	}
	p, err := r.start(t, fmt.Sprintf("%s-%d", phase, round+1), oneCore)
	if err != nil {
		for _, c := range cells {
			notes[cellKey{t.Name, cores, c}] = fmt.Sprintf("round %d: %v", round+1, err)
		}
		r.prog.skip(len(cells))
		return
	}
	defer r.stop(p)
	if oneCore {
		// The server has CPU 0; keep the load off it, or "one core"
		// would be shared with the clients.
		restore := pinAway(0)
		defer restore()
	}
	var g *generator
	defer func() { g.close() }()
	for i, c := range cells {
		r.prog.step(t.Name, fmt.Sprintf("%s, round %d/%d: %d clients × %d B", cores, round+1, r.plan.Rounds, c.Clients, c.Size))
		k := cellKey{t.Name, cores, c}
		if g == nil || g.live() != c.Clients {
			g.close()
			if g, err = connectClients(p.addr, t.Welcome, c.Clients); err != nil {
				notes[k] = fmt.Sprintf("round %d: connected %d of %d clients: %v", round+1, len(g.clients), c.Clients, err)
				g.close()
				g = nil
				continue
			}
		}
		lr := g.closedLoop(c.Size, newWindow(r.plan.Warmup, r.plan.LoadTime), 0, func() cpuSample { return sampleCPU(p.pid()) })
		if lr.firstErr != nil {
			notes[k] = fmt.Sprintf("round %d: %d clients failed, first: %v", round+1, lr.errors, lr.firstErr)
			g.close()
			g = nil
		}
		if lr.done > 0 {
			samples[k] = append(samples[k], r.toSample(round, lr, oneCore, oneLoop(t)))
		}
		if !p.alive() {
			r.note("%s: %s: the server exited; see %s", t.Name, phase, p.log.Name())
			r.prog.skip(len(cells) - 1 - i)
			return
		}
	}
}

func (r *runner) toSample(round int, lr loadResult, oneCore, oneLoop bool) sample {
	s := sample{Round: round, RPS: float64(lr.done) / lr.seconds, cellCPU: lr.cpu, hist: lr.hist}
	if lr.cpu.HasServer {
		s.CPUPerEcho = lr.cpu.ServerCPU / float64(lr.done) * 1e6
	}
	s.Limit = whichLimit(lr.cpu, runtime.NumCPU(), oneCore, oneLoop)
	return s
}

// whichLimit names the side that held a closed loop back. A side that was
// busy 90% of the CPU it could use was the limit; if neither was and the
// machine had almost no idle time left, the CPUs were shared out (with
// other work, or between the two); otherwise nothing was saturated and the
// rate is set by the round-trip time.
func whichLimit(c cellCPU, cpus int, oneCore, oneLoop bool) string {
	if !c.HasServer || c.Seconds <= 0 {
		return "unknown"
	}
	srvCap, genCap := float64(cpus), 1.0 // the generator is one loop
	if oneCore || oneLoop {
		srvCap = 1
	}
	srv, gen := c.ServerCPU/c.Seconds, c.GenCPU/c.Seconds
	switch {
	case srv >= 0.9*srvCap && gen >= 0.9*genCap:
		return "both"
	case srv >= 0.9*srvCap:
		return "server"
	case gen >= 0.9*genCap:
		return "generator"
	case c.HasStat && c.IdleCPU/c.Seconds < 0.1*float64(cpus):
		return "machine busy"
	}
	return "round trip"
}

// summarize turns the rounds of one cell into its figures: medians and
// spreads, percentiles over all rounds together, and the limit most rounds
// had.
func summarize(k cellKey, ss []sample, note, kind string, oneLoop bool) ThroughputResult {
	res := ThroughputResult{Server: k.server, Kind: kind, Cores: k.cores, Clients: k.cell.Clients, MsgBytes: k.cell.Size,
		Rounds: len(ss), Note: note, Samples: ss}
	if len(ss) == 0 {
		return res
	}
	all := newHistogram()
	var rps, cpu, srv, gen, idle, other []float64
	limits := map[string]int{}
	for _, s := range ss {
		all.Merge(s.hist)
		rps = append(rps, s.RPS)
		if s.HasServer {
			cpu = append(cpu, s.CPUPerEcho)
			srv = append(srv, 100*s.ServerCPU/s.Seconds)
		}
		gen = append(gen, 100*s.GenCPU/s.Seconds)
		if s.HasStat {
			idle = append(idle, 100*s.IdleCPU/s.Seconds)
			other = append(other, 100*s.OtherCPU/s.Seconds)
		}
		limits[s.Limit]++
	}
	res.RPS, res.CPUPerEcho = spreadOf(rps), spreadOf(cpu)
	res.ServerCPUPct, res.GenCPUPct, res.IdlePct, res.OtherPct = spreadOf(srv), spreadOf(gen), spreadOf(idle), spreadOf(other)
	res.P50us = micros(all.ValueAtQuantile(50))
	res.P99us = micros(all.ValueAtQuantile(99))
	best := 0
	for l, n := range limits {
		if n > best || (n == best && l < res.Limit) {
			res.Limit, best = l, n
		}
	}
	if best < len(ss) {
		res.Limit += fmt.Sprintf(" (%d of %d)", best, len(ss))
	}
	return res
}

// cpuRatios is the goal of issue 15: the callback stage's CPU per echo
// against net's and gnet's, round by round (the servers of one round ran
// minutes apart at most), in every cell; the median ratio and the lowest
// and highest.
func cpuRatios(stage string, samples map[cellKey][]sample, p plan) []CPURatio {
	var out []CPURatio
	if stage == "" {
		return nil
	}
	for _, mode := range []struct {
		cores string
		cells []cell
	}{{"one core", p.OneCore}, {"default", p.Default}} {
		for _, c := range mode.cells {
			own := samples[cellKey{stage, mode.cores, c}]
			for _, peer := range []string{"net", "gnet", "epoll"} {
				var ratios []float64
				for _, o := range samples[cellKey{peer, mode.cores, c}] {
					for _, s := range own {
						if s.Round == o.Round && s.CPUPerEcho > 0 && o.CPUPerEcho > 0 {
							ratios = append(ratios, s.CPUPerEcho/o.CPUPerEcho)
						}
					}
				}
				if len(ratios) > 0 {
					out = append(out, CPURatio{Stage: stage, Peer: peer, Cores: mode.cores, Clients: c.Clients, MsgBytes: c.Size,
						Ratio: spreadOf(ratios)})
				}
			}
		}
	}
	return out
}

// openLoops is experiment 5: open-loop latency. Every client sends at a
// fixed rate, whatever the server does, at several total rates up to the
// slowest server's closed-loop median (the same rates for every server, so
// their percentiles compare at equal load), with the server on one core
// and the generator on the other. The servers take turns, as in
// throughputs.
func (r *runner) openLoops(targets []*target) {
	n := r.plan.OpenClients
	base := 0.0
	for _, x := range r.results.Throughput {
		if x.Cores == "one core" && x.Clients == n && x.MsgBytes == 64 && x.Rounds > 0 && (base == 0 || x.RPS.Median < base) {
			base = x.RPS.Median
		}
	}
	if base == 0 {
		base = r.calibrate(targets)
	}
	if base == 0 {
		r.note("open loop: no closed-loop rate to start from; not measured")
		return
	}
	r.results.OpenBase = base
	type key struct {
		server string
		rate   float64
	}
	samples := map[key][]OpenSample{}
	notes := map[key]string{}
	for round := range r.plan.Rounds {
		for _, t := range targets {
			if t.Skip != "" {
				continue
			}
			r.openRound(t, round, base, func(rate float64, s OpenSample, note string) {
				k := key{t.Name, rate}
				if note != "" {
					notes[k] = note
				} else {
					samples[k] = append(samples[k], s)
				}
			})
		}
	}
	for _, t := range targets {
		if t.Skip != "" {
			continue
		}
		for _, f := range r.plan.OpenRates {
			k := key{t.Name, f * base}
			ss := samples[k]
			res := OpenResult{Server: t.Name, Kind: t.Kind, Clients: n, Fraction: f, Rate: f * base, Rounds: len(ss), Note: notes[k], Samples: ss}
			var got, p50, p99, p999, lag []float64
			for _, s := range ss {
				got, p50, p99, p999, lag = append(got, s.Achieved), append(p50, s.P50us), append(p99, s.P99us), append(p999, s.P999us), append(lag, s.LagP99us)
			}
			res.Achieved, res.P50, res.P99, res.P999, res.LagP99 = spreadOf(got), spreadOf(p50), spreadOf(p99), spreadOf(p999), spreadOf(lag)
			r.results.Open = append(r.results.Open, res)
		}
	}
}

// openRound starts one server on one core and runs every rate once.
func (r *runner) openRound(t *target, round int, base float64, record func(rate float64, s OpenSample, note string)) {
	rates := r.plan.OpenRates
	p, err := r.start(t, fmt.Sprintf("openloop-%d", round+1), true)
	if err != nil {
		for _, f := range rates {
			record(f*base, OpenSample{}, fmt.Sprintf("round %d: %v", round+1, err))
		}
		r.prog.skip(len(rates))
		return
	}
	defer r.stop(p)
	restore := pinAway(0)
	defer restore()
	g, err := connectClients(p.addr, t.Welcome, r.plan.OpenClients)
	defer func() { g.close() }()
	for _, f := range rates {
		rate := f * base
		r.prog.step(t.Name, fmt.Sprintf("open loop, round %d/%d: %.0f requests/s (%.0f%%)", round+1, r.plan.Rounds, rate, 100*f))
		if err != nil {
			record(rate, OpenSample{}, fmt.Sprintf("round %d: %v", round+1, err))
			continue
		}
		if g.live() != r.plan.OpenClients {
			g.close()
			if g, err = connectClients(p.addr, t.Welcome, r.plan.OpenClients); err != nil {
				record(rate, OpenSample{}, fmt.Sprintf("round %d: %v", round+1, err))
				continue
			}
		}
		lr := g.openLoop(64, newWindow(r.plan.Warmup, r.plan.OpenTime), rate/float64(r.plan.OpenClients), func() cpuSample { return sampleCPU(p.pid()) })
		if lr.firstErr != nil {
			record(rate, OpenSample{}, fmt.Sprintf("round %d: %d clients failed, first: %v", round+1, lr.errors, lr.firstErr))
			continue
		}
		record(rate, OpenSample{Round: round, Achieved: float64(lr.done) / lr.seconds,
			P50us: micros(lr.hist.ValueAtQuantile(50)), P99us: micros(lr.hist.ValueAtQuantile(99)), P999us: micros(lr.hist.ValueAtQuantile(99.9)),
			LagP99us: micros(lr.lag.ValueAtQuantile(99)), cellCPU: lr.cpu}, "")
	}
}

// calibrate finds the slowest server's closed-loop rate when the
// throughput experiment did not run: one window per server.
func (r *runner) calibrate(targets []*target) float64 {
	base := 0.0
	for _, t := range targets {
		if t.Skip != "" {
			continue
		}
		r.prog.say("open loop: calibrating on " + t.Name)
		p, err := r.start(t, "calibrate", true)
		if err != nil {
			continue
		}
		restore := pinAway(0)
		g, err := connectClients(p.addr, t.Welcome, r.plan.OpenClients)
		if err == nil {
			lr := g.closedLoop(64, newWindow(r.plan.Warmup, r.plan.LoadTime), 0, nil)
			if rate := float64(lr.done) / lr.seconds; lr.firstErr == nil && (base == 0 || rate < base) {
				base = rate
			}
		}
		g.close()
		restore()
		r.stop(p)
	}
	return base
}

// syscalls is experiment 4: a fixed number of echoes while the kernel
// counts each server's system calls (all its threads, runtime included),
// SyscallReps times per server, the servers taking turns. With perf, all
// servers run at once under one perf session (see perfSession); with
// strace, one server at a time.
func (r *runner) syscalls(targets []*target) {
	counter, why := r.syscallCounter()
	var live []*target
	for _, t := range targets {
		if t.Skip == "" {
			live = append(live, t)
		}
	}
	results := map[string]*SyscallResult{}
	perName := map[string]map[string][]float64{}
	totals := map[string][]float64{}
	defer func() {
		for _, t := range live {
			res := results[t.Name]
			if res.Note == "" {
				finishSyscalls(res, perName[t.Name], totals[t.Name])
			}
			r.results.Syscalls = append(r.results.Syscalls, *res)
		}
	}()
	for _, t := range live {
		results[t.Name] = &SyscallResult{Server: t.Name, Kind: t.Kind, Note: why}
		perName[t.Name] = map[string][]float64{}
	}
	if counter == nil {
		r.prog.skip(len(live) * r.plan.SyscallReps)
		return
	}
	var rs []running
	defer func() {
		for _, x := range rs {
			x.g.close()
			r.stop(x.p)
		}
	}()
	for _, t := range live {
		res := results[t.Name]
		res.Method = counter.method(r.plan.SyscallEvents)
		p, err := r.start(t, "syscalls", false)
		if err != nil {
			res.Note = err.Error()
			continue
		}
		// Connect first, so the count covers echoing, not accepting.
		g, err := connectClients(p.addr, t.Welcome, r.plan.SyscallConns)
		if err != nil {
			res.Note = err.Error()
			g.close()
			r.stop(p)
			continue
		}
		rs = append(rs, running{t, p, g})
	}
	record := func(t *target, counts map[string]int64, done int64) {
		res := results[t.Name]
		res.Messages += done
		total := 0.0
		for name, n := range counts {
			perName[t.Name][name] = append(perName[t.Name][name], float64(n)/float64(done))
			total += float64(n) / float64(done)
		}
		totals[t.Name] = append(totals[t.Name], total)
	}
	echo := func(x running) (int64, error) {
		lr := x.g.closedLoop(64, window{}, r.plan.SyscallMsgs, nil)
		return lr.done, lr.firstErr
	}
	if counter.perf == "" {
		for rep := range r.plan.SyscallReps {
			for _, x := range rs {
				r.prog.step(x.t.Name, fmt.Sprintf("system calls (strace), %d/%d", rep+1, r.plan.SyscallReps))
				var done int64
				counts, err := counter.count(x.p.pid(), func() (err error) { done, err = echo(x); return err })
				if err != nil || done == 0 {
					results[x.t.Name].Note = fmt.Sprintf("count %d: %d echoes, %v", rep+1, done, err)
					continue
				}
				record(x.t, counts, done)
			}
		}
		return
	}
	// One perf session for all servers if its counters fit in the open-file
	// limit (raised as far as this process may), otherwise as few sessions
	// as fit, one after another.
	perThread := counter.perThread(r.plan.SyscallEvents)
	var nthreads []int
	for _, x := range rs {
		nthreads = append(nthreads, threads(x.p.pid()))
	}
	limit, err := openFileLimit(perfFiles(nthreads, perThread))
	if err != nil {
		for _, x := range rs {
			results[x.t.Name].Note = "perf: open-file limit: " + err.Error()
		}
		return
	}
	groups, tooBig := perfGroups(nthreads, perThread, limit)
	for _, i := range tooBig {
		results[rs[i].t.Name].Note = fmt.Sprintf("perf: %d threads × %d tracepoints need %d open files, more than the limit of %d (ulimit -Hn)",
			nthreads[i], perThread, perfFiles(nthreads[i:i+1], perThread), limit)
	}
	if len(groups) > 1 {
		r.note("perf: the counters of all %d servers need %d open files and the limit is %d: %d perf sessions, one after another",
			len(rs), perfFiles(nthreads, perThread), limit, len(groups))
	}
	r.prog.skip(len(tooBig) * r.plan.SyscallReps)
	for _, g := range groups {
		var grp []running
		for _, i := range g {
			grp = append(grp, rs[i])
		}
		r.perfRuns(counter, grp, results, record, echo)
	}
}

// A running server of the system-call experiment, its clients connected.
type running struct {
	t *target
	p *proc
	g *generator
}

// perfRuns is one perf session over the servers of grp: each echoes
// SyscallReps times, taking turns, and each run's counts are the burst of
// calls it made.
func (r *runner) perfRuns(counter *syscallCounter, grp []running, results map[string]*SyscallResult,
	record func(*target, map[string]int64, int64), echo func(running) (int64, error)) {
	var pids []int
	for _, x := range grp {
		pids = append(pids, x.p.pid())
	}
	r.prog.say(fmt.Sprintf("system calls: attaching perf to %d servers (%s)", len(pids), r.plan.SyscallEvents))
	sess, err := counter.startSession(pids, r.plan.SyscallEvents)
	if err != nil {
		for _, x := range grp {
			results[x.t.Name].Note = "perf: " + err.Error()
		}
		return
	}
	type run struct {
		t    *target
		done int64
	}
	var runs []run
	for rep := range r.plan.SyscallReps {
		for _, x := range grp {
			r.prog.step(x.t.Name, fmt.Sprintf("system calls (perf), %d/%d", rep+1, r.plan.SyscallReps))
			done, err := echo(x)
			if err != nil {
				results[x.t.Name].Note = fmt.Sprintf("echo %d: %v", rep+1, err)
			}
			runs = append(runs, run{x.t, done})
			time.Sleep(4 * perfInterval) // a quiet gap between bursts
		}
	}
	r.prog.say("system calls: detaching perf")
	intervals, err := sess.stop()
	bs := bursts(intervals)
	if err == nil && len(bs) != len(runs) {
		err = fmt.Errorf("found %d bursts of calls for %d runs; the runs could not be told apart", len(bs), len(runs))
	}
	for i, x := range runs {
		if err != nil {
			results[x.t.Name].Note = "perf: " + err.Error()
			continue
		}
		if x.done > 0 && results[x.t.Name].Note == "" {
			record(x.t, bs[i], x.done)
		}
	}
}

// finishSyscalls turns the counts of the repetitions into per-message
// figures with their spread, calls sorted by how many each message costs.
func finishSyscalls(res *SyscallResult, perName map[string][]float64, totals []float64) {
	res.Reps = len(totals)
	res.PerMessage = spreadOf(totals)
	for name, v := range perName {
		for len(v) < res.Reps { // a call not made in some repetitions
			v = append(v, 0)
		}
		res.Calls = append(res.Calls, SyscallRate{Name: name, PerMessage: spreadOf(v)})
	}
	slices.SortFunc(res.Calls, func(a, b SyscallRate) int {
		if a.PerMessage.Median != b.PerMessage.Median {
			if a.PerMessage.Median > b.PerMessage.Median {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}
