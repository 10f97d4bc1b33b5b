// Applying a changelist on Linux: the knotes are updated first, then
// epoll_ctl brings the epoll registrations in line with them.

package kqueue

import (
	"math"

	"golang.org/x/sys/unix"
)

// actions are the flags that act on a knote rather than describe it;
// the rest of what the caller set is kept and returned with each event.
// 0xf000 are the flags the kernel reserves for its own use (EV_ERROR, EV_EOF).
const actions = EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE | 0xf000

// applyChanges applies the changelist in order, as kqueue_kevent() in
// FreeBSD's kern_event.c does. A change that fails, or that asked for
// EV_RECEIPT, is written to events as an EV_ERROR entry with the errno in
// Data; once one has been written the call returns the entries without
// waiting (stop). With no room left for an entry, the call stops there and
// returns the error (n = -1, as the native call does).
func (q *queue) applyChanges(changes, events []Kevent_t) (n int, stop bool, err error) {
	for i := range changes {
		// A copy: changes and events may be the same array, as they
		// often are in C, and entry n may overwrite change i >= n.
		c := changes[i]
		err := q.apply(&c)
		if err == nil && c.Flags&EV_RECEIPT == 0 {
			continue
		}
		if n == len(events) {
			if err != nil {
				return -1, true, err
			}
			return n, true, nil
		}
		c.Flags = EV_ERROR
		c.Data = 0
		if errno, ok := err.(unix.Errno); ok {
			c.Data = int64(errno)
		}
		events[n] = c
		n++
	}
	return n, n > 0, nil
}

// apply registers one change, following kqueue_register() in kern_event.c.
func (q *queue) apply(c *Kevent_t) error {
	if c.Flags&(EV_ENABLE|EV_DISABLE) == EV_ENABLE|EV_DISABLE {
		return unix.EINVAL
	}
	switch c.Filter {
	case EVFILT_READ, EVFILT_WRITE:
		return q.applyFile(c)
	case EVFILT_TIMER, EVFILT_USER:
		return q.applyIdent(c)
	}
	return unix.EINVAL
}

func (q *queue) applyFile(c *Kevent_t) error {
	if c.Ident > math.MaxInt32 {
		return unix.EBADF
	}
	fd := int(c.Ident)
	st := q.file(fd)
	// Like the kernel, look the descriptor up first; and make sure it
	// still refers to the file its filters were added for.
	var stat unix.Stat_t
	if err := fstat(fd, &stat); err != nil {
		if st != nil {
			q.forget(st) // closed without EV_DELETE
		}
		return unix.EBADF
	}
	if st != nil && !q.same(st, &stat) {
		q.forget(st) // closed without EV_DELETE, and the number reused
		st = nil
	}
	kn := st.knote(c.Filter)
	switch {
	case kn != nil && c.Flags&EV_DELETE != 0:
		// kqueue_register() deletes an existing knote even when
		// EV_ADD is set too; only a new one is created by EV_ADD|EV_DELETE.
		q.detach(kn)
		return q.settle(st, -1)
	case c.Flags&EV_ADD != 0:
		err := q.addFile(fd, st, kn, &stat, c)
		if err == unix.ENOENT && st != nil {
			// epoll no longer knew the registration: the file was
			// closed after all, and one with the same device and
			// inode (a reopened FIFO, any eventfd) took its number.
			// settle has forgotten the old knotes; this is a new add.
			err = q.addFile(fd, nil, nil, &stat, c)
		}
		return err
	case kn == nil:
		return unix.ENOENT
	}
	// Any change but a delete replaces udata and the filter's
	// parameters: kqueue_register() sets kn_kevent.udata and
	// kn_sfflags/kn_sdata before it looks at EV_ENABLE or EV_DISABLE.
	kn.udata = c.Udata
	force := -1
	if kn.setLowat(c) && kn.enabled {
		force = kn.instance() // the filter looks again with the new mark
	}
	q.act(kn, c.Flags)
	return q.settle(st, force)
}

// addFile handles EV_ADD: a new knote, or new udata for an existing one.
func (q *queue) addFile(fd int, st *fdState, kn *knote, stat *unix.Stat_t, c *Kevent_t) error {
	if st == nil {
		st = &fdState{fd: fd, gen: q.nextGen(), dev: uint64(stat.Dev), ino: uint64(stat.Ino)}
		q.setFile(fd, st)
		// Only a socket that was neither connected nor listening can
		// change its kind later, and that one is looked at again on
		// each of its events (lookAgain).
		q.probe(st)
	}
	created := kn == nil
	force := -1
	if created {
		kn = &knote{
			ident:   c.Ident,
			filter:  c.Filter,
			flags:   c.Flags &^ actions,
			enabled: true,
			live:    true,
			file:    st,
		}
		if c.Filter == EVFILT_READ {
			st.read = kn
			// filt_soread() in uipc_socket.c holds the event until
			// so_rcv.sb_lowat bytes wait when NOTE_LOWAT is not given;
			// SO_RCVLOWAT sets that mark.
			if st.kind == kindSocket || st.kind == kindUnconnected {
				if mark, err := getsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT); err == nil && mark > 1 {
					kn.sockLowat = int64(mark)
				}
			}
		} else {
			st.write = kn
		}
	} else if kn.enabled {
		// The kernel checks the condition again when a knote is
		// re-added; re-registering does the same for epoll, and
		// re-arms an EV_CLEAR knote's edge if the condition holds.
		force = kn.instance()
	}
	kn.setLowat(c)
	// Re-adding an existing knote changes its parameters, not its kind:
	// FreeBSD keeps the flags it was created with and replaces udata.
	kn.udata = c.Udata
	flags := c.Flags
	if created {
		flags &^= EV_DELETE
	}
	q.act(kn, flags)
	err := q.settle(st, force)
	if err != nil && created && kn.live {
		q.detach(kn)
		q.settle(st, -1)
	}
	return err
}

// setLowat takes the mark from a change, as filt_soread() and
// filt_sowrite() in uipc_socket.c do for sockets: NOTE_LOWAT and data, or
// else the socket's own. kqueue_register() stores every change's fflags
// and data, so a change without NOTE_LOWAT drops an earlier mark. It
// reports whether the mark changed.
func (kn *knote) setLowat(c *Kevent_t) bool {
	old := kn.lowat
	kn.lowat = kn.sockLowat
	if c.Fflags&NOTE_LOWAT != 0 && kn.file.isSocket() {
		kn.lowat = max(c.Data, 0)
	}
	return kn.lowat != old
}

func (st *fdState) isSocket() bool {
	return st.kind == kindSocket || st.kind == kindUnconnected
}

// act applies EV_DELETE, EV_ENABLE and EV_DISABLE to a knote.
func (q *queue) act(kn *knote, flags uint16) {
	switch {
	case flags&EV_DELETE != 0:
		q.detach(kn)
	case flags&EV_ENABLE != 0:
		kn.enabled = true
	case flags&EV_DISABLE != 0:
		kn.enabled = false
	}
}

// settle brings epoll in line with st's knotes and forgets st once it has
// none left. force names an instance to re-register even if unchanged.
func (q *queue) settle(st *fdState, force int) error {
	err := q.sync(st, force)
	if err == unix.ENOENT || err == unix.EBADF {
		// epoll no longer knows a registration we made: the
		// descriptor was closed behind our back after all.
		q.forget(st)
	}
	if st.read == nil && st.write == nil {
		q.forget(st)
	}
	return err
}

// masks says which events st's enabled knotes need in each instance.
func (st *fdState) masks() (mask [3]uint32) {
	for _, kn := range [2]*knote{st.read, st.write} {
		if kn != nil && kn.enabled {
			i := kn.instance()
			mask[i] |= kn.listen()
			if i > 0 || st.kind == kindUnconnected {
				mask[i] |= unix.EPOLLET
			}
		}
	}
	return mask
}

// sync makes epoll's registrations for st match its knotes. A descriptor
// is registered in an instance only while one of its knotes there is
// enabled: epoll always reports hang-ups and errors, even with an empty
// event mask, and a disabled filter must report nothing.
func (q *queue) sync(st *fdState, force int) error {
	for i, m := range st.masks() {
		var err error
		switch had := st.mask[i]; {
		case m == had && (m == 0 || i != force):
			continue
		case had == 0:
			if err = q.openClear(i); err == nil {
				err = q.ctl(q.instanceFd(i), unix.EPOLL_CTL_ADD, st, m)
			}
			if err == unix.EEXIST {
				// A registration this package had forgotten,
				// of a file that stayed open elsewhere and
				// came back under the same number: take it over.
				err = q.ctl(q.instanceFd(i), unix.EPOLL_CTL_MOD, st, m)
			}
		case m == 0:
			err = q.ctl(q.instanceFd(i), unix.EPOLL_CTL_DEL, st, 0)
		default:
			err = q.ctl(q.instanceFd(i), unix.EPOLL_CTL_MOD, st, m)
		}
		if err != nil {
			return err
		}
		st.mask[i] = m
	}
	return nil
}

// rearm re-registers a level-triggered knote with a low-water mark after
// it has reported, so that epoll looks at its condition again.
func (q *queue) rearm(kn *knote) {
	if kn.lowat > 0 && kn.flags&EV_CLEAR == 0 && kn.live && kn.enabled {
		q.settle(kn.file, kn.instance())
	}
}

func (q *queue) instanceFd(instance int) int {
	if instance > 0 {
		return q.clear[instance-1]
	}
	return q.epfd
}

func (q *queue) ctl(epfd, op int, st *fdState, mask uint32) error {
	ev := unix.EpollEvent{Events: mask, Fd: int32(st.fd), Pad: int32(st.gen<<2 | tagFile)}
	return epollCtl(epfd, op, st.fd, &ev)
}

// openClear creates the epoll instance for EV_CLEAR knotes of one filter
// and registers it in the queue's own instance; instance 0 is epfd itself.
func (q *queue) openClear(instance int) error {
	if instance == 0 || q.clear[instance-1] >= 0 {
		return nil
	}
	fd, err := epollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: tagClear}
	if err := epollCtl(q.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		closeFd(fd)
		return err
	}
	q.clear[instance-1] = fd
	return nil
}

// probe finds out what kind of descriptor st is, so that an event's Data
// costs one system call.
func (q *queue) probe(st *fdState) {
	fd := st.fd
	was := st.kind
	defer func() {
		switch {
		case was != kindUnconnected && st.kind == kindUnconnected:
			q.unconnected.Add(1)
		case was == kindUnconnected && st.kind != kindUnconnected:
			q.unconnected.Add(-1)
		}
	}()
	typ, err := getsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil { // ENOTSOCK
		st.kind = kindOther
		switch {
		case lookup(fd) != nil && lookup(fd).epfd == fd:
			st.kind = kindQueue
		case isEventfd(fd):
			st.kind = kindEventfd
		default:
			if _, err := fcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0); err == nil {
				st.kind = kindPipe
			}
		}
		return
	}
	st.kind = kindSocket
	if listening, _ := getsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); listening == 0 {
		if typ == unix.SOCK_STREAM || typ == unix.SOCK_SEQPACKET {
			// ENOTCONN also answers for a socket that was connected and is
			// now shut down both ways; that one has hit end of file, which
			// poll tells by POLLRDHUP (it costs a call only here, off the
			// common path of a connected socket).
			if _, err := getpeername(fd); err == unix.ENOTCONN && !readHungUp(fd) {
				st.kind = kindUnconnected
			}
		}
		return
	}
	switch domain, _ := getsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); domain {
	case unix.AF_UNIX:
		st.kind = kindUnixListener
	case unix.AF_INET, unix.AF_INET6:
		if proto, _ := getsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); proto == unix.IPPROTO_TCP {
			st.kind = kindTCPListener
		}
	}
}

// lookAgain is called for an unconnected socket on each of its epoll
// events and at each Kevent call: it reports whether the socket has
// connected, failed to connect (EPOLLERR), or started listening since,
// or has been shut down for reading (EPOLLRDHUP: it was connected once),
// and if so makes its registration an ordinary one. Until then a real
// kqueue reports nothing for it: filt_sowrite() in uipc_socket.c returns 0
// for a socket that is not connected but needs a connection, and
// filt_soread() finds nothing to read and no end of file.
func (q *queue) lookAgain(st *fdState, bits uint32) bool {
	if bits&(unix.EPOLLERR|unix.EPOLLRDHUP) != 0 {
		st.kind = kindSocket
		q.unconnected.Add(-1)
	} else if q.probe(st); st.kind == kindUnconnected {
		return false
	}
	q.settle(st, 0) // level-triggered from now on, and checked again at once
	return true
}

// lookAgainAll calls lookAgain for every unconnected socket. An AF_UNIX
// connect wakes only the listener, never the connecting socket, so
// without this its write filter would not report until some other event.
func (q *queue) lookAgainAll() {
	for _, st := range q.files {
		if st != nil && st.kind == kindUnconnected {
			q.lookAgain(st, 0)
		}
	}
}
