package kqueue_test

// EVFILT_READ, as kevent(2) describes it: "Takes a descriptor as the
// identifier, and returns whenever there is data available to read."

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// Data on a socket is the number of bytes in the receive buffer, and the
// filter is level-triggered: it reports again until the bytes are read.
func TestReadSocketData(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 7)
	noEvent(t, kq)

	send(t, a, "hello")
	ev := waitOne(t, kq)
	expect(t, ev, b, kqueue.EVFILT_READ, 0, 7)
	if ev.Data != 5 {
		t.Fatalf("data = %d, want 5", ev.Data)
	}
	ev = waitOne(t, kq)
	expect(t, ev, b, kqueue.EVFILT_READ, 0, 7)

	if got := recv(t, b, 3); got != "hel" {
		t.Fatalf("read %q", got)
	}
	if ev := waitOne(t, kq); ev.Data != 2 {
		t.Fatalf("after reading 3 of 5: data = %d, want 2", ev.Data)
	}
	recv(t, b, 2)
	noEvent(t, kq)
}

// The same, on a pipe: Data counts the bytes in the pipe.
func TestReadPipeData(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	r, w := pipe(t)
	change(t, kq, r, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	noEvent(t, kq)
	send(t, w, "abc")
	ev := waitOne(t, kq)
	expect(t, ev, r, kqueue.EVFILT_READ, 0, 1)
	if ev.Data != 3 {
		t.Fatalf("data = %d, want 3", ev.Data)
	}
}

// When the last writer of a pipe closes, the read filter reports EV_EOF.
func TestReadPipeEOF(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	r, w := pipe(t)
	change(t, kq, r, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	send(t, w, "xy")
	closeNow(t, w)
	ev := waitOne(t, kq)
	expect(t, ev, r, kqueue.EVFILT_READ, kqueue.EV_EOF, 0)
	if ev.Data != 2 {
		t.Fatalf("data = %d, want the 2 bytes still in the pipe", ev.Data)
	}
}

// "If the read direction of the socket has shutdown, then the filter also
// sets EV_EOF in flags": the peer shut down writing, and EV_EOF comes with
// the bytes still to be read in Data, until they are drained.
func TestReadEOFWithBufferedData(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 3)
	send(t, a, "last words")
	if err := unix.Shutdown(a, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	ev := waitOne(t, kq)
	expect(t, ev, b, kqueue.EVFILT_READ, kqueue.EV_EOF, 3)
	if ev.Data != 10 {
		t.Fatalf("data = %d, want 10", ev.Data)
	}
	recv(t, b, 10)
	ev = waitOne(t, kq)
	expect(t, ev, b, kqueue.EVFILT_READ, kqueue.EV_EOF, 3)
	if ev.Data != 0 {
		t.Fatalf("drained: data = %d, want 0", ev.Data)
	}
}

// A peer that closes its socket is seen as EV_EOF, over TCP too.
func TestReadPeerCloseTCP(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	client, server := tcpPair(t)
	change(t, kq, server, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	noEvent(t, kq)
	closeNow(t, client)
	ev := waitOne(t, kq)
	expect(t, ev, server, kqueue.EVFILT_READ, kqueue.EV_EOF, 0)
	if ev.Fflags != 0 {
		t.Fatalf("fflags = %d after an orderly close, want 0", ev.Fflags)
	}
}

// On a listening socket Data is the number of connections waiting to be
// accepted: a real count, not just "at least one".
func TestReadListenBacklog(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	lfd, addr := tcpListener(t)
	change(t, kq, lfd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 9)
	noEvent(t, kq)
	for range 3 {
		dial(t, addr)
	}
	ev := waitOne(t, kq)
	expect(t, ev, lfd, kqueue.EVFILT_READ, 0, 9)
	if ev.Data != 3 {
		t.Fatalf("data = %d, want 3 pending connections", ev.Data)
	}
	fd, _, err := unix.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	if ev := waitOne(t, kq); ev.Data != 2 {
		t.Fatalf("after one accept: data = %d, want 2", ev.Data)
	}
}

// EV_DISABLE keeps the filter but stops its events; EV_ENABLE brings them
// back, and a level-triggered condition that still holds reports at once.
func TestReadDisableEnable(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 4)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DISABLE, 0, 0)
	send(t, a, "x")
	noEvent(t, kq)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0, 0)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 4)
}

// EV_ADD|EV_DISABLE adds the filter disabled.
func TestReadAddDisabled(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 4)
	send(t, a, "x")
	noEvent(t, kq)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0, 0)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 4)
}

// EV_DELETE removes the filter: no more events.
func TestReadDelete(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	send(t, a, "x")
	waitOne(t, kq)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DELETE, 0, 0)
	noEvent(t, kq)
	send(t, a, "y")
	noEvent(t, kq)
}

// "Re-adding an existing event will modify the parameters of the original
// event, and not result in a duplicate entry": the new udata replaces the
// old one, and there is still one event.
func TestReadModifyUdata(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 2)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 2)
}

// Udata comes back unchanged, all 64 bits of it.
func TestUdataPreserved(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	const token = 0xfeedfacecafebeef
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, token)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, token)
}
