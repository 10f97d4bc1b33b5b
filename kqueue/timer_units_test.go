//go:build darwin || freebsd || linux

// The timer's unit flags, which x/sys defines for these systems.

package kqueue_test

import (
	"runtime"
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// NOTE_SECONDS, NOTE_USECONDS and NOTE_NSECONDS scale data
// (timer2sbintime() in kern_event.c; filt_timervalidate() in XNU): a
// 1-second timer fires after a 2000-microsecond one, which would not be so
// if either were taken as milliseconds.
func TestTimerUnits(t *testing.T) {
	t.Parallel()
	for _, unit := range []struct {
		flag uint32
		data int64
	}{{kqueue.NOTE_USECONDS, 2000}, {kqueue.NOTE_NSECONDS, 2000000}} {
		kq := newQueue(t)
		if err := changeFflags(kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, kqueue.NOTE_SECONDS, 1, 1); err != nil {
			t.Fatal(err)
		}
		if err := changeFflags(kq, 2, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, unit.flag, unit.data, 2); err != nil {
			t.Fatal(err)
		}
		ev := waitOne(t, kq)
		expect(t, ev, 2, kqueue.EVFILT_TIMER, 0, 2)
		if ev.Data != 1 {
			t.Fatalf("unit %#x: data = %d, want 1", unit.flag, ev.Data)
		}
		noEvent(t, kq) // the 1-second timer is still running
	}
}

// Two units at once are no unit: EINVAL (timer2sbintime()'s default case;
// XNU's filt_timervalidate() likewise). A bit that is neither a unit nor
// NOTE_ABSTIME is EINVAL on FreeBSD too ("if ((kn->kn_sfflags &
// ~(NOTE_TIMER_PRECMASK | NOTE_ABSTIME)) != 0) return (EINVAL)" in
// filt_timervalidate()); XNU looks only at the bits it knows, so macOS
// accepts it.
func TestTimerInvalidFflags(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	err := changeFflags(kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD, kqueue.NOTE_SECONDS|kqueue.NOTE_USECONDS, 1, 0)
	if !isErrno(err, unix.EINVAL) {
		t.Fatalf("two units: %v, want EINVAL", err)
	}
	err = changeFflags(kq, 2, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 0x40000000, 1000, 0)
	if runtime.GOOS == "darwin" {
		return
	}
	if !isErrno(err, unix.EINVAL) {
		t.Fatalf("unknown fflags bit: %v, want EINVAL", err)
	}
}
