//go:build darwin || dragonfly || freebsd || openbsd

// On these systems x/sys declares struct kevent's udata as *byte, as C does.
// The portable Udata is an integer, and writing an integer into a field the
// garbage collector believes to be a pointer can crash the program when the
// collector scans it. So the native structs live in memory allocated as
// plain words ([]uint64), which the collector never scans, and udata is
// written and read through a uintptr view of the field. No integer is ever
// converted to a pointer.

package kqueue

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const nativeSize = unsafe.Sizeof(unix.Kevent_t{})

// nativeBuffer holds n native kevents in pointer-free memory.
type nativeBuffer struct {
	words []uint64
	all   []unix.Kevent_t
}

func newNativeBuffer(n int) *nativeBuffer {
	if n == 0 {
		return &nativeBuffer{}
	}
	words := make([]uint64, (uintptr(n)*nativeSize+7)/8)
	all := unsafe.Slice((*unix.Kevent_t)(unsafe.Pointer(&words[0])), n)
	return &nativeBuffer{words: words, all: all}
}

func (b *nativeBuffer) slice(from, to int) []unix.Kevent_t {
	if b.all == nil {
		return nil
	}
	return b.all[from:to]
}

func (b *nativeBuffer) put(dst *unix.Kevent_t, src *Kevent_t) {
	unix.SetKevent(dst, int(src.Ident), int(src.Filter), int(src.Flags))
	dst.Fflags = src.Fflags
	dst.Data = src.Data
	*(*uintptr)(unsafe.Pointer(&dst.Udata)) = uintptr(src.Udata)
}

func (b *nativeBuffer) get(dst *Kevent_t, src *unix.Kevent_t) {
	*dst = Kevent_t{
		Ident:  uint64(src.Ident),
		Filter: int16(src.Filter),
		Flags:  uint16(src.Flags),
		Fflags: src.Fflags,
		Data:   int64(src.Data),
		Udata:  uint64(*(*uintptr)(unsafe.Pointer(&src.Udata))),
	}
}
