package kqueue_test

// EVFILT_READ, as kevent(2) describes it: "Takes a descriptor as the
// identifier, and returns whenever there is data available to read."

import (
	"path/filepath"
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
// Every change that is not EV_DELETE also replaces udata: kqueue_register()
// in FreeBSD's kern_event.c stores kev->udata in the knote before it looks
// at EV_DISABLE or EV_ENABLE (which is why FreeBSD later added
// EV_KEEPUDATA), and XNU's kevent_register() does the same. So a change
// passes the knote's token every time, as stage 07 does.
func TestReadDisableEnable(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 4)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DISABLE, 0, 4)
	send(t, a, "x")
	noEvent(t, kq)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0, 4)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 4)
}

// Rule 6 itself: EV_DISABLE and EV_ENABLE with a new udata replace the old
// one (kqueue_register(): "kn->kn_kevent.udata = kev->udata" for any change
// but a delete).
func TestEnableReplacesUdata(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DISABLE, 0, 2)
	send(t, a, "x")
	noEvent(t, kq)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0, 3)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 3)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DISABLE, 0, 5)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0, 5)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 5)
}

// EV_ADD|EV_DISABLE adds the filter disabled.
func TestReadAddDisabled(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 4)
	send(t, a, "x")
	noEvent(t, kq)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0, 4)
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

// The listen backlog of an AF_UNIX socket, which Linux keeps elsewhere than
// TCP's (see sockdiag_linux.go): a real count here too.
func TestReadListenBacklogUnix(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, lfd)
	path := filepath.Join(t.TempDir(), "sock")
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 16); err != nil {
		t.Fatal(err)
	}
	change(t, kq, lfd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	noEvent(t, kq)
	for range 2 {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, fd)
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			t.Fatal(err)
		}
	}
	ev := waitOne(t, kq)
	expect(t, ev, lfd, kqueue.EVFILT_READ, 0, 0)
	if ev.Data != 2 {
		t.Fatalf("data = %d, want 2 pending connections", ev.Data)
	}
}

// EV_ONESHOT: "Causes the event to return only the first occurrence of the
// filter being triggered. After the user retrieves the event from the
// kqueue, it is deleted."
func TestReadOneshot(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 5)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, kqueue.EV_ONESHOT, 5)
	noEvent(t, kq)
	changeFails(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.ENOENT) // deleting a fired one-shot filter
	// It can be added again, and fires again.
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 6)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, kqueue.EV_ONESHOT, 6)
}

// EV_CLEAR: "After the event is retrieved by the user, its state is reset."
// Bytes left unread do not report again; new bytes do, and Data counts all
// that wait.
func TestReadClear(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 5)
	send(t, a, "ab")
	ev := waitOne(t, kq)
	expect(t, ev, b, kqueue.EVFILT_READ, kqueue.EV_CLEAR, 5)
	if ev.Data != 2 {
		t.Fatalf("data = %d, want 2", ev.Data)
	}
	noEvent(t, kq)
	send(t, a, "c")
	if ev := waitOne(t, kq); ev.Data != 3 {
		t.Fatalf("data = %d, want the 3 bytes waiting", ev.Data)
	}
	noEvent(t, kq)
}

// An EV_CLEAR event that fired but found no room waits in the queue, and
// the filter is asked again before it is handed out: kqueue_scan() in
// kern_event.c calls f_event (filt_soread()) for a queued knote and drops
// it if that says there is nothing now. Three sockets are ready, a one-shot
// level-triggered filter first, then two EV_CLEAR ones, and the event list
// has room for two: one EV_CLEAR event is left in the queue. Once both of
// those sockets have been read dry, it has nothing left to report.
func TestClearLeftoverAskedAgain(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	ax, bx := socketPair(t)
	a1, b1 := socketPair(t)
	a2, b2 := socketPair(t)
	send(t, ax, "x")
	change(t, kq, bx, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 9)
	change(t, kq, b1, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 1)
	change(t, kq, b2, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 2)
	send(t, a1, "y")
	send(t, a2, "z")
	evs := waitAll(t, kq, 2)
	if len(evs) != 2 || evs[0].Udata != 9 || (evs[1].Udata != 1 && evs[1].Udata != 2) {
		t.Fatalf("got %s; want the one-shot filter, then one of the EV_CLEAR ones", describeAll(evs))
	}
	recv(t, b1, 16)
	recv(t, b2, 16)
	noEvent(t, kq)
}

// A level-triggered and an EV_CLEAR filter on the same descriptor each keep
// their own behaviour.
func TestClearAndLevelOnOneFd(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 2)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, kqueue.EV_CLEAR, 2)
	noEvent(t, kq)
	send(t, a, "x")
	for range 2 {
		expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 1)
	}
}

// Two queues watching one descriptor both see its events, each with the
// udata it registered.
func TestTwoQueuesOneFd(t *testing.T) {
	t.Parallel()
	kq1, kq2 := newQueue(t), newQueue(t)
	a, b := socketPair(t)
	change(t, kq1, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq2, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 2)
	send(t, a, "x")
	expect(t, waitOne(t, kq1), b, kqueue.EVFILT_READ, 0, 1)
	expect(t, waitOne(t, kq2), b, kqueue.EVFILT_READ, 0, 2)
	// Deleting from one queue leaves the other alone.
	change(t, kq1, b, kqueue.EVFILT_READ, kqueue.EV_DELETE, 0, 0)
	noEvent(t, kq1)
	expect(t, waitOne(t, kq2), b, kqueue.EVFILT_READ, 0, 2)
}

// "If there is a pending error on the socket, it is returned in fflags":
// a peer that resets the connection.
func TestReadSocketError(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	client, server := tcpPair(t)
	change(t, kq, server, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	// SO_LINGER with a zero timeout makes close send a reset.
	if err := unix.SetsockoptLinger(client, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatal(err)
	}
	closeNow(t, client)
	ev := waitOne(t, kq)
	expect(t, ev, server, kqueue.EVFILT_READ, kqueue.EV_EOF, 0)
	if ev.Fflags != uint32(unix.ECONNRESET) {
		t.Fatalf("fflags = %d, want ECONNRESET (%d)", ev.Fflags, unix.ECONNRESET)
	}
}

// A descriptor closed without EV_DELETE takes its filters with it ("Calling
// close() on a file descriptor will remove any kevents that reference the
// descriptor"). When its number is reused, nothing of the old filters
// reaches the caller: no event, no old udata. dup2 reuses the number
// atomically, so no test running in parallel can take it in between.
func TestFdReuseNoStaleEvents(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	_, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 2)

	c, d := socketPair(t)
	if err := unix.Dup2(c, b); err != nil { // closes the old b
		t.Fatal(err)
	}
	closeNow(t, c) // b is now the only descriptor of c's socket
	send(t, d, "x")
	noEvent(t, kq)
	changeFails(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ENABLE, unix.ENOENT) // enabling the old write filter

	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 3)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 3)
	changeFails(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, unix.ENOENT) // deleting the old write filter
}

// Many ready descriptors and a short eventlist: every one is reported
// within a few calls, none twice in one call.
func TestManyReadyShortList(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	const count = 40
	want := map[uint64]bool{}
	for range count {
		a, b := socketPair(t)
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, uint64(b))
		send(t, a, "x")
		want[uint64(b)] = true
	}
	seen := map[uint64]bool{}
	for call := 0; call < 3*count/7 && len(seen) < count; call++ {
		evs := waitAll(t, kq, 7)
		inCall := map[uint64]bool{}
		for _, ev := range evs {
			if ev.Udata != ev.Ident || !want[ev.Ident] || inCall[ev.Ident] {
				t.Fatalf("call %d: %v", call, describeAll(evs))
			}
			inCall[ev.Ident], seen[ev.Ident] = true, true
		}
	}
	if len(seen) != count {
		t.Fatalf("saw %d of %d ready descriptors", len(seen), count)
	}
}
