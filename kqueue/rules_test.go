package kqueue_test

// Rules of a real kqueue that an emulation gets wrong easily, one test
// each. Each cites where FreeBSD (and XNU, where macOS differs) says so.

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// Several waiters: a goroutine asleep in kevent wakes when an event becomes
// deliverable, even one that another caller had no room for. kqueue_scan()
// in kern_event.c sleeps until kq_count is nonzero, and knote_enqueue()
// wakes it (kqueue_wakeup()); an event left in the queue by a short event
// list stays counted, and the next scan returns it.
func TestWaiterWokenForLeftoverEvent(t *testing.T) {
	t.Parallel()
	// Whichever of this call and the waiter, woken by the close, asks
	// first gets the first event; in some of the rounds it is this call.
	for round := range 8 {
		kq := newQueue(t)
		a, b := socketPair(t)
		// Neither filter can fire yet: nothing to read, and no room to
		// write. The peer's close will fire both at once.
		if err := unix.SetNonblock(b, true); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := unix.Write(b, make([]byte, 4096)); err == unix.EAGAIN {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
		change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
		type result struct {
			evs []kqueue.Kevent_t
			err error
		}
		ready, done := make(chan bool), make(chan result)
		go func() {
			evs := make([]kqueue.Kevent_t, 4)
			ready <- true
			n, err := kevent(kq, evs, &mustCome)
			done <- result{evs[:max(n, 0)], err}
		}()
		<-ready
		asleep(t, kq, 1)
		// This call takes one of the two events and leaves the other
		// queued; if the waiter got there first, it has both.
		closeNow(t, a)
		mine := make([]kqueue.Kevent_t, 1)
		n, err := kevent(kq, mine, &unix.Timespec{})
		if err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || len(r.evs) == 0 {
			t.Fatalf("round %d: this call got %s; the waiter got %v, %v; want the event left for it", round, describeAll(mine[:n]), describeAll(r.evs), r.err)
		}
		// Both filters are level-triggered, so the waiter may see the one
		// this call got as well; each filter must have come to someone.
		seen := map[uint64]bool{}
		for _, ev := range append(mine[:n], r.evs...) {
			seen[ev.Udata] = true
		}
		if !seen[1] || !seen[2] || len(seen) != 2 {
			t.Fatalf("round %d: this call got %s, the waiter %s; want both filters", round, describeAll(mine[:n]), describeAll(r.evs))
		}
	}
}

// No busy wait: with nothing to report, kevent sleeps. Closing a
// descriptor removes its knotes ("Calling close() on a file descriptor will
// remove any kevents that reference the descriptor", kevent(2)), even when
// a dup keeps the file open (knotes hang off the descriptor table slot:
// knote_fdclose() in kern_event.c). Then the filter is deleted (EBADF, it
// is gone), or the number reused for another file. Not parallel: the CPU
// time is the whole process's.
func TestNoBusyWaitAfterDupClose(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		kq := newQueue(t)
		a, b := socketPair(t)
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
		dup, err := unix.Dup(b)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, dup)
		if reuse {
			c, _ := socketPair(t)
			if err := unix.Dup2(c, b); err != nil { // closes the old b
				t.Fatal(err)
			}
			change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 2)
		} else {
			closeNow(t, b)
			changeFails(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.EBADF) // the number is not open
		}
		send(t, a, "x") // the file behind dup is readable now
		wait := unix.NsecToTimespec(int64(300 * time.Millisecond))
		before := cpuTime(t)
		n, err := kevent(kq, make([]kqueue.Kevent_t, 4), &wait)
		used := cpuTime(t) - before
		if n != 0 || err != nil {
			t.Fatalf("reuse=%v: Kevent = %d, %v; want nothing", reuse, n, err)
		}
		if used > 100*time.Millisecond {
			t.Fatalf("reuse=%v: a 300ms wait with nothing to report used %v of CPU", reuse, used)
		}
	}
}

// Same inode, new file: closing a descriptor removes its knotes whatever
// opens under its number next, even the same FIFO opened again (same device
// and inode). knote_fdclose() drops them at close; kqueue_register() then
// finds no knote and creates a new one.
func TestFIFOReopenedIsNewFile(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(mode int) int {
		fd, err := unix.Open(path, mode|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, fd)
		return fd
	}
	r := open(unix.O_RDONLY)
	w := open(unix.O_WRONLY)
	change(t, kq, r, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	send(t, w, "x")
	expect(t, waitOne(t, kq), r, kqueue.EVFILT_READ, 0, 1)
	again := open(unix.O_RDONLY)
	if err := unix.Dup2(again, r); err != nil { // closes the first reader
		t.Fatal(err)
	}
	noEvent(t, kq)
	change(t, kq, r, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 2) // a new knote, not the old one's

	expect(t, waitOne(t, kq), r, kqueue.EVFILT_READ, 0, 2) // the byte is still in the FIFO
}

// A stream socket that is neither connected nor listening reports nothing:
// filt_soread() in uipc_socket.c finds no data and no end of file, and
// filt_sowrite() returns 0 for a socket that "is not connected but needs a
// connection" (PR_CONNREQUIRED). Once connected, it is writable.
func TestUnconnectedSocketSilent(t *testing.T) {
	t.Parallel()
	_, addr := tcpListener(t)
	_, path := unixListener(t)
	for _, tc := range []struct {
		domain int
		addr   unix.Sockaddr
	}{{unix.AF_INET, addr}, {unix.AF_UNIX, &unix.SockaddrUnix{Name: path}}} {
		kq := newQueue(t)
		fd, err := unix.Socket(tc.domain, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, fd)
		change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
		change(t, kq, fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
		noEvent(t, kq)
		if err := unix.Connect(fd, tc.addr); err != nil {
			t.Fatal(err)
		}
		ev := waitOne(t, kq)
		expect(t, ev, fd, kqueue.EVFILT_WRITE, 0, 2)
		if ev.Data <= 0 {
			t.Fatalf("domain %d: %s, want room in data", tc.domain, describe(ev))
		}
	}
}

// A socket registered before listen: once it listens, data counts the
// connections waiting (filt_soread() looks at the socket's state on each
// call, SOLISTENING, and reports sol_qlen), for TCP and AF_UNIX alike.
func TestListenAfterAdd(t *testing.T) {
	t.Parallel()
	for _, domain := range []int{unix.AF_INET, unix.AF_UNIX} {
		kq := newQueue(t)
		fd, err := unix.Socket(domain, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, fd)
		var addr unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
		if domain == unix.AF_UNIX {
			addr = &unix.SockaddrUnix{Name: filepath.Join(t.TempDir(), "sock")}
		}
		if err := unix.Bind(fd, addr); err != nil {
			t.Fatal(err)
		}
		change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 9)
		noEvent(t, kq)
		if err := unix.Listen(fd, 16); err != nil {
			t.Fatal(err)
		}
		if addr, err = unix.Getsockname(fd); err != nil {
			t.Fatal(err)
		}
		noEvent(t, kq)
		for range 3 {
			c, err := unix.Socket(domain, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			closeLater(t, c)
			if err := unix.Connect(c, addr); err != nil {
				t.Fatal(err)
			}
		}
		ev := waitOne(t, kq)
		expect(t, ev, fd, kqueue.EVFILT_READ, 0, 9)
		if ev.Data != 3 {
			t.Fatalf("domain %d: data = %d, want 3 pending connections", domain, ev.Data)
		}
	}
}

// NOTE_LOWAT: the read filter holds its event until data bytes wait
// (filt_soread(): "if (kn->kn_sfflags & NOTE_LOWAT) ... kn->kn_data >=
// kn->kn_sdata"); without it, the socket's own SO_RCVLOWAT is the mark.
func TestReadLowWaterMark(t *testing.T) {
	t.Parallel()
	for _, viaSockopt := range []bool{false, true} {
		kq := newQueue(t)
		a, b := socketPair(t)
		if viaSockopt {
			if err := unix.SetsockoptInt(b, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 10); err != nil {
				t.Fatal(err)
			}
			change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
		} else if err := changeFflags(kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, kqueue.NOTE_LOWAT, 10, 1); err != nil {
			t.Fatal(err)
		}
		send(t, a, "12345")
		noEvent(t, kq)
		send(t, a, "67890")
		ev := waitOne(t, kq)
		expect(t, ev, b, kqueue.EVFILT_READ, 0, 1)
		if ev.Data != 10 {
			t.Fatalf("SO_RCVLOWAT=%v: data = %d, want 10", viaSockopt, ev.Data)
		}
		expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 1) // level-triggered
		recv(t, b, 2)
		noEvent(t, kq) // 8 bytes, under the mark
	}
}

// A kqueue in a kqueue: EVFILT_READ on a kqueue descriptor reports the
// number of events waiting in it (filt_kqueue(): kn_data = kq->kq_count;
// XNU's filt_kqprocess() reports kq_count too).
func TestKqueueInKqueue(t *testing.T) {
	t.Parallel()
	inner, outer := newQueue(t), newQueue(t)
	for i := range 2 {
		a, b := socketPair(t)
		send(t, a, "x")
		change(t, inner, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, uint64(i))
	}
	change(t, outer, inner, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 7)
	ev := waitOne(t, outer)
	expect(t, ev, inner, kqueue.EVFILT_READ, 0, 7)
	if ev.Data != 2 {
		t.Fatalf("data = %d, want the 2 events waiting in the inner queue", ev.Data)
	}
}

// EV_ADD|EV_DELETE in one change, for a knote that does not exist yet:
// FreeBSD's kqueue_register() creates it (the EV_DELETE branch is reached
// only for a knote it found). XNU's kevent_register() clears EV_ADD when
// EV_DELETE is set ("delete and disable overrule"), so macOS answers
// ENOENT.
func TestAddDeleteNewKnote(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	err := changeErrUdata(kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_DELETE, 1)
	if runtime.GOOS == "darwin" {
		if !isErrno(err, unix.ENOENT) {
			t.Fatalf("EV_ADD|EV_DELETE on a new knote: %v, want ENOENT on macOS", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 1)
	// On the existing knote, EV_DELETE wins.
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_DELETE, 0, 1)
	noEvent(t, kq)
}

// The generation check: a descriptor dup'ed, its number then reused with
// dup2 for another file and registered again. The first file is still open
// (through the dup) and becomes readable; its knote went with the close
// (knote_fdclose()), so nothing is reported, and certainly not an event
// with the new knote's udata.
func TestReusedNumberNoFalseEvent(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	dup, err := unix.Dup(b)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, dup)
	c, d := socketPair(t)
	if err := unix.Dup2(c, b); err != nil { // b now names c's socket
		t.Fatal(err)
	}
	// Another knote in between, of another kind.
	change(t, kq, 1, kqueue.EVFILT_TIMER, kqueue.EV_ADD|kqueue.EV_DISABLE, 1000, 3)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 2)
	send(t, a, "x") // to the first file, still open through dup
	noEvent(t, kq)
	send(t, d, "yz") // to the file b names now
	ev := waitOne(t, kq)
	expect(t, ev, b, kqueue.EVFILT_READ, 0, 2)
	if ev.Data != 2 {
		t.Fatalf("data = %d, want 2", ev.Data)
	}
}

// unixListener returns a listening AF_UNIX stream socket and its path.
func unixListener(t testing.TB) (fd int, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	path = filepath.Join(t.TempDir(), "sock")
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	return fd, path
}

// A socket that was connected and is now shut down both ways (we shut down
// writing, then the peer closed) is not an unconnected one: filt_soread() in
// uipc_socket.c reports EV_EOF for it, since SBS_CANTRCVMORE is set, and
// filt_sowrite() does the same through SBS_CANTSENDMORE. Linux answers
// getpeername with ENOTCONN for it all the same, as for a socket that never
// connected.
func TestDisconnectedSocketReportsEOF(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	if err := unix.Shutdown(server, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, client, 16); got != "" {
		t.Fatalf("client read %q, want end of file", got)
	}
	closeNow(t, client)
	// Wait for the peer's FIN to arrive: the server's read returns 0 then.
	var buf [1]byte
	for {
		n, err := unix.Read(server, buf[:])
		if n == 0 && err == nil {
			break
		}
		if err != nil && err != unix.EAGAIN {
			break
		}
	}
	kq := newQueue(t)
	change(t, kq, server, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	ev := waitOne(t, kq)
	expect(t, ev, server, kqueue.EVFILT_READ, kqueue.EV_EOF, 1)
	// The write filter alone, in a queue of its own, says so too.
	kq = newQueue(t)
	change(t, kq, server, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
	expect(t, waitOne(t, kq), server, kqueue.EVFILT_WRITE, kqueue.EV_EOF, 2)
}

// Each knote keeps its own state (kn_status in kern_event.c): adding,
// changing or firing the write filter of a descriptor leaves its EV_CLEAR
// read filter alone. That one has reported the byte that waits, and reports
// again only when more data comes.
func TestOtherFilterLeavesClearAlone(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD|kqueue.EV_CLEAR, 0, 1)
	send(t, a, "x")
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, kqueue.EV_CLEAR, 1)
	noEvent(t, kq)
	// A one-shot write filter: added, fires once, is gone.
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_ONESHOT, 0, 2)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, kqueue.EV_ONESHOT, 2)
	noEvent(t, kq)
	// One added disabled, then enabled (it fires, and goes on firing:
	// it is level-triggered), then disabled again.
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD|kqueue.EV_DISABLE, 0, 3)
	noEvent(t, kq)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ENABLE, 0, 3)
	for range 2 {
		expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, 0, 3)
	}
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_DISABLE, 0, 3)
	noEvent(t, kq)
	send(t, a, "y")
	if ev := waitOne(t, kq); ev.Filter != kqueue.EVFILT_READ || ev.Data != 2 {
		t.Fatalf("got %s, want the read filter with the 2 bytes", describe(ev))
	}
}

// SO_RCVLOWAT set before the socket connects is the read filter's mark once
// it has (filt_soread() looks at so_rcv.sb_lowat on each call).
func TestSocketMarkSetBeforeConnect(t *testing.T) {
	t.Parallel()
	lfd, path := unixListener(t)
	kq := newQueue(t)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 10); err != nil {
		t.Fatal(err)
	}
	change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	noEvent(t, kq)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	server, _, err := unix.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, server)
	send(t, server, "12345")
	noEvent(t, kq)
	send(t, server, "67890")
	ev := waitOne(t, kq)
	expect(t, ev, fd, kqueue.EVFILT_READ, 0, 1)
	if ev.Data != 10 {
		t.Fatalf("data = %d, want 10", ev.Data)
	}
}

// A change that lowers NOTE_LOWAT below the bytes already waiting makes the
// filter fire at once, and one that raises it above them silences it:
// kqueue_register() stores the new fflags and data and calls the filter
// again before it returns.
func TestChangedMarkTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	if err := changeFflags(kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, kqueue.NOTE_LOWAT, 10, 1); err != nil {
		t.Fatal(err)
	}
	send(t, a, "12345")
	noEvent(t, kq)
	if err := changeFflags(kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, kqueue.NOTE_LOWAT, 3, 1); err != nil {
		t.Fatal(err)
	}
	ev := waitOne(t, kq)
	expect(t, ev, b, kqueue.EVFILT_READ, 0, 1)
	if ev.Data != 5 {
		t.Fatalf("data = %d, want 5", ev.Data)
	}
	if err := changeFflags(kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, kqueue.NOTE_LOWAT, 8, 1); err != nil {
		t.Fatal(err)
	}
	noEvent(t, kq)
}

// NOTE_LOWAT is a socket's: FreeBSD's filt_piperead() reports a pipe as
// soon as one byte waits, whatever the mark. (XNU's filt_piperead_common()
// honours the mark, so on macOS the byte is not enough.)
func TestPipeIgnoresMark(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	r, w := pipe(t)
	if err := changeFflags(kq, r, kqueue.EVFILT_READ, kqueue.EV_ADD, kqueue.NOTE_LOWAT, 10, 1); err != nil {
		t.Fatal(err)
	}
	send(t, w, "x")
	if runtime.GOOS == "darwin" {
		noEvent(t, kq)
		return
	}
	ev := waitOne(t, kq)
	expect(t, ev, r, kqueue.EVFILT_READ, 0, 1)
	if ev.Data != 1 {
		t.Fatalf("data = %d, want 1", ev.Data)
	}
}

// NOTE_LOWAT on the write filter: it fires only while that much room is
// free (filt_sowrite(): "kn->kn_data >= kn->kn_sdata"), and at end of file
// whatever the room.
func TestWriteLowWaterMark(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	a, b := socketPair(t)
	change(t, kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 1)
	room := waitOne(t, kq).Data
	if err := changeFflags(kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, kqueue.NOTE_LOWAT, room+1, 1); err != nil {
		t.Fatal(err)
	}
	noEvent(t, kq)
	if err := changeFflags(kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, kqueue.NOTE_LOWAT, room, 1); err != nil {
		t.Fatal(err)
	}
	if ev := waitOne(t, kq); ev.Data != room {
		t.Fatalf("mark %d: got %s, want data %d", room, describe(ev), room)
	}
	if err := changeFflags(kq, b, kqueue.EVFILT_WRITE, kqueue.EV_ADD, kqueue.NOTE_LOWAT, room+1, 1); err != nil {
		t.Fatal(err)
	}
	noEvent(t, kq)
	closeNow(t, a)
	expect(t, waitOne(t, kq), b, kqueue.EVFILT_WRITE, kqueue.EV_EOF, 1)
}

// udpSocket returns a UDP socket bound to a free loopback port, and its
// address.
func udpSocket(t testing.TB) (int, unix.Sockaddr) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	addr, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, addr
}

// A datagram socket needs no connection: unconnected, it reports each
// datagram that comes (filt_soread() counts the bytes in so_rcv).
func TestUnconnectedDatagramSocket(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	fd, addr := udpSocket(t)
	change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	noEvent(t, kq)
	peer, _ := udpSocket(t)
	if err := unix.Sendto(peer, []byte("hello"), 0, addr); err != nil {
		t.Fatal(err)
	}
	ev := waitOne(t, kq)
	expect(t, ev, fd, kqueue.EVFILT_READ, 0, 1)
	if ev.Data < 5 {
		t.Fatalf("data = %d, want the datagram's 5 bytes", ev.Data)
	}
}

// A datagram socket's pending error makes its read filter fire with nothing
// to read: filt_soread() returns true when so_error is set ("temporary udp
// error"). The error here is the refusal of a datagram sent to a port
// nobody listens on.
func TestDatagramErrorFiresRead(t *testing.T) {
	t.Parallel()
	kq := newQueue(t)
	gone, addr := udpSocket(t)
	closeNow(t, gone) // its port is free now: datagrams to it are refused
	fd, _ := udpSocket(t)
	if err := unix.Connect(fd, addr); err != nil {
		t.Fatal(err)
	}
	change(t, kq, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	send(t, fd, "x")
	ev := waitOne(t, kq)
	if ev.Ident != uint64(fd) || ev.Filter != kqueue.EVFILT_READ || ev.Udata != 1 || ev.Data != 0 {
		t.Fatalf("got %s, want the read filter with data 0", describe(ev))
	}
}

// A kqueue watched by another reports only the events waiting in it
// (filt_kqueue(): kq_count). A knote that went with its descriptor's close
// is not one of them, even while the file stays open through a dup and
// becomes readable. Not parallel, for the same reason as
// TestClosedFdChangesFail.
func TestKqueueInKqueueIgnoresClosed(t *testing.T) {
	inner, outer := newQueue(t), newQueue(t)
	a, b := socketPair(t)
	change(t, inner, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	dup, err := unix.Dup(b)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, dup)
	closeNow(t, b)
	changeFails(t, inner, b, kqueue.EVFILT_READ, kqueue.EV_DELETE, unix.EBADF) // the number is not open
	send(t, a, "x")
	change(t, outer, inner, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 7)
	noEvent(t, outer)
}

// A queue's knotes are its own: deleting one socket's filters does not
// change how the queue treats a socket that connects later (stage 04's
// listener and its clients in one queue, say).
func TestConnectAfterOtherSocketsDeleted(t *testing.T) {
	t.Parallel()
	_, path := unixListener(t)
	unconnected := func() int {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, fd)
		return fd
	}
	for _, deleted := range []string{"connected", "unconnected"} {
		kq := newQueue(t)
		other, _ := socketPair(t)
		if deleted == "unconnected" {
			other = unconnected()
		}
		change(t, kq, other, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 1)
		change(t, kq, other, kqueue.EVFILT_WRITE, kqueue.EV_DELETE, 0, 0)
		fd := unconnected()
		change(t, kq, fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 2)
		noEvent(t, kq)
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			t.Fatal(err)
		}
		expect(t, waitOne(t, kq), fd, kqueue.EVFILT_WRITE, 0, 2)
	}
}

// A connection refused: the connecting socket's write filter reports
// EV_EOF, with the error in fflags (soisdisconnected() marks the send side
// SBS_CANTSENDMORE, and filt_sowrite() returns so_error in kn_fflags).
func TestConnectRefused(t *testing.T) {
	t.Parallel()
	lfd, addr := tcpListener(t)
	closeNow(t, lfd) // its port is free now: connections to it are refused
	kq := newQueue(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	change(t, kq, fd, kqueue.EVFILT_WRITE, kqueue.EV_ADD, 0, 1)
	err = unix.Connect(fd, addr)
	if err != unix.EINPROGRESS && err != unix.ECONNREFUSED {
		t.Fatalf("connect: %v", err)
	}
	ev := waitOne(t, kq)
	expect(t, ev, fd, kqueue.EVFILT_WRITE, kqueue.EV_EOF, 1)
	// A connect that failed at once has reported the error itself.
	if err == unix.EINPROGRESS && ev.Fflags != uint32(unix.ECONNREFUSED) {
		t.Fatalf("fflags = %d, want ECONNREFUSED", ev.Fflags)
	}
}

// A number reused for another file, and the new file's knote changed again
// and again: each change reaches the new knote, never the old one (which
// went with the close, though a dup keeps its file open). Several rounds,
// each with new files.
func TestReusedNumberChangedAgain(t *testing.T) {
	t.Parallel()
	for range 8 {
		kq := newQueue(t)
		_, b := socketPair(t)
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
		dup, err := unix.Dup(b)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, dup)
		c, d := socketPair(t)
		if err := unix.Dup2(c, b); err != nil { // b now names c's socket
			t.Fatal(err)
		}
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 2)
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_DISABLE, 0, 2)
		send(t, d, "x")
		noEvent(t, kq)
		change(t, kq, b, kqueue.EVFILT_READ, kqueue.EV_ENABLE, 0, 3)
		expect(t, waitOne(t, kq), b, kqueue.EVFILT_READ, 0, 3)
	}
}
