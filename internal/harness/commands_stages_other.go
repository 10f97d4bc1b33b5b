//go:build !linux

package harness

// What commands_stages.go does on systems without Linux's per-thread
// signals and prlimit(2).

import "syscall"

// tgkill signals the whole process: the kernel picks the thread.
func tgkill(pid, _ int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// prlimitNofile cannot change another process's limit here.
func prlimitNofile(int, uint64) error { return errNoPrlimit }

// unreadBytes is 0: stuck, which asks, needs Linux's /proc anyway.
func unreadBytes(*session) int { return 0 }
