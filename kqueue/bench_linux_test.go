package kqueue_test

// What the emulation costs: one message bounced between the two ends of a
// socket pair, waited for through this package and through epoll directly.
// The loops are the same system calls but for what the emulation adds; the
// ratio of the two ns/op figures is its overhead per event. Run with
//
//	go test -run '^$' -bench PingPong -count 5 ./kqueue/
//
// kqueue/README.md quotes the figures.

import (
	"testing"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// One op: a writes a byte, the loop sees b readable, reads it and writes it
// back, sees a readable and reads the echo.
func BenchmarkPingPong(b *testing.B) {
	b.Run("kqueue", benchKqueue)
	b.Run("epoll", benchEpoll)
}

func benchKqueue(b *testing.B) {
	kq := newQueue(b)
	x, y := socketPair(b)
	change(b, kq, x, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	change(b, kq, y, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	events := make([]kqueue.Kevent_t, 8)
	buf := make([]byte, 1)
	wait := func(want int) {
		n, err := kqueue.Kevent(kq, nil, events, nil)
		if err != nil || n != 1 || events[0].Ident != uint64(want) || events[0].Data != 1 {
			b.Fatalf("Kevent = %d, %v: %s", n, err, describeAll(events[:max(n, 0)]))
		}
		if _, err := unix.Read(want, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		unix.Write(x, buf)
		wait(y)
		unix.Write(y, buf)
		wait(x)
	}
}

func benchEpoll(b *testing.B) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(epfd)
	x, y := socketPair(b)
	for _, fd := range []int{x, y} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			b.Fatal(err)
		}
	}
	events := make([]unix.EpollEvent, 8)
	buf := make([]byte, 1)
	wait := func(want int) {
		n, err := unix.EpollWait(epfd, events, -1)
		if err != nil || n != 1 || events[0].Fd != int32(want) {
			b.Fatalf("EpollWait = %d, %v", n, err)
		}
		if _, err := unix.Read(want, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		unix.Write(x, buf)
		wait(y)
		unix.Write(y, buf)
		wait(x)
	}
}
