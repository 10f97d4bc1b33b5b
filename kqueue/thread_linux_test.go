package kqueue_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// The name is the thread's comm, which ps -L and top -H show, cut at 15
// bytes; and only that thread has it, not the one that asked for it to be
// started.
func TestNameThreadShowsInProc(t *testing.T) {
	named, release := make(chan int), make(chan struct{})
	defer close(release)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := kqueue.NameThread("loop-1-of-a-long-name"); err != nil {
			t.Error(err)
		}
		named <- unix.Gettid()
		<-release // the thread lives until the test has looked at it
	}()
	tid := <-named
	comm := func(tid int) string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", tid))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if got := comm(tid); got != "loop-1-of-a-lon" {
		t.Errorf("the thread is named %q, want the first 15 bytes, %q", got, "loop-1-of-a-lon")
	}
	if got := comm(unix.Gettid()); strings.HasPrefix(got, "loop-1") {
		t.Errorf("the test's own thread was named too: %q", got)
	}
}

// Locked in init, the main goroutine runs TestMain on the main thread,
// whose name on Linux is the process's: NameThread must leave it alone.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	before, _ := os.ReadFile("/proc/self/comm")
	err := kqueue.NameThread("loop-0")
	after, _ := os.ReadFile("/proc/self/comm")
	if err == nil || string(after) != string(before) {
		fmt.Fprintf(os.Stderr, "NameThread on the main thread: error %v, process name %q before and %q after; want an error and no change\n", err, before, after)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
