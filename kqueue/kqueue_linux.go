// The Linux path: kqueue emulated over epoll(7).
//
// A queue is an epoll instance; its descriptor is the kq the caller holds.
// What epoll does not keep for us, this package keeps in a queue struct:
// one knote per (ident, filter) with the caller's flags and udata, the
// timers and user events, and the events that fired but did not fit in the
// caller's list. kqueue/README.md walks through every feature and where it
// differs from a real kqueue.
//
// This file holds the API: the constants, Kqueue, Kevent and Close. The
// changelist is applied in changes_linux.go, events are translated in
// events_linux.go, timers and user events live in ident_linux.go, how a
// descriptor's file is recognised in identity_linux.go, and how leftover
// registrations are dropped in rebuild_linux.go.

package kqueue

import (
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FreeBSD's values, so that a program printing a kevent shows the numbers
// the FreeBSD manual page and its headers use.
const (
	EVFILT_READ  = -0x1
	EVFILT_WRITE = -0x2
	EVFILT_TIMER = -0x7
	EVFILT_USER  = -0xb

	EV_ADD      = 0x1
	EV_DELETE   = 0x2
	EV_ENABLE   = 0x4
	EV_DISABLE  = 0x8
	EV_ONESHOT  = 0x10
	EV_CLEAR    = 0x20
	EV_RECEIPT  = 0x40
	EV_DISPATCH = 0x80
	EV_ERROR    = 0x4000
	EV_EOF      = 0x8000

	NOTE_LOWAT = 0x1

	NOTE_SECONDS  = 0x1
	NOTE_MSECONDS = 0x2
	NOTE_USECONDS = 0x4
	NOTE_NSECONDS = 0x8
	NOTE_ABSTIME  = 0x10

	NOTE_FFNOP      = 0x0
	NOTE_FFAND      = 0x40000000
	NOTE_FFOR       = 0x80000000
	NOTE_FFCOPY     = 0xc0000000
	NOTE_FFCTRLMASK = 0xc0000000
	NOTE_FFLAGSMASK = 0xffffff
	NOTE_TRIGGER    = 0x1000000
)

// queues maps each kq descriptor to its bookkeeping.
var queues table[queue]

func lookup(kq int) *queue { return queues.lookup(kq) }

// Kqueue creates a new event queue and returns its descriptor. On Linux the
// descriptor is an epoll instance; close it with Close, not unix.Close, so
// that the bookkeeping and timers go with it.
func Kqueue() (kq int, err error) {
	epfd, err := epollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, err
	}
	wake, err := eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err == nil {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake), Pad: tagWake}
		if err = epollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
			closeFd(wake)
		}
	}
	if err != nil {
		closeFd(epfd)
		return -1, err
	}
	q := &queue{
		epfd:    epfd,
		clear:   [2]int{-1, -1},
		diag:    diag{fd: -1},
		wake:    wake,
		nudge:   -1,
		idents:  make(map[identKey]*knote),
		drivers: make(map[int32]*knote),
	}
	old := queues.publish(epfd, q)
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

	// In a steady loop there are no changes, nothing pending and no
	// socket waiting to connect: no need to lock before the wait.
	if len(changes) > 0 || q.npending.Load() > 0 || q.unconnected.Load() > 0 {
		var stop bool
		n, delivered, stop, err = q.beforeWait(changes, events)
		if stop {
			return n, err
		}
	}

	if n == len(events) {
		return n, nil
	}
	w, err := newWait(timeout)
	if err != nil {
		return -1, err
	}
	if n > 0 {
		w.poll = true // something to return already: only collect what is ready
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
		epoch := q.epoch.Load()
		got, err := w.wait(q.epfd, buf[:room])
		if err != nil && n > 0 {
			return n, nil // events from the pending list are the answer
		}
		if err != nil {
			// EINTR included: kevent(2) returns it too, with the
			// changes already applied.
			return -1, err
		}
		n = q.collect(buf[:got], events, n, delivered, epoch)
		// Every epoll event may have been for a knote that is gone by
		// now (deleted, or a descriptor closed behind our back). Then
		// nothing has happened yet as far as the caller can tell, so
		// wait out the rest of the timeout.
		if n > 0 || got == 0 || w.poll {
			return n, nil
		}
	}
}

// The two parts of kevent that hold the queue's lock are functions of their
// own so that they can unlock in a defer: were a bug in the package to panic
// there, the panic must reach the caller as a panic, not hang the caller's
// own deferred Close on a lock nobody will release.

// beforeWait applies the changes, then takes the events an earlier call
// left in the pending list for want of room: they come first. stop says
// that kevent returns n and err at once, without waiting.
func (q *queue) beforeWait(changes, events []Kevent_t) (n int, delivered uint64, stop bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return -1, 0, true, unix.EBADF
	}
	n, stop, err = q.applyChanges(changes, events)
	if stop {
		return n, 0, true, err
	}
	if q.unconnected.Load() > 0 {
		q.lookAgainAll()
	}
	if len(q.pending) > 0 {
		n = q.deliverPending(events, 0)
		delivered = q.call
	}
	return n, delivered, false, err
}

// collect turns what epoll reported into events after the n already in
// events, and returns the new count. delivered names the knotes this call
// took from the pending list (see beforeWait); epoch is the instance the
// wait started on.
func (q *queue) collect(ready []unix.EpollEvent, events []Kevent_t, n int, delivered uint64, epoch uint32) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return n
	}
	// A knote already reported from the pending list is not reported
	// again in the same call.
	q.skip = delivered
	n, stale := q.translate(ready, events, n)
	q.skip = 0
	// Another caller may have left events it had no room for; the wake
	// eventfd woke this one for them.
	if len(q.pending) > 0 && n < len(events) {
		n = q.deliverPending(events, n)
	}
	q.afterWait(epoch, stale)
	return n
}

// Close closes the queue and frees everything the emulation keeps for it:
// the epoll instance, its timers and the bookkeeping.
func Close(kq int) error {
	q := queues.publish(kq, nil)
	if q != nil {
		q.mu.Lock()
		q.release()
		q.mu.Unlock()
	}
	return closeFd(kq)
}

// wait is kevent's timeout, turned into what epoll_wait needs.
type wait struct {
	forever, poll bool
	deadline      time.Time
}

func newWait(ts *unix.Timespec) (wait, error) {
	switch {
	case ts == nil:
		return wait{forever: true}, nil
	case ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9:
		return wait{}, unix.EINVAL
	case ts.Sec == 0 && ts.Nsec == 0:
		return wait{poll: true}, nil
	}
	d := time.Duration(math.MaxInt64)
	if sec := int64(ts.Sec); sec < math.MaxInt64/int64(time.Second)-1 {
		d = time.Duration(sec)*time.Second + time.Duration(ts.Nsec)
	}
	return wait{deadline: time.Now().Add(d)}, nil
}

// noPwait2 is set once the kernel has said it has no epoll_pwait2 (Linux
// before 5.11): then timeouts are rounded up to whole milliseconds, so that
// a short positive timeout still sleeps instead of spinning.
var noPwait2 atomic.Bool

// wait waits on epfd until an event comes or the time is up.
func (w *wait) wait(epfd int, buf []unix.EpollEvent) (int, error) {
	switch {
	case w.forever:
		return epollWait(epfd, buf, -1)
	case w.poll:
		return epollWait(epfd, buf, 0)
	}
	d := time.Until(w.deadline)
	if d <= 0 {
		return epollWait(epfd, buf, 0)
	}
	if !noPwait2.Load() {
		ts := unix.NsecToTimespec(int64(d))
		n, err := pwait2(epfd, buf, &ts)
		if err != unix.ENOSYS {
			return n, err
		}
		noPwait2.Store(true)
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return epollWait(epfd, buf, int(min(ms, math.MaxInt32)))
}

// epollPwait2 is epoll_pwait2(2) without a signal mask: epoll_wait with a
// timeout in nanoseconds. x/sys has no wrapper for it.
func epollPwait2(epfd int, buf []unix.EpollEvent, ts *unix.Timespec) (int, error) {
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd), uintptr(p), uintptr(len(buf)), uintptr(unsafe.Pointer(ts)), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
