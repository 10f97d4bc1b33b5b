// EVFILT_TIMER and EVFILT_USER on Linux: knotes whose ident is a number of
// the caller's choosing, not a descriptor. Each is driven by a descriptor
// of its own in the queue's epoll instance: a timerfd for a timer, which
// counts the expirations since it was last read, exactly what kevent
// returns in Data; an eventfd for a user event, readable while the event
// is triggered, so that a NOTE_TRIGGER from one goroutine wakes another
// that waits in Kevent on the same queue.

package kqueue

import (
	"encoding/binary"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// The timer's unit flags, as filt_timervalidate() in kern_event.c accepts
// them: at most one unit (milliseconds when none), and NOTE_ABSTIME.
const timerUnits = NOTE_SECONDS | NOTE_MSECONDS | NOTE_USECONDS | NOTE_NSECONDS

func (q *queue) applyIdent(c *Kevent_t) error {
	kn := q.idents[identKey{c.Filter, c.Ident}]
	switch {
	case kn != nil && c.Flags&EV_DELETE != 0:
		q.dropIdent(kn)
		return nil
	case kn == nil && c.Flags&EV_ADD == 0:
		return unix.ENOENT
	}
	timer := c.Filter == EVFILT_TIMER
	if timer && c.Flags&EV_ADD != 0 {
		unit := c.Fflags & timerUnits
		if c.Data < 0 || c.Fflags&^(timerUnits|NOTE_ABSTIME) != 0 || unit&(unit-1) != 0 {
			return unix.EINVAL
		}
	}
	created := kn == nil
	if created {
		var err error
		if kn, err = q.newIdent(c); err != nil {
			return err
		}
	}
	kn.udata = c.Udata
	if timer && c.Flags&EV_ADD != 0 {
		// FreeBSD restarts a timer that is added again, with the
		// new period.
		if err := q.armTimer(kn, c.Data, c.Fflags); err != nil {
			q.dropIdent(kn)
			return err
		}
	}
	if !timer {
		if err := q.userTouch(kn, c, created); err != nil {
			if created {
				q.dropIdent(kn)
			}
			return err
		}
	}
	switch {
	case c.Flags&EV_ENABLE != 0:
		kn.enabled = true
	case c.Flags&EV_DISABLE != 0:
		kn.enabled = false
	case created:
		return nil
	}
	return q.syncIdent(kn)
}

func (q *queue) newIdent(c *Kevent_t) (*knote, error) {
	kn := &knote{
		ident:   c.Ident,
		filter:  c.Filter,
		flags:   c.Flags &^ actions,
		enabled: c.Flags&EV_DISABLE == 0,
		live:    true,
		gen:     q.nextGen(),
		dfd:     -1,
	}
	if c.Filter == EVFILT_TIMER {
		// A timer's state is reset each time it is reported, as
		// filt_timerattach() marks every timer EV_CLEAR.
		kn.flags |= EV_CLEAR
	}
	if err := q.openDriver(kn, c.Fflags); err != nil {
		return nil, err
	}
	q.idents[identKey{kn.filter, kn.ident}] = kn
	return kn, nil
}

// openDriver gives kn a new timerfd or eventfd and registers it; a timer
// with NOTE_ABSTIME counts on the wall clock, as FreeBSD's absolute timers
// do, the others on the monotonic clock.
func (q *queue) openDriver(kn *knote, fflags uint32) error {
	var fd int
	var err error
	switch {
	case kn.filter == EVFILT_USER:
		fd, err = eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	case fflags&NOTE_ABSTIME != 0:
		fd, err = timerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	default:
		fd, err = timerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	}
	if err != nil {
		return err
	}
	ev := unix.EpollEvent{Fd: int32(fd), Pad: int32(kn.gen<<2 | tagDriver)}
	if kn.enabled {
		ev.Events = unix.EPOLLIN
	}
	if err := epollCtl(q.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		closeFd(fd)
		return err
	}
	if kn.dfd >= 0 {
		delete(q.drivers, int32(kn.dfd))
		closeFd(kn.dfd)
	}
	kn.dfd, kn.sfflags = fd, fflags
	q.drivers[int32(fd)] = kn
	return nil
}

// armTimer starts the timer: data in the unit fflags names, relative to
// now or, with NOTE_ABSTIME, since the epoch. As filt_timerattach() does,
// a periodic timer of 0 runs every unit; a one-shot one of 0 fires at once
// (timerfd needs a nonzero value to run at all: 1ns).
func (q *queue) armTimer(kn *knote, data int64, fflags uint32) error {
	if (fflags^kn.sfflags)&NOTE_ABSTIME != 0 {
		if err := q.openDriver(kn, fflags); err != nil { // the other clock
			return err
		}
	}
	kn.sfflags = fflags
	unit := time.Millisecond
	switch fflags & timerUnits {
	case NOTE_SECONDS:
		unit = time.Second
	case NOTE_USECONDS:
		unit = time.Microsecond
	case NOTE_NSECONDS:
		unit = time.Nanosecond
	}
	if data == 0 && kn.flags&EV_ONESHOT == 0 && fflags&NOTE_ABSTIME == 0 {
		data = 1
	}
	period := time.Duration(math.MaxInt64)
	if data < math.MaxInt64/int64(unit) {
		period = time.Duration(data) * unit
	}
	first, every, how := max(period, 1), period, 0
	if kn.flags&EV_ONESHOT != 0 || fflags&NOTE_ABSTIME != 0 {
		every = 0
	}
	if fflags&NOTE_ABSTIME != 0 {
		how = unix.TFD_TIMER_ABSTIME
	}
	spec := unix.ItimerSpec{
		Value:    unix.NsecToTimespec(int64(first)),
		Interval: unix.NsecToTimespec(int64(every)),
	}
	return timerfdSettime(kn.dfd, how, &spec, nil)
}

// userTouch applies a change to an EVFILT_USER knote as filt_usertouch()
// in kern_event.c does: NOTE_TRIGGER triggers it, the control bits combine
// the change's fflags with the knote's, data is taken as it is, and
// EV_CLEAR resets it. filt_usertouch() cannot fail; here a trigger is a
// write to the knote's eventfd, and should that fail, the change fails
// with its error rather than report a wake-up that never happened.
func (q *queue) userTouch(kn *knote, c *Kevent_t, created bool) error {
	flags := c.Fflags & NOTE_FFLAGSMASK
	switch {
	case created:
		kn.sfflags = flags
	case c.Fflags&NOTE_FFCTRLMASK == NOTE_FFAND:
		kn.sfflags &= flags
	case c.Fflags&NOTE_FFCTRLMASK == NOTE_FFOR:
		kn.sfflags |= flags
	case c.Fflags&NOTE_FFCTRLMASK == NOTE_FFCOPY:
		kn.sfflags = flags
	}
	kn.sdata = c.Data
	if c.Fflags&NOTE_TRIGGER != 0 {
		if err := signalFd(kn.dfd); err != nil {
			return err
		}
	}
	if !created && c.Flags&EV_CLEAR != 0 {
		q.readCount(kn.dfd)
	}
	return nil
}

// signalFd adds one to an eventfd's counter. A write to an eventfd never
// waits unless the counter is about to overflow, so a signal should not
// interrupt it; but one that did (EINTR) wrote nothing, and the write is
// made again rather than lost.
func signalFd(fd int) error {
	one := [8]byte{1}
	for {
		if _, err := writeFd(fd, one[:]); err != unix.EINTR {
			return err
		}
	}
}

// userFill is EVFILT_USER's event: the knote's fflags and data; an EV_CLEAR
// knote is reset once reported. Either kind reports only while it is still
// triggered: its event may have waited in the pending list while a change
// with EV_CLEAR reset it, and kqueue_scan() asks filt_user() again before
// it reports a queued knote. A knote without EV_CLEAR keeps its trigger,
// so its eventfd is polled rather than read.
func (q *queue) userFill(ev *Kevent_t, kn *knote) bool {
	ev.Fflags, ev.Data = kn.sfflags, kn.sdata
	if kn.flags&EV_CLEAR != 0 {
		return q.readCount(kn.dfd) > 0
	}
	q.pollBuf[0] = unix.PollFd{Fd: int32(kn.dfd), Events: unix.POLLIN}
	n, err := poll(q.pollBuf[:], 0)
	return err == nil && n > 0
}

func (q *queue) syncIdent(kn *knote) error {
	ev := unix.EpollEvent{Fd: int32(kn.dfd), Pad: int32(kn.gen<<2 | tagDriver)}
	if kn.enabled {
		ev.Events = unix.EPOLLIN
	}
	return epollCtl(q.epfd, unix.EPOLL_CTL_MOD, kn.dfd, &ev)
}

// dropIdent deletes a timer or user event. Closing its descriptor removes
// it from epoll.
func (q *queue) dropIdent(kn *knote) {
	kn.live = false
	delete(q.idents, identKey{kn.filter, kn.ident})
	delete(q.drivers, int32(kn.dfd))
	closeFd(kn.dfd)
}

// expirations reads and resets the timer's count; 0 if it has not expired
// since the last read.
func (q *queue) expirations(kn *knote) int64 {
	return int64(q.readCount(kn.dfd))
}

// readCount reads and resets a timerfd's or eventfd's counter.
func (q *queue) readCount(fd int) uint64 {
	n, err := readFd(fd, q.countBuf[:])
	if err != nil || n != len(q.countBuf) {
		return 0
	}
	return binary.NativeEndian.Uint64(q.countBuf[:])
}
