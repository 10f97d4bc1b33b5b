package harness

// The system calls of commands_stages.go that only Linux has.

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

// unreadBytes is how many bytes wait in the receive buffers of the
// session's clients, a count that grows while a write of the server's moves
// (SIOCINQ, tcp(7) and unix(7)).
func unreadBytes(s *session) int {
	total := 0
	for _, c := range s.clients {
		sc, ok := c.conn.(syscall.Conn)
		if c.closed || !ok {
			continue
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			continue
		}
		raw.Control(func(fd uintptr) {
			if n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil {
				total += n
			}
		})
	}
	return total
}
