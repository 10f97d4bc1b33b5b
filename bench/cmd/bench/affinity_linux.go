package main

import (
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// canPin says whether this process can choose the CPUs it runs on.
var canPin = true

// pinAway moves this process off CPU cpu, so a server pinned there has it to
// itself; pinOnly moves it onto CPU cpu alone. Both return a function that
// puts the old CPU set back, and both leave things as they are on a
// machine with one CPU.
func pinAway(cpu int) (restore func()) {
	return repin(func(set *unix.CPUSet) { set.Clear(cpu) })
}

func pinOnly(cpu int) (restore func()) {
	return repin(func(set *unix.CPUSet) { set.Zero(); set.Set(cpu) })
}

// repin applies change to the CPU set of every thread of this process.
// Threads the Go runtime starts later, and processes we start, inherit the
// set of the thread that creates them, so the current threads are enough.
// GOMAXPROCS follows: more Ps than CPUs would only have threads take turns
// on the same CPU, a few milliseconds each.
func repin(change func(*unix.CPUSet)) (restore func()) {
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil || old.Count() < 2 {
		return func() {}
	}
	set := old
	change(&set)
	if set.Count() == 0 {
		return func() {}
	}
	setAll(&set)
	procs := runtime.GOMAXPROCS(set.Count())
	return func() {
		runtime.GOMAXPROCS(procs)
		setAll(&old)
	}
}

func setAll(set *unix.CPUSet) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			unix.SchedSetaffinity(tid, set) // a thread that just exited is no loss
		}
	}
}
