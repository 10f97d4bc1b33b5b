package kqueue_test

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
)

// A steady event loop allocates nothing per Kevent call, natively (the
// queue's buffer for the system's struct kevent is reused) and in the
// emulation. Not parallel: testing.AllocsPerRun counts the whole
// process's allocations.
func TestKeventDoesNotAllocate(t *testing.T) {
	kq := newQueue(t)
	a, b := socketPair(t)
	var changes [2]kqueue.Kevent_t
	kqueue.EV_SET(&changes[0], b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0, 0)
	kqueue.EV_SET(&changes[1], b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 0, 0)
	if _, err := kqueue.Kevent(kq, changes[:], nil, nil); err != nil {
		t.Fatal(err)
	}
	send(t, a, "x")
	events := make([]kqueue.Kevent_t, 1) // short, so that the pending list is used too
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := kqueue.Kevent(kq, nil, events, nil); n != 1 || err != nil {
			t.Fatalf("Kevent = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per call, want 0", allocs)
	}
}
