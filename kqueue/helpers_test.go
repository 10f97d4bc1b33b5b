package kqueue_test

// Helpers shared by the tests. Everything here is plain POSIX through
// x/sys/unix, so that the suite runs unchanged against a real kqueue on
// macOS and the BSDs and against the emulation on Linux.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// mustCome bounds the wait for an event that must arrive: long enough for a
// loaded CI machine, and only ever reached when the test is failing.
// WORKBOOK_DEADLINE (a duration, as for the scripts) replaces it: shorter
// where failures are expected, as in scripts/mutants, where each wrong
// implementation would otherwise take the whole ten seconds to fail.
var mustCome = unix.NsecToTimespec(int64(mustComeWithin()))

func mustComeWithin() time.Duration {
	s := os.Getenv("WORKBOOK_DEADLINE")
	if s == "" {
		return 10 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		panic("WORKBOOK_DEADLINE=" + s + ": want a duration such as 30s")
	}
	return d
}

// newQueue returns a queue that is closed when the test ends.
func newQueue(t testing.TB) int {
	t.Helper()
	kq, err := kqueue.Kqueue()
	if err != nil {
		t.Fatalf("Kqueue: %v", err)
	}
	t.Cleanup(func() { kqueue.Close(kq) })
	return kq
}

// socketPair returns a connected pair of AF_UNIX stream sockets.
func socketPair(t testing.TB) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	closeLater(t, fds[0])
	closeLater(t, fds[1])
	return fds[0], fds[1]
}

// pipe returns the read and write ends of a pipe.
func pipe(t testing.TB) (r, w int) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatalf("pipe: %v", err)
	}
	closeLater(t, fds[0])
	closeLater(t, fds[1])
	return fds[0], fds[1]
}

// closed records the descriptors each test closed itself (closeNow), so
// that its cleanup does not close the number again: by then it may belong
// to a test running in parallel.
var closed = struct {
	sync.Mutex
	fds map[testing.TB]map[int]bool
}{fds: make(map[testing.TB]map[int]bool)}

// closeLater closes fd when the test ends unless the test has closed it
// already with closeNow.
func closeLater(t testing.TB, fd int) {
	t.Cleanup(func() {
		closed.Lock()
		done := closed.fds[t][fd]
		closed.Unlock()
		if !done {
			unix.Close(fd)
		}
	})
}

// closeNow closes fd and fails the test if that fails.
func closeNow(t testing.TB, fd int) {
	t.Helper()
	closed.Lock()
	if closed.fds[t] == nil {
		closed.fds[t] = make(map[int]bool)
	}
	closed.fds[t][fd] = true
	closed.Unlock()
	if err := unix.Close(fd); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// tcpListener returns a listening TCP socket on a free loopback port and
// its address.
func tcpListener(t testing.TB) (fd int, addr unix.Sockaddr) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	closeLater(t, fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr, err = unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fd, addr
}

// dial connects a new TCP socket to addr.
func dial(t testing.TB, addr unix.Sockaddr) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	closeLater(t, fd)
	if err := unix.Connect(fd, addr); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return fd
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server int) {
	t.Helper()
	lfd, addr := tcpListener(t)
	client = dial(t, addr)
	server, _, err := unix.Accept(lfd)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	closeLater(t, server)
	return client, server
}

// change applies one change and fails the test if the call fails.
func change(t testing.TB, kq, ident int, filter int16, flags uint16, data int64, udata uint64) {
	t.Helper()
	var c kqueue.Kevent_t
	kqueue.EV_SET(&c, ident, filter, flags, 0, data, udata)
	if _, err := kqueue.Kevent(kq, []kqueue.Kevent_t{c}, nil, nil); err != nil {
		t.Fatalf("Kevent(%s): %v", describe(c), err)
	}
}

// changeFails applies one change with no room for events and fails the
// test unless kevent fails as kevent(2) says a call fails: it returns -1,
// with the error want.
func changeFails(t testing.TB, kq, ident int, filter int16, flags uint16, want unix.Errno) {
	t.Helper()
	var c kqueue.Kevent_t
	kqueue.EV_SET(&c, ident, filter, flags, 0, 0, 0)
	if n, err := kqueue.Kevent(kq, []kqueue.Kevent_t{c}, nil, nil); n != -1 || !isErrno(err, want) {
		t.Fatalf("Kevent(%s) = %d, %v; want -1, %v", describe(c), n, err, want)
	}
}

// changeErrUdata applies one change with no room for events and returns the
// error kevent reports for it.
func changeErrUdata(kq, ident int, filter int16, flags uint16, udata uint64) error {
	var c kqueue.Kevent_t
	kqueue.EV_SET(&c, ident, filter, flags, 0, 0, udata)
	_, err := kqueue.Kevent(kq, []kqueue.Kevent_t{c}, nil, nil)
	return err
}

// waitOne waits for the one event that must come and returns it; it fails
// the test if none comes or more than one does.
func waitOne(t testing.TB, kq int) kqueue.Kevent_t {
	t.Helper()
	evs := waitAll(t, kq, 4)
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1: %v", len(evs), describeAll(evs))
	}
	return evs[0]
}

// waitAll waits until at least one event comes and returns what came, up
// to max.
func waitAll(t testing.TB, kq, max int) []kqueue.Kevent_t {
	t.Helper()
	evs := make([]kqueue.Kevent_t, max)
	n, err := kevent(kq, evs, &mustCome)
	if err != nil {
		t.Fatalf("Kevent: %v", err)
	}
	if n == 0 {
		t.Fatalf("no event within %v", time.Duration(mustCome.Nano()))
	}
	return evs[:n]
}

// poll returns the events ready now, without waiting.
func poll(t testing.TB, kq, max int) []kqueue.Kevent_t {
	t.Helper()
	evs := make([]kqueue.Kevent_t, max)
	n, err := kevent(kq, evs, &unix.Timespec{})
	if err != nil {
		t.Fatalf("Kevent: %v", err)
	}
	return evs[:n]
}

// kevent waits for events as an event loop does: a signal that interrupts
// the wait (EINTR) is no event, so it waits again. The Go runtime signals
// its own threads now and then, and any of them may be inside kevent.
// (Retrying with the whole timeout is fine for a test.)
func kevent(kq int, events []kqueue.Kevent_t, timeout *unix.Timespec) (int, error) {
	for {
		n, err := kqueue.Kevent(kq, nil, events, timeout)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// noEvent fails the test if an event is ready.
func noEvent(t testing.TB, kq int) {
	t.Helper()
	if evs := poll(t, kq, 4); len(evs) > 0 {
		t.Fatalf("unexpected events: %v", describeAll(evs))
	}
}

// expect checks an event's ident, filter and udata, and that the flags in
// want are set.
func expect(t testing.TB, ev kqueue.Kevent_t, ident int, filter int16, flags uint16, udata uint64) {
	t.Helper()
	if ev.Ident != uint64(ident) || ev.Filter != filter || ev.Flags&flags != flags || ev.Udata != udata {
		t.Fatalf("got %s, want ident=%d filter=%d flags&%#x udata=%d", describe(ev), ident, filter, flags, udata)
	}
	if flags&kqueue.EV_EOF == 0 && ev.Flags&kqueue.EV_EOF != 0 {
		t.Fatalf("got %s: EV_EOF set", describe(ev))
	}
}

func send(t testing.TB, fd int, s string) {
	t.Helper()
	if n, err := unix.Write(fd, []byte(s)); err != nil || n != len(s) {
		t.Fatalf("write: %d, %v", n, err)
	}
}

func recv(t testing.TB, fd, size int) string {
	t.Helper()
	buf := make([]byte, size)
	n, err := unix.Read(fd, buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n])
}

func describe(ev kqueue.Kevent_t) string {
	return fmt.Sprintf("{ident=%d filter=%d flags=%#x fflags=%d data=%d udata=%d}",
		ev.Ident, ev.Filter, ev.Flags, ev.Fflags, ev.Data, ev.Udata)
}

func describeAll(evs []kqueue.Kevent_t) string {
	s := make([]string, len(evs))
	for i, ev := range evs {
		s[i] = describe(ev)
	}
	return strings.Join(s, " ")
}

func isErrno(err error, want unix.Errno) bool {
	var got unix.Errno
	return errors.As(err, &got) && got == want
}

// changeFflags applies one change with fflags and returns the error kevent
// reports for it.
func changeFflags(kq, ident int, filter int16, flags uint16, fflags uint32, data int64, udata uint64) error {
	var c kqueue.Kevent_t
	kqueue.EV_SET(&c, ident, filter, flags, fflags, data, udata)
	_, err := kqueue.Kevent(kq, []kqueue.Kevent_t{c}, nil, nil)
	return err
}

// cpuTime is the CPU time the whole process has used so far.
func cpuTime(t testing.TB) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// descriptorZero lets a test that does not run in parallel close
// descriptor 0, as a program that closed its standard input has it, so that
// the next descriptor opened (by the test or by a queue) is 0. Call it
// before anything that registers a cleanup: cleanups run last first, so
// standard input comes back after everything else the test opened has gone.
func descriptorZero(t testing.TB) zeroDescriptor {
	t.Helper()
	saved, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatalf("copying standard input: %v", err)
	}
	t.Cleanup(func() {
		unix.Dup2(saved, 0)
		unix.Close(saved)
	})
	return zeroDescriptor{t}
}

type zeroDescriptor struct{ t testing.TB }

// free closes descriptor 0.
func (z zeroDescriptor) free() {
	z.t.Helper()
	if err := unix.Close(0); err != nil {
		z.t.Fatalf("closing descriptor 0: %v", err)
	}
}

// hold opens /dev/null as descriptor 0, which must be free.
func (z zeroDescriptor) hold() {
	z.t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		z.t.Fatal(err)
	}
	if fd != 0 {
		unix.Close(fd)
		z.t.Fatalf("opened %d, want 0: descriptor 0 is taken", fd)
	}
}

// mustBeFree fails the test unless descriptor 0 is free: after what was
// done, nothing may keep it.
func (z zeroDescriptor) mustBeFree(after string) {
	z.t.Helper()
	if _, err := unix.FcntlInt(0, unix.F_GETFD, 0); err != unix.EBADF {
		z.t.Fatalf("after %s, descriptor 0 is still open", after)
	}
}

// openDescriptors counts the descriptors the process has open, for tests
// that do not run in parallel.
func openDescriptors(t testing.TB) int {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	n := 0
	for fd := range int(min(lim.Cur, 1<<16)) {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			n++
		}
	}
	return n
}
