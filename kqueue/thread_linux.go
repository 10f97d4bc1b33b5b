package kqueue

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// prctl(2) PR_SET_NAME names the calling thread (what /proc/PID/task/TID/comm
// shows), cutting the name at 15 bytes. The main thread's name is also the
// process's (ps, pgrep, top and killall go by it), so that one is left
// alone: a loop whose goroutine happened to lock the main thread renamed
// the whole server.
func nameThread(name string) error {
	if unix.Gettid() == unix.Getpid() {
		return errMainThread
	}
	b, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
}

var errMainThread = errors.New("kqueue: NameThread: on Linux the main thread's name is the process's; not renamed")
