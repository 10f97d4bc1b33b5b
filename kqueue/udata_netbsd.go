// NetBSD declares struct kevent's udata as an integer (intptr_t), its filter
// and flags as uint32, and numbers its filters from 0 (EVFILT_READ is 0,
// not -1). It has no EV_RECEIPT, so this package does not define one here.

package kqueue

import "golang.org/x/sys/unix"

// nativeBuffer holds n native kevents; NetBSD's have no pointer in them.
type nativeBuffer struct {
	all []unix.Kevent_t
}

func newNativeBuffer(n int) *nativeBuffer {
	return &nativeBuffer{all: make([]unix.Kevent_t, n)}
}

func (b *nativeBuffer) slice(from, to int) []unix.Kevent_t {
	return b.all[from:to]
}

func (b *nativeBuffer) put(dst *unix.Kevent_t, src *Kevent_t) {
	unix.SetKevent(dst, int(src.Ident), int(src.Filter), int(src.Flags))
	dst.Fflags = src.Fflags
	dst.Data = src.Data
	setUdata(&dst.Udata, src.Udata)
}

// setUdata stores the token in udata, which is as wide as a pointer: 64 bits
// on 64-bit systems, 32 on the others, where the upper half is lost.
func setUdata[T int32 | int64](udata *T, token uint64) {
	*udata = T(token)
}

func (b *nativeBuffer) get(dst *Kevent_t, src *unix.Kevent_t) {
	*dst = Kevent_t{
		Ident:  uint64(src.Ident),
		Filter: int16(src.Filter),
		Flags:  uint16(src.Flags),
		Fflags: src.Fflags,
		Data:   int64(src.Data),
		Udata:  uint64(src.Udata),
	}
}
