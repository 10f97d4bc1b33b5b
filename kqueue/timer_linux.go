// EVFILT_TIMER on Linux: one timerfd per timer, registered in the queue's
// epoll instance. A timerfd counts the expirations since it was last read,
// which is exactly what kevent returns in Data.

package kqueue

import (
	"encoding/binary"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

func (q *queue) applyTimer(c *Kevent_t) error {
	kn := q.timers[c.Ident]
	if kn == nil && c.Flags&EV_ADD == 0 {
		return unix.ENOENT
	}
	if c.Flags&EV_ADD != 0 {
		if c.Data < 0 {
			return unix.EINVAL
		}
		if kn == nil {
			var err error
			if kn, err = q.newTimer(c); err != nil {
				return err
			}
		}
		kn.udata = c.Udata
		// FreeBSD restarts a timer that is added again, with the new
		// period.
		if err := armTimer(kn, c.Data); err != nil {
			q.dropTimer(kn)
			return err
		}
	}
	switch {
	case c.Flags&EV_DELETE != 0:
		q.dropTimer(kn)
		return nil
	case c.Flags&EV_ENABLE != 0:
		kn.enabled = true
	case c.Flags&EV_DISABLE != 0:
		kn.enabled = false
	default:
		return nil
	}
	return q.syncTimer(kn)
}

func (q *queue) newTimer(c *Kevent_t) (*knote, error) {
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	kn := &knote{
		ident:  c.Ident,
		filter: EVFILT_TIMER,
		// A timer's state is reset each time it is reported, as
		// FreeBSD marks every timer EV_CLEAR.
		flags:   c.Flags&^actions | EV_CLEAR,
		enabled: c.Flags&EV_DISABLE == 0,
		live:    true,
		tfd:     tfd,
		gen:     q.nextGen(),
	}
	ev := unix.EpollEvent{Fd: int32(tfd), Pad: int32(kn.gen<<2 | tagTimer)}
	if kn.enabled {
		ev.Events = unix.EPOLLIN
	}
	if err := unix.EpollCtl(q.epfd, unix.EPOLL_CTL_ADD, tfd, &ev); err != nil {
		unix.Close(tfd)
		return nil, err
	}
	q.timers[kn.ident] = kn
	q.timerByTfd[int32(tfd)] = kn
	return kn, nil
}

// armTimer starts the timer with a period of ms milliseconds. As in FreeBSD,
// a periodic timer of 0 runs every millisecond; a one-shot one of 0 fires
// at once (timerfd needs a nonzero value to run at all: 1ns).
func armTimer(kn *knote, ms int64) error {
	period := time.Duration(math.MaxInt64)
	if ms < math.MaxInt64/int64(time.Millisecond) {
		period = time.Duration(ms) * time.Millisecond
	}
	first, every := period, period
	if kn.flags&EV_ONESHOT != 0 {
		every = 0
		first = max(first, 1)
	} else if period == 0 {
		first, every = time.Millisecond, time.Millisecond
	}
	spec := unix.ItimerSpec{
		Value:    unix.NsecToTimespec(int64(first)),
		Interval: unix.NsecToTimespec(int64(every)),
	}
	return unix.TimerfdSettime(kn.tfd, 0, &spec, nil)
}

func (q *queue) syncTimer(kn *knote) error {
	ev := unix.EpollEvent{Fd: int32(kn.tfd), Pad: int32(kn.gen<<2 | tagTimer)}
	if kn.enabled {
		ev.Events = unix.EPOLLIN
	}
	return unix.EpollCtl(q.epfd, unix.EPOLL_CTL_MOD, kn.tfd, &ev)
}

// dropTimer deletes a timer. Closing its timerfd removes it from epoll.
func (q *queue) dropTimer(kn *knote) {
	kn.live = false
	delete(q.timers, kn.ident)
	delete(q.timerByTfd, int32(kn.tfd))
	unix.Close(kn.tfd)
}

// expirations reads and resets the timer's count; 0 if it has not expired
// since the last read.
func (q *queue) expirations(kn *knote) int64 {
	n, err := unix.Read(kn.tfd, q.timerBuf[:])
	if err != nil || n != len(q.timerBuf) {
		return 0
	}
	return int64(binary.NativeEndian.Uint64(q.timerBuf[:]))
}
