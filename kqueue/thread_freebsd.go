package kqueue

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// thr_self(2) stores the id through a long *, which is as wide as a Go int
// on every FreeBSD platform.
func threadID() int {
	var id int
	unix.RawSyscall(unix.SYS_THR_SELF, uintptr(unsafe.Pointer(&id)), 0, 0)
	return id
}
