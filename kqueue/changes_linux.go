// Applying a changelist on Linux: the bookkeeping that stands in for the
// kernel's knotes, and the epoll_ctl calls that keep epoll in step with it.

package kqueue

import (
	"math"
	"sync"

	"golang.org/x/sys/unix"
)

// queue is everything the emulation keeps for one kq.
type queue struct {
	mu     sync.Mutex
	closed bool

	// epfd is the kq itself: the epoll instance that holds every
	// level-triggered registration, the timers, and clearFd.
	epfd int
	// clearFd is a second epoll instance, created on the first EV_CLEAR,
	// that holds the edge-triggered registrations. epoll allows one
	// registration per descriptor per instance, so a descriptor whose read
	// filter is level-triggered and whose write filter has EV_CLEAR needs
	// two instances. clearFd sits in epfd like any other descriptor and
	// becomes readable when one of its own registrations fires.
	clearFd int

	files      []*fdState        // by descriptor number
	timers     map[uint64]*knote // by the caller's ident
	timerByTfd map[int32]*knote  // by the timerfd that drives it
	gen        uint32            // last generation handed out
	pending    []*knote          // fired, but did not fit in the caller's list
	timerBuf   [8]byte           // a timerfd's expiration count is read here
	pollBuf    [1]unix.PollFd    // for re-checking a pending level knote
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

	file *fdState // EVFILT_READ and EVFILT_WRITE
	tfd  int      // EVFILT_TIMER: its timerfd
	gen  uint32   // EVFILT_TIMER: its generation, as in fdState.gen
}

// fdState is what the queue knows about one watched descriptor.
type fdState struct {
	fd int
	// gen is written into the epoll registration's data and checked on
	// every event, so that an event for a registration this package has
	// forgotten (the descriptor was closed and its number reused) can
	// never be taken for one about the new file.
	gen         uint32
	kind        fdKind
	pipeSize    int // for a pipe: its capacity, which fills EVFILT_WRITE's data
	read, write *knote

	in   [2]bool   // registered in [level, clear] epoll instance
	mask [2]uint32 // with these events
	err  uint32    // the socket error, once seen (see socketError)
}

// fdKind says how to fill Data for a descriptor; it is found out when a
// filter is added, so that an event costs at most one system call for Data.
type fdKind uint8

const (
	kindOther        fdKind = iota // FIONREAD where it works, else 0
	kindPipe                       // FIONREAD; F_GETPIPE_SZ for the write side
	kindSocket                     // SIOCINQ; SO_SNDBUF - SIOCOUTQ
	kindTCPListener                // the accept queue, from TCP_INFO
	kindUnixListener               // the accept queue, from sock_diag
)

// The epoll data of a registration carries a tag saying what it is and a
// generation number: Fd holds the descriptor, Pad holds gen<<2 | tag.
const (
	tagFile  = 0
	tagTimer = 1
	tagClear = 2

	genMask = 1<<30 - 1
)

func (q *queue) nextGen() uint32 {
	q.gen = (q.gen + 1) & genMask
	return q.gen
}

// actions are the flags that act on a knote rather than describe it;
// the rest of what the caller set is kept and returned with each event.
// 0xf000 are the flags the kernel reserves for its own use (EV_ERROR, EV_EOF).
const actions = EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE | 0xf000

// applyChanges applies the changelist in order, as kqueue_kevent() in
// FreeBSD's kern_event.c does. A change that fails, or that asked for
// EV_RECEIPT, is written to events as an EV_ERROR entry with the errno in
// Data; once one has been written the call returns the entries without
// waiting (stop). With no room left for an entry, the call stops there and
// returns the error.
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
	kn := st.knote(c.Filter)
	if c.Flags&EV_ADD != 0 {
		return q.addFile(fd, st, kn, c, true)
	}
	if kn == nil {
		// The kernel looks the descriptor up before the knote.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return unix.EBADF
		}
		return unix.ENOENT
	}
	q.act(st, kn, c.Flags)
	return q.settle(st)
}

// addFile handles EV_ADD: a new knote, or new udata for an existing one.
func (q *queue) addFile(fd int, st *fdState, kn *knote, c *Kevent_t, retry bool) error {
	kind, pipeSize, err := probe(fd)
	if err != nil {
		return err
	}
	if st == nil {
		st = &fdState{fd: fd, gen: q.nextGen()}
		q.setFile(fd, st)
	}
	st.kind, st.pipeSize = kind, pipeSize
	created := kn == nil
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
	}
	// Re-adding an existing knote changes its parameters, not its kind:
	// FreeBSD keeps the flags it was created with and replaces udata.
	kn.udata = c.Udata
	q.act(st, kn, c.Flags&^EV_ADD)
	err = q.sync(st)
	if _, stale := err.(staleError); stale && retry {
		// The descriptor was closed without EV_DELETE and the number
		// now names another file. The old knotes went with the old
		// file; start afresh for the new one.
		q.forget(st)
		return q.addFile(fd, nil, nil, c, false)
	}
	if err != nil {
		if created {
			q.detach(kn)
		}
		q.settle(st) // the first error is the one to report
		return unwrapStale(err)
	}
	return nil
}

// act applies EV_DELETE, EV_ENABLE and EV_DISABLE to the bookkeeping.
func (q *queue) act(st *fdState, kn *knote, flags uint16) {
	switch {
	case flags&EV_DELETE != 0:
		q.detach(kn)
	case flags&EV_ENABLE != 0:
		kn.enabled = true
	case flags&EV_DISABLE != 0:
		kn.enabled = false
	}
}

// settle brings epoll in line with st after a change and forgets st once it
// has no knotes left.
func (q *queue) settle(st *fdState) error {
	err := q.sync(st)
	if _, stale := err.(staleError); stale {
		q.forget(st)
	}
	if st.read == nil && st.write == nil {
		q.setFile(st.fd, nil)
	}
	return unwrapStale(err)
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
// which has already dropped (or cannot reach) the registrations.
func (q *queue) forget(st *fdState) {
	for _, kn := range [2]*knote{st.read, st.write} {
		if kn != nil {
			q.detach(kn)
		}
	}
	st.in = [2]bool{}
	if q.file(st.fd) == st {
		q.setFile(st.fd, nil)
	}
}

// staleError is what sync returns when epoll no longer knows a registration
// this package made: the descriptor was closed (EBADF) or its number now
// names another file (ENOENT).
type staleError unix.Errno

func (e staleError) Error() string { return unix.Errno(e).Error() }

func unwrapStale(err error) error {
	if e, ok := err.(staleError); ok {
		return unix.Errno(e)
	}
	return err
}

// epoll events each filter listens for, and those that make it fire. Read
// listens for EPOLLRDHUP too, to see the peer's shutdown (EV_EOF) while data
// is still waiting. EPOLLHUP and EPOLLERR are always reported.
const (
	readListen  = unix.EPOLLIN | unix.EPOLLRDHUP
	writeListen = unix.EPOLLOUT
	readFires   = readListen | unix.EPOLLHUP | unix.EPOLLERR
	writeFires  = writeListen | unix.EPOLLHUP | unix.EPOLLERR
)

// instance says which epoll instance holds a knote: 0 for level-triggered
// (epfd), 1 for EV_CLEAR (clearFd).
func (kn *knote) instance() int {
	if kn.flags&EV_CLEAR != 0 {
		return 1
	}
	return 0
}

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

// sync makes epoll's registrations for st match its knotes.
//
// Every existing registration is modified even when its mask did not
// change: EPOLL_CTL_MOD failing with ENOENT or EBADF is how this package
// learns that the descriptor was closed behind its back (see staleError),
// and a change must not silently succeed on a knote that is gone. A
// registration whose knotes are all disabled stays in place with only
// EPOLLET: epoll then reports nothing but a hang-up or error, once, which
// translate ignores, and the registration still answers for the file.
func (q *queue) sync(st *fdState) error {
	var want [2]bool
	var mask [2]uint32
	for _, kn := range [2]*knote{st.read, st.write} {
		if kn == nil {
			continue
		}
		i := kn.instance()
		want[i] = true
		if kn.enabled {
			mask[i] |= kn.listen()
		}
	}
	for i := range mask {
		if want[i] && (i == 1 || mask[i] == 0) {
			mask[i] |= unix.EPOLLET
		}
	}
	// Existing registrations first, so that a stale descriptor is found
	// before anything is added for it.
	for i := range want {
		if !st.in[i] {
			continue
		}
		var err error
		if want[i] {
			err = q.ctl(i, unix.EPOLL_CTL_MOD, st, mask[i])
		} else {
			err = q.ctl(i, unix.EPOLL_CTL_DEL, st, 0)
			st.in[i] = false
		}
		if err == unix.ENOENT || err == unix.EBADF {
			return staleError(err.(unix.Errno))
		}
		if err != nil {
			return err
		}
		st.mask[i] = mask[i]
	}
	for i := range want {
		if st.in[i] || !want[i] {
			continue
		}
		if i == 1 {
			if err := q.openClear(); err != nil {
				return err
			}
		}
		err := q.ctl(i, unix.EPOLL_CTL_ADD, st, mask[i])
		if err == unix.EEXIST {
			err = q.ctl(i, unix.EPOLL_CTL_MOD, st, mask[i])
		}
		if err != nil {
			return err
		}
		st.in[i], st.mask[i] = true, mask[i]
	}
	return nil
}

func (q *queue) ctl(instance, op int, st *fdState, mask uint32) error {
	epfd := q.epfd
	if instance == 1 {
		epfd = q.clearFd
	}
	ev := unix.EpollEvent{Events: mask, Fd: int32(st.fd), Pad: int32(st.gen<<2 | tagFile)}
	return unix.EpollCtl(epfd, op, st.fd, &ev)
}

// openClear creates the epoll instance for EV_CLEAR knotes and registers it
// in the queue's own instance.
func (q *queue) openClear() error {
	if q.clearFd >= 0 {
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
	q.clearFd = fd
	return nil
}

// probe finds out what kind of descriptor fd is, so that an event's Data
// costs one system call. It runs on every EV_ADD: a socket may have started
// listening since it was last added.
func probe(fd int) (kind fdKind, pipeSize int, err error) {
	_, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err == unix.ENOTSOCK {
		if size, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0); err == nil {
			return kindPipe, size, nil
		}
		return kindOther, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if listening, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); listening == 0 {
		return kindSocket, 0, nil
	}
	switch domain, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); domain {
	case unix.AF_UNIX:
		return kindUnixListener, 0, nil
	case unix.AF_INET, unix.AF_INET6:
		if proto, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); proto == unix.IPPROTO_TCP {
			return kindTCPListener, 0, nil
		}
	}
	return kindSocket, 0, nil
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

// release frees what the queue holds besides the epoll instance itself,
// which Close closes. The caller holds q.mu.
func (q *queue) release() {
	q.closed = true
	for _, kn := range q.timers {
		kn.live = false
		unix.Close(kn.tfd)
	}
	if q.clearFd >= 0 {
		unix.Close(q.clearFd)
		q.clearFd = -1
	}
	for _, st := range q.files {
		if st != nil {
			q.forget(st)
		}
	}
	q.files, q.timers, q.timerByTfd, q.pending = nil, nil, nil, nil
}
