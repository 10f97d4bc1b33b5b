package main

import "golang.org/x/sys/unix"

// The ioctl(2) requests that get and set a terminal's attributes.
const (
	getTermios = unix.TCGETS
	setTermios = unix.TCSETS
)
