package kqueue_test

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// asleep waits until count threads of the process are blocked in a wait on
// kq, as /proc/self/task/*/syscall shows them: the system call's number
// and its first argument, the epoll descriptor. (The emulation waits in
// epoll_pwait2 when the call has a timeout.) A test that must act while
// another goroutine sleeps in Kevent calls it instead of hoping the
// goroutine got there first.
func asleep(t testing.TB, kq, count int) {
	t.Helper()
	want := [][]byte{
		[]byte(strconv.Itoa(unix.SYS_EPOLL_PWAIT2) + " 0x" + strconv.FormatInt(int64(kq), 16) + " "),
		[]byte(strconv.Itoa(unix.SYS_EPOLL_PWAIT) + " 0x" + strconv.FormatInt(int64(kq), 16) + " "),
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Microsecond) {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, task := range tasks {
			line, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
			for _, w := range want {
				if bytes.HasPrefix(line, w) {
					n++
				}
			}
		}
		if n >= count {
			return
		}
	}
	t.Fatalf("no %d threads asleep in a wait on kq %d within 10s", count, kq)
}
