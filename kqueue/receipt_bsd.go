//go:build darwin || dragonfly || freebsd || openbsd

package kqueue

import "golang.org/x/sys/unix"

// EV_RECEIPT asks for an EV_ERROR entry for every change, with data 0 when it
// succeeded. EV_DISPATCH disables a knote once its event has been returned.
// NetBSD has neither (x/sys does not define them there).
const (
	EV_RECEIPT  = unix.EV_RECEIPT
	EV_DISPATCH = unix.EV_DISPATCH
)
