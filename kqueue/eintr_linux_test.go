package kqueue_test

// EINTR is part of kevent(2) everywhere ("A signal was delivered before the
// timeout expired and before any events were placed on the kqueue for
// return"), but aiming a signal at the one thread blocked in kevent needs
// tgkill(2), which is Linux's; the BSDs have thr_kill and pthread_kill
// instead. Hence a Linux-only test.

import (
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// A signal interrupts the wait with EINTR, and the changes passed in the
// same call have been applied.
func TestEINTRKeepsChanges(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	// Catch SIGUSR1 so that it interrupts instead of killing the test.
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, unix.SIGUSR1)
	defer signal.Stop(caught)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	var done atomic.Bool
	go func() {
		// Until the wait below returns: a signal that arrives before
		// the thread is inside epoll_wait interrupts nothing.
		for !done.Load() {
			unix.Tgkill(unix.Getpid(), tid, unix.SIGUSR1)
			runtime.Gosched()
		}
	}()
	var c kqueue.Kevent_t
	kqueue.EV_SET(&c, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0, 9)
	n, err := kqueue.Kevent(kq, []kqueue.Kevent_t{c}, make([]kqueue.Kevent_t, 1), nil)
	done.Store(true)
	if !isErrno(err, unix.EINTR) {
		t.Fatalf("Kevent = %d, %v; want EINTR", n, err)
	}
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 9)
}
