package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Results is everything one run measured; results.json is this, verbatim.
type Results struct {
	Date       string             `json:"date"`
	Command    string             `json:"command"`
	Commit     string             `json:"workbook_commit"`
	Mode       string             `json:"mode"`
	Elapsed    string             `json:"elapsed"`
	Machine    Machine            `json:"machine"`
	OneCore    string             `json:"one_core"` // how "one core" was enforced
	IdleCPU    string             `json:"idle_cpu"` // where the idle-load experiment ran
	Plan       plan               `json:"plan"`
	Servers    []*target          `json:"servers"`
	Idle       []IdleResult       `json:"idle"`
	Memory     []MemoryResult     `json:"memory"`
	Throughput []ThroughputResult `json:"throughput"`
	Syscalls   []SyscallResult    `json:"syscalls"`
	Goals      []Goal             `json:"goals"`
	Notes      []string           `json:"notes"`
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
	Server     string  `json:"server"`
	Kind       string  `json:"kind"`
	Idle       int     `json:"idle_clients"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	RoundTrips int64   `json:"round_trips"`
	Limit      string  `json:"limit,omitempty"` // why N idle clients could not be measured
	Held       int     `json:"held,omitempty"`  // and how many the server did hold
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
	Server   string  `json:"server"`
	Kind     string  `json:"kind"`
	Cores    string  `json:"cores"` // "default" or "one core"
	Clients  int     `json:"clients"`
	MsgBytes int     `json:"message_bytes"`
	Rounds   int     `json:"rounds"`         // rounds measured
	RPS      float64 `json:"requests_per_s"` // median of the rounds
	RPSMin   float64 `json:"requests_per_s_min"`
	RPSMax   float64 `json:"requests_per_s_max"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	Errors   int64   `json:"failed_clients"`
	Note     string  `json:"note,omitempty"`
}

type SyscallResult struct {
	Server     string         `json:"server"`
	Kind       string         `json:"kind"`
	Messages   int64          `json:"messages"`
	Calls      int64          `json:"syscalls"`
	PerMessage float64        `json:"per_message"`
	Top        []SyscallCount `json:"top,omitempty"`
	TopText    string         `json:"-"`
	Note       string         `json:"note,omitempty"`
}

// A Goal is one of issue 7's targets, measured and reported, never asserted.
type Goal struct {
	Goal   string `json:"goal"`
	Server string `json:"server"`
	Value  string `json:"value"`
	Met    bool   `json:"met"`
}

// idleP50 finds the p50 of a server at n idle clients (0 if not measured).
func (r *Results) idleP50(server string, n int) float64 {
	for _, x := range r.Idle {
		if x.Server == server && x.Idle == n && x.Limit == "" {
			return x.P50us
		}
	}
	return 0
}

func (r *Results) rps(server, cores string, clients, size int) float64 {
	for _, x := range r.Throughput {
		if x.Server == server && x.Cores == cores && x.Clients == clients && x.MsgBytes == size && x.Note == "" {
			return x.RPS
		}
	}
	return 0
}

// evaluateGoals compares the run with the goals. Quick mode has
// neither 10,000 idle clients nor 300 clients; it compares at its largest
// steps and says so.
func evaluateGoals(r *Results) {
	maxN := r.Plan.IdleConns[len(r.Plan.IdleConns)-1]
	load := 300
	if !slices.Contains(r.Plan.Clients, load) {
		load = r.Plan.Clients[len(r.Plan.Clients)-1]
	}
	for _, t := range r.Servers {
		if t.Skip != "" {
			continue
		}
		if t.Kind == "kqueue" {
			if p0, pN := r.idleP50(t.Name, 0), r.idleP50(t.Name, maxN); p0 > 0 && pN > 0 {
				ratio := pN / p0
				r.Goals = append(r.Goals, Goal{Goal: fmt.Sprintf("flat under idle load: p50 at %d idle <= 1.25x p50 at 0", maxN),
					Server: t.Name, Value: fmt.Sprintf("%.2fx", ratio), Met: ratio <= 1.25})
			}
			for _, m := range r.Memory {
				if m.Server == t.Name && m.Note == "" {
					r.Goals = append(r.Goals, Goal{Goal: fmt.Sprintf("<= 1 KiB per idle client (at %d)", m.Conns),
						Server: t.Name, Value: fmt.Sprintf("%.0f B", m.BytesPerConn), Met: m.BytesPerConn <= 1024})
				}
			}
		}
	}
	for _, cores := range []string{"default", "one core"} {
		own := r.rps("07-callbacks", cores, load, 64)
		if own == 0 {
			continue
		}
		for _, peer := range []string{"net", "gnet"} {
			if other := r.rps(peer, cores, load, 64); other > 0 {
				r.Goals = append(r.Goals, Goal{
					Goal:   fmt.Sprintf("07-callbacks reaches %s at %d clients, 64 B, %s", peer, load, cores),
					Server: "07-callbacks", Value: fmt.Sprintf("%.2fx", own/other), Met: own >= other})
			}
		}
	}
}

// printTable writes the human-readable report.
func printTable(w io.Writer, r *Results) {
	fmt.Fprintf(w, "\nbench -mode %s on %s, %d cores, %s, %s; workbook %s; %s (took %s)\n",
		r.Mode, r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel, r.Machine.Go, r.Commit, r.Date, r.Elapsed)
	if r.Machine.LoadAtStart != "" {
		fmt.Fprintf(w, "load average before the run: %s; CPU used by other work during the run: about %s\n",
			r.Machine.LoadAtStart, r.Machine.OtherWork)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }

	fmt.Fprintf(w, "\n1. Idle load: round trip of one active client (64 B), p50 / p99 in µs, with N idle clients (%s)\n", r.IdleCPU)
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
		// The ratio compares the largest N the server held with none.
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
	}

	if len(r.Throughput) > 0 {
		fmt.Fprintf(w, "\n2. Throughput: closed-loop echo, requests/s (p99 µs); one core = %s\n", r.OneCore)
		head = []string{"server", "cores", "size"}
		for _, c := range r.Plan.Clients {
			head = append(head, fmt.Sprintf("%d clients", c))
		}
		row(head...)
		for _, t := range r.Servers {
			for _, cores := range []string{"default", "one core"} {
				for _, size := range r.Plan.Sizes {
					cells := []string{t.Name, cores, fmt.Sprintf("%d B", size)}
					any := false
					for _, c := range r.Plan.Clients {
						cell := "-"
						for _, x := range r.Throughput {
							if x.Server == t.Name && x.Cores == cores && x.MsgBytes == size && x.Clients == c {
								any = true
								cell = fmt.Sprintf("%.0f (%.0f)", x.RPS, x.P99us)
								if x.Note != "" {
									cell = "failed"
									if x.RPS > 0 {
										cell = fmt.Sprintf("%.0f (%.0f)*", x.RPS, x.P99us)
									}
								}
							}
						}
						cells = append(cells, cell)
					}
					if any {
						row(cells...)
					}
				}
			}
		}
		tw.Flush()
		for _, x := range r.Throughput {
			if x.Note != "" {
				fmt.Fprintf(w, "   %s, %s, %d clients, %d B: %s\n", x.Server, x.Cores, x.Clients, x.MsgBytes, x.Note)
			}
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
		fmt.Fprintf(w, "\n4. System calls per echoed 64 B message (strace -c -f, all threads)\n")
		row("server", "messages", "syscalls", "per message", "top calls per message")
		for _, s := range r.Syscalls {
			if s.Note != "" {
				row(s.Server, "-", "-", "-", s.Note)
				continue
			}
			row(s.Server, strconv.FormatInt(s.Messages, 10), strconv.FormatInt(s.Calls, 10), fmt.Sprintf("%.2f", s.PerMessage), s.TopText)
		}
		tw.Flush()

	}

	if len(r.Goals) > 0 {
		fmt.Fprintf(w, "\nGoals (reported, not asserted)\n")
		for _, g := range r.Goals {
			mark := "not met"
			if g.Met {
				mark = "met"
			}
			fmt.Fprintf(w, "   %-8s %-14s %-9s %s\n", mark, g.Server, g.Value, g.Goal)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\nNotes\n")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "   %s\n", n)
		}
	}
}

func idleCell(r *Results, server string, n int) string {
	for _, x := range r.Idle {
		if x.Server == server && x.Idle == n {
			if x.Limit != "" {
				return fmt.Sprintf("limit %d", x.Held)
			}
			return fmt.Sprintf("%.1f / %.1f", x.P50us, x.P99us)
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
	tables := map[string][][]string{
		"idle.csv": {{"server", "kind", "idle_clients", "p50_us", "p99_us", "round_trips", "limit"}},
		"throughput.csv": {{"server", "kind", "cores", "clients", "message_bytes", "rounds", "requests_per_s", "requests_per_s_min",
			"requests_per_s_max", "p50_us", "p99_us", "failed_clients", "note"}},
		"memory.csv":   {{"server", "kind", "idle_clients", "rss_before_kib", "rss_after_kib", "bytes_per_client", "note"}},
		"syscalls.csv": {{"server", "kind", "messages", "syscalls", "per_message", "top", "note"}},
	}
	for _, x := range r.Idle {
		tables["idle.csv"] = append(tables["idle.csv"], []string{x.Server, x.Kind, strconv.Itoa(x.Idle), f(x.P50us), f(x.P99us),
			strconv.FormatInt(x.RoundTrips, 10), x.Limit})
	}
	for _, x := range r.Throughput {
		tables["throughput.csv"] = append(tables["throughput.csv"], []string{x.Server, x.Kind, x.Cores, strconv.Itoa(x.Clients),
			strconv.Itoa(x.MsgBytes), strconv.Itoa(x.Rounds), f(x.RPS), f(x.RPSMin), f(x.RPSMax), f(x.P50us), f(x.P99us), strconv.FormatInt(x.Errors, 10), x.Note})
	}
	for _, x := range r.Memory {
		tables["memory.csv"] = append(tables["memory.csv"], []string{x.Server, x.Kind, strconv.Itoa(x.Conns),
			strconv.FormatInt(x.RSSBeforeKiB, 10), strconv.FormatInt(x.RSSAfterKiB, 10), f(x.BytesPerConn), x.Note})
	}
	for _, x := range r.Syscalls {
		tables["syscalls.csv"] = append(tables["syscalls.csv"], []string{x.Server, x.Kind, strconv.FormatInt(x.Messages, 10),
			strconv.FormatInt(x.Calls, 10), f(x.PerMessage), x.TopText, x.Note})
	}
	for _, n := range []string{"idle.csv", "throughput.csv", "memory.csv", "syscalls.csv"} {
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
