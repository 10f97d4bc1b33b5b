// Which file a descriptor number names, and what kind of file it is, where
// fstat's device and inode cannot tell.
//
// kqueue forgets a descriptor's knotes when it is closed. The emulation
// cannot see close, so before each change it asks whether the number still
// names the file its knotes were made for. Device and inode are not enough:
// every eventfd shares one anonymous inode, and a FIFO opened again has the
// same device and inode as before. kcmp(2) answers the real question, "is
// the file at this number the one registered under it in this epoll
// instance?" (KCMP_EPOLL_TFD), whenever the descriptor is registered; fstat
// is the fallback when it is not (all its filters disabled), or where kcmp
// is missing (a kernel without it, or a sandbox that forbids it).

package kqueue

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const kcmpEpollTfd = 7 // KCMP_EPOLL_TFD, from linux/kcmp.h

var (
	pid         = uintptr(unix.Getpid())
	kcmpMissing atomic.Bool
)

// registered asks kcmp whether fd names the file that epfd holds a
// registration for under the number fd. ok is false when kcmp cannot say.
func registered(fd, epfd int) (same, ok bool) {
	if kcmpMissing.Load() {
		return false, false
	}
	// epfd may hold several registrations under the number fd: the
	// current file's, and a leftover for each file that was closed under
	// that number while a duplicate kept it open (see rebuild_linux.go).
	// epoll orders them by the files' addresses in the kernel, so the
	// current one may come after any number of leftovers: toff counts
	// through them all, until kcmp says there is none further.
	for toff := uint32(0); ; toff++ {
		slot := [3]uint32{uint32(epfd), uint32(fd), toff} // struct kcmp_epoll_slot
		r, _, errno := unix.Syscall6(unix.SYS_KCMP, pid, pid, kcmpEpollTfd, uintptr(fd), uintptr(unsafe.Pointer(&slot)), 0)
		traceKcmp(fd, epfd, toff, r, errno)
		switch errno {
		case 0:
			if r == 0 {
				return true, true
			}
			continue
		case unix.ENOENT:
			return false, true // no (further) registration under that number
		case unix.ENOSYS, unix.EPERM, unix.EACCES:
			kcmpMissing.Store(true)
		}
		return false, false
	}
}

// is reports whether stat describes the file st's filters were added for,
// by device and inode.
func (st *fdState) is(stat *unix.Stat_t) bool {
	return st.dev == uint64(stat.Dev) && st.ino == uint64(stat.Ino)
}

// same reports whether st's descriptor, whose fstat is stat, still names
// the file st's filters were added for.
func (q *queue) same(st *fdState, stat *unix.Stat_t) bool {
	if !st.is(stat) {
		return false
	}
	for i, m := range st.mask {
		if m != 0 {
			if same, ok := registered(st.fd, q.instanceFd(i)); ok {
				return same
			}
			break
		}
	}
	return true
}

// stillOpen reports whether st's descriptor is open and names that file.
func (q *queue) stillOpen(st *fdState) bool {
	var stat unix.Stat_t
	return fstat(st.fd, &stat) == nil && q.same(st, &stat)
}

// isEventfd reports whether fd is an eventfd: its /proc link names the
// anonymous inode "[eventfd]".
func isEventfd(fd int) bool {
	var buf [32]byte
	n, err := readlink("/proc/self/fd/"+strconv.Itoa(fd), buf[:])
	return err == nil && string(buf[:n]) == "anon_inode:[eventfd]"
}

// eventfdMax is the largest value an eventfd's counter holds (eventfd(2)).
const eventfdMax = 1<<64 - 2

// eventfdCountFd reads an eventfd's counter without changing it: read(2)
// would reset it, so it comes from the "eventfd-count" line of
// /proc/self/fdinfo, at the cost of opening and reading that file.
func eventfdCountFd(fd int) (uint64, bool) {
	info, err := readFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, false
	}
	const key = "eventfd-count:"
	at := bytes.Index(info, []byte(key))
	if at < 0 {
		return 0, false
	}
	field := info[at+len(key):]
	if end := bytes.IndexByte(field, '\n'); end >= 0 {
		field = field[:end]
	}
	n, err := strconv.ParseUint(string(bytes.TrimSpace(field)), 16, 64)
	return n, err == nil
}

// countOf is EVFILT_READ's Data for a kqueue of this package watched by
// another: filt_kqueue() in kern_event.c reports the number of events
// waiting in it.
func countOf(kq int) int64 {
	q := lookup(kq)
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count()
}

// count is the number of knotes that would report if the queue were
// waited on now: those in the pending list, and those whose registration
// epoll says is ready. The caller holds q.mu. A ready EV_CLEAR instance
// counts as one event, since looking inside would use up its edges.
func (q *queue) count() int64 {
	if q.closed {
		return 0
	}
	n := int64(len(q.pending))
	got, err := epollWait(q.epfd, q.peekBuf[:], 0)
	if err != nil {
		return n
	}
	for _, ev := range q.peekBuf[:got] {
		switch uint32(ev.Pad) & 3 {
		case tagFile:
			st := q.file(int(ev.Fd))
			if st == nil || st.gen != uint32(ev.Pad)>>2 {
				continue
			}
			for _, kn := range [2]*knote{st.read, st.write} {
				if kn != nil && kn.enabled && !kn.queued && kn.instance() == 0 && ev.Events&kn.fires() != 0 {
					n++
				}
			}
		case tagDriver:
			if kn := q.drivers[ev.Fd]; kn != nil && kn.enabled && !kn.queued {
				n++
			}
		case tagClear:
			n++
		}
	}
	return n
}
