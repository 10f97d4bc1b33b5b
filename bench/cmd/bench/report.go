package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Results is everything one run measured; results.json is this, verbatim.
type Results struct {
	Date          string             `json:"date"`
	Command       string             `json:"command"`
	Commit        string             `json:"workbook_commit"`
	Mode          string             `json:"mode"`
	Elapsed       string             `json:"elapsed"`
	Machine       Machine            `json:"machine"`
	OneCore       string             `json:"one_core"` // how "one core" was enforced
	IdleCPU       string             `json:"idle_cpu"` // where the idle-load experiment ran
	Plan          plan               `json:"plan"`
	CallbackStage string             `json:"callback_stage"` // the stage the goals are about, as benched
	Servers       []*target          `json:"servers"`
	Idle          []IdleResult       `json:"idle"`
	Memory        []MemoryResult     `json:"memory"`
	Throughput    []ThroughputResult `json:"throughput"`
	CPURatios     []CPURatio         `json:"cpu_per_echo_ratios"`
	Syscalls      []SyscallResult    `json:"syscalls"`
	OpenBase      float64            `json:"open_loop_base_requests_per_s"` // the rate the open-loop fractions are of
	Open          []OpenResult       `json:"open_loop"`
	Goals         []Goal             `json:"goals"`
	Notes         []string           `json:"notes"`
}

type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Go     string `json:"go"`
	// LoadAtStart is the 1-minute load average when the run began (Linux):
	// anything else running skews every figure, throughput most.
	LoadAtStart string `json:"load_at_start,omitempty"`
	// OtherWork is the CPU time processes other than the benchmark and
	// its servers used during the run (Linux).
	OtherWork string `json:"other_work,omitempty"`
}

type IdleResult struct {
	Server     string    `json:"server"`
	Kind       string    `json:"kind"`
	Idle       int       `json:"idle_clients"`
	P50        spread    `json:"p50_us"` // over the windows' p50s
	P99        spread    `json:"p99_us"` // over the windows' p99s
	Windows    []float64 `json:"window_p50s_us"`
	Bimodal    string    `json:"bimodal,omitempty"`
	RoundTrips int64     `json:"round_trips"`
	Limit      string    `json:"limit,omitempty"` // why N idle clients could not be measured
	Held       int       `json:"held,omitempty"`  // and how many the server did hold
}

type MemoryResult struct {
	Server       string  `json:"server"`
	Kind         string  `json:"kind"`
	Conns        int     `json:"idle_clients"`
	RSSBeforeKiB int64   `json:"rss_before_kib"`
	RSSAfterKiB  int64   `json:"rss_after_kib"`
	BytesPerConn float64 `json:"bytes_per_client"`
	Note         string  `json:"note,omitempty"` // why it was not measured
}

type ThroughputResult struct {
	Server       string   `json:"server"`
	Kind         string   `json:"kind"`
	Cores        string   `json:"cores"` // "one core" or "default"
	Clients      int      `json:"clients"`
	MsgBytes     int      `json:"message_bytes"`
	Rounds       int      `json:"rounds"` // rounds measured
	RPS          spread   `json:"requests_per_s"`
	CPUPerEcho   spread   `json:"server_cpu_us_per_echo"`
	ServerCPUPct spread   `json:"server_cpu_pct"`    // of one CPU
	GenCPUPct    spread   `json:"generator_cpu_pct"` // of one CPU
	IdlePct      spread   `json:"machine_idle_pct"`  // of one CPU (the machine has Cores of them)
	OtherPct     spread   `json:"other_work_pct"`    // of one CPU
	P50us        float64  `json:"p50_us"`            // all rounds together
	P99us        float64  `json:"p99_us"`
	Limit        string   `json:"limit"`
	Note         string   `json:"note,omitempty"`
	Samples      []sample `json:"rounds_measured"`
}

// A CPURatio is the callback stage's CPU per echo over a peer's, round by
// round.
type CPURatio struct {
	Stage    string `json:"stage"`
	Peer     string `json:"peer"`
	Cores    string `json:"cores"`
	Clients  int    `json:"clients"`
	MsgBytes int    `json:"message_bytes"`
	Ratio    spread `json:"ratio"`
}

type SyscallResult struct {
	Server     string        `json:"server"`
	Kind       string        `json:"kind"`
	Method     string        `json:"method"`
	Messages   int64         `json:"messages"` // all repetitions together
	Reps       int           `json:"repetitions"`
	PerMessage spread        `json:"per_message"`
	Calls      []SyscallRate `json:"calls,omitempty"` // by name, most first
	Note       string        `json:"note,omitempty"`
}

type SyscallRate struct {
	Name       string `json:"name"`
	PerMessage spread `json:"per_message"`
}

type OpenResult struct {
	Server   string       `json:"server"`
	Kind     string       `json:"kind"`
	Clients  int          `json:"clients"`
	Fraction float64      `json:"fraction"` // of the open-loop base rate
	Rate     float64      `json:"offered_requests_per_s"`
	Rounds   int          `json:"rounds"`
	Achieved spread       `json:"achieved_requests_per_s"`
	P50      spread       `json:"p50_us"`
	P99      spread       `json:"p99_us"`
	P999     spread       `json:"p99_9_us"`
	LagP99   spread       `json:"generator_send_lag_p99_us"`
	Note     string       `json:"note,omitempty"`
	Samples  []OpenSample `json:"rounds_measured"`
}

type OpenSample struct {
	Round    int     `json:"round"`
	Achieved float64 `json:"achieved_requests_per_s"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	P999us   float64 `json:"p99_9_us"`
	LagP99us float64 `json:"generator_send_lag_p99_us"`
	cellCPU
}

// A Goal is one of the issues' targets, measured and reported, never asserted.
type Goal struct {
	Goal   string `json:"goal"`
	Server string `json:"server"`
	Value  string `json:"value"`
	Met    string `json:"met"` // "met", "not met", or for a ratio whose spread straddles the mark, "within the spread"
}

// idleP50 finds the median p50 of a server at n idle clients (0 if not measured).
func (r *Results) idleP50(server string, n int) float64 {
	for _, x := range r.Idle {
		if x.Server == server && x.Idle == n && x.Limit == "" {
			return x.P50.Median
		}
	}
	return 0
}

// goalLoad is the client count the CPU goal is judged at: 300, or the
// largest the plan has.
func goalLoad(p plan) int {
	load := 0
	for _, c := range p.OneCore {
		if c.Clients == 300 && c.Size == 64 {
			return 300
		}
		load = max(load, c.Clients)
	}
	return load
}

// evaluateGoals compares the run with the issues' goals. Quick mode has
// neither 10,000 idle clients nor 300 clients; it compares at its largest
// steps and says so.
func evaluateGoals(r *Results) {
	maxN := r.Plan.IdleConns[len(r.Plan.IdleConns)-1]
	for _, t := range r.Servers {
		if t.Skip != "" || t.Kind != "kqueue" {
			continue
		}
		if p0, pN := r.idleP50(t.Name, 0), r.idleP50(t.Name, maxN); p0 > 0 && pN > 0 {
			ratio := pN / p0
			r.Goals = append(r.Goals, Goal{Goal: fmt.Sprintf("flat under idle load: p50 at %d idle <= 1.25x p50 at 0", maxN),
				Server: t.Name, Value: fmt.Sprintf("%.2fx", ratio), Met: metIf(ratio <= 1.25)})
		}
		for _, m := range r.Memory {
			if m.Server == t.Name && m.Note == "" {
				r.Goals = append(r.Goals, Goal{Goal: fmt.Sprintf("<= 1 KiB per idle client (at %d)", m.Conns),
					Server: t.Name, Value: fmt.Sprintf("%.0f B", m.BytesPerConn), Met: metIf(m.BytesPerConn <= 1024)})
			}
		}
	}
	load := goalLoad(r.Plan)
	for _, x := range r.CPURatios {
		if x.Cores != "one core" || x.Clients != load || x.MsgBytes != 64 || x.Peer == "epoll" {
			continue
		}
		met := metIf(x.Ratio.Max <= 1)
		if x.Ratio.Min <= 1 && x.Ratio.Max > 1 {
			met = "within the spread"
		}
		r.Goals = append(r.Goals, Goal{
			Goal:   fmt.Sprintf("CPU per echo at or below %s's, %d clients, 64 B, one core (ratio, median [min–max] of %d rounds)", x.Peer, load, x.Ratio.N),
			Server: x.Stage, Value: x.Ratio.format("%.2fx"), Met: met})
	}
}

func metIf(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// printTable writes the human-readable report.
func printTable(w io.Writer, r *Results) {
	fmt.Fprintf(w, "\nbench -mode %s on %s, %d cores, %s, %s; workbook %s; %s (took %s)\n",
		r.Mode, r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel, r.Machine.Go, r.Commit, r.Date, r.Elapsed)
	if r.Machine.LoadAtStart != "" {
		fmt.Fprintf(w, "load average before the run: %s; CPU used by other work during the run (irq, softirq and steal included): %s\n",
			r.Machine.LoadAtStart, r.Machine.OtherWork)
	}
	if r.Mode == "quick" {
		fmt.Fprintf(w, "quick mode, a smoke test: it shows that every server builds, starts, echoes and stops; its figures, from\n"+
			"one round of %v a cell and a few windows of %v, are not to be quoted (make bench measures)\n", r.Plan.LoadTime, r.Plan.IdleWindow)
	}
	fmt.Fprintf(w, "every figure: median [lowest–highest] over the rounds or windows\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }

	if len(r.Idle) > 0 {
		fmt.Fprintf(w, "\n1. Idle load: round trip of one active client (64 B), p50 in µs over %d windows of %v, with N idle clients (%s)\n",
			r.Plan.IdleWindows, r.Plan.IdleWindow, r.IdleCPU)
		head := []string{"server"}
		for _, n := range r.Plan.IdleConns {
			head = append(head, fmt.Sprintf("N=%d", n))
		}
		row(append(head, "p50 ratio")...)
		maxN := r.Plan.IdleConns[len(r.Plan.IdleConns)-1]
		for _, t := range r.Servers {
			cells := []string{t.Name}
			for _, n := range r.Plan.IdleConns {
				cells = append(cells, idleCell(r, t.Name, n))
			}
			ratio := "-"
			for i := len(r.Plan.IdleConns) - 1; i > 0; i-- {
				n := r.Plan.IdleConns[i]
				if p0, pN := r.idleP50(t.Name, 0), r.idleP50(t.Name, n); p0 > 0 && pN > 0 {
					ratio = fmt.Sprintf("%.2fx", pN/p0)
					if n != maxN {
						ratio += fmt.Sprintf(" (N=%d)", n)
					}
					break
				}
			}
			row(append(cells, ratio)...)
		}
		tw.Flush()
		for _, x := range r.Idle {
			if x.Limit != "" {
				fmt.Fprintf(w, "   %s at N=%d: %s\n", x.Server, x.Idle, x.Limit)
			}
			if x.Bimodal != "" {
				fmt.Fprintf(w, "   %s at N=%d: bimodal: %s\n", x.Server, x.Idle, x.Bimodal)
			}
		}
	}

	if len(r.Throughput) > 0 {
		fmt.Fprintf(w, "\n2. Throughput and CPU per echo: closed loop, one-thread event-loop generator, %d rounds of %v per cell\n",
			r.Plan.Rounds, r.Plan.LoadTime)
		fmt.Fprintf(w, "   one core = %s; CPU %% is of one CPU (the machine has %d)\n", r.OneCore, r.Machine.Cores)
		row("server", "cores", "cell", "requests/s", "server µs CPU/echo", "server CPU %", "generator CPU %", "machine idle %", "other work %", "p99 µs", "limit")
		below, lowest := 0, 0.0
		for _, x := range r.Throughput {
			cell := fmt.Sprintf("%d × %d B", x.Clients, x.MsgBytes)
			if x.Rounds == 0 {
				row(x.Server, x.Cores, cell, "failed", "-", "-", "-", "-", "-", "-", "-")
				continue
			}
			if x.OtherPct.N > 0 && x.OtherPct.Min < 0 {
				below, lowest = below+1, min(lowest, x.OtherPct.Min)
			}
			row(x.Server, x.Cores, cell, x.RPS.format("%.0f"), x.CPUPerEcho.format("%.2f"), x.ServerCPUPct.format("%.0f"),
				x.GenCPUPct.format("%.0f"), x.IdlePct.format("%.0f"), x.OtherPct.atLeastZero().format("%.0f"), fmt.Sprintf("%.0f", x.P99us), x.Limit)
		}
		tw.Flush()
		if below > 0 {
			// No work takes less than no time: a reading below zero is the
			// meters' disagreement (cpuBetween), and the table says so
			// rather than print it as if it were a measurement.
			fmt.Fprintf(w, "   other work %%, the machine's busy time (/proc/stat) less the server's and the generator's, came out below zero\n"+
				"   in %d of %d cells (lowest %.0f), shown as 0: its meters disagree by that much (/proc/stat counts in clock ticks of\n"+
				"   %v, %.1f%% of one CPU in a window of %v); results.json keeps every reading\n",
				below, len(r.Throughput), lowest, time.Second/clockTicks, 100/(clockTicks*r.Plan.LoadTime.Seconds()), r.Plan.LoadTime)
		}
		for _, x := range r.Throughput {
			if x.Note != "" {
				fmt.Fprintf(w, "   %s, %s, %d clients, %d B: %s\n", x.Server, x.Cores, x.Clients, x.MsgBytes, x.Note)
			}
		}
		if len(r.CPURatios) > 0 {
			fmt.Fprintf(w, "\n   CPU per echo of %s over each peer's, round by round\n", r.CallbackStage)
			row("peer", "cores", "cell", "ratio")
			for _, x := range r.CPURatios {
				row(x.Peer, x.Cores, fmt.Sprintf("%d × %d B", x.Clients, x.MsgBytes), x.Ratio.format("%.2f"))
			}
			tw.Flush()
		}
	}

	if len(r.Memory) > 0 {
		fmt.Fprintf(w, "\n3. Memory per idle client (resident set of the server)\n")
		row("server", "clients", "RSS before", "RSS after", "per client")
		for _, m := range r.Memory {
			if m.Note != "" {
				row(m.Server, strconv.Itoa(m.Conns), "-", "-", m.Note)
				continue
			}
			row(m.Server, strconv.Itoa(m.Conns), fmt.Sprintf("%d KiB", m.RSSBeforeKiB), fmt.Sprintf("%d KiB", m.RSSAfterKiB),
				fmt.Sprintf("%.0f B", m.BytesPerConn))
		}
		tw.Flush()
	}

	if len(r.Syscalls) > 0 {
		fmt.Fprintf(w, "\n4. System calls per echoed 64 B message, %d clients × %d round trips, counted %d times (all threads)\n",
			r.Plan.SyscallConns, r.Plan.SyscallMsgs, r.Plan.SyscallReps)
		row("server", "per message", "calls per message (median)", "counted with")
		for _, s := range r.Syscalls {
			if s.Note != "" {
				row(s.Server, "-", s.Note, "-")
				continue
			}
			row(s.Server, s.PerMessage.format("%.2f"), topCalls(s, 5), s.Method)
		}
		tw.Flush()
	}

	if len(r.Open) > 0 {
		fmt.Fprintf(w, "\n5. Open loop: %d clients × 64 B at fixed rates (fractions of %.0f requests/s, the slowest server's closed-loop median),\n",
			r.Plan.OpenClients, r.OpenBase)
		fmt.Fprintf(w, "   latency from each message's due time, µs; server on one core, generator on the other; %d rounds of %v\n", r.Plan.Rounds, r.Plan.OpenTime)
		row("server", "offered/s", "achieved/s", "p50", "p99", "p99.9", "generator lag p99")
		for _, x := range r.Open {
			if x.Rounds == 0 {
				row(x.Server, fmt.Sprintf("%.0f", x.Rate), "failed", "-", "-", "-", "-")
				continue
			}
			row(x.Server, fmt.Sprintf("%.0f", x.Rate), x.Achieved.format("%.0f"), x.P50.format("%.0f"), x.P99.format("%.0f"),
				x.P999.format("%.0f"), x.LagP99.format("%.0f"))
		}
		tw.Flush()
		for _, x := range r.Open {
			if x.Note != "" {
				fmt.Fprintf(w, "   %s at %.0f/s: %s\n", x.Server, x.Rate, x.Note)
			}
		}
	}

	if len(r.Goals) > 0 {
		fmt.Fprintf(w, "\nGoals (reported, not asserted)\n")
		for _, g := range r.Goals {
			fmt.Fprintf(w, "   %-17s %-14s %-22s %s\n", g.Met, g.Server, g.Value, g.Goal)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\nNotes\n")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "   %s\n", n)
		}
	}
}

func topCalls(s SyscallResult, n int) string {
	var parts []string
	for _, c := range s.Calls[:min(n, len(s.Calls))] {
		parts = append(parts, fmt.Sprintf("%s %.2f", c.Name, c.PerMessage.Median))
	}
	return strings.Join(parts, ", ")
}

func idleCell(r *Results, server string, n int) string {
	for _, x := range r.Idle {
		if x.Server == server && x.Idle == n {
			if x.Limit != "" {
				return fmt.Sprintf("limit %d", x.Held)
			}
			s := x.P50.format("%.1f")
			if x.Bimodal != "" {
				s += " (2 modes)"
			}
			return s
		}
	}
	return "-"
}

// writeResults writes results.json and one CSV per experiment.
func writeResults(dir string, r *Results) ([]string, error) {
	var files []string
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	name := filepath.Join(dir, "results.json")
	if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	files = append(files, name)

	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	sp := func(s spread) []string { return []string{f(s.Median), f(s.Min), f(s.Max)} }
	cols := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, n, n+"_min", n+"_max")
		}
		return out
	}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tables := map[string][][]string{
		"idle.csv":       {cat([]string{"server", "kind", "idle_clients"}, cols("p50_us", "p99_us"), []string{"bimodal", "round_trips", "limit"})},
		"throughput.csv": {cat([]string{"server", "kind", "cores", "clients", "message_bytes", "rounds"}, cols("requests_per_s", "server_cpu_us_per_echo", "server_cpu_pct", "generator_cpu_pct", "machine_idle_pct", "other_work_pct"), []string{"p50_us", "p99_us", "limit", "note"})},
		"cpu_ratios.csv": {cat([]string{"stage", "peer", "cores", "clients", "message_bytes", "rounds"}, cols("ratio"))},
		"memory.csv":     {{"server", "kind", "idle_clients", "rss_before_kib", "rss_after_kib", "bytes_per_client", "note"}},
		"syscalls.csv":   {cat([]string{"server", "kind", "method", "messages", "repetitions", "call"}, cols("per_message"), []string{"note"})},
		"openloop.csv":   {cat([]string{"server", "kind", "clients", "fraction", "offered_requests_per_s", "rounds"}, cols("achieved_requests_per_s", "p50_us", "p99_us", "p99_9_us", "generator_send_lag_p99_us"), []string{"note"})},
	}
	add := func(t string, row []string) { tables[t] = append(tables[t], row) }
	for _, x := range r.Idle {
		add("idle.csv", cat([]string{x.Server, x.Kind, strconv.Itoa(x.Idle)}, sp(x.P50), sp(x.P99), []string{x.Bimodal, strconv.FormatInt(x.RoundTrips, 10), x.Limit}))
	}
	for _, x := range r.Throughput {
		add("throughput.csv", cat([]string{x.Server, x.Kind, x.Cores, strconv.Itoa(x.Clients), strconv.Itoa(x.MsgBytes), strconv.Itoa(x.Rounds)},
			sp(x.RPS), sp(x.CPUPerEcho), sp(x.ServerCPUPct), sp(x.GenCPUPct), sp(x.IdlePct), sp(x.OtherPct), []string{f(x.P50us), f(x.P99us), x.Limit, x.Note}))
	}
	for _, x := range r.CPURatios {
		add("cpu_ratios.csv", cat([]string{x.Stage, x.Peer, x.Cores, strconv.Itoa(x.Clients), strconv.Itoa(x.MsgBytes), strconv.Itoa(x.Ratio.N)}, sp(x.Ratio)))
	}
	for _, x := range r.Memory {
		add("memory.csv", []string{x.Server, x.Kind, strconv.Itoa(x.Conns), strconv.FormatInt(x.RSSBeforeKiB, 10), strconv.FormatInt(x.RSSAfterKiB, 10), f(x.BytesPerConn), x.Note})
	}
	for _, x := range r.Syscalls {
		head := []string{x.Server, x.Kind, x.Method, strconv.FormatInt(x.Messages, 10), strconv.Itoa(x.Reps)}
		add("syscalls.csv", cat(head, []string{"total"}, sp(x.PerMessage), []string{x.Note}))
		for _, c := range x.Calls {
			add("syscalls.csv", cat(head, []string{c.Name}, sp(c.PerMessage), []string{""}))
		}
	}
	for _, x := range r.Open {
		add("openloop.csv", cat([]string{x.Server, x.Kind, strconv.Itoa(x.Clients), f(x.Fraction), f(x.Rate), strconv.Itoa(x.Rounds)},
			sp(x.Achieved), sp(x.P50), sp(x.P99), sp(x.P999), sp(x.LagP99), []string{x.Note}))
	}
	for _, n := range []string{"idle.csv", "throughput.csv", "cpu_ratios.csv", "memory.csv", "syscalls.csv", "openloop.csv"} {
		name := filepath.Join(dir, n)
		if err := writeCSV(name, tables[n]); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	return files, nil
}

func writeCSV(name string, rows [][]string) error {
	fh, err := os.Create(name)
	if err != nil {
		return err
	}
	w := csv.NewWriter(fh)
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
