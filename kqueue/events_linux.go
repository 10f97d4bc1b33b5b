// Turning what epoll_wait reports into kevents on Linux.
//
// epoll reports one event per registration, with a mask of what happened;
// kqueue reports one event per knote. A descriptor with both a read and a
// write filter therefore yields up to two kevents from one epoll event, and
// the second may not fit in the caller's list: it waits in queue.pending for
// the next call rather than being lost.

package kqueue

import (
	"golang.org/x/sys/unix"
)

// translate appends to events[n:] the kevents for what epoll reported and
// returns the new count, and the last registration it reported that this
// package has forgotten (see rebuild), or 0. The caller holds q.mu.
func (q *queue) translate(ready []unix.EpollEvent, events []Kevent_t, n int) (int, uint64) {
	var stale uint64
	for i := range ready {
		ev := &ready[i]
		tag, gen := uint32(ev.Pad)&3, uint32(ev.Pad)>>2
		switch tag {
		case tagFile:
			st := q.file(int(ev.Fd))
			if st == nil || st.gen != gen {
				// For a registration this package has forgotten.
				stale = uint64(uint32(ev.Fd))<<32 | uint64(uint32(ev.Pad))
				continue
			}
			n = q.fileReady(st, 0, ev.Events, events, n)
		case tagDriver:
			kn := q.drivers[ev.Fd]
			if kn == nil || kn.gen != gen || !kn.enabled {
				continue
			}
			n = q.emit(kn, 0, events, n)
		case tagClear:
			i := 0
			if ev.Fd == int32(q.clear[1]) {
				i = 1
			}
			n = q.drainClear(i, events, n)
		case tagWake:
			// The pending list is not empty: the caller delivers it.
		}
	}
	return n, stale
}

// drainClear collects the edge-triggered events waiting in clear[i]. The
// zero timeout never blocks: epfd said clear[i] is ready.
func (q *queue) drainClear(i int, events []Kevent_t, n int) int {
	if n == len(events) || q.clear[i] < 0 {
		return n // still ready next time: clear[i] is level-triggered in epfd
	}
	room := min(len(events)-n, len(q.clearBuf))
	got, err := epollWait(q.clear[i], q.clearBuf[:room], 0)
	if err != nil {
		return n
	}
	for _, ev := range q.clearBuf[:got] {
		st := q.file(int(ev.Fd))
		if st == nil || st.gen != uint32(ev.Pad)>>2 {
			continue
		}
		n = q.fileReady(st, i+1, ev.Events, events, n)
	}
	return n
}

// fileReady demultiplexes one epoll event of a descriptor into a kevent per
// enabled knote of that epoll instance that the event concerns.
func (q *queue) fileReady(st *fdState, instance int, bits uint32, events []Kevent_t, n int) int {
	if st.kind == kindUnconnected && !q.lookAgain(st, bits) {
		return n // still neither connected nor listening: nothing to say
	}
	for _, kn := range [2]*knote{st.read, st.write} {
		if kn == nil || !kn.enabled || kn.instance() != instance || bits&kn.fires() == 0 {
			continue
		}
		n = q.emit(kn, bits, events, n)
	}
	return n
}

// emit writes the kevent for a knote that fired into events[n], or queues
// it when the list is full, and returns the new count.
func (q *queue) emit(kn *knote, bits uint32, events []Kevent_t, n int) int {
	if q.skip != 0 && kn.sent == q.skip {
		return n // reported from the pending list in this very call
	}
	if kn.queued {
		// Already waiting: a level-triggered registration reports
		// again each time until the event is delivered.
		kn.bits |= bits
		return n
	}
	if n == len(events) {
		kn.queued, kn.bits = true, bits
		q.pending = append(q.pending, kn)
		q.npending.Store(int32(len(q.pending)))
		q.setWake(true)
		return n
	}
	if !q.fill(&events[n], kn, bits) {
		return n
	}
	switch {
	case kn.flags&EV_ONESHOT != 0:
		// EV_ONESHOT: the knote is deleted once it has been reported.
		if kn.file == nil {
			q.dropIdent(kn)
		} else {
			q.detach(kn)
			q.settle(kn.file, -1)
		}
	case kn.flags&EV_DISPATCH != 0:
		// EV_DISPATCH: disabled once it has been reported.
		kn.enabled = false
		if kn.file == nil {
			q.syncIdent(kn)
		} else {
			q.settle(kn.file, -1)
		}
	case kn.file != nil:
		q.rearm(kn)
	}
	return n + 1
}

// setWake makes the queue's wake eventfd readable (on) or not, so that it
// tells epoll_wait whether the pending list holds anything. Only a full
// event list makes it change, never a steady loop.
func (q *queue) setWake(on bool) {
	if on == q.wakeSet || q.wake < 0 {
		return
	}
	if on {
		if signalFd(q.wake) != nil {
			return // not set: the next call that leaves events tries again
		}
	} else {
		readFd(q.wake, q.countBuf[:])
	}
	q.wakeSet = on
}

// deliverPending writes queued events to events[n:] and returns the new
// count. The caller holds q.mu.
func (q *queue) deliverPending(events []Kevent_t, n int) int {
	q.call++
	i := 0
	for ; i < len(q.pending) && n < len(events); i++ {
		kn := q.pending[i]
		kn.queued = false
		if !kn.live || !kn.enabled {
			continue // deleted or disabled since: its event goes too
		}
		if kn.file != nil && !q.stillOpen(kn.file) {
			// The descriptor was closed since, and its events
			// went with it; its number may name a new file now.
			q.forget(kn.file)
			continue
		}
		bits := kn.bits
		if kn.file != nil && kn.flags&EV_CLEAR == 0 {
			// A level-triggered event stands only while its
			// condition does; the kernel re-checks it too before
			// reporting a queued knote.
			if bits = q.pollNow(kn); bits&kn.fires() == 0 {
				continue
			}
		}
		if m := q.emit(kn, bits, events, n); m > n {
			kn.sent, n = q.call, m
		}
	}
	rest := copy(q.pending, q.pending[i:])
	clear(q.pending[rest:])
	q.pending = q.pending[:rest]
	q.npending.Store(int32(rest))
	if rest == 0 {
		q.setWake(false)
	}
	return n
}

// pollNow asks the kernel whether a knote's condition holds right now.
func (q *queue) pollNow(kn *knote) uint32 {
	q.pollBuf[0] = unix.PollFd{Fd: int32(kn.file.fd), Events: int16(kn.listen())}
	if n, err := poll(q.pollBuf[:], 0); err != nil || n == 0 {
		return 0
	}
	// poll(2) and epoll(7) share the values of these bits.
	return uint32(uint16(q.pollBuf[0].Revents))
}

// fill writes the kevent for a knote. It returns false when there turns out
// to be nothing to report (a timer that had not expired after all, fewer
// bytes than the low-water mark).
func (q *queue) fill(ev *Kevent_t, kn *knote, bits uint32) bool {
	*ev = Kevent_t{Ident: kn.ident, Filter: kn.filter, Flags: kn.flags, Udata: kn.udata}
	st := kn.file
	switch kn.filter {
	case EVFILT_TIMER:
		if ev.Data = q.expirations(kn); ev.Data == 0 {
			return false
		}
	case EVFILT_USER:
		return q.userFill(ev, kn)
	case EVFILT_READ:
		ev.Data = q.readable(st)
		// EPOLLRDHUP: the peer shut down writing. EPOLLHUP: both
		// directions are shut, or a pipe's writers are gone.
		if bits&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
			ev.Flags |= EV_EOF
			ev.Fflags = st.socketError(bits)
		} else if ev.Data < max(kn.lowat, 1) && (kn.lowat > 0 || st.kind == kindQueue) {
			// Below the mark (filt_soread()), or a kqueue
			// with nothing pending (filt_kqueue()).
			return false
		}
	case EVFILT_WRITE:
		// A pipe whose readers are gone reports EPOLLERR alone.
		if bits&unix.EPOLLHUP != 0 || (st.kind == kindPipe && bits&unix.EPOLLERR != 0) {
			ev.Flags |= EV_EOF
			ev.Fflags = st.socketError(bits)
			if st.kind == kindPipe {
				// filt_pipewrite() in sys_pipe.c: no reader,
				// no room.
				return true
			}
		}
		ev.Data = st.writable()
		if ev.Flags&EV_EOF == 0 && kn.lowat > 0 && ev.Data < kn.lowat {
			return false
		}
	}
	return true
}

// readable is EVFILT_READ's Data: bytes waiting, or for a listening socket
// connections waiting to be accepted.
func (q *queue) readable(st *fdState) int64 {
	switch st.kind {
	case kindTCPListener:
		// For a listening socket Linux reports the accept queue's
		// length in tcpi_unacked (and its limit in tcpi_sacked).
		info, err := getsockoptTCPInfo(st.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return 0
		}
		return int64(info.Unacked)
	case kindUnixListener:
		if n, ok := q.unixBacklog(st.ino); ok {
			return n
		}
		return 1 // at least one, or epoll would not have reported it
	case kindQueue:
		return countOf(st.fd)
	case kindEventfd:
		n, _ := eventfdCountFd(st.fd)
		return int64(n)
	}
	// SIOCINQ is FIONREAD under its socket name: for a pipe, too, it
	// counts the bytes waiting.
	n, err := ioctlGetInt(st.fd, unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return int64(n)
}

// writable is EVFILT_WRITE's Data: free space in the send buffer.
func (st *fdState) writable() int64 {
	switch st.kind {
	case kindSocket:
		// SIOCOUTQ counts the bytes still in the send queue; the free
		// space is what the buffer holds minus those.
		size, err := getsockoptInt(st.fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		if err != nil {
			return 0
		}
		queued, err := ioctlGetInt(st.fd, unix.SIOCOUTQ)
		if err != nil {
			return 0
		}
		return int64(max(size-queued, 0))
	case kindPipe:
		// The capacity is asked each time: F_SETPIPE_SZ may have
		// changed it since EV_ADD.
		size, err := fcntlInt(uintptr(st.fd), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			return 0
		}
		queued, err := ioctlGetInt(st.fd, unix.SIOCINQ)
		if err != nil {
			return 0
		}
		return int64(max(size-queued, 0))
	case kindEventfd:
		// filt_eventfdwrite() in FreeBSD's sys_eventfd.c: the room
		// left before the counter reaches its maximum, a uint64 stored
		// in the int64 data as it is (so it reads as negative until the
		// counter passes 2^63).
		if n, ok := eventfdCountFd(st.fd); ok {
			return int64(eventfdMax - n)
		}
	}
	return 0
}

// socketError is EV_EOF's Fflags: the socket's pending error, if epoll says
// there is one. Reading SO_ERROR also clears it on Linux, so it is kept for
// the rest of the registration's events.
func (st *fdState) socketError(bits uint32) uint32 {
	if bits&unix.EPOLLERR != 0 && st.isSocket() {
		if e, err := getsockoptInt(st.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
			st.err = uint32(e)
		}
	}
	return st.err
}
