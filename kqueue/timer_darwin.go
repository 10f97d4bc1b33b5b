package kqueue

import "golang.org/x/sys/unix"

// EVFILT_TIMER's unit flags on macOS: milliseconds when none is given, and
// no NOTE_MSECONDS. Its NOTE_ABSOLUTE (not FreeBSD's NOTE_ABSTIME) takes a
// deadline since the epoch, and the timer is deleted once it fires
// (filt_timervalidate() in XNU's kern_event.c).
const (
	NOTE_SECONDS  = unix.NOTE_SECONDS
	NOTE_USECONDS = unix.NOTE_USECONDS
	NOTE_NSECONDS = unix.NOTE_NSECONDS
	NOTE_ABSOLUTE = unix.NOTE_ABSOLUTE
)
