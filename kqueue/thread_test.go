//go:build darwin || dragonfly || freebsd || linux

package kqueue_test

import (
	"runtime"
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
)

// A goroutine locked to its thread keeps its ThreadID; two such goroutines,
// alive at once, have different ones.
func TestThreadID(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mine := kqueue.ThreadID()
	if mine <= 0 {
		t.Fatalf("ThreadID() = %d, want a positive id", mine)
	}
	theirs := make(chan [2]int)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		id := kqueue.ThreadID()
		runtime.Gosched()
		theirs <- [2]int{id, kqueue.ThreadID()}
		<-release // stay alive, and locked, until the comparison is made
	}()
	other := <-theirs
	defer close(release)
	if other[0] != other[1] {
		t.Errorf("a locked goroutine's ThreadID changed: %d, then %d", other[0], other[1])
	}
	if other[0] == mine {
		t.Errorf("two goroutines locked to threads of their own share ThreadID %d", mine)
	}
	runtime.Gosched()
	if again := kqueue.ThreadID(); again != mine {
		t.Errorf("ThreadID() = %d, then %d, on a locked goroutine", mine, again)
	}
}

// What stage 10 pays per Send to learn whether it runs on the client's loop.
func BenchmarkThreadID(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for b.Loop() {
		kqueue.ThreadID()
	}
}
