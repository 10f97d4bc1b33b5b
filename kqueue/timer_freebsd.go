package kqueue

import "golang.org/x/sys/unix"

// EVFILT_TIMER's unit flags (milliseconds when none is given) and
// NOTE_ABSTIME, for a deadline in that unit since the epoch.
const (
	NOTE_SECONDS  = unix.NOTE_SECONDS
	NOTE_MSECONDS = unix.NOTE_MSECONDS
	NOTE_USECONDS = unix.NOTE_USECONDS
	NOTE_NSECONDS = unix.NOTE_NSECONDS
	NOTE_ABSTIME  = unix.NOTE_ABSTIME
)
