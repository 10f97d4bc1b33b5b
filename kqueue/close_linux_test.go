package kqueue

// White-box tests of the Linux emulation's own bookkeeping and of paths
// this kernel does not take by itself.

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Close frees everything the queue held: the epoll instance, the timerfds,
// the user events' eventfds, the EV_CLEAR instances, the wake eventfd and
// the sock_diag socket. Not parallel: every one of those is an anonymous
// inode, and all anonymous inodes share one inode number, so neither fstat
// nor anything else can tell a freed descriptor from a new one that a
// parallel test opened under the same number. While this test runs, no
// parallel test runs, so a freed number must simply be closed (EBADF).
func TestCloseFreesEverything(t *testing.T) {
	kq, err := Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: t.TempDir() + "/sock"}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	var changes [5]Kevent_t
	EV_SET(&changes[0], 1, EVFILT_TIMER, EV_ADD, 0, 1000, 0)
	EV_SET(&changes[1], fds[0], EVFILT_READ, EV_ADD|EV_CLEAR, 0, 0, 0)
	EV_SET(&changes[2], fds[0], EVFILT_WRITE, EV_ADD|EV_CLEAR, 0, 0, 0)
	EV_SET(&changes[3], 1, EVFILT_USER, EV_ADD, 0, 0, 0)
	EV_SET(&changes[4], lfd, EVFILT_READ, EV_ADD, 0, 0, 0)
	if _, err := Kevent(kq, changes[:], nil, nil); err != nil {
		t.Fatal(err)
	}
	q := lookup(kq)
	q.mu.Lock()
	// The sock_diag socket opens on the first count of the listener's
	// backlog.
	q.unixBacklog(q.file(lfd).ino)
	owned := []int{kq, q.idents[identKey{EVFILT_TIMER, 1}].dfd, q.idents[identKey{EVFILT_USER, 1}].dfd,
		q.clear[0], q.clear[1], q.wake, q.diag.fd}
	q.mu.Unlock()
	for _, fd := range owned {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			t.Fatalf("descriptor %d: %v", fd, err)
		}
	}

	if err := Close(kq); err != nil {
		t.Fatal(err)
	}
	for _, fd := range owned {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("descriptor %d still open after Close (%v)", fd, err)
		}
	}
	if lookup(kq) == q {
		t.Error("the queue's bookkeeping is still registered")
	}
	if q.files != nil || q.idents != nil || q.pending != nil {
		t.Error("the queue's bookkeeping was not freed")
	}
}

// A kernel without epoll_pwait2 (before Linux 5.11) waits through
// epoll_wait in whole milliseconds, rounded up: a positive timeout still
// sleeps and returns nothing, and an event that comes still ends the wait.
// Not parallel: it sets the package's record of what the kernel lacks.
func TestTimeoutWithoutPwait2(t *testing.T) {
	had := noPwait2.Load()
	noPwait2.Store(true)
	defer noPwait2.Store(had)
	kq, err := Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	defer Close(kq)
	events := make([]Kevent_t, 1)
	// A signal to the waiting thread is no event: wait again.
	wait := func(changes []Kevent_t, ts unix.Timespec) (int, error) {
		for {
			n, err := Kevent(kq, changes, events, &ts)
			if err != unix.EINTR {
				return n, err
			}
			changes = nil
		}
	}
	for _, ts := range []unix.Timespec{{Nsec: 1000}, {Nsec: 2e6}} {
		if n, err := wait(nil, ts); n != 0 || err != nil {
			t.Fatalf("timeout %v: Kevent = %d, %v; want 0, nil", ts, n, err)
		}
	}
	var c Kevent_t
	EV_SET(&c, 1, EVFILT_TIMER, EV_ADD|EV_ONESHOT, 0, 1, 7)
	if n, err := wait([]Kevent_t{c}, unix.NsecToTimespec(10e9)); n != 1 || err != nil || events[0].Udata != 7 {
		t.Fatalf("Kevent = %d, %v (%+v); want the timer", n, err, events[0])
	}
}
