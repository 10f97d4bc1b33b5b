//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package main

import "golang.org/x/sys/unix"

// The ioctl(2) requests that get and set a terminal's attributes.
const (
	getTermios = unix.TIOCGETA
	setTermios = unix.TIOCSETA
)
