package kqueue

// Level 2 of KQUEUE_TRACE (trace.go): the system calls the emulation makes
// to carry out a Kevent call, one line each, indented under that call's
// kevent lines, in strace's notation with the names filled in. Each
// wrapper here is the x/sys/unix call of the same name and nothing more
// when the trace is off.
//
// The lines come in the order the calls were made. A call's change lines
// are written before it starts and its wait line when it returns, so an
// epoll_wait and the ioctl that counted the bytes of its event come after
// the changes and before the wait and event lines they led to.

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func epollCreate1(flags int) (int, error) {
	fd, err := unix.EpollCreate1(flags)
	if trace.level > 1 {
		traceSyscall("epoll_create1(EPOLL_CLOEXEC) = %s", result(fd, err))
	}
	return fd, err
}

func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	err := unix.EpollCtl(epfd, op, fd, ev)
	if trace.level > 1 {
		events := "NULL"
		if ev != nil && op != unix.EPOLL_CTL_DEL {
			events = "{" + string(appendBits(nil, uint64(ev.Events), epollNames)) + "}"
		}
		traceSyscall("epoll_ctl(%d, %s, %d, %s) = %s", epfd, epollOps[op], fd, events, result(0, err))
	}
	return err
}

func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	var start time.Time
	if trace.level > 1 {
		start = time.Now()
	}
	n, err := unix.EpollWait(epfd, events, msec)
	if trace.level > 1 {
		traceSyscall("epoll_wait(%d, %d, %d) = %s%s in %s", epfd, len(events), msec, result(n, err), ready(events, n), appendSeconds(nil, time.Since(start)))
	}
	return n, err
}

// pwait2 is epollPwait2 (kqueue_linux.go): epoll_wait with a timeout in
// nanoseconds.
func pwait2(epfd int, events []unix.EpollEvent, ts *unix.Timespec) (int, error) {
	var start time.Time
	if trace.level > 1 {
		start = time.Now()
	}
	n, err := epollPwait2(epfd, events, ts)
	if trace.level > 1 {
		timeout := appendSeconds(nil, time.Duration(ts.Nano()))
		traceSyscall("epoll_pwait2(%d, %d, %s) = %s%s in %s", epfd, len(events), timeout, result(n, err), ready(events, n), appendSeconds(nil, time.Since(start)))
	}
	return n, err
}

// ready lists what an epoll wait returned: each descriptor and its events.
func ready(events []unix.EpollEvent, n int) []byte {
	if n <= 0 {
		return nil
	}
	b := []byte(" [")
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendInt(b, int64(events[i].Fd), 10)
		b = append(b, ' ')
		b = appendBits(b, uint64(events[i].Events), epollNames)
	}
	return append(b, ']')
}

func ioctlGetInt(fd int, req uint) (int, error) {
	v, err := unix.IoctlGetInt(fd, req)
	if trace.level > 1 {
		traceSyscall("ioctl(%d, %s) = %s", fd, ioctlNames[req], result(v, err))
	}
	return v, err
}

func getsockoptInt(fd, level, opt int) (int, error) {
	v, err := unix.GetsockoptInt(fd, level, opt)
	if trace.level > 1 {
		name, ok := sockoptNames[[2]int{level, opt}]
		if !ok {
			name = strconv.Itoa(level) + ", " + strconv.Itoa(opt)
		}
		value := result(v, err)
		if err == nil && level == unix.SOL_SOCKET {
			switch opt {
			case unix.SO_ERROR:
				if v != 0 {
					value += " (" + string(appendErrno(nil, int64(v))) + ")"
				}
			case unix.SO_TYPE, unix.SO_DOMAIN, unix.SO_PROTOCOL:
				if n, ok := sockoptValues[[2]int{opt, v}]; ok {
					value += " (" + n + ")"
				}
			}
		}
		traceSyscall("getsockopt(%d, %s) = %s", fd, name, value)
	}
	return v, err
}

func getsockoptTCPInfo(fd, level, opt int) (*unix.TCPInfo, error) {
	info, err := unix.GetsockoptTCPInfo(fd, level, opt)
	if trace.level > 1 {
		value := result(0, err)
		if err == nil {
			value = "{tcpi_unacked=" + strconv.Itoa(int(info.Unacked)) + " tcpi_sacked=" + strconv.Itoa(int(info.Sacked)) + "}"
		}
		traceSyscall("getsockopt(%d, IPPROTO_TCP, TCP_INFO) = %s", fd, value)
	}
	return info, err
}

func fstat(fd int, st *unix.Stat_t) error {
	err := unix.Fstat(fd, st)
	if trace.level > 1 {
		value := result(0, err)
		if err == nil {
			value = "{st_dev=" + strconv.FormatUint(uint64(st.Dev), 10) + " st_ino=" + strconv.FormatUint(st.Ino, 10) + "}"
		}
		traceSyscall("fstat(%d) = %s", fd, value)
	}
	return err
}

func fcntlInt(fd uintptr, cmd, arg int) (int, error) {
	v, err := unix.FcntlInt(fd, cmd, arg)
	if trace.level > 1 {
		name := "F_" + strconv.Itoa(cmd)
		if cmd == unix.F_GETPIPE_SZ {
			name = "F_GETPIPE_SZ"
		}
		traceSyscall("fcntl(%d, %s) = %s", fd, name, result(v, err))
	}
	return v, err
}

func timerfdCreate(clock, flags int) (int, error) {
	fd, err := unix.TimerfdCreate(clock, flags)
	if trace.level > 1 {
		name := "CLOCK_MONOTONIC"
		if clock == unix.CLOCK_REALTIME {
			name = "CLOCK_REALTIME" // a NOTE_ABSTIME timer's
		}
		traceSyscall("timerfd_create(%s, %s) = %s", name, appendBits(nil, uint64(flags), tfdNames), result(fd, err))
	}
	return fd, err
}

func timerfdSettime(fd, flags int, new, old *unix.ItimerSpec) error {
	err := unix.TimerfdSettime(fd, flags, new, old)
	if trace.level > 1 {
		traceSyscall("timerfd_settime(%d, %d, {it_value=%s it_interval=%s}) = %s", fd, flags,
			appendSeconds(nil, time.Duration(new.Value.Nano())), appendSeconds(nil, time.Duration(new.Interval.Nano())), result(0, err))
	}
	return err
}

// readFd is read(2), for the timerfds, eventfds and the sock_diag socket.
// An 8-byte read is a timerfd's or an eventfd's counter: the trace shows
// its value.
func readFd(fd int, p []byte) (int, error) {
	n, err := unix.Read(fd, p)
	if trace.level > 1 {
		counter := ""
		if len(p) == 8 && n == 8 {
			counter = " (counter=" + strconv.FormatUint(binary.NativeEndian.Uint64(p), 10) + ")"
		}
		traceSyscall("read(%d, %d) = %s%s", fd, len(p), result(n, err), counter)
	}
	return n, err
}

func writeFd(fd int, p []byte) (int, error) {
	n, err := unix.Write(fd, p)
	if trace.level > 1 {
		counter := ""
		if len(p) == 8 {
			counter = " (add " + strconv.FormatUint(binary.NativeEndian.Uint64(p), 10) + ")"
		}
		traceSyscall("write(%d, %d%s) = %s", fd, len(p), counter, result(n, err))
	}
	return n, err
}

func socket(domain, typ, proto int) (int, error) {
	fd, err := unix.Socket(domain, typ, proto)
	if trace.level > 1 {
		traceSyscall("socket(%d, %#x, %d) = %s", domain, typ, proto, result(fd, err))
	}
	return fd, err
}

func poll(fds []unix.PollFd, msec int) (int, error) {
	n, err := unix.Poll(fds, msec)
	if trace.level > 1 {
		traceSyscall("poll(%d fds, %d) = %s", len(fds), msec, result(n, err))
	}
	return n, err
}

func eventfd(initval uint, flags int) (int, error) {
	fd, err := unix.Eventfd(initval, flags)
	if trace.level > 1 {
		traceSyscall("eventfd2(%d, %s) = %s", initval, appendBits(nil, uint64(flags), efdNames), result(fd, err))
	}
	return fd, err
}

func getpeername(fd int) (unix.Sockaddr, error) {
	sa, err := unix.Getpeername(fd)
	if trace.level > 1 {
		traceSyscall("getpeername(%d) = %s", fd, result(0, err))
	}
	return sa, err
}

// readHungUp reports whether fd's reading side has been shut down
// (POLLRDHUP), asked of poll(2) without waiting.
func readHungUp(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	if trace.level > 1 {
		traceSyscall("poll([%d POLLRDHUP], 0) = %s revents=%#x", fd, result(n, err), fds[0].Revents)
	}
	return n == 1 && fds[0].Revents&unix.POLLRDHUP != 0
}

func dup3(oldfd, newfd, flags int) error {
	err := unix.Dup3(oldfd, newfd, flags)
	if trace.level > 1 {
		traceSyscall("dup3(%d, %d, O_CLOEXEC) = %s", oldfd, newfd, result(newfd, err))
	}
	return err
}

func readlink(path string, buf []byte) (int, error) {
	n, err := unix.Readlink(path, buf)
	if trace.level > 1 {
		value := result(n, err)
		if err == nil {
			value = strconv.Quote(string(buf[:n]))
		}
		traceSyscall("readlink(%s) = %s", path, value)
	}
	return n, err
}

// readFile is os.ReadFile, for /proc/self/fdinfo: openat, read and close.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if trace.level > 1 {
		traceSyscall("openat+read+close(%s) = %s", path, result(len(data), err))
	}
	return data, err
}

// traceKcmp shows a kcmp(2) call of registered (identity_linux.go), made
// there through unix.Syscall6 directly, since the pointer it passes as a
// uintptr may not leave that call: kcmp(pid, pid, KCMP_EPOLL_TFD, fd,
// {epfd, fd, toff}) says 0 when fd names the file registered under that
// number in epfd.
func traceKcmp(fd, epfd int, toff uint32, r uintptr, errno unix.Errno) {
	if trace.level > 1 {
		value := strconv.FormatUint(uint64(r), 10)
		if errno != 0 {
			value = "-1 " + string(appendErrno(nil, int64(errno)))
		}
		traceSyscall("kcmp(KCMP_EPOLL_TFD, %d, {%d, %d, %d}) = %s", fd, epfd, fd, toff, value)
	}
}

func closeFd(fd int) error {
	err := unix.Close(fd)
	if trace.level > 1 {
		traceSyscall("close(%d) = %s", fd, result(0, err))
	}
	return err
}

// traceSyscall writes one line of level 2: a system call the emulation
// made, indented under the kevent lines it serves.
func traceSyscall(format string, args ...any) {
	b := traceBegin()
	b = appendStamp(b)
	b = append(b, "          "...)
	b = fmt.Appendf(b, format, args...)
	traceEnd(b)
}

// result is a system call's return value as strace shows it: the value, or
// -1 and the errno's name.
func result(v int, err error) string {
	if err != nil {
		return "-1 " + string(appendError(nil, err))
	}
	return strconv.Itoa(v)
}

var epollOps = map[int]string{
	unix.EPOLL_CTL_ADD: "EPOLL_CTL_ADD",
	unix.EPOLL_CTL_MOD: "EPOLL_CTL_MOD",
	unix.EPOLL_CTL_DEL: "EPOLL_CTL_DEL",
}

var epollNames = []bitName{
	bit(unix.EPOLLIN, "EPOLLIN"),
	bit(unix.EPOLLPRI, "EPOLLPRI"),
	bit(unix.EPOLLOUT, "EPOLLOUT"),
	bit(unix.EPOLLERR, "EPOLLERR"),
	bit(unix.EPOLLHUP, "EPOLLHUP"),
	bit(unix.EPOLLRDHUP, "EPOLLRDHUP"),
	bit(unix.EPOLLEXCLUSIVE, "EPOLLEXCLUSIVE"),
	bit(unix.EPOLLWAKEUP, "EPOLLWAKEUP"),
	bit(unix.EPOLLONESHOT, "EPOLLONESHOT"),
	bit(1<<31, "EPOLLET"), // unix.EPOLLET is negative: -0x80000000
}

// SIOCINQ is also FIONREAD, which the emulation asks of pipes.
var ioctlNames = map[uint]string{
	unix.SIOCINQ:  "SIOCINQ",
	unix.SIOCOUTQ: "SIOCOUTQ",
}

var sockoptNames = map[[2]int]string{
	{unix.SOL_SOCKET, unix.SO_ERROR}:      "SOL_SOCKET, SO_ERROR",
	{unix.SOL_SOCKET, unix.SO_TYPE}:       "SOL_SOCKET, SO_TYPE",
	{unix.SOL_SOCKET, unix.SO_DOMAIN}:     "SOL_SOCKET, SO_DOMAIN",
	{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}: "SOL_SOCKET, SO_ACCEPTCONN",
	{unix.SOL_SOCKET, unix.SO_SNDBUF}:     "SOL_SOCKET, SO_SNDBUF",
	{unix.SOL_SOCKET, unix.SO_RCVBUF}:     "SOL_SOCKET, SO_RCVBUF",
	{unix.SOL_SOCKET, unix.SO_RCVLOWAT}:   "SOL_SOCKET, SO_RCVLOWAT",
	{unix.SOL_SOCKET, unix.SO_PROTOCOL}:   "SOL_SOCKET, SO_PROTOCOL",
}

// sockoptValues names the answers that learn what a socket is.
var sockoptValues = map[[2]int]string{
	{unix.SO_TYPE, unix.SOCK_STREAM}:     "SOCK_STREAM",
	{unix.SO_TYPE, unix.SOCK_DGRAM}:      "SOCK_DGRAM",
	{unix.SO_TYPE, unix.SOCK_SEQPACKET}:  "SOCK_SEQPACKET",
	{unix.SO_DOMAIN, unix.AF_INET}:       "AF_INET",
	{unix.SO_DOMAIN, unix.AF_INET6}:      "AF_INET6",
	{unix.SO_DOMAIN, unix.AF_UNIX}:       "AF_UNIX",
	{unix.SO_PROTOCOL, unix.IPPROTO_TCP}: "IPPROTO_TCP",
	{unix.SO_PROTOCOL, unix.IPPROTO_UDP}: "IPPROTO_UDP",
}

var efdNames = []bitName{
	bit(unix.EFD_NONBLOCK, "EFD_NONBLOCK"),
	bit(unix.EFD_CLOEXEC, "EFD_CLOEXEC"),
	bit(unix.EFD_SEMAPHORE, "EFD_SEMAPHORE"),
}

var tfdNames = []bitName{
	bit(unix.TFD_NONBLOCK, "TFD_NONBLOCK"),
	bit(unix.TFD_CLOEXEC, "TFD_CLOEXEC"),
}
