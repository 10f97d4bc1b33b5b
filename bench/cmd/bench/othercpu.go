package main

import (
	"fmt"
	"syscall"
	"time"
)

// cpuMeter tells how much CPU time other work on the machine took while the
// benchmark ran: the machine's busy time from /proc/stat (interrupts,
// softirq and steal included) less what this process and its children (the
// servers, perf) used. On a shared machine this says how far to trust a
// run. Where the kernel accounts interrupt time apart from the task that
// was running (CONFIG_IRQ_TIME_ACCOUNTING), the kernel's loopback work for
// our own traffic lands here too; where it does not (tick accounting), it is
// charged to whichever of our processes the tick hit. It is empty where
// /proc/stat does not exist.
type cpuMeter struct {
	busy  float64 // machine busy seconds at the start
	own   float64 // our own CPU seconds at the start
	start time.Time
	ok    bool
}

// clockTicks is USER_HZ, the unit of /proc/stat and /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

func ownCPU(who int) float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func ownAndChildrenCPU() float64 {
	return ownCPU(syscall.RUSAGE_SELF) + ownCPU(syscall.RUSAGE_CHILDREN)
}

func startCPUMeter() cpuMeter {
	busy, _, ok := machineTimes()
	return cpuMeter{busy: busy, own: ownAndChildrenCPU(), start: time.Now(), ok: ok}
}

// others describes the other work since start, e.g. "3.1 CPU-seconds of
// 480 (0.6%)". A figure below zero is printed as it is, and said to be the
// meters' disagreement: no work takes less than no time.
func (m cpuMeter) others(cpus int) string {
	busy, _, ok := machineTimes()
	if !m.ok || !ok {
		return ""
	}
	other := (busy - m.busy) - (ownAndChildrenCPU() - m.own)
	avail := time.Since(m.start).Seconds() * float64(cpus)
	s := fmt.Sprintf("%.1f CPU-seconds of %.0f (%.1f%%)", other, avail, 100*other/avail)
	if other < 0 {
		s += ", below zero: none that the meters can tell from their disagreement"
	}
	return s
}

// settle waits, for at most two seconds, until the machine has been all but
// idle (under a tenth of one CPU) for a fifth of a second. Closing 10,000
// connections leaves the kernel busy for a while after close(2) has
// returned; a measurement started then would charge that to the next
// server. On a machine others share it may never be idle: it gives up and
// the run goes on (each cell records the machine's idle time, so the
// tables show it). Without /proc/stat it returns at once.
func settle() {
	const window = 200 * time.Millisecond
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		before, _, ok := machineTimes()
		if !ok {
			return
		}
		time.Sleep(window)
		after, _, _ := machineTimes()
		if after-before < 0.1*window.Seconds() {
			return
		}
	}
}
