package kqueue_test

// EVFILT_WRITE: "Takes a descriptor as the identifier, and returns whenever
// it is possible to write to the descriptor. For sockets, pipes and FIFOs,
// data will contain the amount of space remaining in the write buffer."

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// A fresh socket can be written: the event comes at once, with room in
// Data, and keeps coming while there is room (level-triggered).
func TestWriteAdd(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 8)
	for range 2 {
		ev := waitOne(t, kq)
		expect(t, ev, b, kqueue.EVFILT_WRITE, 0, 8)
		if ev.Data <= 0 {
			t.Fatalf("data = %d, want free space", ev.Data)
		}
	}
}

// Data shrinks as bytes wait in the buffer for the peer to read them.
func TestWriteDataShrinks(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 0)
	before := waitOne(t, kq).Data
	send(t, b, "some bytes the peer has not read yet")
	if after := waitOne(t, kq).Data; after >= before {
		t.Fatalf("data = %d after writing, was %d: want less", after, before)
	}
}

// On a pipe, Data is exactly the free space in the pipe.
func TestWritePipeData(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, w := pipe(t)
	change(t, kq, w, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 0)
	before := waitOne(t, kq).Data
	send(t, w, "0123456789")
	if after := waitOne(t, kq).Data; after != before-10 {
		t.Fatalf("data = %d after writing 10 bytes, was %d", after, before)
	}
}

// With the send buffer full there is nothing to report; once the peer
// reads, the event comes.
func TestWriteFullBuffer(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	if err := unix.SetNonblock(b, true); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	total := 0
	for {
		n, err := unix.Write(b, chunk)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 0)
	noEvent(t, kq)
	for total > 0 {
		total -= len(recv(t, a, len(chunk)))
	}
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, 0, 0)
}

// The peer closing its end is EV_EOF on the write filter.
func TestWriteEOFOnPeerClose(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, 0, 2)
	closeNow(t, a)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, kqueue.EV_EOF, 2)
}

// A pipe whose read end is closed: EV_EOF on the write end, with data 0
// (filt_pipewrite() in sys_pipe.c: "kn->kn_data = 0; kn->kn_flags |=
// EV_EOF" when the reader is gone; XNU's filt_pipewrite() the same).
func TestWritePipeEOF(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	r, w := pipe(t)
	change(t, kq, w, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 0)
	closeNow(t, r)
	ev := waitOne(t, kq)
	expect(t, ev, w, kqueue.EVFILT_WRITE, kqueue.EV_EOF, 0)
	if ev.Data != 0 {
		t.Fatalf("data = %d with no reader, want 0", ev.Data)
	}
}

// A listening socket is never writable, even with connections waiting.
func TestWriteListeningSocket(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	lfd, addr := tcpListener(t)
	change(t, kq, lfd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 0)
	change(t, kq, lfd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	dial(t, addr)
	// The read event proves the connection has arrived; the write
	// filter stays silent.
	expect(t, waitOne(t, kq), lfd, kqueue.EVFILT_READ, 0, 0)
}

// EV_DELETE on the write filter: no more write events, and the read filter
// on the same descriptor is untouched.
func TestWriteDeleteKeepsRead(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, 0, 2)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, 0, 0)
	noEvent(t, kq)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 1)
}

// Disabling the read filter leaves the write filter on the same descriptor
// reporting.
func TestDisableReadKeepsWrite(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 1)
	send(t, a, "x")
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, 0, 2)
}

// EV_ONESHOT on the write filter: one event, then the filter is gone.
func TestWriteOneshot(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 6)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, kqueue.EV_ONESHOT, 6)
	noEvent(t, kq)
	changeFails(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, unix.ENOENT) // deleting a fired one-shot filter
}

// EV_CLEAR on the write filter: reported once, not again while nothing
// changes.
func TestWriteClear(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 6)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, kqueue.EV_CLEAR, 6)
	noEvent(t, kq)
}
