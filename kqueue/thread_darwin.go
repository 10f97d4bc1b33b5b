package kqueue

import "golang.org/x/sys/unix"

// macOS names a thread only through pthread_setname_np(3), from the thread
// itself, and x/sys has no way to make that C library call.
func nameThread(string) error { return unix.ENOTSUP }
