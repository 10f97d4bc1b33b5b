//go:build darwin || dragonfly || freebsd || linux

// EVFILT_USER, where the system has it (OpenBSD and NetBSD do not).

package kqueue_test

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// trigger changes a user event with fflags (NOTE_TRIGGER and the rest).
func trigger(t testing.TB, kq, ident int, fflags uint32, data int64, udata uint64) {
	t.Helper()
	if err := changeFflags(kq, ident, kqueue.EVFILT_USER, 0, fflags, data, udata); err != nil {
		t.Fatalf("EVFILT_USER change %#x: %v", fflags, err)
	}
}

// A user event reports nothing until NOTE_TRIGGER; with EV_CLEAR it is
// reset once reported (filt_usertouch(), EVENT_PROCESS, in kern_event.c;
// filt_userprocess() in XNU).
func TestUserTrigger(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 1, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 9)
	noEvent(t, kq)
	trigger(t, kq, 1, kqueue.NOTE_TRIGGER, 0, 9)
	expect(t, waitOne(t, kq), 1, kqueue.EVFILT_USER, kqueue.EV_CLEAR, 9)
	noEvent(t, kq)
	change(t, kq, 1, kqueue.EVFILT_USER, kqueue.EV_DELETE, 0, 0)
	changeFails(t, kq, 1, kqueue.EVFILT_USER, kqueue.EV_DELETE, unix.ENOENT) // deleting a deleted user event
}

// Without EV_CLEAR a triggered user event stays triggered: kqueue_scan()
// queues it again after each report, since filt_user() still says so.
func TestUserLevel(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 2, kqueue.EVFILT_USER, kqueue.EV_ADD, 0, 1)
	trigger(t, kq, 2, kqueue.NOTE_TRIGGER, 0, 1)
	for range 2 {
		expect(t, waitOne(t, kq), 2, kqueue.EVFILT_USER, 0, 1)
	}
}

// The control bits combine a change's fflags with the knote's (NOTE_FFAND,
// NOTE_FFOR, NOTE_FFCOPY; NOTE_FFNOP leaves them), within NOTE_FFLAGSMASK,
// and data is the last change's; both come back in the event.
func TestUserFflags(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 3, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 0)
	trigger(t, kq, 3, kqueue.NOTE_FFCOPY|0x11, 0, 0)
	trigger(t, kq, 3, kqueue.NOTE_FFOR|0x4, 0, 0)
	trigger(t, kq, 3, kqueue.NOTE_FFAND|0x5, 0, 0)
	noEvent(t, kq)
	trigger(t, kq, 3, kqueue.NOTE_FFNOP|kqueue.NOTE_TRIGGER, 42, 0)
	ev := waitOne(t, kq)
	if ev.Fflags&kqueue.NOTE_FFLAGSMASK != 0x5 || ev.Data != 42 {
		t.Fatalf("got %s, want fflags 0x5 and data 42", describe(ev))
	}
}

// The point of EVFILT_USER: one thread wakes another that waits in kevent
// on the same queue. Whether the trigger lands before or after the wait
// starts, the waiter gets the event.
func TestUserWakesWaiter(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 4, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 5)
	got := make(chan []kqueue.Kevent_t)
	go func() {
		evs := make([]kqueue.Kevent_t, 2)
		n, _ := kevent(kq, evs, &mustCome)
		got <- evs[:max(n, 0)]
	}()
	trigger(t, kq, 4, kqueue.NOTE_TRIGGER, 0, 5)
	evs := <-got
	if len(evs) != 1 {
		t.Fatalf("the waiter got %s, want the user event", describeAll(evs))
	}
	expect(t, evs[0], 4, kqueue.EVFILT_USER, 0, 5)
}

// EV_DISPATCH on a user event: reported once, then disabled until
// EV_ENABLE, though it stays triggered.
func TestUserDispatch(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 5, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_DISPATCH, 0, 1)
	trigger(t, kq, 5, kqueue.NOTE_TRIGGER, 0, 1)
	expect(t, waitOne(t, kq), 5, kqueue.EVFILT_USER, kqueue.EV_DISPATCH, 1)
	noEvent(t, kq)
	change(t, kq, 5, kqueue.EVFILT_USER, kqueue.EV_ENABLE, 0, 1)
	expect(t, waitOne(t, kq), 5, kqueue.EVFILT_USER, kqueue.EV_DISPATCH, 1)
}

// Two goroutines asleep in kevent while a closed descriptor's file, kept
// open by a dup, becomes readable (its knote went with the close:
// knote_fdclose()), and then each is woken by a user event of its own.
// On Linux this is the case where the emulation replaces its epoll
// instance under the sleepers (rebuild_linux.go); they must still wake.
func TestWaitersSurviveRebuild(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	dup, err := unix.Dup(b)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, dup)
	closeNow(t, b)
	changeFails(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.EBADF) // the number is not open
	ready, got := make(chan bool), make(chan uint64, 2)
	for range 2 {
		go func() {
			evs := make([]kqueue.Kevent_t, 1)
			ready <- true
			n, _ := kevent(kq, evs, &mustCome)
			if n != 1 {
				got <- 0
				return
			}
			got <- evs[0].Udata
		}()
	}
	<-ready
	<-ready
	send(t, a, "x") // the file behind dup is readable now
	// Usually the waiters are asleep by now. Two polls that find
	// nothing: the emulation sees the leftover twice and rebuilds.
	// The user events are added only now, so that on Linux they are
	// registered in the new instance alone.
	noEvent(t, kq)
	noEvent(t, kq)
	for ident := 10; ident < 12; ident++ {
		change(t, kq, ident, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR|kqueue.EV_ONESHOT, 0, uint64(ident))
	}
	trigger(t, kq, 10, kqueue.NOTE_TRIGGER, 0, 10)
	trigger(t, kq, 11, kqueue.NOTE_TRIGGER, 0, 11)
	seen := map[uint64]bool{}
	for range 2 {
		seen[<-got] = true
	}
	if !seen[10] || !seen[11] {
		t.Fatalf("the waiters got %v, want one user event each", seen)
	}
}
