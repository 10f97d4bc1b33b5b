package kqueue_test

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// Descriptor 0 is a descriptor like any other. A daemon that has closed its
// standard input gets 0 for the next file it opens: for the queue itself, a
// descriptor it watches, or what the queue opens for it (on Linux, the
// epoll instance of its EV_CLEAR filters, the socket that counts a
// listener's backlog). Each works as it would under any other number, and
// Close leaves 0 free again. Not parallel: it closes the process's
// descriptor 0, and while it runs no parallel test can open a file.
func TestDescriptorZero(t *testing.T) {
	zero := descriptorZero(t)
	zero.free()

	// The queue itself.
	kq, err := kqueue.Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	if kq != 0 {
		t.Fatalf("Kqueue() = %d with descriptor 0 free, want 0", kq)
	}
	a, b := socketPair(t)
	send(t, a, "x")
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 1)
	if err := kqueue.Close(kq); err != nil {
		t.Fatal(err)
	}
	zero.mustBeFree("closing the queue that was 0")

	// A watched descriptor.
	zero.hold()
	kq = newQueue(t)
	zero.free()
	c, d := socketPair(t)
	if c != 0 {
		t.Fatalf("socketpair gave %d with descriptor 0 free, want 0", c)
	}
	send(t, d, "x")
	change(t, kq, c, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 2)
	expect(t, waitOne(t, kq), c, kqueue.EVFILT_READ, 0, 2)
	change(t, kq, c, kqueue.EVFILT_READ, kqueue.EV_DELETE, 0, 0)
	noEvent(t, kq)
	closeNow(t, c)
	closeNow(t, d)

	// EV_CLEAR filters registered while 0 is free, and the queue's
	// other knotes through a dup's close (see TestDupCloseLeavesOtherKnotes).
	zero.hold()
	kq, err = kqueue.Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	p1, q1 := socketPair(t)
	p2, q2 := socketPair(t)
	x, y := socketPair(t)
	change(t, kq, y, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 9)
	dup, err := unix.Dup(y)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, dup)
	zero.free()
	change(t, kq, q1, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 3)
	change(t, kq, q2, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 4)
	send(t, p1, "x")
	send(t, p2, "x")
	waitFor(t, kq, 3, 4)
	closeNow(t, y)
	changeFails(t, kq, y, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.EBADF) // the number is not open
	send(t, x, "x")                                                         // the file behind dup is readable now
	noEvent(t, kq)
	noEvent(t, kq)
	send(t, p1, "y")
	waitFor(t, kq, 3)
	if err := kqueue.Close(kq); err != nil {
		t.Fatal(err)
	}
	for _, fd := range []int{p1, q1, p2, q2, x, dup} {
		closeNow(t, fd)
	}
	zero.mustBeFree("closing a queue with EV_CLEAR filters")

	// A listening AF_UNIX socket's backlog, first counted while 0 is
	// free.
	zero.hold()
	kq = newQueue(t)
	lfd, path := unixListener(t)
	change(t, kq, lfd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 5)
	zero.free()
	var clients []int
	for i := range 2 {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, fd)
		clients = append(clients, fd)
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Give 0 back before the backlog is counted.
			closeNow(t, fd)
		}
		if ev := waitOne(t, kq); ev.Data != int64(i+1) {
			t.Fatalf("data = %d, want %d pending connections", ev.Data, i+1)
		}
	}
	if err := kqueue.Close(kq); err != nil {
		t.Fatal(err)
	}
	closeNow(t, clients[1])
	closeNow(t, lfd)
	zero.mustBeFree("closing a queue that counted a listener's backlog")
}

// waitFor collects events until one has come for each udata in want, and
// fails the test on any other.
func waitFor(t testing.TB, kq int, want ...uint64) {
	t.Helper()
	missing := map[uint64]bool{}
	for _, u := range want {
		missing[u] = true
	}
	for len(missing) > 0 {
		for _, ev := range waitAll(t, kq, 4) {
			if !missing[ev.Udata] {
				t.Fatalf("got %s, waiting for udata %v", describe(ev), missing)
			}
			delete(missing, ev.Udata)
		}
	}
}
