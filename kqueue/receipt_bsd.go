//go:build darwin || dragonfly || freebsd || openbsd

package kqueue

import "golang.org/x/sys/unix"

// EV_RECEIPT asks for an EV_ERROR entry for every change, with data 0 when it
// succeeded. NetBSD does not have it.
const EV_RECEIPT = unix.EV_RECEIPT
