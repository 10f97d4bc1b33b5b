// The bookkeeping behind a queue on Linux: what stands in for the kernel's
// knotes, and how an epoll registration is tied back to them.

package kqueue

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// queue is everything the emulation keeps for one kq.
type queue struct {
	mu     sync.Mutex
	closed bool

	// epfd is the kq itself: the epoll instance that holds the
	// level-triggered registrations, the timers, and the two below.
	epfd int
	// clear holds two more epoll instances, created on first use, for
	// EV_CLEAR read filters ([0]) and EV_CLEAR write filters ([1]); their
	// registrations are edge-triggered (EPOLLET). epoll allows one
	// registration per descriptor in each instance, and changing a
	// registration re-arms its edge, so each kind of knote needs an
	// instance of its own: a level read filter and an EV_CLEAR write
	// filter on one descriptor must not share a registration, nor must
	// changing the read filter re-arm the write filter's edge. Each sits
	// in epfd like any other descriptor and becomes readable when one of
	// its own registrations fires.
	clear [2]int

	files    []*fdState          // by descriptor number
	idents   map[identKey]*knote // EVFILT_TIMER and EVFILT_USER, by filter and ident
	drivers  map[int32]*knote    // the same, by the timerfd or eventfd that drives each
	gen      uint32              // last generation handed out
	pending  []*knote            // fired, but did not fit in the caller's list
	npending atomic.Int32        // len(pending), for Kevent to read without the lock
	call     uint64              // counts deliverPending's runs, to name a batch
	skip     uint64              // the batch translate must not report again
	countBuf [8]byte             // a timerfd's or eventfd's counter is read here
	pollBuf  [1]unix.PollFd      // for re-checking a pending level knote
	diag     diag                // for listening AF_UNIX sockets' Data
	peekBuf  [16]unix.EpollEvent // for counting this queue's events (a kqueue in a kqueue)

	// wake is an eventfd in epfd that is readable exactly while the
	// pending list is not empty, so that a goroutine already asleep in
	// epoll_wait wakes for an event another caller had no room for.
	wake    int
	wakeSet bool
	// unconnected counts the watched stream sockets that were neither
	// connected nor listening when last looked at (see kindUnconnected).
	unconnected atomic.Int32
	// epoch counts rebuilds of epfd (see rebuild): an epoll_wait that
	// started before one may report the old instance's leftovers.
	epoch atomic.Uint32
	stale uint64 // the forgotten registration the last wait reported
	// nudge is an eventfd, readable for ever, that the last rebuild
	// registered in the instance it replaced, to wake the callers still
	// asleep there (see rebuild).
	nudge int

	waitBuf  [128]unix.EpollEvent // what epoll_wait on epfd fills
	waiting  atomic.Bool          // waitBuf is in use
	clearBuf [128]unix.EpollEvent // what epoll_wait on clear[i] fills, under mu
}

// knote is one registration, named by (ident, filter) as in the kernel.
type knote struct {
	ident  uint64
	filter int16
	flags  uint16 // returned with every event: EV_ONESHOT, EV_CLEAR, ...
	udata  uint64

	enabled bool
	live    bool   // false once deleted: stale pointers to it are ignored
	queued  bool   // waiting in queue.pending
	bits    uint32 // the epoll events that made a queued knote fire
	sent    uint64 // the batch of pending events that last reported it

	// lowat is NOTE_LOWAT's mark, or else sockLowat, SO_RCVLOWAT's at
	// EV_ADD (see addFile): the filter reports only once that many
	// bytes wait (or that much room is free). 0 means no mark.
	lowat, sockLowat int64

	file *fdState // EVFILT_READ and EVFILT_WRITE
	dfd  int      // EVFILT_TIMER, EVFILT_USER: the timerfd or eventfd that drives it
	gen  uint32   // EVFILT_TIMER, EVFILT_USER: its generation, as in fdState.gen

	// EVFILT_USER's state, as filt_usertouch() in kern_event.c keeps it.
	sfflags uint32
	sdata   int64
}

// identKey names a knote whose ident is not a descriptor.
type identKey struct {
	filter int16
	ident  uint64
}

// fdState is what the queue knows about one watched descriptor.
type fdState struct {
	fd int
	// gen is written into the epoll registration's data and checked on
	// every event, so that an event for a registration this package has
	// forgotten can never be taken for one of the descriptor's new
	// registrations.
	gen uint32
	// dev and ino name the file the descriptor referred to when its
	// first filter was added. A change to its filters first checks that
	// the descriptor still refers to that file (see identity_linux.go):
	// if it was closed without EV_DELETE and the number reused, the old
	// filters are gone, as they would be on a real kqueue.
	dev, ino    uint64
	kind        fdKind
	read, write *knote

	// The registration in each instance (level, clear read, clear
	// write) and its events; mask 0 means not registered.
	mask [3]uint32
	err  uint32 // the socket error, once seen (see socketError)
}

// fdKind says how to fill Data for a descriptor; it is found out when a
// filter is added, so that an event costs at most one system call for Data
// (two for a socket's write filter, see writable).
type fdKind uint8

const (
	kindOther        fdKind = iota // FIONREAD where it works, else 0
	kindPipe                       // FIONREAD; F_GETPIPE_SZ - FIONREAD for the write side
	kindSocket                     // SIOCINQ; SO_SNDBUF - SIOCOUTQ
	kindTCPListener                // the accept queue, from TCP_INFO
	kindUnixListener               // the accept queue, from sock_diag
	kindQueue                      // a kqueue of this package: its pending events
	kindEventfd                    // the counter, from /proc/self/fdinfo
	// A stream socket neither connected nor listening. Linux reports
	// EPOLLHUP for it (a socket in the closed state), a real kqueue
	// nothing. Its registration is edge-triggered, so that the hang-up
	// is seen once and dropped, and each later wake-up (a connection
	// made, or coming in once it listens) makes the package look again.
	kindUnconnected
)

// The epoll data of a registration says what it is for: Fd holds the
// descriptor (or timerfd, or clear instance), Pad holds gen<<2 | tag.
const (
	tagFile   = 0
	tagDriver = 1 // a timerfd or an eventfd of EVFILT_TIMER or EVFILT_USER
	tagClear  = 2
	tagWake   = 3

	genMask = 1<<30 - 1
)

func (q *queue) nextGen() uint32 {
	q.gen = (q.gen + 1) & genMask
	return q.gen
}

// instance says which epoll instance holds a knote's registration: 0 for
// level-triggered (epfd), 1 and 2 for EV_CLEAR read and write (clear[0],
// clear[1]). A knote with a low-water mark is edge-triggered too, so that
// epoll does not wake the loop for ever while too few bytes wait; a
// level-triggered one is re-armed after each event it reports (rearm).
func (kn *knote) instance() int {
	switch {
	case kn.flags&EV_CLEAR == 0 && kn.lowat == 0:
		return 0
	case kn.filter == EVFILT_READ:
		return 1
	}
	return 2
}

// The epoll events each filter listens for, and those that make it fire.
// Read listens for EPOLLRDHUP too, to see the peer's shutdown (EV_EOF) while
// data is still waiting. EPOLLHUP and EPOLLERR are always reported.
const (
	readListen  = unix.EPOLLIN | unix.EPOLLRDHUP
	writeListen = unix.EPOLLOUT
	readFires   = readListen | unix.EPOLLHUP | unix.EPOLLERR
	writeFires  = writeListen | unix.EPOLLHUP | unix.EPOLLERR
)

func (kn *knote) listen() uint32 {
	if kn.filter == EVFILT_READ {
		return readListen
	}
	return writeListen
}

func (kn *knote) fires() uint32 {
	if kn.filter == EVFILT_READ {
		return readFires
	}
	return writeFires
}

func (q *queue) file(fd int) *fdState {
	if fd < 0 || fd >= len(q.files) {
		return nil
	}
	return q.files[fd]
}

func (q *queue) setFile(fd int, st *fdState) {
	for fd >= len(q.files) {
		q.files = append(q.files, nil)
	}
	q.files[fd] = st
}

func (st *fdState) knote(filter int16) *knote {
	switch {
	case st == nil:
		return nil
	case filter == EVFILT_READ:
		return st.read
	}
	return st.write
}

// detach removes a knote. Its pending event, if any, goes with it: the
// knote is marked dead and deliverPending skips dead knotes.
func (q *queue) detach(kn *knote) {
	kn.live = false
	if st := kn.file; st != nil {
		if st.read == kn {
			st.read = nil
		}
		if st.write == kn {
			st.write = nil
		}
	}
}

// forget drops all bookkeeping for a descriptor without telling epoll,
// which has already dropped (or can no longer be asked to drop) the
// registrations.
func (q *queue) forget(st *fdState) {
	for _, kn := range [2]*knote{st.read, st.write} {
		if kn != nil {
			q.detach(kn)
		}
	}
	if st.kind == kindUnconnected {
		st.kind = kindSocket
		q.unconnected.Add(-1)
	}
	st.mask = [3]uint32{}
	if q.file(st.fd) == st {
		q.setFile(st.fd, nil)
	}
}

// release frees what the queue holds besides the epoll instance itself,
// which Close closes. The caller holds q.mu.
func (q *queue) release() {
	q.closed = true
	for _, kn := range q.idents {
		kn.live = false
		unix.Close(kn.dfd)
	}
	for _, fd := range []*int{&q.clear[0], &q.clear[1], &q.diag.fd, &q.wake, &q.nudge} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	for _, st := range q.files {
		if st != nil {
			q.forget(st)
		}
	}
	q.files, q.idents, q.drivers, q.pending = nil, nil, nil, nil
	q.npending.Store(0)
}
