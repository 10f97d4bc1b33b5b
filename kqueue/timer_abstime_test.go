//go:build freebsd || linux

// NOTE_ABSTIME is FreeBSD's name (macOS has NOTE_ABSOLUTE instead).

package kqueue_test

import (
	"testing"
	"time"

	"github.com/kqueue-workbook/workbook/kqueue"
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
