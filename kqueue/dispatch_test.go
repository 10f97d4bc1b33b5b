//go:build !netbsd

// NetBSD has no EV_DISPATCH in x/sys.

package kqueue_test

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
)

// EV_DISPATCH: "Disable the event source immediately after delivery of an
// event" (kevent(2)); kqueue_scan() sets KN_DISABLED once it has copied
// the event out. EV_ENABLE arms it again.
func TestDispatch(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_DISPATCH, 0, 3)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, kqueue.EV_DISPATCH, 3)
	noEvent(t, kq) // the byte is still there, but the knote is disabled
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0, 3)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, kqueue.EV_DISPATCH, 3)
	noEvent(t, kq)
}

// A write filter that disables itself when it fires leaves the EV_CLEAR read
// filter of the same descriptor alone (TestOtherFilterLeavesClearAlone).
func TestDispatchLeavesClearAlone(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 1)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, kqueue.EV_CLEAR, 1)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_DISPATCH, 0, 2)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, kqueue.EV_DISPATCH, 2)
	noEvent(t, kq)
}
