//go:build !netbsd

package kqueue

// NetBSD has no EV_RECEIPT; everywhere else the trace names it.
func init() { addFlagName(bit(EV_RECEIPT, "EV_RECEIPT")) }
