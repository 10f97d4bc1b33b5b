// Package kqueue is the kqueue(2) interface the workbook's stages program
// against. Its names follow kevent(2) and golang.org/x/sys/unix, so that the
// lesson code reads like the C articles it mirrors:
//
//	kq, err := kqueue.Kqueue()
//	var change kqueue.Kevent_t
//	kqueue.EV_SET(&change, fd, kqueue.EVFILT_READ, kqueue.EV_ADD, 0, 0, token)
//	n, err := kqueue.Kevent(kq, []kqueue.Kevent_t{change}, events, nil)
//
// On macOS, FreeBSD, OpenBSD, NetBSD and DragonFly BSD the calls go straight
// to the kernel's kqueue through x/sys/unix; this package only converts
// between its one portable Kevent_t and each system's struct kevent.
//
// Linux has no kqueue, so there the package emulates it over epoll(7),
// timerfd and a little bookkeeping of its own. The emulation follows the
// FreeBSD kevent(2) manual page; kqueue/README.md lists every feature, how
// Linux provides it, and where the two still differ.
//
// Kevent returns the number of events it stored, or -1 and an error. As in
// C, EINTR is one of those errors: a signal arrived while the call waited.
// The changes passed in were applied all the same; call again to wait.
//
// The constants carry each system's real values: EVFILT_READ is -1 on most
// BSDs but 0 on NetBSD, so compare filters with ==, never as bit masks.
// NetBSD has no EV_RECEIPT or EV_DISPATCH, and OpenBSD and NetBSD have no
// EVFILT_USER (x/sys defines none of them there); code that uses them does
// not build there. The timer's unit flags exist on FreeBSD, macOS (without
// NOTE_MSECONDS, and with NOTE_ABSOLUTE for FreeBSD's NOTE_ABSTIME) and
// Linux.
//
// Udata is an integer token, not a pointer. The C articles store a pointer to
// the client's state in udata; a Go program must not, because the garbage
// collector cannot see a pointer the kernel holds and may free what it points
// to. Store an index into a table of your own instead (stage 06 shows how).
package kqueue

// Kevent_t is struct kevent, with the same six fields on every system.
//
// Ident is what the event is about: a file descriptor for EVFILT_READ and
// EVFILT_WRITE, any number the caller picks for EVFILT_TIMER and
// EVFILT_USER. Together with
// Filter it names one registration (a "knote" in the kernel's words).
//
// Filter says which condition is watched: EVFILT_READ, EVFILT_WRITE,
// EVFILT_TIMER or EVFILT_USER. It is a small signed number, not a bit mask.
//
// Flags are actions on the way in (EV_ADD, EV_DELETE, ...) and state on the
// way out (EV_EOF, EV_ERROR).
//
// Fflags are filter-specific flags: NOTE_LOWAT on the way in for a
// low-water mark in Data, the timer's unit, EVFILT_USER's NOTE_TRIGGER and
// its own flags; on an EV_EOF event for a socket they carry the socket's
// pending error, if any.
//
// Data is filter-specific data: bytes waiting to be read for EVFILT_READ,
// pending connections on a listening socket, events waiting in a kqueue,
// free space in the send buffer for EVFILT_WRITE, the timer period
// (milliseconds unless a unit flag says otherwise) on the way in and the
// number of expirations on the way out for EVFILT_TIMER. In an EV_ERROR
// entry it is the errno of the change that failed.
//
// Udata is the caller's token, stored with the registration and returned
// unchanged with every event it produces. The kernel's udata is as wide as a
// pointer, so on 32-bit systems only the low 32 bits come back: keep tokens
// below 1<<32 for code meant to run everywhere.
type Kevent_t struct {
	Ident  uint64
	Filter int16
	Flags  uint16
	Fflags uint32
	Data   int64
	Udata  uint64
}

// EV_SET fills in a change the way the C macro of the same name does.
func EV_SET(k *Kevent_t, ident int, filter int16, flags uint16, fflags uint32, data int64, udata uint64) {
	*k = Kevent_t{
		Ident:  uint64(ident),
		Filter: filter,
		Flags:  flags,
		Fflags: fflags,
		Data:   data,
		Udata:  udata,
	}
}
