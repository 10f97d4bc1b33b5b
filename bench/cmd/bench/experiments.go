package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
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
		if err := r.quietest(active, &res); err != nil {
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

// quietest times the active client's ping-pong in plan.IdleWindows windows after a
// warm-up and keeps the window with the lowest median. Anything else the
// machine runs can only add to a round trip, so the quietest window is the
// closest to the cost of the server itself; the others are counted in
// RoundTrips but do not set the figures.
func (r *runner) quietest(active net.Conn, res *IdleResult) error {
	for i := range r.plan.IdleWindows {
		warmup := time.Duration(0)
		if i == 0 {
			warmup = r.plan.Warmup
		}
		lr := closedLoop([]net.Conn{active}, 64, newWindow(warmup, r.plan.IdleTime/time.Duration(r.plan.IdleWindows)), 0)
		if lr.firstErr != nil {
			return lr.firstErr
		}
		res.RoundTrips += lr.done
		if p50 := micros(lr.hist.ValueAtQuantile(50)); i == 0 || p50 < res.P50us {
			res.P50us, res.P99us = p50, micros(lr.hist.ValueAtQuantile(99))
		}
	}
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

// cellKey names one throughput cell of one server.
type cellKey struct {
	server        string
	clients, size int
}

// throughputs is experiment 2: closed-loop echo with many clients and two
// message sizes, on servers with default settings and then limited to one
// core. The servers take turns: each round starts every server once and
// measures every cell once, and requests/s is the median over the rounds.
// Whatever disturbs a run (other work on the machine, a server that
// happened to start on a bad footing) then costs one sample of several
// servers, not every sample of one.
func (r *runner) throughputs(targets []*target) {
	for _, oneCore := range []bool{false, true} {
		cores := "default"
		if oneCore {
			cores = "one core"
		}
		samples := map[cellKey][]loadResult{}
		notes := map[cellKey]string{}
		for round := range r.plan.Rounds {
			for _, t := range targets {
				if t.Skip == "" {
					r.throughputRound(t, oneCore, round, samples, notes)
				}
			}
		}
		for _, t := range targets {
			if t.Skip != "" {
				continue
			}
			for _, clients := range r.plan.Clients {
				for _, size := range r.plan.Sizes {
					k := cellKey{t.Name, clients, size}
					res := ThroughputResult{Server: t.Name, Kind: t.Kind, Cores: cores, Clients: clients, MsgBytes: size,
						Rounds: len(samples[k]), Note: notes[k]}
					summarize(samples[k], &res)
					r.results.Throughput = append(r.results.Throughput, res)
				}
			}
		}
	}
}

// throughputRound starts one server and measures each cell once.
func (r *runner) throughputRound(t *target, oneCore bool, round int, samples map[cellKey][]loadResult, notes map[cellKey]string) {
	phase := "throughput"
	if oneCore {
		phase = "throughput-1core"
	}
	cells := len(r.plan.Clients) * len(r.plan.Sizes)
	p, err := r.start(t, fmt.Sprintf("%s-%d", phase, round+1), oneCore)
	if err != nil {
		for _, clients := range r.plan.Clients {
			for _, size := range r.plan.Sizes {
				notes[cellKey{t.Name, clients, size}] = fmt.Sprintf("round %d: %v", round+1, err)
			}
		}
		r.prog.skip(cells)
		return
	}
	defer r.stop(p)
	if oneCore {
		// The server has CPU 0; keep the load off it, or "one core"
		// would be shared with the clients.
		restore := pinAway(0)
		defer restore()
	}
	done := 0 // cells measured, for the progress display
	for _, clients := range r.plan.Clients {
		conns, err := openMany(p.addr, t.Welcome, clients)
		for _, size := range r.plan.Sizes {
			r.prog.step(t.Name, fmt.Sprintf("%s, round %d/%d: %d clients × %d B", phase, round+1, r.plan.Rounds, clients, size))
			done++
			k := cellKey{t.Name, clients, size}
			if err != nil {
				notes[k] = fmt.Sprintf("round %d: connected %d of %d clients: %v", round+1, len(conns), clients, err)
				continue
			}
			lr := closedLoop(conns, size, newWindow(r.plan.Warmup, r.plan.LoadTime), 0)
			if lr.firstErr != nil {
				notes[k] = fmt.Sprintf("round %d: %d clients failed, first: %v", round+1, lr.errors, lr.firstErr)
				// The loop may have left bytes in flight: start the
				// next size on fresh connections.
				closeAll(conns)
				conns, err = openMany(p.addr, t.Welcome, clients)
				continue
			}
			samples[k] = append(samples[k], lr)
		}
		closeAll(conns)
		if !p.alive() {
			r.note("%s: %s: the server exited; see %s", t.Name, phase, p.log.Name())
			r.prog.skip(cells - done)
			return
		}
	}
}

// summarize turns the rounds of one cell into its figures: the median
// requests/s and the spread, and percentiles over all rounds together.
func summarize(rounds []loadResult, res *ThroughputResult) {
	if len(rounds) == 0 {
		return
	}
	all := newHistogram()
	var rate []float64
	for _, lr := range rounds {
		all.Merge(lr.hist)
		rate = append(rate, float64(lr.done)/lr.seconds)
	}
	slices.Sort(rate)
	res.RPS = rate[len(rate)/2]
	res.RPSMin, res.RPSMax = rate[0], rate[len(rate)-1]
	res.P50us = micros(all.ValueAtQuantile(50))
	res.P99us = micros(all.ValueAtQuantile(99))
}

// syscalls is experiment 4: a fixed number of echoes while strace counts
// the server's system calls (all its threads, runtime included).
func (r *runner) syscalls(t *target) {
	r.prog.step(t.Name, "system calls")
	res := SyscallResult{Server: t.Name, Kind: t.Kind}
	defer func() { r.results.Syscalls = append(r.results.Syscalls, res) }()
	if r.strace == "" {
		res.Note = "strace not installed: skipped"
		return
	}
	if runtime.GOOS != "linux" {
		res.Note = "strace counts only on Linux: skipped"
		return
	}
	p, err := r.start(t, "syscalls", false)
	if err != nil {
		res.Note = err.Error()
		return
	}
	defer r.stop(p)
	// Connect first, so the count covers echoing, not accepting.
	conns, err := openMany(p.addr, t.Welcome, r.plan.StraceConns)
	defer closeAll(conns)
	if err != nil {
		res.Note = err.Error()
		return
	}
	counts, messages, err := r.straceEchoes(p, conns)
	if err != nil {
		res.Note = err.Error()
		return
	}
	res.Messages = messages
	for _, c := range counts {
		res.Calls += c.Calls
	}
	res.PerMessage = float64(res.Calls) / float64(messages)
	slices.SortFunc(counts, func(a, b SyscallCount) int { return int(b.Calls - a.Calls) })
	res.Top = counts[:min(len(counts), 4)]
	var parts []string
	for _, c := range res.Top {
		parts = append(parts, fmt.Sprintf("%s %.2f", c.Name, float64(c.Calls)/float64(messages)))
	}
	res.TopText = strings.Join(parts, ", ")
}
