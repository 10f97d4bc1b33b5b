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
// benchmark ran: the whole machine's process time from /proc/stat (user,
// nice, system: what getrusage counts on our side too; interrupt time,
// where loopback traffic is processed, ours included, is left out of
// both), less what this process and its children (the servers, strace)
// used. On a shared
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

// machineBusy is the machine's process time so far, in CPU-seconds.
func machineBusy() (float64, bool) { return statSeconds(3) }

// machineWork is all busy time so far, interrupts included: the kernel
// tearing down thousands of closed connections shows up there.
func machineWork() (float64, bool) { return statSeconds(7) }

// statSeconds adds the first n time columns of /proc/stat's cpu line (user
// nice system idle iowait irq softirq), skipping idle and iowait.
func statSeconds(n int) (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < n+1 || f[0] != "cpu" {
		return 0, false
	}
	var busy float64
	for i, v := range f[1 : n+1] {
		if i == 3 || i == 4 {
			continue // idle, iowait
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		busy += x
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

// settle waits, for at most five seconds, until the machine has been all but
// idle (under a tenth of one CPU) for a fifth of a second. Closing 10,000 connections leaves the kernel
// busy for a while after close(2) has returned; a measurement started then
// would charge that to the next server. Without /proc/stat it returns at once.
func settle() {
	const window = 200 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		before, ok := machineWork()
		if !ok {
			return
		}
		time.Sleep(window)
		after, _ := machineWork()
		if after-before < 0.1*window.Seconds() {
			return
		}
	}
}
