package kqueue

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// thr_set_name(2) names a thread by its id, which thr_self(2) stores through
// a long *, as wide as a Go int on every FreeBSD platform.
func nameThread(name string) error {
	b, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	var id int
	if _, _, e := unix.RawSyscall(unix.SYS_THR_SELF, uintptr(unsafe.Pointer(&id)), 0, 0); e != 0 {
		return e
	}
	if _, _, e := unix.RawSyscall(unix.SYS_THR_SET_NAME, uintptr(id), uintptr(unsafe.Pointer(b)), 0); e != 0 {
		return e
	}
	return nil
}
