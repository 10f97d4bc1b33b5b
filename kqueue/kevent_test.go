package kqueue_test

// kevent(2) itself: the changelist, its errors, and the timeout.

import (
	"math"
	"testing"
	"time"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// Read and write filters on one descriptor are two knotes, each with its
// own udata.
func TestReadAndWriteOnOneFd(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 100)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 200)
	ev := waitOne(t, kq)
	expect(t, ev, b, kqueue.EVFILT_WRITE, 0, 200)

	send(t, a, "x")
	evs := waitAll(t, kq, 4)
	if len(evs) != 2 {
		t.Fatalf("got %v, want a read and a write event", describeAll(evs))
	}
	seen := map[int16]uint64{}
	for _, ev := range evs {
		seen[ev.Filter] = ev.Udata
	}
	if seen[kqueue.EVFILT_READ] != 100 || seen[kqueue.EVFILT_WRITE] != 200 {
		t.Fatalf("got %v", describeAll(evs))
	}
}

// "When the eventlist has room, an EV_ERROR entry is written for a change
// that fails, with the error in data; the other changes are still applied."
func TestChangeErrorEntries(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	var changes [3]kqueue.Kevent_t
	kqueue.EV_SET(&changes[0], b, kqueue.EVFILT_READ, kqueue.EV_DELETE, 0, 0, 11) // never added
	kqueue.EV_SET(&changes[1], b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0, 12)
	kqueue.EV_SET(&changes[2], b, 99, kqueue.EV_ADD, 0, 0, 13) // no such filter
	events := make([]kqueue.Kevent_t, 4)
	n, err := kqueue.Kevent(kq, changes[:], events, nil)
	if err != nil || n != 2 {
		t.Fatalf("Kevent = %d, %v; want 2 error entries", n, err)
	}
	expect(t, events[0], b, kqueue.EVFILT_READ, kqueue.EV_ERROR, 11)
	if events[0].Data != int64(unix.ENOENT) {
		t.Fatalf("data = %d, want ENOENT", events[0].Data)
	}
	expect(t, events[1], b, 99, kqueue.EV_ERROR, 13)
	if events[1].Data != int64(unix.EINVAL) {
		t.Fatalf("data = %d, want EINVAL", events[1].Data)
	}
	// The change between the two failures was applied.
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 12)
}

// With no room in the eventlist, the call itself returns the error.
func TestChangeErrorNoRoom(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, b := socketPair(t)
	changeFails(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, unix.ENOENT) // deleting a filter never added
	changeFails(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, unix.ENOENT)  // enabling a filter never added
	changeFails(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DISABLE, unix.ENOENT) // disabling a filter never added
}

// A descriptor that is not open: EBADF.
func TestChangeBadFd(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	// A closed descriptor's number may be taken at once by a test
	// running in parallel; nothing opens one this high.
	const notOpen = 1 << 20
	changeFails(t, kq, notOpen, kqueue.EVFILT_READ, kqueue.EV_ADD, unix.EBADF) // EV_ADD on a closed descriptor
}

// A zero timeout polls, a positive one waits and returns 0 when nothing
// happens.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	events := make([]kqueue.Kevent_t, 1)
	for _, ts := range []unix.Timespec{{}, {Nsec: 1e6}, {Nsec: 20e6}} {
		start := time.Now()
		n, err := kevent(kq, events, &ts)
		if n != 0 || err != nil {
			t.Fatalf("timeout %v: Kevent = %d, %v; want 0, nil", ts, n, err)
		}
		// The timeout is how long it waits at the least; a loaded
		// machine may only make it longer.
		if waited, want := time.Since(start), time.Duration(ts.Nano()); waited < want {
			t.Fatalf("timeout %v: returned after %v", ts, waited)
		}
	}
}

// A timeout too long to add to the clock (FreeBSD's kern_kevent() waits
// without a limit once tv_sec is past INT32_MAX) still waits: here for a
// timer registered in the same call.
func TestHugeTimeout(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	huge := unix.NsecToTimespec(math.MaxInt64)
	huge.Nsec = 999999999
	var c kqueue.Kevent_t
	kqueue.EV_SET(&c, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 30, 5)
	events := make([]kqueue.Kevent_t, 1)
	changes := []kqueue.Kevent_t{c}
	for {
		n, err := kqueue.Kevent(kq, changes, events, &huge)
		if err == unix.EINTR {
			changes = nil // applied already
			continue
		}
		if n != 1 || err != nil {
			t.Fatalf("Kevent = %d, %v; want the timer", n, err)
		}
		expect(t, events[0], 1, kqueue.EVFILT_TIMER, 0, 5)
		return
	}
}

// A nil timeout blocks until an event comes.
func TestNilTimeoutBlocks(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	// Usually lands while Kevent below is already waiting. (Should the
	// write fail, the wait never ends and go test's -timeout fails the test.)
	go unix.Write(a, []byte("x"))
	events := make([]kqueue.Kevent_t, 1)
	n, err := kevent(kq, events, nil)
	if n != 1 || err != nil {
		t.Fatalf("Kevent = %d, %v; want 1 event", n, err)
	}
}

// modes are the two ways a filter can report: level-triggered (the
// default) and EV_CLEAR.
var modes = []struct {
	name string
	flag uint16
}{{"level", 0}, {"clear", kqueue.EV_CLEAR}}

// readyBoth returns a queue and a socket whose read and write filters have
// both fired, and the first event of the two, read with room for one.
func readyBoth(t *testing.T, flag uint16) (kq, b int, first kqueue.Kevent_t) {
	kq = newQueue(t)
	a, b := socketPair(t)
	send(t, a, "x")
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|flag, 0, 1)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|flag, 0, 2)
	return kq, b, waitAll(t, kq, 1)[0]
}

func otherFilter(filter int16) int16 {
	if filter == kqueue.EVFILT_READ {
		return kqueue.EVFILT_WRITE
	}
	return kqueue.EVFILT_READ
}

// With room for one event and two ready filters on one descriptor, the
// second is not lost: the next call returns it.
func TestTwoFiltersOneSlot(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			kq, _, first := readyBoth(t, mode.flag)
			second := waitAll(t, kq, 1)[0]
			if second.Filter != otherFilter(first.Filter) {
				t.Fatalf("got %s then %s, want one of each filter", describe(first), describe(second))
			}
		})
	}
}

// A knote is reported at most once per call, even when its event waited
// from an earlier call and fires again in this one.
func TestNoDuplicateAfterShortList(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			kq, _, first := readyBoth(t, mode.flag)
			evs := waitAll(t, kq, 4)
			seen := map[int16]bool{}
			for _, ev := range evs {
				if seen[ev.Filter] {
					t.Fatalf("after %s: %s reports a filter twice", describe(first), describeAll(evs))
				}
				seen[ev.Filter] = true
			}
			if !seen[otherFilter(first.Filter)] {
				t.Fatalf("after %s: %s lacks the other filter", describe(first), describeAll(evs))
			}
		})
	}
}

// An event that fired but was not yet retrieved goes with its descriptor
// when the descriptor is closed, even if the number is reused at once.
func TestCloseDropsPendingEvent(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			kq, b, _ := readyBoth(t, mode.flag)
			c, _ := socketPair(t)
			if err := unix.Dup2(c, b); err != nil { // closes the old b
				t.Fatal(err)
			}
			noEvent(t, kq)
		})
	}
}

// "EV_DELETE: Removes the event from the kqueue", and with it an event that
// had fired but was not yet retrieved. The filter reported first is still
// there: a level-triggered one keeps reporting, an EV_CLEAR one does not.
func TestDeleteDropsPendingEvent(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			kq, b, first := readyBoth(t, mode.flag)
			change(t, kq, b, otherFilter(first.Filter), kqueue.EV_DELETE, 0, 0)
			if mode.flag == kqueue.EV_CLEAR {
				noEvent(t, kq)
				return
			}
			for range 2 {
				expect(t, waitAll(t, kq, 1)[0], b, first.Filter, 0, first.Udata)
			}
		})
	}
}

// A disabled filter reports nothing, not even an event that had fired
// before and was waiting to be retrieved. Enabled again, a level-triggered
// filter whose condition still holds reports at once.
func TestDisableHoldsPendingEvent(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	send(t, a, "x")
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
	first := waitAll(t, kq, 1)[0] // the other one is now pending
	var other int16 = kqueue.EVFILT_READ
	if first.Filter == kqueue.EVFILT_READ {
		other = kqueue.EVFILT_WRITE
	}
	// Each change passes the knote's own udata: any change but a
	// delete replaces it (kqueue_register() in kern_event.c).
	udata := map[int16]uint64{kqueue.EVFILT_READ: 1, kqueue.EVFILT_WRITE: 2}
	change(t, kq, b, first.Filter, kqueue.EV_DISABLE, 0, udata[first.Filter])
	change(t, kq, b, other, kqueue.EV_DISABLE, 0, udata[other])
	noEvent(t, kq)
	change(t, kq, b, other, kqueue.EV_ENABLE, 0, udata[other])
	expect(t, waitOne(t, kq), b, other, 0, udata[other])
}

// The changelist and the eventlist may be the same array, as C programs
// often pass them: each EV_ERROR entry overwrites a change already applied.
func TestChangesAndEventsShareArray(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, b := socketPair(t)
	list := make([]kqueue.Kevent_t, 2)
	kqueue.EV_SET(&list[0], b, kqueue.EVFILT_READ, kqueue.EV_DELETE, 0, 0, 1)
	kqueue.EV_SET(&list[1], b, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, 0, 0, 2)
	n, err := kqueue.Kevent(kq, list, list, nil)
	if n != 2 || err != nil {
		t.Fatalf("Kevent = %d, %v; want 2 error entries", n, err)
	}
	expect(t, list[0], b, kqueue.EVFILT_READ, kqueue.EV_ERROR, 1)
	expect(t, list[1], b, kqueue.EVFILT_WRITE, kqueue.EV_ERROR, 2)
}

// Kevent on a descriptor that is not a kqueue: EBADF.
func TestKeventNotAQueue(t *testing.T) {
	t.Parallel()
	_, b := socketPair(t)
	_, err := kqueue.Kevent(b, nil, make([]kqueue.Kevent_t, 1), &unix.Timespec{})
	if !isErrno(err, unix.EBADF) {
		t.Fatalf("Kevent on a socket: %v, want EBADF", err)
	}
}

// "EINVAL: The specified time limit or filter is invalid."
func TestInvalidTimeout(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	bad := unix.Timespec{Nsec: 1e9}
	if n, err := kqueue.Kevent(kq, nil, make([]kqueue.Kevent_t, 1), &bad); n != -1 || !isErrno(err, unix.EINVAL) {
		t.Fatalf("timeout with 1e9 nanoseconds: %d, %v; want -1, EINVAL", n, err)
	}
}

// A filter added and deleted in one changelist leaves nothing behind.
func TestAddDeleteInOneCall(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	var changes [2]kqueue.Kevent_t
	kqueue.EV_SET(&changes[0], b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0, 1)
	kqueue.EV_SET(&changes[1], b, kqueue.EVFILT_READ, kqueue.EV_DELETE, 0, 0, 1)
	if _, err := kqueue.Kevent(kq, changes[:], nil, nil); err != nil {
		t.Fatal(err)
	}
	send(t, a, "x")
	noEvent(t, kq)
}

// A disabled filter reports nothing, not even a hang-up (epoll reports
// those to every registration, whatever it asked for).
func TestDisabledFilterIgnoresHangup(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 0)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 0)
	closeNow(t, a)
	noEvent(t, kq)
}

// A descriptor closed without EV_DELETE: its filters are gone with it, and
// changing them fails with EBADF. Not parallel: the test needs the closed
// number to stay free, and while it runs no parallel test can take it.
func TestClosedFdChangesFail(t *testing.T) {
	kq := newQueue(t)
	_, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	closeNow(t, b)
	noEvent(t, kq)
	changeFails(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.EBADF) // deleting the filter of a closed descriptor
}

// Timers and descriptors are different kinds of ident: a timer numbered
// like a watched descriptor is a knote of its own.
func TestTimerIdentSeparateFromFd(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_ONESHOT, 1, 2)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_TIMER, 0, 2)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 1)
}

// Several goroutines may wait on one queue at once, and another may change
// it meanwhile: each one-shot event goes to exactly one waiter.
func TestConcurrentWaiters(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	const waiters = 3
	got := make(chan uint64, waiters)
	for range waiters {
		go func() {
			evs := make([]kqueue.Kevent_t, 1)
			n, err := kevent(kq, evs, &mustCome)
			if err != nil || n != 1 {
				got <- 0
				return
			}
			got <- evs[0].Udata
		}()
	}
	for i := range waiters {
		a, b := socketPair(t)
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, uint64(i+1))
		send(t, a, "x")
	}
	seen := map[uint64]bool{}
	for range waiters {
		u := <-got
		if u == 0 || seen[u] {
			t.Fatalf("a waiter got udata %d; so far %v", u, seen)
		}
		seen[u] = true
	}
}

// A descriptor closed while its file stays open through a duplicate, then
// given the same number again: the old filters are gone, and a new one
// works. Not parallel, for the same reason as TestClosedFdChangesFail.
func TestSameFileBackUnderOldNumber(t *testing.T) {
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	dup, err := unix.Dup(b)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, dup)
	closeNow(t, b)
	changeFails(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DISABLE, unix.EBADF) // the number is not open
	if err := unix.Dup2(dup, b); err != nil {
		t.Fatal(err)
	}
	// closeLater skips a number closeNow has closed once.
	t.Cleanup(func() { unix.Close(b) })
	changeFails(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.ENOENT) // went with the close
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 2)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 2)
}

// An event that waits because the last call had no room for it is checked
// again before it is delivered: kqueue_scan() in kern_event.c calls the
// filter once more for each queued knote (unless EV_ONESHOT) and drops it
// when the condition no longer holds. Here neither holds by then: the byte
// has been read and the send buffer filled.
func TestQueuedEventCheckedAgain(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	if err := unix.SetNonblock(b, true); err != nil {
		t.Fatal(err)
	}
	send(t, a, "x")
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
	waitAll(t, kq, 1) // the other filter's event waits for the next call
	recv(t, b, 1)
	for {
		if _, err := unix.Write(b, make([]byte, 4096)); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	noEvent(t, kq)
}

// Both ends of one socket pair in one queue: two descriptors, each with its
// own knote and udata.
func TestBothEndsInOneQueue(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	lo, hi := min(a, b), max(a, b)
	change(t, kq, lo, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, hi, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 2)
	send(t, lo, "x")
	expect(t, waitOne(t, kq), hi, kqueue.EVFILT_READ, 0, 2)
	recv(t, hi, 1)
	send(t, hi, "y")
	expect(t, waitOne(t, kq), lo, kqueue.EVFILT_READ, 0, 1)
}
