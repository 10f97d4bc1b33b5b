package kqueue_test

// EVFILT_TIMER: "Establishes an arbitrary timer identified by ident. When
// adding a timer, data specifies the timeout period", in milliseconds by
// default. "On return, data contains the number of times the timeout has
// expired since the last call to kevent()."

import (
	"testing"
	"time"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// A periodic timer fires again and again, with its own ident and udata.
func TestTimerPeriodic(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 42, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 5, 77)
	for range 3 {
		ev := waitOne(t, kq)
		expect(t, ev, 42, kqueue.EVFILT_TIMER, 0, 77)
		if ev.Data < 1 {
			t.Fatalf("data = %d, want at least one expiration", ev.Data)
		}
	}
	change(t, kq, 42, kqueue.EVFILT_TIMER, kqueue.EV_DELETE, 0, 0)
	noEvent(t, kq)
}

// EV_ONESHOT: the timer fires once and is then gone, so deleting it again
// fails with ENOENT.
func TestTimerOneshot(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, 1, 5)
	ev := waitOne(t, kq)
	expect(t, ev, 1, kqueue.EVFILT_TIMER, kqueue.EV_ONESHOT, 5)
	if ev.Data != 1 {
		t.Fatalf("data = %d, want 1", ev.Data)
	}
	changeFails(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_DELETE, unix.ENOENT) // deleting a fired one-shot timer
}

// Data counts every expiration since the last report: a 1ms timer that is
// not collected for a while has expired many times by then.
func TestTimerCountsExpirations(t *testing.T) {
	t.Parallel()
	fast, clock := newQueue(t), newQueue(t)
	change(t, fast, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 1, 0)
	// A slower timer in another queue measures the time: when it
	// fires, the fast one has expired about 30 times.
	change(t, clock, 2, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, 30, 0)
	expect(t, waitOne(t, clock), 2, kqueue.EVFILT_TIMER, 0, 0)
	ev := waitOne(t, fast)
	expect(t, ev, 1, kqueue.EVFILT_TIMER, 0, 0)
	if ev.Data < 2 {
		t.Fatalf("data = %d, want every expiration since the timer was added", ev.Data)
	}
}

// Re-adding a timer replaces its udata.
func TestTimerModify(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 3, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 1, 1)
	change(t, kq, 3, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 1, 2)
	expect(t, waitOne(t, kq), 3, kqueue.EVFILT_TIMER, 0, 2)
}

// A timer added again while its expiration waits in the queue: the old
// expiration is thrown away and the timer starts over (filt_timertouch(),
// EVENT_REGISTER, in kern_event.c), so the next call finds nothing at first
// and then reports the new expiration when it comes. To queue the timer's
// event, it expires while disabled (a second timer, 20 times slower, says
// when it has) and is enabled only after a socket's two filters have fired,
// so that it comes third, behind them, in a list with room for two.
func TestTimerAddedAgainWhileQueued(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	send(t, a, "x")
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT|kqueue.EV_DISABLE, 1, 1)
	change(t, kq, 2, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, 20, 2)
	expect(t, waitOne(t, kq), 2, kqueue.EVFILT_TIMER, 0, 2)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 3)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 4)
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ENABLE, 0, 1)
	if evs := waitAll(t, kq, 2); len(evs) != 2 || evs[0].Ident != uint64(b) || evs[1].Ident != uint64(b) {
		t.Fatalf("got %s, want the socket's two filters first", describeAll(evs))
	}
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, 30, 5)
	done := make(chan []kqueue.Kevent_t, 1)
	go func() {
		evs := make([]kqueue.Kevent_t, 2)
		n, _ := kevent(kq, evs, &mustCome)
		done <- evs[:max(n, 0)]
	}()
	select {
	case evs := <-done:
		if len(evs) != 1 {
			t.Fatalf("got %s, want the timer's new expiration", describeAll(evs))
		}
		expect(t, evs[0], 1, kqueue.EVFILT_TIMER, kqueue.EV_ONESHOT, 5)
		if evs[0].Data != 1 {
			t.Fatalf("data = %d, want the one new expiration", evs[0].Data)
		}
	case <-time.After(mustComeWithin() + 5*time.Second):
		t.Fatalf("Kevent did not return within %v of its timeout", 5*time.Second)
	}
}

// A disabled timer reports nothing; deleting one that does not exist is
// ENOENT.
func TestTimerDisableDelete(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 4, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_DISABLE, 1, 0)
	// A second timer, 20 times slower, fires while the first would have.
	change(t, kq, 5, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, 20, 0)
	expect(t, waitOne(t, kq), 5, kqueue.EVFILT_TIMER, 0, 0)
	noEvent(t, kq)
	change(t, kq, 4, kqueue.EVFILT_TIMER, kqueue.EV_DELETE, 0, 0)
	changeFails(t, kq, 4, kqueue.EVFILT_TIMER, kqueue.EV_DELETE, unix.ENOENT) // deleting a deleted timer
}

// A timer of 0 (filt_timervalidate() in kern_event.c): a one-shot one fires
// at once; a periodic one runs every unit, since FreeBSD makes its 0 a 1.
func TestTimerZero(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 1)
	ev := waitOne(t, kq)
	expect(t, ev, 1, kqueue.EVFILT_TIMER, 0, 1)
	if ev.Data != 1 {
		t.Fatalf("one-shot 0: data = %d, want 1", ev.Data)
	}
	change(t, kq, 2, kqueue.EVFILT_TIMER, kqueue.EV_ADD, 0, 2)
	for range 3 {
		expect(t, waitOne(t, kq), 2, kqueue.EVFILT_TIMER, 0, 2)
	}
}
