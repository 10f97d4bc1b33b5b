package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A cpuSample is one reading of the three CPU meters a throughput cell
// needs: the server's own CPU time, the load generator's (this process),
// and the whole machine's, from /proc/stat. Two samples, at the start and
// the end of a measuring window, give a cellCPU.
type cpuSample struct {
	at      time.Time
	server  float64 // CPU-seconds of the server, user + system, all threads
	gen     float64 // CPU-seconds of this process, user + system
	busy    float64 // machine: user+nice+system+irq+softirq+steal, CPU-seconds
	idle    float64 // machine: idle+iowait, CPU-seconds
	okSrv   bool
	okStat  bool
	srvNote string
}

// sampleCPU reads all three meters for server process pid.
func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now(), gen: ownCPU(syscall.RUSAGE_SELF)}
	var err error
	if s.server, err = processCPU(pid); err == nil {
		s.okSrv = true
	} else {
		s.srvNote = err.Error()
	}
	s.busy, s.idle, s.okStat = machineTimes()
	return s
}

// cellCPU is what the meters say about one window.
type cellCPU struct {
	Seconds   float64 `json:"seconds"`
	ServerCPU float64 `json:"server_cpu_s"`    // CPU-seconds the server used
	GenCPU    float64 `json:"generator_cpu_s"` // CPU-seconds the load generator used
	IdleCPU   float64 `json:"machine_idle_s"`  // CPU-seconds the machine was idle
	OtherCPU  float64 `json:"other_work_s"`    // busy CPU-seconds that were neither (can come out below 0: the meters disagree)
	HasServer bool    `json:"-"`
	HasStat   bool    `json:"-"`
}

func cpuBetween(a, b cpuSample) cellCPU {
	c := cellCPU{Seconds: b.at.Sub(a.at).Seconds(), GenCPU: b.gen - a.gen, HasServer: a.okSrv && b.okSrv, HasStat: a.okStat && b.okStat}
	if c.HasServer {
		c.ServerCPU = b.server - a.server
	}
	if c.HasStat {
		c.IdleCPU = b.idle - a.idle
		c.OtherCPU = (b.busy - a.busy) - c.GenCPU - c.ServerCPU
	}
	return c
}

// processCPU is a process's user + system time in CPU-seconds, all its
// threads, the ones that have exited included: fields 14 and 15 of
// /proc/PID/stat on Linux (in clock ticks), ps(1) elsewhere (getrusage
// only tells a parent about children that have exited).
func processCPU(pid int) (float64, error) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The command name, field 2, is in parentheses and may hold
		// spaces: count fields after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
		}
		f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: short", pid)
		}
		ut, err1 := strconv.ParseFloat(f[11], 64)
		st, err2 := strconv.ParseFloat(f[12], 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
		}
		return (ut + st) / clockTicks, nil
	}
	out, err := exec.Command("ps", "-o", "time=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return 0, fmt.Errorf("ps: %v", err)
	}
	return parsePSTime(strings.TrimSpace(string(out)))
}

// parsePSTime reads ps(1)'s cumulative CPU time: [[DD-]HH:]MM:SS[.cc].
func parsePSTime(s string) (float64, error) {
	days := 0.0
	if d, rest, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil {
			return 0, fmt.Errorf("ps time %q", s)
		}
		days, s = n, rest
	}
	total := 0.0
	for _, part := range strings.Split(s, ":") {
		v, err := strconv.ParseFloat(part, 64)
		if err != nil {
			return 0, fmt.Errorf("ps time %q", s)
		}
		total = total*60 + v
	}
	return days*86400 + total, nil
}

// machineTimes reads the machine's busy and idle CPU-seconds from the cpu
// line of /proc/stat: user nice system idle iowait irq softirq steal. Busy
// counts interrupt and softirq time (where the kernel does much of the
// loopback work) and steal (time the hypervisor gave to someone else).
func machineTimes() (busy, idle float64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:9] {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, 0, false
		}
		if i == 3 || i == 4 {
			idle += x
		} else {
			busy += x
		}
	}
	return busy / clockTicks, idle / clockTicks, true
}
