package kqueue

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// prctl(2) PR_SET_NAME names the calling thread (what /proc/PID/task/TID/comm
// shows), cutting the name at 15 bytes.
func nameThread(name string) error {
	b, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
}
