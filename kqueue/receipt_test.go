//go:build !netbsd

// NetBSD has no EV_RECEIPT.

package kqueue_test

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
)

// EV_RECEIPT: "This flag is useful for making bulk changes to a kqueue
// without draining any pending events. When passed as input, it forces
// EV_ERROR to always be returned. When a filter is successfully added the
// data field will be zero."
func TestReceipt(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	send(t, a, "pending")
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1) // an event waits

	var changes [2]kqueue.Kevent_t
	kqueue.EV_SET(&changes[0], b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_RECEIPT, 0, 0, 2)
	kqueue.EV_SET(&changes[1], a, kqueue.EVFILT_WRITE, kqueue.EV_DELETE|kqueue.EV_RECEIPT, 0, 0, 3)
	events := make([]kqueue.Kevent_t, 4)
	n, err := kqueue.Kevent(kq, changes[:], events, nil)
	if n != 2 || err != nil {
		t.Fatalf("Kevent = %d, %v; want 2 receipts and no pending event", n, err)
	}
	expect(t, events[0], b, kqueue.EVFILT_WRITE, kqueue.EV_ERROR, 2)
	if events[0].Data != 0 {
		t.Fatalf("receipt for a successful add: data = %d, want 0", events[0].Data)
	}
	expect(t, events[1], a, kqueue.EVFILT_WRITE, kqueue.EV_ERROR, 3)
	if events[1].Data == 0 {
		t.Fatal("receipt for a failed delete: data = 0, want the errno")
	}
	// The write filter was added, and the read event still waits.
	if evs := waitAll(t, kq, 4); len(evs) != 2 {
		t.Fatalf("got %s, want the read and the write event", describeAll(evs))
	}
}
