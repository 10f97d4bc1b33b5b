package kqueue_test

// What the emulation costs: one byte bounced between the two ends of a
// socket pair, waited for through this package and through epoll directly.
// The two loops make the same system calls but for what the emulation
// adds, so the ratio of their times is its overhead per event. Run with
//
//	go test -run '^$' -bench . -count 5 ./kqueue/
//
// BenchmarkPingPong times each loop on its own. BenchmarkPingPongRatio runs
// them in alternating blocks and reports both times and their ratio: on a
// shared machine whose load drifts, that is the fairer comparison.
// kqueue/README.md quotes the figures.

import (
	"testing"
	"time"

	"github.com/kqueue-workbook/workbook/kqueue"
	"golang.org/x/sys/unix"
)

// A pinger does one round trip per call to round: x writes a message, the
// loop waits until y is readable, reads it and writes it back, waits until x
// is readable and reads the echo. Only wait differs between the two loops.
type pinger struct {
	x, y int
	buf  []byte
	wait func(fd int) // returns once fd is readable, and reads it
}

func (p *pinger) round() {
	unix.Write(p.x, p.buf)
	p.wait(p.y)
	unix.Write(p.y, p.buf)
	p.wait(p.x)
}

func BenchmarkPingPong(b *testing.B) {
	for _, loop := range []struct {
		name string
		make func(testing.TB, int) *pinger
	}{{"kqueue", newKqueuePinger}, {"epoll", newEpollPinger}} {
		b.Run(loop.name, func(b *testing.B) {
			p := loop.make(b, 1)
			b.ReportAllocs()
			for b.Loop() {
				p.round()
			}
		})
	}
}

// The ratio for one-byte messages, the worst case for the emulation, and
// for 4 KiB ones, where reading and writing take a larger share.
func BenchmarkPingPongRatio(b *testing.B) {
	b.Run("1B", func(b *testing.B) { benchRatio(b, 1) })
	b.Run("4KiB", func(b *testing.B) { benchRatio(b, 4096) })
}

func benchRatio(b *testing.B, size int) {
	kq, ep := newKqueuePinger(b, size), newEpollPinger(b, size)
	const block = 500
	var kqTime, epTime time.Duration
	timed := func(p *pinger, rounds int) time.Duration {
		start := time.Now()
		for range rounds {
			p.round()
		}
		return time.Since(start)
	}
	rounds := 0
	for b.Loop() {
		kqTime += timed(kq, block)
		epTime += timed(ep, block)
		rounds += block
	}
	b.ReportMetric(float64(kqTime.Nanoseconds())/float64(rounds), "kqueue-ns/round")
	b.ReportMetric(float64(epTime.Nanoseconds())/float64(rounds), "epoll-ns/round")
	b.ReportMetric(float64(kqTime)/float64(epTime), "ratio")
	b.ReportMetric(0, "ns/op") // an op here is two blocks; the metrics above say it better
}

func newKqueuePinger(tb testing.TB, size int) *pinger {
	kq := newQueue(tb)
	events := make([]kqueue.Kevent_t, 8)
	p := &pinger{buf: make([]byte, size)}
	p.x, p.y = socketPair(tb)
	change(tb, kq, p.x, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0)
	change(tb, kq, p.y, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 1)
	p.wait = func(fd int) {
		n, err := kqueue.Kevent(kq, nil, events, nil)
		if err != nil || n != 1 || events[0].Ident != uint64(fd) || events[0].Data != int64(size) {
			tb.Fatalf("Kevent = %d, %v: %s", n, err, describeAll(events[:max(n, 0)]))
		}
		if _, err := unix.Read(fd, p.buf); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}

func newEpollPinger(tb testing.TB, size int) *pinger {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		tb.Fatal(err)
	}
	closeLater(tb, epfd)
	events := make([]unix.EpollEvent, 8)
	p := &pinger{buf: make([]byte, size)}
	p.x, p.y = socketPair(tb)
	for _, fd := range []int{p.x, p.y} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			tb.Fatal(err)
		}
	}
	p.wait = func(fd int) {
		n, err := unix.EpollWait(epfd, events, -1)
		if err != nil || n != 1 || events[0].Fd != int32(fd) {
			tb.Fatalf("EpollWait = %d, %v", n, err)
		}
		if _, err := unix.Read(fd, p.buf); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}
