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
// same call have been applied. The call returns -1, as a failed kevent(2)
// does; with or without a timeout, since the emulation waits through
// epoll_pwait2 with one and epoll_wait without.
func TestEINTRKeepsChanges(t *testing.T) {
	t.Parallel()
	// Catch SIGUSR1 so that it interrupts instead of killing the test.
	// The handler stays for the rest of the run: a late signal must
	// never find the default action (exit) in place.
	signal.Notify(make(chan os.Signal, 1), unix.SIGUSR1)
	for _, timeout := range []*unix.Timespec{nil, &mustCome} {
		kq := newQueue(t)
		a, b := socketPair(t)
		n, err := interrupted(kq, b, timeout)
		if n != -1 || !isErrno(err, unix.EINTR) {
			t.Fatalf("timeout %v: Kevent = %d, %v; want -1, EINTR", timeout, n, err)
		}
		send(t, a, "x")
		expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 9)
	}
}

// interrupted adds a read filter for fd in a call that waits until signals
// interrupt it.
func interrupted(kq, fd int, timeout *unix.Timespec) (int, error) {
	// The signals go to this goroutine's own thread, and it keeps the
	// thread until every signal sent has been delivered.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	var done atomic.Bool
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		// Until the wait below returns: a signal that arrives before
		// the thread is inside epoll_wait interrupts nothing.
		for !done.Load() {
			unix.Tgkill(unix.Getpid(), tid, unix.SIGUSR1)
			runtime.Gosched()
		}
	}()
	var c kqueue.Kevent_t
	kqueue.EV_SET(&c, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0, 9)
	n, err := kqueue.Kevent(kq, []kqueue.Kevent_t{c}, make([]kqueue.Kevent_t, 1), timeout)
	done.Store(true)
	<-stopped
	unix.Getpid() // the last signal, if still pending, is delivered on the way back
	return n, err
}
