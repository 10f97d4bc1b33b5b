//go:build darwin || dragonfly || freebsd || netbsd || openbsd

// The native path: these systems have kqueue, so each call is a conversion
// between the portable Kevent_t and the system's struct kevent, and nothing
// more. The kernel keeps all the state.

package kqueue

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The kernel's own values. They differ between systems (see NetBSD), which
// is why code must use these names and never the numbers.
const (
	EVFILT_READ  = unix.EVFILT_READ
	EVFILT_WRITE = unix.EVFILT_WRITE
	EVFILT_TIMER = unix.EVFILT_TIMER

	EV_ADD     = unix.EV_ADD
	EV_DELETE  = unix.EV_DELETE
	EV_ENABLE  = unix.EV_ENABLE
	EV_DISABLE = unix.EV_DISABLE
	EV_ONESHOT = unix.EV_ONESHOT
	EV_CLEAR   = unix.EV_CLEAR
	EV_EOF     = unix.EV_EOF
	EV_ERROR   = unix.EV_ERROR

	// NOTE_LOWAT, in fflags with EVFILT_READ or EVFILT_WRITE: report
	// only once data (the change's) bytes wait, or that much room is free.
	NOTE_LOWAT = unix.NOTE_LOWAT
)

// nativeQueue is what the package keeps for a queue made by Kqueue: a
// buffer for the native kevents, reused by every call, so that a steady
// loop allocates nothing.
type nativeQueue struct {
	busy atomic.Bool // buf is in use by a call
	buf  *nativeBuffer
}

var natives table[nativeQueue]

// Kqueue creates a new kernel event queue and returns its descriptor.
func Kqueue() (kq int, err error) {
	kq, err = unix.Kqueue()
	if err == nil {
		natives.publish(kq, &nativeQueue{buf: newNativeBuffer(0)})
	}
	return kq, err
}

// Kevent registers the changes, then waits for events and stores them in
// events, as kevent(2) does. A nil timeout waits for ever, a zero one polls.
func Kevent(kq int, changes, events []Kevent_t, timeout *unix.Timespec) (n int, err error) {
	// The queue's own buffer, grown when a call needs more, unless
	// another goroutine is using it right now or kq was not made by
	// Kqueue.
	var buf *nativeBuffer
	size := len(changes) + len(events)
	if q := natives.lookup(kq); q != nil && q.busy.CompareAndSwap(false, true) {
		defer q.busy.Store(false)
		if len(q.buf.all) < size {
			q.buf = newNativeBuffer(size)
		}
		buf = q.buf
	} else {
		buf = newNativeBuffer(size)
	}
	nativeChanges := buf.slice(0, len(changes))
	nativeEvents := buf.slice(len(changes), len(changes)+len(events))
	for i := range changes {
		buf.put(&nativeChanges[i], &changes[i])
	}
	n, err = unix.Kevent(kq, nativeChanges, nativeEvents, timeout)
	for i := 0; i < n; i++ {
		buf.get(&events[i], &nativeEvents[i])
	}
	return n, err
}

// Close closes the queue. The kernel drops every registration with it.
func Close(kq int) error {
	natives.publish(kq, nil)
	return unix.Close(kq)
}
