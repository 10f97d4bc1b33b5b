package kqueue

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// diagReply builds a sock_diag reply to request seq: struct nlmsghdr, a
// struct unix_diag_msg of zeros, then the attributes as given (each already
// a struct rtattr and its payload, padded or not).
func diagReply(seq uint32, attrs ...[]byte) []byte {
	ne := binary.NativeEndian
	msg := make([]byte, unix.SizeofNlMsghdr+16)
	for _, a := range attrs {
		msg = append(msg, a...)
	}
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint32(msg[8:], seq)
	return msg
}

// attr is a struct rtattr of the given length field, with payload after it.
func attr(size, typ uint16, payload ...uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, 4, 4+4*len(payload))
	ne.PutUint16(b[0:], size)
	ne.PutUint16(b[2:], typ)
	for _, p := range payload {
		b = ne.AppendUint32(b, p)
	}
	return b
}

// UNIX_DIAG_RQLEN is found wherever it is among the attributes of the
// reply (linux/unix_diag.h, linux/rtnetlink.h: each attribute padded to
// four bytes); a reply to another request, or a short or inconsistent one,
// gives no answer rather than a wrong one or a crash.
func TestParseRQLen(t *testing.T) {
	const seq = 7
	const name = 0 // UNIX_DIAG_NAME
	for _, tc := range []struct {
		what   string
		msg    []byte
		n      int64
		parsed bool
	}{
		{"the attribute alone", diagReply(seq, attr(12, unixDiagRQLen, 3, 16)), 3, true},
		{"after a name of 3 bytes, padded", diagReply(seq, attr(7, name, 0x00636261), attr(12, unixDiagRQLen, 3, 16)), 3, true},
		{"after an empty attribute", diagReply(seq, attr(4, name), attr(12, unixDiagRQLen, 3, 16)), 3, true},
		{"with udiag_rqueue only", diagReply(seq, attr(8, unixDiagRQLen, 3)), 3, true},
		{"no attributes", diagReply(seq), 0, false},
		{"another request's reply", diagReply(seq+1, attr(12, unixDiagRQLen, 3, 16)), 0, false},
		{"cut short in the attribute", diagReply(seq, attr(12, unixDiagRQLen, 3)), 0, false},
		{"an attribute of length 2", diagReply(seq, attr(2, name), attr(12, unixDiagRQLen, 3, 16)), 0, false},
		{"two bytes of a header", diagReply(seq)[:2], 0, false},
	} {
		n, parsed := parseRQLen(tc.msg, seq)
		if n != tc.n || parsed != tc.parsed {
			t.Errorf("%s: %d, %v; want %d, %v", tc.what, n, parsed, tc.n, tc.parsed)
		}
	}
}
