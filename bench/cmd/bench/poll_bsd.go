//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// poller is the load generator's readiness interface, here straight on
// kqueue(2): EVFILT_READ always, EVFILT_WRITE only while a connect or a
// partial write is pending. Changes are queued and handed to the kernel with
// the next wait, in the same kevent call; kevent's timeout is a timespec,
// fine enough for an open loop's deadlines.
type poller struct {
	kq      int
	changes []unix.Kevent_t
	events  []unix.Kevent_t
}

func newPoller() (*poller, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(kq)
	return &poller{kq: kq, events: make([]unix.Kevent_t, 256)}, nil
}

func (p *poller) close() { unix.Close(p.kq) }

func (p *poller) change(fd, filter, flags int) {
	var k unix.Kevent_t
	unix.SetKevent(&k, fd, filter, flags)
	p.changes = append(p.changes, k)
}

// add watches fd for reading, and for writing too if write is set.
func (p *poller) add(fd int, write bool) error {
	p.change(fd, unix.EVFILT_READ, unix.EV_ADD)
	if write {
		p.change(fd, unix.EVFILT_WRITE, unix.EV_ADD)
	}
	return nil
}

// setWrite turns write interest on or off.
func (p *poller) setWrite(fd int, on bool) error {
	if on {
		p.change(fd, unix.EVFILT_WRITE, unix.EV_ADD)
	} else {
		p.change(fd, unix.EVFILT_WRITE, unix.EV_DELETE)
	}
	return nil
}

// wait blocks until a descriptor is ready or the deadline passes (zero:
// no deadline) and calls ready for each ready descriptor. A change the
// kernel refused comes back as an EV_ERROR event and fails its client.
func (p *poller) wait(deadline time.Time, ready func(fd int, r, w, fail bool)) error {
	var ts *unix.Timespec
	if !deadline.IsZero() {
		t := unix.NsecToTimespec(max(time.Until(deadline), 0).Nanoseconds())
		ts = &t
	}
	n, err := unix.Kevent(p.kq, p.changes, p.events, ts)
	p.changes = p.changes[:0]
	if err == unix.EINTR {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ev := range p.events[:n] {
		fd := int(ev.Ident)
		switch {
		case ev.Flags&unix.EV_ERROR != 0:
			ready(fd, false, false, true)
		case ev.Filter == unix.EVFILT_READ:
			ready(fd, true, false, false)
		case ev.Filter == unix.EVFILT_WRITE:
			ready(fd, false, true, false)
		}
	}
	return nil
}
