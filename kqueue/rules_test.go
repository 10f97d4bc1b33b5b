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
	// Usually the waiter is asleep by now. This call takes one of the
	// two events and leaves the other queued; if the waiter got there
	// first, it has both.
	closeNow(t, a)
	mine := make([]kqueue.Kevent_t, 1)
	n, err := kevent(kq, mine, &unix.Timespec{})
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.evs) == 0 {
		t.Fatalf("this call got %s; the waiter got %v, %v; want the event left for it", describeAll(mine[:n]), describeAll(r.evs), r.err)
	}
	// Both filters are level-triggered, so the waiter may see the one
	// this call got as well; each filter must have come to someone.
	seen := map[uint64]bool{}
	for _, ev := range append(mine[:n], r.evs...) {
		seen[ev.Udata] = true
	}
	if !seen[1] || !seen[2] || len(seen) != 2 {
		t.Fatalf("this call got %s, the waiter %s; want both filters", describeAll(mine[:n]), describeAll(r.evs))
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
}
