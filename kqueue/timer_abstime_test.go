//go:build freebsd || linux

// NOTE_ABSTIME is FreeBSD's name (macOS has NOTE_ABSOLUTE instead).

package kqueue_test

import (
	"testing"
	"time"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// NOTE_ABSTIME: data is a deadline in the unit, since the epoch
// (filt_timervalidate() in kern_event.c). One already past fires at once;
// one an hour away does not.
func TestTimerAbsolute(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	now := time.Now().Unix()
	if err := changeFflags(kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD, kqueue.NOTE_ABSTIME|kqueue.NOTE_SECONDS, now+3600, 1); err != nil {
		t.Fatal(err)
	}
	if err := changeFflags(kq, 2, kqueue.EVFILT_TIMER, kqueue.EV_ADD, kqueue.NOTE_ABSTIME|kqueue.NOTE_SECONDS, now-1, 2); err != nil {
		t.Fatal(err)
	}
	ev := waitOne(t, kq)
	expect(t, ev, 2, kqueue.EVFILT_TIMER, 0, 2)
	if ev.Data != 1 {
		t.Fatalf("data = %d, want 1", ev.Data)
	}
	noEvent(t, kq)
}

// A timer added again with other flags is restarted with them (FreeBSD's
// filt_timertouch()): a relative one becomes absolute, and back.
func TestTimerAddedAgainAsAbsolute(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 3600e3, 1) // an hour, relative
	if err := changeFflags(kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD, kqueue.NOTE_ABSTIME|kqueue.NOTE_SECONDS, time.Now().Unix()-1, 2); err != nil {
		t.Fatal(err)
	}
	expect(t, waitOne(t, kq), 1, kqueue.EVFILT_TIMER, 0, 2) // past already
	noEvent(t, kq)
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 5, 3) // relative again, 5ms
	for range 2 {
		expect(t, waitOne(t, kq), 1, kqueue.EVFILT_TIMER, 0, 3)
	}
}

// The same, from a 1ms periodic timer to one an hour away: nothing of the
// fast timer is left to wake the loop. Not parallel: the CPU time is the
// whole process's. The timer is the first descriptor the queue opens after
// descriptor 0 has been freed, as in a program that closed its standard
// input.
func TestTimerAddedAgainLeavesNoBusyWait(t *testing.T) {
	zero := descriptorZero(t)
	kq := newQueue(t)
	zero.free()
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 1, 1)
	expect(t, waitOne(t, kq), 1, kqueue.EVFILT_TIMER, 0, 1)
	if err := changeFflags(kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD, kqueue.NOTE_ABSTIME|kqueue.NOTE_SECONDS, time.Now().Unix()+3600, 2); err != nil {
		t.Fatal(err)
	}
	wait := unix.NsecToTimespec(int64(300 * time.Millisecond))
	before := cpuTime(t)
	n, err := kevent(kq, make([]kqueue.Kevent_t, 4), &wait)
	used := cpuTime(t) - before
	if n != 0 || err != nil {
		t.Fatalf("Kevent = %d, %v; want nothing", n, err)
	}
	if used > 100*time.Millisecond {
		t.Fatalf("a 300ms wait with nothing to report used %v of CPU", used)
	}
}
