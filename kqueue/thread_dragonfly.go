package kqueue

import "golang.org/x/sys/unix"

// lwp_gettid(2) numbers the threads of each process from 1.
func threadID() int {
	id, _, _ := unix.RawSyscall(unix.SYS_LWP_GETTID, 0, 0, 0)
	return int(id)
}
