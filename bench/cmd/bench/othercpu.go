package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter tells how much CPU time other work on the machine took while the
// benchmark ran: the whole machine's process time from /proc/stat, less what
// this process and its children (the servers, strace) used. On a shared
// machine this says how far to trust a run; it is empty where /proc/stat
// does not exist.
type cpuMeter struct {
	busy  float64 // machine busy seconds at the start
	own   float64 // our own CPU seconds at the start
	start time.Time
	ok    bool
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

func machineBusy() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "cpu" {
		return 0, false
	}
	// The columns are user nice system idle iowait irq softirq steal.
	// Only the first three are time charged to processes, which is what
	// getrusage counts for our side; interrupt time (loopback traffic is
	// processed there, ours included) and the hypervisor's steal are left
	// out of both.
	var busy float64
	for _, v := range f[1:4] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		busy += n
	}
	return busy / clockTicks, true
}

func ownCPU() float64 {
	var total float64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	return total
}

func startCPUMeter() cpuMeter {
	busy, ok := machineBusy()
	return cpuMeter{busy: busy, own: ownCPU(), start: time.Now(), ok: ok}
}

// others describes the other work since start, e.g. "3.1 CPU-seconds of
// 480 (0.6%)".
func (m cpuMeter) others(cpus int) string {
	busy, ok := machineBusy()
	if !m.ok || !ok {
		return ""
	}
	other := max((busy-m.busy)-(ownCPU()-m.own), 0)
	avail := time.Since(m.start).Seconds() * float64(cpus)
	return fmt.Sprintf("%.1f CPU-seconds of %.0f (%.1f%%)", other, avail, 100*other/avail)
}
