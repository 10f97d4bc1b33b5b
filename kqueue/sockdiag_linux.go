// The accept queue of a listening AF_UNIX socket.
//
// Linux has no ioctl or socket option for it: SIOCINQ refuses a listening
// AF_UNIX socket, and TCP_INFO is for TCP. What it does have is sock_diag,
// the netlink interface ss(8) uses: asked about one socket by its inode
// number with UDIAG_SHOW_RQLEN, it answers with the length of the socket's
// receive queue, which for a listener holds one entry per connection not yet
// accepted. That costs a request and a reply, two system calls, on each
// event of a listening AF_UNIX socket, and nothing anywhere else.

package kqueue

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// From linux/unix_diag.h, which x/sys does not carry.
const (
	udiagShowRQLen = 0x10 // UDIAG_SHOW_RQLEN
	unixDiagRQLen  = 4    // UNIX_DIAG_RQLEN
	tcpListen      = 10   // TCP_LISTEN, the state a listening AF_UNIX socket is in
)

// diag is a netlink sock_diag socket with buffers for one request, opened
// the first time a queue needs it.
type diag struct {
	fd  int
	seq uint32
	req [unix.SizeofNlMsghdr + 24]byte
	buf [512]byte
}

// unixBacklog returns the number of connections waiting to be accepted on
// the listening AF_UNIX socket with inode ino, and false if the kernel
// would not say (a kernel built without unix_diag).
func (q *queue) unixBacklog(ino uint64) (int64, bool) {
	d := &q.diag
	if d.fd < 0 {
		fd, err := socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			return 0, false
		}
		d.fd = fd
	}
	d.seq++
	ne := binary.NativeEndian
	r := d.req[:]
	// struct nlmsghdr
	ne.PutUint32(r[0:], uint32(len(d.req)))
	ne.PutUint16(r[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(r[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(r[8:], d.seq)
	ne.PutUint32(r[12:], 0)
	// struct unix_diag_req
	r = r[unix.SizeofNlMsghdr:]
	r[0], r[1] = unix.AF_UNIX, 0
	ne.PutUint16(r[2:], 0)
	ne.PutUint32(r[4:], 1<<tcpListen)
	ne.PutUint32(r[8:], uint32(ino))
	ne.PutUint32(r[12:], udiagShowRQLen)
	ne.PutUint32(r[16:], ^uint32(0)) // no cookie to check
	ne.PutUint32(r[20:], ^uint32(0))
	if _, err := writeFd(d.fd, d.req[:]); err != nil {
		return 0, false
	}
	for range 2 { // a reply to an earlier, abandoned request may come first
		n, err := readFd(d.fd, d.buf[:])
		if err != nil {
			return 0, false
		}
		if backlog, ok := parseRQLen(d.buf[:n], d.seq); ok {
			return backlog, true
		}
	}
	return 0, false
}

// parseRQLen finds UNIX_DIAG_RQLEN in the reply to request seq.
func parseRQLen(msg []byte, seq uint32) (int64, bool) {
	ne := binary.NativeEndian
	const hdr = unix.SizeofNlMsghdr
	const diagMsg = 16 // struct unix_diag_msg
	if len(msg) < hdr+diagMsg || ne.Uint16(msg[4:]) != unix.SOCK_DIAG_BY_FAMILY || ne.Uint32(msg[8:]) != seq {
		return 0, false
	}
	end := min(int(ne.Uint32(msg[0:])), len(msg))
	// The attributes follow: struct rtattr {len, type uint16}, padded
	// to four bytes, each followed by its payload.
	for at := hdr + diagMsg; at+4 <= end; {
		size, typ := int(ne.Uint16(msg[at:])), ne.Uint16(msg[at+2:])
		if size < 4 || at+size > end {
			break
		}
		if typ == unixDiagRQLen && size >= 8 {
			// struct unix_diag_rqlen {udiag_rqueue, udiag_wqueue}
			return int64(ne.Uint32(msg[at+4:])), true
		}
		at += (size + 3) &^ 3
	}
	return 0, false
}
