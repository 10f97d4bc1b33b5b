package kqueue

import "golang.org/x/sys/unix"

// thread_selfid is the system call behind pthread_threadid_np(3), which
// x/sys does not wrap; it returns the thread's 64-bit id.
func threadID() int {
	id, _, _ := unix.RawSyscall(unix.SYS_THREAD_SELFID, 0, 0, 0)
	return int(id)
}
