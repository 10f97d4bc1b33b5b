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
	case EVFILT_TIMER:
		return q.applyTimer(c)
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
	if err := unix.Fstat(fd, &stat); err != nil {
		if st != nil {
			q.forget(st) // closed without EV_DELETE
		}
		return unix.EBADF
	}
	if st != nil && !st.is(&stat) {
		q.forget(st) // closed without EV_DELETE, and the number reused
		st = nil
	}
	kn := st.knote(c.Filter)
	if c.Flags&EV_ADD != 0 {
		return q.addFile(fd, st, kn, &stat, c)
	}
	if kn == nil {
		return unix.ENOENT
	}
	q.act(kn, c.Flags)
	return q.settle(st, -1)
}

// addFile handles EV_ADD: a new knote, or new udata for an existing one.
func (q *queue) addFile(fd int, st *fdState, kn *knote, stat *unix.Stat_t, c *Kevent_t) error {
	if st == nil {
		st = &fdState{fd: fd, gen: q.nextGen(), dev: uint64(stat.Dev), ino: uint64(stat.Ino)}
		q.setFile(fd, st)
	}
	// Every time: a socket may have started listening since.
	st.probe(fd)
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
		} else {
			st.write = kn
		}
	} else if kn.enabled {
		// The kernel checks the condition again when a knote is
		// re-added; re-registering does the same for epoll, and
		// re-arms an EV_CLEAR knote's edge if the condition holds.
		force = kn.instance()
	}
	// Re-adding an existing knote changes its parameters, not its kind:
	// FreeBSD keeps the flags it was created with and replaces udata.
	kn.udata = c.Udata
	q.act(kn, c.Flags)
	err := q.settle(st, force)
	if err != nil && created && kn.live {
		q.detach(kn)
		q.settle(st, -1)
	}
	return err
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

// sync makes epoll's registrations for st match its knotes. A descriptor
// is registered in an instance only while one of its knotes there is
// enabled: epoll always reports hang-ups and errors, even with an empty
// event mask, and a disabled filter must report nothing.
func (q *queue) sync(st *fdState, force int) error {
	var mask [3]uint32
	for _, kn := range [2]*knote{st.read, st.write} {
		if kn != nil && kn.enabled {
			i := kn.instance()
			mask[i] |= kn.listen()
			if i > 0 {
				mask[i] |= unix.EPOLLET
			}
		}
	}
	for i, m := range mask {
		var err error
		switch had := st.mask[i]; {
		case m == had && (m == 0 || i != force):
			continue
		case had == 0:
			if err = q.openClear(i); err == nil {
				err = q.ctl(i, unix.EPOLL_CTL_ADD, st, m)
			}
			if err == unix.EEXIST {
				// A registration this package had forgotten,
				// of a file that stayed open elsewhere and
				// came back under the same number: take it over.
				err = q.ctl(i, unix.EPOLL_CTL_MOD, st, m)
			}
		case m == 0:
			err = q.ctl(i, unix.EPOLL_CTL_DEL, st, 0)
		default:
			err = q.ctl(i, unix.EPOLL_CTL_MOD, st, m)
		}
		if err != nil {
			return err
		}
		st.mask[i] = m
	}
	return nil
}

func (q *queue) ctl(instance, op int, st *fdState, mask uint32) error {
	epfd := q.epfd
	if instance > 0 {
		epfd = q.clear[instance-1]
	}
	ev := unix.EpollEvent{Events: mask, Fd: int32(st.fd), Pad: int32(st.gen<<2 | tagFile)}
	return unix.EpollCtl(epfd, op, st.fd, &ev)
}

// openClear creates the epoll instance for EV_CLEAR knotes of one filter
// and registers it in the queue's own instance; instance 0 is epfd itself.
func (q *queue) openClear(instance int) error {
	if instance == 0 || q.clear[instance-1] >= 0 {
		return nil
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: tagClear}
	if err := unix.EpollCtl(q.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return err
	}
	q.clear[instance-1] = fd
	return nil
}

// is reports whether stat describes the file st's filters were added for.
func (st *fdState) is(stat *unix.Stat_t) bool {
	return st.dev == uint64(stat.Dev) && st.ino == uint64(stat.Ino)
}

// sameFile reports whether st's descriptor still refers to that file.
func (st *fdState) sameFile() bool {
	var stat unix.Stat_t
	return unix.Fstat(st.fd, &stat) == nil && st.is(&stat)
}

// probe finds out what kind of descriptor fd is, so that an event's Data
// costs one system call.
func (st *fdState) probe(fd int) {
	_, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil { // ENOTSOCK
		st.kind = kindOther
		if size, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0); err == nil {
			st.kind, st.pipeSize = kindPipe, size
		}
		return
	}
	st.kind = kindSocket
	if listening, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); listening == 0 {
		return
	}
	switch domain, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); domain {
	case unix.AF_UNIX:
		st.kind = kindUnixListener
	case unix.AF_INET, unix.AF_INET6:
		if proto, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); proto == unix.IPPROTO_TCP {
			st.kind = kindTCPListener
		}
	}
}
