//go:build darwin || dragonfly || freebsd || linux

// EVFILT_USER, where the system has it (OpenBSD and NetBSD do not).

package kqueue_test

import (
	"runtime"
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
// Not parallel: the closed number must stay free until the change that
// finds it closed, and while this test runs no parallel test can take it.
func TestWaitersSurviveRebuild(t *testing.T) {
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

// EV_CLEAR in a change resets a user event (filt_usertouch(),
// EVENT_REGISTER, in kern_event.c), even one whose event is already queued
// for the next call: kqueue_scan() asks filt_user() again before reporting
// it, and it says no. That holds for a user event added with EV_CLEAR and
// for one added without it, which stays triggered only until such a reset.
// The event is queued behind two others that take the whole event list.
// XNU's filt_usertouch() ignores EV_CLEAR in a change.
func TestUserResetDropsQueuedEvent(t *testing.T) {
	t.Parallel()
	for _, flags := range []uint16{kqueue.EV_CLEAR, 0} {
		kq := newQueue(t)
		a, b := socketPair(t)
		send(t, a, "x")
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
		change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
		change(t, kq, 7, kqueue.EVFILT_USER, kqueue.EV_ADD|flags, 0, 7)
		trigger(t, kq, 7, kqueue.NOTE_TRIGGER, 0, 7)
		if evs := waitAll(t, kq, 2); len(evs) != 2 || evs[0].Ident != uint64(b) || evs[1].Ident != uint64(b) {
			t.Fatalf("flags %#x: got %s, want the socket's two filters first", flags, describeAll(evs))
		}
		change(t, kq, 7, kqueue.EVFILT_USER, kqueue.EV_CLEAR, 0, 7)
		for _, ev := range poll(t, kq, 4) {
			if ev.Filter == kqueue.EVFILT_USER && runtime.GOOS != "darwin" {
				t.Fatalf("flags %#x: got %s after the reset", flags, describe(ev))
			}
		}
	}
}

// One change that both triggers a user event and carries EV_CLEAR leaves it
// reset: filt_usertouch() (EVENT_REGISTER, kern_event.c) sets the trigger
// for NOTE_TRIGGER first and clears it for EV_CLEAR after, so nothing is
// reported. On the knote's creation EV_CLEAR only sets the mode, and the
// trigger stands. XNU's filt_usertouch() ignores EV_CLEAR in a change.
func TestUserTriggerAndResetInOneChange(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	change(t, kq, 8, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 8)
	trigger(t, kq, 8, kqueue.NOTE_TRIGGER, 0, 8) // reset below too
	if err := changeFflags(kq, 8, kqueue.EVFILT_USER, kqueue.EV_CLEAR, kqueue.NOTE_TRIGGER, 0, 8); err != nil {
		t.Fatalf("EVFILT_USER EV_CLEAR NOTE_TRIGGER: %v", err)
	}
	if runtime.GOOS != "darwin" {
		noEvent(t, kq)
	}
	change(t, kq, 9, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 9)
	if err := changeFflags(kq, 9, kqueue.EVFILT_USER, kqueue.EV_DELETE, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := changeFflags(kq, 9, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, kqueue.NOTE_TRIGGER, 0, 9); err != nil {
		t.Fatalf("EVFILT_USER EV_ADD|EV_CLEAR NOTE_TRIGGER: %v", err)
	}
	expect(t, waitOne(t, kq), 9, kqueue.EVFILT_USER, kqueue.EV_CLEAR, 9)
}

// A kqueue watched by another: data counts every kind of event waiting in
// it (filt_kqueue(): kq_count), a level-triggered filter, an EV_CLEAR one
// and a user event alike.
func TestKqueueInKqueueCountsAll(t *testing.T) {
	t.Parallel()
	inner, outer := newQueue(t), newQueue(t)
	a, b := socketPair(t)
	c, d := socketPair(t)
	send(t, a, "x")
	send(t, c, "y")
	change(t, inner, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, inner, d, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 2)
	change(t, inner, 3, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 3)
	change(t, inner, 4, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 4)
	trigger(t, inner, 3, kqueue.NOTE_TRIGGER, 0, 3)
	trigger(t, inner, 4, kqueue.NOTE_TRIGGER, 0, 4) // disabled: not counted
	change(t, outer, inner, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 9)
	ev := waitOne(t, outer)
	expect(t, ev, inner, kqueue.EVFILT_READ, 0, 9)
	if ev.Data != 3 {
		t.Fatalf("data = %d, want the 3 events waiting in the inner queue", ev.Data)
	}
}

// Closing a descriptor removes its own knotes and nothing else
// (knote_fdclose()): after such closes, with the file kept open and
// readable through a dup, every other knote of the queue carries on, level
// and EV_CLEAR filters and user events alike; and closing the queue frees
// every descriptor it took. On Linux this is where the emulation replaces
// its epoll instance (rebuild_linux.go), twice. Not parallel: it counts the
// process's descriptors.
func TestDupCloseLeavesOtherKnotes(t *testing.T) {
	before := openDescriptors(t)
	kq, err := kqueue.Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	var mine []int
	pair := func() (int, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, fds[0], fds[1])
		return fds[0], fds[1]
	}
	a1, b1 := pair()
	a2, b2 := pair()
	send(t, a1, "x")
	change(t, kq, b1, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b2, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 2)
	change(t, kq, 3, kqueue.EVFILT_USER, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 3)
	for range 2 {
		x, y := pair()
		change(t, kq, y, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 9)
		dup, err := unix.Dup(y)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Close(y); err != nil {
			t.Fatal(err)
		}
		mine[len(mine)-1] = dup
		changeFails(t, kq, y, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.EBADF) // the number is not open
		send(t, x, "x")                                                         // the file behind dup is readable now
		for range 3 {
			if evs := poll(t, kq, 4); len(evs) != 1 || evs[0].Udata != 1 {
				t.Fatalf("got %s, want the level filter alone", describeAll(evs))
			}
		}
		send(t, a2, "y")
		trigger(t, kq, 3, kqueue.NOTE_TRIGGER, 0, 3)
		seen := map[uint64]bool{}
		for _, ev := range waitAll(t, kq, 4) {
			seen[ev.Udata] = true
		}
		if !seen[1] || !seen[2] || !seen[3] || len(seen) != 3 {
			t.Fatalf("got %v, want the level, EV_CLEAR and user events", seen)
		}
	}
	// Descriptors of the test's own, opened last, take any number the
	// queue has given up: Close must leave them alone.
	for range 4 {
		pair()
	}
	if err := kqueue.Close(kq); err != nil {
		t.Fatal(err)
	}
	for _, fd := range mine {
		if err := unix.Close(fd); err != nil {
			t.Fatalf("closing the test's own descriptor %d: %v", fd, err)
		}
	}
	if after := openDescriptors(t); after != before {
		t.Fatalf("%d descriptors open after Close, %d before Kqueue", after, before)
	}
}
