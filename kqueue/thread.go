//go:build darwin || dragonfly || freebsd || linux

package kqueue

// ThreadID is the kernel's number for the calling thread, unique among the
// threads of the process while the thread lives: gettid(2) on Linux,
// thr_self(2) on FreeBSD, lwp_gettid(2) on DragonFly, thread_selfid on
// macOS. It is no kqueue call, but it is the other half of EVFILT_USER: a
// loop that other threads may hand work to must tell its own thread from
// theirs (stage 10). Each call is a system call. Like EVFILT_USER, it is
// not provided on OpenBSD and NetBSD.
//
// A Go program learns something from it only in a goroutine locked to its
// thread (runtime.LockOSThread): any other goroutine may be moved to
// another thread at any moment.
func ThreadID() int { return threadID() }
