package kqueue

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// lwp_setname(2) names a thread of the process by its id, lwp_gettid(2)'s.
func nameThread(name string) error {
	b, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	id, _, _ := unix.RawSyscall(unix.SYS_LWP_GETTID, 0, 0, 0)
	if _, _, e := unix.RawSyscall(unix.SYS_LWP_SETNAME, id, uintptr(unsafe.Pointer(b)), 0); e != 0 {
		return e
	}
	return nil
}
