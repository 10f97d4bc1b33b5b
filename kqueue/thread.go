//go:build darwin || dragonfly || freebsd || linux

package kqueue

// NameThread names the calling thread, so that ps and top can tell it from
// the others: on Linux `ps -L -o tid,comm,pcpu -p PID` or `top -H`, on
// FreeBSD `ps -H -o tid,comm,pcpu -p PID` or `procstat -t PID`, on
// DragonFly `ps -H`. It is no kqueue call, but a server that runs one event
// loop per thread (stage 11) wants to see which thread is which loop.
//
// Call it from a goroutine locked to its thread (runtime.LockOSThread):
// any other goroutine may be moved to another thread at any moment, and
// the name would stay with a thread that runs something else. Linux keeps
// the first 15 bytes of the name. macOS lets a thread be named only from
// itself, through pthread_setname_np(3), a C library call that x/sys does
// not offer; there NameThread returns ENOTSUP and names nothing. On Linux
// the main thread's name is the process's, which ps, pgrep and killall go
// by, so NameThread called there names nothing and returns an error. Like
// EVFILT_USER, it is not provided on OpenBSD and NetBSD.
func NameThread(name string) error { return nameThread(name) }
