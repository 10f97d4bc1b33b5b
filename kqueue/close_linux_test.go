package kqueue

// White-box tests of the Linux emulation's own bookkeeping and of paths
// this kernel does not take by itself.

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

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
	pretend(t, &noPwait2, true)
	kq := openQueue(t)
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
		start := time.Now()
		if n, err := wait(nil, ts); n != 0 || err != nil {
			t.Fatalf("timeout %v: Kevent = %d, %v; want 0, nil", ts, n, err)
		}
		if waited := time.Since(start); waited < time.Duration(ts.Nano()) {
			t.Fatalf("timeout %v: returned after %v", ts, waited)
		}
	}
	var c Kevent_t
	EV_SET(&c, 1, EVFILT_TIMER, EV_ADD|EV_ONESHOT, 0, 1, 7)
	if n, err := wait([]Kevent_t{c}, unix.NsecToTimespec(10e9)); n != 1 || err != nil || events[0].Udata != 7 {
		t.Fatalf("Kevent = %d, %v (%+v); want the timer", n, err, events[0])
	}
}

// A kernel without kcmp(2), or a sandbox that forbids it: fstat's device
// and inode are all the package has to tell a file from another that took
// its number. Every eventfd shares one inode, so an eventfd put under a
// watched one's number looks like the same file; the change that adds the
// new one's filter still works, and it reports the new counter. Not
// parallel: it sets the package's record of what the kernel lacks.
func TestWithoutKcmp(t *testing.T) {
	pretend(t, &kcmpMissing, true)
	kq := openQueue(t)
	newEventfd := func(count uint) int {
		fd, err := unix.Eventfd(count, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	old := newEventfd(1)
	defer unix.Close(old)
	var c Kevent_t
	EV_SET(&c, old, EVFILT_READ, EV_ADD, 0, 0, 1)
	events := make([]Kevent_t, 1)
	if n, err := Kevent(kq, []Kevent_t{c}, events, &unix.Timespec{}); n != 1 || err != nil || events[0].Udata != 1 {
		t.Fatalf("Kevent = %d, %v (%+v); want the first eventfd's event", n, err, events[0])
	}
	fresh := newEventfd(0)
	if err := unix.Dup2(fresh, old); err != nil { // the first eventfd is closed
		t.Fatal(err)
	}
	unix.Close(fresh)
	EV_SET(&c, old, EVFILT_READ, EV_ADD, 0, 0, 3)
	if _, err := Kevent(kq, []Kevent_t{c}, nil, nil); err != nil {
		t.Fatalf("EV_ADD on the new eventfd: %v", err)
	}
	var two [8]byte
	binary.NativeEndian.PutUint64(two[:], 2)
	unix.Write(old, two[:])
	if n, err := Kevent(kq, nil, events, &unix.Timespec{}); n != 1 || err != nil || events[0].Udata != 3 || events[0].Data != 2 {
		t.Fatalf("Kevent = %d, %v (%+v); want the new eventfd's event with data 2", n, err, events[0])
	}
}

// The constants have FreeBSD's values, so that a program printing a kevent
// shows the numbers FreeBSD's manual page and <sys/event.h> use (the
// package's documentation promises it).
func TestFreeBSDValues(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"EVFILT_READ", EVFILT_READ, -1},
		{"EVFILT_WRITE", EVFILT_WRITE, -2},
		{"EVFILT_TIMER", EVFILT_TIMER, -7},
		{"EVFILT_USER", EVFILT_USER, -11},
		{"EV_ADD", EV_ADD, 0x1},
		{"EV_DELETE", EV_DELETE, 0x2},
		{"EV_ENABLE", EV_ENABLE, 0x4},
		{"EV_DISABLE", EV_DISABLE, 0x8},
		{"EV_ONESHOT", EV_ONESHOT, 0x10},
		{"EV_CLEAR", EV_CLEAR, 0x20},
		{"EV_RECEIPT", EV_RECEIPT, 0x40},
		{"EV_DISPATCH", EV_DISPATCH, 0x80},
		{"EV_ERROR", EV_ERROR, 0x4000},
		{"EV_EOF", EV_EOF, 0x8000},
		{"NOTE_LOWAT", NOTE_LOWAT, 0x1},
		{"NOTE_SECONDS", NOTE_SECONDS, 0x1},
		{"NOTE_MSECONDS", NOTE_MSECONDS, 0x2},
		{"NOTE_USECONDS", NOTE_USECONDS, 0x4},
		{"NOTE_NSECONDS", NOTE_NSECONDS, 0x8},
		{"NOTE_ABSTIME", NOTE_ABSTIME, 0x10},
		{"NOTE_FFAND", NOTE_FFAND, 0x40000000},
		{"NOTE_FFOR", NOTE_FFOR, 0x80000000},
		{"NOTE_FFCOPY", NOTE_FFCOPY, 0xc0000000},
		{"NOTE_FFCTRLMASK", NOTE_FFCTRLMASK, 0xc0000000},
		{"NOTE_FFLAGSMASK", NOTE_FFLAGSMASK, 0xffffff},
		{"NOTE_TRIGGER", NOTE_TRIGGER, 0x1000000},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want FreeBSD's %#x", c.name, c.got, c.want)
		}
	}
}

// Out of descriptors: Kqueue fails with EMFILE and returns -1, as kqueue(2)
// does ("The per-process descriptor table is full"), and leaves nothing
// open behind it, whether no descriptor is left or one is (the emulation
// needs two: the epoll instance and its wake eventfd). Not parallel: it
// lowers the process's descriptor limit.
func TestKqueueOutOfDescriptors(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	lowestFree := func() int {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		return fd
	}
	free := lowestFree()
	for _, left := range []int{0, 1} {
		low := lim
		low.Cur = uint64(free + left) // every number below free is taken
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
		kq, err := Kqueue()
		unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
		if kq != -1 || err != unix.EMFILE {
			t.Fatalf("%d descriptors left: Kqueue() = %d, %v; want -1, EMFILE", left, kq, err)
		}
		if got := lowestFree(); got != free {
			t.Fatalf("%d descriptors left: the lowest free descriptor is %d after Kqueue failed, was %d", left, got, free)
		}
	}
}

// Where the kernel has epoll_pwait2, a timed wait goes on using it: its
// answer, a timeout or events, is the answer, and only ENOSYS sends the
// package to whole milliseconds for good. A wrong turn there would make
// every later timeout under a millisecond sleep a whole one, where
// kevent(2) sleeps no longer than the timespec asks. Not parallel: it
// reads and sets the package's record of what the kernel lacks.
func TestPwait2StaysInUse(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	if _, err := epollPwait2(epfd, nil, &unix.Timespec{}); err == unix.ENOSYS {
		t.Skip("this kernel has no epoll_pwait2")
	}
	pretend(t, &noPwait2, false)
	kq := openQueue(t)
	events := make([]Kevent_t, 1)
	var c Kevent_t
	EV_SET(&c, 1, EVFILT_TIMER, EV_ADD|EV_ONESHOT, NOTE_USECONDS, 1, 7)
	for _, step := range []struct {
		what    string
		changes []Kevent_t
		ts      unix.Timespec
	}{
		{"a timeout", nil, unix.Timespec{Nsec: 1000}},
		{"an event", []Kevent_t{c}, unix.NsecToTimespec(10e9)},
	} {
		// EINTR (a signal to this thread) is an answer of the kernel's
		// too, and no reason to give up epoll_pwait2.
		n, err := Kevent(kq, step.changes, events, &step.ts)
		if err != nil && err != unix.EINTR {
			t.Fatalf("%s: Kevent = %d, %v", step.what, n, err)
		}
		if noPwait2.Load() {
			t.Fatalf("after %s (Kevent = %d), the package no longer uses epoll_pwait2", step.what, n)
		}
	}
}

// pretend sets one of the package's records of what the kernel lacks for
// the rest of the test, and puts it back afterwards.
func pretend(t *testing.T, record *atomic.Bool, value bool) {
	had := record.Load()
	record.Store(value)
	t.Cleanup(func() { record.Store(had) })
}
