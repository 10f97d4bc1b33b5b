package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// poller is the load generator's readiness interface, here straight on
// epoll(7), level-triggered: read interest always, write interest only while
// a connect or a partial write is pending. epoll_wait's timeout is in
// milliseconds, too coarse for an open loop that sends every few hundred
// microseconds, so deadlines go through a timerfd (nanoseconds) instead.
type poller struct {
	epfd, tfd int
	armed     time.Time // what the timerfd is set to, zero when disarmed
	base      time.Time // our clock at monoBase
	monoBase  int64     // CLOCK_MONOTONIC at base, ns
	events    []unix.EpollEvent
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	p := &poller{epfd: epfd, tfd: tfd, events: make([]unix.EpollEvent, 256)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tfd)}); err != nil {
		p.close()
		return nil, err
	}
	// Go's monotonic clock is CLOCK_MONOTONIC on Linux: one reading of
	// each ties them together, so deadlines need no clock_gettime calls.
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		p.close()
		return nil, err
	}
	p.base, p.monoBase = time.Now(), ts.Nano()
	return p, nil
}

func (p *poller) close() {
	unix.Close(p.tfd)
	unix.Close(p.epfd)
}

// add watches fd for reading, and for writing too if write is set.
func (p *poller) add(fd int, write bool) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: interest(write), Fd: int32(fd)})
}

// setWrite turns write interest on or off.
func (p *poller) setWrite(fd int, on bool) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: interest(on), Fd: int32(fd)})
}

func interest(write bool) uint32 {
	if write {
		return unix.EPOLLIN | unix.EPOLLOUT
	}
	return unix.EPOLLIN
}

// wait blocks until a descriptor is ready or the deadline passes (zero:
// no deadline) and calls ready for each ready descriptor.
func (p *poller) wait(deadline time.Time, ready func(fd int, r, w, fail bool)) error {
	timeout := -1
	if !deadline.IsZero() {
		if !time.Now().Before(deadline) {
			timeout = 0
		} else if !deadline.Equal(p.armed) {
			d := p.monoBase + deadline.Sub(p.base).Nanoseconds()
			spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d)}
			if err := unix.TimerfdSettime(p.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
				return err
			}
			p.armed = deadline
		}
	}
	n, err := unix.EpollWait(p.epfd, p.events, timeout)
	if err == unix.EINTR {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ev := range p.events[:n] {
		fd := int(ev.Fd)
		if fd == p.tfd {
			var b [8]byte
			unix.Read(p.tfd, b[:])
			p.armed = time.Time{}
			continue
		}
		ready(fd, ev.Events&unix.EPOLLIN != 0, ev.Events&unix.EPOLLOUT != 0, ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0)
	}
	return nil
}
