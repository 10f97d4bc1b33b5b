package kqueue

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Level 2: under the kevent lines, the system calls the emulation made for
// them, in the order it made them. The registration is an epoll_ctl, the
// wait an epoll_wait that names what came back, and the event's data an
// ioctl(SIOCINQ).
func TestTraceLevel2ShowsTheEmulation(t *testing.T) {
	kq := openQueue(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	fd := strconv.Itoa(fds[1])
	lines := withTrace(t, 2, func() {
		var change [1]Kevent_t
		EV_SET(&change[0], fds[1], EVFILT_READ, EV_ADD, 0, 0, 0)
		if _, err := Kevent(kq, change[:], nil, nil); err != nil {
			t.Fatal(err)
		}
		unix.Write(fds[0], []byte("hello\n"))
		if n, err := Kevent(kq, nil, make([]Kevent_t, 4), nil); n != 1 || err != nil {
			t.Fatalf("Kevent = %d, %v", n, err)
		}
	})
	syscall := ` *\d+\.\d{6}          `
	kqs := ` *\d+\.\d{6} kq=` + strconv.Itoa(kq) + ` +`
	wants := []string{
		kqs + `change ident=` + fd + ` EVFILT_READ EV_ADD udata=0x0$`,
		syscall + `epoll_ctl\(` + strconv.Itoa(kq) + `, EPOLL_CTL_ADD, ` + fd + `, \{EPOLLIN\|EPOLLRDHUP\}\) = 0$`,
		syscall + `epoll_wait\(` + strconv.Itoa(kq) + `, 4, -1\) = 1 \[` + fd + ` EPOLLIN\] in \d+\.\d{6}s$`,
		syscall + `ioctl\(` + fd + `, SIOCINQ\) = 6$`,
		kqs + `wait   timeout=none slept=\d+\.\d{6}s events=1$`,
		kqs + `event  ident=` + fd + ` EVFILT_READ data=6 udata=0x0$`,
	}
	at := 0
	for _, want := range wants {
		re := regexp.MustCompile("^" + want)
		for at < len(lines) && !re.MatchString(lines[at]) {
			at++
		}
		if at == len(lines) {
			t.Fatalf("no line matches\n%s\nafter the ones before it in\n%s", want, strings.Join(lines, "\n"))
		}
		at++
	}
}

// traceWorkload makes the emulation use every system call it has a level-2
// line for: sockets, pipes, eventfds, listeners of both kinds, a socket that
// is not yet connected, one reset by its peer, EV_CLEAR filters, a short
// event list, timers and user events, a queue closed from under the
// package, and a descriptor closed behind its back while a dup keeps the
// file open (the rebuild).
func traceWorkload(t *testing.T) {
	t.Helper()
	kq, err := Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	defer Close(kq)
	var opened []int
	defer func() {
		for _, fd := range opened {
			unix.Close(fd)
		}
	}()
	keep := func(fds ...int) { opened = append(opened, fds...) }
	pair := func(typ int) (int, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
		if err != nil {
			t.Fatal(err)
		}
		keep(fds[0], fds[1])
		return fds[0], fds[1]
	}
	socket := func(domain int) int {
		fd, err := unix.Socket(domain, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		keep(fd)
		return fd
	}
	var c Kevent_t
	add := func(ident int, filter int16, flags uint16, fflags uint32, data int64) {
		t.Helper()
		EV_SET(&c, ident, filter, flags, fflags, data, 0)
		if _, err := Kevent(kq, []Kevent_t{c}, nil, nil); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
	}
	events := make([]Kevent_t, 8)
	wait := func(room int, ts *unix.Timespec) int {
		for {
			n, err := Kevent(kq, nil, events[:room], ts)
			if err != unix.EINTR {
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
	}
	poll := &unix.Timespec{}
	a, b := pair(unix.SOCK_STREAM)
	unix.Write(a, []byte("x"))
	add(b, EVFILT_READ, EV_ADD, 0, 0)
	add(b, EVFILT_WRITE, EV_ADD, 0, 0) // fstat and kcmp of a registered descriptor
	wait(1, poll)                      // the other filter waits: the wake eventfd is written
	wait(8, &unix.Timespec{Nsec: 1e6}) // and read, after the pending event is polled again
	wait(8, nil)                       // both filters still ready: epoll_wait without a timeout
	add(b, EVFILT_READ, EV_DELETE, 0, 0)
	add(b, EVFILT_WRITE, EV_DELETE, 0, 0)
	_, d := pair(unix.SOCK_STREAM)
	add(d, EVFILT_READ, EV_ADD|EV_CLEAR, 0, 0)
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	keep(p[0], p[1])
	r, w := p[0], p[1]
	add(r, EVFILT_READ, EV_ADD, 0, 0)
	add(w, EVFILT_WRITE, EV_ADD, 0, 0)
	efd, err := unix.Eventfd(1, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	keep(efd)
	add(efd, EVFILT_READ, EV_ADD, 0, 0)
	efd2, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	keep(efd2)
	if err := unix.Dup2(efd2, efd); err != nil { // same anonymous inode, another file: kcmp says so
		t.Fatal(err)
	}
	add(efd, EVFILT_READ, EV_ADD, 0, 0)
	efd3, err := unix.Eventfd(3, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	keep(efd3)
	add(efd3, EVFILT_READ, EV_ADD, 0, 0) // its data comes from /proc/self/fdinfo
	tcp := socket(unix.AF_INET)
	if err := unix.Bind(tcp, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(tcp, 4)
	add(tcp, EVFILT_READ, EV_ADD, 0, 0)
	taddr, _ := unix.Getsockname(tcp)
	client := socket(unix.AF_INET)
	unix.Connect(client, taddr)
	server, _, err := unix.Accept(tcp)
	if err != nil {
		t.Fatal(err)
	}
	keep(server)
	unix.SetsockoptLinger(client, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	add(server, EVFILT_READ, EV_ADD, 0, 0)
	unix.Close(client)                        // a reset: EV_EOF with SO_ERROR
	unix.Connect(socket(unix.AF_INET), taddr) // left waiting: the listener's data comes from TCP_INFO
	path := t.TempDir() + "/sock"
	ul := socket(unix.AF_UNIX)
	unix.Bind(ul, &unix.SockaddrUnix{Name: path})
	unix.Listen(ul, 4)
	add(ul, EVFILT_READ, EV_ADD, 0, 0)
	uc := socket(unix.AF_UNIX)
	add(uc, EVFILT_WRITE, EV_ADD, 0, 0) // not connected yet
	unix.Connect(uc, &unix.SockaddrUnix{Name: path})
	add(2, EVFILT_USER, EV_ADD|EV_CLEAR, NOTE_TRIGGER, 0)
	add(2, EVFILT_USER, EV_CLEAR, 0, 0) // reset: its counter is read
	add(2, EVFILT_USER, EV_CLEAR, 0, 0) // and found empty
	wait(8, poll)
	inner, err := Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	// Closed with Close, not unix.Close: a queue closed behind the
	// package's back stays in its table until Kqueue hands out the number
	// again, and until then a later test's pipe or eventfd under that
	// number would be taken for a kqueue.
	defer Close(inner)
	add(inner, EVFILT_READ, EV_ADD, 0, 0)
	// The rebuild: a descriptor closed while a dup keeps its file open,
	// which is then readable, seen by two waits.
	x, y := pair(unix.SOCK_STREAM)
	add(y, EVFILT_READ, EV_ADD, 0, 0)
	dup, err := unix.Dup(y)
	if err != nil {
		t.Fatal(err)
	}
	keep(dup)
	unix.Close(y)
	EV_SET(&c, y, EVFILT_READ, EV_DELETE, 0, 0, 0)
	Kevent(kq, []Kevent_t{c}, nil, nil) // EBADF: forgotten
	unix.Write(x, []byte("x"))
	for range 3 {
		wait(8, poll)
	}
	// A queue with nothing ready, then a timer.
	kq2, err := Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	defer Close(kq2)
	kq = kq2
	wait(8, poll)
	add(5, EVFILT_TIMER, EV_ADD, NOTE_ABSTIME|NOTE_SECONDS, time.Now().Unix()+3600)
	add(1, EVFILT_TIMER, EV_ADD|EV_ONESHOT, 0, 1)
	long := unix.NsecToTimespec(10e9)
	wait(8, &long)
}

// The level-2 names: each system call behind the emulation appears, with its
// arguments and result in strace's notation.
func TestTraceLevel2NamesEverySystemCall(t *testing.T) {
	lines := withTrace(t, 2, func() { traceWorkload(t) })
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		`epoll_create1\(EPOLL_CLOEXEC\) = \d+`,
		`eventfd2\(0, EFD_NONBLOCK\|EFD_CLOEXEC\) = \d+`,
		`eventfd2\(1, EFD_NONBLOCK\|EFD_CLOEXEC\) = \d+`, // the rebuild's nudge
		`epoll_ctl\(\d+, EPOLL_CTL_ADD, \d+, \{EPOLLIN\|EPOLLRDHUP\}\) = 0`,
		`epoll_ctl\(\d+, EPOLL_CTL_ADD, \d+, \{EPOLLIN\|EPOLLRDHUP\|EPOLLET\}\) = 0`,
		`epoll_ctl\(\d+, EPOLL_CTL_DEL, \d+, NULL\) = 0`,
		`epoll_ctl\(\d+, EPOLL_CTL_MOD, \d+, \{EPOLLIN\|EPOLLOUT\|EPOLLRDHUP\}\) = 0`,
		`epoll_wait\(\d+, 1, 0\) = 1 \[\d+ EPOLLIN\|EPOLLOUT\] in \d\.\d{6}s`, // timed from the call
		`epoll_wait\(\d+, 8, 0\) = 0 in \d\.\d{6}s`,
		`epoll_pwait2\(\d+, 8, \d+\.\d{6}s\) = 1 \[\d+ EPOLLIN\] in \d\.\d{6}s`,
		`ioctl\(\d+, SIOCINQ\) = 1`,
		`ioctl\(\d+, SIOCOUTQ\) = 0`,
		`getsockopt\(\d+, SOL_SOCKET, SO_TYPE\) = 1 \(SOCK_STREAM\)`,
		`getsockopt\(\d+, SOL_SOCKET, SO_DOMAIN\) = 1 \(AF_UNIX\)`,
		`getsockopt\(\d+, SOL_SOCKET, SO_PROTOCOL\) = 6 \(IPPROTO_TCP\)`,
		`getsockopt\(\d+, SOL_SOCKET, SO_ERROR\) = 104 \(ECONNRESET\)`,
		`getsockopt\(\d+, SOL_SOCKET, SO_TYPE\) = -1 ENOTSOCK`,
		`getsockopt\(\d+, IPPROTO_TCP, TCP_INFO\) = \{tcpi_unacked=1 tcpi_sacked=\d+\}`,
		`fstat\(\d+\) = \{st_dev=\d+ st_ino=\d+\}`,
		`fstat\(\d+\) = -1 EBADF`,
		`fcntl\(\d+, F_GETPIPE_SZ\) = \d+`,
		`timerfd_create\(CLOCK_MONOTONIC, TFD_NONBLOCK\|TFD_CLOEXEC\) = \d+`,
		`timerfd_create\(CLOCK_REALTIME, TFD_NONBLOCK\|TFD_CLOEXEC\) = \d+`,
		`timerfd_settime\(\d+, 0, \{it_value=0\.001000s it_interval=0\.000000s\}\) = 0`,
		`read\(\d+, 8\) = 8 \(counter=1\)`,
		`read\(\d+, 8\) = -1 EAGAIN`,
		`write\(\d+, 8 \(add 1\)\) = 8`,
		`socket\(16, 0x80002, 4\) = \d+`,
		`write\(\d+, 40\) = 40`,
		`read\(\d+, 512\) = \d+`,
		`poll\(1 fds, 0\) = 1`,
		`poll\(\[\d+ POLLRDHUP\], 0\) = 1 revents=0x10`,
		`getpeername\(\d+\) = -1 ENOTCONN`,
		`getpeername\(\d+\) = 0`,
		`readlink\(/proc/self/fd/\d+\) = "anon_inode:\[eventfd\]"`,
		`openat\+read\+close\(/proc/self/fdinfo/\d+\) = \d+`,
		`getsockopt\(\d+, SOL_SOCKET, SO_SNDBUF\) = \d+`,
		`kcmp\(KCMP_EPOLL_TFD, \d+, \{\d+, \d+, 0\}\) = 0`,
		`kcmp\(KCMP_EPOLL_TFD, \d+, \{\d+, \d+, 0\}\) = -1 ENOENT`,
		`dup3\(\d+, \d+, O_CLOEXEC\) = \d+`,
		`close\(\d+\) = 0`,
	} {
		if !regexp.MustCompile(`(?m)^ *\d+\.\d{6}          ` + want + `$`).MatchString(all) {
			t.Errorf("no line\n\t%s", want)
		}
	}
	// The clock named is the timer's own: the wall clock for the
	// NOTE_ABSTIME timer, the monotonic one for the relative timer.
	for _, timer := range []struct{ ident, clock string }{{"5", "CLOCK_REALTIME"}, {"1", "CLOCK_MONOTONIC"}} {
		want := `(?m)^ *\d+\.\d{6} kq=\d+ +change ident=` + timer.ident + ` EVFILT_TIMER .*\n *\d+\.\d{6}          timerfd_create\(` + timer.clock + `, `
		if !regexp.MustCompile(want).MatchString(all) {
			t.Errorf("the change of timer %s is not followed by timerfd_create(%s, ...)", timer.ident, timer.clock)
		}
	}
	if t.Failed() {
		t.Logf("the trace:\n%s", all)
	}
}

// Level 1 is the kevent lines alone: nothing of the emulation.
func TestTraceLevel1HidesTheEmulation(t *testing.T) {
	for _, line := range withTrace(t, 1, func() { traceWorkload(t) }) {
		if !strings.Contains(line, " kq=") {
			t.Fatalf("a line at level 1 that is not Kevent's:\n%s", line)
		}
	}
}

// With the trace off, nothing is written at all.
func TestTraceOffWritesNothing(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "trace"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	trace.mu.Lock()
	savedLevel, savedOut := trace.level, trace.out
	trace.level, trace.out = 0, f
	trace.mu.Unlock()
	defer func() {
		trace.mu.Lock()
		trace.level, trace.out = savedLevel, savedOut
		trace.mu.Unlock()
	}()
	traceWorkload(t)
	if info, err := f.Stat(); err != nil || info.Size() != 0 {
		data, _ := os.ReadFile(f.Name())
		t.Fatalf("the trace is off, yet this was written:\n%s", data)
	}
}

// The common path costs what kqueue/README.md's table says: a read event
// on a connected socket with a level-triggered filter is one epoll_wait and
// one ioctl(SIOCINQ) for its data, and nothing more, call after call.
func TestTraceSteadyLoopCost(t *testing.T) {
	kq := readyQueue(t)
	events := make([]Kevent_t, 4)
	lines := withTrace(t, 2, func() {
		for range 3 {
			if n, err := Kevent(kq, nil, events, nil); n != 1 || err != nil {
				t.Fatalf("Kevent = %d, %v", n, err)
			}
		}
	})
	calls := map[string]int{}
	syscall := regexp.MustCompile(`^ *\d+\.\d{6} {10}([a-z_0-9+]+)\(`)
	for _, line := range lines {
		if m := syscall.FindStringSubmatch(line); m != nil {
			calls[m[1]]++
		}
	}
	if len(calls) != 2 || calls["epoll_wait"] != 3 || calls["ioctl"] != 3 {
		t.Fatalf("system calls for three steady calls: %v, want 3 epoll_wait and 3 ioctl\n%s", calls, strings.Join(lines, "\n"))
	}
}

// A failed epoll_pwait2 is traced as a failure and nothing more: -1 and the
// error, with no list of ready descriptors, for none came back. Here the
// queue's descriptor was closed with unix.Close, behind the package's back,
// so the wait fails with EBADF, as kevent(2) on a closed kq does. Not
// parallel: while it runs no other test can open a file under the freed
// number.
func TestTraceFailedWait(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	_, err = epollPwait2(epfd, nil, &unix.Timespec{})
	unix.Close(epfd)
	if err == unix.ENOSYS {
		t.Skip("this kernel has no epoll_pwait2")
	}
	kq := openQueue(t)
	lines := withTrace(t, 2, func() {
		unix.Close(kq)
		ts := unix.NsecToTimespec(10e9)
		if n, err := Kevent(kq, nil, make([]Kevent_t, 1), &ts); n != -1 || err != unix.EBADF {
			t.Errorf("Kevent = %d, %v; want -1, EBADF", n, err)
		}
	})
	re := regexp.MustCompile(`^ *\d+\.\d{6}          epoll_pwait2\(` + strconv.Itoa(kq) + `, 1, \d+\.\d{6}s\) = -1 EBADF in \d\.\d{6}s$`)
	for _, line := range lines {
		if re.MatchString(line) {
			return
		}
	}
	t.Fatalf("no line matches\n%s\nin\n%s", re, strings.Join(lines, "\n"))
}
