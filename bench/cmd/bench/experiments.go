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

// quietest times the active client's ping-pong in plan.Reps windows after a
// warm-up and keeps the window with the lowest median. Anything else the
// machine runs can only add to a round trip, so the quietest window is the
// closest to the cost of the server itself; the others are counted in
// RoundTrips but do not set the figures.
func (r *runner) quietest(active net.Conn, res *IdleResult) error {
	for i := range r.plan.Reps {
		warmup := time.Duration(0)
		if i == 0 {
			warmup = r.plan.Warmup
		}
		lr := closedLoop([]net.Conn{active}, 64, newWindow(warmup, r.plan.IdleTime/time.Duration(r.plan.Reps)), 0)
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

// throughput is experiment 2: closed-loop echo with many clients and two
// message sizes, on a server with default settings or limited to one core.
func (r *runner) throughput(t *target, oneCore bool) {
	cores, phase := "default", "throughput"
	if oneCore {
		cores, phase = "one core", "throughput-1core"
	}
	cells := len(r.plan.Clients) * len(r.plan.Sizes)
	cell := func(clients, size int) string { return fmt.Sprintf("%s: %d clients × %d B", phase, clients, size) }
	r.prog.step(t.Name, cell(r.plan.Clients[0], r.plan.Sizes[0]))
	p, err := r.start(t, phase, oneCore)
	if err != nil {
		r.note("%s: %s not measured: %v", t.Name, phase, err)
		r.prog.skip(cells - 1)
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
			if done > 0 {
				r.prog.step(t.Name, cell(clients, size))
			}
			done++
			res := ThroughputResult{Server: t.Name, Kind: t.Kind, Cores: cores, Clients: clients, MsgBytes: size}
			if err != nil {
				res.Note = fmt.Sprintf("connected %d of %d clients: %v", len(conns), clients, err)
				r.results.Throughput = append(r.results.Throughput, res)
				continue
			}
			lr := r.repeat(conns, size, &res)
			if lr.firstErr != nil {
				res.Note = fmt.Sprintf("%d clients failed, first: %v", lr.errors, lr.firstErr)
				// The loop may have left bytes in flight: start the
				// next size on fresh connections.
				closeAll(conns)
				conns, err = openMany(p.addr, t.Welcome, clients)
			}
			r.results.Throughput = append(r.results.Throughput, res)
		}
		closeAll(conns)
		if !p.alive() {
			r.note("%s: %s: the server exited; see %s", t.Name, phase, p.log.Name())
			r.prog.skip(cells - done)
			return
		}
	}
}

// repeat measures one throughput cell: a warm-up, then plan.Reps timed runs
// back to back. Requests/s is the median run, so one run disturbed by
// something else on the machine does not set the figure; the spread is kept
// beside it. Percentiles come from all runs together.
func (r *runner) repeat(conns []net.Conn, size int, res *ThroughputResult) loadResult {
	var (
		all  = loadResult{hist: newHistogram()}
		rate []float64
	)
	for i := range r.plan.Reps {
		warmup := time.Duration(0)
		if i == 0 {
			warmup = r.plan.Warmup
		}
		lr := closedLoop(conns, size, newWindow(warmup, r.plan.LoadTime), 0)
		all.hist.Merge(lr.hist)
		all.done += lr.done
		all.errors += lr.errors
		if lr.firstErr != nil {
			all.firstErr = lr.firstErr
			break
		}
		rate = append(rate, float64(lr.done)/lr.seconds)
	}
	if len(rate) > 0 {
		slices.Sort(rate)
		res.RPS = rate[len(rate)/2]
		res.RPSMin, res.RPSMax = rate[0], rate[len(rate)-1]
	}
	res.P50us = micros(all.hist.ValueAtQuantile(50))
	res.P99us = micros(all.hist.ValueAtQuantile(99))
	res.Errors = all.errors
	return all
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
