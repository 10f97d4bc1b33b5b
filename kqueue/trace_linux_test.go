package kqueue

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Level 2: under the kevent lines, the system calls the emulation made for
// them, in the order it made them. The registration is an epoll_ctl, the
// wait an epoll_wait that names what came back, and the event's data an
// ioctl(SIOCINQ).
func TestTraceLevel2ShowsTheEmulation(t *testing.T) {
	kq, err := Kqueue()
	if err != nil {
		t.Fatal(err)
	}
	defer Close(kq)
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
