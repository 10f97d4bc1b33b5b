package workbook_test

// The system calls of commands_stages_test.go that only Linux has.

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// tgkill sends sig to one thread of process pid.
func tgkill(pid, tid int, sig syscall.Signal) error { return unix.Tgkill(pid, tid, sig) }

// prlimitNofile sets both limits of RLIMIT_NOFILE of process pid to n.
func prlimitNofile(pid int, n uint64) error {
	return unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: n}, nil)
}
