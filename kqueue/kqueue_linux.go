// The Linux path: kqueue emulated over epoll(7).
//
// A queue is an epoll instance; its descriptor is the kq the caller holds.
// What epoll does not keep for us, this package keeps in a queue struct:
// one knote per (ident, filter) with the caller's flags and udata, the
// timers, and the events that fired but did not fit in the caller's list.
// kqueue/README.md walks through every feature and where it differs from a
// real kqueue.
//
// This file holds the API: the constants, Kqueue, Kevent and Close. The
// changelist is applied in changes_linux.go, events are translated in
// events_linux.go, and timers live in timer_linux.go.

package kqueue

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// FreeBSD's values, so that a program printing a kevent shows the numbers
// the FreeBSD manual page and its headers use.
const (
	EVFILT_READ  = -0x1
	EVFILT_WRITE = -0x2
	EVFILT_TIMER = -0x7

	EV_ADD     = 0x1
	EV_DELETE  = 0x2
	EV_ENABLE  = 0x4
	EV_DISABLE = 0x8
	EV_ONESHOT = 0x10
	EV_CLEAR   = 0x20
	EV_RECEIPT = 0x40
	EV_ERROR   = 0x4000
	EV_EOF     = 0x8000
)

// queues maps each kq descriptor to its bookkeeping: a table indexed by
// the descriptor number. Kqueue and Close replace the table with an updated
// copy and never change a published one, so Kevent looks its queue up
// without taking a lock.
var queues struct {
	mu    sync.Mutex // serialises Kqueue and Close
	table atomic.Pointer[[]*queue]
}

func lookup(kq int) *queue {
	if t := queues.table.Load(); t != nil && kq >= 0 && kq < len(*t) {
		return (*t)[kq]
	}
	return nil
}

// publish sets the table's entry for kq and returns the one it replaced.
// The caller holds queues.mu.
func publish(kq int, q *queue) (old *queue) {
	var t []*queue
	if p := queues.table.Load(); p != nil {
		t = *p
	}
	next := make([]*queue, max(len(t), kq+1))
	copy(next, t)
	old, next[kq] = next[kq], q
	queues.table.Store(&next)
	return old
}

// Kqueue creates a new event queue and returns its descriptor. On Linux the
// descriptor is an epoll instance; close it with Close, not unix.Close, so
// that the bookkeeping and timers go with it.
func Kqueue() (kq int, err error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, err
	}
	q := &queue{
		epfd:       epfd,
		clear:      [2]int{-1, -1},
		diag:       diag{fd: -1},
		timers:     make(map[uint64]*knote),
		timerByTfd: make(map[int32]*knote),
	}
	queues.mu.Lock()
	old := publish(epfd, q)
	queues.mu.Unlock()
	// A number still in the table means its queue was closed with
	// unix.Close instead of Close; free what is left of it.
	if old != nil {
		old.mu.Lock()
		old.release()
		old.mu.Unlock()
	}
	return epfd, nil
}

// Kevent registers the changes, then waits for events and stores them in
// events, following kevent(2): a nil timeout waits for ever, a zero one
// polls, a positive one waits at most that long. A change that fails is
// reported as an EV_ERROR entry in events while there is room, and returned
// as the error when there is not. On error n is -1, as on the native path
// (where it is the system call's own -1); EINTR comes back as an error, as
// it does from kevent(2), with the changes applied.
func kevent(kq int, changes, events []Kevent_t, timeout *unix.Timespec) (n int, err error) {
	q := lookup(kq)
	if q == nil {
		return -1, unix.EBADF
	}
	var delivered uint64 // names the knotes delivered from the pending list

	// In a steady loop there are no changes and nothing pending: no
	// need to lock before the wait.
	if len(changes) > 0 || q.npending.Load() > 0 {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return -1, unix.EBADF
		}
		var stop bool
		n, stop, err = q.applyChanges(changes, events)
		if stop {
			q.mu.Unlock()
			return n, err
		}
		// Events that fired in an earlier call but did not fit come
		// first.
		n = q.deliverPending(events)
		if n > 0 {
			delivered = q.call
		}
		q.mu.Unlock()
	}

	if n == len(events) {
		return n, nil
	}
	msec, deadline, err := waitTime(timeout)
	if err != nil {
		return -1, err
	}
	if n > 0 {
		msec = 0 // something to return already: only collect what is ready
	}
	// The queue's own buffer, unless another goroutine is waiting on
	// the same queue with it right now.
	buf := &q.waitBuf
	if !q.waiting.CompareAndSwap(false, true) {
		buf = new([len(q.waitBuf)]unix.EpollEvent)
	} else {
		defer q.waiting.Store(false)
	}
	for {
		room := min(len(events)-n, len(buf))
		got, err := unix.EpollWait(q.epfd, buf[:room], msec)
		if err != nil && n > 0 {
			return n, nil // events from the pending list are the answer
		}
		if err != nil {
			// EINTR included: kevent(2) returns it too, with the
			// changes already applied.
			return -1, err
		}
		q.mu.Lock()
		if !q.closed {
			// A knote already reported from the pending list is
			// not reported again in the same call.
			q.skip = delivered
			n = q.translate(buf[:got], events, n)
			q.skip = 0
		}
		q.mu.Unlock()
		// Every epoll event may have been for a knote that is gone by
		// now (deleted, or a descriptor closed behind our back). Then
		// nothing has happened yet as far as the caller can tell, so
		// wait out the rest of the timeout.
		if n > 0 || got == 0 || msec == 0 {
			return n, nil
		}
		if !deadline.IsZero() {
			msec = msecUntil(deadline)
		}
	}
}

// Close closes the queue and frees everything the emulation keeps for it:
// the epoll instance, its timers and the bookkeeping.
func Close(kq int) error {
	queues.mu.Lock()
	q := publish(kq, nil)
	queues.mu.Unlock()
	if q != nil {
		q.mu.Lock()
		q.release()
		q.mu.Unlock()
	}
	return unix.Close(kq)
}

// waitTime turns kevent's timeout into epoll_wait's milliseconds, rounding
// up so that a short positive timeout still sleeps instead of spinning, and
// returns the deadline for a positive one.
func waitTime(ts *unix.Timespec) (msec int, deadline time.Time, err error) {
	if ts == nil {
		return -1, time.Time{}, nil
	}
	if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
		return 0, time.Time{}, unix.EINVAL
	}
	if ts.Sec == 0 && ts.Nsec == 0 {
		return 0, time.Time{}, nil
	}
	d := time.Duration(math.MaxInt64)
	if sec := int64(ts.Sec); sec < math.MaxInt64/int64(time.Second)-1 {
		d = time.Duration(sec)*time.Second + time.Duration(ts.Nsec)
	}
	deadline = time.Now().Add(d)
	return msecUntil(deadline), deadline, nil
}

func msecUntil(deadline time.Time) int {
	d := time.Until(deadline)
	if d <= 0 {
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return int(min(ms, math.MaxInt32))
}
