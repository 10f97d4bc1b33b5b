//go:build darwin || dragonfly || freebsd

package kqueue

import "golang.org/x/sys/unix"

// EVFILT_USER: an event that the program triggers itself, with NOTE_TRIGGER,
// so that one thread can wake another that waits in kevent. OpenBSD and
// NetBSD do not have it (x/sys does not define it there).
const (
	EVFILT_USER = unix.EVFILT_USER

	NOTE_FFNOP      = unix.NOTE_FFNOP
	NOTE_FFAND      = unix.NOTE_FFAND
	NOTE_FFOR       = unix.NOTE_FFOR
	NOTE_FFCOPY     = unix.NOTE_FFCOPY
	NOTE_FFCTRLMASK = unix.NOTE_FFCTRLMASK
	NOTE_FFLAGSMASK = unix.NOTE_FFLAGSMASK
	NOTE_TRIGGER    = unix.NOTE_TRIGGER
)
