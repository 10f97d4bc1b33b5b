// Getting rid of registrations that epoll keeps and this package cannot
// remove.
//
// epoll ties a registration to the open file, not to the descriptor. When
// a descriptor is closed while a duplicate keeps its file open (a dup, a
// child process, a socket in flight), the registration stays, under the
// old number, and epoll_ctl can no longer reach it: EPOLL_CTL_DEL looks it
// up by the file that number names now. Once the package has forgotten the
// descriptor (the caller deleted its filters, or the number names another
// file), a level-triggered leftover would make every epoll_wait return at
// once, for ever: a busy loop. The only way to drop such a registration is
// to drop its epoll instance. So rebuild makes a new instance holding the
// registrations the package does know, and puts it under the kq's number
// with dup3, which closes the old one.

package kqueue

import "golang.org/x/sys/unix"

// afterWait runs after each epoll_wait, with q.mu held. stale names a
// registration the package has forgotten that the wait reported, or is 0;
// epoch is the instance the wait started on. A registration the package
// removed itself can still be reported once, by a wait that had collected
// it just before; one reported by two waits in a row is a leftover.
func (q *queue) afterWait(epoch uint32, stale uint64) {
	seen := q.stale
	q.stale = stale
	if stale != 0 && stale == seen && epoch == q.epoch.Load() {
		q.stale = 0
		q.rebuild()
	}
}

// rebuild replaces epfd by a new epoll instance with the same
// registrations, less those the package has forgotten. Descriptors whose
// number names another file by now (kcmp says so) are forgotten too. A
// caller asleep in the old instance (another goroutine's Kevent) is woken
// at once by the leftover itself, which is ready; should the leftover stop
// being ready first, a nudge wakes it: an eventfd that is readable from
// the start and registered in the old instance alone. Either way the caller
// then waits again under the kq's number, in the new instance. The nudge
// stays open until the next rebuild, by when every such caller has left.
func (q *queue) rebuild() {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return
	}
	add := func(target int, ev unix.EpollEvent) error {
		return unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, target, &ev)
	}
	err = add(q.wake, unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(q.wake), Pad: tagWake})
	for _, c := range q.clear {
		if c >= 0 && err == nil {
			err = add(c, unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c), Pad: tagClear})
		}
	}
	for _, kn := range q.idents {
		ev := unix.EpollEvent{Fd: int32(kn.dfd), Pad: int32(kn.gen<<2 | tagDriver)}
		if kn.enabled {
			ev.Events = unix.EPOLLIN
		}
		if err == nil {
			err = add(kn.dfd, ev)
		}
	}
	if err != nil {
		unix.Close(fd)
		return
	}
	for _, st := range q.files {
		if st == nil || st.mask[0] == 0 {
			continue
		}
		if same, ok := registered(st.fd, q.epfd); ok && !same {
			q.forget(st)
			continue
		}
		if q.ctl(fd, unix.EPOLL_CTL_ADD, st, st.mask[0]) != nil {
			q.forget(st)
		}
	}
	nudge, err := unix.Eventfd(1, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err == nil {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(nudge), Pad: tagWake}
		if err = unix.EpollCtl(q.epfd, unix.EPOLL_CTL_ADD, nudge, &ev); err != nil {
			unix.Close(nudge)
		}
	}
	if err != nil {
		unix.Close(fd)
		return
	}
	if err := unix.Dup3(fd, q.epfd, unix.O_CLOEXEC); err != nil {
		unix.Close(fd)
		unix.Close(nudge)
		return
	}
	unix.Close(fd)
	q.epoch.Add(1)
	if q.nudge >= 0 {
		unix.Close(q.nudge)
	}
	q.nudge = nudge
}
