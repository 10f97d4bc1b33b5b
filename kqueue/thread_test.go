//go:build darwin || dragonfly || freebsd || linux

package kqueue_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// A goroutine locked to its thread can name it; macOS says it cannot.
// (thread_linux_test.go looks at the name.)
func TestNameThread(t *testing.T) {
	named := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		named <- kqueue.NameThread("loop-1")
	}()
	err := <-named
	switch {
	case runtime.GOOS == "darwin" && !errors.Is(err, unix.ENOTSUP):
		t.Fatalf("NameThread on macOS = %v, want ENOTSUP", err)
	case runtime.GOOS != "darwin" && err != nil:
		t.Fatalf("NameThread: %v", err)
	}
}
